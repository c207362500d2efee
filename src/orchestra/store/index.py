"""The per-key revision index: every retained event of every key, and the keys in order.

Owns: KeyIndex - each key's events oldest first (so a read at a past revision is one bisect), the
sorted key list (new keys kept apart and merged in lazily), each live key's current value, and
dropping a key's events from before a compaction revision. It knows nothing of the global revision, the
history or watches: orchestra.store.mvcc checks that a revision is readable and decides what to
compact, and holds one KeyIndex.
Must not import: anything from orchestra except orchestra.store.types.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable, Iterator

from orchestra.store.types import PUT, Event, KeyValue, rev_of

MERGE_MIN = 1024  # new keys kept apart (sorted on their own) up to this many, or 1/16 of the sorted ones


class KeyIndex:
    """Keys -> their events. Reads take a revision already checked to be retained (None: now)."""

    __slots__ = ("_events", "_live", "_new_keys", "_sorted", "current")

    def __init__(self) -> None:
        self._events: dict[str, list[Event]] = {}  # key -> its events, oldest first
        self._live: dict[str, KeyValue] = {}  # key -> its current value, for the live keys only
        self._sorted: list[str] = []  # every key in _events, sorted ...
        self._new_keys: list[str] = []  # ... except these, merged in on the next range
        # current(key) -> KeyValue | None: the key's value now. Every write reads it first, so it
        # is the bound dict.get (no Python frame) rather than a method.
        self.current: Callable[[str], KeyValue | None] = self._live.get

    def __len__(self) -> int:
        """The number of live keys."""
        return len(self._live)

    @property
    def indexed(self) -> int:
        """Indexed keys, deleted ones whose tombstone is still retained included."""
        return len(self._events)

    # --- writes ----------------------------------------------------------------------------------

    def add(self, key: str, ev: Event) -> None:
        """Record a committed event of `key`; it is newer than every event of that key."""
        events = self._events.get(key)
        if events is None:
            self._events[key] = [ev]
            self._new_keys.append(key)
        else:
            events.append(ev)
        if ev.type == PUT:
            self._live[key] = ev.kv
        else:
            del self._live[key]

    def load(self, kvs: Iterable[KeyValue]) -> None:
        """Install live keys, each as its only event (a recovered state), into the empty index."""
        events, live = self._events, self._live
        for kv in kvs:
            events[kv.key] = [Event(PUT, kv)]
            live[kv.key] = kv
            self._new_keys.append(kv.key)

    def compact(self, keys: Iterable[str], revision: int) -> None:
        """Drop the events of `keys` from before their state at `revision` (a key deleted at or
        before it goes entirely)."""
        index, removed = self._events, False
        for key in keys:
            events = index[key]
            i = bisect.bisect_right(events, revision, key=rev_of)
            keep = i - 1 if events[i - 1].type == PUT else i  # the state at `revision` stays
            del events[:keep]
            if not events:
                del index[key]
                removed = True
        if removed:
            self._sorted = [key for key in self._sorted_keys() if key in index]

    # --- reads -----------------------------------------------------------------------------------

    def get(self, key: str, revision: int | None) -> KeyValue | None:
        if revision is None:
            return self._live.get(key)
        events = self._events.get(key)
        if events is None:
            return None
        ev = events[-1]
        if ev.kv.mod_revision > revision:
            i = bisect.bisect_right(events, revision, key=rev_of) - 1
            if i < 0:
                return None
            ev = events[i]
        return ev.kv if ev.type == PUT else None

    def range(
        self, prefix: str, revision: int | None, limit: int | None, start_after: str | None
    ) -> list[KeyValue]:
        """Live keys starting with `prefix` at `revision`, sorted, after `start_after`, at most `limit`."""
        out: list[KeyValue] = []
        index = self._events
        for key in self._keys_from(prefix, start_after):
            if not key.startswith(prefix):
                break
            events = index[key]
            ev = events[-1]
            if revision is not None and ev.kv.mod_revision > revision:
                i = bisect.bisect_right(events, revision, key=rev_of) - 1
                if i < 0:
                    continue
                ev = events[i]
            if ev.type == PUT:
                out.append(ev.kv)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def count(self, prefix: str) -> int:
        """The number of live keys starting with `prefix`."""
        if not prefix:
            return len(self._live)
        index, n = self._events, 0
        for key in self._keys_from(prefix, None):
            if not key.startswith(prefix):
                break
            n += index[key][-1].type == PUT
        return n

    def live_values(self) -> list[KeyValue]:
        """Every live key's current value, in no particular order (a snapshot's entries)."""
        return list(self._live.values())

    def _keys_from(self, prefix: str, start_after: str | None) -> Iterator[str]:
        """Keys in order from the first >= prefix (and > start_after); callers stop at the first
        key outside the prefix. While the new keys are few next to the sorted ones they are sorted
        on their own and merged into this one read, so a read between creates costs O(log n + k)
        rather than a merge of every key (a create-heavy burst interleaved with small reads)."""
        new = self._new_keys
        if len(new) > max(MERGE_MIN, len(self._sorted) >> 4):
            self._sorted_keys()
        parts = [self._sorted, new] if new else [self._sorted]
        if new:
            new.sort()
        its = []
        for keys in parts:
            lo = bisect.bisect_left(keys, prefix)
            if start_after is not None:
                lo = max(lo, bisect.bisect_right(keys, start_after))
            its.append(_from(keys, lo))
        return heapq.merge(*its) if len(its) > 1 else its[0]

    def _sorted_keys(self) -> list[str]:
        if self._new_keys:
            # Timsort merges the sorted run with the new keys in O(n + k log k); insort per key
            # would make every create O(n).
            self._sorted += self._new_keys
            self._new_keys.clear()
            self._sorted.sort()
        return self._sorted


def _from(keys: list[str], lo: int) -> Iterator[str]:
    """keys[lo:] without copying them, and without walking the first `lo` as islice would."""
    for i in range(lo, len(keys)):
        yield keys[i]
