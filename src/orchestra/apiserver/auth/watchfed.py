"""An in-memory index of one store prefix, kept current from the store's watch (an informer's cache,
read without waiting), for the authorizers' indexes (rbacindex.py, nodegraph.py).

Owns: `WatchFedIndex(store, prefix, what)`: lists the prefix once, then follows a store watcher of it,
drained without waiting by `sync()` whenever the prefix's revision moved, so a decision always sees
every write acknowledged before it (no store scan per request, no lag). A watcher that fell behind
the store's history (compaction) lists again; a closed store keeps what is known. Subclasses say
what an entry is: `_clear()` (before a listing), `_put(kv)`, `_delete(key)`, and `_changed()` (after
a listing or a sync that applied writes).
Must not import: reconcilers, node, net, the api core.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import trio

from orchestra.store import CompactedError, Event, KeyValue, Store, StoreClosedError

log = logging.getLogger("orchestra.auth")


class WatchFedIndex:
    def __init__(self, store: Store, prefix: str, what: str) -> None:
        self.store = store
        self.prefix = prefix
        self.what = what  # names the index in the log line of a re-list
        self._relist()

    def _clear(self) -> None:
        raise NotImplementedError

    def _put(self, kv: KeyValue) -> None:
        raise NotImplementedError

    def _delete(self, key: str) -> None:
        raise NotImplementedError

    def _changed(self) -> None:
        """After a listing or applied writes (e.g. to drop memoised answers)."""

    def _relist(self) -> None:
        self._synced = self.store.prefix_revision(self.prefix)  # tracked from here on
        self._clear()
        kvs, revision = self.store.range(self.prefix)
        for kv in kvs:
            self._put(kv)
        self._watcher = self.store.watch(self.prefix, start_revision=revision + 1)
        self._changed()

    def sync(self) -> None:
        """Apply the writes since the last call (cheap when there were none)."""
        revision = self.store.prefix_revision(self.prefix)
        if revision == self._synced:
            return
        try:
            for event in self._drain():
                if event.type == "PUT":
                    self._put(event.kv)
                else:
                    self._delete(event.kv.key)
        except CompactedError:
            log.info("%s fell behind the store's history; listing again", self.what)
            self._relist()
        except StoreClosedError:
            return  # shutting down: keep answering from what is known
        self._synced = revision
        self._changed()

    def _drain(self) -> Iterator[Event]:
        while True:
            try:
                yield from self._watcher.receive_nowait()
            except trio.WouldBlock:
                return
