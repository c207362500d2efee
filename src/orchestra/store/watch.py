"""Watcher: a cursor into a Store's shared history (see orchestra.store for the watch semantics).

Owns: iterating, filtering and batching history events for one watch, and noticing compaction and
close. Writers never wait for it: it parks on the store's change event and reads at its own pace.
Must not import: anything from orchestra except orchestra.store.types (and orchestra.store for types).
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

import trio

from orchestra.store.types import CompactedError, Event, StoreClosedError

if TYPE_CHECKING:
    from orchestra.store.mvcc import Store

_WATCH_SCAN = 1024  # history events a watcher scans per batch before yielding
_BACKLOG_SCAN = 16_384  # history events one backlog() call scans at most (it resumes next time)


class Watcher:
    """A cursor into the store's history. `async with store.watch(...) as w: async for batch in w`.
    Each batch is a non-empty list of events in revision order (a txn's events never straddle two
    batches)."""

    __slots__ = ("__weakref__", "_closed", "_count_start", "_counted", "_cursor", "_next_revision",
                 "_pending", "_prefix", "_store")

    def __init__(self, store: Store, prefix: str, cursor: int, start_revision: int, live: int) -> None:
        """cursor: where reading starts; live: where the history stood when the watch was made
        (absolute indexes into the history, which survive compaction)."""
        self._store = store
        self._prefix = prefix
        self._cursor = cursor
        self._next_revision = start_revision
        self._closed = False
        # backlog(): events in [max(cursor, _count_start), _counted) are counted, _pending of them
        # under the prefix; the history a watch replays (before `live`) is not backlog.
        self._count_start = self._counted = max(cursor, live)
        self._pending = 0

    async def __aenter__(self) -> Watcher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Watcher:
        return self

    async def __anext__(self) -> list[Event]:
        store, waited = self._store, False
        while True:
            if self._closed:
                raise StopAsyncIteration
            if store._closed:
                raise StoreClosedError("store closed")
            if self._cursor < store._base + len(store._history):
                if not waited:
                    await trio.lowlevel.checkpoint()
                    waited = True
                    continue  # re-check: the store may have been closed or compacted meanwhile
                batch = self._take()
                if batch:
                    return batch
                waited = False  # only filtered-out events: yield before scanning further
                continue
            await store._park(self._prefix).wait()
            waited = True

    def receive_nowait(self) -> list[Event]:
        """The next batch without waiting; trio.WouldBlock if the watcher is caught up."""
        if self._closed or self._store._closed:
            raise StoreClosedError("watcher or store closed")
        while self._cursor < self._store._base + len(self._store._history):
            batch = self._take()
            if batch:
                return batch
        raise trio.WouldBlock

    def _take(self) -> list[Event]:
        store = self._store
        start = self._cursor - store._base
        if start < 0:
            raise CompactedError(self._next_revision, store._compact_revision)
        history = store._history
        end = len(history)
        stop = min(end, start + _WATCH_SCAN)
        if stop < end:
            last = history[stop - 1].kv.mod_revision
            while stop < end and history[stop].kv.mod_revision == last:
                stop += 1
        prefix = self._prefix
        events = history[start:stop]
        if prefix:
            events = [ev for ev in events if ev.kv.key.startswith(prefix)]
        self._uncount(self._cursor, self._cursor + stop - start, events)
        self._cursor += stop - start
        self._next_revision = history[stop - 1].kv.mod_revision + 1
        return events

    def _uncount(self, start: int, stop: int, taken: list[Event]) -> None:
        """Events at absolute [start, stop) were taken (`taken`: those under the prefix)."""
        lo, hi = max(start, self._count_start), min(stop, self._counted)
        if hi > lo:
            if (lo, hi) != (start, stop):
                base, prefix = self._store._base, self._prefix
                counted = self._store._history[lo - base:hi - base]
                taken = [ev for ev in counted if ev.kv.key.startswith(prefix)]
            self._pending -= len(taken)
        self._counted = max(self._counted, stop)

    def backlog(self, limit: int) -> int:
        """Events under this watcher's prefix written since it was made that it has not taken yet
        (what it replays from before is not counted), up to `limit`; `limit` too once compaction
        has overtaken it. Counting resumes where the last call stopped (at most _BACKLOG_SCAN history
        events per call), so polling costs O(new history)."""
        store = self._store
        if self._cursor < store._base:
            return limit
        history, prefix = store._history, self._prefix
        i = self._counted - store._base
        stop = min(len(history), i + _BACKLOG_SCAN)
        n = self._pending
        while n < limit and i < stop:
            n += history[i].kv.key.startswith(prefix)
            i += 1
        self._counted, self._pending = store._base + i, n
        return min(n, limit)

    @property
    def lag(self) -> int:
        """History events this watcher has not read yet."""
        return self._store._base + len(self._store._history) - self._cursor

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._store._watchers.discard(self)
            self._store._wake()  # a task parked in __anext__ on this watcher should see it closed
