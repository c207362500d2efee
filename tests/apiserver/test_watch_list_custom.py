"""Watch-list streams of custom resources over HTTP: the initial events at the version asked for
(a CRD's served version other than its storage one), filtered by its selectable fields, as Tables
with its printer columns, and the BOOKMARK annotated k8s.io/initial-events-end in that version."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator

import pytest
import trio

from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.reconcilers.crd import CRDController
from orchestra.store import Store
from tests.api.test_custom_resources import established, widget, widget_crd
from tests.apiserver.test_watch_http import serving

WATCH_LIST = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store)
    await bootstrap(c)
    async with trio.open_nursery() as nursery:
        await nursery.start(CRDController(LocalClient(c)).run)
        crd = widget_crd()
        beta = copy.deepcopy(crd["spec"]["versions"][0])
        beta.update(name="v1beta1", storage=False)
        crd["spec"]["versions"].append(beta)
        rt = await established(c, crd)
        for name, color in (("a", "red"), ("b", "blue"), ("c", "red")):
            await c.create(rt, "default", widget(name, color=color))
        yield c
        nursery.cancel_scope.cancel()
    store.close()


@pytest.mark.parametrize(("version", "selector", "names"), [
    ("v1", "", ["a", "b", "c"]),
    ("v1beta1", "", ["a", "b", "c"]),
    ("v1beta1", "&fieldSelector=spec.color%3Dred", ["a", "c"]),
], ids=["storage-version", "other-version", "selectable-field"])
async def test_watch_list_of_custom_resources(core: ApiCore, version: str, selector: str,
                                              names: list[str]) -> None:
    path = f"/apis/example.com/{version}/namespaces/default/widgets?{WATCH_LIST}{selector}"
    with trio.fail_after(10):
        async with serving(core) as served:
            client = served.connect("memory")
            assert await client.request(path) == 200
            events = await client.read_lines(len(names) + 1)
    initial, end = events[:-1], events[-1]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in initial] == [("ADDED", n) for n in names]
    assert {e["object"]["apiVersion"] for e in initial} == {f"example.com/{version}"}
    assert all(e["object"]["spec"]["replicas"] == 1 for e in initial)  # read through the schema's defaults
    assert end["type"] == "BOOKMARK"
    assert (end["object"]["kind"], end["object"]["apiVersion"]) == ("Widget", f"example.com/{version}")
    assert end["object"]["metadata"] == {"resourceVersion": str(core.store.revision),
                                         "annotations": {"k8s.io/initial-events-end": "true"}}


async def test_watch_list_of_custom_resources_as_tables(core: ApiCore) -> None:
    path = (f"/apis/example.com/v1beta1/namespaces/default/widgets?{WATCH_LIST}"
            "&fieldSelector=spec.color%3Dblue")
    with trio.fail_after(10):
        async with serving(core) as served:
            client = served.connect("memory")
            assert await client.request(path, accept=TABLE) == 200
            added, end = await client.read_lines(2)
    assert added["object"]["kind"] == "Table"
    assert [c["name"] for c in added["object"]["columnDefinitions"]] == ["Name", "Color", "Replicas"]
    assert added["object"]["rows"][0]["cells"] == ["b", "blue", 1]
    assert end["type"] == "BOOKMARK" and end["object"]["kind"] == "Table"
    assert end["object"]["rows"][0]["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"}


async def test_a_selector_on_a_field_that_is_not_selectable_is_400(core: ApiCore) -> None:
    path = f"/apis/example.com/v1/namespaces/default/widgets?{WATCH_LIST}&fieldSelector=spec.replicas%3D1"
    with trio.fail_after(10):
        async with serving(core) as served:
            client = served.connect("memory")
            assert await client.request(path) == 400
            body = await client.read_body()
    assert body["message"] == 'field label not supported: spec.replicas'
