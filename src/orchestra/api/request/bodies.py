"""Request bodies decoded under limits, and the limits every stored object is held to.

Owns: `MAX_BYTES` (3 MiB, kube-apiserver's request body limit, applied to the decoded object too),
`MAX_DEPTH` (nesting levels of a body) and `STORED_DEPTH` (of a stored object: a little more, for
the managedFields of a body at MAX_DEPTH); decoding JSON and YAML bodies into JSON values with
those limits and with kube's strict-decoding findings (duplicate fields); `stored_bytes`, the
encoded form of an object about to be stored (refused past the limits); `decode_off_loop`, which
runs a decode big enough to be slow in a worker thread. Kubernetes protobuf bodies, which only
the HTTP layer receives, decode in apiserver/protobuf.py under the same limits.
Must not import: anything above the api layer.

Why MAX_DEPTH is 200 and not kube's 10,000 (Go's JSON scanner and go-yaml both refuse 10,000 levels):
orjson, which encodes every stored object and response, refuses more than 254 levels, and a stored
object is served inside up to four more (a watch event of a Table row) plus, for apply,
managedFields paths a few levels below it; the patch engines and validation also recurse once
or twice per level within Python's 1,000-frame limit. 200 keeps every path within both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import orjson
import trio
from ruamel.yaml.error import YAMLError

from orchestra.api.request import yamlbody

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "STORED_DEPTH",
    "DecodeError",
    "Decoded",
    "ObjectLimitError",
    "decode_json",
    "decode_off_loop",
    "decode_yaml",
    "depth_error",
    "depth_over",
    "stored_bytes",
    "too_large_message",
]

MAX_BYTES = 3 * 1024 * 1024
MAX_DEPTH = 200
# Server-side apply records a body's deepest field in managedFields five levels further down
# (metadata, managedFields, the entry, fieldsV1, the leaf's `{}`): stored objects may be that deep.
STORED_DEPTH = MAX_DEPTH + 8
OFF_LOOP_BYTES = 64 * 1024  # YAML and protobuf bodies past this are decoded in a worker thread
_LIMITER: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("orchestra_decode_limiter")
T = TypeVar("T")


class DecodeError(ValueError):
    """A body that cannot be decoded. `reason` is "syntax", "depth" or "too_large" (the decoded
    size is over MAX_BYTES); `message` is the detail only: each caller adds kube's prefix."""

    def __init__(self, message: str, *, reason: str = "syntax") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason

    @property
    def too_large(self) -> bool:
        return self.reason == "too_large"


@attrs.frozen
class Decoded:
    """A decoded body: its JSON value and the fields it gave twice (`a.b`, `c[0].d`), in order."""

    value: Any
    duplicates: tuple[str, ...] = ()


def too_large_message(size: int | None = None) -> str:
    """The message of the 413 for a decoded body or object over MAX_BYTES."""
    detail = f" (the decoded object is {size} bytes)" if size is not None else ""
    return f"Request entity too large: limit is {MAX_BYTES}{detail}"


# -- depth --------------------------------------------------------------------------------------------


def depth_over(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """None if `value` nests at most `limit` containers deep; else the opening character (`{` or `[`)
    of the first container past the limit, as Go's scanner names it. Iterative: any depth is safe."""
    if not isinstance(value, dict | list):
        return None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return "{" if isinstance(node, dict) else "["
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return None


def depth_error(char: str) -> DecodeError:
    """The error for a value nesting past MAX_DEPTH at `char` (see depth_over), worded like Go's scanner."""
    return DecodeError(f"invalid character '{char}' exceeded max depth of {MAX_DEPTH}", reason="depth")


def _check_depth(value: Any, text: bytes) -> None:
    # Each level opens a bracket, so a text with few brackets cannot be deep: skip the walk.
    if text.count(b"[") + text.count(b"{") <= MAX_DEPTH:
        return
    char = depth_over(value)
    if char is not None:
        raise depth_error(char)


# -- JSON ---------------------------------------------------------------------------------------------


def decode_json(data: bytes, *, find_duplicates: bool = True) -> Decoded:
    """A JSON body: syntax, depth and decoded size checked; duplicate fields found when asked."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):  # orjson stops at 1,024 levels
            raise depth_error("[" if data.lstrip()[:1] == b"[" else "{") from None
        raise DecodeError(str(exc)) from None
    _check_depth(value, data)
    out = orjson.dumps(value)
    if len(out) > MAX_BYTES:  # numbers can grow when re-encoded (1e9 -> 1000000000.0)
        raise DecodeError(too_large_message(len(out)), reason="too_large")
    if not find_duplicates or not _maybe_duplicates(data, out):
        return Decoded(value)
    return Decoded(value, tuple(_duplicates(data)))


def _maybe_duplicates(data: bytes, out: bytes) -> bool:
    """False only if `data` surely has no duplicate field. Every key in `data` is followed by a
    colon, and colons inside strings are written as `:` or `\\u003a`; orjson writes the decoded
    value (which kept one of each duplicate) with the same colons inside strings and one after each
    key. So a body with a duplicate has more colons (counting escapes) than its re-encoding."""
    colons = data.count(b":") + data.count(b"\\u003a") + data.count(b"\\u003A")
    return colons > out.count(b":")


class _Pairs(list):  # type: ignore[type-arg]
    """An object as its (key, value) pairs in order, duplicates kept (json's object_pairs_hook)."""


def _duplicates(data: bytes) -> list[str]:
    """The paths of the fields given twice, in document order, each once (sigs.k8s.io/json's form)."""
    import json

    tree = json.loads(data, object_pairs_hook=_Pairs)  # depth already checked: recursion is bounded
    found: list[str] = []
    seen: set[str] = set()
    stack: list[tuple[Any, str]] = [(tree, "")]
    while stack:
        node, path = stack.pop()
        children: list[tuple[Any, str]] = []
        if isinstance(node, _Pairs):
            keys: set[str] = set()
            for key, child in node:
                here = f"{path}.{key}" if path else key
                if key in keys and here not in seen:
                    seen.add(here)
                    found.append(here)
                keys.add(key)
                children.append((child, here))
        elif isinstance(node, list):
            children = [(child, f"{path}[{i}]") for i, child in enumerate(node)]
        stack.extend(reversed(children))
    return found


# -- YAML ---------------------------------------------------------------------------------------------


def decode_yaml(data: bytes) -> Decoded:
    """A YAML body (one document), aliases expanded under the size, depth and go-yaml alias limits."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"yaml: invalid UTF-8: {exc.reason}") from None
    try:
        doc = yamlbody.load_yaml_value(text, max_depth=MAX_DEPTH, max_bytes=MAX_BYTES)
    except yamlbody.YamlLimitError as exc:
        if exc.too_large:
            raise DecodeError(too_large_message(), reason="too_large") from None
        reason = "depth" if "max depth" in str(exc.problem) else "syntax"
        raise DecodeError(f"yaml: {yamlbody.yaml_problem(exc)}", reason=reason) from None
    except YAMLError as exc:
        raise DecodeError(f"yaml: {yamlbody.yaml_problem(exc)}") from None
    return Decoded(doc.value, tuple(doc.duplicates))


async def decode_off_loop(decode: Callable[[bytes], T], data: bytes) -> T:
    """`decode(data)`, in a worker thread when the body is big enough to take a while in pure Python
    (3 MiB of YAML is seconds of CPU): the event loop keeps serving other requests meanwhile."""
    if len(data) <= OFF_LOOP_BYTES:
        return decode(data)
    try:
        limiter = _LIMITER.get()
    except LookupError:
        limiter = trio.CapacityLimiter(2)  # at most two cores' worth of decoding at once
        _LIMITER.set(limiter)
    return await trio.to_thread.run_sync(decode, data, limiter=limiter)


# -- stored objects -----------------------------------------------------------------------------------


class ObjectLimitError(ValueError):
    """An object too large or too deep to store; `too_large` tells which."""

    def __init__(self, message: str, *, too_large: bool) -> None:
        super().__init__(message)
        self.message = message
        self.too_large = too_large


def stored_bytes(obj: Any) -> bytes:
    """The stored encoding of `obj` (see stored.encode), refused past MAX_BYTES or STORED_DEPTH: a
    patch can make an object bigger or deeper than any body it was sent in."""
    too_deep = f"the object is nested too deeply: exceeded max depth of {STORED_DEPTH}"
    try:
        data = orjson.dumps(obj)
    except TypeError:  # orjson's own depth limit (254) or a value that is not JSON
        if depth_over(obj, STORED_DEPTH) is None:
            raise
        raise ObjectLimitError(too_deep, too_large=False) from None
    if len(data) > MAX_BYTES:
        raise ObjectLimitError(too_large_message(len(data)), too_large=True)
    if data.count(b"[") + data.count(b"{") > STORED_DEPTH and depth_over(obj, STORED_DEPTH) is not None:
        raise ObjectLimitError(too_deep, too_large=False)
    return memoryview(data).tobytes()

