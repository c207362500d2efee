"""x-kubernetes-list-type set and map: the uniqueness kube checks on every write (listtype package).

Owns: `list_errors(obj, schema) -> list[Cause]`: a `set` list may not repeat an item (each repeated
value reported once, at its second index), a `map` list may not repeat a key tuple (a missing key
counts as unspecified) and holds only objects. The same list types drive server-side apply's merge
(api/request/apply.py reads them through crd/openapi.py's schema view).
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

import json
from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import GoRepr, duplicate, invalid
from orchestra.api.policy.crd.structural import Structural
from orchestra.api.policy.crd.values import go_json


def list_errors(obj: Any, s: Structural | None, path: str = "") -> list[Cause]:
    if s is None:
        return []
    if isinstance(obj, dict):
        errs: list[Cause] = []
        for k in sorted(obj):
            if s.additional is not None and k not in s.properties:
                errs += list_errors(obj[k], s.additional, f"{path}[{k}]")
            elif k in s.properties:
                errs += list_errors(obj[k], s.properties[k], f"{path}.{k}" if path else k)
        return errs
    if isinstance(obj, list):
        errs = []
        if s.list_type == "set":
            errs += [duplicate(f"{path}[{i}]", _shown(obj[i])) for i in _repeated(obj)]
        elif s.list_type == "map":
            errs += _map_errors(obj, s, path)
        if s.items is not None:
            for i, item in enumerate(obj):
                errs += list_errors(item, s.items, f"{path}[{i}]")
        return errs
    return []


def _shown(value: Any) -> Any:
    return GoRepr(go_json(value)) if isinstance(value, dict | list) else value


def _repeated(items: list[Any]) -> list[int]:
    """Indexes of the second occurrence of each repeated value (validateListSet)."""
    seen: dict[str, int] = {}
    out: list[int] = []
    for i, x in enumerate(items):
        key = json.dumps(x, sort_keys=True) if isinstance(x, dict | list) else f"{type(x).__name__}:{x!r}"
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            out.append(i)
    return out


def _map_errors(obj: list[Any], s: Structural, path: str) -> list[Cause]:
    for i, x in enumerate(obj):
        if x is not None and not isinstance(x, dict):
            return [invalid(f"{path}[{i}]", _shown(x), "must be an object for an array of list-type map")]
    keys = [{k: x[k] for k in s.list_map_keys if k in x} if isinstance(x, dict) else {} for x in obj]
    if len(s.list_map_keys) == 1:
        field = s.list_map_keys[0]
        scalar = [k.get(field, _Unset) for k in keys]
        return [duplicate(f"{path}[{i}]", GoRepr(go_json(keys[i]))) for i in _repeated(
            [f"unset:{id(_Unset)}" if v is _Unset else v for v in scalar])]
    return [duplicate(f"{path}[{i}]", GoRepr(go_json(keys[i]))) for i in _repeated(keys)]


class _Unset:
    """A list-map item without its key (kube's unspecifiedKeyValue)."""
