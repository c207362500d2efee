"""Per-key exponential back-off on trio time, with the kubelet's semantics (client-go flowcontrol.Backoff).

Owns: the CrashLoopBackOff and image-pull back-off bookkeeping. `next(key, at)` is called when the
agent decides to (re)try at the moment of failure `at`; `in_backoff_since(key, at)` says whether a
retry for a failure at `at` must still wait. The first failure is retried at once, then 10 s, 20 s,
40 s ... capped at 5 min; an entry not updated for 2 x max (10 min, i.e. the container ran that
long) starts over at the initial delay — exactly kubelet's doBackOff.
Must not import: anything outside the standard library and trio.
"""

from __future__ import annotations

import attrs
import trio

INITIAL = 10.0
MAXIMUM = 300.0


@attrs.define
class _Entry:
    delay: float
    last_update: float


class Backoff:
    def __init__(self, initial: float = INITIAL, maximum: float = MAXIMUM) -> None:
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[str, _Entry] = {}

    def _expired(self, entry: _Entry, at: float) -> bool:
        return at - entry.last_update > 2 * self.maximum

    def get(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def next(self, key: str, at: float) -> float:
        """Record a retry for a failure at `at`; returns the delay the following failure will wait."""
        entry = self._entries.get(key)
        now = trio.current_time()
        if entry is None or self._expired(entry, at):
            entry = self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay = min(entry.delay * 2, self.maximum)
            entry.last_update = now  # client-go stamps the decision time, not the failure time
        return entry.delay

    def in_backoff_since(self, key: str, at: float) -> bool:
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, at):
            return False
        return trio.current_time() - at < entry.delay

    def retry_at(self, key: str, at: float) -> float:
        """The trio time at which a failure at `at` may be retried."""
        return at + self.get(key)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
