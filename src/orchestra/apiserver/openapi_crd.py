"""The OpenAPI definitions of custom resources, as apiextensions-apiserver's builder makes them from a
CustomResourceDefinition version (controller/openapi/builder: `BuildOpenAPIV2` / `BuildOpenAPIV3`).

Owns: `definitions(rt, flavor)` — the kind's and its list's definitions for a served custom version,
named as kube names them (`definition_name`: the group reversed, the version, the kind, so
`widgets.example.com/v1` is `com.example.v1.Widget`), and `roots(rt)`, the built-in definitions
they refer to. The kind's schema is the version's structural schema with kube's steps applied:
vendor extensions unfolded (`x-kubernetes-int-or-string` gains its `anyOf`), only what the
structural model keeps (examples and the like dropped), apiVersion/kind/metadata added at the root
and in every `x-kubernetes-embedded-resource`, `x-kubernetes-group-version-kind` and
`x-kubernetes-selectable-fields`. v2 (`ToStructuralOpenAPIV2`, then the aggregator's
`PruneDefaults`) drops what swagger 2.0 and kubectl's v2 reader cannot take: allOf/anyOf/oneOf/not,
the type and children of nullable and preserve-unknown-fields nodes, arrays without items, defaults;
a schema preserving unknown fields at its root is a bare object. Results are cached on the
`CustomKind` (a CRD change makes new ones).
Must not import: cli, reconcilers, node, runtime, or the HTTP layer (it is pure data).
"""

from __future__ import annotations

import copy
from typing import Any

from orchestra.api.registry import ResourceType
from orchestra.apiserver.openapi_schemas import PREFIX, Flavor

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
SCALE = "io.k8s.api.autoscaling.v1.Scale"
_CONVENTIONS = "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
# TypeMeta's properties, as kube's generated definitions describe them
_API_VERSION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
    f"{_CONVENTIONS}#resources"
)
_KIND = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this "
    "from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    f"{_CONVENTIONS}#types-kinds"
)
# what addEmbeddedProperties writes into an embedded resource
_EMBEDDED_API_VERSION = (
    f"apiVersion defines the versioned schema of this representation of an object. More info: {_CONVENTIONS}"
    "#resources"
)
_EMBEDDED_KIND = (
    "kind is a string value representing the type of this object. In CamelCase. More info: "
    f"{_CONVENTIONS}#types-kinds"
)
_OBJECT_META = f"Standard object's metadata. More info: {_CONVENTIONS}#metadata"
_LIST_META = f"Standard list metadata. More info: {_CONVENTIONS}#types-kinds"

# The keys of a schema node the structural model keeps (Structural.ToKubeOpenAPI writes these back).
_KEPT = frozenset({
    "type", "nullable", "description", "title", "default", "externalDocs", "format", "maximum",
    "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems",
    "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties", "minProperties", "required",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys", "x-kubernetes-list-type", "x-kubernetes-map-type",
    "x-kubernetes-validations",
})
# Left out at their zero values (Go's omitempty): false flags, empty strings and lists.
_FLAGS = frozenset({"nullable", "uniqueItems", "exclusiveMaximum", "exclusiveMinimum",
                    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
                    "x-kubernetes-int-or-string"})
_OMIT_EMPTY = frozenset({"description", "title", "format", "pattern", "required",
                         "x-kubernetes-list-map-keys", "x-kubernetes-validations"})
_JUNCTORS = ("allOf", "anyOf", "oneOf")
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def definition_name(rt: ResourceType, kind: str | None = None) -> str:
    """kube's name of a custom type's definition: the group reversed, the version, the kind."""
    return ".".join([*reversed(rt.group.split(".")), rt.version, kind or rt.kind])


def roots(rt: ResourceType) -> list[str]:
    """The built-in definitions a custom version's definitions and operations refer to."""
    out = [META + "ObjectMeta", META + "ListMeta"]
    if rt.has_subresource("scale"):
        out.append(SCALE)
    return out


def definitions(rt: ResourceType, flavor: Flavor) -> dict[str, dict[str, Any]]:
    """The kind's and its list's definitions (shared: callers must not modify them)."""
    assert rt.custom is not None
    key = f"openapi/{flavor}"
    found = rt.custom.cache.get(key)
    if found is None:
        found = rt.custom.cache[key] = {
            definition_name(rt): _kind_schema(rt, flavor),
            definition_name(rt, rt.list_kind): _list_schema(rt, flavor),
        }
    return found  # type: ignore[no-any-return]


def _ref(name: str, flavor: Flavor, description: str) -> dict[str, Any]:
    """A reference with a description: v3 ignores a $ref's siblings, so kube wraps it in allOf."""
    if flavor == "v2":
        return {"$ref": PREFIX[flavor] + name, "description": description}
    return {"allOf": [{"$ref": PREFIX[flavor] + name}], "description": description}


def _type_meta(schema: dict[str, Any]) -> None:
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": _API_VERSION}
    props["kind"] = {"type": "string", "description": _KIND}


def _kind_schema(rt: ResourceType, flavor: Flavor) -> dict[str, Any]:
    assert rt.custom is not None
    raw = rt.custom.schema
    unknown_root = raw is not None and (raw.get("x-kubernetes-preserve-unknown-fields") is True
                                        or rt.custom.preserve_unknown_fields)
    if raw is None or (flavor == "v2" and unknown_root):
        # kube adds no properties then: kubectl would take their absence elsewhere as "no other fields"
        schema: dict[str, Any] = {"type": "object"}
    else:
        schema = _structural(raw)
        if flavor == "v2":
            schema = _v2(schema)
        schema.setdefault("properties", {})["metadata"] = _ref(META + "ObjectMeta", flavor, _OBJECT_META)
        _type_meta(schema)
        _embedded(schema, flavor)
        if flavor == "v2":
            schema = _without_defaults(schema)
    schema["x-kubernetes-group-version-kind"] = [{"group": rt.group, "kind": rt.kind, "version": rt.version}]
    selectable = [str(f.get("jsonPath") or "").removeprefix(".")
                  for f in rt.custom.version.get("selectableFields") or [] if isinstance(f, dict)]
    if selectable:
        schema["x-kubernetes-selectable-fields"] = [{"fieldPath": path} for path in selectable]
    return schema


def _list_schema(rt: ResourceType, flavor: Flavor) -> dict[str, Any]:
    # kube's buildListSchema gives the list no type
    schema: dict[str, Any] = {
        "description": f"{rt.list_kind} is a list of {rt.kind}",
        "required": ["items"],
        "properties": {
            "items": {"type": "array", "description": f"List of {rt.plural}. More info: {_CONVENTIONS}",
                      "items": {"$ref": PREFIX[flavor] + definition_name(rt)}},
            "metadata": _ref(META + "ListMeta", flavor, _LIST_META),
        },
    }
    _type_meta(schema)
    schema["x-kubernetes-group-version-kind"] = [
        {"group": rt.group, "kind": rt.list_kind, "version": rt.version}]
    return schema


# --- schema steps (each returns or edits a private copy) -------------------------------------------


def _structural(node: Any) -> dict[str, Any]:
    """A node as the structural model holds it, `x-kubernetes-int-or-string` unfolded (Unfold())."""
    if not isinstance(node, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _KEPT:
            if (key in _FLAGS and value is False) or (key in _OMIT_EMPTY and not value):
                continue
            out[key] = copy.deepcopy(value)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _structural(sub) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = _structural(value)
        elif key == "additionalProperties":
            out[key] = _structural(value) if isinstance(value, dict) else value
        elif key in _JUNCTORS and isinstance(value, list):
            out[key] = [_structural(sub) for sub in value]
        elif key == "not" and isinstance(value, dict):
            out[key] = _structural(value)
    if out.get("x-kubernetes-int-or-string") is True and not _int_or_string_pattern(out):
        if "anyOf" not in out:
            out["anyOf"] = copy.deepcopy(_INT_OR_STRING)
        else:
            out["allOf"] = [{"anyOf": copy.deepcopy(_INT_OR_STRING)}, *out.get("allOf", [])]
    return out


def _int_or_string_pattern(node: dict[str, Any]) -> bool:
    """Already `anyOf: [integer, string]`, directly or as the first allOf (isIntOrString*Pattern)."""
    def types(options: Any) -> list[Any]:
        return [o.get("type") for o in options] if isinstance(options, list) else []

    if types(node.get("anyOf")) == ["integer", "string"]:
        return True
    first = (node.get("allOf") or [None])[0]
    return isinstance(first, dict) and types(first.get("anyOf")) == ["integer", "string"]


def _v2(node: dict[str, Any]) -> dict[str, Any]:
    """ToStructuralOpenAPIV2: the parent is changed first, then what children it keeps."""
    for key in (*_JUNCTORS, "not"):
        node.pop(key, None)
    if node.pop("nullable", False):
        for key in ("type", "items", "properties"):
            node.pop(key, None)
    if node.get("x-kubernetes-preserve-unknown-fields") is True:
        node.pop("items", None)
        node.pop("properties", None)
    if node.get("type") == "array" and "items" not in node:
        node.pop("type")  # kubectl cannot read an array without an item schema
    if node.get("x-kubernetes-preserve-unknown-fields") is True and node.get("type") == "object":
        node.pop("type")
    props = node.get("properties") or {}
    nullable = {name for name, sub in props.items() if sub.get("nullable") is True}
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("nullable") is True:
        node.pop("required", None)
    elif nullable and "required" in node:
        node["required"] = [r for r in node["required"] if r not in nullable]
        if not node["required"]:
            del node["required"]
    for name, sub in props.items():
        props[name] = _v2(sub)
    if isinstance(node.get("items"), dict):
        node["items"] = _v2(node["items"])
    if isinstance(extra, dict):
        node["additionalProperties"] = _v2(extra)
    return node


def _embedded(node: dict[str, Any], flavor: Flavor) -> None:
    """addEmbeddedProperties: every `x-kubernetes-embedded-resource` gets apiVersion, kind, metadata."""
    for sub in (node.get("properties") or {}).values():
        _embedded(sub, flavor)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _embedded(node[key], flavor)
    if flavor == "v2" and node.get("x-kubernetes-preserve-unknown-fields") is True:
        return  # kubectl would refuse the unknown fields the object keeps
    if node.get("x-kubernetes-embedded-resource") is not True:
        return
    props = node.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": _EMBEDDED_API_VERSION}
    props["kind"] = {"type": "string", "description": _EMBEDDED_KIND}
    props["metadata"] = _ref(META + "ObjectMeta", flavor, _OBJECT_META)
    required = node.setdefault("required", [])
    for name in ("kind", "apiVersion"):
        if name not in required:
            required.append(name)


def _without_defaults(node: Any) -> Any:
    """The aggregator's PruneDefaults: no `default` anywhere in a schema (property names kept)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "default":
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _without_defaults(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _without_defaults(value)
        elif key in _JUNCTORS and isinstance(value, list):
            out[key] = [_without_defaults(sub) for sub in value]
        else:
            out[key] = value
    return out
