"""Cron schedules and time zones, as robfig/cron/v3's ParseStandard and CronJob validation see them.

Owns: cron_error (the parser's error text, "" when valid) and valid_time_zone.
Must not import: anything in orchestra.api.policy.validation (it is pure parsing).
"""

from __future__ import annotations

import re
import zoneinfo


def valid_time_zone(tz: str) -> bool:
    if tz in ("", "Local") or tz.startswith((".", "/")) or ".." in tz:
        return False
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


# --- cron (robfig/cron/v3 ParseStandard, with its error messages) ---------------------------------------

_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_BOUNDS: tuple[tuple[int, int, dict[str, int] | None], ...] = (
    (0, 59, None),
    (0, 23, None),
    (1, 31, None),
    (1, 12, _MONTHS),
    (0, 6, _DAYS),
)


def _atoi(expr: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", expr):
        raise ValueError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax')
    num = int(expr)
    if num < 0:
        raise ValueError(f"negative number ({num}) not allowed: {expr}")
    return num


def _cron_range(expr: str, lo: int, hi: int, names: dict[str, int] | None) -> None:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")

    def value(s: str) -> int:
        if names and s.lower() in names:
            return names[s.lower()]
        return _atoi(s)

    if low_high[0] in ("*", "?"):
        start, end = lo, hi
    else:
        start = value(low_high[0])
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = value(low_high[1])
        else:
            raise ValueError(f"too many hyphens: {expr}")
    step = 1
    if len(range_and_step) == 2:
        step = _atoi(range_and_step[1])
        if len(low_high) == 1:
            end = hi
    elif len(range_and_step) > 2:
        raise ValueError(f"too many slashes: {expr}")
    if start < lo:
        raise ValueError(f"beginning of range ({start}) below minimum ({lo}): {expr}")
    if end > hi:
        raise ValueError(f"end of range ({end}) above maximum ({hi}): {expr}")
    if start > end:
        raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ValueError(f"step of range should be a positive number: {expr}")


def cron_error(spec: str) -> str:
    """robfig/cron's ParseStandard error for `spec`, or "" when it parses."""
    spec = spec.strip()
    if not spec:
        return "empty spec string"
    if spec.startswith(("TZ=", "CRON_TZ=")):
        head, _, rest = spec.partition(" ")
        tz = head.split("=", 1)[1]
        if not valid_time_zone(tz) and tz != "Local":
            return f"provided bad location {tz}: unknown time zone {tz}"
        spec = rest.strip()
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            return ""
        if spec.startswith("@every "):
            dur = spec[len("@every ") :]
            if re.fullmatch(r"([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+", dur):
                return ""
            return f'failed to parse duration {spec}: time: invalid duration "{dur}"'
        return f"unrecognized descriptor: {spec}"
    fields = spec.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    try:
        for field_text, (lo, hi, names) in zip(fields, _BOUNDS, strict=True):
            for expr in field_text.split(","):
                _cron_range(expr, lo, hi, names)
    except ValueError as exc:
        return str(exc)
    return ""
