"""Watches: a Watcher is a cursor into the shared history; the Notifier wakes the parked ones.

Owns: iterating, filtering and batching history events for one watch, noticing compaction and
close, counting a watcher's backlog; and the Notifier, the narrow hook between the store and its
watchers - park(prefix) hands a caught-up watcher the trio.Event the next write under that prefix
sets, wake(key) is what the store calls after each write, and it records the open watchers and
whether the store is closed. Writers never wait for a watcher: it parks and reads at its own pace.
See orchestra.store for the watch semantics.
Must not import: anything from orchestra except orchestra.store.types and orchestra.store.history
(never the Store: a watcher sees only the history and the notifier it is handed).
"""

from __future__ import annotations

import weakref
from types import TracebackType

import trio

from orchestra.store.history import History
from orchestra.store.types import CompactedError, Event, StoreClosedError

_WATCH_SCAN = 1024  # history events a watcher scans per batch before yielding
_BACKLOG_SCAN = 16_384  # history events one backlog() call scans at most (it resumes next time)


class Notifier:
    """Parked watchers by prefix, the open watchers, and whether the store is closed."""

    __slots__ = ("closed", "parked", "watchers")

    def __init__(self) -> None:
        self.parked: dict[str, trio.Event] = {}  # watched prefix -> set by the next write under it
        self.watchers: weakref.WeakSet[Watcher] = weakref.WeakSet()
        self.closed = False

    def park(self, prefix: str) -> trio.Event:
        """The event a caught-up watcher of `prefix` waits on: set by the next write of a key under
        it, so a write wakes only the watchers it concerns (not every informer in the process)."""
        event = self.parked.get(prefix)
        if event is None:
            event = self.parked[prefix] = trio.Event()
        return event

    def wake(self, key: str) -> None:
        """`key` was written: wake the watchers of every prefix of it."""
        for prefix in [p for p in self.parked if key.startswith(p)]:
            self.parked.pop(prefix).set()

    def wake_all(self) -> None:
        parked, self.parked = self.parked, {}
        for event in parked.values():
            event.set()

    def close(self) -> None:
        """The store closed: every watcher raises StoreClosedError from now on."""
        self.closed = True
        self.wake_all()


class Watcher:
    """A cursor into the store's history. `async with store.watch(...) as w: async for batch in w`.
    Each batch is a non-empty list of events in revision order (a txn's events never straddle two
    batches)."""

    __slots__ = ("__weakref__", "_closed", "_count_start", "_counted", "_cursor", "_history",
                 "_next_revision", "_notifier", "_pending", "_prefix")

    def __init__(
        self, history: History, notifier: Notifier, prefix: str, start_revision: int
    ) -> None:
        """Events under `prefix` from `start_revision` on (the caller checked it is retained)."""
        self._history = history
        self._notifier = notifier
        self._prefix = prefix
        self._cursor = history.position(start_revision)  # absolute: survives compaction
        self._next_revision = start_revision
        self._closed = False
        # backlog(): events in [max(cursor, _count_start), _counted) are counted, _pending of them
        # under the prefix; the history a watch replays (what is there now) is not backlog.
        self._count_start = self._counted = max(self._cursor, history.end)
        self._pending = 0
        notifier.watchers.add(self)

    async def __aenter__(self) -> Watcher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Watcher:
        return self

    async def __anext__(self) -> list[Event]:
        history, notifier, waited = self._history, self._notifier, False
        while True:
            if self._closed:
                raise StopAsyncIteration
            if notifier.closed:
                raise StoreClosedError("store closed")
            if self._cursor < history.base + len(history.events):
                if not waited:
                    await trio.lowlevel.checkpoint()
                    waited = True
                    continue  # re-check: the store may have been closed or compacted meanwhile
                batch = self._take()
                if batch:
                    return batch
                waited = False  # only filtered-out events: yield before scanning further
                continue
            await notifier.park(self._prefix).wait()
            waited = True

    def receive_nowait(self) -> list[Event]:
        """The next batch without waiting; trio.WouldBlock if the watcher is caught up."""
        if self._closed or self._notifier.closed:
            raise StoreClosedError("watcher or store closed")
        history = self._history
        while self._cursor < history.base + len(history.events):
            batch = self._take()
            if batch:
                return batch
        raise trio.WouldBlock

    def _take(self) -> list[Event]:
        history = self._history
        start = self._cursor - history.base
        if start < 0:
            raise CompactedError(self._next_revision, history.compact_revision)
        events = history.events
        end = len(events)
        stop = min(end, start + _WATCH_SCAN)
        if stop < end:
            last = events[stop - 1].kv.mod_revision
            while stop < end and events[stop].kv.mod_revision == last:
                stop += 1
        prefix = self._prefix
        batch = events[start:stop]
        if prefix:
            batch = [ev for ev in batch if ev.kv.key.startswith(prefix)]
        self._uncount(self._cursor, self._cursor + stop - start, batch)
        self._cursor += stop - start
        self._next_revision = events[stop - 1].kv.mod_revision + 1
        return batch

    def _uncount(self, start: int, stop: int, taken: list[Event]) -> None:
        """Events at absolute [start, stop) were taken (`taken`: those under the prefix)."""
        lo, hi = max(start, self._count_start), min(stop, self._counted)
        if hi > lo:
            if (lo, hi) != (start, stop):
                base, prefix = self._history.base, self._prefix
                counted = self._history.events[lo - base:hi - base]
                taken = [ev for ev in counted if ev.kv.key.startswith(prefix)]
            self._pending -= len(taken)
        self._counted = max(self._counted, stop)

    def backlog(self, limit: int) -> int:
        """Events under this watcher's prefix written since it was made that it has not taken yet
        (what it replays from before is not counted), up to `limit`; `limit` too once compaction
        has overtaken it. Counting resumes where the last call stopped (at most _BACKLOG_SCAN history
        events per call), so polling costs O(new history)."""
        history = self._history
        if self._cursor < history.base:
            return limit
        events, prefix = history.events, self._prefix
        i = self._counted - history.base
        stop = min(len(events), i + _BACKLOG_SCAN)
        n = self._pending
        while n < limit and i < stop:
            n += events[i].kv.key.startswith(prefix)
            i += 1
        self._counted, self._pending = history.base + i, n
        return min(n, limit)

    @property
    def lag(self) -> int:
        """History events this watcher has not read yet."""
        return self._history.end - self._cursor

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._notifier.watchers.discard(self)
            self._notifier.wake_all()  # a task parked in __anext__ on this watcher should see it closed
