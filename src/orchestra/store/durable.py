"""The durable backend: the store's revisions kept in orchestra.store.log's log and snapshots.

Owns: DurableBackend, the orchestra.store.backend.Backend over a DurableLog - recovery (newest
snapshot, then every record after it, a torn tail truncated), one log record per committed revision
before the write returns, the fsync policy's promise in wait_durable(), the periodic batch fsync and
snapshot, and translating LogError/OSError into StoreError at this boundary. The record format, the
directory layout and group commit are orchestra.store.log's.
Must not import: anything from orchestra except orchestra.store.backend, orchestra.store.log and
orchestra.store.types.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from orchestra.store.backend import Feed
from orchestra.store.log import FSYNC_POLICIES, OP_DELETE, OP_PUT, DurableLog, FsyncPolicy, LogError
from orchestra.store.types import PUT, Delete, Event, KeyValue, Put, StoreError

__all__ = ["FSYNC_POLICIES", "DurableBackend", "FsyncPolicy"]


class DurableBackend:
    """Open with DurableBackend.open(directory, fsync=..., snapshot_every=...); then Store.open()."""

    __slots__ = ("_directory", "_log", "_read_only", "_snapshot_every")

    name = "durable"
    upkeep_interval = 0.05  # the batch-fsync interval

    def __init__(self, directory: Path, log: DurableLog, snapshot_every: int, *,
                 read_only: bool = False) -> None:
        self._directory = directory
        self._log = log
        self._snapshot_every = snapshot_every
        self._read_only = read_only

    @classmethod
    def open(
        cls, directory: Path, *, fsync: FsyncPolicy = "always", snapshot_every: int = 50_000,
        read_only: bool = False,
    ) -> DurableBackend:
        """Create `directory` if needed and lock it (a second open is refused). read_only: recover
        the state without changing a file (no torn-tail truncation, no clean-up) and refuse writes;
        the directory must hold a store, and stays locked until close()."""
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {FSYNC_POLICIES}, not {fsync!r}")
        try:
            log = DurableLog.open(directory, fsync=fsync, read_only=read_only)
        except (LogError, OSError) as exc:
            raise StoreError(f"cannot open {directory}: {exc}") from exc
        return cls(directory, log, snapshot_every, read_only=read_only)

    def recover(self, feed: Feed) -> None:
        log = self._log
        try:
            snapshot_revision, rows = log.load_snapshot()
            feed.restore(snapshot_revision, (KeyValue(*row) for row in rows))
            for revision, ops in log.replay(snapshot_revision):  # in order, no gaps (or LogError)
                feed.apply(revision, [Put(key, value) if kind == OP_PUT else Delete(key)
                                      for kind, key, value in ops])
            if not self._read_only:
                log.start(feed.revision)
        except (LogError, OSError, StoreError) as exc:
            raise StoreError(f"cannot recover {self._directory}: {exc}") from exc

    def append(self, revision: int, events: Sequence[Event]) -> None:
        if self._read_only:
            raise StoreError(f"{self._directory} is open read-only")
        try:
            if len(events) == 1:  # a put or a delete: the common case, encoded without a list
                kv = events[0].kv
                if events[0].type == PUT:
                    self._log.append_one(revision, OP_PUT, kv.key, kv.value)
                else:
                    self._log.append_one(revision, OP_DELETE, kv.key, b"")
            else:
                self._log.append(revision, [
                    (OP_PUT, ev.kv.key, ev.kv.value) if ev.type == PUT else (OP_DELETE, ev.kv.key, b"")
                    for ev in events
                ])
        except LogError as exc:
            raise StoreError(str(exc)) from exc

    async def wait_durable(self, revision: int) -> None:
        try:
            await self._log.wait_durable(revision)
        except LogError as exc:
            raise StoreError(str(exc)) from exc

    async def snapshot(self, feed: Feed) -> None:
        if self._read_only:
            return  # nothing was written since the open
        try:
            await self._log.snapshot(feed.revision, feed.live())
        except LogError as exc:
            raise StoreError(str(exc)) from exc

    async def upkeep(self, feed: Feed) -> None:
        """The "batch" fsync, and a snapshot once snapshot_every revisions followed the last one."""
        log = self._log
        if self._read_only:
            return
        try:
            await log.tick()
            if feed.revision - log.snapshot_revision >= self._snapshot_every and not feed.closed:
                await log.snapshot(feed.revision, feed.live())
        except LogError as exc:
            raise StoreError(str(exc)) from exc

    def statistics(self) -> dict[str, object]:
        return self._log.statistics()

    def close(self) -> None:
        try:
            self._log.close()
        except (LogError, OSError) as exc:
            raise StoreError(f"closing the log: {exc}") from exc
