"""x-kubernetes-validations: CEL rules compiled once per CRD version and evaluated on every write.

Owns: `compile_rules(schema, path) -> (Rules, causes)` — every rule and messageExpression of the
schema compiled (a syntax error, a call of an undeclared function or a variable other than
`self`/`oldSelf` is kube's 422 `compilation failed: ERROR: <input>:1:5: ...` on the CRD's field),
transition rules (`oldSelf`) refused where kube cannot correlate old and new values; and
`Rules.evaluate(obj, old) -> causes` — each node's rules with `self` (and `oldSelf` on updates,
correlated through properties, map keys and list-type=map keys), kube's messages:
`failed rule: <rule>`, `message`, `messageExpression`, `reason` and `fieldPath` as kube applies them.
Values are typed from the schema (date/date-time as timestamps, duration, byte as bytes, number as
double); the root and embedded resources expose only apiVersion, kind, metadata.name and generateName.
The CEL library is common-expression-language (cel-rust); celext.py has kube's extension functions.
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import cel

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import DUPLICATE, FORBIDDEN, INVALID, REQUIRED, GoRepr, go_quote, go_value
from orchestra.api.policy.crd import celext
from orchestra.api.policy.crd.fieldpath import FieldPathError, resolve_field_path
from orchestra.api.policy.crd.structural import Structural

_BOUND = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_GO_DURATION = re.compile(r"(-?\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@attrs.frozen
class Rule:
    raw: dict[str, Any] = attrs.field(eq=False)
    program: Any
    message_program: Any
    uses_old_self: bool
    extended: bool  # calls functions only the extended context has
    field_path: str

    @property
    def text(self) -> str:
        return str(self.raw.get("rule") or "").strip()

    def default_message(self) -> str:
        message = str(self.raw.get("message") or "").strip()
        return message or f"failed rule: {self.text}"

    def error_string(self) -> str:
        return str(self.raw.get("message") or "").strip() or self.text


class CompileError(ValueError):
    pass


def go_rule(rule: dict[str, Any]) -> GoRepr:
    """How kube prints a ValidationRule in its errors (%#v of apiextensions.ValidationRule)."""
    reason = rule.get("reason")
    shown_reason = ("(*apiextensions.FieldValueErrorReason)(nil)" if reason is None
                    else f"(*apiextensions.FieldValueErrorReason){go_quote(str(reason))}")
    old = rule.get("optionalOldSelf")
    shown_old = "(*bool)(nil)" if old is None else f"(*bool){str(bool(old)).lower()}"
    return GoRepr(
        f"apiextensions.ValidationRule{{Rule:{go_quote(str(rule.get('rule') or ''))}, "
        f"Message:{go_quote(str(rule.get('message') or ''))}, "
        f"MessageExpression:{go_quote(str(rule.get('messageExpression') or ''))}, Reason:{shown_reason}, "
        f"FieldPath:{go_quote(str(rule.get('fieldPath') or ''))}, OptionalOldSelf:{shown_old}}}")


def compile_expression(text: str, variables: frozenset[str]) -> tuple[Any, bool]:
    """(program, extended); raises CompileError with kube's detail (cel-go's wording)."""
    try:
        program = cel.compile(text)
    except ValueError as exc:
        detail = str(exc)
        detail = detail[detail.index("ERROR:"):] if "ERROR:" in detail else detail
        raise CompileError(f"compilation failed: {detail}") from None
    refs = program.references()
    bound = set(_BOUND.findall(text))
    extended = False
    names = [v for v in refs.get("variables", []) if v not in variables and v not in bound]
    functions = list(refs.get("functions", []))
    for ns in [n for n in names if n in celext.NAMESPACES]:
        names.remove(ns)
        functions = [f"{ns}.{f}" if f"{ns}.{f}" in celext.extension_names() else f for f in functions]
    for name in names:
        raise CompileError(
            f"compilation failed: ERROR: <input>:1:{_column(text, name)}: undeclared reference "
            f"to '{name}' (in container '')"
        )
    for fn in functions:
        if not celext.known(fn):
            raise CompileError(
                f"compilation failed: ERROR: <input>:1:{_column(text, fn)}: undeclared reference "
                f"to '{fn.rpartition('.')[2]}' (in container '')"
            )
        extended = extended or (fn in celext.extension_names() and fn not in celext.CORE)
    return program, extended


def _column(text: str, name: str) -> int:
    found = re.search(rf"\b{re.escape(name.rpartition('.')[2])}\b", text)
    return found.start() + 1 if found else 1


@attrs.define
class Rules:
    """The compiled rules of one schema, by node identity (the schema outlives them)."""

    by_node: dict[int, list[Rule]] = attrs.field(factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_node)

    def evaluate(
        self, obj: Any, old: Any, schema: Structural, *, root: bool = True, path: str = ""
    ) -> list[Cause]:
        out: list[Cause] = []
        if self.by_node:
            _walk(self, obj, old, schema, path, out, root=root)
        return out


def compile_rules(schema: Structural, path: str) -> tuple[Rules, list[Cause]]:
    rules = Rules()
    errs: list[Cause] = []
    _compile(schema, path, rules, errs, uncorrelatable=None)
    return rules, errs


def _compile(
    s: Structural, path: str, rules: Rules, errs: list[Cause], *, uncorrelatable: str | None
) -> None:
    compiled: list[Rule] = []
    for i, raw in enumerate(s.validations):
        at = f"{path}.x-kubernetes-validations[{i}]"
        rule = _compile_one(raw, s, at, errs, uncorrelatable)
        if rule is not None:
            compiled.append(rule)
    if compiled:
        rules.by_node[id(s)] = compiled
    for k in sorted(s.properties):
        sub = uncorrelatable if uncorrelatable is not None or s.map_type != "atomic" else path
        _compile(s.properties[k], f"{path}.properties[{k}]", rules, errs, uncorrelatable=sub)
    if s.additional is not None:
        sub = uncorrelatable if uncorrelatable is not None or s.map_type != "atomic" else path
        _compile(s.additional, f"{path}.additionalProperties", rules, errs, uncorrelatable=sub)
    if s.items is not None:
        sub = uncorrelatable if uncorrelatable is not None or s.list_type == "map" else path
        _compile(s.items, f"{path}.items", rules, errs, uncorrelatable=sub)


def _compile_one(raw: dict[str, Any], s: Structural, at: str, errs: list[Cause],
                 uncorrelatable: str | None) -> Rule | None:
    text = str(raw.get("rule") or "").strip()
    if not text:
        return None
    try:
        program, extended = compile_expression(text, frozenset({"self", "oldSelf"}))
    except CompileError as exc:
        errs.append(Cause(INVALID, f"Invalid value: {go_value(go_rule(raw))}: {exc}", f"{at}.rule"))
        return None
    message_program = None
    expr = str(raw.get("messageExpression") or "").strip()
    if expr:
        try:
            message_program, more = compile_expression(expr, frozenset({"self", "oldSelf"}))
            extended = extended or more
        except CompileError as exc:
            errs.append(Cause(INVALID, f"Invalid value: {go_value(go_rule(raw))}: messageExpression {exc}",
                              f"{at}.messageExpression"))
    uses_old = "oldSelf" in program.references().get("variables", [])
    if uses_old and uncorrelatable is not None:
        errs.append(
            Cause(
                INVALID,
                f"Invalid value: {go_quote(text)}: oldSelf cannot be used on the uncorrelatable "
                f"portion of the schema within {uncorrelatable}",
                f"{at}.rule",
            )
        )
    elif not uses_old and raw.get("optionalOldSelf") is not None:
        errs.append(
            Cause(
                INVALID,
                f"Invalid value: {str(bool(raw['optionalOldSelf'])).lower()}: may not be set if "
                "oldSelf is not used in rule",
                f"{at}.optionalOldSelf",
            )
        )
    field_path = ""
    if raw.get("fieldPath"):
        try:
            field_path = resolve_field_path(str(raw["fieldPath"]), s)[0]
        except FieldPathError:
            field_path = ""  # schemarules reports the invalid path
    return Rule(raw, program, message_program, uses_old, extended, field_path)


# --- evaluation -----------------------------------------------------------------------------------


def _walk(
    rules: Rules, x: Any, old: Any, s: Structural, path: str, out: list[Cause], *, root: bool = False
) -> None:
    if x is None:
        return
    mine = rules.by_node.get(id(s))
    if mine:
        _run(mine, x, old, s, path, out, root=root or s.embedded)
    if isinstance(x, dict):
        olds = old if isinstance(old, dict) else {}
        for k in sorted(x):
            prop = s.properties.get(k)
            if prop is not None:
                _walk(rules, x[k], olds.get(k), prop, f"{path}.{k}" if path else k, out)
            elif s.additional is not None:
                _walk(rules, x[k], olds.get(k), s.additional, f"{path}[{k}]", out)
    elif isinstance(x, list) and s.items is not None:
        correlated = _correlate(x, old, s) if s.list_type == "map" else [None] * len(x)
        for i, item in enumerate(x):
            _walk(rules, item, correlated[i], s.items, f"{path}[{i}]", out)


def _correlate(items: list[Any], old: Any, s: Structural) -> list[Any]:
    if not isinstance(old, list):
        return [None] * len(items)
    def key(v: Any) -> tuple[Any, ...] | None:
        return tuple(repr(v.get(k)) for k in s.list_map_keys) if isinstance(v, dict) else None
    by_key = {key(o): o for o in old if key(o) is not None}
    return [by_key.get(key(v)) for v in items]


def _run(
    mine: list[Rule], x: Any, old: Any, s: Structural, path: str, out: list[Cause], *, root: bool
) -> None:
    shown_type = s.type or ("object" if isinstance(x, dict) else "")
    self_value = to_cel(x, s, root=root)
    old_value = to_cel(old, s, root=root) if old is not None else None
    for rule in mine:
        optional_old = rule.raw.get("optionalOldSelf") is True
        if rule.uses_old_self and old is None and not optional_old:
            continue
        variables = {"self": self_value}
        if rule.uses_old_self:
            variables["oldSelf"] = old_value if old is not None else None
        try:
            result = _execute(rule.program, variables, rule.extended)
        except (
            Exception
        ) as exc:  # the library raises RuntimeError, KeyError, TypeError...: all are CEL errors
            out.append(
                Cause(
                    INVALID,
                    f"Invalid value: {go_quote(shown_type)}: {_runtime_detail(exc, rule)}",
                    path or "<nil>",
                )
            )
            continue
        if result is True:
            continue
        at = path
        if rule.field_path:
            at = f"{path}.{rule.field_path}" if path else rule.field_path
        message = rule.default_message()
        if rule.message_program is not None:
            message = _message(rule, variables) or message
        out.append(_reason_cause(rule.raw.get("reason"), at or "<nil>", shown_type, message))


def _execute(program: Any, variables: dict[str, Any], extended: bool) -> Any:
    if extended:
        return program.execute(celext.context(variables))
    return program.execute(variables)


def _runtime_detail(exc: Exception, rule: Rule) -> str:
    text = str(exc)
    if isinstance(exc, KeyError):
        text = f"no such key: {exc.args[0] if exc.args else ''}"
    if "overload" in text or isinstance(exc, TypeError):
        return (f"'no such overload': call arguments did not match a supported operator, function or macro "
                f"signature for rule: {rule.error_string()}")
    return f"{text} evaluating rule: {rule.error_string()}"


def _message(rule: Rule, variables: dict[str, Any]) -> str:
    try:
        value = _execute(rule.message_program, variables, True)
    except Exception:  # kube logs the failure and falls back to the rule's message
        return ""
    text = value.strip() if isinstance(value, str) else ""
    return "" if not text or "\n" in text or "\r" in text or len(text) > 5 * 1024 else text


def _reason_cause(reason: Any, path: str, shown_type: str, message: str) -> Cause:
    if reason == "FieldValueForbidden":
        return Cause(FORBIDDEN, f"Forbidden: {message}", path)
    if reason == "FieldValueRequired":
        return Cause(REQUIRED, f"Required value: {message}", path)
    if reason == "FieldValueDuplicate":
        return Cause(DUPLICATE, f"Duplicate value: {go_quote(shown_type)}", path)
    return Cause(INVALID, f"Invalid value: {go_quote(shown_type)}: {message}", path)


# --- values as CEL sees them ------------------------------------------------------------------------


def to_cel(x: Any, s: Structural | None, *, root: bool = False) -> Any:
    """`x` typed by its schema (timestamps, durations, bytes, doubles); at a resource root only the
    type and object meta CEL may see."""
    if s is None or x is None:
        return x
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            if root and k == "metadata" and isinstance(v, dict):
                out[k] = {m: v[m] for m in ("name", "generateName") if m in v}
                continue
            out[k] = to_cel(v, s.properties.get(k, s.additional), root=False)
        return out
    if isinstance(x, list):
        return [to_cel(v, s.items) for v in x]
    if isinstance(x, str):
        return _typed_string(x, s.format)
    if isinstance(x, int) and not isinstance(x, bool) and s.type == "number":
        return float(x)
    return x


def _typed_string(x: str, fmt: str) -> Any:
    try:
        if fmt in ("date-time", "datetime"):
            return datetime.fromisoformat(x.replace("Z", "+00:00").replace("z", "+00:00"))
        if fmt == "date":
            return datetime.fromisoformat(x).replace(tzinfo=UTC)
        if fmt == "duration":
            return _duration(x)
        if fmt == "byte":
            return base64.b64decode(x, validate=True)
    except (ValueError, binascii.Error):
        return x  # the schema check reports the malformed value
    return x


def _duration(text: str) -> timedelta:
    if text in ("0", ""):
        return timedelta(0)
    total = sum(float(n) * _UNITS[u] for n, u in _GO_DURATION.findall(text))
    return timedelta(seconds=total)
