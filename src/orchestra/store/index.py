"""The key index and the global history of a Store: reads at any retained revision, and compaction.

Owns: KeyIndex, the base class of orchestra.store.Store that holds the per-key event lists, the
sorted key list, the global history and the revision counters, and answers get/range/count (now or
at a past revision) and compact(). Writes, watches and durability stay in orchestra.store.
Must not import: anything from orchestra except orchestra.store.types.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterator

from orchestra.store.types import PUT, CompactedError, Event, FutureRevisionError, KeyValue, rev_of

MERGE_MIN = 1024  # new keys kept apart (sorted on their own) up to this many, or 1/16 of the sorted ones


class KeyIndex:
    """The read side of Store (see orchestra.store); the state is initialised by Store.__init__."""

    __slots__ = (
        "_base",
        "_compact_revision",
        "_history",
        "_index",
        "_live",
        "_max_history",
        "_new_keys",
        "_revision",
        "_sorted",
    )

    _index: dict[str, list[Event]]  # key -> its events, oldest first
    _sorted: list[str]  # every key in _index, sorted ...
    _new_keys: list[str]  # ... except these, merged in on the next range
    _history: list[Event]  # every retained event, in revision order
    _base: int  # absolute position of _history[0]
    _revision: int
    _compact_revision: int
    _live: int
    _max_history: int

    # --- reads -----------------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def compact_revision(self) -> int:
        return self._compact_revision

    def _check_read_revision(self, revision: int) -> None:
        if revision > self._revision:
            raise FutureRevisionError(revision, self._revision)
        if revision < self._compact_revision:
            raise CompactedError(revision, self._compact_revision)

    def get(self, key: str, *, revision: int | None = None) -> KeyValue | None:
        if revision is not None:
            self._check_read_revision(revision)
        events = self._index.get(key)
        if events is None:
            return None
        ev = events[-1]
        if revision is not None and ev.kv.mod_revision > revision:
            i = bisect.bisect_right(events, revision, key=rev_of) - 1
            if i < 0:
                return None
            ev = events[i]
        return ev.kv if ev.type == PUT else None

    def range(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        limit: int | None = None,
        start_after: str | None = None,
    ) -> tuple[list[KeyValue], int]:
        """Live keys starting with `prefix` at `revision` (default: now), sorted, after
        `start_after`, at most `limit`; returns them and the revision they were read at."""
        if revision is None:
            revision = self._revision
        else:
            self._check_read_revision(revision)
        past = revision < self._revision
        out: list[KeyValue] = []
        index = self._index
        for key in self._keys_from(prefix, start_after):
            if not key.startswith(prefix):
                break
            events = index[key]
            ev = events[-1]
            if past and ev.kv.mod_revision > revision:
                i = bisect.bisect_right(events, revision, key=rev_of) - 1
                if i < 0:
                    continue
                ev = events[i]
            if ev.type == PUT:
                out.append(ev.kv)
                if limit is not None and len(out) >= limit:
                    break
        return out, revision

    def count(self, prefix: str) -> int:
        """The number of live keys starting with `prefix`."""
        if not prefix:
            return self._live
        index, n = self._index, 0
        for key in self._keys_from(prefix, None):
            if not key.startswith(prefix):
                break
            n += index[key][-1].type == PUT
        return n

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
            its.append(itertools.islice(keys, lo, None))
        return heapq.merge(*its) if len(its) > 1 else its[0]

    def _sorted_keys(self) -> list[str]:
        if self._new_keys:
            # Timsort merges the sorted run with the new keys in O(n + k log k); insort per key
            # would make every create O(n).
            self._sorted += self._new_keys
            self._new_keys.clear()
            self._sorted.sort()
        return self._sorted

    def _current(self, key: str) -> KeyValue | None:
        events = self._index.get(key)
        if events is None or events[-1].type != PUT:
            return None
        return events[-1].kv

    # --- history ---------------------------------------------------------------------------------

    def compact(self, revision: int) -> None:
        """Drop history at and before `revision` (the state at `revision` stays readable)."""
        if revision > self._revision:
            raise FutureRevisionError(revision, self._revision)
        if revision <= self._compact_revision:
            return
        history = self._history
        cut = bisect.bisect_right(history, revision, key=rev_of)
        touched = {ev.kv.key for ev in itertools.islice(history, cut)}
        del history[:cut]
        self._base += cut
        self._compact_revision = revision
        index, removed = self._index, False
        for key in touched:
            events = index[key]
            i = bisect.bisect_right(events, revision, key=rev_of)
            keep = i - 1 if events[i - 1].type == PUT else i  # the state at `revision` stays
            del events[:keep]
            if not events:
                del index[key]
                removed = True
        if removed:
            self._sorted = [key for key in self._sorted_keys() if key in index]

    def _trim(self) -> None:
        excess = len(self._history) - self._max_history
        if excess > 0:
            self.compact(self._history[excess - 1].kv.mod_revision)
