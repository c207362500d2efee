"""The persistence seam under the MVCC store: what a backend does, and what it is handed.

Owns: the Backend and Feed protocols (no code). The MVCC semantics - revisions, compare-and-swap,
txns, reads at a revision, the history, watches, compaction - live once, in orchestra.store.mvcc;
a backend keeps what that layer commits and gives it back at open. Like kine's driver interface,
the contract is a handful of operations:

    recover(feed)          at open, blocking: push the kept state into `feed` (restore a snapshot,
                           apply each later revision in order), then get ready to append
    append(revision, events)   keep one committed revision (a txn's events share it), before the
                           write returns; raise StoreError and the write does not happen
    wait_durable(revision) return once `revision` is as safe as the backend promises
    snapshot(feed)         checkpoint the state at feed.revision now (Store.snapshot())
    upkeep(feed)           periodic work, every `upkeep_interval` seconds of Store.run()
    statistics()           extra fields for Store.statistics() ("fsyncs", "bytes_on_disk", ...)
    close()                release everything; idempotent

plus `name` (Store.statistics()["backend"]) and `upkeep_interval` (math.inf: no upkeep needed). A
backend raises only StoreError (it translates its own errors at this boundary). The Feed is the store
as a backend sees it: its revision, whether it is closed, the live state for a snapshot, and the two
ways state comes in - restore(revision, live) into an empty store, apply(revision, ops) of a revision
the backend holds. apply() is the same change (index, history, woken watchers) as a local write
makes; it needs only a revision above the current one, never revision + 1.

Today's backends, in orchestra.store.memory and orchestra.store.durable:
- memory: keeps nothing; recover() leaves the store empty at revision 0, wait_durable() returns at
  once, snapshot() and upkeep() do nothing.
- durable: the checksummed append-only log with snapshots of orchestra.store.log. recover() restores
  the newest snapshot and applies every record after it (a torn tail is truncated); append() writes
  one record before the write returns; wait_durable() is group-commit fsync under "always";
  upkeep() is the "batch" fsync and a snapshot every `snapshot_every` revisions.
For both the MVCC layer decides every write (CAS against the in-process state, revision + 1) and
then tells the backend; reopening restores the state and the revision, not the history (the store
is compacted at the revision it opened at, so an older watch re-lists).

How the etcd v3 backend fits (orchestra.store.etcd; a RemoteBackend, below): etcd owns the revision,
the history and the watch stream, and the in-process store becomes a watch cache fed from etcd
(kube-apiserver's cacher over etcd3 is the model). As built:
- recover(feed): a linearizable Range of the key prefix -> feed.restore(header.revision, kvs), then a
  Watch from header.revision + 1 whose events go to feed.apply(revision, ops) in revision order.
  etcd revisions skip (writes outside the prefix count too): apply() already allows that, and every
  read and watch of the MVCC layer is by revision, never by counting events.
- writes: here is what differs, and the seam says so rather than hiding it. Local backends are told
  about a write after the MVCC layer decided it, synchronously (Store.put() returns the KeyValue).
  Over etcd only etcd can decide: a write is a remote Txn (compare mod_revision, then put/delete,
  with prev_kv) whose response carries the revision. So a RemoteBackend has the one operation only a
  revision-owning backend implements - `async commit(compares, success, failure) -> TxnResult`,
  which returns once feed.apply() has brought the txn's revision in - and the Store has awaitable
  writes (aput, adelete, atxn) that route to it; on local backends they are the sync writes. The
  API core awaits them. append() is not called (it raises: the sync writes fail on such a store),
  and the cache learns of the write, like of every other, through feed.apply().
- open(feed) is recover(), awaitable (Store.open_remote / open_etcd), and serve(feed) the watch
  task Store.run() starts first; aclose() closes the connections (Store.aclose()).
- wait_durable(revision): return once the feed has applied `revision` (read-your-writes: what the
  API core needs after a write, and what it waits for today).
- snapshot(feed): nothing (etcd snapshots itself).
- upkeep(feed): etcd compaction (like kube-apiserver's compactor: every interval, 5 min by default,
  compact etcd to the revision seen one interval before).
- the cache never serves history etcd has compacted, whoever compacted it (this server's compactor,
  another server's, `etcdctl compact`): serve() checks every few seconds whether etcd still has the
  oldest revision the cache serves, and if not compacts the cache to match (feed.compact), so a
  watch or a LIST from a revision etcd dropped is 410 Expired, as kube-apiserver answers it.
- statistics(): endpoints, etcd's revision, the revision compacted to, connected or the last error,
  reconnects. close(): wake writers still waiting; aclose(): close the client too.
Store.compact() stays local in every case: it trims the in-process history (the cache's window);
etcd's own history is compacted by upkeep(). A watch from before that window gets CompactedError
(410, the client re-lists), as from a kube watch cache.

Must not import: anything from orchestra except orchestra.store.types (and trio, for the task status).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import trio

from orchestra.store.types import Compare, Event, KeyValue, Op, TxnResult


class Feed(Protocol):
    """The MVCC store as its backend sees it (see the module docstring)."""

    @property
    def revision(self) -> int: ...

    @property
    def closed(self) -> bool: ...

    @property
    def compact_revision(self) -> int:
        """The history at and before it is gone (watches must start after it)."""
        ...

    def compact(self, revision: int) -> None:
        """Drop the history at and before `revision` (a remote backend's own history was compacted)."""
        ...

    def restore(self, revision: int, live: Iterable[KeyValue]) -> None:
        """Load the state at `revision` into the empty store; compact_revision becomes `revision`."""
        ...

    def apply(self, revision: int, ops: Sequence[Op]) -> None:
        """Apply a revision the backend holds (revision > self.revision; each key once)."""
        ...

    def live(self) -> list[KeyValue]:
        """Every live key at self.revision, in no particular order."""
        ...


class Backend(Protocol):
    """What the MVCC store delegates (see the module docstring); raises only StoreError."""

    name: str
    upkeep_interval: float

    def recover(self, feed: Feed) -> None: ...

    def append(self, revision: int, events: Sequence[Event]) -> None: ...

    async def wait_durable(self, revision: int) -> None: ...

    async def snapshot(self, feed: Feed) -> None: ...

    async def upkeep(self, feed: Feed) -> None: ...

    def statistics(self) -> dict[str, object]: ...

    def close(self) -> None: ...


class RemoteBackend(Backend, Protocol):
    """A backend that owns the revisions (etcd): the store is its watch cache (module docstring)."""

    async def open(self, feed: Feed) -> None:
        """recover(), awaitable: load the kept state into the empty store (feed.restore)."""
        ...

    async def serve(self, feed: Feed, *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Feed every later revision into `feed` (feed.apply), until cancelled; Store.run() runs it."""
        ...

    async def commit(self, compares: Sequence[Compare], success: Sequence[Op],
                     failure: Sequence[Op]) -> TxnResult:
        """Decide and keep one txn; return once `feed` has applied it (if it wrote)."""
        ...

    async def aclose(self) -> None:
        """close(), and release connections."""
        ...
