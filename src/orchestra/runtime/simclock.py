"""The simulated runtime's calendar: which wall-clock moment a trio time stands for.

Owns: `SimClock`, the one mapping between trio time (what the simulation runs on, so MockClock
drives it in tests) and the timestamps it reports (container created/started/finished times, log
timestamps, `since` filters) or persists (unix seconds, so state survives a restart of the process,
whose trio clock starts again elsewhere). `SimClock()` is deterministic: trio time 0 is EPOCH.
`SimClock.wall()` is the real calendar, its base taken once when called (inside trio).
Must not import: podman, anything above the runtime layer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import trio

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)  # virtual time 0 as a wall-clock timestamp


@attrs.frozen
class SimClock:
    """Trio time `origin` is the wall-clock moment `epoch`; one trio second is one real second."""

    epoch: datetime = EPOCH
    origin: float = 0.0

    @classmethod
    def wall(cls) -> SimClock:
        """The real calendar: now (trio) is now (wall). Call once, at start, inside trio."""
        return cls(datetime.now(UTC), trio.current_time())

    def to_datetime(self, t: float) -> datetime:
        return self.epoch + timedelta(seconds=t - self.origin)

    def to_trio(self, when: datetime) -> float:
        return (when - self.epoch).total_seconds() + self.origin

    def to_unix(self, t: float) -> float:
        return self.epoch.timestamp() + (t - self.origin)

    def from_unix(self, seconds: float) -> float:
        return seconds - self.epoch.timestamp() + self.origin

    def stamp_line(self, t: float, line: bytes) -> bytes:
        """A log line with its RFC 3339 nanosecond timestamp, as `podman logs -t` writes it."""
        stamp = self.to_datetime(t).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
        return stamp.encode() + b" " + line
