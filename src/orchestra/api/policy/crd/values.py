"""A custom resource checked against its structural schema, as kube-openapi's SchemaValidator does.

Owns: `validate(value, schema, *, name="", field="") -> list[Cause]`: types (with nullable and
x-kubernetes-int-or-string), formats, string lengths and patterns, numeric bounds and multipleOf,
item and property counts, enum, required, allOf/anyOf/oneOf/not, each turned into kube's
field.Error the way apiextensions' kubeOpenAPIResultToFieldErrors does: a type or format failure
is `Invalid value: "string": spec.x in body must be of type integer: "string"`, an enum is
`Unsupported value`, maxLength `Too long`, maxItems/maxProperties `Too many`, a missing required
field `Required value`, everything else `Invalid value: <value>: <kube-openapi's message>`.
`name` prefixes the path kube-openapi names in messages, `field` the path of the causes.
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import INVALID, NOT_SUPPORTED, REQUIRED, go_value
from orchestra.api.policy.crd import formats
from orchestra.api.policy.crd.structural import Structural

TYPE_INVALID, TOO_LONG, TOO_MANY = "FieldValueTypeInvalid", "FieldValueTooLong", "FieldValueTooMany"
_RX_CACHE: dict[str, re.Pattern[str] | None] = {}


def json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def go_float(f: float) -> str:
    """Go's %v of a float64 (10 -> "10", 0.5 -> "0.5", 1e21 -> "1e+21")."""
    if math.isfinite(f) and f == int(f) and abs(f) < 1e21:
        return str(int(f))
    text = repr(f)
    return re.sub(r"e([+-]?)(\d+)$", lambda m: f"e{m.group(1) or '+'}{int(m.group(2)):02d}", text)


def go_json(value: Any) -> str:
    """How Go's %#v shows a JSON value decoded into interface{}."""
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)}:{go_json(v)}" for k, v in sorted(value.items()))
        return "map[string]interface {}{" + inner + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(go_json(v) for v in value) + "}"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "interface {}(nil)"
    return go_float(value) if isinstance(value, float) else str(value)



class _Out:
    __slots__ = ("causes", "field_prefix", "name_prefix")

    def __init__(self, name_prefix: str, field_prefix: str) -> None:
        self.causes: list[Cause] = []
        self.name_prefix = name_prefix
        self.field_prefix = field_prefix

    def add(self, reason: str, path: str, message: str) -> None:
        fld = path.lstrip(".")
        if self.field_prefix:
            fld = f"{self.field_prefix}.{fld}" if fld else self.field_prefix
        self.causes.append(Cause(reason, message, fld))

    def invalid(self, path: str, value: Any, detail: str, reason: str = INVALID) -> None:
        self.add(reason, path, f"Invalid value: {_value(value)}: {detail}")


def _value(v: Any) -> str:
    if isinstance(v, float):
        return go_float(v)
    return go_value(v)


def validate(value: Any, schema: Structural | None, *, name: str = "", field: str = "") -> list[Cause]:
    if schema is None:
        return []
    out = _Out(name, field)
    _check(value, schema, name, out)
    return out.causes


def _check(v: Any, s: Structural, path: str, out: _Out) -> None:
    types = ["integer", "string"] if s.int_or_string else ([s.type] if s.type else [])
    if v is None:
        if types and not s.nullable:
            _type_error(path, ",".join(types), "null", out)
        _enum(v, s, path, out)
        return
    kind = json_type(v)
    if types and kind not in types and not _compatible_number(v, kind, types):
        _type_error(path, ",".join(types), kind, out)
    _junctors(v, s, path, out)
    if isinstance(v, str):
        _string(v, s, path, out)
    elif kind in ("integer", "number"):
        _number(v, s, path, out)
    elif isinstance(v, list):
        _array(v, s, path, out)
    _enum(v, s, path, out)
    if isinstance(v, dict):
        _object(v, s, path, out)


def _compatible_number(v: Any, kind: str, types: list[str]) -> bool:
    if kind == "number" and "integer" in types:
        return float(v).is_integer()
    return kind == "integer" and "number" in types


def _type_error(path: str, want: str, got: str, out: _Out) -> None:
    msg = f"{path} in body must be of type {want}: {json.dumps(got)}"
    out.add(TYPE_INVALID, path, f"Invalid value: {json.dumps(got)}: {msg}")


def _regex(pattern: str) -> re.Pattern[str] | None:
    if pattern not in _RX_CACHE:
        try:
            _RX_CACHE[pattern] = re.compile(pattern)
        except re.error:
            _RX_CACHE[pattern] = None
    return _RX_CACHE[pattern]


def _string(v: str, s: Structural, path: str, out: _Out) -> None:
    longest, shortest = s.counts.get("maxLength"), s.counts.get("minLength")
    if longest is not None and len(v) > longest:
        out.add(TOO_LONG, path, f"Too long: may not be more than {longest} bytes")
    elif shortest is not None and len(v) < shortest:
        out.invalid(path, v, f"{path} in body should be at least {shortest} chars long")
    elif s.pattern:
        rx = _regex(s.pattern)
        if rx is not None and not rx.search(v):
            out.invalid(path, v, f"{path} in body should match '{s.pattern}'")
    fmt = formats.normalize(s.format)
    if fmt in formats.SUPPORTED and not formats.check(fmt, v):
        out.invalid(path, v, f"{path} in body must be of type {s.format}: {json.dumps(v)}", TYPE_INVALID)


def _number(v: float, s: Structural, path: str, out: _Out) -> None:
    n = s.numbers
    factor = n.get("multipleOf")
    if factor is not None:
        if factor <= 0:
            out.invalid(
                path, v, f"factor MultipleOf declared for {path} must be positive: {go_float(factor)}"
            )
        elif not _multiple(v, factor):
            out.invalid(path, v, f"{path} in body should be a multiple of {go_float(factor)}")
    top = n.get("maximum")
    if top is not None and (v >= top if s.exclusive_maximum else v > top):
        word = "less than" if s.exclusive_maximum else "less than or equal to"
        out.invalid(path, v, f"{path} in body should be {word} {go_float(top)}")
    low = n.get("minimum")
    if low is not None and (v <= low if s.exclusive_minimum else v < low):
        word = "greater than" if s.exclusive_minimum else "greater than or equal to"
        out.invalid(path, v, f"{path} in body should be {word} {go_float(low)}")


def _multiple(v: float, factor: float) -> bool:
    if isinstance(v, int) and float(factor).is_integer():
        return v % int(factor) == 0
    q = (1 / factor * v) if factor < 1 else (v / factor)
    return float(q).is_integer()


def _array(v: list[Any], s: Structural, path: str, out: _Out) -> None:
    if s.items is not None:
        for i, item in enumerate(v):
            _check(item, s.items, f"{path}[{i}]", out)
    fewest, most = s.counts.get("minItems"), s.counts.get("maxItems")
    if fewest is not None and len(v) < fewest:
        out.invalid(path, len(v), f"{path} in body should have at least {fewest} items")
    if most is not None and len(v) > most:
        out.add(TOO_MANY, path, f"Too many: {len(v)}: must have at most {most} items")
    if s.unique_items and len({json.dumps(x, sort_keys=True) for x in v}) != len(v):
        out.invalid(path, "", f"{path} in body shouldn't contain duplicates")


def _enum(v: Any, s: Structural, path: str, out: _Out) -> None:
    if not s.enum or any(_same(v, e) for e in s.enum):
        return
    allowed = ", ".join(json.dumps(e if isinstance(e, str) else json.dumps(e)) for e in s.enum)
    out.add(NOT_SUPPORTED, path, f"Unsupported value: {_value(v)}: supported values: {allowed}")


def _same(v: Any, e: Any) -> bool:
    if isinstance(v, bool) or isinstance(e, bool):
        return v is e or (isinstance(v, bool) and isinstance(e, bool) and v == e)
    return bool(v == e)


def _object(v: dict[str, Any], s: Structural, path: str, out: _Out) -> None:
    fewest, most = s.counts.get("minProperties"), s.counts.get("maxProperties")
    if fewest is not None and len(v) < fewest:
        out.invalid(path, len(v), f"{path} in body should have at least {fewest} properties")
    if most is not None and len(v) > most:
        out.add(TOO_MANY, path, f"Too many: {len(v)}: must have at most {most} items")
    if s.additional_allows is False:
        for k in sorted(v):
            if k not in s.properties:
                out.invalid(path, k, f"{path}.{k} in body is a forbidden property")
    elif s.additional is not None:
        for k in sorted(v):
            if k not in s.properties:
                _check(v[k], s.additional, f"{path}.{k}", out)
    for k in sorted(s.properties):
        if k in v:
            _check(v[k], s.properties[k], f"{path}.{k}" if path else k, out)
    for k in s.required:
        if k not in v:
            out.add(REQUIRED, f"{path}.{k}", "Required value")


def _junctors(v: Any, s: Structural, path: str, out: _Out) -> None:
    """allOf / anyOf / oneOf / not: their failures have no field in kube (`<nil>`)."""
    if s.any_of:
        results = [validate(v, n, name=path) for n in s.any_of]
        if all(results):
            _composite(f'"{path}" must validate at least one schema (anyOf)', out)
            out.causes.extend(_rebase(min(results, key=len), out))
    if s.one_of:
        results = [validate(v, n, name=path) for n in s.one_of]
        ok = sum(1 for r in results if not r)
        if ok != 1:
            more = "Found none valid" if ok == 0 else f"Found {ok} valid alternatives"
            _composite(f'"{path}" must validate one and only one schema (oneOf). {more}', out)
            if ok == 0:
                out.causes.extend(_rebase(min(results, key=len), out))
    if s.all_of:
        results = [validate(v, n, name=path) for n in s.all_of]
        for r in results:
            out.causes.extend(_rebase(r, out))
        failed = sum(1 for r in results if r)
        if failed:
            more = ". None validated" if failed == len(results) else ""
            _composite(f'"{path}" must validate all the schemas (allOf){more}', out)
    if s.not_ is not None and not validate(v, s.not_, name=path):
        _composite(f'"{path}" must not validate the schema (not)', out)


def _composite(message: str, out: _Out) -> None:
    out.causes.append(Cause(INVALID, f'Invalid value: "": {message}', "<nil>"))


def _rebase(causes: list[Cause], out: _Out) -> list[Cause]:
    if not out.field_prefix:
        return causes
    return [Cause(c.reason, c.message, f"{out.field_prefix}.{c.field}" if c.field else out.field_prefix)
            for c in causes]
