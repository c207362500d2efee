"""Kubernetes' CEL environment on top of the CEL library (common-expression-language, cel-rust).

Owns: `functions()` — the extension functions kube-apiserver's CEL offers that the library does
not ship natively, as Python callables: the library's own extended standard library (strings,
math, sets, lists, base64 encoders) plus kube's list library (isSorted, indexOf/lastIndexOf on
lists), regex (find, findAll), url (url, isURL, getScheme, getHost, getHostname, getPort,
getEscapedPath, getQuery) and quantity (quantity, isQuantity, compareTo, isGreaterThan,
isLessThan, add, sub, asInteger, asApproximateFloat, isInteger, sign). URLs and quantities are
tagged maps (`{"@url": ...}`, `{"@quantity": ...}`), the library having no opaque values.
`CORE` names the functions the library evaluates natively, `known(name)` says whether a rule
may call `name` (an unknown one is kube's compile error "undeclared reference").
Gaps (documented in docs/CRD.md): ip/cidr, format, semver, authz, optional field selection
(`.?`), `fold`, static type checking and cost estimation.
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from cel import Context, stdlib

from orchestra.objects.quantity import Quantity, QuantityError, canonical

CORE = frozenset({
    "size", "has", "matches", "contains", "startsWith", "endsWith", "int", "uint", "double", "string",
    "bytes", "bool", "timestamp", "duration", "dyn", "type", "getFullYear", "getMonth", "getDayOfYear",
    "getDayOfMonth", "getDate", "getDayOfWeek", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    "max", "min", "of", "hasValue", "value", "orValue", "or", "none",
})
NAMESPACES = frozenset({"math", "sets", "strings", "base64", "lists", "optional"})


class CelRuntimeError(ValueError):
    """An error a rule's evaluation raises (kube reports it as `<error> evaluating rule: <rule>`)."""


def _url(text: str) -> dict[str, str]:
    parts = urlsplit(text)
    if not parts.scheme and not text.startswith("/"):
        raise CelRuntimeError(f"URL parse error during conversion from string: {text!r}")
    return {"@url": text}


def _is_url(text: str) -> bool:
    try:
        _url(text)
    except CelRuntimeError:
        return False
    return True


def _url_part(u: dict[str, str], part: str) -> Any:
    parts = urlsplit(u["@url"])
    if part == "scheme":
        return parts.scheme
    if part == "host":
        return parts.netloc.rpartition("@")[2]
    if part == "hostname":
        return parts.hostname or ""
    if part == "port":
        return str(parts.port or "")
    if part == "path":
        return parts.path
    query: dict[str, list[str]] = {}
    for pair in filter(None, parts.query.split("&")):
        key, _, value = pair.partition("=")
        query.setdefault(key, []).append(value)
    return query


def _q(v: Any) -> Quantity:
    if isinstance(v, dict) and "@quantity" in v:
        return Quantity.parse(v["@quantity"])
    raise CelRuntimeError("no such overload")


def _quantity(text: str) -> dict[str, str]:
    try:
        Quantity.parse(text)
    except QuantityError as exc:
        raise CelRuntimeError(f"quantities must match the regular expression: {exc}") from None
    return {"@quantity": text}


def _is_quantity(text: str) -> bool:
    try:
        Quantity.parse(text)
    except QuantityError:
        return False
    return True


def _compare(a: Any, b: Any) -> int:
    x, y = _q(a), _q(b)
    return (x > y) - (x < y)


def _operand(b: Any) -> Quantity:
    return _q(b) if isinstance(b, dict) else Quantity.parse(b)


def _add(a: Any, b: Any) -> dict[str, str]:
    first = _q(a)
    return {"@quantity": canonical(first.value + _operand(b).value, first.format)}


def _sub(a: Any, b: Any) -> dict[str, str]:
    first = _q(a)
    return {"@quantity": canonical(first.value - _operand(b).value, first.format)}


def _as_integer(a: Any) -> int:
    value = _q(a).value
    if value.denominator != 1:
        raise CelRuntimeError("cannot convert value to integer")
    return int(value)


def _is_sorted(items: list[Any]) -> bool:
    return all(items[i] <= items[i + 1] for i in range(len(items) - 1))


def _index_of(value: Any, item: Any) -> int:
    if isinstance(value, str):
        return value.find(item)
    return next((i for i, x in enumerate(value) if x == item), -1)


def _last_index_of(value: Any, item: Any) -> int:
    if isinstance(value, str):
        return value.rfind(item)
    return next((i for i in range(len(value) - 1, -1, -1) if value[i] == item), -1)


def _find(text: str, pattern: str) -> str:
    found = re.search(pattern, text)
    return found.group(0) if found else ""


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    found = [m.group(0) for m in re.finditer(pattern, text)]
    return found if limit < 0 else found[:limit]


_EXTRA: dict[str, Callable[..., Any]] = {
    "isSorted": _is_sorted,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "find": _find,
    "findAll": _find_all,
    "url": _url,
    "isURL": _is_url,
    "getScheme": lambda u: _url_part(u, "scheme"),
    "getHost": lambda u: _url_part(u, "host"),
    "getHostname": lambda u: _url_part(u, "hostname"),
    "getPort": lambda u: _url_part(u, "port"),
    "getEscapedPath": lambda u: _url_part(u, "path"),
    "getQuery": lambda u: _url_part(u, "query"),
    "quantity": _quantity,
    "isQuantity": _is_quantity,
    "compareTo": _compare,
    "isGreaterThan": lambda a, b: _compare(a, b) > 0,
    "isLessThan": lambda a, b: _compare(a, b) < 0,
    "add": _add,
    "sub": _sub,
    "asInteger": _as_integer,
    "asApproximateFloat": lambda a: float(_q(a).value),
    "isInteger": lambda a: _q(a).value.denominator == 1,
    "sign": lambda a: _compare(a, {"@quantity": "0"}),
}


@functools.cache
def extension_names() -> frozenset[str]:
    probe = Context()
    stdlib.add_stdlib_to_context(probe)
    return frozenset({*probe.functions, *_EXTRA})


def known(name: str) -> bool:
    return name in CORE or name in extension_names() or name.startswith(("_", "@", "!_", "-_"))


def context(variables: dict[str, Any]) -> Context:
    """A context with kube's extension functions and `variables` bound."""
    ctx = Context(variables)
    stdlib.add_stdlib_to_context(ctx)
    for name, fn in _EXTRA.items():
        ctx.add_function(name, fn)
    return ctx
