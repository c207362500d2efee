"""The JSONPath subset kube's printer columns and selectable fields use (client-go/util/jsonpath).

Owns: `compile_path(text)` -> `JSONPath` with `find(obj) -> list` (every match, in order; missing
keys give no match, as with AllowMissingKeys) and `text(value)` (how PrintResults renders a value:
strings raw, numbers and booleans as Go prints them, objects and lists as JSON). Supported: `.a.b`,
`['a.b']`, `[0]`, `[-1]`, `[*]`, `.*`, `[?(@.k=="v")]` / `!=` filters, `..name` recursion; a
leading `{}` wrapper is accepted. `JSONPathError` for anything else.
Must not import: anything in orchestra.api but errors.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

_TOKEN = re.compile(
    r"\.\.(?P<recurse>[A-Za-z0-9_\-]+)"
    r"|\.(?P<field>[A-Za-z0-9_\-$]+|\*)"
    r"|\[\s*'(?P<quoted>(?:[^'\\]|\\.)*)'\s*\]"
    r"|\[\s*\"(?P<dquoted>(?:[^\"\\]|\\.)*)\"\s*\]"
    r"|\[\s*(?P<index>-?\d+)\s*\]"
    r"|\[\s*(?P<star>\*)\s*\]"
    r"|\[\s*\?\(\s*@\.(?P<fpath>[A-Za-z0-9_.\-]+)\s*(?P<op>==|!=)\s*(?P<fval>'[^']*'|\"[^\"]*\"|[^)\s]+)\s*\)\s*\]"
)

Step = Callable[[Any], Iterator[Any]]


class JSONPathError(ValueError):
    pass


class JSONPath:
    def __init__(self, text: str, steps: list[Step]) -> None:
        self.source = text
        self._steps = steps

    def find(self, obj: Any) -> list[Any]:
        values = [obj]
        for step in self._steps:
            values = [out for v in values for out in step(v)]
        return values

    @staticmethod
    def text(value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return json.dumps(value)
        return json.dumps(value, separators=(",", ":"))


def compile_path(text: str) -> JSONPath:
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1].strip()
    if body.startswith("$"):
        body = body[1:]
    steps: list[Step] = []
    pos = 0
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if m is None:
            raise JSONPathError(f"unrecognized character in action: {body[pos:]!r}")
        steps.append(_step(m))
        pos = m.end()
    return JSONPath(text, steps)


def _step(m: re.Match[str]) -> Step:
    g = m.groupdict()
    if g["recurse"] is not None:
        return _recurse(g["recurse"])
    if g["field"] is not None:
        return _all if g["field"] == "*" else _key(g["field"])
    if g["quoted"] is not None or g["dquoted"] is not None:
        return _key((g["quoted"] if g["quoted"] is not None else g["dquoted"]).replace("\\'", "'"))
    if g["index"] is not None:
        return _index(int(g["index"]))
    if g["star"] is not None:
        return _all
    return _filter(g["fpath"].split("."), g["op"], _literal(g["fval"]))


def _key(name: str) -> Step:
    def step(v: Any) -> Iterator[Any]:
        if isinstance(v, dict) and name in v:
            yield v[name]
    return step


def _index(i: int) -> Step:
    def step(v: Any) -> Iterator[Any]:
        if isinstance(v, list) and -len(v) <= i < len(v):
            yield v[i]
    return step


def _all(v: Any) -> Iterator[Any]:
    if isinstance(v, dict):
        yield from v.values()
    elif isinstance(v, list):
        yield from v


def _recurse(name: str) -> Step:
    def step(v: Any) -> Iterator[Any]:
        if isinstance(v, dict):
            if name in v:
                yield v[name]
            for child in v.values():
                yield from step(child)
        elif isinstance(v, list):
            for child in v:
                yield from step(child)
    return step


def _literal(text: str) -> Any:
    if text[:1] in ("'", '"'):
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        return text


def _filter(path: list[str], op: str, want: Any) -> Step:
    def step(v: Any) -> Iterator[Any]:
        for item in (v if isinstance(v, list) else []):
            cur: Any = item
            for p in path:
                cur = cur.get(p) if isinstance(cur, dict) else None
            if cur is not None and (cur == want) == (op == "=="):
                yield item
    return step
