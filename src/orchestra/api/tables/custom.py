"""Server-side Tables of custom resources: kube's CRD table convertor.

Owns: `custom_columns(rt)` (Name, then the version's additionalPrinterColumns — or Age when it has
none — with their type, format, priority and description) and `custom_cells(rt, obj, now)` (each
column's JSONPath evaluated, the first match shown: a string column as JSONPath prints it, integer,
number and boolean typed, a date as an age like `kubectl get` shows kube's).
Must not import: api/request, the store, the HTTP server, or anything above the api layer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestra.api.machinery.jsonpath import JSONPath, JSONPathError, compile_path
from orchestra.api.policy.crd.model import compiled
from orchestra.api.registry import ResourceType
from orchestra.api.tables.columns import AGE_DESC, NAME_DESC
from orchestra.objects import Obj, as_dict
from orchestra.objects.times import human_duration, parse_time

AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": AGE_DESC}


def _columns(rt: ResourceType) -> list[dict[str, Any]]:
    assert rt.custom is not None
    return list(compiled(rt.custom).columns) or [AGE]


def custom_columns(rt: ResourceType) -> list[dict[str, Any]]:
    out = [{"name": "Name", "type": "string", "format": "name", "description": NAME_DESC, "priority": 0}]
    for col in _columns(rt):
        desc = (
            col.get("description")
            or f"Custom resource definition column (in JSONPath format): {col.get('jsonPath')}"
        )
        out.append({"name": col.get("name"), "type": col.get("type"), "format": col.get("format") or "",
                    "description": desc, "priority": int(col.get("priority") or 0)})
    return out


def _paths(rt: ResourceType) -> list[JSONPath | None]:
    assert rt.custom is not None
    found = rt.custom.cache.get("columns")
    if found is None:
        found = []
        for col in _columns(rt):
            try:
                found.append(compile_path(str(col.get("jsonPath") or "")))
            except JSONPathError:
                found.append(None)  # kube falls back to printing nothing for a column it cannot parse
        rt.custom.cache["columns"] = found
    return found  # type: ignore[no-any-return]


def custom_cells(rt: ResourceType, obj: Obj, now: datetime) -> list[Any]:
    cells: list[Any] = [str(as_dict(obj.get("metadata")).get("name") or "")]
    for col, path in zip(_columns(rt), _paths(rt), strict=True):
        found = path.find(obj) if path is not None else []
        cells.append(_cell(str(col.get("type")), found[0], now) if found else None)
    return cells


def _cell(kind: str, value: Any, now: datetime) -> Any:
    if value is None:
        return None
    if kind == "string":
        return JSONPath.text(value)
    if kind == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        t = parse_time(value)
        return "<invalid>" if t is None else human_duration((now - t).total_seconds())
    return None
