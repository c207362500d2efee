"""Garbage collector: Background, Foreground and Orphan propagation, and dangling owners."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from orchestra.reconcilers.garbage_collector import GarbageCollector
from tests.controller.harness import Api, make_api, owner_ref, pod, wait_for


async def _family(api: Api, *, block: bool = True) -> dict[str, Any]:
    owner = await api.create("ConfigMap", {"metadata": {"name": "owner"}})
    kids = {}
    for name in ("kid1", "kid2"):
        kids[name] = await api.create("Pod", pod(name, owner=owner_ref(owner, block=block)))
    grandkid = await api.create(
        "Secret", {"metadata": {"name": "grandkid", "ownerReferences": [owner_ref(kids["kid1"])]}}
    )
    return {"owner": owner, **kids, "grandkid": grandkid}


def _exists(api: Api, kind: str, name: str) -> bool:
    return api.get(kind, name) is not None


@pytest.mark.parametrize(
    ("policy", "kids_remain"),
    [("Background", False), ("Foreground", False), ("Orphan", True)],
    ids=["background", "foreground", "orphan"],
)
async def test_propagation(autojump_clock: trio.testing.MockClock, policy: str, kids_remain: bool) -> None:
    with trio.fail_after(60):
        api = await make_api()
        fam = await _family(api)
        gc = GarbageCollector(api.client)
        async with trio.open_nursery() as nursery:
            await nursery.start(gc.run)
            await api.client.delete(api.rt("ConfigMap"), "default", "owner", propagation_policy=policy)
            await wait_for(api, lambda: not _exists(api, "ConfigMap", "owner"), limit=10)
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
        assert _exists(api, "Pod", "kid1") is kids_remain
        assert _exists(api, "Pod", "kid2") is kids_remain
        assert _exists(api, "Secret", "grandkid") is kids_remain
        if kids_remain:
            kid = api.get("Pod", "kid1")
            assert kid is not None and "ownerReferences" not in kid["metadata"]
            grandkid = api.get("Secret", "grandkid")
            assert (
                grandkid is not None
                and grandkid["metadata"]["ownerReferences"][0]["uid"] == fam["kid1"]["metadata"]["uid"]
            )


async def test_foreground_waits_for_blocking_dependents(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        owner = await api.create("ConfigMap", {"metadata": {"name": "owner"}})
        await api.create("Secret", {"metadata": {"name": "held", "finalizers": ["example.com/hold"],
                                                 "ownerReferences": [owner_ref(owner, block=True)]}})
        await api.create(
            "Secret", {"metadata": {"name": "free", "ownerReferences": [owner_ref(owner, block=False)]}}
        )
        gc = GarbageCollector(api.client)
        async with trio.open_nursery() as nursery:
            await nursery.start(gc.run)
            await api.client.delete(api.rt("ConfigMap"), "default", "owner", propagation_policy="Foreground")
            await trio.sleep(5)
            assert _exists(api, "ConfigMap", "owner"), "a blocking dependent is still there"
            assert not _exists(api, "Secret", "free")
            held = api.get("Secret", "held")
            assert held is not None and held["metadata"]["deletionTimestamp"]
            await api.client.patch(api.rt("Secret"), "default", "held", {"metadata": {"finalizers": None}})
            gone = await wait_for(api, lambda: not _exists(api, "ConfigMap", "owner"), limit=10)
            assert gone == trio.current_time()
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("owners", "survives", "refs_left"),
    [
        (["missing"], False, 0),
        (["live"], True, 1),
        (["missing", "live"], True, 1),
        (["stale-uid"], False, 0),
    ],
    ids=["dangling-only", "live-owner", "dangling-next-to-live", "same-name-new-uid"],
)
async def test_dangling_owner_references(
    autojump_clock: trio.testing.MockClock, owners: list[str], survives: bool, refs_left: int
) -> None:
    with trio.fail_after(60):
        api = await make_api()
        live = await api.create("ConfigMap", {"metadata": {"name": "live"}})
        refs = {
            "missing": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "nope",
                "uid": "00000000-0000-0000-0000-000000000001",
            },
            "live": owner_ref(live),
            "stale-uid": {**owner_ref(live), "uid": "00000000-0000-0000-0000-000000000002"},
        }
        gc = GarbageCollector(api.client)
        async with trio.open_nursery() as nursery:
            await nursery.start(gc.run)
            await api.create(
                "Secret", {"metadata": {"name": "dep", "ownerReferences": [refs[o] for o in owners]}}
            )
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
        dep = api.get("Secret", "dep")
        assert (dep is not None) is survives
        if dep is not None:
            assert len(dep["metadata"].get("ownerReferences") or []) == refs_left


async def test_owner_created_after_dependent_is_not_a_dangling_reference(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The cache may see a dependent before its owner; the GC asks the API before deleting."""
    with trio.fail_after(60):
        api = await make_api()
        gc = GarbageCollector(api.client)
        owner = await api.create("ConfigMap", {"metadata": {"name": "owner"}})
        async with trio.open_nursery() as nursery:
            await nursery.start(gc.run)
            # drop the owner from the GC's cache to simulate a lagging informer
            cm_informer = next(inf for rt, inf in gc.graph.items() if rt.kind == "ConfigMap")
            cm_informer._delete("default/owner")
            await api.create("Secret", {"metadata": {"name": "dep", "ownerReferences": [owner_ref(owner)]}})
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
        assert _exists(api, "Secret", "dep")
