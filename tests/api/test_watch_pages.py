"""The watch's initial list (resourceVersion unset/"0") is read from the store in bounded pages at
one revision, and yields exactly the events a plain LIST would; compaction during it is a 410."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
import trio

from orchestra.api.machinery.selectors import parse_field_selector, parse_label_selector
from orchestra.api.registry import ResourceType
from orchestra.api.request.core import ApiCore
from orchestra.api.request.watch import WatchEvent, WatchStream, initial_pages, watch
from orchestra.app.bootstrap import bootstrap
from orchestra.store import KeyValue, Store


class SpyStore(Store):
    """The memory store, recording every range read: (revision, limit, KeyValues returned)."""

    calls: list[tuple[int | None, int | None, int]]

    def range(self, prefix: str, **kw: Any) -> tuple[list[KeyValue], int]:  # type: ignore[override]
        kvs, rev = super().range(prefix, **kw)
        self.calls.append((kw.get("revision"), kw.get("limit"), len(kvs)))
        return kvs, rev

    def spy(self) -> SpyStore:
        self.calls = []
        return self

    @property
    def read(self) -> int:
        return sum(n for _, _, n in self.calls)


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = SpyStore.open_memory()
    assert isinstance(store, SpyStore)
    store.spy()
    c = ApiCore(store)
    await bootstrap(c)
    for ns in ("other", "empty"):
        await c.create(kind(c, "Namespace"), None, {"metadata": {"name": ns}})
    for i in range(23):
        await c.create(cm_type(c), "default", cm(f"c{i:02d}", tier="a" if i % 3 else "b"))
    for i in range(5):
        await c.create(cm_type(c), "other", cm(f"o{i}", tier="a"))
    yield c
    store.close()


def store_spy(core: ApiCore) -> SpyStore:
    assert isinstance(core.store, SpyStore)
    return core.store.spy()


def kind(core: ApiCore, name: str) -> ResourceType:
    rt = core.registry.by_kind(name)
    assert rt is not None
    return rt


def cm_type(core: ApiCore) -> ResourceType:
    return kind(core, "ConfigMap")


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": name}}


CASES = [
    pytest.param("default", "", "", 7, id="namespace-page7"),
    pytest.param("default", "", "", 1, id="namespace-page1"),
    pytest.param("default", "", "", 23, id="namespace-exact-page"),
    pytest.param("default", "", "", 100, id="namespace-one-page"),
    pytest.param(None, "", "", 4, id="all-namespaces"),
    pytest.param(None, "tier=b", "", 5, id="label-selector"),
    pytest.param("default", "tier!=b", "metadata.name!=c04", 3, id="label-and-field"),
    pytest.param("default", "", "metadata.name=c07", 3, id="exact-name"),
    pytest.param(None, "", "metadata.namespace=other", 2, id="namespace-field"),
    pytest.param("empty", "", "", 3, id="empty"),
]


@pytest.mark.parametrize(("namespace", "labels", "fields", "page_size"), CASES)
async def test_initial_pages_yield_what_a_list_returns(core: ApiCore, namespace: str | None, labels: str,
                                                       fields: str, page_size: int) -> None:
    rt = cm_type(core)
    label, field = parse_label_selector(labels), parse_field_selector(fields, "ConfigMap")
    listed = core.list(rt, namespace, label_selector=label, field_selector=field)
    keys = len(core.store.range(rt.key_prefix(namespace))[0])
    spy = store_spy(core)
    pages = list(initial_pages(core, rt, namespace, core.store.revision, label, field, page_size))
    events = [event for page in pages for event in page]
    assert events == [("ADDED", obj) for obj in listed.items]
    assert all(limit == page_size and rev == int(listed.resource_version) for rev, limit, _ in spy.calls)
    assert all(n <= page_size for _, _, n in spy.calls)
    if field.exact_name() is None:  # a pinned name is one point read, as in ApiCore.list
        assert len(spy.calls) == keys // page_size + 1


async def test_watch_holds_at_most_one_page_ahead_of_its_consumer(core: ApiCore) -> None:
    """Events come out while the list is still being read: what was read from the store never runs
    more than one page ahead of what the consumer took."""
    rt, page = cm_type(core), 4
    listed = core.list(rt, "default")
    spy = store_spy(core)
    got: list[WatchEvent] = []
    with trio.fail_after(5):
        async with aclosing(watch(core, rt, "default", page_size=page)) as events:
            async for event in events:
                got.append(event)
                assert spy.read <= len(got) + page
                if len(got) == len(listed.items):
                    break
    assert got == [("ADDED", obj) for obj in listed.items]
    assert [limit for _, limit, _ in spy.calls] == [page] * len(spy.calls)


async def test_initial_list_is_the_state_at_its_revision_then_changes_follow(core: ApiCore) -> None:
    """Writes made while the list is being sent show up once, as live events after it."""
    rt = cm_type(core)
    listed = core.list(rt, "default")
    names = [o["metadata"]["name"] for o in listed.items]
    got: list[tuple[str, str, str]] = []
    with trio.fail_after(5):
        async with aclosing(watch(core, rt, "default", resource_version="0", page_size=5)) as events:
            async for etype, obj in events:
                got.append((etype, obj["metadata"]["name"], obj.get("data", {}).get("k", "")))
                if len(got) == 3:  # mid-list: change objects the list has not reached yet
                    c20 = core.get(rt, "default", "c20")
                    c20["data"] = {"k": "changed"}
                    await core.update(rt, "default", "c20", c20)
                    await core.delete(rt, "default", "c21")
                    await core.create(rt, "default", cm("c99"))
                if len(got) == len(names) + 3:
                    break
    assert got[:len(names)] == [("ADDED", n, n) for n in names]
    changes = [("MODIFIED", "c20", "changed"), ("DELETED", "c21", "c21"), ("ADDED", "c99", "c99")]
    assert got[len(names):] == changes


async def test_compaction_past_the_list_revision_ends_the_watch_with_410(core: ApiCore) -> None:
    rt = cm_type(core)
    revision = core.store.revision
    got: list[WatchEvent] = []
    with trio.fail_after(5):
        async with aclosing(watch(core, rt, "default", page_size=5)) as events:
            async for event in events:
                got.append(event)
                if len(got) == 7:  # in the second page
                    await core.create(rt, "default", cm("late"))
                    core.store.compact(core.store.revision)
    # the second page was read before the compaction and is sent whole; the third cannot be read
    assert [etype for etype, _ in got] == ["ADDED"] * 10 + ["ERROR"]
    status = got[-1][1]
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert status["message"] == f"too old resource version: {revision} ({core.store.compact_revision})"


async def test_bookmarks_after_the_list_carry_the_revision_reached(
        core: ApiCore, autojump_clock: trio.testing.MockClock) -> None:
    rt = cm_type(core)
    n = len(core.list(rt, "default").items)
    rv = core.store.revision
    got: list[tuple[str, dict[str, Any], float]] = []
    with trio.fail_after(100):
        async with aclosing(watch(core, rt, "default", bookmark_interval=5, page_size=10)) as events:
            async for etype, obj in events:
                got.append((etype, obj, trio.current_time()))
                if len(got) == n + 1:  # the list, then a bookmark at its revision
                    await core.create(rt, "other", cm("elsewhere"))  # not this watch's, but a revision
                elif len(got) == n + 2:
                    await core.create(rt, "default", cm("here"))
                elif len(got) == n + 4:
                    break
    assert [etype for etype, *_ in got[:n]] == ["ADDED"] * n
    tail = [(etype, int(obj["metadata"]["resourceVersion"]), t) for etype, obj, t in got[n:]]
    assert tail == [("BOOKMARK", rv, 5), ("BOOKMARK", rv + 1, 10), ("ADDED", rv + 2, 10),
                    ("BOOKMARK", rv + 2, 15)]
    assert got[n][1] == {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": str(rv)}}


async def test_backlog_is_what_was_written_since_the_watch_began_and_not_handed_out(core: ApiCore) -> None:
    rt = cm_type(core)
    stream = WatchStream(core, rt, "default", page_size=5)
    assert stream.backlog(100) == 0  # not started
    with trio.fail_after(5):
        async with aclosing(stream.pages()) as pages:
            [list(await anext(pages)) for _ in range(2)]  # two pages of the list
            assert stream.backlog(100) == 0
            for i in range(12):
                await core.create(rt, "default", cm(f"new{i}"))
            await core.create(rt, "other", cm("elsewhere"))  # not under this watch's prefix
            assert stream.backlog(100) == 12 and stream.backlog(10) == 10
            rest = [list(await anext(pages)) for _ in range(3)]  # the rest of the list: 5 + 5 + 3
            assert [len(page) for page in rest] == [5, 5, 3] and stream.backlog(100) == 12
            held = []
            for _ in range(3):
                page = list(await anext(pages))
                held.append((len(page), stream.backlog(100)))
            assert held == [(5, 7), (5, 2), (2, 0)]
    assert stream.backlog(100) == 0  # ended
