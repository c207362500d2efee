"""The MVCC store: the etcd model, in process, on trio, over a persistence backend.

Owns: the Store - revisions, compare-and-swap, atomic txns, reads now and at a past revision,
the global history, watches and their wake-ups, compaction and retention, prefix revisions -
the semantics listed in orchestra.store's docstring, implemented once for every backend. It holds
a KeyIndex (orchestra.store.index), a History (orchestra.store.history), a Notifier for its
watchers (orchestra.store.watch) and a Backend (orchestra.store.backend), and calls the backend
for everything about keeping data: recover at open, append per commit, wait_durable, snapshot,
upkeep, statistics, close. Local writes are decided here and then appended; revisions a backend
holds come in through the Feed (_StoreFeed) and take the same path into the index and history.
Must not import: anything from orchestra outside orchestra.store, nor orchestra.store.log (the
durable backend's files); it knows the concrete backends only for the open_memory() and
open_durable() constructors.
"""

from __future__ import annotations

import math
import ssl
from collections import deque
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path

import trio

from orchestra.store.backend import Backend, RemoteBackend
from orchestra.store.durable import DurableBackend, FsyncPolicy
from orchestra.store.etcd import COMPACT_INTERVAL, COMPACTION_CHECK, EtcdBackend
from orchestra.store.etcdkeys import IDENTITY, KeyLayout
from orchestra.store.history import History
from orchestra.store.index import KeyIndex
from orchestra.store.memory import MemoryBackend
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
    Op,
    Put,
    StoreClosedError,
    StoreError,
    TxnResult,
)
from orchestra.store.watch import Notifier, Watcher

_MARK_MIN = 0.05  # run(): the shortest interval between retention marks


class Store:
    """See orchestra.store. Construct with open_memory(), open_durable() or open(backend)."""

    __slots__ = (
        "__weakref__",
        "_backend",
        "_closed",
        "_feed",
        "_history",
        "_keys",
        "_max_history",
        "_notifier",
        "_remote",
        "_retention",
        "_revision",
        "_tracked",
        "_trim_at",
    )

    def __init__(self, backend: Backend, *, retention_seconds: float, max_history: int) -> None:
        """Private: use open(), open_memory() or open_durable()."""
        _check_limits(retention_seconds, max_history)
        self._backend = backend
        self._keys = KeyIndex()
        self._history = History()
        self._notifier = Notifier()
        self._feed = _StoreFeed(self)
        self._revision = 0
        self._retention = retention_seconds
        self._max_history = max_history
        self._trim_at = max_history + max(1, max_history // 4)
        self._tracked: dict[str, int] = {}  # prefix -> revision of the last write under it
        self._closed = False
        self._remote: RemoteBackend | None = None  # set by open_remote(): the backend decides writes

    @classmethod
    def open(cls, backend: Backend, *, retention_seconds: float = 300.0, max_history: int = 200_000) -> Store:
        """A store over `backend`: recover what it keeps (blocking), then take writes. The history
        before the open is not kept: compact_revision is the revision at open."""
        try:
            store = cls(backend, retention_seconds=retention_seconds, max_history=max_history)
            backend.recover(store._feed)
        except BaseException:
            backend.close()  # the store never opened: release the backend (its lock) first
            raise
        store.compact(store._revision)
        return store

    @classmethod
    def open_memory(cls, *, retention_seconds: float = 300.0, max_history: int = 200_000) -> Store:
        return cls.open(MemoryBackend(), retention_seconds=retention_seconds, max_history=max_history)

    @classmethod
    def open_durable(
        cls,
        directory: Path | str,
        *,
        fsync: FsyncPolicy = "always",
        snapshot_every: int = 50_000,
        retention_seconds: float = 300.0,
        max_history: int = 200_000,
        read_only: bool = False,
    ) -> Store:
        """Open (creating if needed) the store in `directory`: load the newest snapshot, replay the
        log after it (truncating a torn tail), and continue appending. Blocks while it reads.
        read_only: the directory must hold a store; it is read without changing a file, kept locked
        until close(), and every write raises StoreError."""
        _check_limits(retention_seconds, max_history)  # before the directory is created and locked
        backend = DurableBackend.open(Path(directory), fsync=fsync, snapshot_every=snapshot_every,
                                      read_only=read_only)
        return cls.open(backend, retention_seconds=retention_seconds, max_history=max_history)

    @classmethod
    async def open_remote(cls, backend: RemoteBackend, *, retention_seconds: float = 300.0,
                          max_history: int = 200_000) -> Store:
        """The watch cache of a backend that owns the revisions (etcd): its keys are loaded now; run()
        keeps them current from its watch, and must be running for the awaitable writes (aput,
        adelete, atxn) to return. The sync writes raise StoreError on such a store."""
        try:
            store = cls(backend, retention_seconds=retention_seconds, max_history=max_history)
            store._remote = backend
            await backend.open(store._feed)
        except BaseException:
            backend.close()
            raise
        return store

    @classmethod
    async def open_etcd(cls, url: str, *, prefix: str = "", within: str = "",
                        tls: ssl.SSLContext | None = None, compact_interval: float = COMPACT_INTERVAL,
                        compaction_check: float = COMPACTION_CHECK, retention_seconds: float = 300.0,
                        max_history: int = 200_000, layout: KeyLayout = IDENTITY) -> Store:
        """A store kept in etcd at `url` (etcd://HOST:PORT[,HOST:PORT]): etcd key = prefix + key, the
        keys under `within` only (orchestra.store.etcd; compaction_check: how often the cache checks
        that etcd still has the history it serves; layout: where each key lives in etcd,
        orchestra.store.etcdkeys)."""
        _check_limits(retention_seconds, max_history)
        backend = EtcdBackend.from_url(url, tls=tls, prefix=prefix, within=within, layout=layout,
                                       compact_interval=compact_interval, compaction_check=compaction_check)
        return await cls.open_remote(backend, retention_seconds=retention_seconds, max_history=max_history)

    # --- writes ----------------------------------------------------------------------------------

    async def aput(self, key: str, value: bytes, *, expect_mod_revision: int | None = None) -> KeyValue:
        """put() on every backend: local ones decide at once (this is put()); a revision-owning one
        (etcd) decides in its txn, and this returns once the write is in this store."""
        remote = self._remote
        if remote is None:
            return self.put(key, value, expect_mod_revision=expect_mod_revision)
        self._check_open()
        compares = () if expect_mod_revision is None else (Compare(key, "mod", "==", expect_mod_revision),)
        result = await remote.commit(compares, (Put(key, value),), ())
        if not result.succeeded:
            raise await self._compare_failed(remote, key, expect_mod_revision, result)
        kv = result.responses[0]
        assert kv is not None  # a put answers its new KeyValue
        return kv

    async def adelete(self, key: str, *, expect_mod_revision: int | None = None) -> KeyValue | None:
        """delete() on every backend (see aput())."""
        remote = self._remote
        if remote is None:
            return self.delete(key, expect_mod_revision=expect_mod_revision)
        self._check_open()
        compares = () if expect_mod_revision is None else (Compare(key, "mod", "==", expect_mod_revision),)
        result = await remote.commit(compares, (Delete(key),), ())
        if not result.succeeded:
            raise await self._compare_failed(remote, key, expect_mod_revision, result)
        return result.responses[0]

    async def atxn(self, compares: Sequence[Compare], success: Sequence[Op],
                   failure: Sequence[Op] = ()) -> TxnResult:
        """txn() on every backend (see aput())."""
        remote = self._remote
        if remote is None:
            return self.txn(compares, success, failure)
        self._check_open()
        for ops in (success, failure):
            if len({op.key for op in ops}) != len(ops):
                raise StoreError("duplicate key in one txn branch")
        result = await remote.commit(compares, success, failure)
        if not result.succeeded and not failure:  # the backend answered the compare keys: not ours
            return TxnResult(False, result.revision, [])
        return result

    @staticmethod
    async def _compare_failed(remote: RemoteBackend, key: str, expected: int | None,
                              result: TxnResult) -> CompareFailed:
        """The CompareFailed of a remote CAS, once this store has seen the write that won (so the
        caller's re-read and retry, kube's GuaranteedUpdate, sees it; a deletion's revision is not
        known here: a retry may fail once more)."""
        actual = _mod_of(result.responses[0])
        if actual:
            await remote.wait_durable(actual)
        return CompareFailed(key, expected or 0, actual)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("store closed")

    def put(self, key: str, value: bytes, *, expect_mod_revision: int | None = None) -> KeyValue:
        """Set key; with expect_mod_revision (0 = must not exist) raise CompareFailed on mismatch."""
        if self._closed:
            raise StoreClosedError("store closed")
        keys = self._keys
        prev = keys.current(key)
        if expect_mod_revision is not None:
            actual = 0 if prev is None else prev.mod_revision
            if actual != expect_mod_revision:
                raise CompareFailed(key, expect_mod_revision, actual)
        revision = self._revision + 1
        if prev is None:
            kv = KeyValue(key, value, revision, revision, 1)
        else:
            kv = KeyValue(key, value, prev.create_revision, revision, prev.version + 1)
        ev = Event(PUT, kv, prev)
        # _commit_one(revision, key, ev), inlined: a put is the hottest path (a call costs ~3%)
        self._backend.append(revision, (ev,))  # first: if it cannot keep the write, nothing changes
        keys.add(key, ev)
        history = self._history.events
        history.append(ev)
        self._revision = revision
        if self._tracked:
            self._track(key, revision)
        notifier = self._notifier
        if notifier.parked:
            notifier.wake(key)
        if len(history) > self._trim_at:
            self._trim()
        return kv

    def delete(self, key: str, *, expect_mod_revision: int | None = None) -> KeyValue | None:
        """Delete key; return its previous KeyValue, or None (and change nothing) if absent."""
        if self._closed:
            raise StoreClosedError("store closed")
        prev = self._keys.current(key)
        if expect_mod_revision is not None:
            actual = 0 if prev is None else prev.mod_revision
            if actual != expect_mod_revision:
                raise CompareFailed(key, expect_mod_revision, actual)
        if prev is None:
            return None
        revision = self._revision + 1
        tomb = KeyValue(key, prev.value, prev.create_revision, revision, 0)
        self._commit_one(revision, key, Event(DELETE, tomb, prev))
        return prev

    def txn(
        self,
        compares: Sequence[Compare],
        success: Sequence[Op],
        failure: Sequence[Op] = (),
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
        events, responses = self._changes(revision, success if succeeded else failure)
        if events:
            self._commit(revision, events)
        return TxnResult(succeeded, self._revision, responses)

    def _holds(self, c: Compare) -> bool:
        kv = self._keys.current(c.key)
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

    def _changes(self, revision: int, ops: Sequence[Op]) -> tuple[list[Event], list[KeyValue | None]]:
        """The events `ops` make at `revision` (each key once), and a txn's response per op: the
        new KeyValue for a Put, the previous one (or None) for a Delete."""
        current = self._keys.current
        events: list[Event] = []
        responses: list[KeyValue | None] = []
        for op in ops:
            prev = current(op.key)
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
        return events, responses

    def _commit_one(self, revision: int, key: str, ev: Event) -> None:
        """_commit(revision, (ev,)) for the write path's common case, a put or a delete of `key`."""
        self._backend.append(revision, (ev,))  # first: if it cannot keep the write, nothing changes
        self._keys.add(key, ev)
        history = self._history.events
        history.append(ev)
        self._revision = revision
        if self._tracked:
            self._track(key, revision)
        notifier = self._notifier
        if notifier.parked:
            notifier.wake(key)
        if len(history) > self._trim_at:
            self._trim()

    def _commit(self, revision: int, events: Sequence[Event]) -> None:
        """A write decided here: the backend keeps it first (if it cannot, nothing changes)."""
        self._backend.append(revision, events)
        self._install(revision, events)

    def _install(self, revision: int, events: Sequence[Event]) -> None:
        """Make a committed revision visible: index, history, revision, prefix marks, watchers."""
        add = self._keys.add
        for ev in events:
            add(ev.kv.key, ev)
        history = self._history.events
        history += events
        self._revision = revision
        if self._tracked:
            for ev in events:
                self._track(ev.kv.key, revision)
        notifier = self._notifier
        if notifier.parked:
            for ev in events:
                notifier.wake(ev.kv.key)
        if len(history) > self._trim_at:
            self._trim()

    def _restore(self, revision: int, live: Iterable[KeyValue]) -> None:
        if self._revision or self._keys.indexed:
            raise StoreError("restore into a store that is not empty")
        self._keys.load(live)
        self._revision = revision
        self._history.restart(revision)

    def _apply(self, revision: int, ops: Sequence[Op]) -> None:
        if revision <= self._revision:
            raise StoreError(f"revision {revision} is not after the store's revision {self._revision}")
        if len({op.key for op in ops}) != len(ops):
            raise StoreError(f"revision {revision} writes a key twice")
        events, _ = self._changes(revision, ops)
        if not events:
            raise StoreError(f"revision {revision} changes nothing")
        self._install(revision, events)

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

    # --- reads -----------------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def remote(self) -> bool:
        """Writes are decided by the backend (etcd), not here: a read and a later CAS can conflict
        even with no await between them in this process."""
        return self._remote is not None

    @property
    def compact_revision(self) -> int:
        return self._history.compact_revision

    def _check_read_revision(self, revision: int) -> None:
        if revision > self._revision:
            raise FutureRevisionError(revision, self._revision)
        if revision < self._history.compact_revision:
            raise CompactedError(revision, self._history.compact_revision)

    def get(self, key: str, *, revision: int | None = None) -> KeyValue | None:
        if revision is not None:
            self._check_read_revision(revision)
        return self._keys.get(key, revision)

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
        past = revision if revision < self._revision else None
        return self._keys.range(prefix, past, limit, start_after), revision

    def count(self, prefix: str) -> int:
        """The number of live keys starting with `prefix`."""
        return self._keys.count(prefix)

    def watch(self, prefix: str, *, start_revision: int) -> Watcher:
        """Events for keys starting with `prefix` at revisions >= start_revision: retained history
        first, then live. Raises CompactedError / FutureRevisionError here, not on iteration."""
        if self._closed:
            raise StoreClosedError("store closed")
        start = max(start_revision, 1)
        if start <= self._history.compact_revision:
            raise CompactedError(start_revision, self._history.compact_revision)
        if start > self._revision + 1:
            raise FutureRevisionError(start_revision, self._revision)
        return Watcher(self._history, self._notifier, prefix, start)

    # --- history ---------------------------------------------------------------------------------

    def compact(self, revision: int) -> None:
        """Drop history at and before `revision` (the state at `revision` stays readable)."""
        if revision > self._revision:
            raise FutureRevisionError(revision, self._revision)
        if revision <= self._history.compact_revision:
            return
        self._keys.compact(self._history.cut(revision), revision)

    def _trim(self) -> None:
        history = self._history.events
        excess = len(history) - self._max_history
        if excess > 0:
            self.compact(history[excess - 1].kv.mod_revision)

    # --- durability and upkeep -------------------------------------------------------------------

    async def wait_durable(self, revision: int) -> None:
        """Return once `revision` is kept as the backend promises (memory: at once; durable: per
        its fsync policy)."""
        if self._closed:
            raise StoreClosedError("store closed")
        await self._backend.wait_durable(min(revision, self._revision))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Upkeep until cancelled or closed: retention compaction, and the backend's upkeep (the
        durable one: batch fsync, snapshots; etcd: compaction), and a remote backend's watch that
        feeds this store (started first: run() is started once it is)."""
        async with trio.open_nursery() as nursery:
            if self._remote is not None:
                await nursery.start(partial(self._remote.serve, self._feed))
            task_status.started()
            await self._upkeep()
            nursery.cancel_scope.cancel()

    async def _upkeep(self) -> None:
        marks: deque[tuple[float, int]] = deque()  # (trio time, revision then), oldest first
        mark_every = min(1.0, max(_MARK_MIN, self._retention / 20))
        upkeep_every = self._backend.upkeep_interval  # math.inf: the backend needs no upkeep
        tick = min(mark_every, upkeep_every)
        last_mark = -math.inf
        next_upkeep = trio.current_time() + upkeep_every
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
            if now >= next_upkeep and not self._closed:
                next_upkeep = now + upkeep_every
                try:
                    await self._backend.upkeep(self._feed)
                except StoreError:
                    if not self._closed:
                        raise
                    # closed meanwhile: the backend's files went away under its upkeep; not an error

    async def snapshot(self) -> None:
        """Checkpoint the backend now (durable: write a snapshot and start a new log segment, which
        run() does every snapshot_every revisions). Memory stores: no-op."""
        await self._backend.snapshot(self._feed)

    def statistics(self) -> dict[str, object]:
        watchers = self._notifier.watchers
        stats: dict[str, object] = {
            "backend": self._backend.name,
            "revision": self._revision,
            "compact_revision": self._history.compact_revision,
            "keys": len(self._keys),
            "indexed_keys": self._keys.indexed,
            "history_events": len(self._history.events),
            "watchers": len(watchers),
            "slowest_watcher_lag": max((w.lag for w in watchers), default=0),
            "bytes_on_disk": 0,
            "fsyncs": 0,
        }
        stats.update(self._backend.statistics())
        return stats

    def close(self) -> None:
        """Close the backend and end every watcher with StoreClosedError; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._notifier.close()
        self._backend.close()

    async def aclose(self) -> None:
        """close(), and a remote backend's connections too; idempotent."""
        self.close()
        if self._remote is not None:
            await self._remote.aclose()


class _StoreFeed:
    """The store as its backend sees it (orchestra.store.backend.Feed)."""

    __slots__ = ("_store",)

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def revision(self) -> int:
        return self._store._revision

    @property
    def closed(self) -> bool:
        return self._store._closed

    @property
    def compact_revision(self) -> int:
        return self._store._history.compact_revision

    def compact(self, revision: int) -> None:
        self._store.compact(revision)

    def restore(self, revision: int, live: Iterable[KeyValue]) -> None:
        self._store._restore(revision, live)

    def apply(self, revision: int, ops: Sequence[Op]) -> None:
        self._store._apply(revision, ops)

    def live(self) -> list[KeyValue]:
        return self._store._keys.live_values()


def _mod_of(kv: KeyValue | None) -> int:
    return 0 if kv is None else kv.mod_revision


def _check_limits(retention_seconds: float, max_history: int) -> None:
    if max_history < 1 or retention_seconds <= 0:
        raise ValueError("max_history and retention_seconds must be positive")
