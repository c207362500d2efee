"""A custom resource version's structural schema as the patch engines read schemas.

Owns: `apply_schema(schema, structural, root) -> Schema`: the structural schema turned into
OpenAPI `$defs` (one definition per object node, `$ref`s between them, the x-kubernetes-list-type,
list-map-keys and map-type extensions kept; `metadata` referring to kube's ObjectMeta), layered over
the built-in definitions, so server-side apply merges a custom resource's lists as sets or maps by
key and its atomic maps whole, exactly as the CRD says. Built once per version (cached by the caller).
Must not import: api/tables, the apiserver or anything above the api layer.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.policy.crd.structural import Structural
from orchestra.api.request.schema import Schema

OBJECT_META = "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def apply_schema(base: Schema, structural: Structural | None, root: str) -> Schema:
    defs: dict[str, Any] = {}
    if structural is None:
        defs[root] = {"properties": {"metadata": {"$ref": OBJECT_META}}}
    else:
        _define(structural, root, defs, resource=True)
    return base.extended(defs)


def _define(s: Structural, name: str, defs: dict[str, Any], *, resource: bool = False) -> None:
    props: dict[str, Any] = {}
    for k, sub in s.properties.items():
        if resource and k == "metadata":
            props[k] = {"$ref": OBJECT_META}
        else:
            props[k] = _prop(sub, f"{name}.{k}", defs)
    if resource and "metadata" not in props:
        props["metadata"] = {"$ref": OBJECT_META}
    body: dict[str, Any] = {"properties": props}
    if s.map_type:
        body["x-kubernetes-map-type"] = s.map_type
    defs[name] = body


def _prop(s: Structural, name: str, defs: dict[str, Any]) -> dict[str, Any]:
    ext: dict[str, Any] = {}
    if s.list_type:
        ext["x-kubernetes-list-type"] = s.list_type
    if s.list_map_keys:
        ext["x-kubernetes-list-map-keys"] = list(s.list_map_keys)
    if s.map_type:
        ext["x-kubernetes-map-type"] = s.map_type
    if s.type == "object" and s.properties:
        _define(s, name, defs, resource=s.embedded)
        return {"$ref": f"#/$defs/{name}", **ext}
    if s.type == "object" and s.additional is not None:
        return {"type": "object", "additionalProperties": _prop(s.additional, f"{name}.values", defs), **ext}
    if s.type == "array":
        items = _prop(s.items, f"{name}.items", defs) if s.items is not None else {}
        return {"type": "array", "items": items, **ext}
    if s.type in ("string", "integer", "number", "boolean"):
        return {"type": s.type, **ext}
    return ext
