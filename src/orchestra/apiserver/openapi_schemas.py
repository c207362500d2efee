"""The Kubernetes 1.32 definitions as OpenAPI schemas: kube-apiserver's `definitions` (v2) and
`components.schemas` (v3), converted from the JSON-schema form the `kubernetes-validate` package ships.

Owns: `convert(definition, flavor)` and `closure(roots)`. The package's form differs from kube's in
ways a mechanical conversion undoes: `#/$defs/` references (v2: `#/definitions/`; v3:
`#/components/schemas/`, wrapped in `allOf` when the property also has a description or extensions, as
kube writes them), nullable types (`type: [x, "null"]` -> `type: x`), IntOrString and Quantity as
`oneOf` (kube: `type: string`, IntOrString with `format: int-or-string`), and `enum`s the package adds
to apiVersion/kind (kube has none there). Descriptions, `required`, formats and the x-kubernetes-*
extensions (group-version-kind, list-type, list-map-keys, map-type, patch-strategy, patch-merge-key,
unions) are kept as they are.
Must not import: cli, reconcilers, node, runtime (and nothing of the HTTP layer: it is pure data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

Flavor = Literal["v2", "v3"]
Lookup = Callable[[str], dict[str, Any] | None]

PACKAGE_PREFIX = "#/$defs/"
PREFIX = {"v2": "#/definitions/", "v3": "#/components/schemas/"}
# Scalars on the wire whatever the package's form says (kube's OpenAPISchemaType/Format of the Go type).
SCALARS: dict[str, dict[str, str]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
}
_DROPPED = {"enum", "oneOf", "$schema"}  # the package's additions (enums only on apiVersion/kind)


def ref_name(ref: str) -> str:
    return ref.removeprefix(PACKAGE_PREFIX)


def convert_definition(name: str, raw: dict[str, Any], flavor: Flavor) -> dict[str, Any]:
    """One definition as kube publishes it."""
    out = convert(raw, flavor)
    if name in SCALARS:
        out = {k: v for k, v in out.items() if k not in ("type", "format")} | SCALARS[name]
    return out


def convert(schema: dict[str, Any], flavor: Flavor) -> dict[str, Any]:
    """A schema (a definition's body or a property's) in the flavor's form."""
    out: dict[str, Any] = {}
    ref = schema.get("$ref")
    for key, value in schema.items():
        if key in _DROPPED or key == "$ref":
            continue
        if key == "type":
            kind = _single_type(value)
            if kind is not None:
                out["type"] = kind
        elif key == "properties":
            out["properties"] = {prop: convert(sub, flavor) for prop, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out["items"] = convert(value, flavor)
        elif key == "additionalProperties" and isinstance(value, dict):
            out["additionalProperties"] = convert(value, flavor)
        else:
            out[key] = value
    if ref is None:
        return out
    target = PREFIX[flavor] + ref_name(ref)
    if flavor == "v2" or not out:
        return {"$ref": target, **out}
    return {"allOf": [{"$ref": target}], **out}  # v3 ignores a $ref's siblings; kube keeps them so


def _single_type(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    kinds = [v for v in value if v != "null"] if isinstance(value, list) else []
    return kinds[0] if len(kinds) == 1 else None


def references(schema: Any) -> Iterable[str]:
    """The definitions a package-form schema refers to (not looking inside property-name maps)."""
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str):
        yield ref_name(ref)
    for key in ("items", "additionalProperties"):
        yield from references(schema.get(key))
    for sub in (schema.get("properties") or {}).values():
        yield from references(sub)


def closure(roots: Iterable[str], lookup: Lookup) -> list[str]:
    """The roots and every definition they reach, sorted by name (kube's documents are sorted)."""
    seen: set[str] = set()
    todo = [r for r in roots if lookup(r) is not None]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        raw = lookup(name)
        if raw is not None:
            todo.extend(r for r in references(raw) if r not in seen and lookup(r) is not None)
    return sorted(seen)


def group_version_kinds(raw: dict[str, Any]) -> list[dict[str, str]]:
    gvks = raw.get("x-kubernetes-group-version-kind")
    return list(gvks) if isinstance(gvks, list) else []


def find_kind(names: Iterable[str], lookup: Lookup, group: str, version: str, kind: str) -> str | None:
    """The definition carrying this group/version/kind, if any."""
    want = {"group": group, "version": version, "kind": kind}
    for name in names:
        raw = lookup(name)
        if raw is not None and want in group_version_kinds(raw):
            return name
    return None
