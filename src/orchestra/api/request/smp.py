"""Strategic merge patch (`application/strategic-merge-patch+json`), as kube-apiserver applies it.

Owns: the merge of a strategic patch into an object, with list strategies and merge keys read from
the schema (`x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`, looked up by the parent
definition, so `ports` merges on `containerPort` in a Container and on `port` in a ServiceSpec), and
the directives `$patch` (replace|merge|delete), `$setElementOrder/<list>`,
`$deleteFromPrimitiveList/<list>` and `$retainKeys`. Also `PatchError`, raised by every patch engine.
Must not import: anything above the api layer.

Follows k8s.io/apimachinery/pkg/util/strategicpatch (mergeMap / mergeSlice / normalizeElementOrder)
with the server's options (MergeParallelList, IgnoreUnmatchedNulls). Where the Go code would copy a
patch value containing directives verbatim into the object (a key or list item the object lacks), this
merges it into an empty value instead, so no `$`-directive ever leaks into a stored object.
Fields the schema does not know (or an unknown definition) get merge-patch semantics: maps merge,
lists are replaced.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Any

import orjson

from orchestra.api.request.schema import FieldInfo, Schema

__all__ = ["PatchError", "canonical_json", "child_info", "copy_json", "strategic_merge_patch"]

_ORDER = "$setElementOrder/"
_DELETE_FROM = "$deleteFromPrimitiveList/"


class PatchError(Exception):
    """A patch that cannot be applied (malformed, failed `test`, bad directive); maps to HTTP 422/400."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def copy_json(v: Any) -> Any:
    """A deep copy of a JSON value (dict/list/scalars), several times faster than copy.deepcopy."""
    if isinstance(v, dict):
        return {k: copy_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [copy_json(x) for x in v]
    return v


def child_info(schema: Schema | None, info: FieldInfo | None, key: str) -> FieldInfo | None:
    """The schema of `key` inside a value described by `info` (a struct, or a map's values)."""
    if schema is None or info is None:
        return None
    if info.type == "object" and info.ref:
        return schema.field(info.ref, key)
    if info.type == "map":
        return info.items
    return None


def root_info(schema: Schema | None, definition: str) -> FieldInfo | None:
    if schema is None or not schema.has(definition):
        return None
    return FieldInfo("object", ref=definition)


def strategic_merge_patch(
    doc: dict[str, Any], patch: dict[str, Any], schema: Schema | None, definition: str
) -> dict[str, Any]:
    """`doc` with `patch` merged in; neither input is changed."""
    if not isinstance(patch, dict):
        raise PatchError(f"strategic merge patch must be a JSON object, not {type(patch).__name__}")
    original = copy_json(doc) if isinstance(doc, dict) else {}
    return _Merger(schema).merge_map(original, copy_json(patch), root_info(schema, definition))


def _strategies(info: FieldInfo | None) -> set[str]:
    if info is None or not info.patch_strategy:
        return set()
    return set(info.patch_strategy.split(","))


def canonical_json(v: Any) -> str:
    """Compact JSON with sorted keys (the form of `k:{...}` keys in managedFields)."""
    try:
        return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # integers beyond 64 bits, which orjson refuses
        return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _hashable(v: Any) -> Hashable:
    if isinstance(v, dict | list):
        return canonical_json(v)
    return v  # type: ignore[no-any-return]


class _Merger:
    def __init__(self, schema: Schema | None) -> None:
        self.schema = schema

    # -- maps -----------------------------------------------------------------------------------

    def merge_map(
        self, original: dict[str, Any], patch: dict[str, Any], info: FieldInfo | None
    ) -> dict[str, Any]:
        """Merge `patch` into `original` (both owned copies; `original` is changed and returned)."""
        if "$patch" in patch:
            directive = patch.pop("$patch")
            if directive == "delete":
                return {}
            if directive == "replace":
                return self.merge_map({}, patch, info)
            if directive != "merge":
                raise PatchError(f"unknown patch type: {directive!r} in map: {_show(patch)}")
        if "$retainKeys" in patch:
            self._retain_keys(original, patch, patch.pop("$retainKeys"))
        orders, deletions = self._pop_list_directives(patch)
        server_orders = {k: original.get(k) for k in orders}
        for key, value in patch.items():
            sub = child_info(self.schema, info, key)
            if value is None:
                original.pop(key, None)  # IgnoreUnmatchedNulls: a null for a missing key is a no-op
            elif key not in original:
                original[key] = self.fresh(value, sub)
            else:
                original[key] = self.merge_value(original[key], value, sub)
        for key, values in deletions.items():
            current = original.get(key)
            if isinstance(current, list):
                doomed = {_hashable(v) for v in values}
                original[key] = [v for v in current if _hashable(v) not in doomed]
        for key, order in orders.items():
            current = original.get(key)
            if isinstance(current, list):
                server = server_orders[key]
                sub = child_info(self.schema, info, key)
                original[key] = self._set_order(
                    current, order, server if isinstance(server, list) else [], sub
                )
        return original

    def merge_value(self, old: Any, new: Any, info: FieldInfo | None) -> Any:
        if isinstance(old, dict) and isinstance(new, dict):
            if "replace" in _strategies(info):
                return self.fresh(new, info)
            return self.merge_map(old, new, info)
        if isinstance(old, list) and isinstance(new, list):
            return self.merge_list(old, new, info)
        return self.fresh(new, info)

    def fresh(self, value: Any, info: FieldInfo | None) -> Any:
        """A patch value for a place the object does not have: directives applied, nulls dropped."""
        if isinstance(value, dict):
            return self.merge_map({}, value, info)
        if isinstance(value, list):
            return self.merge_list([], value, info)
        return value

    def _retain_keys(self, original: dict[str, Any], patch: dict[str, Any], keep: Any) -> None:
        if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
            raise PatchError(f"$retainKeys must be a list of strings, got {_show(keep)}")
        allowed = set(keep)
        for k, v in patch.items():
            if v is not None and not k.startswith("$") and k not in allowed:
                raise PatchError(f"field {k!r} is in the patch but not in $retainKeys {keep}")
        for k in [k for k in original if k not in allowed]:
            del original[k]

    def _pop_list_directives(
        self, patch: dict[str, Any]
    ) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        orders: dict[str, list[Any]] = {}
        deletions: dict[str, list[Any]] = {}
        for key in [k for k in patch if k.startswith("$")]:
            value = patch.pop(key)
            if key.startswith(_ORDER):
                target = orders
            elif key.startswith(_DELETE_FROM):
                target = deletions
            else:
                raise PatchError(f"unknown strategic merge patch directive {key!r}")
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list, got {_show(value)}")
            target[key.split("/", 1)[1]] = value
        return orders, deletions

    # -- lists ----------------------------------------------------------------------------------

    def merge_list(self, original: list[Any], patch: list[Any], info: FieldInfo | None) -> list[Any]:
        if "merge" not in _strategies(info):
            return [self.fresh(v, None) if isinstance(v, dict) else v for v in patch]
        assert info is not None
        if not original and not patch:
            return []
        if not any(isinstance(v, dict) for v in (*original, *patch)):
            return self._merge_primitives(original, patch)
        if not all(isinstance(v, dict) for v in (*original, *patch)):
            raise PatchError(f"list {info.ref or ''} mixes objects and other values: {_show(patch)}")
        if not info.merge_key:
            raise PatchError(f"cannot merge lists without merge key for {info.ref or 'list'}")
        return self._merge_maps_by_key(original, patch, info.merge_key, info.items)

    def _merge_primitives(self, original: list[Any], patch: list[Any]) -> list[Any]:
        merged: list[Any] = []
        seen: set[Hashable] = set()
        for v in (*original, *patch):
            h = _hashable(v)
            if h not in seen:
                seen.add(h)
                merged.append(v)
        in_patch = {_hashable(v) for v in patch}
        patch_items = [v for v in merged if _hashable(v) in in_patch]
        server_only = [v for v in merged if _hashable(v) not in in_patch]
        return _normalize(patch_items, server_only, patch, original, _hashable)

    def _merge_maps_by_key(
        self, original: list[Any], patch: list[Any], key: str, item_info: FieldInfo | None
    ) -> list[Any]:
        keyf = _key_of(key)
        items = list(original)
        plain: list[dict[str, Any]] = []
        deleted: set[Hashable] = set()
        replace = False
        for p in patch:
            directive = p.get("$patch")
            if directive is None:
                plain.append(p)
            elif directive == "delete":
                if key not in p:
                    raise PatchError(f"map: {_show(p)} does not contain declared merge key: {key}")
                deleted.add(_hashable(p[key]))  # a missing item: nothing to do
            elif directive == "replace":
                replace = True
            elif directive == "merge":
                raise PatchError("merging lists cannot yet be specified in the patch")
            else:
                raise PatchError(f"unknown patch type: {directive!r} in map: {_show(p)}")
        if deleted:
            items = [o for o in items if _hashable(o.get(key)) not in deleted]
        if replace:
            items, plain = [self.merge_map({}, p, item_info) for p in plain], []
        server_order = list(items)
        # merge key -> position, so an n-item patch of an n-item list is O(n), not O(n^2)
        where = _positions(items, lambda o: _hashable(o.get(key)))
        for p in plain:
            if key not in p:
                raise PatchError(f"map: {_show(p)} does not contain declared merge key: {key}")
            at = where.get(_hashable(p[key]))
            if at is None:
                where[_hashable(p[key])] = len(items)
                items.append(self.merge_map({}, p, item_info))
            else:
                items[at] = self.merge_map(items[at], p, item_info)
        in_patch = {keyf(p) for p in plain}
        patch_items = [v for v in items if keyf(v) in in_patch]
        server_only = [v for v in items if keyf(v) not in in_patch]
        return _normalize(patch_items, server_only, plain, server_order, keyf)

    def _set_order(
        self, merged: list[Any], order: list[Any], server: list[Any], info: FieldInfo | None
    ) -> list[Any]:
        """Apply `$setElementOrder/<list>`: the patch's final order, server-only items kept in place."""
        if info is not None and info.merge_key and all(isinstance(v, dict) for v in merged):
            mk = info.merge_key
            for o in order:
                if not isinstance(o, dict) or mk not in o:
                    raise PatchError(f"$setElementOrder item {_show(o)} does not contain merge key: {mk}")
            keyf = _key_of(mk)
        else:
            keyf = _hashable
        wanted = {keyf(o) for o in order}
        patch_items = [v for v in merged if keyf(v) in wanted]
        server_only = [v for v in merged if keyf(v) not in wanted]
        return _normalize(patch_items, server_only, order, server, keyf)


def _key_of(key: str) -> Callable[[Any], Hashable]:
    def keyf(v: Any) -> Hashable:
        return _hashable(v.get(key)) if isinstance(v, dict) else _hashable(v)

    return keyf


def _positions(items: list[Any], keyf: Callable[[Any], Hashable]) -> dict[Hashable, int]:
    pos: dict[Hashable, int] = {}
    for i, v in enumerate(items):
        pos.setdefault(keyf(v), i)
    return pos


def _normalize(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    keyf: Callable[[Any], Hashable],
) -> list[Any]:
    """strategicpatch.normalizeElementOrder: sort each side by its order, then interleave by server order."""
    by_patch = _positions(patch_order, keyf)
    by_server = _positions(server_order, keyf)
    patch_items = sorted(patch_items, key=lambda v: by_patch.get(keyf(v), len(by_patch)))
    server_only = sorted(server_only, key=lambda v: by_server.get(keyf(v), len(by_server)))
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(patch_items):
        if j >= len(patch_items):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(patch_items[j])
            j += 1
        else:
            li = by_server.get(keyf(server_only[i]))
            ri = by_server.get(keyf(patch_items[j]))
            if li is not None and ri is not None and li < ri:
                out.append(server_only[i])
                i += 1
            else:
                out.append(patch_items[j])
                j += 1
    return out


def _show(v: Any) -> str:
    return canonical_json(v)
