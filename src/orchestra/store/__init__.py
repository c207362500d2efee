"""The watchable MVCC key-value store (see orchestra.store.mvcc for its semantics)."""

from orchestra.store.mvcc import (
    CompactedError,
    Compare,
    CompareFailed,
    Delete,
    Event,
    FutureRevisionError,
    KeyValue,
    Put,
    Store,
    StoreClosedError,
    StoreError,
    TxnResult,
    Watcher,
)

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
