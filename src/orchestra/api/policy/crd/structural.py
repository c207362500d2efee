"""The structural schema of a CustomResourceDefinition version (apiextensions' schema.Structural).

Owns: `Structural`, one node of an `openAPIV3Schema` as typed values (kind, properties, items,
additionalProperties, the x-kubernetes-* extensions, the value validations), built once per node
by `Structural.of(raw)` from the JSON the CRD holds. Nested value validations (allOf, anyOf,
oneOf, not) are Structural nodes too; structurality rules (schemarules.py) say what they may not
set. Pure: no I/O, nothing above api/machinery.
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

MISSING: Any = object()  # a `default` that is not set (None is a valid default: null)

_NUMBERS = ("maximum", "minimum", "multipleOf")
_COUNTS = ("maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties")


class Structural:
    """One schema node. `raw` is the node's JSON as the CRD has it (descriptions, examples...)."""

    __slots__ = (
        "additional",
        "additional_allows",
        "all_of",
        "any_of",
        "counts",
        "default",
        "description",
        "embedded",
        "enum",
        "exclusive_maximum",
        "exclusive_minimum",
        "format",
        "int_or_string",
        "items",
        "list_map_keys",
        "list_type",
        "map_type",
        "not_",
        "nullable",
        "numbers",
        "one_of",
        "pattern",
        "preserve_unknown",
        "properties",
        "raw",
        "required",
        "title",
        "type",
        "unique_items",
        "validations",
    )

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.type: str = _str(raw.get("type"))
        self.format: str = _str(raw.get("format"))
        self.title: str = _str(raw.get("title"))
        self.description: str = _str(raw.get("description"))
        self.nullable: bool = raw.get("nullable") is True
        self.default: Any = raw.get("default", MISSING)
        props = raw.get("properties")
        self.properties: dict[str, Structural] = (
            {k: Structural(v) for k, v in props.items() if isinstance(v, Mapping)}
            if isinstance(props, Mapping) else {}
        )
        items = raw.get("items")
        self.items: Structural | None = Structural(items) if isinstance(items, Mapping) else None
        add = raw.get("additionalProperties")
        self.additional: Structural | None = Structural(add) if isinstance(add, Mapping) else None
        self.additional_allows: bool | None = (
            True if isinstance(add, Mapping) else add if isinstance(add, bool) else None
        )
        self.preserve_unknown: bool = raw.get("x-kubernetes-preserve-unknown-fields") is True
        self.embedded: bool = raw.get("x-kubernetes-embedded-resource") is True
        self.int_or_string: bool = raw.get("x-kubernetes-int-or-string") is True
        self.list_type: str | None = _opt_str(raw.get("x-kubernetes-list-type"))
        keys = raw.get("x-kubernetes-list-map-keys")
        self.list_map_keys: tuple[str, ...] = tuple(str(k) for k in keys) if isinstance(keys, list) else ()
        self.map_type: str | None = _opt_str(raw.get("x-kubernetes-map-type"))
        rules = raw.get("x-kubernetes-validations")
        self.validations: list[dict[str, Any]] = (
            [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []
        )
        self.numbers: dict[str, float] = {
            k: raw[k]
            for k in _NUMBERS
            if isinstance(raw.get(k), int | float) and not isinstance(raw[k], bool)
        }
        self.counts: dict[str, int] = {
            k: raw[k] for k in _COUNTS if isinstance(raw.get(k), int) and not isinstance(raw[k], bool)
        }
        self.exclusive_maximum: bool = raw.get("exclusiveMaximum") is True
        self.exclusive_minimum: bool = raw.get("exclusiveMinimum") is True
        self.pattern: str = _str(raw.get("pattern"))
        self.unique_items: bool = raw.get("uniqueItems") is True
        self.enum: list[Any] | None = raw["enum"] if isinstance(raw.get("enum"), list) else None
        req = raw.get("required")
        self.required: list[str] = [str(r) for r in req] if isinstance(req, list) else []
        self.all_of = _nodes(raw.get("allOf"))
        self.any_of = _nodes(raw.get("anyOf"))
        self.one_of = _nodes(raw.get("oneOf"))
        not_ = raw.get("not")
        self.not_: Structural | None = Structural(not_) if isinstance(not_, Mapping) else None

    def __repr__(self) -> str:
        return f"Structural({self.type or 'untyped'}, {sorted(self.properties)})"

    @property
    def has_value_validation(self) -> bool:
        return bool(self.all_of or self.any_of or self.one_of or self.not_ is not None)

    def child(self, key: str) -> Structural | None:
        """The schema of object field `key` (a property, else additionalProperties' schema)."""
        found = self.properties.get(key)
        return found if found is not None else self.additional

    def walk(self, path: str = "") -> Iterator[tuple[str, Structural]]:
        """Every structural node (not the value validations) with its path, this one first."""
        yield path, self
        for k in sorted(self.properties):
            yield from self.properties[k].walk(f"{path}.{k}" if path else k)
        if self.items is not None:
            yield from self.items.walk(f"{path}[*]")
        if self.additional is not None:
            yield from self.additional.walk(f"{path}[*]")


def _nodes(value: Any) -> list[Structural]:
    return [Structural(v) for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def has_defaults(s: Structural | None) -> bool:
    """Whether any node of `s` sets a default (reads skip defaulting otherwise)."""
    return s is not None and any(n.default is not MISSING for _, n in s.walk())
