"""The string formats a CRD schema enforces (kube-openapi's strfmt registry, as apiextensions keeps it).

Owns: `SUPPORTED` (the formats kube validates; any other format — int32, int64, float, double among
them — is dropped from the schema before validation, StripUnsupportedFormatsPostProcess) and
`check(fmt, value) -> bool`. Parsers mirror Go's: net.ParseIP (ipv4/ipv6), net.ParseCIDR,
net.ParseMAC, net/url.ParseRequestURI, net/mail.ParseAddress (approximated), RFC 3339 dates.
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from datetime import date, datetime

SUPPORTED = frozenset({
    "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3", "uuid4",
    "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor", "byte", "password",
    "date", "duration", "datetime",
})

_HOSTNAME = re.compile(
    r"^([a-zA-Z0-9\u00a0-\uffff]((-?[a-zA-Z0-9\u00a0-\uffff]{0,62})?)|"
    r"([a-zA-Z0-9\u00a0-\uffff](([a-zA-Z0-9\-\u00a0-\uffff]{0,61}[a-zA-Z0-9\u00a0-\uffff])?)(\.)){1,}"
    r"([a-zA-Z\u00a0-\uffff]){2,63})$"
)
_UUID = {
    "uuid": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"),
    "uuid3": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$"),
    "uuid4": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"),
    "uuid5": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"),
}
_MAC = re.compile(r"^([0-9A-Fa-f]{2}([:-]))([0-9A-Fa-f]{2}\2){4,18}[0-9A-Fa-f]{2}$|"
                  r"^([0-9A-Fa-f]{4}\.){2,9}[0-9A-Fa-f]{4}$")
_EMAIL = re.compile(r"^(?:[^<>@\s]+ )*<?[^@\s<>]+@[^@\s<>]+>?$")
_DURATION = re.compile(r"^(-?(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$|^0$")
_SCALA_DURATION = re.compile(r"^\d+\s*(ns|us|ms|s|m|h|d|w|nanoseconds?|microseconds?|milliseconds?|seconds?|"
                             r"minutes?|hours?|days?|weeks?)$")
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")
_HEXCOLOR = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_RGB = re.compile(r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])"
                  r"\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)$")
_SSN = re.compile(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$")
_BSON = re.compile(r"^[0-9a-fA-F]{24}$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S*$|^/\S*$")


def normalize(fmt: str) -> str:
    return fmt.replace("-", "")


def check(fmt: str, value: str) -> bool:
    """Whether `value` is valid for format `fmt` (an unsupported format accepts everything)."""
    checker = _CHECKS.get(normalize(fmt))
    return checker is None or checker(value)


def _ipv4(v: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(v), ipaddress.IPv4Address)
    except ValueError:
        return False


def _ipv6(v: str) -> bool:
    try:
        ipaddress.ip_address(v)  # Go's ParseIP takes either family for "ipv6"
    except ValueError:
        return False
    return ":" in v


def _cidr(v: str) -> bool:
    try:
        ipaddress.ip_network(v, strict=False)
    except ValueError:
        return False
    return "/" in v


def _byte(v: str) -> bool:
    try:
        base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _date(v: str) -> bool:
    try:
        date.fromisoformat(v)
    except ValueError:
        return False
    return len(v) == 10


def _datetime(v: str) -> bool:
    if not _DATETIME.match(v):
        return False
    try:
        datetime.fromisoformat(v.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
    except ValueError:
        return False
    return True


def _isbn10(v: str) -> bool:
    s = re.sub(r"[\s-]", "", v)
    if not re.fullmatch(r"\d{9}[\dX]", s):
        return False
    total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(s))
    return total % 11 == 0


def _isbn13(v: str) -> bool:
    s = re.sub(r"[\s-]", "", v)
    if not re.fullmatch(r"\d{13}", s):
        return False
    return sum((3 if i % 2 else 1) * int(c) for i, c in enumerate(s)) % 10 == 0


def _creditcard(v: str) -> bool:
    digits = re.sub(r"\D", "", v)
    if not re.fullmatch(
        r"4\d{12}(\d{3})?|5[1-5]\d{14}|6(?:011|5\d\d)\d{12}|3[47]\d{13}|3(?:0[0-5]|[68]\d)\d{11}"
        r"|(?:2131|1800|35\d{3})\d{11}",
        digits,
    ):
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def rx_check(rx: re.Pattern[str], v: str) -> bool:
    return bool(rx.match(v))


def _hostname(v: str) -> bool:
    return bool(_HOSTNAME.match(v)) and len(v) <= 255 and all(len(p) <= 63 for p in v.split("."))


_CHECKS: dict[str, Callable[[str], bool]] = {
    "bsonobjectid": lambda v: bool(_BSON.match(v)),
    "uri": lambda v: bool(_URI.match(v)),
    "email": lambda v: bool(_EMAIL.match(v)),
    "hostname": _hostname,
    "ipv4": _ipv4,
    "ipv6": _ipv6,
    "cidr": _cidr,
    "mac": lambda v: bool(_MAC.match(v)),
    **{k: rx_check.__get__(rx) for k, rx in _UUID.items()},
    "isbn": lambda v: _isbn10(v) or _isbn13(v),
    "isbn10": _isbn10,
    "isbn13": _isbn13,
    "creditcard": _creditcard,
    "ssn": lambda v: bool(_SSN.match(v)),
    "hexcolor": lambda v: bool(_HEXCOLOR.match(v)),
    "rgbcolor": lambda v: bool(_RGB.match(v)),
    "byte": _byte,
    "password": lambda v: True,
    "date": _date,
    "duration": lambda v: bool(_DURATION.match(v) or _SCALA_DURATION.match(v)),
    "datetime": _datetime,
}
