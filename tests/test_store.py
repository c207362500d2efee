"""orchestra.store semantics on the in-memory backend: table tests, watches, compaction, retention."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from orchestra.store import (
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
)


@pytest.fixture
def store() -> Store:
    return Store.open_memory()


def seeded() -> Store:
    """a@1 b@2 a@3 c@4 del b@5 ab@6"""
    s = Store.open_memory()
    s.put("a", b"1")
    s.put("b", b"2")
    s.put("a", b"3")
    s.put("c", b"4")
    s.delete("b")
    s.put("ab", b"6")
    return s


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
def test_range(prefix: str, kwargs: dict[str, int | str], keys: list[str]) -> None:
    s = seeded()
    kvs, revision = s.range(prefix, **kwargs)  # type: ignore[arg-type]
    assert [kv.key for kv in kvs] == keys
    assert revision == kwargs.get("revision", 6)


def test_range_at_revision_returns_the_old_values() -> None:
    s = seeded()
    assert s.range("a", revision=2)[0] == [KeyValue("a", b"1", 1, 1, 1)]
    assert s.get("a", revision=2) == KeyValue("a", b"1", 1, 1, 1)
    assert s.get("b", revision=4) == KeyValue("b", b"2", 2, 2, 1)
    assert s.get("b", revision=5) is None
    assert s.get("ab", revision=5) is None


def test_count() -> None:
    s = seeded()
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
def test_revision_errors(call: object, error: type[StoreError]) -> None:
    s = seeded()
    s.compact(3)
    with pytest.raises(error):
        call(s)  # type: ignore[operator]


def test_compaction_keeps_the_state_at_its_revision() -> None:
    s = seeded()
    before = {rev: s.range("", revision=rev)[0] for rev in range(3, 7)}
    s.compact(3)
    assert s.compact_revision == 3
    for rev, kvs in before.items():
        assert s.range("", revision=rev)[0] == kvs
    s.compact(6)
    assert s.range("")[0] == before[6]
    assert s.statistics()["history_events"] == 0
    assert s.statistics()["indexed_keys"] == 3  # b's tombstone is gone with its history


def test_compact_backwards_is_a_noop() -> None:
    s = seeded()
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


def test_max_history_trims_without_run() -> None:
    s = Store.open_memory(max_history=100)
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
def test_txn_compares(compare: Compare, holds: bool) -> None:
    s = seeded()
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


# --- watch -----------------------------------------------------------------------------------------


async def drain(watcher: object, until_revision: int) -> list[Event]:
    events: list[Event] = []
    async for batch in watcher:  # type: ignore[attr-defined]
        events += batch
        if events[-1].revision >= until_revision:
            return events
    return events


async def test_watch_replays_history_then_follows_live() -> None:
    with trio.fail_after(5):
        s = seeded()
        async with s.watch("a", start_revision=2) as w:
            replayed = await drain(w, 6)
            assert [(e.type, e.kv.key, e.revision) for e in replayed] == [("PUT", "a", 3), ("PUT", "ab", 6)]
            assert replayed[0].prev_kv == KeyValue("a", b"1", 1, 1, 1)

            async def later() -> None:
                await trio.testing.wait_all_tasks_blocked()
                s.put("b", b"ignored")
                s.delete("a")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(later)
                live = await drain(w, 8)
            assert [(e.type, e.kv.key, e.revision) for e in live] == [("DELETE", "a", 8)]
            tomb = live[0]
            assert tomb.kv == KeyValue("a", b"3", 1, 8, 0)
            assert tomb.prev_kv == KeyValue("a", b"3", 1, 3, 2)


async def test_watch_from_next_revision_sees_only_new_events(store: Store) -> None:
    with trio.fail_after(5):
        store.put("k", b"1")
        w = store.watch("", start_revision=store.revision + 1)
        with pytest.raises(trio.WouldBlock):
            w.receive_nowait()
        store.put("k", b"2")
        assert [e.revision for e in await w.__anext__()] == [2]
        await w.aclose()


def test_watch_start_revision_zero_means_from_the_beginning(store: Store) -> None:
    store.put("k", b"1")
    assert [e.revision for e in store.watch("", start_revision=0).receive_nowait()] == [1]


async def test_txn_events_arrive_in_one_batch(store: Store) -> None:
    with trio.fail_after(5):
        w = store.watch("", start_revision=1)
        store.txn([], [Put("a", b"1"), Put("b", b"2")])
        batch = await w.__anext__()
        assert [(e.kv.key, e.revision) for e in batch] == [("a", 1), ("b", 1)]


async def test_slow_watcher_gets_compacted_error_and_keeps_getting_it(store: Store) -> None:
    with trio.fail_after(5):
        fast = store.watch("", start_revision=1)
        slow = store.watch("", start_revision=1)
        for i in range(10):
            store.put(f"k{i}", b"v")
        first = await slow.__anext__()  # reads 1..10
        assert len(first) == 10
        assert [e.revision for e in fast.receive_nowait()][-1] == 10
        store.put("k", b"v")  # 11: slow never reads it
        store.put("k", b"v")  # 12
        assert [e.revision for e in fast.receive_nowait()] == [11, 12]
        store.compact(11)
        with pytest.raises(CompactedError) as info:
            await slow.__anext__()
        assert (info.value.requested, info.value.compact_revision) == (11, 11)
        with pytest.raises(CompactedError):
            slow.receive_nowait()  # never silently resumes past the gap
        store.put("k", b"v")
        assert [e.revision for e in await fast.__anext__()] == [13]


async def test_writers_never_wait_for_watchers(store: Store) -> None:
    with trio.fail_after(5):
        w = store.watch("", start_revision=1)
        for i in range(10_000):
            store.put("k", str(i).encode())
        assert store.statistics()["slowest_watcher_lag"] == 10_000
        seen = 0
        while seen < 10_000:
            seen += len(await w.__anext__())
        assert store.statistics()["slowest_watcher_lag"] == 0


async def test_prefix_watch_skips_other_keys_without_stalling(store: Store) -> None:
    with trio.fail_after(5):
        w = store.watch("/b/", start_revision=1)
        for i in range(5000):
            store.put(f"/a/{i}", b"x")
        store.put("/b/1", b"y")
        batch = await w.__anext__()
        assert [(e.kv.key, e.revision) for e in batch] == [("/b/1", 5001)]


async def test_many_watchers_are_woken_by_one_write(store: Store) -> None:
    with trio.fail_after(5):
        got: list[int] = []

        async def follow(w: object) -> None:
            async with w:  # type: ignore[attr-defined]
                batch = await w.__anext__()  # type: ignore[attr-defined]
                got.append(batch[0].revision)

        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(follow, store.watch("", start_revision=1))
            await trio.testing.wait_all_tasks_blocked()
            assert store.statistics()["watchers"] == 100
            store.put("k", b"v")
        assert got == [1] * 100
        assert store.statistics()["watchers"] == 0


async def test_close_ends_watchers_and_writes(store: Store) -> None:
    with trio.fail_after(5):
        w = store.watch("", start_revision=1)

        async def read() -> None:
            with pytest.raises(StoreClosedError):
                await w.__anext__()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            store.close()
        with pytest.raises(StoreClosedError):
            store.put("k", b"v")
        with pytest.raises(StoreClosedError):
            store.watch("", start_revision=1)


async def test_closed_watcher_stops_iteration(store: Store) -> None:
    with trio.fail_after(5):
        w = store.watch("", start_revision=1)

        async def read() -> None:
            assert [b async for b in w] == []

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            await w.aclose()


def test_backlog_counts_unread_events_under_the_prefix(store: Store) -> None:
    w = store.watch("/a/", start_revision=1)
    for i in range(5):
        store.put(f"/a/{i}", b"x")
        store.put(f"/b/{i}", b"x")  # another prefix: never part of the backlog
    assert w.backlog(100) == 5
    assert w.backlog(3) == 3  # counting stops at the limit ...
    assert w.backlog(100) == 5  # ... and resumes where it stopped
    store.txn([], [Put("/a/x", b"1"), Put("/a/y", b"1")])
    assert w.backlog(100) == 7
    assert [e.kv.key for e in w.receive_nowait()] == [f"/a/{i}" for i in range(5)] + ["/a/x", "/a/y"]
    assert w.backlog(100) == 0
    store.delete("/a/0")
    assert w.backlog(100) == 1
    store.compact(store.revision)  # overtaken: as far behind as can be
    assert w.backlog(10) == 10


def test_backlog_after_partial_reads(store: Store) -> None:
    w = store.watch("", start_revision=1)
    for i in range(3000):
        store.put(f"k{i}", b"x")
    assert w.backlog(10_000) == 3000
    taken = len(w.receive_nowait())  # one batch of at most 1024 events
    assert 0 < taken < 3000
    assert w.backlog(10_000) == 3000 - taken


def test_backlog_leaves_out_the_history_a_watch_replays(store: Store) -> None:
    """Like kube's init events: only what is written after the watch began can put it behind."""
    for i in range(1500):
        store.put(f"old{i}", b"x")
    w = store.watch("", start_revision=1)
    assert w.backlog(10_000) == 0
    for i in range(20):
        store.put(f"new{i}", b"x")
    assert w.backlog(10_000) == 20
    replayed = w.receive_nowait()  # 1024 old events: none of them counted
    assert len(replayed) == 1024 and w.backlog(10_000) == 20
    rest = w.receive_nowait()  # the other 476 old ones and the 20 new
    assert len(rest) == 496 and w.backlog(10_000) == 0
    store.put("newer", b"x")
    assert w.backlog(10_000) == 1


# --- run(): retention ------------------------------------------------------------------------------


async def test_retention_compacts_by_trio_time(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(100):
        s = Store.open_memory(retention_seconds=10)
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


async def test_memory_wait_durable_returns_at_once(store: Store) -> None:
    with trio.fail_after(5):
        store.put("k", b"v")
        await store.wait_durable(1)
        await store.snapshot()  # no-op in memory


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


async def test_writes_wake_only_watchers_of_their_prefix(store: Store) -> None:
    """A caught-up watcher parks on its prefix: writes elsewhere leave it parked, a write under
    its prefix (or a watch of everything) delivers."""
    got: dict[str, list[str]] = {"/a/": [], "/b/": [], "": []}

    async def follow(prefix: str) -> None:
        async with store.watch(prefix, start_revision=store.revision + 1) as w:
            async for batch in w:
                got[prefix] += [ev.kv.key for ev in batch]

    async with trio.open_nursery() as nursery:
        for prefix in got:
            nursery.start_soon(follow, prefix)
        await trio.testing.wait_all_tasks_blocked()
        store.put("/b/1", b"x")
        await trio.testing.wait_all_tasks_blocked()
        assert got == {"/a/": [], "/b/": ["/b/1"], "": ["/b/1"]}
        assert set(store._notifier.parked) == {"/a/", "/b/", ""}  # all caught up and parked again
        store.put("/a/1", b"x")
        store.delete("/b/1")
        await trio.testing.wait_all_tasks_blocked()
        assert got == {"/a/": ["/a/1"], "/b/": ["/b/1", "/b/1"], "": ["/b/1", "/a/1", "/b/1"]}
        nursery.cancel_scope.cancel()
