"""The service proxy forwards to ready endpoints, follows changes live, and serves NodePorts.

ClusterIPs 10.96.a.b are bound as 127.96.a.b here (all of 127/8 is loopback), so no root is needed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
import trio

from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.net.proxy import ServiceProxy
from orchestra.store import Store


def to_loopback(ip: str) -> str:
    parts = ip.split(".")
    return ".".join(["127", *parts[1:]])


async def backend(name: str, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            data = await stream.receive_some(1024)
            await stream.send_all(name.encode() + b":" + data)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


@pytest.fixture
async def env() -> AsyncIterator[tuple[ServiceProxy, LocalClient, trio.Nursery]]:
    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    client = LocalClient(core)
    proxy = ServiceProxy(client, host_addresses=["127.0.0.1"], bind=to_loopback, nodeport_host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.run)
        yield proxy, client, nursery
        nursery.cancel_scope.cancel()
    store.close()


async def call(host: str, port: int, msg: bytes = b"hi") -> bytes:
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            await stream.send_all(msg)
            await stream.send_eof()
            out = b""
            while chunk := await stream.receive_some(1024):
                out += chunk
            return out


def slice_for(svc: str, endpoints: list[tuple[int, bool]], name: str = "") -> dict:
    return {
        "metadata": {"name": f"{svc}-x", "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["127.0.0.1"], "conditions": {"ready": ready}, "targetRef": {"name": f"p{port}"}}
            for port, ready in endpoints
        ],
        "ports": [{"name": name, "port": 0, "protocol": "TCP"}],
    }


async def test_round_robin_readiness_and_live_updates(
    env: tuple[ServiceProxy, LocalClient, trio.Nursery],
) -> None:
    _proxy, client, nursery = env
    ports = [await nursery.start(backend, f"b{i}") for i in range(3)]
    svc = await client.create(client.kind("Service"), "default", {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 8080, "targetPort": 80}]}})
    # one slice per backend port (the proxy reads each slice's port)
    for i, p in enumerate(ports):
        sl = slice_for("web", [(p, True)])
        sl["metadata"]["name"] = f"web-{i}"
        sl["ports"][0]["port"] = p
        await client.create(client.kind("EndpointSlice"), "default", sl)
    await trio.testing.wait_all_tasks_blocked()
    vip = to_loopback(svc["spec"]["clusterIP"])
    hits = Counter([(await call(vip, 8080)).split(b":")[0] for _ in range(9)])
    assert hits == Counter({b"b0": 3, b"b1": 3, b"b2": 3})
    # b1 stops being ready: no new connection reaches it
    sl = await client.get(client.kind("EndpointSlice"), "default", "web-1")
    sl["endpoints"][0]["conditions"]["ready"] = False
    await client.update(client.kind("EndpointSlice"), sl)
    await trio.testing.wait_all_tasks_blocked()
    hits = Counter([(await call(vip, 8080)).split(b":")[0] for _ in range(6)])
    assert set(hits) == {b"b0", b"b2"}
    # the Service goes away: its listener closes
    await client.delete(client.kind("Service"), "default", "web")
    await trio.testing.wait_all_tasks_blocked()
    with pytest.raises(OSError):
        await call(vip, 8080)


async def test_session_affinity_nodeport_and_load_balancer(
    env: tuple[ServiceProxy, LocalClient, trio.Nursery],
) -> None:
    _proxy, client, nursery = env
    ports = [await nursery.start(backend, f"b{i}") for i in range(2)]
    svc = await client.create(client.kind("Service"), "default", {"metadata": {"name": "lb"}, "spec": {
        "type": "LoadBalancer", "sessionAffinity": "ClientIP", "selector": {"app": "lb"},
        "ports": [{"name": "http", "port": 18081, "targetPort": "http"}]}})
    for i, p in enumerate(ports):
        sl = slice_for("lb", [(p, True)], name="http")
        sl["metadata"]["name"] = f"lb-{i}"
        sl["ports"][0]["port"] = p
        await client.create(client.kind("EndpointSlice"), "default", sl)
    await trio.testing.wait_all_tasks_blocked()
    vip = to_loopback(svc["spec"]["clusterIP"])
    assert len({(await call(vip, 18081)).split(b":")[0] for _ in range(6)}) == 1  # sticky
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert (await call("127.0.0.1", node_port)).endswith(b":hi")
    assert (await call("127.0.0.1", 18081)).endswith(b":hi")
    await trio.testing.wait_all_tasks_blocked()
    got = await client.get(client.kind("Service"), "default", "lb")
    assert got["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.1", "ipMode": "VIP"}]
