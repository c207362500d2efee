"""The OpenAPI documents: the package's definitions converted to kube's forms, every served kind
published in its group-version's v3 document and in v2 with everything it refers to, the protobuf form
of v2 carrying the same document, and kube-openapi's ETag / ?hash= / If-None-Match handling."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import trio

from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.api.request.core import ApiCore
from orchestra.api.request.schema import load_schema
from orchestra.apiserver.openapi import OpenApi, etag
from orchestra.apiserver.openapi_schemas import convert, convert_definition
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store
from tests.apiserver.test_watch_http import serving

DEFS = "#/$defs/io.k8s.api.core.v1."

CONVERSIONS = [
    ("nullable-type", {"type": ["string", "null"], "description": "d"}, "v3",
     {"type": "string", "description": "d"}),
    ("ref-v2-keeps-siblings", {"$ref": DEFS + "PodSpec", "description": "d"}, "v2",
     {"$ref": "#/definitions/io.k8s.api.core.v1.PodSpec", "description": "d"}),
    ("ref-v3-wrapped-in-allOf", {"$ref": DEFS + "PodSpec", "description": "d"}, "v3",
     {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}], "description": "d"}),
    ("bare-ref-v3", {"$ref": DEFS + "Container"}, "v3",
     {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}),
    ("list-extensions-kept",
     {"type": "array", "items": {"$ref": DEFS + "Container"}, "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"], "x-kubernetes-patch-merge-key": "name",
      "x-kubernetes-patch-strategy": "merge"}, "v2",
     {"type": "array", "items": {"$ref": "#/definitions/io.k8s.api.core.v1.Container"},
      "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
      "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"}),
    ("map-values", {"type": ["object", "null"], "additionalProperties": {"type": ["string", "null"]}}, "v3",
     {"type": "object", "additionalProperties": {"type": "string"}}),
    ("kind-enum-dropped", {"type": ["string", "null"], "enum": ["Pod"]}, "v3", {"type": "string"}),
]


@pytest.mark.parametrize(("raw", "flavor", "expected"), [c[1:] for c in CONVERSIONS],
                         ids=[c[0] for c in CONVERSIONS])
def test_conversion(raw: dict[str, Any], flavor: Any, expected: dict[str, Any]) -> None:
    assert convert(raw, flavor) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", {"type": "string", "format": "int-or-string"}),
    ("io.k8s.apimachinery.pkg.api.resource.Quantity", {"type": "string"}),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.Time", {"type": "string", "format": "date-time"}),
], ids=["int-or-string", "quantity", "time"])
def test_scalar_definitions(name: str, expected: dict[str, str]) -> None:
    raw = load_schema().raw(name)
    assert raw is not None
    out = convert_definition(name, raw, "v3")
    assert {k: v for k, v in out.items() if k != "description"} == expected


@pytest.fixture(scope="module")
def openapi() -> OpenApi:
    return OpenApi(DEFAULT_REGISTRY, load_schema())


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            elif key != "properties":
                yield from _refs(value)
            else:
                for sub in value.values():
                    yield from _refs(sub)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_every_v3_document_is_closed_and_has_its_kinds(openapi: OpenApi) -> None:
    """Every served version has its document, also one served but stored as another (autoscaling/v1)."""
    assert {_gv(t) for t in DEFAULT_REGISTRY.served} == set(openapi.group_versions())
    for gv in openapi.group_versions():
        doc = openapi.v3(gv).doc
        schemas = doc["components"]["schemas"]
        for ref in _refs(doc):
            assert ref.removeprefix("#/components/schemas/") in schemas, (gv, ref)
        for t in DEFAULT_REGISTRY.served:
            if gv == _gv(t):
                gvk = {"group": t.group, "version": t.version, "kind": t.kind}
                assert gvk in schemas[t.definition]["x-kubernetes-group-version-kind"]
                if "get" not in t.verbs:  # create-only (TokenReview): its POST only, as kube lists it
                    assert _item_path(t) not in doc["paths"]
                    continue
                if "patch" not in t.verbs:  # componentstatuses: get and list only
                    continue
                patch = doc["paths"][_item_path(t)]["patch"]
                assert patch["x-kubernetes-group-version-kind"] == gvk
                assert "fieldValidation" in [p["name"] for p in patch["parameters"]]


def test_both_autoscaling_versions_are_published(openapi: OpenApi) -> None:
    """kube publishes autoscaling/v2 and autoscaling/v1 HorizontalPodAutoscalers, each with its own
    schema (v1's targetCPUUtilizationPercentage, v2's metrics), in v3 and in v2."""
    for version, field in (("v2", "metrics"), ("v1", "targetCPUUtilizationPercentage")):
        name = f"io.k8s.api.autoscaling.{version}.HorizontalPodAutoscaler"
        item = f"/apis/autoscaling/{version}/namespaces/{{namespace}}/horizontalpodautoscalers/{{name}}"
        gvk = {"group": "autoscaling", "version": version, "kind": "HorizontalPodAutoscaler"}
        v3 = openapi.v3(f"apis/autoscaling/{version}").doc
        assert field in v3["components"]["schemas"][f"{name}Spec"]["properties"]
        assert v3["paths"][item]["patch"]["x-kubernetes-group-version-kind"] == gvk
        v2 = openapi.v2().doc
        assert gvk in v2["definitions"][name]["x-kubernetes-group-version-kind"]
        assert v2["paths"][item]["patch"]["x-kubernetes-group-version-kind"] == gvk


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_authentication_kinds_and_token_requests(openapi: OpenApi, version: str) -> None:
    """serviceaccounts/token's TokenRequest is among the core group's definitions, like the other
    subresources' kinds (Scale, Eviction); TokenReview and SelfSubjectReview have their own document,
    with only their POST, as kube lists them (no item path: they are never read, listed or patched)."""
    if version == "v3":
        core, auth = openapi.v3("api/v1").doc, openapi.v3("apis/authentication.k8s.io/v1").doc
        core_defs, auth_defs = core["components"]["schemas"], auth["components"]["schemas"]
        paths = auth["paths"]
    else:
        doc = openapi.v2().doc
        core_defs = auth_defs = doc["definitions"]
        paths = doc["paths"]
    token_request = core_defs["io.k8s.api.authentication.v1.TokenRequest"]
    assert {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"} in token_request[
        "x-kubernetes-group-version-kind"]
    assert "io.k8s.api.authentication.v1.BoundObjectReference" in core_defs
    post = paths["/apis/authentication.k8s.io/v1/tokenreviews"]["post"]
    assert post["operationId"] == "createAuthenticationV1TokenReview"
    gvk = {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenReview"}
    assert post["x-kubernetes-group-version-kind"] == gvk
    for plural in ("tokenreviews", "selfsubjectreviews"):
        assert list(paths[f"/apis/authentication.k8s.io/v1/{plural}"]) == ["post"]
        assert f"/apis/authentication.k8s.io/v1/{plural}/{{name}}" not in paths
    for kind in ("TokenReview", "TokenReviewSpec", "TokenReviewStatus", "SelfSubjectReview", "UserInfo"):
        assert f"io.k8s.api.authentication.v1.{kind}" in auth_defs


# (document, item path, definition, group/version/kind, operations of the item, of the collection)
CLIENT_KINDS = [
    ("rc", "api/v1", "/api/v1/namespaces/{namespace}/replicationcontrollers/{name}",
     "io.k8s.api.core.v1.ReplicationController", ("", "v1", "ReplicationController"),
     {"get", "put", "patch", "delete"}, {"get", "post"}),
    ("podtemplate", "api/v1", "/api/v1/namespaces/{namespace}/podtemplates/{name}",
     "io.k8s.api.core.v1.PodTemplate", ("", "v1", "PodTemplate"),
     {"get", "put", "patch", "delete"}, {"get", "post"}),
    ("componentstatus", "api/v1", "/api/v1/componentstatuses/{name}",
     "io.k8s.api.core.v1.ComponentStatus", ("", "v1", "ComponentStatus"), {"get"}, {"get"}),
    ("events-v1", "apis/events.k8s.io/v1", "/apis/events.k8s.io/v1/namespaces/{namespace}/events/{name}",
     "io.k8s.api.events.v1.Event", ("events.k8s.io", "v1", "Event"),
     {"get", "put", "patch", "delete"}, {"get", "post"}),
    ("apiservice", "apis/apiregistration.k8s.io/v1", "/apis/apiregistration.k8s.io/v1/apiservices/{name}",
     "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService",
     ("apiregistration.k8s.io", "v1", "APIService"), {"get", "put", "patch", "delete"}, {"get", "post"}),
]


@pytest.mark.parametrize(("gv", "item", "name", "gvk", "item_ops", "collection_ops"),
                         [c[1:] for c in CLIENT_KINDS], ids=[c[0] for c in CLIENT_KINDS])
def test_the_kinds_kubectl_probes_are_published(openapi: OpenApi, gv: str, item: str, name: str,
                                                gvk: tuple[str, str, str], item_ops: set[str],
                                                collection_ops: set[str]) -> None:
    """ReplicationController, PodTemplate, ComponentStatus, events.k8s.io/v1 Event (served over the
    stored core Events) and APIService have their schemas and operations in v3 and v2 (`kubectl
    explain rc`), with only the verbs each serves (kube publishes componentstatuses read-only)."""
    want = dict(zip(("group", "version", "kind"), gvk, strict=True))
    collection = item.removesuffix("/{name}")
    for doc, schemas in ((openapi.v3(gv).doc, "components"), (openapi.v2().doc, "definitions")):
        defs = doc[schemas]["schemas"] if schemas == "components" else doc[schemas]
        assert want in defs[name]["x-kubernetes-group-version-kind"]
        assert f"{name}List" in defs
        assert set(doc["paths"][item]) == item_ops
        assert set(doc["paths"][collection]) == collection_ops
        assert doc["paths"][item]["get"]["x-kubernetes-group-version-kind"] == want


def _gv(t: Any) -> str:
    return f"apis/{t.group}/{t.version}" if t.group else f"api/{t.version}"


def _item_path(t: Any) -> str:
    base = f"/apis/{t.group}/{t.version}" if t.group else f"/api/{t.version}"
    ns = "/namespaces/{namespace}" if t.namespaced else ""
    return f"{base}{ns}/{t.plural}/{{name}}"


def test_v2_is_closed_and_patch_metadata_is_there(openapi: OpenApi) -> None:
    doc = openapi.v2().doc
    for ref in _refs(doc):
        assert ref.removeprefix("#/definitions/") in doc["definitions"], ref
    containers = doc["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert not any("oneOf" in s or "enum" in s for s in _schemas(doc["definitions"]))


def _schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every schema in a definition; a `properties` map's keys are field names (JSONSchemaProps has
    fields named `enum` and `oneOf`), its values schemas."""
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for sub in value.values():
                    yield from _schemas(sub)
            else:
                yield from _schemas(value)


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """A protobuf message's (field number, wire type, value) triples."""
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(data, i)
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 2:
            size, i = _read_varint(data, i)
            value, i = data[i:i + size], i + size
        else:
            raise AssertionError(f"wire type {wire}")
        yield number, wire, value


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def test_v2_protobuf_is_gnostic_document_of_the_json(openapi: OpenApi) -> None:
    v2 = openapi.v2()
    top = {n: v for n, _, v in _fields(v2.protobuf)}
    assert top[1] == b"2.0"
    names = []
    for n, _, named in _fields(top[9]):  # Definitions.additional_properties: NamedSchema
        assert n == 1
        fields = dict((num, val) for num, _, val in _fields(named))
        names.append(fields[1].decode())
    assert names == list(v2.doc["definitions"])
    deployment = next(v for n, _, v in _fields(top[9])
                      if dict((a, b) for a, _, b in _fields(v))[1] == b"io.k8s.api.apps.v1.Deployment")
    schema = dict((a, b) for a, _, b in _fields(deployment))[2]
    extensions = [dict((a, b) for a, _, b in _fields(v)) for n, _, v in _fields(schema) if n == 31]
    gvk = next(e for e in extensions if e[1] == b"x-kubernetes-group-version-kind")
    yaml_text = dict((a, b) for a, _, b in _fields(gvk[2]))[2]
    assert b'"kind":"Deployment"' in yaml_text


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store)
    await bootstrap(c)
    yield c
    store.close()


async def test_v3_hash_etag_and_redirect(core: ApiCore) -> None:
    with trio.fail_after(20):
        async with serving(core) as served:
            index = served.connect("memory")
            assert await index.request("/openapi/v3") == 200
            url = (await index.read_body())["paths"]["apis/apps/v1"]["serverRelativeURL"]
            tag = url.split("hash=")[1]
            doc = served.api.openapi.v3("apis/apps/v1")
            assert tag == doc.etag == etag(doc.json)
            stale = served.connect("memory")
            assert await stale.request("/openapi/v3/apis/apps/v1?hash=0BAD") == 301
            fresh = served.connect("memory")
            assert await fresh.request(url) == 200
            body = await fresh.read_body()
            assert "io.k8s.api.apps.v1.Deployment" in body["components"]["schemas"]
            cached = served.connect("memory")
            assert await cached.request(url, headers=(("if-none-match", f'"{tag}"'),)) == 304
            unknown = served.connect("memory")
            assert await unknown.request("/openapi/v3/apis/nope/v1") == 404


@pytest.mark.parametrize(("accept", "code", "content_type"), [
    ("application/json", 200, "application/json"),
    ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", 200,
     "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
    ("text/html", 406, "application/json"),
], ids=["json", "protobuf", "unacceptable"])
async def test_v2_negotiation(core: ApiCore, accept: str, code: int, content_type: str) -> None:
    with trio.fail_after(20):
        async with serving(core) as served:
            client = served.connect("memory")
            assert await client.request("/openapi/v2", accept=accept) == code
            assert client.headers["content-type"] == content_type
