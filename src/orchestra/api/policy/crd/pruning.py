"""Pruning: fields a structural schema does not specify are dropped (apiextensions' pruning.Prune).

Owns: `prune(obj, schema, *, root=True) -> list[str]` — removes, in place, every object field the
schema does not know (kept under x-kubernetes-preserve-unknown-fields; apiVersion, kind and
metadata kept at the root and in embedded resources) and returns the pruned paths
(`spec.foo`, `spec.items[0].bar`, sorted), which fieldValidation Strict refuses and Warn reports;
and `prune_nulls(obj, schema)` (PruneNonNullableNullsWithoutDefaults: a null where the schema
allows none and has no default is dropped, as decoding into a Go struct would).
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.policy.crd.structural import MISSING, Structural

META = frozenset({"apiVersion", "kind", "metadata"})


def prune(obj: Any, schema: Structural | None, *, root: bool = True) -> list[str]:
    found: list[str] = []
    _prune(obj, schema, "", found, embedded=root)
    return sorted(found)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _prune(x: Any, s: Structural | None, path: str, found: list[str], *, embedded: bool = False) -> None:
    if s is not None and s.preserve_unknown:
        _skip(x, s, path, found, embedded=embedded or s.embedded)
        return
    embedded = embedded or (s is not None and s.embedded)
    if isinstance(x, dict):
        if s is None:
            for k in list(x):
                found.append(_join(path, k))
                del x[k]
            return
        for k in list(x):
            if embedded and k in META:
                continue
            prop = s.properties.get(k)
            if prop is not None:
                _prune(x[k], prop, _join(path, k), found)
            elif s.additional is not None or s.additional_allows:
                _prune(x[k], s.additional, _join(path, k), found)
            else:
                if k not in META or path:
                    found.append(_join(path, k))
                del x[k]
    elif isinstance(x, list):
        items = s.items if s is not None else None
        for i, v in enumerate(x):
            _prune(v, items, f"{path}[{i}]", found)


def _skip(x: Any, s: Structural, path: str, found: list[str], *, embedded: bool) -> None:
    """Under preserve-unknown-fields: keep unknown fields, still prune inside the known ones."""
    if isinstance(x, dict):
        for k, v in x.items():
            if embedded and k in META:
                continue
            prop = s.properties.get(k)
            if prop is not None:
                _prune(v, prop, _join(path, k), found)
            elif s.additional is not None:
                _prune(v, s.additional, _join(path, k), found)
    elif isinstance(x, list) and s.items is not None:
        for i, v in enumerate(x):
            _skip(v, s.items, f"{path}[{i}]", found, embedded=s.items.embedded)


def prune_nulls(x: Any, s: Structural | None) -> None:
    """Drop map values that are null where the schema is not nullable and has no default."""
    if s is None:
        return
    if isinstance(x, dict):
        for k in list(x):
            prop = s.properties.get(k, s.additional)
            if prop is None:
                continue
            if x[k] is None and not prop.nullable and prop.default is MISSING:
                del x[k]
            else:
                prune_nulls(x[k], prop)
    elif isinstance(x, list) and s.items is not None:
        for v in x:
            prune_nulls(v, s.items)
