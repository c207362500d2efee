"""Timestamps and durations as Kubernetes writes and prints them.

Owns:
  * metav1.Time on the wire: `format_time` (RFC 3339 in UTC at second precision with `Z`, as
    kube-apiserver serializes it), `now_rfc3339` (the wall clock in that form, for the
    timestamps written into objects), `parse_time` (lenient: anything that is not an RFC 3339
    string gives None; fractions are accepted; a value without an offset is taken as UTC);
  * durations: `human_duration` (apimachinery's duration.HumanDuration, what kubectl shows in AGE
    columns), `go_duration` (Go's time.Duration.String() of nanoseconds: `1h2m3.5s`, `150ms`,
    `0s`) and `go_duration_seconds` (the same for seconds).
Must not import: anything from orchestra (every layer imports this module). Only wall-clock
timestamps live here; trio time stays with the code that schedules.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

RFC3339 = "%Y-%m-%dT%H:%M:%SZ"
_SECOND = 1_000_000_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE


def format_time(dt: datetime) -> str:
    """metav1.Time as kube serializes it: UTC, whole seconds, `Z` (`2025-01-01T00:00:00Z`)."""
    return dt.astimezone(UTC).strftime(RFC3339)


def now_rfc3339() -> str:
    """Wall-clock time for object timestamps (creationTimestamp etc.), RFC 3339 with `Z`."""
    return datetime.now(UTC).strftime(RFC3339)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (`2024-05-01T10:00:00Z`, optionally with fractions) as an aware
    datetime; None for anything else (absent, empty, not a string, malformed)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_MINUTE_S, _HOUR_S, _DAY_S, _YEAR_S = 60, 3600, 86400, 365 * 86400  # in seconds (the others are in ns)
_UNIT_NAMES = {1: "s", _MINUTE_S: "m", _HOUR_S: "h", _DAY_S: "d", _YEAR_S: "y"}
# HumanDuration's ladder: below `limit` seconds, whole `unit`s, then (when `sub` is set and the
# remainder is not zero) the remainder in whole `sub`s.
_HUMAN_LADDER = (
    (2 * _MINUTE_S, 1, None),
    (10 * _MINUTE_S, _MINUTE_S, 1),
    (3 * _HOUR_S, _MINUTE_S, None),
    (8 * _HOUR_S, _HOUR_S, _MINUTE_S),
    (48 * _HOUR_S, _HOUR_S, None),
    (8 * _DAY_S, _DAY_S, _HOUR_S),
    (2 * _YEAR_S, _DAY_S, None),
    (8 * _YEAR_S, _YEAR_S, _DAY_S),
)


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration: 45s, 5m10s, 3h, 2d4h, 400d, 3y12d;
    `<invalid>` more than a second in the future (kube's tolerance for clock skew)."""
    s = int(seconds)  # Go's int(d.Seconds()) truncates toward zero
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    unit, sub = next(((u, below) for limit, u, below in _HUMAN_LADDER if s < limit), (_YEAR_S, None))
    shown = f"{s // unit}{_UNIT_NAMES[unit]}"
    if sub is None or (rest := (s // sub) % (unit // sub)) == 0:
        return shown
    return f"{shown}{rest}{_UNIT_NAMES[sub]}"


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): `1h2m3.5s`, `150ms`, `0s`."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < _SECOND:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if u >= size:
                return sign + _frac(u, size) + unit
    h, rem = divmod(u, _HOUR)
    m, rem = divmod(rem, _MINUTE)
    out = sign
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    return out + _frac(rem, _SECOND) + "s"


def go_duration_seconds(seconds: float) -> str:
    """go_duration of a number of seconds (rounded to the nanosecond): `10s`, `1m20s`, `5m0s`."""
    return go_duration(round(seconds * _SECOND))


def _frac(v: int, size: int) -> str:
    whole, rest = divmod(v, size)
    if not rest:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}." + f"{rest:0{digits}d}".rstrip("0")
