"""Server-side apply (`application/apply-patch+yaml`): a small, honest structured-merge-diff.

Owns: field sets (which fields an applied configuration sets), their `managedFields` encoding
(FieldsV1: `f:<field>`, `k:{<list-map keys>}`, `v:<json>`, `.`), merging a configuration into the live
object, removing fields a manager stopped applying, and conflicts between apply managers.
Must not import: anything above the api layer.

What it does, per apply of `config` by `manager`:
* The new field set is computed from `config` with the schema: structs and granular maps recurse;
  list-maps (x-kubernetes-list-type=map, or a merge key) own each item as `k:{...}` plus its fields;
  sets own `v:<json>` items; atomic lists/structs, scalars and empty maps are leaves. Fields that
  kube-apiserver strips (apiVersion, kind, metadata.name/namespace/uid/resourceVersion/generation/
  creationTimestamp/selfLink/managedFields) are never owned.
* Conflicts: a leaf of the new set owned by another Apply manager whose live value differs from the
  config's. With `force`, ownership moves (the other manager loses the field); without, ApplyConflict.
* The result is live with the config merged in (list-map items merged by key, sets unioned, atomic
  values replaced); then every field this manager owned before but no longer applies is removed,
  unless another Apply manager (or this manager's new set) still owns it or something below it.
  Containers emptied by that removal (an `env` whose last variable went) are removed too.
* `null` in the config means "not set": it is neither owned nor merged.

Deliberate simplifications, relative to Kubernetes:
* Only `operation: Apply` entries are kept in managedFields. Writers that use create/update/patch are
  not tracked (no `operation: Update` entries), so they never cause conflicts and their fields are
  only removed if an apply manager owned them.
* List-map items match on the key fields the config gives; a key field the config omits (a
  server-defaulted `protocol`) is not compared and is left out of the `k:{...}` key.
* Item order: live order, with the config's items placed in the config's order where they are new.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from orchestra.api.errors import Cause
from orchestra.api.request.schema import FieldInfo, Schema
from orchestra.api.request.smp import PatchError, canonical_json, child_info, copy_json, root_info

__all__ = ["ApplyConflict", "apply_patch", "field_set", "fields_v1", "parse_fields_v1"]

PathElement = tuple[str, Any]  # ("f", name) | ("k", canonical json) | ("v", canonical json) | ("i", n)
Path = tuple[PathElement, ...]

_STRIPPED_META = frozenset(
    {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "selfLink",
     "managedFields", "clusterName"}
)
_MISSING: Any = object()


class ApplyConflict(Exception):
    """Fields the apply would change that another apply manager owns; maps to 409 Conflict."""

    def __init__(self, conflicts: list[tuple[str, str]], api_version: str = "") -> None:
        self.conflicts = conflicts  # (other manager, field path like ".spec.replicas")
        self.api_version = api_version
        n = len(conflicts)
        self.message = f"Apply failed with {n} conflict{'s' if n != 1 else ''}: {self._describe()}"
        super().__init__(self.message)

    def _who(self, manager: str) -> str:
        return orjson.dumps(manager).decode() + (f" using {self.api_version}" if self.api_version else "")

    def _describe(self) -> str:
        # structured-merge-diff's Conflicts.Error()
        if len(self.conflicts) == 1:
            manager, path = self.conflicts[0]
            return f"conflict with {self._who(manager)}: {path}"
        by_manager: dict[str, list[str]] = {}
        for manager, path in self.conflicts:
            by_manager.setdefault(manager, []).append(path)
        if len(by_manager) == 1:
            [(manager, paths)] = by_manager.items()
            return f"conflicts with {self._who(manager)}" + "".join(f"\n- {p}" for p in paths)
        return "conflicts with" + "".join(
            f"\n{self._who(m)}:" + "".join(f"\n- {p}" for p in paths) for m, paths in by_manager.items()
        )

    def causes(self) -> list[Cause]:
        """`details.causes` of the 409 Status, one FieldManagerConflict per field."""
        return [Cause("FieldManagerConflict", f"conflict with {self._who(m)}", p) for m, p in self.conflicts]


_canon = canonical_json


def _shape(info: FieldInfo | None, value: Any) -> str:
    """How apply treats a value: "struct" | "listmap" | "set" | "leaf"."""
    if isinstance(value, dict):
        if info is None or (info.type in ("object", "map") and info.map_type != "atomic"):
            return "struct"
        return "leaf"
    if isinstance(value, list) and info is not None and info.type == "array":
        merges = "merge" in (info.patch_strategy or "").split(",")
        if info.list_type == "map" or (info.list_type is None and merges and info.merge_key):
            return "listmap" if info.item_keys else "leaf"
        if info.list_type == "set" or (info.list_type is None and merges):
            return "set"
    return "leaf"


def _item_key(item: Any, info: FieldInfo) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise PatchError(f"associative list item must be an object, got {_canon(item)}")
    key = {k: item[k] for k in info.item_keys if item.get(k) is not None}
    if not key:
        raise PatchError(f"associative list with keys {list(info.item_keys)} has an element that omits "
                         f"all key fields: {_canon(item)}")
    return key


# -- field sets -------------------------------------------------------------------------------------


def field_set(config: dict[str, Any], schema: Schema | None, definition: str) -> set[Path]:
    """The paths `config` sets, as structured-merge-diff would record them."""
    out: set[Path] = set()
    info = root_info(schema, definition)
    for k, v in config.items():
        if k in ("apiVersion", "kind") or v is None:
            continue
        sub = child_info(schema, info, k)
        if k == "metadata" and isinstance(v, dict):
            meta = {mk: mv for mk, mv in v.items() if mk not in _STRIPPED_META}
            if meta:
                _collect(meta, sub, (("f", k),), out, schema)
            continue
        _collect(v, sub, (("f", k),), out, schema)
    return out


def _collect(value: Any, info: FieldInfo | None, prefix: Path, out: set[Path], schema: Schema | None) -> None:
    shape = _shape(info, value)
    if shape == "struct" and value:
        for k, v in value.items():
            if v is not None:
                _collect(v, child_info(schema, info, k), (*prefix, ("f", k)), out, schema)
    elif shape == "listmap":
        assert info is not None
        for item in value:
            here = (*prefix, ("k", _canon(_item_key(item, info))))
            out.add(here)
            for k, v in item.items():
                if v is not None:
                    _collect(v, child_info(schema, info.items, k), (*here, ("f", k)), out, schema)
    elif shape == "set":
        out.update((*prefix, ("v", _canon(item))) for item in value)
    else:
        out.add(prefix)


def fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """Encode a field set as FieldsV1 (`.` marks a member that also has children)."""
    root: dict[str, Any] = {}
    members = []
    for path in paths:
        node = root
        for kind, v in path:
            node = node.setdefault(f"{kind}:{v}", {})
        members.append(node)
    for node in members:
        if node:
            node["."] = {}
    return _sorted(root)


def _sorted(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted(node[k]) for k in sorted(node)}


def parse_fields_v1(tree: Any) -> set[Path]:
    """Decode FieldsV1 into a field set; malformed entries are ignored (they own nothing)."""
    out: set[Path] = set()
    if isinstance(tree, dict):
        _parse(tree, (), out)
    return out


def _parse(node: dict[str, Any], prefix: Path, out: set[Path]) -> None:
    for key, sub in node.items():
        if key == ".":
            out.add(prefix)
            continue
        kind, _, raw = key.partition(":")
        v: Any = raw
        try:
            if kind in ("k", "v"):
                v = _canon(orjson.loads(raw))
            elif kind == "i":
                v = int(raw)
            elif kind != "f":
                continue
        except (orjson.JSONDecodeError, ValueError):
            continue  # not a path we could have written
        here = (*prefix, (kind, v))
        if isinstance(sub, dict) and sub:
            _parse(sub, here, out)
        else:
            out.add(here)


def path_string(path: Path) -> str:
    """structured-merge-diff's rendering: .spec.containers[name="web"].image"""
    parts = []
    for kind, v in path:
        if kind == "f":
            parts.append(f".{v}")
        elif kind == "k":
            parts.append("[" + ",".join(f"{k}={_canon(x)}" for k, x in orjson.loads(v).items()) + "]")
        elif kind == "v":
            parts.append(f"[={v}]")
        else:
            parts.append(f"[{v}]")
    return "".join(parts)


# -- navigation -------------------------------------------------------------------------------------


def _eq_key(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A hashable stand-in for values compared with ==: scalars as they are, objects as JSON text."""
    return tuple(v if not isinstance(v, dict | list) else _canon(v) for v in values)


class _Finder:
    """Path steps into list items by key or value in O(1), from indexes built once per list.

    A path step searched the list each time, so a field set over an n-item list cost O(n^2): past a
    few thousand items, seconds to minutes of CPU. Lists are not changed while an index is in use:
    removals are recorded (`doomed`) and applied at the end (`compact`)."""

    def __init__(self) -> None:
        self._tables: dict[tuple[int, Any], tuple[list[Any], dict[Any, Any]]] = {}
        self.doomed: dict[int, tuple[list[Any], set[int]]] = {}  # id(list) -> (list, ids of items to drop)

    def _table(self, lst: list[Any], names: Any, key_of: Any) -> dict[Any, Any]:
        entry = self._tables.get((id(lst), names))
        if entry is None or entry[0] is not lst:
            table: dict[Any, Any] = {}
            for item in lst:
                k = key_of(item)
                if k is not None:
                    table.setdefault(k, item)
            entry = self._tables[(id(lst), names)] = (lst, table)
        return entry[1]

    def step(self, value: Any, element: PathElement) -> Any:
        kind, v = element
        if kind == "f":
            return value.get(v, _MISSING) if isinstance(value, dict) else _MISSING
        if not isinstance(value, list):
            return _MISSING
        if kind == "k":
            key = orjson.loads(v)
            names = tuple(sorted(key))
            table = self._table(value, names, lambda item: _eq_key(tuple(item.get(n) for n in names))
                                if isinstance(item, dict) else None)
            return table.get(_eq_key(tuple(key[n] for n in names)), _MISSING)
        if kind == "v":
            return self._table(value, "v", _canon).get(v, _MISSING)
        return value[v] if 0 <= v < len(value) else _MISSING

    def get(self, value: Any, path: Path) -> Any:
        for element in path:
            value = self.step(value, element)
            if value is _MISSING:
                break
        return value

    def is_empty(self, container: Any) -> bool:
        if isinstance(container, list):
            _, gone = self.doomed.get(id(container), (container, set()))
            return len(container) <= len(gone)
        return not container

    def remove(self, root: dict[str, Any], path: Path, protected: set[Path]) -> None:
        """Remove the value at `path`; then drop containers this emptied, unless someone owns into them."""
        parents: list[Any] = [root]  # parents[i] holds path[i]
        for element in path[:-1]:
            nxt = self.step(parents[-1], element)
            if not isinstance(nxt, dict | list):
                return
            parents.append(nxt)
        depth = len(path) - 1
        self._delete(parents[depth], path[depth], self.step(parents[depth], path[depth]))
        while depth > 0 and self.is_empty(parents[depth]) and path[:depth] not in protected:
            emptied = parents[depth]
            depth -= 1
            self._delete(parents[depth], path[depth], emptied)

    def _delete(self, container: Any, element: PathElement, target: Any) -> None:
        if target is _MISSING:
            return
        if isinstance(container, dict):
            container.pop(element[1], None)
        else:  # a list: drop that very item (an emptied item no longer matches its key), at the end
            self.doomed.setdefault(id(container), (container, set()))[1].add(id(target))

    def compact(self) -> None:
        for container, gone in self.doomed.values():
            container[:] = [item for item in container if id(item) not in gone]
        self.doomed.clear()


# -- merging ----------------------------------------------------------------------------------------


def _merge(live: Any, config: Any, info: FieldInfo | None, schema: Schema | None) -> Any:
    shape = _shape(info, config)
    if shape == "struct" and isinstance(live, dict):
        out = dict(live)
        for k, v in config.items():
            if v is not None:
                out[k] = _merge(live.get(k, _MISSING), v, child_info(schema, info, k), schema)
        return out
    if shape == "listmap" and isinstance(live, list):
        assert info is not None
        return _merge_list_map(live, config, info, schema)
    if shape == "set" and isinstance(live, list):
        known = {_canon(x) for x in live}
        return [*live, *(copy_json(x) for x in config if _canon(x) not in known)]
    if shape == "struct":
        return _merge({}, config, info, schema)
    if shape == "listmap":
        assert info is not None
        return _merge_list_map([], config, info, schema)
    return copy_json(config)


def _merge_list_map(live: list[Any], config: list[Any], info: FieldInfo, schema: Schema | None) -> list[Any]:
    merged: dict[int, Any] = {}  # index in config -> merged item
    live_match: dict[int, int] = {}  # index in live -> index in config
    unmatched: dict[tuple[str, ...], dict[Any, list[int]]] = {}  # key names -> key values -> live indexes
    for ci, item in enumerate(config):
        key = _item_key(item, info)
        names = tuple(sorted(key))
        if names not in unmatched:
            table: dict[Any, list[int]] = {}
            for i, x in enumerate(live):
                if isinstance(x, dict):
                    table.setdefault(_eq_key(tuple(x.get(n) for n in names)), []).append(i)
            unmatched[names] = table
        candidates = unmatched[names].get(_eq_key(tuple(key[n] for n in names)), [])
        while candidates and candidates[0] in live_match:  # taken through another key shape
            candidates.pop(0)
        li = candidates.pop(0) if candidates else None
        base = live[li] if li is not None else {}
        if li is not None:
            live_match[li] = ci
        merged[ci] = _merge(base, item, info.items, schema)
    out: list[Any] = []
    emitted = 0
    for li, x in enumerate(live):
        if li not in live_match:
            out.append(x)
            continue
        upto = live_match[li]
        while emitted <= upto:  # config items up to this shared one, in config order
            out.append(merged[emitted])
            emitted += 1
    out.extend(merged[ci] for ci in range(emitted, len(config)))
    return out


# -- apply ------------------------------------------------------------------------------------------


def apply_patch(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    *,
    force: bool,
    schema: Schema | None,
    definition: str,
) -> dict[str, Any]:
    """Server-side apply `config` as `manager` onto `live` (None: create). Inputs are not changed."""
    if not isinstance(config, dict):
        raise PatchError(f"apply configuration must be a JSON object, not {type(config).__name__}")
    if not manager:
        raise PatchError("fieldManager is required for apply requests")
    metadata = config.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise PatchError(f"metadata must be an object, not {type(metadata).__name__}")
    config = {**config, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}
    base = live if live is not None else {}
    api_version = str(config.get("apiVersion") or base.get("apiVersion") or "")
    live_meta = base.get("metadata")
    recorded = live_meta.get("managedFields") if isinstance(live_meta, dict) else None
    entries = [e for e in (recorded if isinstance(recorded, list) else [])
               if isinstance(e, dict) and e.get("operation") == "Apply"]
    others = {e.get("manager", ""): parse_fields_v1(e.get("fieldsV1")) for e in entries
              if e.get("manager") != manager}
    previous = next((e for e in entries if e.get("manager") == manager), None)
    before = parse_fields_v1(previous.get("fieldsV1")) if previous else set()
    mine = field_set(config, schema, definition)

    _resolve_conflicts(base, config, mine, others, force=force, api_version=api_version)

    # _merge shares untouched subtrees with live; copy before removing anything in place.
    result = copy_json(_merge(base, config, root_info(schema, definition), schema))
    protected = {
        p[:i] for p in (*mine, *(q for s in others.values() for q in s)) for i in range(1, len(p) + 1)
    }
    finder = _Finder()
    for path in sorted(before - mine, key=len):  # an item before its fields
        if path not in protected:
            finder.remove(result, path, protected)
    finder.compact()

    metadata = result.setdefault("metadata", {})
    metadata["managedFields"] = _entries(entries, others, manager, mine, before, previous, api_version)
    return result


def _resolve_conflicts(
    live: dict[str, Any],
    config: dict[str, Any],
    mine: set[Path],
    others: dict[str, set[Path]],
    *,
    force: bool,
    api_version: str,
) -> None:
    conflicts: list[tuple[str, Path]] = []
    finder = _Finder()
    for other, owned in others.items():
        for path in sorted(mine & owned, key=path_string):
            if path[-1][0] in ("f", "i") and finder.get(live, path) != finder.get(config, path):
                conflicts.append((other, path))
    if not conflicts:
        return
    if not force:
        raise ApplyConflict([(m, path_string(p)) for m, p in conflicts], api_version)
    for other, path in conflicts:
        others[other].discard(path)


def _entries(
    entries: list[dict[str, Any]],
    others: dict[str, set[Path]],
    manager: str,
    mine: set[Path],
    before: set[Path],
    previous: dict[str, Any] | None,
    api_version: str,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    placed = False
    for e in entries:
        name = e.get("manager", "")
        if name == manager:
            placed = True
            if mine:
                out.append(_entry(manager, mine, before, previous, api_version))
        elif others.get(name):
            if parse_fields_v1(e.get("fieldsV1")) == others[name]:
                out.append(copy_json(e))
            else:  # forced: this manager lost fields
                out.append({**copy_json(e), "fieldsV1": fields_v1(others[name])})
    if not placed and mine:
        out.append(_entry(manager, mine, before, previous, api_version))
    return out


def _entry(
    manager: str, mine: set[Path], before: set[Path], previous: dict[str, Any] | None, api_version: str
) -> dict[str, Any]:
    unchanged = previous is not None and before == mine and previous.get("apiVersion") == api_version
    time = previous.get("time") if unchanged and previous else None
    return {
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": time or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(mine),
    }
