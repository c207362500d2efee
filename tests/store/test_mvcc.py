"""The store's MVCC contract, on every backend (tests/store/conftest.py): writes, CAS, reads now and
at a past revision, txns, compaction, retention, prefix revisions."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from orchestra.store import (
    CompactedError,
    Compare,
    CompareFailed,
    Delete,
    FutureRevisionError,
    KeyValue,
    Put,
    Store,
    StoreError,
)
from tests.store.backends import OpenStore

# --- put / get / delete ----------------------------------------------------------------------------


def test_empty_store_starts_at_revision_zero(store: Store) -> None:
    assert (store.revision, store.compact_revision) == (0, 0)
    assert store.get("x") is None
    assert store.range("") == ([], 0)


def test_put_creates_then_updates(store: Store) -> None:
    assert store.put("k", b"v1") == KeyValue("k", b"v1", 1, 1, 1)
    assert store.put("k", b"v2") == KeyValue("k", b"v2", 1, 2, 2)
    assert store.get("k") == KeyValue("k", b"v2", 1, 2, 2)
    assert store.revision == 2


def test_delete_returns_previous_and_recreate_resets_version(store: Store) -> None:
    store.put("k", b"v1")
    assert store.delete("k") == KeyValue("k", b"v1", 1, 1, 1)
    assert store.get("k") is None
    assert store.delete("k") is None
    assert store.revision == 2  # the second delete changed nothing
    assert store.put("k", b"v2") == KeyValue("k", b"v2", 3, 3, 1)


@pytest.mark.parametrize(
    ("expect", "ok"),
    [(0, False), (1, False), (2, True), (3, False)],
    ids=["absent", "stale", "current", "future"],
)
def test_put_compare_and_swap(store: Store, expect: int, ok: bool) -> None:
    store.put("k", b"a")
    store.put("k", b"b")
    if ok:
        assert store.put("k", b"c", expect_mod_revision=expect).mod_revision == 3
    else:
        with pytest.raises(CompareFailed) as info:
            store.put("k", b"c", expect_mod_revision=expect)
        assert (info.value.key, info.value.expected, info.value.actual) == ("k", expect, 2)
        assert store.revision == 2


def test_put_expect_zero_means_create_only(store: Store) -> None:
    store.put("k", b"a", expect_mod_revision=0)
    with pytest.raises(CompareFailed) as info:
        store.put("k", b"b", expect_mod_revision=0)
    assert info.value.actual == 1


@pytest.mark.parametrize(
    ("expect", "ok"), [(0, False), (1, True), (2, False)], ids=["absent", "current", "future"]
)
def test_delete_compare_and_swap(store: Store, expect: int, ok: bool) -> None:
    store.put("k", b"a")
    if ok:
        assert store.delete("k", expect_mod_revision=expect) is not None
    else:
        with pytest.raises(CompareFailed):
            store.delete("k", expect_mod_revision=expect)
        assert store.get("k") is not None


def test_delete_absent_with_expect_zero_is_a_noop(store: Store) -> None:
    assert store.delete("k", expect_mod_revision=0) is None
    with pytest.raises(CompareFailed):
        store.delete("k", expect_mod_revision=5)


# --- range / count ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "kwargs", "keys"),
    [
        ("", {}, ["a", "ab", "c"]),
        ("a", {}, ["a", "ab"]),
        ("b", {}, []),
        ("", {"limit": 2}, ["a", "ab"]),
        ("", {"start_after": "a"}, ["ab", "c"]),
        ("", {"start_after": "ab", "limit": 1}, ["c"]),
        ("a", {"start_after": "0"}, ["a", "ab"]),
        ("", {"revision": 2}, ["a", "b"]),
        ("", {"revision": 4}, ["a", "b", "c"]),
        ("", {"revision": 5}, ["a", "c"]),
        ("", {"revision": 0}, []),
    ],
    ids=[
        "all",
        "prefix",
        "deleted-prefix",
        "limit",
        "start-after",
        "page-2",
        "start-before-prefix",
        "at-2",
        "at-4",
        "at-5",
        "at-0",
    ],
)
def test_range(seeded: Store, prefix: str, kwargs: dict[str, int | str], keys: list[str]) -> None:
    s = seeded
    kvs, revision = s.range(prefix, **kwargs)  # type: ignore[arg-type]
    assert [kv.key for kv in kvs] == keys
    assert revision == kwargs.get("revision", 6)


def test_range_at_revision_returns_the_old_values(seeded: Store) -> None:
    s = seeded
    assert s.range("a", revision=2)[0] == [KeyValue("a", b"1", 1, 1, 1)]
    assert s.get("a", revision=2) == KeyValue("a", b"1", 1, 1, 1)
    assert s.get("b", revision=4) == KeyValue("b", b"2", 2, 2, 1)
    assert s.get("b", revision=5) is None
    assert s.get("ab", revision=5) is None


def test_count(seeded: Store) -> None:
    s = seeded
    assert (s.count(""), s.count("a"), s.count("b"), s.count("z")) == (3, 2, 0, 0)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.get("a", revision=7), FutureRevisionError),
        (lambda s: s.range("", revision=7), FutureRevisionError),
        (lambda s: s.get("a", revision=2), CompactedError),
        (lambda s: s.range("", revision=2), CompactedError),
        (lambda s: s.watch("", start_revision=3), CompactedError),
        (lambda s: s.watch("", start_revision=8), FutureRevisionError),
        (lambda s: s.compact(7), FutureRevisionError),
    ],
    ids=[
        "get-future",
        "range-future",
        "get-compacted",
        "range-compacted",
        "watch-compacted",
        "watch-future",
        "compact-future",
    ],
)
def test_revision_errors(seeded: Store, call: object, error: type[StoreError]) -> None:
    s = seeded
    s.compact(3)
    with pytest.raises(error):
        call(s)  # type: ignore[operator]


def test_compaction_keeps_the_state_at_its_revision(seeded: Store) -> None:
    s = seeded
    before = {rev: s.range("", revision=rev)[0] for rev in range(3, 7)}
    s.compact(3)
    assert s.compact_revision == 3
    for rev, kvs in before.items():
        assert s.range("", revision=rev)[0] == kvs
    s.compact(6)
    assert s.range("")[0] == before[6]
    assert s.statistics()["history_events"] == 0
    assert s.statistics()["indexed_keys"] == 3  # b's tombstone is gone with its history


def test_compact_backwards_is_a_noop(seeded: Store) -> None:
    s = seeded
    s.compact(4)
    s.compact(2)
    assert s.compact_revision == 4


def test_compaction_drops_deleted_keys_that_can_come_back(store: Store) -> None:
    store.put("k", b"1")
    store.delete("k")
    store.compact(2)
    assert store.range("")[0] == []
    store.put("k", b"2")
    assert [kv.key for kv in store.range("")[0]] == ["k"]


def test_max_history_trims_without_run(open_store: OpenStore) -> None:
    s = open_store(max_history=100)
    for i in range(1000):
        s.put(f"k{i % 7}", b"x")
    stats = s.statistics()
    assert 100 <= stats["history_events"] <= 125  # type: ignore[operator]
    assert s.compact_revision == 1000 - stats["history_events"]  # type: ignore[operator]


# --- txn -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compare", "holds"),
    [
        (Compare("a", "mod", "==", 3), True),
        (Compare("a", "mod", "!=", 3), False),
        (Compare("a", "mod", "<", 4), True),
        (Compare("a", "mod", ">", 3), False),
        (Compare("a", "create", "==", 1), True),
        (Compare("a", "version", "==", 2), True),
        (Compare("a", "value", "==", b"3"), True),
        (Compare("a", "value", ">", b"2"), True),
        (Compare("b", "mod", "==", 0), True),
        (Compare("b", "version", "==", 0), True),
        (Compare("b", "value", "==", b""), False),
        (Compare("b", "value", "!=", b""), True),
        (Compare("b", "value", "<", b"z"), False),
        (Compare("zz", "create", "==", 0), True),
    ],
    ids=lambda v: f"{v.key}.{v.target}{v.op}{v.value!r}" if isinstance(v, Compare) else str(v),
)
def test_txn_compares(seeded: Store, compare: Compare, holds: bool) -> None:
    s = seeded
    result = s.txn([compare], [Put("t", b"yes")], [Put("t", b"no")])
    assert result.succeeded is holds
    assert s.get("t") == KeyValue("t", b"yes" if holds else b"no", 7, 7, 1)
    assert result.revision == 7


def test_txn_is_atomic_at_one_revision(store: Store) -> None:
    store.put("a", b"1")
    store.put("c", b"1")
    result = store.txn(
        [Compare("a", "mod", "==", 1)], [Put("a", b"2"), Put("b", b"3"), Delete("a2"), Delete("c")]
    )
    assert result.succeeded
    assert result.revision == 3
    assert result.responses == [
        KeyValue("a", b"2", 1, 3, 2),
        KeyValue("b", b"3", 3, 3, 1),
        None,
        KeyValue("c", b"1", 2, 2, 1),
    ]
    assert store.get("c") is None
    assert store.get("b") == KeyValue("b", b"3", 3, 3, 1)
    assert store.revision == 3


def test_txn_without_effect_does_not_bump(store: Store) -> None:
    store.put("a", b"1")
    result = store.txn([Compare("a", "mod", "==", 9)], [Put("a", b"2")], [Delete("nope")])
    assert (result.succeeded, result.revision, result.responses) == (False, 1, [None])
    assert store.txn([], []).revision == 1


def test_txn_rejects_duplicate_keys(store: Store) -> None:
    with pytest.raises(StoreError):
        store.txn([], [Put("a", b"1"), Delete("a")])
    assert store.revision == 0


def test_compare_rejects_unknown_target() -> None:
    with pytest.raises(ValueError):
        Compare("a", "size", "==", 1)  # type: ignore[arg-type]


# --- run(): retention ------------------------------------------------------------------------------


async def test_retention_compacts_by_trio_time(
    open_store: OpenStore, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(100):
        s = open_store(retention_seconds=10)
        async with trio.open_nursery() as nursery:
            await nursery.start(s.run)
            s.put("old", b"1")
            w = s.watch("", start_revision=1)
            await trio.sleep(5)
            s.put("new", b"2")
            await trio.sleep(7)  # t=12: "old" is past retention, "new" is not
            assert s.compact_revision == 1
            assert [e.kv.key for e in s.watch("", start_revision=2).receive_nowait()] == ["new"]
            with pytest.raises(CompactedError):
                await w.__anext__()
            await trio.sleep(10)
            assert s.compact_revision == 2
            assert s.statistics()["history_events"] == 0
            assert [kv.key for kv in s.range("")[0]] == ["new", "old"]
            nursery.cancel_scope.cancel()


async def test_wait_durable_and_snapshot_keep_the_state(store: Store) -> None:
    with trio.fail_after(5):
        kv = store.put("k", b"v")
        await store.wait_durable(kv.mod_revision)
        await store.wait_durable(kv.mod_revision + 10)  # not written yet: waits for what there is
        await store.snapshot()  # memory: nothing to do; durable: a snapshot and a new log segment
        assert (store.revision, store.range("")) == (1, ([kv], 1))
        store.put("k", b"w")
        assert store.get("k", revision=1) == kv


def test_prefix_revision_moves_only_with_writes_under_the_prefix(store: Store) -> None:
    store.put("/a/1", b"x")
    assert store.prefix_revision("/a/") == store.revision  # first call: tracked from now
    before = store.prefix_revision("/a/")
    store.put("/b/1", b"x")
    assert store.prefix_revision("/a/") == before
    kv = store.put("/a/2", b"x")
    assert store.prefix_revision("/a/") == kv.mod_revision
    store.delete("/a/1")
    assert store.prefix_revision("/a/") == store.revision
    store.put("/b/2", b"x")
    store.txn([], [Put("/a/3", b"x")])
    assert store.prefix_revision("/a/") == store.revision
