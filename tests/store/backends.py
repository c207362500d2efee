"""The backends the store contract suite runs against: one row per Backend implementation (the etcd
backend adds its row here). Used by tests/store/conftest.py's fixtures and by the state machine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from orchestra.store import Store

OpenStore = Callable[..., Store]  # open_store(**kwargs): retention_seconds, max_history


@attrs.frozen
class BackendCase:
    name: str
    open: Callable[..., Store]  # open(directory, **kwargs) -> a new store kept in `directory`
    reopens: bool  # a store opened again on the same directory has the state it had when closed


def _memory(directory: Path, **kwargs: Any) -> Store:
    return Store.open_memory(**kwargs)


def _durable(directory: Path, **kwargs: Any) -> Store:
    return Store.open_durable(directory, **kwargs)


BACKENDS = (
    BackendCase("memory", _memory, reopens=False),
    BackendCase("durable", _durable, reopens=True),  # fsync="always", the default
)
