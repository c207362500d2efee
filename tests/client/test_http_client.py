"""HttpClient against a live in-process server (tests/conftest.py `live_cluster`): HTTPS with the
cluster CA, bearer token, CRUD, errors mapped to orchestra.api.errors, watch streams, and an
Informer running over HTTP exactly as it runs over LocalClient."""

from __future__ import annotations

import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing

import attrs
import httpx
import pytest
import trio

from orchestra.api import errors
from orchestra.client.base import Client
from orchestra.client.http import (
    Endpoint,
    HttpClient,
    HttpMetricsClient,
    KubeconfigError,
    TransportError,
    api_error,
)
from orchestra.controller.informer import Informer
from tests.conftest import LiveCluster


@pytest.fixture
async def client(live_cluster: LiveCluster) -> AsyncIterator[HttpClient]:
    async with HttpClient.from_kubeconfig(live_cluster.kubeconfig, field_manager="test") as c:
        yield c


@pytest.fixture
async def ns(client: HttpClient) -> str:
    name = f"http-{uuid.uuid4().hex[:8]}"
    await client.create(client.kind("Namespace"), None, {"metadata": {"name": name}})
    return name


def cm(name: str, **data: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": {"app": "t"}}, "data": data}


def test_endpoint_from_kubeconfig(live_cluster: LiveCluster, tmp_path: object) -> None:
    ep = Endpoint.from_kubeconfig(live_cluster.kubeconfig)
    assert ep.server == live_cluster.url and ep.token == live_cluster.token
    assert ep.ca_data == live_cluster.ca_cert.read_bytes() and ep.namespace == "default"
    with pytest.raises(KubeconfigError, match="cannot read kubeconfig"):
        Endpoint.from_kubeconfig("/nonexistent/kubeconfig")


def test_http_client_satisfies_the_protocol(live_cluster: LiveCluster) -> None:
    c: Client = HttpClient(Endpoint(live_cluster.url))  # mypy checks the structural match
    assert c is not None


async def test_crud_round_trip(client: HttpClient, ns: str) -> None:
    with trio.fail_after(20):
        rt = client.kind("ConfigMap")
        created = await client.create(rt, ns, cm("a", k="1"))
        assert created["metadata"]["uid"] and created["data"] == {"k": "1"}
        got = await client.get(rt, ns, "a")
        assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        await client.create(rt, ns, {"metadata": {"name": "b"}})
        items, rv = await client.list(rt, ns, label_selector="app=t")
        assert [i["metadata"]["name"] for i in items] == ["a"] and int(rv) > 0
        assert items[0]["kind"] == "ConfigMap" and items[0]["apiVersion"] == "v1"
        got["data"] = {"k": "2"}
        updated = await client.update(rt, got)
        assert updated["data"] == {"k": "2"}
        patched = await client.patch(rt, ns, "a", {"data": {"extra": "x"}})
        assert patched["data"] == {"k": "2", "extra": "x"}
        json_patched = await client.patch(rt, ns, "a", [{"op": "remove", "path": "/data/extra"}],
                                          patch_type="application/json-patch+json")
        assert json_patched["data"] == {"k": "2"}
        assert await client.delete(rt, ns, "a") is None
        with pytest.raises(errors.NotFound) as info:
            await client.get(rt, ns, "a")
        assert (
            info.value.code == 404
            and info.value.name == "a"
            and 'configmaps "a" not found' in info.value.message
        )


async def test_errors_map_to_api_error_classes(client: HttpClient, ns: str) -> None:
    with trio.fail_after(20):
        rt = client.kind("ConfigMap")
        first = await client.create(rt, ns, cm("c"))
        with pytest.raises(errors.AlreadyExists):
            await client.create(rt, ns, cm("c"))
        await client.patch(rt, ns, "c", {"data": {"v": "new"}})
        with pytest.raises(errors.Conflict):
            await client.update(rt, first)  # stale resourceVersion
        with pytest.raises(errors.Invalid) as info:
            await client.create(rt, ns, {"metadata": {"name": "Not_Valid"}})
        assert info.value.code == 422 and info.value.causes and info.value.causes[0].field == "metadata.name"
        with pytest.raises(errors.BadRequest):
            await client.patch(rt, ns, "c", b"{not json", patch_type="application/merge-patch+json")


async def test_status_update_bind_and_scale(client: HttpClient, ns: str) -> None:
    with trio.fail_after(20):
        pods = client.kind("Pod")
        await client.create(
            pods, ns, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        )
        await client.bind(ns, "p", "node-x")
        pod = await client.get(pods, ns, "p")
        assert pod["spec"]["nodeName"] == "node-x"
        pod["status"] = {"phase": "Running", "podIP": "10.1.2.3"}
        assert (await client.update_status(pods, pod))["status"]["podIP"] == "10.1.2.3"
        deps = client.kind("Deployment")
        await client.create(
            deps,
            ns,
            {
                "metadata": {"name": "d"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {
                        "metadata": {"labels": {"a": "b"}},
                        "spec": {"containers": [{"name": "c", "image": "i"}]},
                    },
                },
            },
        )
        scale = await client.patch(deps, ns, "d", {"spec": {"replicas": 4}}, subresource="scale")
        assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 4
        assert (await client.get(deps, ns, "d"))["spec"]["replicas"] == 4


async def test_scale_subresource_is_read_and_written_with_its_resource_version(client: HttpClient,
                                                                               ns: str) -> None:
    """What the HPA controller uses: GET .../scale, then PUT it back with the resourceVersion it read."""
    with trio.fail_after(20):
        deps = client.kind("Deployment")
        await client.create(deps, ns, {"metadata": {"name": "s"}, "spec": {
            "replicas": 2, "selector": {"matchLabels": {"a": "s"}},
            "template": {"metadata": {"labels": {"a": "s"}},
                         "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
        while True:  # the Deployment controller writes the Deployment too: a write may come in between
            scale = await client.get_scale(deps, ns, "s")
            assert (scale["spec"]["replicas"], scale["status"]["selector"]) == (2, "a=s")
            try:
                updated = await client.update_scale(deps, {**scale, "spec": {"replicas": 3}})
                break
            except errors.Conflict:
                await trio.sleep(0.05)
        assert updated["spec"]["replicas"] == 3 and (await client.get(deps, ns, "s"))["spec"]["replicas"] == 3
        with pytest.raises(errors.Conflict):
            await client.update_scale(deps, {**scale, "spec": {"replicas": 5}})  # read before the last write


async def test_the_resource_metrics_api_over_http(client: HttpClient, ns: str) -> None:
    with trio.fail_after(20):
        # nothing runs in this cluster: an empty list, as metrics-server answers
        assert await HttpMetricsClient(client).pod_metrics(ns, "app=none") == []


async def test_watch_streams_events_and_closes(client: HttpClient, ns: str) -> None:
    with trio.fail_after(20):
        rt = client.kind("ConfigMap")
        _, rv = await client.list(rt, ns)
        seen: list[tuple[str, str]] = []
        stream = client.watch(rt, ns, resource_version=rv)
        async with aclosing(stream), trio.open_nursery() as nursery:  # type: ignore[type-var]

            async def write() -> None:
                await client.create(rt, ns, cm("w", v="1"))
                await client.patch(rt, ns, "w", {"data": {"v": "2"}})
                await client.delete(rt, ns, "w")

            nursery.start_soon(write)
            async for etype, obj in stream:
                seen.append((etype, obj["metadata"]["name"]))
                if etype == "DELETED":
                    break
        assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


async def test_watch_reports_errors_as_events(client: HttpClient, ns: str) -> None:
    with trio.fail_after(20):
        rt = client.kind("ConfigMap")
        events = [e async for e in client.watch(rt, ns, resource_version="999999999")]
        assert events and events[-1][0] == "ERROR"
        assert events[-1][1]["kind"] == "Status" and events[-1][1]["code"] in (410, 504)


async def test_informer_over_http(client: HttpClient, ns: str) -> None:
    with trio.fail_after(20):
        rt = client.kind("ConfigMap")
        await client.create(rt, ns, cm("before"))
        informer = Informer(client, rt, namespace=ns)
        changed = trio.Event()
        informer.add_handler(
            lambda t, old, new: changed.set() if new and new["metadata"]["name"] == "after" else None
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(informer.run)
            assert informer.get(ns, "before") is not None
            await client.create(rt, ns, cm("after"))
            await changed.wait()
            assert informer.get(ns, "after") is not None
            nursery.cancel_scope.cancel()


async def test_pod_logs_without_a_node_agent_is_a_bad_request(client: HttpClient, ns: str) -> None:
    with trio.fail_after(20):
        await client.create(
            client.kind("Pod"),
            ns,
            {"metadata": {"name": "l"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        )
        try:
            text = await client.pod_logs(ns, "l", tail_lines=20)
        except errors.ApiError as exc:  # no node agent in this server (or the pod has not started)
            assert exc.code in (400, 404) and exc.message
        else:
            assert isinstance(text, str)


async def test_bad_token_and_unreachable_server(live_cluster: LiveCluster) -> None:
    with trio.fail_after(20):
        good = Endpoint.from_kubeconfig(live_cluster.kubeconfig)
        async with HttpClient(attrs.evolve(good, token="wrong")) as c:
            with pytest.raises(errors.Unauthorized):
                await c.list(c.kind("ConfigMap"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # bound, never listening: connections are refused
            async with HttpClient(attrs.evolve(good, server=f"https://127.0.0.1:{port}")) as c:
                with pytest.raises(TransportError) as info:
                    await c.get(c.kind("ConfigMap"), "default", "x")
                assert isinstance(info.value, OSError)
        async with HttpClient(
            attrs.evolve(good, ca_data=None)
        ) as c:  # the system CAs do not know this cluster
            with pytest.raises(TransportError):
                await c.list(c.kind("ConfigMap"))


@pytest.mark.parametrize(("status", "code", "cls"), [
    ({"kind": "Status", "reason": "NotFound", "code": 404, "message": "gone"}, 404, errors.NotFound),
    ({"kind": "Status", "reason": "Expired", "code": 410, "message": "too old"}, 410, errors.Gone),
    ({"kind": "Status", "reason": "Conflict", "code": 409, "message": "x"}, 409, errors.Conflict),
    ({"kind": "Status", "reason": "AlreadyExists", "code": 409, "message": "x"}, 409, errors.AlreadyExists),
    (None, 422, errors.Invalid),
    (None, 503, errors.ApiError),
], ids=["not-found", "expired", "conflict", "already-exists", "bare-422", "unknown-503"])
def test_api_error_mapping(status: dict[str, object] | None, code: int, cls: type[errors.ApiError]) -> None:
    err = api_error(status, code, "plain text")
    assert type(err) is cls and err.code == code


async def _hang_up(listener: trio.SSLListener[trio.SocketStream], accepted: list[int]) -> None:
    """A server of the cluster's certificate that reads the request and closes the connection without
    answering (one dying with the request in hand)."""
    while True:
        conn = await listener.accept()
        with trio.move_on_after(2):
            if await conn.receive_some(65536):
                accepted.append(1)
        await conn.aclose()


async def test_failover_between_servers(live_cluster: LiveCluster, ns: str) -> None:
    """A request that cannot connect goes to the next server; a GET whose connection broke is sent
    again there; a write whose connection broke is not (it may have been applied) but the client
    moves on, so the caller's retry reaches the live server."""
    good = Endpoint.from_kubeconfig(live_cluster.kubeconfig)
    with trio.fail_after(30):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            refused = f"https://127.0.0.1:{s.getsockname()[1]}"  # bound, never listening
            async with HttpClient(attrs.evolve(good, server=refused), servers=[good.server]) as c:
                rt = c.kind("ConfigMap")
                await c.create(rt, ns, cm("via-next"))  # could not connect: sent to the next at once
                assert c.url == good.server and c.servers == [refused, good.server]
                events = c.watch(rt, ns)
                assert (await anext(events))[0] == "ADDED"
                await events.aclose()  # type: ignore[attr-defined]
        tcp = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        pki = live_cluster.ca_cert.parent
        tls.load_cert_chain(pki / "apiserver.crt", pki / "apiserver.key")
        listener = trio.SSLListener(tcp, tls, https_compatible=True)
        hang_up = f"https://127.0.0.1:{tcp.socket.getsockname()[1]}"
        accepted: list[int] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_hang_up, listener, accepted)
            async with HttpClient(attrs.evolve(good, server=hang_up), servers=[good.server]) as c:
                rt = c.kind("ConfigMap")
                assert (await c.get(rt, ns, "via-next"))["metadata"]["name"] == "via-next"  # sent again
                assert c.url == good.server and len(accepted) == 1
                c.set_servers([hang_up, good.server])
                c._http.base_url = httpx.URL(hang_up)  # back on the dying server
                with pytest.raises(TransportError, match=r"POST .* at https://127\.0\.0\.1:"):
                    await c.create(rt, ns, cm("not-resent"))
                assert c.url == good.server and len(accepted) == 2  # not sent twice, but moved on
                await c.create(rt, ns, cm("not-resent"))  # the caller's retry
            nursery.cancel_scope.cancel()
        await listener.aclose()
        async with HttpClient(good) as alone:  # one server: nothing to fail over to
            assert alone.servers == [good.server]
            alone.set_servers([good.server])
            assert (await alone.get(alone.kind("ConfigMap"), ns, "not-resent"))["metadata"]["name"]
