"""The injectable wall clock controllers stamp objects with.

Owns: `Clock` — a function returning the current aware datetime. Timestamps a controller writes
into objects (conditions, startTime, completionTime, lastScheduleTime, disruptedPods) and every
comparison against timestamps read from objects go through it, so tests pass `virtual_clock()`
(an epoch plus trio.current_time(), deterministic under trio's MockClock) and assert exact
virtual times; production uses `wall_clock`.
Must not import: anything above the controller layer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import trio

Clock = Callable[[], datetime]
VIRTUAL_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def wall_clock() -> datetime:
    return datetime.now(UTC)


def virtual_clock(epoch: datetime = VIRTUAL_EPOCH) -> Clock:
    """A clock derived from trio's: `epoch + trio.current_time()` (deterministic under MockClock)."""

    def now() -> datetime:
        return epoch + timedelta(seconds=trio.current_time())

    return now
