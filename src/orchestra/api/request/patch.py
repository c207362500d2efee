"""The four PATCH content types kube-apiserver accepts, as pure functions on JSON dicts.

Owns: RFC 7386 merge patch and RFC 6902 JSON patch here; re-exports strategic merge patch (smp.py)
and server-side apply (apply.py), so callers import every engine and error from this one module.
Must not import: anything above the api layer.

Every function returns a new object and never changes its inputs.
"""

from __future__ import annotations

from typing import Any

import orjson

from orchestra.api.request.apply import ApplyConflict, apply_patch
from orchestra.api.request.bodies import MAX_BYTES, STORED_DEPTH, depth_over
from orchestra.api.request.smp import PatchError, copy_json, strategic_merge_patch

__all__ = [
    "ApplyConflict",
    "PatchError",
    "PatchTooLarge",
    "apply_patch",
    "json_patch",
    "merge_patch",
    "strategic_merge_patch",
]


def merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy_json(patch)
    out = copy_json(doc) if isinstance(doc, dict) else {}
    _merge_into(out, patch)
    return out


def _merge_into(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict):
            current = target.get(k)
            if not isinstance(current, dict):
                current = target[k] = {}
            _merge_into(current, v)
        else:
            target[k] = copy_json(v)


# -- RFC 6902 ---------------------------------------------------------------------------------------


MAX_OPERATIONS = 10_000  # kube-apiserver's maxJSONPatchOperations
MAX_COPY_BYTES = MAX_BYTES  # kube-apiserver's JSONPatchMaxCopyBytes


class PatchTooLarge(PatchError):
    """A JSON patch over kube's operation limit; maps to 413."""


def json_patch(doc: Any, ops: list[Any]) -> Any:
    """RFC 6902 JSON patch: add/remove/replace/move/copy/test, applied in order, all or nothing.

    As in kube-apiserver: at most 10,000 operations, and `copy` may add at most 3 MiB in all (each
    copy can double the document). The result may not nest deeper than a stored object may
    (STORED_DEPTH; `move` can double the depth); operations never recurse into the document (a
    copy goes through orjson), so a deep document in between costs nothing but that final check."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a JSON array of operations")
    if len(ops) > MAX_OPERATIONS:
        raise PatchTooLarge(f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, "
                            f"got {len(ops)}")
    root = copy_json(doc)
    copied = [0]
    for n, op in enumerate(ops):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise PatchError(f"json patch operation {n} is not an object with an \"op\"")
        root = _apply_op(root, op, copied)
    if depth_over(root, STORED_DEPTH) is not None:
        raise PatchError(f"the patched object would be nested deeper than {STORED_DEPTH} levels")
    return root


def _pointer(op: dict[str, Any], field: str = "path") -> list[str]:
    path = op.get(field)
    if not isinstance(path, str):
        raise PatchError(f"{op['op']} operation does not have a {field!r} string")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}: must start with \"/\"")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _value(op: dict[str, Any]) -> Any:
    if "value" not in op:
        raise PatchError(f"{op['op']} operation does not contain a value")
    return copy_json(op["value"])


def _index(container: list[Any], token: str, *, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    i = int(token)
    if i > len(container) or (i == len(container) and not for_add):
        raise PatchError(f"array index {i} out of bounds (length {len(container)})")
    return i


def _parent(root: Any, tokens: list[str], op: str) -> Any:
    node = root
    for t in tokens[:-1]:
        if isinstance(node, dict):
            if t not in node:
                raise PatchError(f"{op}: path /{'/'.join(tokens)} does not exist (missing {t!r})")
            node = node[t]
        elif isinstance(node, list):
            node = node[_index(node, t, for_add=False)]
        else:
            raise PatchError(f"{op}: path /{'/'.join(tokens)} goes through a non-container value")
    return node


def _get(root: Any, tokens: list[str], op: str) -> Any:
    if not tokens:
        return root
    parent, last = _parent(root, tokens, op), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"{op}: path /{'/'.join(tokens)} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, for_add=False)]
    raise PatchError(f"{op}: path /{'/'.join(tokens)} goes through a non-container value")


def _add(root: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent, last = _parent(root, tokens, "add"), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_add=True), value)
    else:
        raise PatchError(f"add: cannot add /{'/'.join(tokens)} to a non-container value")
    return root


def _remove(root: Any, tokens: list[str], op: str = "remove") -> Any:
    if not tokens:
        raise PatchError(f"{op}: cannot remove the whole document")
    parent, last = _parent(root, tokens, op), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"{op}: path /{'/'.join(tokens)} does not exist")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, for_add=False))
    raise PatchError(f"{op}: path /{'/'.join(tokens)} goes through a non-container value")


def _apply_op(root: Any, op: dict[str, Any], copied: list[int]) -> Any:
    kind = op["op"]
    tokens = _pointer(op)
    if kind == "add":
        return _add(root, tokens, _value(op))
    if kind == "remove":
        _remove(root, tokens)
        return root
    if kind == "replace":
        value = _value(op)
        if not tokens:
            return value
        _get(root, tokens, "replace")
        parent, last = _parent(root, tokens, "replace"), tokens[-1]
        parent[_index(parent, last, for_add=False) if isinstance(parent, list) else last] = value
        return root
    if kind in ("move", "copy"):
        source = _pointer(op, "from")
        if kind == "move" and tokens[: len(source)] == source and tokens != source:
            raise PatchError(f"move: cannot move {op['from']!r} into its own child {op['path']!r}")
        if kind == "move":
            return _add(root, tokens, _remove(root, source, "move"))
        try:
            data = orjson.dumps(_get(root, source, "copy"))
        except TypeError:  # orjson's depth limit: only an earlier move can have made it that deep
            raise PatchError(f"copy: the value at {op['from']!r} is nested too deeply") from None
        copied[0] += len(data)
        if copied[0] > MAX_COPY_BYTES:
            raise PatchError("Unable to complete the copy, the accumulated size increase of copy is "
                             f"{copied[0]}, exceeding the limit {MAX_COPY_BYTES}")
        return _add(root, tokens, orjson.loads(data))
    if kind == "test":
        actual = _get(root, tokens, "test")
        if not _json_equal(actual, _value(op)):
            raise PatchError(f"test operation failed: value at {op['path']!r} is not the expected value")
        return root
    raise PatchError(f"unknown json patch operation {kind!r}")


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 == 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
