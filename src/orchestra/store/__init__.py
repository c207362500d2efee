"""A watchable MVCC key-value store: the etcd model, in process, on trio. Values are opaque bytes.

Owns: revisions, the per-key revision index, the global event history, compare-and-swap, atomic
transactions, range at a past revision, watches, compaction/retention, and persistence through a
small backend contract (memory, the durable log, etcd). This package is a leaf layer.
Must not import: anything from orchestra outside orchestra.store.

Semantics, fixed here so the API core can rely on them (whatever the backend):
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
  write under its prefix. History is bounded by run() (retention_seconds of trio time) and, as a
  backstop that needs no run(), by max_history (trimmed in the write path once it is exceeded by 25%).
- Durable (open_durable): each commit is one log record, os.write()n before the write returns, so a
  kill -9 after an acknowledged write loses nothing. wait_durable(r): "always" waits for an fsync
  covering r (group commit); "batch" and "never" return at once ("batch" fsyncs every ~50 ms in
  run()). After reopening, the state and revision are as before but history is not: compact_revision
  is the revision at open, so a watch from before the restart gets CompactedError (a re-list).
  open_durable(read_only=True) reads a log without changing a file (a migration's source) and holds
  its lock meanwhile; every write then raises StoreError.
- After close(), writes, watch() and reading a watcher raise StoreClosedError.
- Over etcd (open_etcd): etcd decides every write and owns the revisions (resourceVersion = etcd's
  mod revision); the store is etcd's watch cache, fed by etcd's watch in run(). Writes are the
  awaitable aput/adelete/atxn (on local backends they are put/delete/txn, unchanged); each returns
  once its revision is in the cache. Revisions skip (etcd counts writes outside the store's keys).
  etcd unreachable: StoreUnavailableError (an OSError; the API's 503); reads are served from the
  cache meanwhile, and the watch resumes from where it was when etcd is back.

The modules, each one concept (arrows: may import):
    types     KeyValue, Event, Put/Delete/Compare, TxnResult, StoreError and kin   (imports nothing)
    index     KeyIndex: each key's events, the sorted keys, reads at a revision    -> types
    history   History: the retained events in revision order, absolute positions   -> types
    watch     Watcher (a cursor into the History) and Notifier (park/wake hook)    -> history, types
    backend   the Backend and Feed protocols: the persistence seam, and how etcd fits -> types
    memory    MemoryBackend: keeps nothing                                         -> backend, types
    log       the durable files: checksummed log records, snapshots, group-commit fsync (no orchestra)
    durable   DurableBackend: recovery, one record per commit, fsync policies      -> backend, log, types
    etcdhttp  HTTP/1.1 to one etcd endpoint (framed here, on trio): kept-alive calls, watches -> types
    etcdclient the etcd v3 gateway client: KV, txn, compact, status, watch, failover -> etcdhttp, types
    etcd      EtcdBackend: the range at open, the watch feeding the cache, txn writes, compaction
                                                                         -> backend, etcdclient, types
    etcdcopy  a whole set of keys copied into etcd all or nothing (undone on failure, a marker
              while it runs), and read back at one revision (`orchestra store migrate`) -> etcdclient, types
    mvcc      Store: every semantic above, once, over any Backend                 -> all but log
The backend seam: the Store decides every write (CAS, the next revision) and hands the committed
revision to backend.append() before the write returns; at open, backend.recover(feed) pushes the
kept state back in through feed.restore()/feed.apply(), the same path into the index, history and
watchers as a local write. A backend that owns the revisions (etcd: a RemoteBackend) decides writes
itself (commit()) and feeds every revision, its own writes too, through feed.apply(); its watch is a
task of Store.run(). orchestra.store.backend's docstring has the contract and how etcd fits.
import-linter checks these arrows (pyproject.toml).
"""

from orchestra.store.mvcc import Store
from orchestra.store.types import (
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
    StoreUnavailableError,
    TxnResult,
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
    "StoreUnavailableError",
    "TxnResult",
    "Watcher",
]
