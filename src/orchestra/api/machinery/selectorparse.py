"""The `labelSelector` and `fieldSelector` query grammars, parsed the way apimachinery 1.32 does.

Owns: `parse_label_requirements(text)` (k8s.io/apimachinery/pkg/labels.Parse: its lexer, its
recursive-descent parser, NewRequirement's checks and its exact error strings, e.g.
`unable to parse requirement: <nil>: Invalid value: "ñ": name part must consist of ...`) and
`parse_field_terms(text)` (fields.ParseSelector: `\\`-escaped values, `!=` / `==` / `=`, terms sorted).
Errors are `SelectorSyntaxError` carrying kube's message; callers turn them into a 400.
Must not import: anything in orchestra.api but the name checks (names.py) and field.py.
"""

from __future__ import annotations

import re

from orchestra.api.machinery.field import go_value
from orchestra.api.machinery.names import is_qualified_name, is_valid_label_value


class SelectorSyntaxError(ValueError):
    """A selector string kube-apiserver would refuse; str() is kube's message."""


Req = tuple[str, str, tuple[str, ...]]  # (key, operator, values) with kube's operator names

# --- lexer (labels.Lexer) ------------------------------------------------------------------------

IDENT, END, ERROR = "identifier", "end", "error"
_TOKENS = {
    ")": ")",
    ",": ",",
    "!": "!",
    "==": "==",
    "=": "=",
    ">": ">",
    "in": "in",
    "<": "<",
    "!=": "!=",
    "notin": "notin",
    "(": "(",
}
_SPECIAL = set("=!(),><")
_SPACE = set(" \t\r\n")
BINARY_OPERATORS = ("in", "notin", "=", "==", "!=", "gt", "lt")


class _Lexer:
    """labels.Lexer over a str (only ASCII characters are special, so str and bytes agree)."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def _peek(self) -> str:
        """Go's read() without moving: NUL at the end of input (and for a NUL byte)."""
        return self.text[self.pos] if self.pos < len(self.text) else "\0"

    def tokens(self) -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = []
        while True:
            while self._peek() in _SPACE:
                self.pos += 1
            ch = self._peek()
            if ch == "\0":
                items.append((END, ""))
                return items
            items.append(self._special() if ch in _SPECIAL else self._ident())

    def _ident(self) -> tuple[str, str]:
        start = self.pos
        while (ch := self._peek()) not in _SPECIAL and ch not in _SPACE and ch != "\0":
            self.pos += 1
        word = self.text[start : self.pos]
        if self.pos < len(self.text) and self._peek() == "\0":
            self.pos += 1  # Go's read() consumed the NUL that ended the word
        return (_TOKENS[word], word) if word in _TOKENS else (IDENT, word)

    def _special(self) -> tuple[str, str]:
        buffer, last = "", None
        while (ch := self._peek()) in _SPECIAL:
            buffer += ch
            if buffer in _TOKENS:
                last = (_TOKENS[buffer], buffer)
            elif last is not None:
                break  # the longest operator was read; this character starts the next token
            self.pos += 1
        if last is None:
            return ERROR, f"error expected: keyword found '{buffer}'"
        return last


# --- parser (labels.Parser) ----------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = _Lexer(text).tokens()
        self.position = 0

    def lookahead(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.items[min(self.position, len(self.items) - 1)]
        return (IDENT, lit) if values and tok in ("in", "notin") else (tok, lit)

    def consume(self, values: bool = True) -> tuple[str, str]:
        item = self.lookahead(values)
        self.position += 1
        return item

    def parse(self) -> list[Req]:
        reqs: list[Req] = []
        while True:
            tok, lit = self.lookahead()
            if tok == END:
                return reqs
            if tok not in (IDENT, "!"):
                raise SelectorSyntaxError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self.requirement())
            except SelectorSyntaxError as exc:
                raise SelectorSyntaxError(f"unable to parse requirement: {exc}") from None
            tok, lit = self.consume()
            if tok == END:
                return reqs
            if tok != ",":
                raise SelectorSyntaxError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self.lookahead()
            if tok not in (IDENT, "!"):
                raise SelectorSyntaxError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> Req:
        key, op = self.key_and_inferred_operator()
        if op in ("exists", "!"):
            return new_requirement(key, op, ())
        op = self.operator()
        values = self.values() if op in ("in", "notin") else self.exact_value()
        return new_requirement(key, op, tuple(sorted(values)))

    def key_and_inferred_operator(self) -> tuple[str, str]:
        op = ""
        tok, lit = self.consume()
        if tok == "!":
            op = "!"
            tok, lit = self.consume()
        if tok != IDENT:
            raise SelectorSyntaxError(f"found '{lit}', expected: identifier")
        msgs = is_qualified_name(lit)
        if msgs:  # validateLabelKey with the parser's nil path
            raise SelectorSyntaxError(f"<nil>: Invalid value: {go_value(lit)}: {'; '.join(msgs)}")
        if self.lookahead()[0] in (END, ",") and op != "!":
            op = "exists"
        return lit, op

    def operator(self) -> str:
        tok, lit = self.consume(values=False)
        ops = {"in": "in", "=": "=", "==": "==", ">": "gt", "<": "lt", "notin": "notin", "!=": "!="}
        if tok not in ops:
            raise SelectorSyntaxError(f"found '{lit}', expected: {', '.join(BINARY_OPERATORS)}")
        return ops[tok]

    def values(self) -> set[str]:
        tok, lit = self.consume()
        if tok != "(":
            raise SelectorSyntaxError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok == ")":  # "()" is the set holding the empty value
            self.consume()
            return {""}
        if tok not in (IDENT, ","):
            raise SelectorSyntaxError(f"found '{lit}', expected: ',', ')' or identifier")
        found = self.identifiers()
        if self.consume()[0] != ")":
            raise SelectorSyntaxError(f"found '{lit}', expected: ')'")
        return found

    def identifiers(self) -> set[str]:
        found: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == IDENT:
                found.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 == ")":
                    return found
                if tok2 != ",":
                    raise SelectorSyntaxError(f"found '{lit2}', expected: ',' or ')'")
            elif tok == ",":  # empty values around commas: "(,a", "a,)", "a,,b"
                if not found:
                    found.add("")
                tok2 = self.lookahead()[0]
                if tok2 == ")":
                    found.add("")
                    return found
                if tok2 == ",":
                    self.consume()
                    found.add("")
            else:
                raise SelectorSyntaxError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.lookahead()[0] in (END, ","):
            return {""}
        tok, lit = self.consume()
        if tok != IDENT:
            raise SelectorSyntaxError(f"found '{lit}', expected: identifier")
        return {lit}


_INT64 = re.compile(r"[+-]?[0-9]+")


def is_int64(value: str) -> bool:
    """strconv.ParseInt(value, 10, 64) succeeds: a sign, decimal digits, within int64."""
    return bool(_INT64.fullmatch(value)) and -(2**63) <= int(value) < 2**63


def new_requirement(key: str, op: str, values: tuple[str, ...]) -> Req:
    """labels.NewRequirement as the parser calls it (no field path): errors aggregated like kube's."""
    errs: list[str] = []
    msgs = is_qualified_name(key)
    if msgs:
        errs.append(f"key: Invalid value: {go_value(key)}: {'; '.join(msgs)}")
    if op in ("gt", "lt"):
        if len(values) != 1:
            errs.append(
                f"values: Invalid value: {_go_strings(values)}: "
                "for 'Gt', 'Lt' operators, exactly one value is required"
            )
        errs += [
            f"values[{i}]: Invalid value: {go_value(v)}: "
            "for 'Gt', 'Lt' operators, the value must be an integer"
            for i, v in enumerate(values)
            if not is_int64(v)
        ]
    for i, v in enumerate(values):
        msgs = is_valid_label_value(v)
        if msgs:
            errs.append(f"values[{i}][{key}]: Invalid value: {go_value(v)}: {'; '.join(msgs)}")
    if errs:
        raise SelectorSyntaxError(_aggregate(errs))
    return key, op, values


def _go_strings(values: tuple[str, ...]) -> str:
    return "[]string{" + ", ".join(go_value(v) for v in values) + "}"


def _aggregate(errs: list[str]) -> str:
    """utilerrors.Aggregate.Error(): one message alone, several deduplicated inside [...]."""
    unique = list(dict.fromkeys(errs))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def parse_label_requirements(text: str) -> list[Req]:
    """labels.Parse: the requirements of `text`, sorted by key (SelectorSyntaxError on bad input)."""
    return sorted(_Parser(text).parse(), key=lambda r: r[0])


# --- field selectors (fields.ParseSelector) ------------------------------------------------------


def _split_terms(text: str) -> list[str]:
    terms, start, in_slash = [], 0, False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def _unescape(value: str) -> str:
    out, in_slash = [], False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise SelectorSyntaxError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            raise SelectorSyntaxError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise SelectorSyntaxError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_terms(text: str) -> list[tuple[str, str, str]]:
    """fields.ParseSelector: (field, "=" | "!=", value) terms in kube's (sorted) order."""
    terms = []
    for part in sorted(_split_terms(text)) if text else []:
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorSyntaxError(f"invalid selector: '{text}'; can't understand '{part}'")
        lhs, op, rhs = split
        terms.append((lhs, "!=" if op == "!=" else "=", _unescape(rhs)))
    return terms
