"""OpenAPI v3 for custom resources: what `kubectl explain` and kubectl's field-validation probe read.

Owns: `crd_openapi_schemas(registry)` — the components of every served custom resource version
(`com.example.v1.Widget` and its list, named as kube-apiserver names them: the reversed group, the
version, the kind; `x-kubernetes-group-version-kind` set; the CRD's schema with apiVersion, kind and
metadata added, metadata a `$ref` to ObjectMeta) plus the ObjectMeta definitions they refer to;
`crd_gv_document(registry, group, version)` — the `/openapi/v3/apis/<group>/<version>` document
of a custom group (paths with the write parameters, those components). A full OpenAPI handler for
the built-in kinds merges `crd_openapi_schemas` into its components.
Must not import: cli, reconcilers, node, runtime.
"""

from __future__ import annotations

import copy
from typing import Any

from orchestra.api.registry import Registry, ResourceType
from orchestra.api.request.schema import load_schema

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
KUBE_VERSION = "v1.32.0"
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")
_WRITE_PARAMS = [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                 for n in ("fieldValidation", "fieldManager", "dryRun")]


def component_name(rt: ResourceType, kind: str | None = None) -> str:
    """kube's name of a custom type's schema: the group reversed, the version, the kind."""
    return ".".join([*reversed(rt.group.split(".")), rt.version, kind or rt.kind])


def crd_openapi_schemas(registry: Registry) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for rt in registry.served:
        if rt.custom is not None:
            out.update(_components(rt))
    if out:
        out.update(_meta_definitions())
    return out


def crd_gv_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = [t for t in registry.in_group(group, version) if t.custom is not None]
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for t in types:
        base = f"/apis/{t.group}/{t.version}"
        path = (f"{base}/namespaces/{{namespace}}/{t.plural}/{{name}}" if t.namespaced
                else f"{base}/{t.plural}/{{name}}")
        ref = {"schema": {"$ref": f"#/components/schemas/{component_name(t)}"}}
        op = {"x-kubernetes-group-version-kind": {"group": t.group, "version": t.version, "kind": t.kind},
              "parameters": _WRITE_PARAMS, "responses": {"200": {"description": "OK", "content": {
                  "application/json": ref}}}}
        # what kubectl apply reads to choose its patch: a custom resource takes no strategic merge patch
        patch = {**op, "requestBody": {"content": {t: {"schema": {"type": "object"}} for t in _PATCH_TYPES}}}
        paths[path] = {"patch": patch, "put": {**op, "requestBody": {"content": {"application/json": ref}}}}
        schemas.update(_components(t))
    schemas.update(_meta_definitions())
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes CRD Swagger", "version": KUBE_VERSION},
            "paths": paths, "components": {"schemas": schemas}}


def _components(rt: ResourceType) -> dict[str, dict[str, Any]]:
    assert rt.custom is not None
    found = rt.custom.cache.get("openapi")
    if found is not None:
        return found  # type: ignore[no-any-return]
    gvk = [{"group": rt.group, "kind": rt.kind, "version": rt.version}]
    schema: dict[str, Any] = (copy.deepcopy(rt.custom.schema) if rt.custom.schema
                              else {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    props: dict[str, Any] = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": _API_VERSION}
    props["kind"] = {"type": "string", "description": _KIND}
    props["metadata"] = {"allOf": [{"$ref": f"#/components/schemas/{META}.ObjectMeta"}],
                         "description": "Standard object's metadata. More info: https://git.k8s.io/community/"
                                        "contributors/devel/sig-architecture/api-conventions.md#metadata"}
    schema["x-kubernetes-group-version-kind"] = gvk
    list_schema = {
        "type": "object", "required": ["items"],
        "description": f"{rt.list_kind} is a list of {rt.kind}",
        "properties": {
            "apiVersion": {"type": "string", "description": _API_VERSION},
            "kind": {"type": "string", "description": _KIND},
            "items": {"type": "array", "description": f"List of {rt.plural}. More info: "
                                                      "https://git.k8s.io/community/contributors/devel/"
                                                      "sig-architecture/api-conventions.md",
                      "items": {"$ref": f"#/components/schemas/{component_name(rt)}"}},
            "metadata": {"allOf": [{"$ref": f"#/components/schemas/{META}.ListMeta"}]},
        },
        "x-kubernetes-group-version-kind": [{"group": rt.group, "kind": rt.list_kind, "version": rt.version}],
    }
    found = rt.custom.cache["openapi"] = {component_name(rt): schema,
                                          component_name(rt, rt.list_kind): list_schema}
    return found


def _meta_definitions() -> dict[str, dict[str, Any]]:
    """ObjectMeta, ListMeta and every definition they refer to, as OpenAPI v3 components."""
    schema = load_schema()
    out: dict[str, dict[str, Any]] = {}
    todo = [f"{META}.ObjectMeta", f"{META}.ListMeta"]
    while todo:
        name = todo.pop()
        raw = schema.raw(name)
        if name in out or raw is None:
            continue
        out[name] = _v3(copy.deepcopy(raw), todo)
    return out


def _v3(node: Any, refs: list[str]) -> Any:
    """A JSON-schema `$defs` node as OpenAPI v3: `#/components/schemas` refs, no `null` types."""
    if isinstance(node, list):
        return [_v3(v, refs) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "$ref" and isinstance(v, str):
            name = v.rsplit("/", 1)[-1]
            refs.append(name)
            out[k] = f"#/components/schemas/{name}"
        elif k == "type" and isinstance(v, list):
            kinds = [t for t in v if t != "null"]
            if kinds:
                out[k] = kinds[0]
        else:
            out[k] = _v3(v, refs)
    return out


_API_VERSION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should "
    "convert recognized schemas to the latest internal value, and may reject unrecognized values. "
    "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
    "api-conventions.md#resources"
)
_KIND = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this "
    "from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
