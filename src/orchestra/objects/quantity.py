"""Kubernetes resource quantities (`100m`, `1Gi`, `0.5`, `12e6`) as exact numbers, within kube's bounds.

Owns: parsing a quantity into an exact `Fraction` as apimachinery's ParseQuantity does (1.32),
rendering it back in the canonical form kube-apiserver prints (`Quantity.String()`: `1000m` -> `1`,
`0.5` -> `500m`, `1024Mi` -> `1Gi`, `1e20` -> `100e18`), and the int64 views consumers use
(`milli_value()`, `int_value()`: kube's MilliValue / Value).

What kube-apiserver 1.32 does with large values (apimachinery pkg/api/resource, core validation):
  * it refuses none for its size: ValidateResourceQuantityValue checks the sign, and that integer
    resources (extended resources) are whole; `cpu: 1e20` or `memory: 1e30` is accepted;
  * BinarySI values (`Ki` .. `Ei`) are capped at 2^63-1 while parsing: `100Ei` is stored as
    `9223372036854775807`; decimal values keep arbitrary precision;
  * every value rounds up (away from zero) to nano precision: `1e-20` is `1n`;
  * a decimal exponent must fit int64, else "unable to parse quantity's suffix" (as for unknown
    suffixes such as `1Gib`), and only its low 32 bits are kept (`int32(parsed)`): `1e4294967296`
    is 1. That is kube's arithmetic, so it is what a cluster stores; it is kept.
Where kube's int64 accessors overflow (its MilliValue of `1e20` returns 0 or a wrapped number),
`milli_value()` / `int_value()` saturate at the int64 range instead: a consumer sees "more than
any node has", never a wrapped or negative number.
Beyond kube, so no request can make the parser build a number with millions of digits: a decimal
magnitude of 10^1000 or more saturates at 10^1000, and at most 1010 significant digits of a mantissa
are read exactly (further digits only round up; for decimal values that is exact at nano precision).
`parse_or_none(value)` is the lenient read for consumers of stored objects: None for an absent or
malformed value (validation already reported it).
Must not import: anything else in orchestra (part of orchestra.objects: every layer uses it).
"""

from __future__ import annotations

import functools
import math
import re
from fractions import Fraction
from typing import Any

import attrs

QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
SUFFIX_ERROR = "unable to parse quantity's suffix"

BINARY_SI = "BinarySI"
DECIMAL_SI = "DecimalSI"
DECIMAL_EXPONENT = "DecimalExponent"

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
MAX_ORDER = 1000  # a decimal magnitude of 10**MAX_ORDER or more saturates there
MAX_DIGITS = MAX_ORDER + 10  # significant mantissa digits read exactly (see the module docstring)
SATURATED = Fraction(10**MAX_ORDER)

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {v: k for k, v in _BINARY.items()}
_EXPONENT_RE = re.compile(r"[eE]([-+]?)0*([0-9]+)")
_NANO_DIGITS = 9
_NANO = Fraction(1, 10**_NANO_DIGITS)


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
            if abs(text) >= SATURATED:
                return cls(SATURATED if text > 0 else -SATURATED)
            return cls(Fraction(text), DECIMAL_SI)
        if isinstance(text, float):
            text = repr(text)  # inf and nan fail the format check
        if not isinstance(text, str):
            raise QuantityError(QUANTITY_ERROR)
        return _parse_text(text.strip())

    def milli_value(self) -> int:
        """kube's MilliValue (rounded away from zero), saturated at the int64 range."""
        return _saturate(_away_from_zero(self.value * 1000))

    def int_value(self) -> int:
        """kube's Value (rounded away from zero), saturated at the int64 range."""
        return _saturate(_away_from_zero(self.value))

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


@functools.lru_cache(maxsize=4096)
def _parse_text(s: str) -> Quantity:
    """Parse once per distinct string (a cluster uses few; Quantity is immutable)."""
    m = QUANTITY_RE.match(s)
    if not s or m is None:
        raise QuantityError(QUANTITY_ERROR)
    negative, digits, scale = _mantissa(m.group(1))
    base, exponent, fmt = _interpret(m.group(2))
    if not digits:
        return Quantity(Fraction(0), fmt)
    magnitude = _binary(digits, scale, exponent) if base == 2 else _decimal(digits, scale + exponent)
    return Quantity(-magnitude if negative else magnitude, fmt)


def _mantissa(number: str) -> tuple[bool, str, int]:
    """(negative, significant digits without leading zeros, scale): |value| = int(digits) * 10**scale."""
    body = number.lstrip("+-")
    whole, _, frac = body.partition(".")
    if "." in frac or not whole + frac:
        raise QuantityError(QUANTITY_ERROR)
    return number.startswith("-"), (whole + frac).lstrip("0"), -len(frac)


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) of a suffix, as kube's quantitySuffixer.interpret."""
    if suffix in _BINARY:
        return 2, _BINARY[suffix], BINARY_SI
    if suffix in _DECIMAL:
        return 10, _DECIMAL[suffix], DECIMAL_SI
    m = _EXPONENT_RE.fullmatch(suffix)
    if m is None or len(m.group(2)) > 19:  # more digits than any int64
        raise QuantityError(SUFFIX_ERROR)
    exponent = -int(m.group(2)) if m.group(1) == "-" else int(m.group(2))
    if not INT64_MIN <= exponent <= INT64_MAX:
        raise QuantityError(SUFFIX_ERROR)
    return 10, (exponent + 2**31) % 2**32 - 2**31, DECIMAL_EXPONENT  # kube keeps int32(parsed)


def _truncated(digits: str, scale: int) -> tuple[str, int, bool]:
    """At most MAX_DIGITS significant digits; `sticky` says whether a non-zero digit was dropped."""
    if len(digits) <= MAX_DIGITS:
        return digits, scale, False
    sticky = digits[MAX_DIGITS:].strip("0") != ""
    return digits[:MAX_DIGITS], scale + len(digits) - MAX_DIGITS, sticky


def _decimal(digits: str, exponent: int) -> Fraction:
    """|int(digits) * 10**exponent| rounded up to nano precision, saturated at SATURATED."""
    order = len(digits) + exponent  # the value lies in [10**(order-1), 10**order)
    if order > MAX_ORDER:
        return SATURATED
    if order <= -_NANO_DIGITS:
        return _NANO  # non-zero and below 1n: kube rounds it up to 1n
    if exponent >= -_NANO_DIGITS:
        return int(digits) * Fraction(10) ** exponent  # len(digits) <= MAX_ORDER + 9 here
    keep = order + _NANO_DIGITS  # the digits at or above 1n; any other non-zero digit rounds up
    nanos = int(digits[:keep]) + (1 if digits[keep:].strip("0") else 0)
    return Fraction(nanos, 10**_NANO_DIGITS)


def _binary(digits: str, scale: int, exponent: int) -> Fraction:
    """|int(digits) * 10**scale * 2**exponent| rounded up to nano precision, capped at 2^63-1 as kube does."""
    order = len(digits) + scale
    if order > 19:  # at least 10**19 before the binary suffix: over the cap
        return Fraction(INT64_MAX)
    if order < -28:  # under 10**-28 * 2**60 < 1n
        return _NANO
    digits, scale, sticky = _truncated(digits, scale)
    nanos = Fraction(int(digits) << exponent) * Fraction(10) ** (scale + _NANO_DIGITS)
    # a dropped non-zero digit makes the true value larger than `nanos`, by far less than 1n
    rounded = math.floor(nanos) + 1 if sticky else math.ceil(nanos)
    return min(Fraction(rounded, 10**_NANO_DIGITS), Fraction(INT64_MAX))


def _away_from_zero(x: Fraction) -> int:
    return math.ceil(x) if x >= 0 else math.floor(x)


def _saturate(n: int) -> int:
    return max(INT64_MIN, min(INT64_MAX, n))


def parse_or_none(value: Any) -> Quantity | None:
    """The quantity `value` spells, or None when it is absent or malformed."""
    try:
        return Quantity.parse(value)
    except QuantityError:
        return None


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
    sign = "-" if value < 0 else ""
    n, exp = math.ceil(abs(value) * 10**_NANO_DIGITS), -_NANO_DIGITS
    while n % 10 == 0:
        n //= 10
        exp += 1
    shift = exp % 3  # kube's canonical exponents are multiples of 3
    n, exp = n * 10**shift, exp - shift
    if fmt == DECIMAL_EXPONENT:
        return f"{sign}{n}" + (f"e{exp}" if exp else "")
    if exp > 18:  # past E: a larger mantissa (kube would drop the exponent and print a wrong number)
        n, exp = n * 10 ** (exp - 18), 18
    return f"{sign}{n}{_DECIMAL_SUFFIX[exp]}"


def format_quantity(text: str | int | float) -> str:
    """The canonical spelling of a quantity string (`"0.5"` -> `"500m"`)."""
    return str(Quantity.parse(text))


def milli_value(text: str | int | float) -> int:
    """kube's MilliValue of a quantity, saturated at the int64 range; raises QuantityError."""
    return Quantity.parse(text).milli_value()


def int_value(text: str | int | float) -> int:
    """kube's Value of a quantity, saturated at the int64 range; raises QuantityError."""
    return Quantity.parse(text).int_value()
