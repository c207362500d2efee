"""Cluster DNS answers from Services and EndpointSlices (in-process, real store and API core)."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator

import dns.message
import dns.rcode
import dns.rdatatype
import pytest
import trio

from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.net.dns import ClusterDNS
from orchestra.store import Store


@pytest.fixture
async def dns_server() -> AsyncIterator[tuple[ClusterDNS, LocalClient]]:
    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    client = LocalClient(core)
    server = ClusterDNS(client, host="127.0.0.1", port=0, upstreams=[])
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        yield server, client
        nursery.cancel_scope.cancel()
    store.close()


async def ask(server: ClusterDNS, name: str, rdtype: str = "A") -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    with sock, trio.fail_after(5):
        await sock.sendto(q.to_wire(), ("127.0.0.1", server.bound_port))
        data, _ = await sock.recvfrom(65535)
    return dns.message.from_wire(data)


def addresses(msg: dns.message.Message) -> list[str]:
    return sorted(r.to_text() for rrset in msg.answer for r in rrset if rrset.rdtype == dns.rdatatype.A)


async def settle(client: LocalClient) -> None:
    await trio.testing.wait_all_tasks_blocked()


async def test_cluster_ip_and_headless_and_srv(dns_server: tuple[ClusterDNS, LocalClient]) -> None:
    server, client = dns_server
    svc_rt, slice_rt = client.kind("Service"), client.kind("EndpointSlice")
    web = await client.create(svc_rt, "default", {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}})
    await client.create(svc_rt, "default", {"metadata": {"name": "db"}, "spec": {
        "clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "pg", "port": 5432}]}})
    await client.create(slice_rt, "default", {
        "metadata": {"name": "db-abc", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.88.0.5"], "conditions": {"ready": True}, "hostname": "db-0"},
            {"addresses": ["10.88.0.6"], "conditions": {"ready": True}, "hostname": "db-1"},
            {"addresses": ["10.88.0.7"], "conditions": {"ready": False}, "hostname": "db-2"},
        ],
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
    })
    await settle(client)
    with trio.fail_after(5):
        r = await ask(server, "web.default.svc.cluster.local")
        assert addresses(r) == [web["spec"]["clusterIP"]]
        r = await ask(server, "db.default.svc.cluster.local")
        assert addresses(r) == ["10.88.0.5", "10.88.0.6"]
        r = await ask(server, "db-1.db.default.svc.cluster.local")
        assert addresses(r) == ["10.88.0.6"]
        r = await ask(server, "_http._tcp.web.default.svc.cluster.local", "SRV")
        assert "80 web.default.svc.cluster.local." in r.answer[0].to_text()
        r = await ask(server, "10-88-0-9.default.pod.cluster.local")
        assert addresses(r) == ["10.88.0.9"]
        r = await ask(server, "nope.default.svc.cluster.local")
        assert r.rcode() == dns.rcode.NXDOMAIN
        # a Service deleted disappears from DNS
        await client.delete(svc_rt, "default", "web")
        await settle(client)
        r = await ask(server, "web.default.svc.cluster.local")
        assert r.rcode() == dns.rcode.NXDOMAIN


async def test_external_name_and_garbage(dns_server: tuple[ClusterDNS, LocalClient]) -> None:
    server, client = dns_server
    await client.create(client.kind("Service"), "default", {"metadata": {"name": "ext"}, "spec": {
        "type": "ExternalName", "externalName": "example.org"}})
    await settle(client)
    r = await ask(server, "ext.default.svc.cluster.local")
    assert "CNAME example.org." in r.answer[0].to_text()
    assert await server.answer(b"\x00garbage") is None


async def test_an_ephemeral_port_taken_for_tcp_is_picked_again_and_a_given_port_is_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With port 0 the kernel picks the UDP port; another process may hold that number for TCP."""
    real = trio.open_tcp_listeners
    refused: list[int] = []

    async def taken_once(port: int, **kwargs: object) -> list[trio.SocketListener]:
        if not refused:
            refused.append(port)
            raise OSError(errno.EADDRINUSE, "Address already in use")
        return await real(port, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(trio, "open_tcp_listeners", taken_once)
    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    server = ClusterDNS(LocalClient(core), host="127.0.0.1", port=0, upstreams=[])
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.run)
        assert refused and port == server.bound_port
        reply = await ask(server, "kubernetes.default.svc.cluster.local")
        assert reply.rcode() == dns.rcode.NOERROR
        nursery.cancel_scope.cancel()
    refused.clear()
    fixed = ClusterDNS(LocalClient(core), host="127.0.0.1", port=port, upstreams=[])
    with pytest.raises(OSError, match="Address already in use"):
        await fixed.run()
    store.close()
