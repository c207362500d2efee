"""Custom resources in the API core, in-process on the real store with the CRD controller running:
the live registry, writes through the CRD's schema, versions, subresources, watch, patches,
selectors, tables and CRD deletion."""

from __future__ import annotations

import copy
import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import trio
import trio.testing

from orchestra.api import tables
from orchestra.api.errors import BadRequest, Invalid, MethodNotAllowed, NotFound, UnsupportedMediaType
from orchestra.api.machinery.selectors import parse_label_selector
from orchestra.api.registry import ResourceType
from orchestra.api.request.core import ApiCore
from orchestra.api.request.custom import field_selector
from orchestra.api.request.types import WriteOptions
from orchestra.api.request.watch import watch
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.reconcilers.crd import CRDController
from orchestra.store import Store

Obj = dict[str, Any]


def widget_crd(**version: Any) -> Obj:
    v1 = {
        "name": "v1",
        "served": True,
        "storage": True,
        "subresources": {
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector",
            },
        },
        "additionalPrinterColumns": [
            {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        ],
        "selectableFields": [{"jsonPath": ".spec.color"}],
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "required": ["color"],
                        "properties": {
                            "color": {"type": "string", "enum": ["red", "blue"]},
                            "replicas": {"type": "integer", "default": 1, "minimum": 0},
                            "ports": {
                                "type": "array",
                                "x-kubernetes-list-type": "map",
                                "x-kubernetes-list-map-keys": ["name"],
                                "items": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                                },
                            },
                        },
                        "x-kubernetes-validations": [
                            {"rule": "self.replicas <= 10", "message": "at most 10 replicas"}
                        ],
                    },
                    "status": {
                        "type": "object",
                        "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}},
                    },
                },
            }
        },
        **version,
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
            "versions": [v1],
        },
    }


def widget(name: str = "w1", **spec: Any) -> Obj:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"color": "red", **spec}}


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store)
    await bootstrap(c)
    async with trio.open_nursery() as nursery:
        await nursery.start(CRDController(LocalClient(c)).run)
        yield c
        nursery.cancel_scope.cancel()
    store.close()


def crd_rt(core: ApiCore) -> ResourceType:
    rt = core.registry.by_kind("CustomResourceDefinition")
    assert rt is not None
    return rt


async def established(core: ApiCore, crd: Obj, kind: str = "Widget") -> ResourceType:
    await core.create(crd_rt(core), None, crd)
    with trio.fail_after(5):
        await trio.testing.wait_all_tasks_blocked()  # the CRD controller named and established it
    rt = core.registry.by_kind(kind)
    assert rt is not None
    return rt


async def test_crd_status_and_registry(core: ApiCore) -> None:
    assert core.registry.resolve("wd") is None
    rt = await established(core, widget_crd())
    crd = core.get(crd_rt(core), None, "widgets.example.com")
    conds = {c["type"]: (c["status"], c["reason"]) for c in crd["status"]["conditions"]}
    assert conds == {
        "NamesAccepted": ("True", "NoConflicts"),
        "Established": ("True", "InitialNamesAccepted"),
    }
    assert crd["status"]["acceptedNames"]["shortNames"] == ["wd"]
    assert crd["status"]["storedVersions"] == ["v1"]
    assert core.registry.resolve("wd") is rt and core.registry.by_path("example.com", "v1", "widgets") is rt
    assert rt.namespaced and rt.has_subresource("status") and rt.has_subresource("scale")


async def test_names_conflicting_with_another_crd_are_not_accepted(core: ApiCore) -> None:
    await established(core, widget_crd())
    other = widget_crd()
    other["metadata"]["name"] = "gizmos.example.com"
    other["spec"]["names"] = {"plural": "gizmos", "kind": "Widget"}
    await core.create(crd_rt(core), None, other)
    with trio.fail_after(5):
        await trio.testing.wait_all_tasks_blocked()
    got = core.get(crd_rt(core), None, "gizmos.example.com")
    conds = {c["type"]: c for c in got["status"]["conditions"]}
    assert (
        conds["NamesAccepted"]["status"],
        conds["NamesAccepted"]["reason"],
        conds["NamesAccepted"]["message"],
    ) == ("False", "ListKindConflict", '"WidgetList" is already in use')
    assert conds["Established"]["status"] == "False"
    assert core.registry.by_plural("example.com", "gizmos") is None


async def test_create_defaults_prunes_and_validates(core: ApiCore) -> None:
    rt = await established(core, widget_crd())
    res = await core.create(rt, "default", {**widget(junk=1), "status": {"replicas": 5}},
                            WriteOptions(field_validation="Warn"))
    assert res.obj["spec"] == {"color": "red", "replicas": 1}
    assert "status" not in res.obj and res.obj["metadata"]["generation"] == 1
    assert res.warnings == ['unknown field "spec.junk"']
    with pytest.raises(BadRequest, match=re.escape('strict decoding error: unknown field "spec.junk"')):
        await core.create(rt, "default", widget("w2", junk=1), WriteOptions(field_validation="Strict"))
    with pytest.raises(Invalid) as err:
        await core.create(rt, "default", widget("w3", replicas=11))
    assert (
        err.value.message
        == 'Widget.example.com "w3" is invalid: spec: Invalid value: "object": at most 10 replicas'
    )
    with pytest.raises(Invalid) as err:
        await core.create(rt, "default", widget("w4", ports=[{"name": "a"}, {"name": "a"}]))
    assert [c.field for c in err.value.causes] == ["spec.ports[1]"]
    assert core.list(rt, "default").items[0]["metadata"]["name"] == "w1"


async def test_update_is_not_create_and_bumps_generation_on_spec_only(core: ApiCore) -> None:
    rt = await established(core, widget_crd())
    with pytest.raises(NotFound):
        await core.update(rt, "default", "nope", widget("nope"))
    obj = (await core.create(rt, "default", widget())).obj
    with pytest.raises(
        Invalid, match=re.escape("metadata.resourceVersion: Invalid value: 0x0: must be specified")
    ):
        await core.update(rt, "default", "w1", widget())  # no unconditional update of a custom resource
    labelled = copy.deepcopy(obj)
    labelled["metadata"]["labels"] = {"a": "b"}
    obj = (await core.update(rt, "default", "w1", labelled)).obj
    assert obj["metadata"]["generation"] == 1
    obj["spec"]["color"] = "blue"
    obj["status"] = {"replicas": 9}
    obj = (await core.update(rt, "default", "w1", obj)).obj
    assert obj["metadata"]["generation"] == 2 and "status" not in obj


async def test_status_subresource_writes_status_only(core: ApiCore) -> None:
    rt = await established(core, widget_crd())
    obj = (await core.create(rt, "default", widget())).obj
    obj["spec"]["color"] = "blue"
    obj["status"] = {"replicas": 2}
    out = (await core.update(rt, "default", "w1", obj, subresource="status")).obj
    assert out["spec"]["color"] == "red" and out["status"] == {"replicas": 2}
    assert out["metadata"]["generation"] == 1
    with pytest.raises(Invalid) as err:
        await core.patch(rt, "default", "w1", "application/merge-patch+json",
                         orjson.dumps({"status": {"replicas": "x"}}), subresource="status")
    # the schema, the scale path and kube's note that CEL was not run
    assert [c.field for c in err.value.causes] == ["status.replicas", ".status.replicas", "<nil>"]


async def test_scale_subresource(core: ApiCore) -> None:
    rt = await established(core, widget_crd())
    await core.create(rt, "default", widget())
    await core.patch(rt, "default", "w1", "application/merge-patch+json",
                     orjson.dumps({"status": {"replicas": 1, "selector": "app=w"}}), subresource="status")
    scale = core.get_scale(rt, "default", "w1")
    assert scale["spec"] == {"replicas": 1} and scale["status"] == {"replicas": 1, "selector": "app=w"}
    out = await core.update_scale(rt, "default", "w1", {**scale, "spec": {"replicas": 4}})
    assert out["spec"]["replicas"] == 4
    assert core.get(rt, "default", "w1")["spec"]["replicas"] == 4


async def test_patches(core: ApiCore) -> None:
    rt = await established(core, widget_crd())
    await core.create(rt, "default", widget(ports=[{"name": "http", "port": 80}]))
    merged = await core.patch(rt, "default", "w1", "application/merge-patch+json",
                              orjson.dumps({"spec": {"color": "blue"}}))
    assert merged.obj["spec"]["color"] == "blue"
    jp = await core.patch(rt, "default", "w1", "application/json-patch+json",
                          orjson.dumps([{"op": "replace", "path": "/spec/replicas", "value": 3}]))
    assert jp.obj["spec"]["replicas"] == 3
    with pytest.raises(UnsupportedMediaType):
        await core.patch(rt, "default", "w1", "application/strategic-merge-patch+json", b"{}")
    config = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"},
              "spec": {"color": "blue", "ports": [{"name": "https", "port": 443}]}}
    applied = await core.patch(rt, "default", "w1", "application/apply-patch+yaml", orjson.dumps(config),
                               WriteOptions(field_manager="me", force=True))
    ports = applied.obj["spec"]["ports"]
    assert ports == [{"name": "http", "port": 80}, {"name": "https", "port": 443}]  # merged by the map key


async def test_selectors_and_watch(core: ApiCore) -> None:
    rt = await established(core, widget_crd())
    await core.create(rt, "default", {**widget("a"), "metadata": {"name": "a", "labels": {"tier": "x"}}})
    await core.create(rt, "default", widget("b", color="blue"))
    assert [o["metadata"]["name"] for o in core.list(rt, "default", field_selector=field_selector(
        rt, "spec.color=blue")).items] == ["b"]
    assert [o["metadata"]["name"] for o in core.list(rt, "default", label_selector=parse_label_selector(
        "tier=x")).items] == ["a"]
    with pytest.raises(BadRequest, match=re.escape("field label not supported: spec.replicas")):
        field_selector(rt, "spec.replicas=1")
    with trio.fail_after(5):
        async with aclosing(watch(core, rt, "default", resource_version="0")) as events:
            seen = [await anext(events), await anext(events)]
            await core.delete(rt, "default", "a")
            seen.append(await anext(events))
    assert [(t, o["metadata"]["name"], o["apiVersion"]) for t, o in seen] == [
        ("ADDED", "a", "example.com/v1"),
        ("ADDED", "b", "example.com/v1"),
        ("DELETED", "a", "example.com/v1"),
    ]


async def test_table_columns(core: ApiCore) -> None:
    rt = await established(core, widget_crd())
    obj = (await core.create(rt, "default", widget())).obj
    t = tables.table(rt, [obj], now=datetime.now(UTC))
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Color", "Replicas"]
    assert t["rows"][0]["cells"] == ["w1", "red", 1]


async def test_versions_convert_with_strategy_none_and_warn_when_deprecated(core: ApiCore) -> None:
    crd = widget_crd()
    v1beta1 = copy.deepcopy(crd["spec"]["versions"][0])
    v1beta1.update(name="v1beta1", storage=False, deprecated=True)
    crd["spec"]["versions"].append(v1beta1)
    await established(core, crd)
    beta = core.registry.by_path("example.com", "v1beta1", "widgets")
    assert beta is not None and beta.custom is not None
    assert beta.custom.warning == "example.com/v1beta1 Widget is deprecated; use example.com/v1 Widget"
    created = (await core.create(beta, "default", {**widget(), "apiVersion": "example.com/v1beta1"})).obj
    assert created["apiVersion"] == "example.com/v1beta1"
    v1 = core.registry.by_path("example.com", "v1", "widgets")
    assert v1 is not None and core.get(v1, "default", "w1")["apiVersion"] == "example.com/v1"
    assert core.registry.by_plural("example.com", "widgets") is v1  # the preferred version


async def test_deleting_the_crd_deletes_its_resources(core: ApiCore) -> None:
    rt = await established(core, widget_crd())
    await core.create(rt, "default", widget("a"))
    await core.create(rt, "default", widget("b"))
    obj, gone = await core.delete(crd_rt(core), None, "widgets.example.com")
    assert not gone and "customresourcecleanup.apiextensions.k8s.io" in obj["metadata"]["finalizers"]
    terminating = core.registry.by_kind("Widget")
    assert terminating is not None
    with pytest.raises(
        MethodNotAllowed, match="create not allowed while custom resource definition is terminating"
    ):
        await core.create(terminating, "default", widget("c"))
    with trio.fail_after(10):
        while True:
            try:
                core.get(crd_rt(core), None, "widgets.example.com")
            except NotFound:
                break
            await trio.sleep(0.01)
    assert core.registry.by_kind("Widget") is None
    assert core.store.range(rt.key_prefix())[0] == []


async def test_crds_and_custom_resources_survive_a_restart(tmp_path: Any) -> None:
    """On the durable store: a new core over the reopened directory serves the kind at once."""
    with trio.fail_after(30):
        store = Store.open_durable(tmp_path / "store", fsync="never")
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            core = ApiCore(store)
            await bootstrap(core)
            await nursery.start(CRDController(LocalClient(core)).run)
            rt = await established(core, widget_crd())
            await core.create(rt, "default", widget("kept"))
            nursery.cancel_scope.cancel()
        store.close()
        again = Store.open_durable(tmp_path / "store", fsync="never")
        core = ApiCore(again)
        rt2 = core.registry.by_kind("Widget")
        assert rt2 is not None
        assert core.get(rt2, "default", "kept")["spec"] == {"color": "red", "replicas": 1}
        again.close()


async def test_bad_crd_writes_are_422_and_store_nothing(core: ApiCore) -> None:
    await established(core, widget_crd())
    before = core.get(crd_rt(core), None, "widgets.example.com")
    dropped = copy.deepcopy(before)
    dropped["spec"]["versions"][0]["name"] = "v2"  # the stored version v1 would vanish
    with pytest.raises(Invalid) as err:
        await core.update(crd_rt(core), None, "widgets.example.com", dropped)
    assert 'status.storedVersions[0]: Invalid value: "v1": must appear in spec.versions' in err.value.message
    assert core.get(crd_rt(core), None, "widgets.example.com") == before
    broken = widget_crd()
    broken["metadata"]["name"] = "gadgets.example.com"
    broken["spec"]["names"] = {"plural": "gadgets", "kind": "Gadget"}
    spec = broken["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["x-kubernetes-validations"] = [{"rule": "self.replicas >"}]
    with pytest.raises(Invalid) as err:
        await core.create(crd_rt(core), None, broken)
    assert [c.field for c in err.value.causes] == [
        "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"]
    with pytest.raises(NotFound):
        core.get(crd_rt(core), None, "gadgets.example.com")
