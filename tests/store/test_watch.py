"""The store's watch contract, on every backend (tests/store/conftest.py): replay then live, batches,
compaction overtaking a watcher, close, wake-ups by prefix, and a watcher's backlog."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from orchestra.store import CompactedError, Event, KeyValue, Put, Store, StoreClosedError
from orchestra.store.history import History
from orchestra.store.watch import Notifier, Watcher

# --- watch -----------------------------------------------------------------------------------------


async def drain(watcher: object, until_revision: int) -> list[Event]:
    events: list[Event] = []
    async for batch in watcher:  # type: ignore[attr-defined]
        events += batch
        if events[-1].revision >= until_revision:
            return events
    return events


async def test_watch_replays_history_then_follows_live(seeded: Store) -> None:
    with trio.fail_after(5):
        s = seeded
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


async def test_a_watcher_needs_only_the_history_and_the_notifier() -> None:
    """The seam between a store and its watchers: a watcher reads the History it was handed and
    parks on the Notifier, which a write under its prefix wakes; it never sees the Store."""
    history, notifier = History(), Notifier()
    watcher = Watcher(history, notifier, "/a/", start_revision=1)
    assert set(notifier.watchers) == {watcher}
    ev = Event("PUT", KeyValue("/a/1", b"x", 1, 1, 1))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def follow() -> None:
                assert await watcher.__anext__() == [ev]

            nursery.start_soon(follow)
            await trio.testing.wait_all_tasks_blocked()
            history.events.append(ev)
            notifier.wake("/b/1")  # another prefix: the watcher stays parked
            await trio.testing.wait_all_tasks_blocked()
            assert set(notifier.parked) == {"/a/"}
            notifier.wake("/a/1")
    notifier.close()
    with pytest.raises(StoreClosedError):
        watcher.receive_nowait()
    watcher.close()
    assert not notifier.watchers
