"""A stored Service or EndpointSlice the proxy or DNS cannot digest stays with its Service: the
component keeps serving the others, and a restarted component serves them again."""

from __future__ import annotations

from typing import Any

import dns.rcode
import orjson
import trio
import trio.testing

from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.controller import RestartPolicy, Supervisor
from orchestra.net.dns import ClusterDNS
from orchestra.net.proxy import ServiceProxy
from orchestra.store import Store
from tests.net.test_dns import addresses, ask
from tests.net.test_proxy import backend, call, slice_for, to_loopback


def store_raw(store: Store, client: LocalClient, kind: str, name: str, change: Any) -> None:
    """Rewrite a stored object behind the API's back: what an older version (or an edited etcd) left."""
    key = client.kind(kind).key("default", name)
    kv = store.get(key)
    assert kv is not None
    obj = orjson.loads(kv.value)
    change(obj)
    store.put(key, orjson.dumps(obj))


async def open_api() -> tuple[Store, LocalClient]:
    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    return store, LocalClient(core)


async def service_with_backend(client: LocalClient, nursery: trio.Nursery, name: str, port: int) -> str:
    svc = await client.create(client.kind("Service"), "default", {"metadata": {"name": name}, "spec": {
        "selector": {"app": name}, "ports": [{"port": port, "targetPort": 80}]}})
    sl = slice_for(name, [(0, True)])
    sl["ports"][0]["port"] = await nursery.start(backend, name)
    await client.create(client.kind("EndpointSlice"), "default", sl)
    return to_loopback(svc["spec"]["clusterIP"])


async def test_proxy_keeps_serving_around_a_service_it_cannot_sync() -> None:
    store, client = await open_api()
    proxy = ServiceProxy(client, host_addresses=["127.0.0.1"], bind=to_loopback, nodeport_host="127.0.0.1")
    supervisor = Supervisor(RestartPolicy(initial=0.01))
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await service_with_backend(client, nursery, "broken", 18091)
            store_raw(store, client, "Service", "broken", lambda s: s["spec"]["ports"][0].update(port="http"))
            await nursery.start(supervisor.run, "kube-proxy", proxy.run)
            vip = await service_with_backend(client, nursery, "web", 18092)
            await trio.testing.wait_all_tasks_blocked()
            assert await call(vip, 18092) == b"web:hi"
            assert proxy.statistics()["sync_errors"] == 1
            drain = proxy._drain

            async def crash_once() -> None:  # a bug outside the per-Service guard: the proxy crashes
                proxy._drain = drain  # type: ignore[method-assign]
                raise RuntimeError("proxy bug")

            proxy._drain = crash_once  # type: ignore[method-assign]
            proxy._wake.set()
            await trio.sleep(1)
            stats = supervisor.statistics()["kube-proxy"]
            assert (stats.crashes, stats.starts, stats.running) == (1, 2, True)
            assert await call(vip, 18092) == b"web:hi"  # the restarted proxy listens again
            assert proxy.statistics()["sync_errors"] == 2  # and still steps around "broken"
            nursery.cancel_scope.cancel()
    store.close()


async def test_dns_answers_servfail_for_records_it_cannot_build_and_serves_the_rest() -> None:
    store, client = await open_api()
    server = ClusterDNS(client, host="127.0.0.1", port=0, upstreams=[])
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            svc_rt, slice_rt = client.kind("Service"), client.kind("EndpointSlice")
            await client.create(svc_rt, "default", {"metadata": {"name": "db"}, "spec": {
                "clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "pg", "port": 5432}]}})
            await client.create(slice_rt, "default", {
                "metadata": {"name": "db-abc", "labels": {"kubernetes.io/service-name": "db"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.88.0.5"], "conditions": {"ready": True}}],
                "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]})
            store_raw(store, client, "EndpointSlice", "db-abc",
                      lambda s: s["endpoints"][0].update(addresses=["not-an-ip"]))
            web = await client.create(svc_rt, "default", {"metadata": {"name": "web"}, "spec": {
                "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}})
            await nursery.start(server.run)
            await trio.testing.wait_all_tasks_blocked()
            assert (await ask(server, "db.default.svc.cluster.local")).rcode() == dns.rcode.SERVFAIL
            assert addresses(await ask(server, "web.default.svc.cluster.local")) == [web["spec"]["clusterIP"]]
            assert server.errors == 1
            nursery.cancel_scope.cancel()
    store.close()
