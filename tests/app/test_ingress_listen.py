"""The ingress controller's listeners when their port is taken (another web server on 80/443): a
listener that was asked for stops the start with a message naming the option; one left at `orchestra
up`'s default is a warning and stays off while the cluster runs. Real sockets on 127.0.0.1 (no root),
the real API core, the app's start_ingress."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from orchestra.api.request.core import ApiCore
from orchestra.app import ClusterConfig
from orchestra.app.bootstrap import bootstrap
from orchestra.app.config import Cluster
from orchestra.app.network import start_ingress
from orchestra.client.local import LocalClient
from orchestra.net.ingress import IngressController, ListenError
from orchestra.net.routes import NetworkSetupError
from orchestra.store import Store


@pytest.fixture
def taken() -> Iterator[int]:
    """A port on 127.0.0.1 that another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def cluster(tmp_path: Path, **config: object) -> Cluster:
    core = ApiCore(Store.open_memory())
    await bootstrap(core)
    return Cluster(config=ClusterConfig(state_dir=tmp_path, **config),  # type: ignore[arg-type]
                   store=core.store, core=core, server=None, token="", kubeconfig=tmp_path / "kubeconfig",
                   url="", ca_cert=tmp_path / "ca.crt")


async def test_a_listener_asked_for_stops_the_start_naming_the_option(tmp_path: Path, taken: int) -> None:
    with trio.fail_after(10):
        c = await cluster(tmp_path, ingress_listen=("127.0.0.1", taken))
        async with trio.open_nursery() as nursery:
            with pytest.raises(NetworkSetupError) as caught:
                await start_ingress(nursery, c, ["127.0.0.1"])
            nursery.cancel_scope.cancel()
        message = str(caught.value)
        assert f"cannot listen for HTTP on 127.0.0.1:{taken}" in message
        assert "--ingress-listen (or ORCHESTRA_INGRESS_LISTEN)" in message
        assert "`--ingress-listen off`" in message
        assert c.ingress is None
        c.store.close()


async def test_a_default_listener_whose_port_is_taken_stays_off(tmp_path: Path, taken: int) -> None:
    with trio.fail_after(10):
        c = await cluster(tmp_path, ingress_listen=("127.0.0.1", taken), ingress_optional=frozenset({"http"}))
        async with trio.open_nursery() as nursery:
            await start_ingress(nursery, c, ["127.0.0.1"])
            stats = c.ingress.statistics()
            assert stats["listening"] == {}
            assert stats["errors"]["http"].startswith(f"127.0.0.1:{taken}: ")
            assert c.supervisor.statistics()["ingress-controller"].running  # the cluster goes on
            nursery.cancel_scope.cancel()
        c.store.close()


async def test_a_failed_start_leaves_no_listener_open(taken: int) -> None:
    """HTTP is bound before HTTPS fails: that socket is closed again, so the port is free."""
    http = free_port()
    core = ApiCore(Store.open_memory())
    client = LocalClient(core, field_manager="test")
    controller = IngressController(client, http=("127.0.0.1", http), https=("127.0.0.1", taken),
                                   tls_default=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))  # HTTPS fails first
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            with pytest.raises(ListenError) as caught:
                await nursery.start(controller.run)
    assert (caught.value.scheme, caught.value.listen) == ("https", ("127.0.0.1", taken))
    with socket.socket() as again:
        again.bind(("127.0.0.1", http))  # would be EADDRINUSE if the HTTP listener had leaked
    core.store.close()
