"""Informer: initial list, watch updates, indexes, and re-list with synthetic events after compaction."""

from __future__ import annotations

import trio

from orchestra.api.machinery.selectors import parse_label_selector
from orchestra.api.request.stored import decode, encode
from orchestra.controller import Informer
from tests.controller.harness import make_api, wait_for

Event = tuple[str, str | None, str | None]


def recorder(events: list[Event]):  # type: ignore[no-untyped-def]
    def handler(event_type, old, new):  # type: ignore[no-untyped-def]
        name = lambda o: None if o is None else o["metadata"]["name"] + ":" + str(o.get("data", {}).get("v"))  # noqa: E731
        events.append((event_type, name(old), name(new)))

    return handler


def cm(name: str, v: str, **labels: str) -> dict:  # type: ignore[type-arg]
    return {"metadata": {"name": name, "labels": labels}, "data": {"v": v}}


async def test_initial_list_then_watch(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        await api.create("ConfigMap", cm("a", "1", app="x"))
        await api.create("ConfigMap", cm("b", "1", app="y"))
        inf = Informer(
            api.client, api.rt("ConfigMap"), indexers={"app": lambda o: [o["metadata"]["labels"]["app"]]}
        )
        events: list[Event] = []
        inf.add_handler(recorder(events))
        async with trio.open_nursery() as nursery:
            assert not inf.has_synced
            await nursery.start(inf.run)
            assert inf.has_synced
            assert sorted(events) == [("ADDED", None, "a:1"), ("ADDED", None, "b:1")]
            assert inf.get("default", "a")["data"] == {"v": "1"}  # type: ignore[index]
            assert [o["metadata"]["name"] for o in inf.by_index("app", "y")] == ["b"]
            assert [o["metadata"]["name"] for o in inf.list("default", parse_label_selector("app=x"))] == [
                "a"
            ]
            events.clear()

            a = api.get("ConfigMap", "a")
            assert a is not None
            a["data"] = {"v": "2"}
            await api.client.update(api.rt("ConfigMap"), a)
            await api.client.delete(api.rt("ConfigMap"), "default", "b")
            await api.create("ConfigMap", cm("c", "1", app="y"))
            await wait_for(api, lambda: inf.get("default", "c") is not None)
            await trio.testing.wait_all_tasks_blocked()
            assert events == [("MODIFIED", "a:1", "a:2"), ("DELETED", "b:1", None), ("ADDED", None, "c:1")]
            assert [o["metadata"]["name"] for o in inf.by_index("app", "y")] == ["c"]

            late: list[Event] = []
            inf.add_handler(recorder(late))  # a late handler first sees the cache as ADDED
            assert sorted(late) == [("ADDED", None, "a:2"), ("ADDED", None, "c:1")]
            nursery.cancel_scope.cancel()


async def test_relist_after_compaction_emits_differences(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        for name in ("a", "b", "keep"):
            await api.create("ConfigMap", cm(name, "1"))
        rt = api.rt("ConfigMap")
        inf = Informer(api.client, rt)
        events: list[Event] = []
        async with trio.open_nursery() as nursery:
            await nursery.start(inf.run)
            inf.add_handler(recorder(events))
            events.clear()
            # Change the store and compact past the changes without yielding, so the informer's
            # watch is overtaken by compaction and gets 410 Expired.
            store = api.store
            kv = store.get(rt.key("default", "a"))
            assert kv is not None
            obj = decode(kv.value)
            obj["data"] = {"v": "2"}
            store.put(kv.key, encode(obj))
            store.delete(rt.key("default", "b"))
            new = decode(kv.value)
            new["metadata"].update(name="c", uid="uid-c")
            store.put(rt.key("default", "c"), encode(new))
            store.compact(store.revision)
            await trio.testing.wait_all_tasks_blocked()  # the 410 and the re-list take no time
            assert inf.statistics()["relists"] == 1
            assert sorted(events) == [
                ("ADDED", None, "c:1"),
                ("DELETED", "b:1", None),
                ("MODIFIED", "a:1", "a:2"),
            ]
            assert sorted(inf.keys()) == ["default/a", "default/c", "default/keep"]
            assert inf.resource_version == str(store.revision)
            # and it keeps watching afterwards
            await api.create("ConfigMap", cm("d", "1"))
            await wait_for(api, lambda: inf.get("default", "d") is not None)
            nursery.cancel_scope.cancel()


async def test_wait_for_resource_version(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        inf = Informer(api.client, api.rt("ConfigMap"))
        async with trio.open_nursery() as nursery:
            await nursery.start(inf.run)
            created = await api.create("ConfigMap", cm("a", "1"))
            assert await inf.wait_for_resource_version(created["metadata"]["resourceVersion"])
            assert inf.get("default", "a") is not None
            assert not await inf.wait_for_resource_version(
                int(created["metadata"]["resourceVersion"]) + 50, max_wait=1
            )
            nursery.cancel_scope.cancel()


async def test_a_failing_handler_index_or_transform_is_contained_to_its_object(
        autojump_clock: trio.testing.MockClock) -> None:
    """A stored object a handler cannot digest must not end the watch (nor the process hosting it)."""

    def picky(event_type, old, new):  # type: ignore[no-untyped-def]
        if (new or old)["data"]["v"] == "bad":
            raise ValueError("cannot digest")

    def index(obj):  # type: ignore[no-untyped-def]
        return [str(int(obj["data"]["v"]))]  # "bad" is no int

    def transform(obj):  # type: ignore[no-untyped-def]
        return {**obj, "seen": 1 / (obj["data"]["v"] != "bad")}  # ZeroDivisionError for "bad"

    with trio.fail_after(60):
        api = await make_api()
        await api.create("ConfigMap", cm("before", "bad"))
        inf = Informer(api.client, api.rt("ConfigMap"), indexers={"v": index}, transform=transform)
        events: list[Event] = []
        inf.add_handler(picky)
        inf.add_handler(recorder(events))
        async with trio.open_nursery() as nursery:
            await nursery.start(inf.run)
            await api.create("ConfigMap", cm("during", "bad"))
            await api.create("ConfigMap", cm("good", "1"))
            await wait_for(api, lambda: inf.get("default", "good") is not None)
            await trio.testing.wait_all_tasks_blocked()
            assert inf.running
            assert sorted(events) == [("ADDED", None, "before:bad"), ("ADDED", None, "during:bad"),
                                      ("ADDED", None, "good:1")]
            assert [o["metadata"]["name"] for o in inf.by_index("v", "1")] == ["good"]
            assert inf.get("default", "good")["seen"] == 1  # type: ignore[index]
            # each bad object: the transform, the index and the picky handler failed once
            assert inf.statistics()["handler_errors"] == 6
            await api.client.delete(api.rt("ConfigMap"), "default", "during")
            await wait_for(api, lambda: inf.get("default", "during") is None)
            assert inf.by_index("v", "1") == [inf.get("default", "good")]
            late: list[str] = []
            inf.add_handler(picky)  # a late handler's replay is contained the same way
            inf.add_handler(lambda t, o, n: late.append(n["metadata"]["name"]))
            assert sorted(late) == ["before", "good"]
            nursery.cancel_scope.cancel()
