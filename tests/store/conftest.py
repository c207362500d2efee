"""The store contract suite's fixtures: every test that takes `store`, `seeded` or `open_store` runs
once per backend in tests/store/backends.py, so the MVCC semantics are checked the same way over
memory, the durable log and etcd (through tests/store/etcdbridge.py; NOT_ON_ETCD says which cannot)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestra.store import Store
from tests.store.backends import BACKENDS, BackendCase, OpenStore

SLOW = "thousands of writes within its 5 s bound: each is an etcd txn and an fsync here"
LOOP = "needs the store in the test's own trio loop (wait_all_tasks_blocked, a virtual clock)"
NOT_ON_ETCD = {  # tests of the contract suite that cannot run through tests/store/etcdbridge.py, and why
    "test_writers_never_wait_for_watchers": SLOW,
    "test_prefix_watch_skips_other_keys_without_stalling": SLOW,
    "test_retention_compacts_by_trio_time": LOOP,
    "test_writes_wake_only_watchers_of_their_prefix": LOOP,
}


@pytest.fixture(params=BACKENDS, ids=[case.name for case in BACKENDS])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """open_store(**kwargs) opens a new store on this test's backend; every store it opened is
    closed after the test."""
    case: BackendCase = request.param
    if case.remote and request.function.__name__ in NOT_ON_ETCD:
        pytest.skip(NOT_ON_ETCD[request.function.__name__])
    opened: list[Store] = []

    def open_(**kwargs: Any) -> Store:
        store = case.open(tmp_path / f"store-{len(opened)}", **kwargs)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: OpenStore) -> Store:
    return open_store()


@pytest.fixture
def seeded(open_store: OpenStore) -> Store:
    """a@1 b@2 a@3 c@4 del b@5 ab@6"""
    s = open_store()
    s.put("a", b"1")
    s.put("b", b"2")
    s.put("a", b"3")
    s.put("c", b"4")
    s.delete("b")
    s.put("ab", b"6")
    return s
