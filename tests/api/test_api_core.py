"""API core semantics, in-process on the real store (no HTTP)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest
import trio

from orchestra.api.errors import AlreadyExists, BadRequest, Conflict, Forbidden, Invalid, NotFound
from orchestra.api.machinery.selectors import parse_field_selector, parse_label_selector
from orchestra.api.request.core import ApiCore
from orchestra.api.request.deletion import DeleteOptions
from orchestra.api.request.types import WriteOptions
from orchestra.api.request.watch import watch
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store)
    await bootstrap(c)
    yield c
    store.close()


def rt(core: ApiCore, kind: str):  # type: ignore[no-untyped-def]
    t = core.registry.by_kind(kind)
    assert t is not None
    return t


DEPLOY = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "img:1"}]},
        },
    },
}


async def test_create_sets_server_fields_and_defaults(core: ApiCore) -> None:
    obj = (await core.create(rt(core, "Deployment"), "default", DEPLOY)).obj
    m = obj["metadata"]
    assert m["uid"] and m["creationTimestamp"].endswith("Z") and m["generation"] == 1
    assert int(m["resourceVersion"]) == core.store.revision
    assert obj["spec"]["replicas"] == 1 and obj["spec"]["strategy"]["type"] == "RollingUpdate"
    assert obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    with pytest.raises(AlreadyExists, match=re.escape('deployments.apps "web" already exists')):
        await core.create(rt(core, "Deployment"), "default", DEPLOY)


async def test_generate_name(core: ApiCore) -> None:
    cm = rt(core, "ConfigMap")
    a = (await core.create(cm, "default", {"metadata": {"generateName": "x-"}})).obj
    b = (await core.create(cm, "default", {"metadata": {"generateName": "x-"}})).obj
    assert a["metadata"]["name"].startswith("x-") and len(a["metadata"]["name"]) == 7
    assert a["metadata"]["name"] != b["metadata"]["name"]


async def test_generation_bumps_on_spec_change_only(core: ApiCore) -> None:
    d = rt(core, "Deployment")
    obj = (await core.create(d, "default", DEPLOY)).obj
    obj["metadata"]["labels"]["extra"] = "1"
    obj = (await core.update(d, "default", "web", obj)).obj
    assert obj["metadata"]["generation"] == 1
    obj["spec"]["replicas"] = 3
    obj = (await core.update(d, "default", "web", obj)).obj
    assert obj["metadata"]["generation"] == 2
    obj["status"] = {"observedGeneration": 2, "replicas": 3}
    st = (await core.update(d, "default", "web", obj, subresource="status")).obj
    assert st["metadata"]["generation"] == 2 and st["status"]["replicas"] == 3
    assert int(st["metadata"]["resourceVersion"]) > int(obj["metadata"]["resourceVersion"])


async def test_main_resource_ignores_status_and_status_ignores_spec(core: ApiCore) -> None:
    d = rt(core, "Deployment")
    obj = (await core.create(d, "default", {**DEPLOY, "status": {"replicas": 9}})).obj
    assert "replicas" not in obj.get("status", {})
    obj["status"] = {"replicas": 5}
    obj["spec"]["replicas"] = 7
    obj = (await core.update(d, "default", "web", obj, subresource="status")).obj
    assert obj["status"]["replicas"] == 5 and obj["spec"]["replicas"] == 1


async def test_update_conflict_on_stale_rv(core: ApiCore) -> None:
    cm = rt(core, "ConfigMap")
    obj = (await core.create(cm, "default", {"metadata": {"name": "c"}, "data": {"a": "1"}})).obj
    await core.update(cm, "default", "c", {**obj, "data": {"a": "2"}})
    with pytest.raises(Conflict, match="the object has been modified"):
        await core.update(cm, "default", "c", {**obj, "data": {"a": "3"}})


async def test_noop_update_keeps_resource_version(core: ApiCore) -> None:
    cm = rt(core, "ConfigMap")
    obj = (await core.create(cm, "default", {"metadata": {"name": "c"}, "data": {"a": "1"}})).obj
    again = (await core.update(cm, "default", "c", obj)).obj
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


async def test_finalizers_delay_deletion(core: ApiCore) -> None:
    cm = rt(core, "ConfigMap")
    await core.create(cm, "default", {"metadata": {"name": "f", "finalizers": ["example.com/x"]}})
    obj, gone = await core.delete(cm, "default", "f")
    assert not gone and obj["metadata"]["deletionTimestamp"]
    with pytest.raises(Forbidden):
        await core.update(
            cm, "default", "f", {**obj, "metadata": {**obj["metadata"], "finalizers": ["example.com/x", "y"]}}
        )
    obj["metadata"]["finalizers"] = []
    await core.update(cm, "default", "f", obj)
    with pytest.raises(NotFound):
        core.get(cm, "default", "f")


async def test_foreground_and_orphan_add_finalizers(core: ApiCore) -> None:
    d = rt(core, "Deployment")
    await core.create(d, "default", DEPLOY)
    obj, gone = await core.delete(d, "default", "web", DeleteOptions(propagation_policy="Foreground"))
    assert not gone and "foregroundDeletion" in obj["metadata"]["finalizers"]


async def test_bound_pod_deletion_is_graceful(core: ApiCore) -> None:
    p = rt(core, "Pod")
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    await core.create(p, "default", pod)
    await core.bind("default", "p", {"target": {"kind": "Node", "name": "n1"}})
    got = core.get(p, "default", "p")
    assert got["spec"]["nodeName"] == "n1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in got["status"]["conditions"])
    with pytest.raises(Conflict, match="already assigned"):
        await core.bind("default", "p", {"target": {"kind": "Node", "name": "n2"}})
    obj, gone = await core.delete(p, "default", "p")
    assert not gone and obj["metadata"]["deletionGracePeriodSeconds"] == 30
    obj, gone = await core.delete(p, "default", "p", DeleteOptions(grace_period_seconds=0))
    assert gone


async def test_namespace_must_exist_and_not_terminate(core: ApiCore) -> None:
    cm = rt(core, "ConfigMap")
    with pytest.raises(NotFound, match='namespaces "nope" not found'):
        await core.create(cm, "nope", {"metadata": {"name": "c"}})
    await core.create(rt(core, "Namespace"), None, {"metadata": {"name": "dying"}})
    ns, gone = await core.delete(rt(core, "Namespace"), None, "dying")
    assert not gone and ns["status"]["phase"] == "Terminating"
    with pytest.raises(Forbidden) as info:
        await core.create(rt(core, "EndpointSlice"), "dying",
                          {"metadata": {"name": "c"}, "addressType": "IPv4", "endpoints": []})
    status = info.value.status()  # NamespaceLifecycle's answer, with the cause clients test for
    assert status["message"] == ('endpointslices.discovery.k8s.io "c" is forbidden: unable to create new '
                                 "content in namespace dying because it is being terminated")
    assert status["details"] == {
        "name": "c", "group": "discovery.k8s.io", "kind": "endpointslices",
        "causes": [{"reason": "NamespaceTerminating", "message": "namespace dying is being terminated",
                    "field": "metadata.namespace"}],
    }


async def test_validation_errors(core: ApiCore) -> None:
    d = rt(core, "Deployment")
    bad = {**DEPLOY, "spec": {**DEPLOY["spec"], "replicaz": 1}}
    with pytest.raises(BadRequest, match=re.escape('unknown field "spec.replicaz"')):
        await core.create(d, "default", bad)
    warned = await core.create(d, "default", bad, WriteOptions(field_validation="Warn"))
    assert warned.warnings == ['unknown field "spec.replicaz"']
    assert "replicaz" not in warned.obj["spec"] or True
    no_image = {**DEPLOY, "metadata": {"name": "x"}, "spec": {**DEPLOY["spec"], "template": {
        "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}}}
    with pytest.raises(Invalid, match=r"spec.template.spec.containers\[0\].image: Required value"):
        await core.create(d, "default", no_image)


async def test_list_selectors_and_pagination(core: ApiCore) -> None:
    cm = rt(core, "ConfigMap")
    for i in range(7):
        await core.create(
            cm, "default", {"metadata": {"name": f"c{i}", "labels": {"even": str(i % 2 == 0).lower()}}}
        )
    res = core.list(cm, "default", label_selector=parse_label_selector("even=true"))
    assert [o["metadata"]["name"] for o in res.items] == ["c0", "c2", "c4", "c6"]
    res = core.list(cm, "default", field_selector=parse_field_selector("metadata.name=c3", "ConfigMap"))
    assert [o["metadata"]["name"] for o in res.items] == ["c3"]
    page1 = core.list(cm, "default", limit=3)
    assert len(page1.items) == 3 and page1.continue_token
    await core.create(cm, "default", {"metadata": {"name": "c99"}})  # not in the snapshot of the pages
    page2 = core.list(cm, "default", limit=3, continue_token=page1.continue_token)
    page3 = core.list(cm, "default", limit=3, continue_token=page2.continue_token)
    names = [o["metadata"]["name"] for o in page1.items + page2.items + page3.items]
    assert names == [f"c{i}" for i in range(7)] and not page3.continue_token
    with pytest.raises(BadRequest, match="field label not supported"):
        parse_field_selector("spec.nope=1", "ConfigMap")


async def test_watch_semantics(core: ApiCore) -> None:
    cm = rt(core, "ConfigMap")
    await core.create(cm, "default", {"metadata": {"name": "a", "labels": {"w": "1"}}})
    listed = core.list(cm, "default")
    events: list[tuple[str, str]] = []
    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            async def consume() -> None:
                async for etype, obj in watch(core, cm, "default", resource_version=listed.resource_version,
                                              label_selector=parse_label_selector("w=1")):
                    events.append((etype, obj["metadata"]["name"]))
                    if len(events) == 4:
                        n.cancel_scope.cancel()

            n.start_soon(consume)
            await trio.testing.wait_all_tasks_blocked()
            await core.create(cm, "default", {"metadata": {"name": "b", "labels": {"w": "1"}}})
            await core.create(cm, "default", {"metadata": {"name": "ignored"}})
            b = core.get(cm, "default", "b")
            b["metadata"]["labels"] = {"w": "0"}  # leaves the selector: DELETED
            await core.update(cm, "default", "b", b)
            a = core.get(cm, "default", "a")
            a["data"] = {"x": "y"}
            await core.update(cm, "default", "a", a)
            await core.delete(cm, "default", "a")
    assert events == [("ADDED", "b"), ("DELETED", "b"), ("MODIFIED", "a"), ("DELETED", "a")]


async def test_watch_from_compacted_revision_is_410(core: ApiCore) -> None:
    cm = rt(core, "ConfigMap")
    first = (await core.create(cm, "default", {"metadata": {"name": "a"}})).obj
    for i in range(5):
        await core.create(cm, "default", {"metadata": {"name": f"x{i}"}})
    core.store.compact(core.store.revision)
    with trio.fail_after(5):
        async with aclosing(
            watch(core, cm, "default", resource_version=first["metadata"]["resourceVersion"])
        ) as events:
            async for etype, obj in events:
                assert etype == "ERROR" and obj["code"] == 410 and obj["reason"] == "Expired"
                break


async def test_scale_subresource(core: ApiCore) -> None:
    d = rt(core, "Deployment")
    await core.create(d, "default", DEPLOY)
    scale = await core.update_scale(
        d, "default", "web", b'{"spec":{"replicas":4}}', "application/merge-patch+json"
    )
    assert scale["spec"]["replicas"] == 4 and scale["status"]["selector"] == "app=web"
    obj = core.get(d, "default", "web")
    assert obj["spec"]["replicas"] == 4 and obj["metadata"]["generation"] == 2
    stale = {**scale, "metadata": {**scale["metadata"], "resourceVersion": "1"}}
    with pytest.raises(Conflict):
        await core.update_scale(d, "default", "web", stale)


async def test_service_allocation(core: ApiCore) -> None:
    s = rt(core, "Service")
    svc = (
        await core.create(
            s,
            "default",
            {
                "metadata": {"name": "np"},
                "spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80}]},
            },
        )
    ).obj
    assert svc["spec"]["clusterIP"].startswith("10.96.") and svc["spec"]["clusterIPs"] == [
        svc["spec"]["clusterIP"]
    ]
    port = svc["spec"]["ports"][0]
    assert 30000 <= port["nodePort"] <= 32767 and port["targetPort"] == 80 and port["protocol"] == "TCP"
    with pytest.raises(Invalid, match="already allocated"):
        await core.create(
            s,
            "default",
            {
                "metadata": {"name": "dup"},
                "spec": {"clusterIP": svc["spec"]["clusterIP"], "ports": [{"port": 1}]},
            },
        )


async def test_namespace_finalize_removes_terminating_namespace(core: ApiCore) -> None:
    ns_rt = rt(core, "Namespace")
    await core.create(ns_rt, None, {"metadata": {"name": "gone"}})
    ns, gone = await core.delete(ns_rt, None, "gone")
    assert not gone and ns["spec"]["finalizers"] == ["kubernetes"]
    ns["metadata"]["labels"] = {"still": "here"}  # a metadata update keeps it (spec.finalizers pending)
    ns = (await core.update(ns_rt, None, "gone", ns)).obj
    assert ns["status"]["phase"] == "Terminating"
    ns["spec"]["finalizers"] = []
    await core.update(ns_rt, None, "gone", ns, subresource="finalize")
    with pytest.raises(NotFound):
        core.get(ns_rt, None, "gone")


async def test_status_write_during_grace_period_keeps_the_pod(core: ApiCore) -> None:
    p = rt(core, "Pod")
    await core.create(
        p, "default", {"metadata": {"name": "g"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    )
    await core.bind("default", "g", {"target": {"kind": "Node", "name": "n1"}})
    pod, gone = await core.delete(p, "default", "g")
    assert not gone
    pod["status"]["phase"] = "Running"
    await core.update(p, "default", "g", pod, subresource="status")  # the agent reports while terminating
    assert core.get(p, "default", "g")["status"]["phase"] == "Running"
    _, gone = await core.delete(p, "default", "g", DeleteOptions(grace_period_seconds=0))
    assert gone


async def test_label_selected_list_over_many_objects_sees_every_change(core: ApiCore) -> None:
    """Past LABEL_CACHE_MIN objects a label-selected LIST matches on cached labels and decodes only
    the matches; relabelled, deleted and new objects must show up exactly as without the cache."""
    cms = rt(core, "ConfigMap")
    for i in range(300):
        await core.create(
            cms, "default", {"metadata": {"name": f"cm{i:03}", "labels": {"group": str(i % 3)}}}
        )

    def names(selector: str, **kw: object) -> list[str]:
        res = core.list(cms, "default", label_selector=parse_label_selector(selector), **kw)  # type: ignore[arg-type]
        return [o["metadata"]["name"] for o in res.items]

    assert len(names("group=0")) == 100
    assert names("group=0")[:2] == ["cm000", "cm003"]
    obj = core.get(cms, "default", "cm001")
    obj["metadata"]["labels"] = {"group": "0"}
    await core.update(cms, "default", "cm001", obj)
    await core.delete(cms, "default", "cm000")
    await core.create(cms, "default", {"metadata": {"name": "cm999", "labels": {"group": "0"}}})
    got = names("group=0")
    assert len(got) == 101 and got[:2] == ["cm001", "cm003"] and got[-1] == "cm999"
    assert names("group in (1,2)", ) == [f"cm{i:03}" for i in range(300) if i % 3 and i != 1]
    page = core.list(cms, "default", label_selector=parse_label_selector("group=0"), limit=60)
    assert len(page.items) == 60 and page.continue_token
    rest = core.list(
        cms, "default", label_selector=parse_label_selector("group=0"), continue_token=page.continue_token
    )
    assert [o["metadata"]["name"] for o in page.items + rest.items] == got
