"""field.Error, as kube renders it: the cause constructors (`Required value`, `Invalid value: "x": ...`),
Go's %q / %#v value printing, the error-type constants, and the shape guards every validator uses.

Owns: Cause construction and the checks every validator uses: `is_int`, `non_negative`,
`required_one_of` (the JSON shape guards `as_dict`/`as_list`/`as_dicts` are orchestra.objects').
Must not import: anything in orchestra.api but errors.py (names.py, the selectors and every validator
in api/policy/validation/ import this one).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeGuard

from orchestra.api.errors import Cause

NameFn = Callable[[str], list[str]]

REQUIRED, INVALID = "FieldValueRequired", "FieldValueInvalid"
NOT_SUPPORTED, DUPLICATE = "FieldValueNotSupported", "FieldValueDuplicate"
FORBIDDEN, NOT_FOUND, TOO_LONG = "FieldValueForbidden", "FieldValueNotFound", "FieldValueTooLong"
IMMUTABLE = "field is immutable"
NEGATIVE = "must be greater than or equal to 0"

# --- field.Error constructors (messages as field.Error.ErrorBody renders them) ------------------------


def go_quote(s: str) -> str:
    """Go's %q for a string (close enough: JSON escaping of a UTF-8 string)."""
    return json.dumps(s, ensure_ascii=False)


def go_value(value: Any) -> str:
    """How field.Error prints a bad value: %q for strings, %v for numbers, %#v for the rest."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, GoRepr):
        return value.text
    if isinstance(value, dict):
        return go_string_map(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(go_quote(v) for v in value) + "}"
    return json.dumps(value, sort_keys=True)


class GoRepr:
    """A value already rendered the way Go's %#v would print it."""

    def __init__(self, text: str) -> None:
        self.text = text


def go_string_map(m: Any) -> str:
    if m is None:
        return "map[string]string(nil)"
    items = ", ".join(f"{go_quote(str(k))}:{go_quote(str(m[k]))}" for k in sorted(m))
    return "map[string]string{" + items + "}"


def go_label_selector(sel: Any) -> GoRepr:
    sel = sel if isinstance(sel, dict) else {}
    labels = (
        go_string_map(sel.get("matchLabels")) if sel.get("matchLabels") is not None else go_string_map(None)
    )
    exprs = sel.get("matchExpressions")
    if exprs is None:
        rendered = "[]v1.LabelSelectorRequirement(nil)"
    else:
        parts = []
        for e in exprs if isinstance(exprs, list) else []:
            e = e if isinstance(e, dict) else {}
            values = e.get("values")
            vals = (
                "[]string(nil)"
                if values is None
                else "[]string{" + ", ".join(go_quote(str(v)) for v in values) + "}"
            )
            parts.append(
                f"v1.LabelSelectorRequirement{{Key:{go_quote(str(e.get('key', '')))}, "
                f"Operator:{go_quote(str(e.get('operator', '')))}, Values:{vals}}}"
            )
        rendered = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    return GoRepr(f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{rendered}}}")


def required(path: str, detail: str = "") -> Cause:
    return Cause(REQUIRED, "Required value" + (f": {detail}" if detail else ""), path)


def invalid(path: str, value: Any, detail: str = "") -> Cause:
    return Cause(INVALID, f"Invalid value: {go_value(value)}" + (f": {detail}" if detail else ""), path)


def not_supported(path: str, value: Any, valid: Iterable[str]) -> Cause:
    quoted = ", ".join(go_quote(v) for v in valid)
    detail = f": supported values: {quoted}" if quoted else ""
    return Cause(NOT_SUPPORTED, f"Unsupported value: {go_value(value)}{detail}", path)


def duplicate(path: str, value: Any) -> Cause:
    return Cause(DUPLICATE, f"Duplicate value: {go_value(value)}", path)


def forbidden(path: str, detail: str) -> Cause:
    return Cause(FORBIDDEN, "Forbidden" + (f": {detail}" if detail else ""), path)


def not_found(path: str, value: Any) -> Cause:
    return Cause(NOT_FOUND, f"Not found: {go_value(value)}", path)


def too_long(path: str, limit: int) -> Cause:
    return Cause(TOO_LONG, f"Too long: must have at most {limit} bytes", path)


def is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def non_negative(value: Any, path: str) -> list[Cause]:
    return [invalid(path, value, NEGATIVE)] if is_int(value) and value < 0 else []


def required_one_of(value: Any, path: str, valid: tuple[str, ...]) -> list[Cause]:
    if value in (None, ""):
        return [required(path, "")]
    return [] if value in valid else [not_supported(path, value, valid)]
