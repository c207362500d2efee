"""Kubernetes resource quantities (`100m`, `1Gi`, `0.5`, `12e6`) as exact numbers.

Owns: parsing a quantity string into an exact `Fraction`, and rendering it back in the canonical form
kube-apiserver prints (`Quantity.String()`): `1000m` -> `1`, `0.5` -> `500m`, `1024Mi` -> `1Gi`.
Must not import: anything else in orchestra (the scheduler and validation both use it).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import attrs

QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"

BINARY_SI = "BinarySI"
DECIMAL_SI = "DecimalSI"
DECIMAL_EXPONENT = "DecimalExponent"

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {v: k for k, v in _BINARY.items()}
_NANO = Fraction(1, 10**9)


class QuantityError(ValueError):
    """The string is not a Kubernetes quantity; the message is kube's."""


@attrs.frozen(order=False)
class Quantity:
    """An exact quantity and the format it was written in (which decides how it prints)."""

    value: Fraction
    format: str = DECIMAL_SI

    @classmethod
    def parse(cls, text: str | int | float) -> Quantity:
        if isinstance(text, bool):
            raise QuantityError(QUANTITY_ERROR)
        if isinstance(text, int):
            return cls(Fraction(text), DECIMAL_SI)
        if isinstance(text, float):
            text = repr(text)
        s = text.strip() if isinstance(text, str) else ""
        m = QUANTITY_RE.match(s)
        if not s or m is None:
            raise QuantityError(QUANTITY_ERROR)
        number, suffix = m.group(1), m.group(2)
        mantissa = _parse_number(number)
        if suffix in _BINARY:
            value, fmt = mantissa * (2 ** _BINARY[suffix]), BINARY_SI
        elif suffix in _DECIMAL:
            value, fmt = mantissa * Fraction(10) ** _DECIMAL[suffix], DECIMAL_SI
        elif len(suffix) > 1 and suffix[0] in "eE" and re.fullmatch(r"[-+]?[0-9]+", suffix[1:]):
            value, fmt = mantissa * Fraction(10) ** int(suffix[1:]), DECIMAL_EXPONENT
        else:
            raise QuantityError(QUANTITY_ERROR)
        # kube keeps at most nano precision and rounds away from zero beyond it.
        if (value / _NANO).denominator != 1:
            nanos = math.ceil(abs(value) / _NANO)
            value = (nanos * _NANO) if value > 0 else -(nanos * _NANO)
        return cls(value, fmt)

    def __str__(self) -> str:
        return canonical(self.value, self.format)

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __le__(self, other: Quantity) -> bool:
        return self.value <= other.value

    def __gt__(self, other: Quantity) -> bool:
        return self.value > other.value

    def __ge__(self, other: Quantity) -> bool:
        return self.value >= other.value


def _parse_number(number: str) -> Fraction:
    sign = -1 if number.startswith("-") else 1
    digits = number.lstrip("+-")
    if digits.count(".") > 1 or not any(c.isdigit() for c in digits):
        raise QuantityError(QUANTITY_ERROR)
    whole, _, frac = digits.partition(".")
    value = Fraction(int(whole or "0")) + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)
    return sign * value


def parse_quantity(text: str | int | float) -> Fraction:
    """`"100m"` -> `Fraction(1, 10)`; raises QuantityError with kube's message."""
    return Quantity.parse(text).value


def canonical(value: Fraction, fmt: str = DECIMAL_SI) -> str:
    """Render like Quantity.String(): the largest suffix that keeps the mantissa an integer."""
    if value == 0:
        return "0"
    if fmt == BINARY_SI and (value.denominator != 1 or -1024 < value < 1024):
        fmt = DECIMAL_SI
    if fmt == BINARY_SI:
        n, exp = int(value), 0
        while exp < 60 and n % 1024 == 0:
            n //= 1024
            exp += 10
        return f"{n}{_BINARY_SUFFIX.get(exp, '')}"
    exp = -9
    mantissa = value * 10**9
    while exp < 18 and (mantissa / 1000).denominator == 1:
        mantissa /= 1000
        exp += 3
    if fmt == DECIMAL_EXPONENT:
        return f"{int(mantissa)}" + (f"e{exp}" if exp else "")
    return f"{int(mantissa)}{_DECIMAL_SUFFIX[exp]}"


def format_quantity(text: str | int | float) -> str:
    """The canonical spelling of a quantity string (`"0.5"` -> `"500m"`)."""
    return str(Quantity.parse(text))
