"""The backends the store contract suite runs against: one row per Backend implementation. Used by
tests/store/conftest.py's fixtures and by the state machine. The etcd row is the session's etcd
(tests/etcdserver.py) through tests/store/etcdbridge.py, a key prefix per store directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import attrs

from orchestra.store import Store
from tests.etcdserver import shared_server, unique_prefix
from tests.store.etcdbridge import EtcdBridge

OpenStore = Callable[..., Store]  # open_store(**kwargs): retention_seconds, max_history


@attrs.frozen
class BackendCase:
    name: str
    open: Callable[..., Store]  # open(directory, **kwargs) -> a new store kept in `directory`
    reopens: bool  # a store opened again on the same directory has the state it had when closed
    remote: bool = False  # driven from a trio loop of its own (etcdbridge): not for async tests


def _memory(directory: Path, **kwargs: Any) -> Store:
    return Store.open_memory(**kwargs)


def _durable(directory: Path, **kwargs: Any) -> Store:
    return Store.open_durable(directory, **kwargs)


def _etcd(directory: Path, **kwargs: Any) -> Store:
    """A store under a new key prefix, or (reopened) the prefix and base this directory had."""
    server = shared_server()
    marker = directory / "etcd-prefix"
    if marker.exists():
        prefix, base = marker.read_text().split()
        return cast(Store, EtcdBridge(server.url, prefix, int(base), **kwargs))
    prefix = unique_prefix("store")
    bridge = EtcdBridge(server.url, prefix, **kwargs)
    directory.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{prefix} {bridge.base}")
    return cast(Store, bridge)


BACKENDS = (
    BackendCase("memory", _memory, reopens=False),
    BackendCase("durable", _durable, reopens=True),  # fsync="always", the default
    BackendCase("etcd", _etcd, reopens=True, remote=True),
)
