"""Watch-list streams (sendInitialEvents + resourceVersionMatch=NotOlderThan) as kube-apiserver 1.32's
cacher serves them: the state as ADDED events, the BOOKMARK annotated k8s.io/initial-events-end at the
list's revision, then the changes after it; sendInitialEvents=false starts without the state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
import trio

from orchestra.api.machinery.selectors import parse_label_selector
from orchestra.api.registry import ResourceType
from orchestra.api.request.core import ApiCore
from orchestra.api.request.watch import INITIAL_EVENTS_END, watch
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store

BOOKMARKS = 3600.0  # bookmarks allowed; the periodic one never comes within a test


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store)
    await bootstrap(c)
    yield c
    store.close()


def cm_type(core: ApiCore) -> ResourceType:
    rt = core.registry.by_kind("ConfigMap")
    assert rt is not None
    return rt


async def seed(core: ApiCore) -> dict[str, int]:
    """b (tier=x), a (tier=y), then b changed: the revisions of each write."""
    rt = cm_type(core)
    revs = {}
    for name, tier in (("b", "x"), ("a", "y")):
        done = await core.create(rt, "default", {"metadata": {"name": name, "labels": {"tier": tier}}})
        revs[name] = int(done.obj["metadata"]["resourceVersion"])
    changed = await core.update(rt, "default", "b", {"metadata": {"name": "b", "labels": {"tier": "x"}},
                                                      "data": {"v": "2"}})
    revs["b2"] = int(changed.obj["metadata"]["resourceVersion"])
    return revs


def summary(event: tuple[str, dict[str, Any]]) -> tuple[str, str, str, bool]:
    etype, obj = event
    meta = obj.get("metadata", {})
    end = meta.get("annotations", {}).get(INITIAL_EVENTS_END) == "true"
    return etype, meta.get("name", ""), meta.get("resourceVersion", ""), end


async def first_events(core: ApiCore, n: int, then_create: str = "c", **kw: Any) -> list[tuple[Any, ...]]:
    """The watch's first `n` events, after writing ConfigMap `then_create` once the watch is blocked
    (so an event that only a live watch sees marks where the initial part ended)."""
    got: list[tuple[Any, ...]] = []
    with trio.fail_after(5):
        async with aclosing(watch(core, cm_type(core), "default", **kw)) as events, \
                trio.open_nursery() as nursery:

            async def write_when_blocked() -> None:
                await trio.testing.wait_all_tasks_blocked()
                await core.create(cm_type(core), "default",
                                  {"metadata": {"name": then_create, "labels": {"tier": "x"}}})

            nursery.start_soon(write_when_blocked)
            async for event in events:
                got.append(summary(event))
                if len(got) == n:
                    break
    return got


async def test_watch_list_sends_the_state_then_the_annotated_bookmark(core: ApiCore) -> None:
    revs = await seed(core)
    now = core.store.revision
    got = await first_events(core, 4, resource_version="", send_initial_events=True,
                             bookmark_interval=BOOKMARKS)
    assert got == [
        ("ADDED", "a", str(revs["a"]), False),
        ("ADDED", "b", str(revs["b2"]), False),
        ("BOOKMARK", "", str(now), True),
        ("ADDED", "c", str(now + 1), False),
    ]


@pytest.mark.parametrize("rv", ["0", "OLDEST"], ids=["rv-0", "rv-older"])
async def test_watch_list_at_an_older_revision_sends_the_current_state(core: ApiCore, rv: str) -> None:
    """NotOlderThan: the state the cacher has, however old the asked revision (even compacted)."""
    revs = await seed(core)
    if rv == "OLDEST":
        rv = str(revs["b"])
        core.store.compact(revs["b2"])
    got = await first_events(core, 3, resource_version=rv, send_initial_events=True,
                             bookmark_interval=BOOKMARKS)
    assert got == [("ADDED", "a", str(revs["a"]), False), ("ADDED", "b", str(revs["b2"]), False),
                   ("BOOKMARK", "", str(revs["b2"]), True)]


async def test_without_bookmarks_no_end_marker_is_sent(core: ApiCore) -> None:
    revs = await seed(core)
    got = await first_events(core, 3, send_initial_events=True)
    assert got == [("ADDED", "a", str(revs["a"]), False), ("ADDED", "b", str(revs["b2"]), False),
                   ("ADDED", "c", str(revs["b2"] + 1), False)]


async def test_selectors_filter_the_initial_events(core: ApiCore) -> None:
    revs = await seed(core)
    got = await first_events(core, 3, send_initial_events=True, bookmark_interval=BOOKMARKS,
                             label_selector=parse_label_selector("tier=x"))
    assert got == [("ADDED", "b", str(revs["b2"]), False), ("BOOKMARK", "", str(revs["b2"]), True),
                   ("ADDED", "c", str(revs["b2"] + 1), False)]


@pytest.mark.parametrize("rv", ["", "0"], ids=["rv-unset", "rv-0"])
async def test_send_initial_events_false_starts_at_the_current_revision(core: ApiCore, rv: str) -> None:
    revs = await seed(core)
    got = await first_events(core, 1, resource_version=rv, send_initial_events=False,
                             bookmark_interval=BOOKMARKS)
    assert got == [("ADDED", "c", str(revs["b2"] + 1), False)]


async def test_send_initial_events_false_at_n_replays_the_changes_after_n(core: ApiCore) -> None:
    revs = await seed(core)
    got = await first_events(core, 2, resource_version=str(revs["b"]), send_initial_events=False,
                             bookmark_interval=BOOKMARKS)
    assert got == [("ADDED", "a", str(revs["a"]), False), ("MODIFIED", "b", str(revs["b2"]), False)]


async def test_a_future_revision_is_a_too_large_error_event(core: ApiCore) -> None:
    await seed(core)
    future = core.store.revision + 10
    with trio.fail_after(5):
        async with aclosing(watch(core, cm_type(core), "default", resource_version=str(future),
                                  send_initial_events=True, bookmark_interval=BOOKMARKS)) as events:
            got = [e async for e in events]
    assert len(got) == 1 and got[0][0] == "ERROR"
    assert got[0][1]["code"] == 504 and "Too large resource version" in got[0][1]["message"]
