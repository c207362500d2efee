"""Cron expressions as CronJob reads them (robfig/cron's standard parser).

Owns: parsing 5 fields (minute hour day-of-month month day-of-week) with `*`, `?`, ranges `a-b`,
steps `*/n` and `a-b/n` and `a/n`, lists, month and weekday names (jan..dec, sun..sat), the
macros @yearly/@annually/@monthly/@weekly/@daily/@midnight/@hourly, an optional `TZ=`/`CRON_TZ=`
prefix; and `Schedule.next(after)`: the first matching minute strictly after `after`, computed in
the schedule's time zone. Day-of-month and day-of-week are OR-ed when both are restricted
(classic cron), AND-ed when either is `*`.
Must not import: anything from orchestra above the api layer (pure).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_BOUNDS = [(0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, MONTHS), (0, 6, DAYS)]


class CronError(ValueError):
    pass


@attrs.frozen
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    dom: frozenset[int]
    months: frozenset[int]
    dow: frozenset[int]
    dom_star: bool
    dow_star: bool
    tz: tzinfo | None = None

    def _day_matches(self, dt: datetime) -> bool:
        dom_ok = dt.day in self.dom
        dow_ok = (dt.isoweekday() % 7) in self.dow
        if self.dom_star or self.dow_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def next(self, after: datetime) -> datetime | None:
        """The first scheduled time strictly after `after` (aware), in after's time zone."""
        tz = self.tz or after.tzinfo
        t = after.astimezone(tz).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t.year + 5
        while t.year <= limit:
            if t.month not in self.months:
                t = _first_of_next_month(t)
                continue
            if not self._day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
                continue
            if t.minute not in self.minutes:
                t = t + timedelta(minutes=1)
                continue
            return t.astimezone(after.tzinfo)
        return None


def _first_of_next_month(t: datetime) -> datetime:
    if t.month == 12:
        return t.replace(year=t.year + 1, month=1, day=1, hour=0, minute=0)
    return t.replace(month=t.month + 1, day=1, hour=0, minute=0)


def _value(text: str, lo: int, hi: int, names: dict[str, int]) -> int:
    low = text.lower()
    if low in names:
        return names[low]
    try:
        v = int(text)
    except ValueError:
        raise CronError(f"failed to parse int from {text}") from None
    if names is DAYS and v == 7:
        v = 0  # 7 is Sunday too
    if not lo <= v <= hi:
        raise CronError(f"value {v} out of range [{lo}, {hi}]")
    return v


def _field(text: str, lo: int, hi: int, names: dict[str, int]) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for part in text.split(","):
        rng, _, step_s = part.partition("/")
        step = 1
        if step_s:
            try:
                step = int(step_s)
            except ValueError:
                raise CronError(f"failed to parse int from {step_s}") from None
            if step <= 0:
                raise CronError(f"step of range should be a positive number: {part}")
        if rng in ("*", "?"):
            start, end = lo, hi
            star = star or not step_s
        elif "-" in rng:
            a, b = rng.split("-", 1)
            start, end = _value(a, lo, hi, names), _value(b, lo, hi, names)
            if start > end:
                raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {part}")
        else:
            start = _value(rng, lo, hi, names)
            end = hi if step_s else start
        values.update(range(start, end + 1, step))
    return frozenset(values), star


def parse(expr: str, tz: tzinfo | None = None) -> Schedule:
    """Parse a CronJob schedule; raises CronError with a robfig-like message."""
    text = expr.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        zone, _, text = text.partition(" ")
        tz = load_zone(zone.split("=", 1)[1])
        text = text.strip()
    text = MACROS.get(text.lower(), text)
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: {expr}")
    parsed = [_field(f, lo, hi, names) for f, (lo, hi, names) in zip(fields, _BOUNDS, strict=True)]
    return Schedule(parsed[0][0], parsed[1][0], parsed[2][0], parsed[3][0], parsed[4][0],
                    dom_star=parsed[2][1], dow_star=parsed[4][1], tz=tz)


def load_zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown time zone {name}") from exc
