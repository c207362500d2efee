"""The Kubernetes 1.32 object schemas: strict-decoding checks and field metadata for the patch engines.

Owns: loading the JSON schema definitions shipped by `kubernetes-validate`, compiling each definition
(lazily, once) into a compact `FieldInfo` table with every `$ref` resolved, and `Schema.validate`, which
reports what kube-apiserver's strict decoder would: unknown fields, wrong JSON types (with Go-style
messages) and fields the schema marks required.
Must not import: the store, the HTTP server, or anything above the api layer.

Decoding rules mirrored from kube-apiserver (sigs.k8s.io/json, case-sensitive):
* JSON `null` is accepted for every field (Go leaves the zero value); a null required field counts as
  missing.
* `enum`, `pattern` and formats other than int32/int64 ranges, base64 bytes and quantities are not
  checked here; semantic validation lives in api/policy/validation/.
"""

from __future__ import annotations

import base64
import binascii
import functools
import importlib.resources
import re
from typing import Any

import attrs
import orjson

from orchestra.api.errors import Cause
from orchestra.objects.quantity import Quantity, QuantityError

__all__ = ["FieldInfo", "Schema", "SchemaResult", "load_schema"]

_REF_PREFIX = "#/$defs/"
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_INDEX_RE = re.compile(r"\[[^\]]*\]")

# Definitions that are scalars or free-form JSON on the wire, whatever their schema says.
_SPECIAL_REFS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": ("int-or-string", None),
    "io.k8s.apimachinery.pkg.api.resource.Quantity": ("quantity", None),
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": ("string", "date-time"),
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": ("string", "date-time"),
}

_VERSIONS = {"1.32": "v1.32.0-local"}
# Required fields whose absence kube's own validation words differently (api/policy/validation reports
# them).
_REQUIRED_BY_VALIDATION = {("HTTPIngressPath", "pathType"), ("HTTPIngressPath", "backend")}


@attrs.frozen
class FieldInfo:
    """What the schema says about one field (or about the items/values of a list/map field).

    type: "object" | "array" | "map" | "string" | "integer" | "number" | "boolean" | "int-or-string"
          | "quantity" | "any"   ("quantity" is a resource.Quantity: a string or a number)
    ref:  the definition of the object, or of the array items / map values when they are objects.
    items: the element schema of an array, or the value schema of a map.
    """

    type: str
    ref: str | None = None
    items: FieldInfo | None = None
    format: str | None = None
    patch_strategy: str | None = None
    merge_key: str | None = None
    list_type: str | None = None
    list_map_keys: tuple[str, ...] = ()
    map_type: str | None = None  # "atomic" when the object/map is replaced as a whole

    @property
    def item_keys(self) -> tuple[str, ...]:
        """The keys identifying an item of an associative list (list-map-keys, else the merge key)."""
        if self.list_map_keys:
            return self.list_map_keys
        return (self.merge_key,) if self.merge_key else ()


@attrs.frozen
class SchemaResult:
    unknown_fields: list[str]
    type_errors: list[Cause]
    missing_required: list[Cause]

    @property
    def ok(self) -> bool:
        return not (self.unknown_fields or self.type_errors or self.missing_required)


@attrs.frozen
class _Def:
    name: str
    struct: str  # Go struct name, e.g. "DeploymentSpec"
    go_type: str  # e.g. "v1.DeploymentSpec"
    kind: str  # "object", or a scalar/any kind for special definitions
    fields: dict[str, FieldInfo]
    required: tuple[str, ...]
    map_type: str | None


class _Out:
    __slots__ = ("missing", "type_errors", "unknown")

    def __init__(self) -> None:
        self.unknown: list[str] = []
        self.type_errors: list[Cause] = []
        self.missing: list[Cause] = []


def _json_kind(v: object) -> str:
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    return "number"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class Schema:
    """The definitions of one Kubernetes version, compiled on first use of each."""

    def __init__(self, raw_defs: dict[str, Any]) -> None:
        self._raw = raw_defs
        self._defs: dict[str, _Def] = {}

    @classmethod
    def from_file(cls, path: Any) -> Schema:
        return cls(orjson.loads(path.read_bytes())["$defs"])

    # -- navigation ---------------------------------------------------------------------------

    def has(self, definition: str) -> bool:
        return definition in self._raw

    def raw(self, definition: str) -> dict[str, Any] | None:
        """A definition as the package ships it (JSON-schema form, `#/$defs/` references): what the
        OpenAPI documents are built from. Shared: callers must not modify it."""
        return self._raw.get(definition)

    def fields(self, definition: str) -> dict[str, FieldInfo]:
        """All fields of a definition (empty for unknown or non-object definitions)."""
        d = self._compiled(definition)
        return d.fields if d is not None else {}

    def field(self, definition: str, name: str) -> FieldInfo | None:
        d = self._compiled(definition)
        return d.fields.get(name) if d is not None else None

    def required(self, definition: str) -> tuple[str, ...]:
        d = self._compiled(definition)
        return d.required if d is not None else ()

    # -- validation ---------------------------------------------------------------------------

    def validate(self, obj: dict[str, Any], definition: str) -> SchemaResult:
        """Check `obj` against `definition` the way kube-apiserver's strict decoder would."""
        d = self._compiled(definition)
        if d is None:
            raise KeyError(f"unknown schema definition {definition!r}")
        out = _Out()
        if isinstance(obj, dict):
            self._check_struct(obj, d, "", out)
        else:
            msg = f"json: cannot unmarshal {_json_kind(obj)} into Go value of type {d.go_type}"
            out.type_errors.append(Cause("FieldValueInvalid", msg, ""))
        return SchemaResult(out.unknown, out.type_errors, out.missing)

    def _check_struct(self, obj: dict[str, Any], d: _Def, path: str, out: _Out) -> None:
        fields = d.fields
        for k, v in obj.items():
            f = fields.get(k)
            if f is None:
                out.unknown.append(_join(path, k))
            elif v is not None:
                self._check(v, f, _join(path, k), d.struct, out)
        for r in d.required:
            if obj.get(r) is None and (d.struct, r) not in _REQUIRED_BY_VALIDATION:
                out.missing.append(Cause("FieldValueRequired", "Required value", _join(path, r)))

    def _check(self, v: Any, f: FieldInfo, path: str, struct: str, out: _Out) -> None:
        t = f.type
        if t == "string":
            if not isinstance(v, str):
                self._type_error(v, f, path, struct, out)
            elif f.format == "byte":
                self._check_base64(v, f, path, struct, out)
        elif t == "integer":
            if not isinstance(v, int) or isinstance(v, bool):
                self._type_error(v, f, path, struct, out)
            else:
                lo, hi = _INT_RANGES.get(f.format or "int64", _INT_RANGES["int64"])
                if not lo <= v <= hi:
                    self._type_error(v, f, path, struct, out)
        elif t == "object":
            if isinstance(v, dict):
                d = self._compiled(f.ref or "")
                if d is not None and d.kind == "object":
                    self._check_struct(v, d, path, out)
            else:
                self._type_error(v, f, path, struct, out)
        elif t == "array":
            if not isinstance(v, list):
                self._type_error(v, f, path, struct, out)
            elif f.items is not None:
                items = f.items
                for i, item in enumerate(v):
                    if item is not None:
                        self._check(item, items, f"{path}[{i}]", struct, out)
        elif t == "map":
            if not isinstance(v, dict):
                self._type_error(v, f, path, struct, out)
            elif f.items is not None:
                values = f.items
                for key, item in v.items():
                    if item is not None:
                        self._check(item, values, f"{path}[{key}]", struct, out)
        elif t == "boolean":
            if not isinstance(v, bool):
                self._type_error(v, f, path, struct, out)
        elif t == "number":
            if not isinstance(v, int | float) or isinstance(v, bool):
                self._type_error(v, f, path, struct, out)
        elif t == "int-or-string":
            if not isinstance(v, int | str) or isinstance(v, bool):
                self._type_error(v, f, path, struct, out)
        elif t == "quantity":
            self._check_quantity(v, f, path, struct, out)
        # "any": free-form JSON, nothing to check

    def _check_base64(self, v: str, f: FieldInfo, path: str, struct: str, out: _Out) -> None:
        try:
            base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            gopath = _INDEX_RE.sub("", path)
            msg = (
                f"json: cannot unmarshal string into Go struct field {struct}.{gopath} of type []uint8: "
                "illegal base64 data"
            )
            out.type_errors.append(Cause("FieldValueInvalid", msg, path))

    def _check_quantity(self, v: Any, f: FieldInfo, path: str, struct: str, out: _Out) -> None:
        if not isinstance(v, str | int | float) or isinstance(v, bool):
            self._type_error(v, f, path, struct, out)
            return
        try:  # the one parser: its message is what kube's Quantity.UnmarshalJSON reports
            Quantity.parse(v)
        except QuantityError as exc:
            out.type_errors.append(Cause("FieldValueInvalid", str(exc), path))

    def _type_error(self, v: Any, f: FieldInfo, path: str, struct: str, out: _Out) -> None:
        kind = _json_kind(v)
        if kind == "number" and f.type == "integer":
            kind = f"number {v}"
        gopath = _INDEX_RE.sub("", path)
        msg = (
            f"json: cannot unmarshal {kind} into Go struct field {struct}.{gopath} of type {self._go_type(f)}"
        )
        out.type_errors.append(Cause("FieldValueInvalid", msg, path))

    def _go_type(self, f: FieldInfo) -> str:
        t = f.type
        if t == "object":
            d = self._compiled(f.ref or "")
            return d.go_type if d is not None else "map[string]interface {}"
        if t == "array":
            return "[]" + (self._go_type(f.items) if f.items else "interface {}")
        if t == "map":
            return "map[string]" + (self._go_type(f.items) if f.items else "interface {}")
        if t == "integer":
            return f.format or "int64"
        if t == "string":
            return {"byte": "[]uint8", "date-time": "v1.Time"}.get(f.format or "", "string")
        return {
            "number": "float64",
            "boolean": "bool",
            "int-or-string": "intstr.IntOrString",
            "quantity": "resource.Quantity",
        }.get(t, "interface {}")

    # -- compilation --------------------------------------------------------------------------

    def _compiled(self, name: str) -> _Def | None:
        d = self._defs.get(name)
        if d is None:
            raw = self._raw.get(name)
            if raw is None:
                return None
            d = self._compile_def(name, raw)
            self._defs[name] = d
        return d

    def _compile_def(self, name: str, raw: dict[str, Any]) -> _Def:
        segments = name.split(".")
        struct = segments[-1]
        go_type = ".".join(segments[-2:])
        if name in _SPECIAL_REFS:
            kind = _SPECIAL_REFS[name][0]
        elif "properties" in raw:
            kind = "object"
        else:
            kind = "any"
        fields = {k: self._compile_prop(p) for k, p in raw.get("properties", {}).items()}
        return _Def(
            name=name,
            struct=struct,
            go_type=go_type,
            kind=kind,
            fields=fields,
            required=tuple(raw.get("required", ())),
            map_type=raw.get("x-kubernetes-map-type"),
        )

    def _compile_prop(self, p: dict[str, Any]) -> FieldInfo:
        ext: dict[str, Any] = {
            "patch_strategy": p.get("x-kubernetes-patch-strategy"),
            "merge_key": p.get("x-kubernetes-patch-merge-key"),
            "list_type": p.get("x-kubernetes-list-type"),
            "list_map_keys": tuple(p.get("x-kubernetes-list-map-keys", ())),
        }
        if "$ref" in p:
            base = self._from_ref(p["$ref"])
            map_type = p.get("x-kubernetes-map-type", base.map_type)
            return attrs.evolve(base, map_type=map_type, **ext)
        types = p.get("type")
        if isinstance(types, list):
            types = next((t for t in types if t != "null"), None)
        if types == "array":
            items = self._compile_prop(p["items"]) if "items" in p else None
            ref = items.ref if items is not None else None
            return FieldInfo("array", ref=ref, items=items, **ext)
        if types == "object":
            add = p.get("additionalProperties")
            if isinstance(add, dict):
                values = self._compile_prop(add)
                return FieldInfo(
                    "map", ref=values.ref, items=values, map_type=p.get("x-kubernetes-map-type"), **ext
                )
            return FieldInfo("any", **ext)
        if types in ("string", "integer", "number", "boolean"):
            return FieldInfo(types, format=p.get("format"), **ext)
        return FieldInfo("any", **ext)

    def _from_ref(self, ref: str) -> FieldInfo:
        name = ref.removeprefix(_REF_PREFIX)
        if name in _SPECIAL_REFS:
            kind, fmt = _SPECIAL_REFS[name]
            return FieldInfo(kind, format=fmt)
        raw = self._raw.get(name)
        if raw is None or "properties" not in raw:
            return FieldInfo("any")
        return FieldInfo("object", ref=name, map_type=raw.get("x-kubernetes-map-type"))


def load_schema(version: str = "1.32") -> Schema:
    """The schema of a Kubernetes minor version, loaded once per process (about 1.3 MB of JSON)."""
    return _load(version)


@functools.cache
def _load(version: str) -> Schema:
    folder = _VERSIONS.get(version)
    if folder is None:
        raise ValueError(f"no schema for Kubernetes {version}; known: {', '.join(_VERSIONS)}")
    root = importlib.resources.files("kubernetes_validate")
    return Schema.from_file(root / "kubernetes-json-schema" / folder / "_definitions.json")
