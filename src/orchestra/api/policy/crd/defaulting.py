"""Defaulting of custom resources from their structural schema (apiextensions' defaulting.Default).

Owns: `default(obj, schema)` — in place, a missing property (or a null one that may not be null)
takes a deep copy of its schema default, then defaulting recurses into every value, additionalProperties
and array items included. The API core applies it on writes (before validation) and on reads (objects
stored before a default was added come back defaulted, as kube's decoder does).
And `default_errors(schema, path)` — a CRD's defaults must themselves validate, and be pruned
(ValidateDefaults): no unknown fields in a default, no value the schema refuses.
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

import copy
from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import GoRepr, invalid
from orchestra.api.policy.crd import values
from orchestra.api.policy.crd.pruning import prune
from orchestra.api.policy.crd.structural import MISSING, Structural


def default(x: Any, s: Structural | None) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        for k, prop in s.properties.items():
            if prop.default is MISSING:
                continue
            if k not in x or (x[k] is None and not prop.nullable):
                x[k] = copy.deepcopy(prop.default)
        for k, v in x.items():
            found = s.properties.get(k)
            if found is not None:
                default(v, found)
            elif s.additional is not None:
                if v is None and not s.additional.nullable and s.additional.default is not MISSING:
                    x[k] = v = copy.deepcopy(s.additional.default)
                default(v, s.additional)
    elif isinstance(x, list) and s.items is not None:
        for i, v in enumerate(x):
            if v is None and not s.items.nullable and s.items.default is not MISSING:
                x[i] = v = copy.deepcopy(s.items.default)
            default(v, s.items)


def default_errors(s: Structural, path: str) -> list[Cause]:
    """ValidateDefaults: each default carries no field pruning would drop, and validates against its
    own node (messages name paths relative to the default, as kube's do)."""
    errs: list[Cause] = []
    for rel, node in _nodes_with_defaults(s, path):
        at = f"{rel}.default"
        if isinstance(node.default, dict | list):
            pruned = copy.deepcopy(node.default)
            if prune(pruned, node, root=node.embedded):
                errs.append(invalid(at, GoRepr(values.go_json(node.default)), "must not have unknown fields"))
                continue
        errs += values.validate(node.default, node, field=at)
    return errs


def _nodes_with_defaults(s: Structural, path: str) -> list[tuple[str, Structural]]:
    out: list[tuple[str, Structural]] = []
    if s.default is not MISSING:
        out.append((path, s))
    if s.items is not None:
        out += _nodes_with_defaults(s.items, f"{path}.items")
    for k in sorted(s.properties):
        out += _nodes_with_defaults(s.properties[k], f"{path}.properties[{k}]")
    return out
