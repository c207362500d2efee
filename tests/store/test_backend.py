"""The backend seam (orchestra.store.backend): what the MVCC layer does with what a backend tells it.

Backends written here stand for the cases today's two cannot produce on demand: a backend that
cannot keep a write (a full disk), and one that feeds revisions with gaps the way an etcd watch
does."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import trio
import trio.testing

from orchestra.store import Compare, Delete, Event, KeyValue, Put, Store, StoreError
from orchestra.store.backend import Feed
from orchestra.store.memory import MemoryBackend


class Refusing(MemoryBackend):
    """Keeps nothing, and refuses every append while `full`."""

    def __init__(self) -> None:
        self.full = False
        self.appended: list[int] = []

    def append(self, revision: int, events: Sequence[Event]) -> None:
        if self.full:
            raise StoreError("no space left on device")
        self.appended.append(revision)


WRITES: dict[str, Callable[[Store], object]] = {
    "put": lambda s: s.put("a", b"2"),
    "create": lambda s: s.put("new", b"1", expect_mod_revision=0),
    "delete": lambda s: s.delete("a"),
    "txn": lambda s: s.txn([Compare("a", "mod", "==", 1)], [Put("a", b"2"), Delete("b"), Put("c", b"3")]),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_a_write_the_backend_cannot_keep_changes_nothing(write: Callable[[Store], object]) -> None:
    backend = Refusing()
    store = Store.open(backend)
    store.put("a", b"1")
    store.put("b", b"1")
    watcher = store.watch("", start_revision=1)
    assert len(watcher.receive_nowait()) == 2
    before = (store.revision, store.range(""), store.count(""), store.statistics())
    backend.full = True
    with pytest.raises(StoreError, match="no space"):
        write(store)
    assert (store.revision, store.range(""), store.count(""), store.statistics()) == before
    with pytest.raises(trio.WouldBlock):
        watcher.receive_nowait()  # nothing was published
    backend.full = False
    write(store)
    assert store.revision == 3
    assert backend.appended == [1, 2, 3]
    assert {ev.revision for ev in watcher.receive_nowait()} == {3}


class Feeding(MemoryBackend):
    """Feeds the store the way an etcd backend would: a state at one revision, then revisions that
    skip (etcd counts writes outside the store's prefix too). Keeps the feed for later revisions."""

    def __init__(self) -> None:
        self.feed: Feed | None = None

    def recover(self, feed: Feed) -> None:
        self.feed = feed
        feed.restore(10, [KeyValue("a", b"1", 3, 10, 2), KeyValue("z", b"z", 4, 4, 1)])
        feed.apply(12, [Put("b", b"2")])
        feed.apply(15, [Put("a", b"3"), Delete("z")])


async def test_the_feed_takes_revisions_that_skip() -> None:
    backend = Feeding()
    store = Store.open(backend)
    assert (store.revision, store.compact_revision) == (15, 15)  # no history from before the open
    assert store.range("")[0] == [KeyValue("a", b"3", 3, 15, 3), KeyValue("b", b"2", 12, 12, 1)]
    watcher = store.watch("", start_revision=16)
    assert backend.feed is not None
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def follow() -> None:
                batch = await watcher.__anext__()
                assert [(ev.type, ev.kv.key, ev.revision) for ev in batch] == [("DELETE", "b", 21)]
                assert batch[0].prev_kv == KeyValue("b", b"2", 12, 12, 1)

            nursery.start_soon(follow)
            await trio.testing.wait_all_tasks_blocked()
            backend.feed.apply(21, [Delete("b")])
    assert store.get("b", revision=20) == KeyValue("b", b"2", 12, 12, 1)  # the state between revisions
    assert store.get("b") is None
    assert store.put("c", b"1").mod_revision == 22


class Recovering(MemoryBackend):
    def __init__(self, recover: Callable[[Feed], None]) -> None:
        self._recover = recover
        self.closed = False

    def recover(self, feed: Feed) -> None:
        self._recover(feed)

    def close(self) -> None:
        self.closed = True


def _same_revision(feed: Feed) -> None:
    feed.apply(1, [Put("a", b"1")])
    feed.apply(1, [Put("b", b"1")])


def _older_revision(feed: Feed) -> None:
    feed.restore(5, [])
    feed.apply(4, [Put("a", b"1")])


def _key_twice(feed: Feed) -> None:
    feed.apply(1, [Put("a", b"1"), Delete("a")])


def _no_change(feed: Feed) -> None:
    feed.apply(1, [Delete("absent")])


def _restore_twice(feed: Feed) -> None:
    feed.restore(5, [])
    feed.restore(5, [KeyValue("a", b"1", 1, 1, 1)])


BAD_FEEDS: dict[str, tuple[Callable[[Feed], None], str]] = {
    "same-revision": (_same_revision, "not after"),
    "older-revision": (_older_revision, "not after"),
    "key-twice": (_key_twice, "twice"),
    "no-change": (_no_change, "changes nothing"),
    "restore-twice": (_restore_twice, "not empty"),
}


@pytest.mark.parametrize(("recover", "message"), BAD_FEEDS.values(), ids=BAD_FEEDS.keys())
def test_the_feed_refuses_what_is_not_a_new_revision(recover: Callable[[Feed], None], message: str) -> None:
    backend = Recovering(recover)
    with pytest.raises(StoreError, match=message):
        Store.open(backend)
    assert backend.closed  # a store that did not open released its backend
