"""A watchable MVCC key-value store: the etcd model, in process, on trio.

Owns: revisions, the per-key revision index, the global event history, compare-and-swap, atomic
transactions, range at a past revision, watches, compaction/retention, and (through storelog.py) the
durable backend. Values are opaque bytes.
Must not import: anything from orchestra except its own helpers (it is a leaf layer): storetypes
(records, errors), storeindex (key index, reads, compaction), storewatch (Watcher), storelog (disk).

Semantics, fixed here so the API core can rely on them:
- Revisions: an empty store is at revision 0; the first write makes revision 1. Every put, every
  delete of a present key and every txn that changes something bumps the global revision by exactly
  one (a txn's ops all share it). A delete of an absent key changes nothing and bumps nothing.
- KeyValue.version counts puts since the key was (re)created; a DELETE event's kv is a tombstone:
  the deleted key and its last value, its create_revision, mod_revision = the deletion revision and
  version 0. prev_kv is the value before the event (None for a create).
- compact(r) keeps the state at r: get/range work at any revision in [compact_revision, revision];
  watches need start_revision > compact_revision (events at or before it are gone).
- watch(): start_revision < 1 means 1. CompactedError / FutureRevisionError are raised by watch()
  itself (at creation, synchronously). A watcher that compaction overtakes raises CompactedError on
  its next read, and keeps raising it: events are never skipped silently.
- Writers never wait for watchers: a watcher is a cursor into the shared history, woken once per
  write generation. History is bounded by run() (retention_seconds of trio time) and, as a backstop
  that needs no run(), by max_history (trimmed in the write path once it is exceeded by 25%).
- Durable (open_durable): each commit is one log record, os.write()n before the write returns, so a
  kill -9 after an acknowledged write loses nothing. wait_durable(r): "always" waits for an fsync
  covering r (group commit); "batch" and "never" return at once ("batch" fsyncs every ~50 ms in
  run()). After reopening, the state and revision are as before but history is not: compact_revision
  is the revision at open, so a watch from before the restart gets CompactedError (a re-list).
- After close(), writes, watch() and reading a watcher raise StoreClosedError.
"""

from __future__ import annotations

import bisect
import math
import weakref
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import trio

from orchestra.store.index import KeyIndex
from orchestra.store.log import FSYNC_POLICIES, OP_DELETE, OP_PUT, DurableLog, FsyncPolicy, LogError, Op
from orchestra.store.types import (
    DELETE,
    PUT,
    CompactedError,
    Compare,
    CompareFailed,
    Delete,
    Event,
    FutureRevisionError,
    KeyValue,
    Put,
    StoreClosedError,
    StoreError,
    TxnResult,
    rev_of,
)
from orchestra.store.watch import Watcher

__all__ = [
    "CompactedError",
    "Compare",
    "CompareFailed",
    "Delete",
    "Event",
    "FutureRevisionError",
    "KeyValue",
    "Put",
    "Store",
    "StoreClosedError",
    "StoreError",
    "TxnResult",
    "Watcher",
]

_TICK = 0.05  # run()'s upkeep period: the batch-fsync interval


class Store(KeyIndex):
    """See the module docstring. Construct with open_memory() or open_durable()."""

    __slots__ = (
        "__weakref__",
        "_closed",
        "_log",
        "_parked",
        "_retention",
        "_snapshot_every",
        "_tracked",
        "_trim_at",
        "_watchers",
    )

    def __init__(self, *, retention_seconds: float, max_history: int) -> None:
        """Private: use open_memory() or open_durable()."""
        if max_history < 1 or retention_seconds <= 0:
            raise ValueError("max_history and retention_seconds must be positive")
        self._index: dict[str, list[Event]] = {}  # key -> its events, oldest first
        self._sorted: list[str] = []  # every key in _index, sorted ...
        self._new_keys: list[str] = []  # ... except these, merged in on the next range
        self._history: list[Event] = []  # every retained event, in revision order
        self._base = 0  # absolute position of _history[0]
        self._revision = 0
        self._compact_revision = 0
        self._live = 0
        self._retention = retention_seconds
        self._max_history = max_history
        self._trim_at = max_history + max(1, max_history // 4)
        self._parked: dict[str, trio.Event] = {}  # watched prefix -> set on the next write under it
        self._tracked: dict[str, int] = {}  # prefix -> revision of the last write under it
        self._watchers: weakref.WeakSet[Watcher] = weakref.WeakSet()
        self._log: DurableLog | None = None
        self._snapshot_every = 50_000
        self._closed = False

    @classmethod
    def open_memory(cls, *, retention_seconds: float = 300.0, max_history: int = 200_000) -> Store:
        return cls(retention_seconds=retention_seconds, max_history=max_history)

    @classmethod
    def open_durable(
        cls,
        directory: Path,
        *,
        fsync: FsyncPolicy = "always",
        snapshot_every: int = 50_000,
        retention_seconds: float = 300.0,
        max_history: int = 200_000,
    ) -> Store:
        """Open (creating if needed) the store in `directory`: load the newest snapshot, replay the
        log after it (truncating a torn tail), and continue appending. Blocks while it reads."""
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {FSYNC_POLICIES}, not {fsync!r}")
        store = cls(retention_seconds=retention_seconds, max_history=max_history)
        store._snapshot_every = snapshot_every
        try:
            log = DurableLog.open(Path(directory), fsync=fsync)
        except (LogError, OSError) as exc:
            raise StoreError(f"cannot open {directory}: {exc}") from exc
        try:
            store._recover(log)
            log.start(store._revision)
        except (LogError, OSError) as exc:
            log.close()
            raise StoreError(f"cannot recover {directory}: {exc}") from exc
        except BaseException:
            log.close()
            raise
        store._log = log
        return store

    def _recover(self, log: DurableLog) -> None:
        snapshot_revision, rows = log.load_snapshot()
        for key, value, create, mod, version in rows:
            self._index[key] = [Event(PUT, KeyValue(key, value, create, mod, version))]
            self._new_keys.append(key)
        self._live = len(rows)
        self._revision = self._compact_revision = snapshot_revision
        for revision, ops in log.replay(snapshot_revision):
            self._replay(revision, ops)
        self.compact(self._revision)

    def _replay(self, revision: int, ops: list[Op]) -> None:
        before = self._revision
        if len(ops) == 1 and ops[0][0] == OP_PUT:
            self.put(ops[0][1], ops[0][2])
        else:
            self.txn([], [Put(key, value) if kind == OP_PUT else Delete(key) for kind, key, value in ops])
        if self._revision != revision or before + 1 != revision:
            raise LogError(f"replaying record {revision} produced revision {self._revision}")

    # --- writes ----------------------------------------------------------------------------------

    def put(self, key: str, value: bytes, *, expect_mod_revision: int | None = None) -> KeyValue:
        """Set key; with expect_mod_revision (0 = must not exist) raise CompareFailed on mismatch."""
        if self._closed:
            raise StoreClosedError("store closed")
        events = self._index.get(key)
        prev = None
        if events is not None:
            last = events[-1]
            if last.type == PUT:
                prev = last.kv
        if expect_mod_revision is not None:
            actual = 0 if prev is None else prev.mod_revision
            if actual != expect_mod_revision:
                raise CompareFailed(key, expect_mod_revision, actual)
        revision = self._revision + 1
        if self._log is not None:
            self._log_one(revision, OP_PUT, key, value)
        if prev is None:
            kv = KeyValue(key, value, revision, revision, 1)
            self._live += 1
        else:
            kv = KeyValue(key, value, prev.create_revision, revision, prev.version + 1)
        ev = Event(PUT, kv, prev)
        if events is None:
            self._index[key] = [ev]
            self._new_keys.append(key)
        else:
            events.append(ev)
        self._history.append(ev)
        self._revision = revision
        if self._parked:
            self._wake_key(key)
        if self._tracked:
            self._track(key, revision)
        if len(self._history) > self._trim_at:
            self._trim()
        return kv

    def delete(self, key: str, *, expect_mod_revision: int | None = None) -> KeyValue | None:
        """Delete key; return its previous KeyValue, or None (and change nothing) if absent."""
        if self._closed:
            raise StoreClosedError("store closed")
        events = self._index.get(key)
        prev = events[-1].kv if events is not None and events[-1].type == PUT else None
        if expect_mod_revision is not None:
            actual = 0 if prev is None else prev.mod_revision
            if actual != expect_mod_revision:
                raise CompareFailed(key, expect_mod_revision, actual)
        if prev is None or events is None:
            return None
        revision = self._revision + 1
        if self._log is not None:
            self._log_one(revision, OP_DELETE, key, b"")
        ev = Event(DELETE, KeyValue(key, prev.value, prev.create_revision, revision, 0), prev)
        events.append(ev)
        self._history.append(ev)
        self._live -= 1
        self._revision = revision
        if self._parked:
            self._wake_key(key)
        if self._tracked:
            self._track(key, revision)
        if len(self._history) > self._trim_at:
            self._trim()
        return prev

    def txn(
        self,
        compares: Sequence[Compare],
        success: Sequence[Put | Delete],
        failure: Sequence[Put | Delete] = (),
    ) -> TxnResult:
        """If every compare holds apply `success`, else `failure`, atomically at one revision.
        A key may appear at most once per branch."""
        if self._closed:
            raise StoreClosedError("store closed")
        for ops in (success, failure):
            if len({op.key for op in ops}) != len(ops):
                raise StoreError("duplicate key in one txn branch")
        succeeded = all(self._holds(c) for c in compares)
        revision = self._revision + 1
        events: list[Event] = []
        responses: list[KeyValue | None] = []
        for op in success if succeeded else failure:
            prev = self._current(op.key)
            if isinstance(op, Put):
                if prev is None:
                    kv = KeyValue(op.key, op.value, revision, revision, 1)
                else:
                    kv = KeyValue(op.key, op.value, prev.create_revision, revision, prev.version + 1)
                events.append(Event(PUT, kv, prev))
                responses.append(kv)
            elif isinstance(op, Delete):
                if prev is not None:
                    tomb = KeyValue(op.key, prev.value, prev.create_revision, revision, 0)
                    events.append(Event(DELETE, tomb, prev))
                responses.append(prev)
            else:
                raise TypeError(f"txn ops must be Put or Delete, not {type(op).__name__}")
        if events:
            self._commit(revision, events)
        return TxnResult(succeeded, self._revision, responses)

    def _holds(self, c: Compare) -> bool:
        kv = self._current(c.key)
        actual: int | bytes | None
        if c.target == "value":
            actual = None if kv is None else kv.value
        elif kv is None:
            actual = 0
        else:
            actual = {"mod": kv.mod_revision, "create": kv.create_revision, "version": kv.version}[c.target]
        if c.op == "==":
            return actual == c.value
        if c.op == "!=":
            return actual != c.value
        if actual is None or type(actual) is not type(c.value):
            return False
        return actual < c.value if c.op == "<" else actual > c.value  # type: ignore[operator]

    def _commit(self, revision: int, events: list[Event]) -> None:
        if self._log is not None:
            ops = [
                (OP_PUT, ev.kv.key, ev.kv.value) if ev.type == PUT else (OP_DELETE, ev.kv.key, b"")
                for ev in events
            ]
            try:
                self._log.append(revision, ops)
            except LogError as exc:
                raise StoreError(str(exc)) from exc
        for ev in events:
            key = ev.kv.key
            keyed = self._index.get(key)
            if keyed is None:
                self._index[key] = [ev]
                self._new_keys.append(key)
            else:
                keyed.append(ev)
            if ev.type == PUT:
                self._live += ev.prev_kv is None
            else:
                self._live -= 1
        self._history += events
        self._revision = revision
        for ev in events if self._tracked else ():
            self._track(ev.kv.key, revision)
        self._wake()
        if len(self._history) > self._trim_at:
            self._trim()

    def _log_one(self, revision: int, kind: int, key: str, value: bytes) -> None:
        assert self._log is not None
        try:
            self._log.append_one(revision, kind, key, value)
        except LogError as exc:
            raise StoreError(str(exc)) from exc

    def prefix_revision(self, prefix: str) -> int:
        """The revision of the last write of a key under `prefix` (at most the current revision);
        a prefix is tracked from its first call, which answers the current revision. For caches of
        a few small, rarely written collections (e.g. the PriorityClasses every pod create reads)."""
        rev = self._tracked.get(prefix)
        if rev is None:
            rev = self._tracked[prefix] = self._revision
        return rev

    def _track(self, key: str, revision: int) -> None:
        for prefix in self._tracked:
            if key.startswith(prefix):
                self._tracked[prefix] = revision

    def _park(self, prefix: str) -> trio.Event:
        """The event a caught-up watcher of `prefix` waits on: set by the next write of a key under
        it, so a write wakes only the watchers it concerns (not every informer in the process)."""
        event = self._parked.get(prefix)
        if event is None:
            event = self._parked[prefix] = trio.Event()
        return event

    def _wake_key(self, key: str) -> None:
        for prefix in [p for p in self._parked if key.startswith(p)]:
            self._parked.pop(prefix).set()

    def _wake(self) -> None:
        """Wake every parked watcher (txns, close, compaction)."""
        parked, self._parked = self._parked, {}
        for event in parked.values():
            event.set()

    def watch(self, prefix: str, *, start_revision: int) -> Watcher:
        """Events for keys starting with `prefix` at revisions >= start_revision: retained history
        first, then live. Raises CompactedError / FutureRevisionError here, not on iteration."""
        if self._closed:
            raise StoreClosedError("store closed")
        start = max(start_revision, 1)
        if start <= self._compact_revision:
            raise CompactedError(start_revision, self._compact_revision)
        if start > self._revision + 1:
            raise FutureRevisionError(start_revision, self._revision)
        position = bisect.bisect_left(self._history, start, key=rev_of)
        watcher = Watcher(self, prefix, self._base + position, start, self._base + len(self._history))
        self._watchers.add(watcher)
        return watcher

    # --- durability and upkeep -------------------------------------------------------------------

    async def wait_durable(self, revision: int) -> None:
        """Return once `revision` is on disk as the fsync policy promises (memory: at once)."""
        if self._closed:
            raise StoreClosedError("store closed")
        if self._log is None:
            await trio.lowlevel.checkpoint()
            return
        try:
            await self._log.wait_durable(min(revision, self._revision))
        except LogError as exc:
            raise StoreError(str(exc)) from exc

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Upkeep until cancelled or closed: retention compaction, batch fsync, snapshots."""
        marks: deque[tuple[float, int]] = deque()  # (trio time, revision then), oldest first
        mark_every = min(1.0, max(_TICK, self._retention / 20))
        tick = _TICK if self._log is not None else mark_every
        last_mark = -math.inf
        task_status.started()
        while not self._closed:
            await trio.sleep(tick)
            now = trio.current_time()
            if now - last_mark >= mark_every:
                marks.append((now, self._revision))
                last_mark = now
            expired = None
            while marks and marks[0][0] <= now - self._retention:
                expired = marks.popleft()[1]
            if expired is not None and not self._closed:
                self.compact(expired)
            if self._log is not None and not self._closed:
                await self._upkeep_log(self._log)

    async def _upkeep_log(self, log: DurableLog) -> None:
        try:
            await log.tick()
            if self._revision - log.snapshot_revision >= self._snapshot_every and not self._closed:
                await self.snapshot()
        except LogError as exc:
            if not self._closed:
                raise StoreError(str(exc)) from exc

    async def snapshot(self) -> None:
        """Write a snapshot now and start a new log segment (run() does this every snapshot_every
        revisions). Memory stores: no-op."""
        if self._log is None:
            await trio.lowlevel.checkpoint()
            return
        live = [events[-1].kv for events in self._index.values() if events[-1].type == PUT]
        try:
            await self._log.snapshot(self._revision, live)
        except LogError as exc:
            raise StoreError(str(exc)) from exc

    def statistics(self) -> dict[str, object]:
        end = self._base + len(self._history)
        stats: dict[str, object] = {
            "backend": "memory" if self._log is None else "durable",
            "revision": self._revision,
            "compact_revision": self._compact_revision,
            "keys": self._live,
            "indexed_keys": len(self._index),
            "history_events": len(self._history),
            "watchers": len(self._watchers),
            "slowest_watcher_lag": max((end - w._cursor for w in self._watchers), default=0),
            "bytes_on_disk": 0,
            "fsyncs": 0,
        }
        if self._log is not None:
            stats.update(self._log.statistics())
        return stats

    def close(self) -> None:
        """Close the log and end every watcher with StoreClosedError; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._wake()
        if self._log is not None:
            try:
                self._log.close()
            except (LogError, OSError) as exc:
                raise StoreError(f"closing the log: {exc}") from exc
