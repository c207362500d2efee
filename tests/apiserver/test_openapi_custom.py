"""Custom resources in the OpenAPI documents: their definitions as apiextensions-apiserver's builder
makes them (kube's builder_test cases: v2's structural conversion, v3's unfolding, embedded resources,
selectable fields), their operations (no strategic merge patch, so kubectl apply sends a merge
patch), the v2 document (JSON and protobuf) and their group-version's v3 document, both following
the CRDs as they come, change and go, and staying put while only a CRD's status changes."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import attrs
import orjson
import pytest
import trio
import trio.testing

from orchestra.api.registry import BUILTIN, CustomKind, Registry, ResourceType, Subresource
from orchestra.api.request.core import ApiCore
from orchestra.api.request.schema import load_schema
from orchestra.apiserver.openapi import OpenApi
from orchestra.apiserver.openapi_crd import definition_name, definitions
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.reconcilers.crd import CRDController
from orchestra.store import Store
from tests.api.test_custom_resources import crd_rt, established, widget_crd
from tests.apiserver.test_openapi import _fields, _refs
from tests.apiserver.test_watch_http import serving

GVK = [{"group": "bar.k8s.io", "kind": "Foo", "version": "v1"}]
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def foo(schema: dict[str, Any] | None, *, version: str = "v1", preserve: bool = False,
        selectable: list[str] | None = None, uid: str = "u1",
        subresources: tuple[Subresource, ...] = ()) -> ResourceType:
    entry: dict[str, Any] = {"name": version, "served": True, "storage": True}
    if schema is not None:
        entry["schema"] = {"openAPIV3Schema": schema}
    if selectable:
        entry["selectableFields"] = [{"jsonPath": path} for path in selectable]
    kind = CustomKind(crd="foos.bar.k8s.io", uid=uid, storage_version=version, version=entry,
                      list_kind="FooList", preserve_unknown_fields=preserve)
    return ResourceType(group="bar.k8s.io", version=version, kind="Foo", plural="foos", singular="foo",
                        namespaced=True, subresources=subresources, custom=kind)


def without_type_meta(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with the apiVersion/kind/metadata properties the root and embedded resources get
    reduced to their type or reference (kube's builder tests wipe their descriptions the same way)."""
    out = copy.deepcopy(schema)
    props = out.get("properties") or {}
    embedded = out.get("x-kubernetes-group-version-kind") or out.get("x-kubernetes-embedded-resource")
    for name, sub in props.items():
        if embedded and name in ("apiVersion", "kind"):
            props[name] = {"type": sub["type"]}
        elif embedded and name == "metadata":
            props[name] = {"allOf": sub["allOf"]} if "allOf" in sub else {"$ref": sub["$ref"]}
        else:
            props[name] = without_type_meta(sub)
    return out


META = {"v2": {"$ref": f"#/definitions/{OBJECT_META}"},
        "v3": {"allOf": [{"$ref": f"#/components/schemas/{OBJECT_META}"}]}}
TYPE_META = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}}
BARE = {"type": "object", "x-kubernetes-group-version-kind": GVK}
INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]
IOS = {"x-kubernetes-int-or-string": True}
PRESERVE = {"x-kubernetes-preserve-unknown-fields": True}
EMBEDDED = {"x-kubernetes-embedded-resource": True}


def obj(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, **extra}


def root(flavor: str, props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What kube publishes for a root with these properties (apiVersion/kind/metadata reduced)."""
    meta = {**TYPE_META, "metadata": META[flavor]}
    return {**obj({**props, **meta}), "x-kubernetes-group-version-kind": GVK, **extra}


PROPS = {"spec": {"type": "object"}, "status": {"type": "object"}}
EXTENSIONS = {
    "int-or-string-1": {**IOS, "anyOf": INT_OR_STRING},
    "int-or-string-2": {**IOS, "allOf": [{"anyOf": INT_OR_STRING}, {"anyOf": [{"minimum": 42.0}]}]},
    "int-or-string-4": {**IOS, "anyOf": [{"minimum": 42.0}]},
    "int-or-string-6": IOS,
    "preserve-unknown-fields": PRESERVE,
    "embedded-object": {**EMBEDDED, **PRESERVE, "type": "object"},
}
INTS = [name for name in EXTENSIONS if name.startswith("int")]

CASES: list[tuple[str, dict[str, Any] | None, dict[str, Any], str, dict[str, Any]]] = [
    ("nil-v2", None, {}, "v2", BARE),
    ("nil-v3", None, {}, "v3", BARE),
    ("properties-v2", obj(PROPS), {}, "v2", root("v2", PROPS)),
    ("properties-v3", obj(PROPS), {}, "v3", root("v3", PROPS)),
    ("preserve-unknown-root-v2", {"type": "object", **PRESERVE}, {}, "v2", BARE),
    ("preserve-unknown-root-v3", {"type": "object", **PRESERVE}, {}, "v3", root("v3", {}, **PRESERVE)),
    ("spec-preserve-unknown-fields-v2", obj({"foo": {"type": "string"}}), {"preserve": True}, "v2", BARE),
    ("junctors-dropped-v2", obj({"foo": {"type": "string", "oneOf": [{"pattern": "a"}, {"pattern": "b"}]}}),
     {}, "v2", root("v2", {"foo": {"type": "string"}})),
    ("extensions-v2", obj(EXTENSIONS), {}, "v2", root("v2", {
        **{name: IOS for name in INTS}, "preserve-unknown-fields": PRESERVE,
        "embedded-object": {**EMBEDDED, **PRESERVE}})),
    ("extensions-unfolded-v3", obj({name: EXTENSIONS[name] for name in INTS}), {}, "v3", root("v3", {
        "int-or-string-1": EXTENSIONS["int-or-string-1"],
        "int-or-string-2": EXTENSIONS["int-or-string-2"],
        "int-or-string-4": {**EXTENSIONS["int-or-string-4"], "allOf": [{"anyOf": INT_OR_STRING}]},
        "int-or-string-6": {**IOS, "anyOf": INT_OR_STRING}})),
    ("embedded-resource-v3", obj({"template": obj({"spec": {"type": "object"}}, **EMBEDDED)}), {}, "v3",
     root("v3", {"template": obj({"spec": {"type": "object"}, **TYPE_META, "metadata": META["v3"]},
                                 **EMBEDDED, required=["kind", "apiVersion"])})),
    ("nullable-v2", obj({"a": obj({"x": {"type": "string"}}, nullable=True),
                         "b": {"type": "array", **PRESERVE, "items": {"type": "string"}}},
                        required=["a", "b"]),
     {}, "v2", root("v2", {"a": {}, "b": PRESERVE}, required=["b"])),
    ("nullable-v3", obj({"spec": {"type": "object", "nullable": True}}), {}, "v3",
     root("v3", {"spec": {"type": "object", "nullable": True}})),
    ("defaults-pruned-v2", obj({"spec": obj({"default": {"type": "string", "default": "foo"}})}), {}, "v2",
     root("v2", {"spec": obj({"default": {"type": "string"}})})),
    ("defaults-kept-v3", obj({"field": {"type": "string", "default": "foo"}}), {}, "v3",
     root("v3", {"field": {"type": "string", "default": "foo"}})),
    ("selectable-fields", obj({"spec": obj({"field": {"type": "string"}})}), {"selectable": [".spec.field"]},
     "v3", root("v3", {"spec": obj({"field": {"type": "string"}})},
                **{"x-kubernetes-selectable-fields": [{"fieldPath": "spec.field"}]})),
    ("outside-the-structural-model-dropped", obj({"spec": {
        "type": "object", "example": {"a": 1}, "description": "", "nullable": False,
        "x-kubernetes-preserve-unknown-fields": False}}), {}, "v3", root("v3", {"spec": {"type": "object"}})),
]


@pytest.mark.parametrize(("schema", "options", "flavor", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_custom_definitions_as_kube_builds_them(schema: dict[str, Any] | None, options: dict[str, Any],
                                                flavor: Any, expected: dict[str, Any]) -> None:
    rt = foo(schema, **options)
    got = definitions(rt, flavor)
    assert list(got) == ["io.k8s.bar.v1.Foo", "io.k8s.bar.v1.FooList"]
    assert without_type_meta(got["io.k8s.bar.v1.Foo"]) == expected
    items = got["io.k8s.bar.v1.FooList"]["properties"]["items"]["items"]
    prefix = "#/definitions/" if flavor == "v2" else "#/components/schemas/"
    assert items == {"$ref": prefix + "io.k8s.bar.v1.Foo"}
    assert got["io.k8s.bar.v1.FooList"]["x-kubernetes-group-version-kind"] == [
        {"group": "bar.k8s.io", "kind": "FooList", "version": "v1"}]


def test_the_crd_schema_is_not_changed() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "default": 1, "nullable": True}}}
    before = copy.deepcopy(schema)
    definitions(foo(schema), "v2")
    definitions(foo(schema), "v3")
    assert schema == before


@pytest.mark.parametrize(("group", "kind", "expected"), [
    ("example.com", "Widget", "com.example.v1.Widget"),
    ("stable.example.co.uk", "CronTab", "uk.co.example.stable.v1.CronTab"),
], ids=["two-labels", "four-labels"])
def test_definition_names(group: str, kind: str, expected: str) -> None:
    rt = ResourceType(group=group, version="v1", kind=kind, plural="xs", singular="x", namespaced=True)
    assert definition_name(rt) == expected


SCHEMA = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "size": {"type": "integer", "description": "How big.", "externalDocs": {"url": "https://example.com"}},
}}}}


def test_documents_carry_custom_kinds_with_kube_operations() -> None:
    registry = Registry(BUILTIN)
    api = OpenApi(registry, load_schema())
    scale = Subresource("scale", "Scale", group="autoscaling", version="v1")
    registry.set_custom("foos.bar.k8s.io", [foo(SCHEMA, subresources=(scale,))])
    assert "apis/bar.k8s.io/v1" in api.group_versions()
    v3 = api.v3("apis/bar.k8s.io/v1").doc
    assert v3["info"] == {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"}
    schemas = v3["components"]["schemas"]
    assert {"io.k8s.bar.v1.Foo", "io.k8s.bar.v1.FooList", OBJECT_META,
            "io.k8s.api.autoscaling.v1.Scale"} <= set(schemas)
    for ref in _refs(v3):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    item = "/apis/bar.k8s.io/v1/namespaces/{namespace}/foos/{name}"
    patch = v3["paths"][item]["patch"]
    assert patch["operationId"] == "patchBarV1NamespacedFoo"
    assert list(patch["requestBody"]["content"]) == [
        "application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert v3["paths"][item]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/io.k8s.bar.v1.Foo"}
    v2 = api.v2().doc
    assert v2["paths"][item]["patch"]["consumes"] == [
        "application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
    assert v2["paths"][item]["put"]["produces"] == ["application/json", "application/yaml"]
    assert v2["definitions"]["io.k8s.bar.v1.Foo"]["properties"]["spec"]["properties"]["size"][
        "externalDocs"] == {"url": "https://example.com"}
    assert b"io.k8s.bar.v1.Foo" in api.v2().protobuf  # every field of it has a protobuf encoding
    # the built-in kinds keep theirs
    assert "application/strategic-merge-patch+json" in v2["paths"][
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]["consumes"]
    assert v2["paths"]["/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"]["get"][
        "operationId"] == "readApiextensionsV1CustomResourceDefinition"


@pytest.mark.parametrize(("group", "version", "expected"), [
    ("bar.k8s.io", "v1", "patchBarV1NamespacedFoo"),
    ("cert-manager.io", "v1", "patchCertManagerIoV1NamespacedFoo"),
    ("stable.example.com", "v1beta1", "patchStableExampleComV1beta1NamespacedFoo"),
], ids=["k8s-io-trimmed", "hyphen", "dots"])
def test_operation_ids_as_kube_openapi_makes_them(group: str, version: str, expected: str) -> None:
    registry = Registry(BUILTIN)
    registry.set_custom(f"foos.{group}", [attrs.evolve(foo(SCHEMA, version=version), group=group)])
    doc = OpenApi(registry, load_schema()).v3(f"apis/{group}/{version}").doc
    patch = doc["paths"][f"/apis/{group}/{version}/namespaces/{{namespace}}/foos/{{name}}"]["patch"]
    assert patch["operationId"] == expected


def test_documents_follow_the_crds_and_not_their_status() -> None:
    registry = Registry(BUILTIN)
    api = OpenApi(registry, load_schema())
    apps, v2 = api.v3("apis/apps/v1"), api.v2()
    registry.set_custom("foos.bar.k8s.io", [foo(SCHEMA)])
    first = api.v3("apis/bar.k8s.io/v1")
    assert api.v2() is not v2 and "io.k8s.bar.v1.Foo" in api.v2().doc["definitions"]
    v2 = api.v2()
    registry.set_custom("foos.bar.k8s.io", [foo(SCHEMA)])  # a status write: the same kinds again
    assert api.v3("apis/bar.k8s.io/v1") is first and api.v2() is v2
    changed = copy.deepcopy(SCHEMA)
    changed["properties"]["spec"]["properties"]["color"] = {"type": "string"}
    registry.set_custom("foos.bar.k8s.io", [foo(changed)])
    again = api.v3("apis/bar.k8s.io/v1")
    assert again is not first and "color" in again.doc["components"]["schemas"]["io.k8s.bar.v1.Foo"][
        "properties"]["spec"]["properties"]
    assert api.v3("apis/apps/v1") is apps  # the built-in documents are kept throughout
    registry.remove_custom("foos.bar.k8s.io")
    assert "apis/bar.k8s.io/v1" not in api.group_versions()
    assert "io.k8s.bar.v1.Foo" not in api.v2().doc["definitions"]
    with pytest.raises(KeyError):
        api.v3("apis/bar.k8s.io/v1")


def test_v2_protobuf_carries_the_custom_definition() -> None:
    registry = Registry(BUILTIN)
    api = OpenApi(registry, load_schema())
    registry.set_custom("foos.bar.k8s.io", [foo(SCHEMA)])
    top = {n: v for n, _, v in _fields(api.v2().protobuf)}
    named = [dict((a, b) for a, _, b in _fields(v)) for _, _, v in _fields(top[9])]
    schema = next(n[2] for n in named if n[1] == b"io.k8s.bar.v1.Foo")
    properties = next(v for n, _, v in _fields(schema) if n == 25)
    names = [dict((a, b) for a, _, b in _fields(v))[1] for _, _, v in _fields(properties)]
    assert sorted(names) == [b"apiVersion", b"kind", b"metadata", b"spec"]


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


async def test_served_as_crds_come_and_go(core: ApiCore) -> None:
    with trio.fail_after(20):
        async with serving(core) as served:
            index = served.connect("memory")
            assert await index.request("/openapi/v3") == 200
            assert "apis/example.com/v1" not in (await index.read_body())["paths"]
            await established(core, widget_crd())
            index = served.connect("memory")
            assert await index.request("/openapi/v3") == 200
            url = (await index.read_body())["paths"]["apis/example.com/v1"]["serverRelativeURL"]
            doc = served.connect("memory")
            assert await doc.request(url) == 200
            widget = (await doc.read_body())["components"]["schemas"]["com.example.v1.Widget"]
            assert widget["x-kubernetes-group-version-kind"] == [
                {"group": "example.com", "kind": "Widget", "version": "v1"}]
            assert widget["properties"]["spec"]["properties"]["color"]["enum"] == ["red", "blue"]
            v2 = served.connect("memory")
            assert await v2.request("/openapi/v2") == 200
            assert "com.example.v1.Widget" in (await v2.read_body())["definitions"]
            await core.delete(crd_rt(core), None, "widgets.example.com")
            await trio.testing.wait_all_tasks_blocked()  # the CRD controller removed it
            assert core.registry.by_kind("Widget") is None
            gone = served.connect("memory")
            assert await gone.request(url) == 404
            v2 = served.connect("memory")
            assert await v2.request("/openapi/v2") == 200
            assert "com.example.v1.Widget" not in orjson.dumps((await v2.read_body())["definitions"]).decode()
