"""The service proxy marks its connection to a backend with the client's `source_mark` (what lets
NetworkPolicies see the client pod behind the proxy). Checked in the kernel: a throw-away nft table
counts the output packets to the backend that carry the mark (needs root, like the proxy itself)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.net.netpol import Nft
from orchestra.net.proxy import ServiceProxy
from orchestra.store import Store
from tests.net.test_proxy import backend, call, slice_for, to_loopback

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="packet marks and nft need root")

MARK = 0x0A580002  # 10.88.0.2, as the enforcer marks a pod's connections
TABLE = f"orchestra-test-mark-{os.getpid()}"


async def udp_echo(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
        await sock.bind(("127.0.0.1", 0))
        task_status.started(sock.getsockname()[1])
        while True:
            data, addr = await sock.recvfrom(1024)
            await sock.sendto(b"echo:" + data, addr)


def counting(port: int, protocol: str) -> list[Any]:
    """A table counting marked output packets to `port` (and, apart, unmarked ones)."""
    table = {"family": "inet", "name": TABLE}
    rule = {"family": "inet", "table": TABLE, "chain": "out"}
    th_dport = {"payload": {"protocol": protocol, "field": "dport"}}
    dport = {"match": {"op": "==", "left": th_dport, "right": port}}
    mark = {"meta": {"key": "mark"}}
    return [
        {"add": {"table": table}}, {"delete": {"table": table}}, {"add": {"table": table}},
        {"add": {"chain": {**rule, "name": "out", "type": "filter", "hook": "output", "prio": 0,
                           "policy": "accept"}}},
        {"add": {"rule": {**rule, "comment": "marked", "expr": [
            dport, {"match": {"op": "==", "left": mark, "right": MARK}}, {"counter": None}]}}},
        {"add": {"rule": {**rule, "comment": "unmarked", "expr": [
            dport, {"match": {"op": "==", "left": mark, "right": 0}}, {"counter": None}]}}},
    ]


async def counts(nft: Nft) -> dict[str, int]:
    items = await nft.list_table("inet", TABLE)
    assert items is not None
    rules = [item["rule"] for item in items if "rule" in item]
    return {r["comment"]: next(e["counter"]["packets"] for e in r["expr"] if "counter" in e) for r in rules}


@pytest.fixture
async def env() -> AsyncIterator[tuple[LocalClient, trio.Nursery, Nft]]:
    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    client = LocalClient(core)
    marked = {"127.0.0.1"}  # the test connects from 127.0.0.1: it plays the client pod
    proxy = ServiceProxy(client, host_addresses=["127.0.0.1"], bind=to_loopback, nodeport_host="127.0.0.1",
                         source_mark=lambda ip: MARK if ip in marked else None)
    nft = Nft()
    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                await nursery.start(proxy.run)
                yield client, nursery, nft
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await nft.apply([{"add": {"table": {"family": "inet", "name": TABLE}}},
                             {"delete": {"table": {"family": "inet", "name": TABLE}}}])
        store.close()


async def service(client: LocalClient, name: str, port: int, protocol: str = "TCP") -> str:
    svc = await client.create(client.kind("Service"), "default", {"metadata": {"name": name}, "spec": {
        "selector": {"app": name}, "ports": [{"port": 8080, "protocol": protocol}]}})
    sl = slice_for(name, [(port, True)])
    sl["ports"][0].update(port=port, protocol=protocol)
    await client.create(client.kind("EndpointSlice"), "default", sl)
    await trio.testing.wait_all_tasks_blocked()
    return to_loopback(svc["spec"]["clusterIP"])


async def test_tcp_connections_to_the_backend_carry_the_client_s_mark(
    env: tuple[LocalClient, trio.Nursery, Nft],
) -> None:
    client, nursery, nft = env
    port = await nursery.start(backend, "b0")
    vip = await service(client, "web", port)
    await nft.apply(counting(port, "tcp"))
    assert (await call(vip, 8080)) == b"b0:hi"
    got = await counts(nft)
    assert got["marked"] >= 3 and got["unmarked"] == 0  # SYN, the request, FIN at least


async def test_udp_flows_to_the_backend_carry_the_client_s_mark(
    env: tuple[LocalClient, trio.Nursery, Nft],
) -> None:
    client, nursery, nft = env
    port = await nursery.start(udp_echo)
    vip = await service(client, "dns", port, "UDP")
    await nft.apply(counting(port, "udp"))
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock, trio.fail_after(5):
        await sock.bind(("127.0.0.1", 0))
        await sock.sendto(b"q", (vip, 8080))
        assert (await sock.recv(1024)) == b"echo:q"
    assert await counts(nft) == {"marked": 1, "unmarked": 0}


async def test_a_client_that_is_no_pod_is_not_marked(env: tuple[LocalClient, trio.Nursery, Nft]) -> None:
    client, nursery, nft = env
    port = await nursery.start(backend, "b0")
    vip = await service(client, "web", port)
    await nft.apply(counting(port, "tcp"))
    stream = await trio.open_tcp_stream(vip, 8080, local_address="127.0.0.2")  # not in `marked`
    async with stream:
        await stream.send_all(b"hi")
        await stream.send_eof()
        assert await stream.receive_some(1024) == b"b0:hi"
    got = await counts(nft)
    assert got["marked"] == 0 and got["unmarked"] >= 3
