"""Watch-list requests over HTTP (client-go's `sendInitialEvents=true&resourceVersionMatch=NotOlderThan
&allowWatchBookmarks=true`): accepted for every kind, with selectors and as Tables, and answered with
the state, then the BOOKMARK annotated k8s.io/initial-events-end; the options kube refuses are 422."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store
from tests.apiserver.test_watch_http import serving

WATCH_LIST = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store)
    await bootstrap(c)
    cm = c.registry.by_kind("ConfigMap")
    assert cm is not None
    for name, tier in (("a", "x"), ("b", "y")):
        await c.create(cm, "default", {"metadata": {"name": name, "labels": {"tier": tier}}})
    yield c
    store.close()


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/api/v1/namespaces/default/configmaps", ["a", "b"]),
        ("/api/v1/namespaces/default/configmaps?labelSelector=tier%3Dx", ["a"]),
        ("/api/v1/namespaces", ["default", "kube-node-lease", "kube-public", "kube-system"]),
        ("/apis/apps/v1/deployments", []),
    ],
    ids=["configmaps", "label-selector", "cluster-scoped", "empty"],
)
async def test_watch_list_ends_its_initial_events_with_the_annotated_bookmark(
        core: ApiCore, path: str, names: list[str]) -> None:
    sep = "&" if "?" in path else "?"
    with trio.fail_after(10):
        async with serving(core) as served:
            client = served.connect("memory")
            assert await client.request(f"{path}{sep}{WATCH_LIST}") == 200
            events = await client.read_lines(len(names) + 1)
    initial, end = events[:-1], events[-1]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in initial] == [("ADDED", n) for n in names]
    assert end["type"] == "BOOKMARK"
    assert end["object"]["metadata"] == {"resourceVersion": str(core.store.revision),
                                         "annotations": {"k8s.io/initial-events-end": "true"}}


async def test_watch_list_as_a_table_converts_the_bookmark_too(core: ApiCore) -> None:
    with trio.fail_after(10):
        async with serving(core) as served:
            client = served.connect("memory")
            target = f"/api/v1/namespaces/default/configmaps?labelSelector=tier%3Dx&{WATCH_LIST}"
            assert await client.request(target, accept=TABLE) == 200
            added, end = await client.read_lines(2)
    assert added["type"] == "ADDED" and added["object"]["kind"] == "Table"
    assert added["object"]["rows"][0]["cells"][0] == "a" and added["object"]["columnDefinitions"]
    assert end["type"] == "BOOKMARK" and end["object"]["kind"] == "Table"
    row_meta = end["object"]["rows"][0]["object"]["metadata"]
    assert row_meta["annotations"] == {"k8s.io/initial-events-end": "true"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("watch=true&sendInitialEvents=true",
         "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to "
         "NotOlderThan"),
        ("sendInitialEvents=true", "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"),
    ],
    ids=["watch-without-match", "list"],
)
async def test_refused_combinations_are_422(core: ApiCore, query: str, message: str) -> None:
    with trio.fail_after(10):
        async with serving(core) as served:
            client = served.connect("memory")
            assert await client.request(f"/api/v1/namespaces/default/configmaps?{query}") == 422
            body = await client.read_body()
    assert message in body["message"]


HPA_V2 = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web"},
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
             "maxReplicas": 4,
             "metrics": [{"type": "Resource", "resource": {
                 "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]},
}


@pytest.mark.parametrize(("version", "accept"), [("v2", ""), ("v1", ""), ("v1", TABLE)],
                         ids=["v2", "v1-served-not-stored", "v1-table"])
async def test_watch_list_of_a_kind_served_at_another_version(core: ApiCore, version: str,
                                                              accept: str) -> None:
    """autoscaling/v1 HPAs are stored as v2: the initial events and the end bookmark are v1's."""
    rt = core.registry.by_path("autoscaling", "v2", "horizontalpodautoscalers")
    assert rt is not None
    await core.create(rt, "default", HPA_V2)
    path = f"/apis/autoscaling/{version}/namespaces/default/horizontalpodautoscalers?{WATCH_LIST}"
    with trio.fail_after(10):
        async with serving(core) as served:
            client = served.connect("memory")
            assert await client.request(path, accept=accept or "application/json") == 200
            added, end = await client.read_lines(2)
    assert (added["type"], end["type"]) == ("ADDED", "BOOKMARK")
    if accept:  # Tables (rows carry PartialObjectMetadata): kube's `get hpa` columns, read from v1
        assert added["object"]["kind"] == end["object"]["kind"] == "Table"
        assert added["object"]["rows"][0]["cells"][:3] == ["web", "Deployment/web", "cpu: <unknown>/60%"]
        end_meta = end["object"]["rows"][0]["object"]["metadata"]
        assert end_meta["annotations"] == {"k8s.io/initial-events-end": "true"}
        return
    obj, end_obj = added["object"], end["object"]
    assert obj["apiVersion"] == end_obj["apiVersion"] == f"autoscaling/{version}"
    if version == "v1":
        assert obj["spec"]["targetCPUUtilizationPercentage"] == 60
        assert "metrics" not in obj["spec"]
    else:
        assert obj["spec"]["metrics"] == HPA_V2["spec"]["metrics"]
    assert end_obj["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
