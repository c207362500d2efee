"""ReplicaSet controller: create in slow-start batches, adopt and release, victim order, status."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from orchestra.reconcilers.workloads.replicaset import ReplicaSetController
from tests.controller.harness import Api
from tests.reconcilers.test_workloads_support import CLOCK, active, events, pods, running, set_pod, until

Obj = dict[str, Any]


def rs_factory(api: Api) -> ReplicaSetController:
    return ReplicaSetController(api.client, clock=CLOCK)


def replicaset(name: str = "web", replicas: int = 3, min_ready: int = 0) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


async def scale(api: Api, name: str, replicas: int) -> None:
    rs = api.get("ReplicaSet", name)
    assert rs is not None
    rs["spec"]["replicas"] = replicas
    await api.client.update(api.rt("ReplicaSet"), rs)


async def test_creates_pods_with_owner_and_events(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with running(rs_factory) as api:
            rs = await api.create("ReplicaSet", replicaset(replicas=3))
            await until(api, lambda: len(pods(api, "app=web")) == 3)
            for p in pods(api, "app=web"):
                ref = p["metadata"]["ownerReferences"][0]
                assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                               "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
                assert p["metadata"]["name"].startswith("web-")
            await until(api, lambda: len(events(api, "SuccessfulCreate")) == 3)
            assert all(m.startswith("Created pod: web-") for m in events(api, "SuccessfulCreate"))
            st = api.get("ReplicaSet", "web")["status"]  # type: ignore[index]
            assert st["replicas"] == 3 and st["fullyLabeledReplicas"] == 3 and st["readyReplicas"] == 0
            assert st["observedGeneration"] == 1


async def test_slow_start_batches_stop_at_first_failure(autojump_clock: trio.testing.MockClock) -> None:
    from orchestra.api.errors import Invalid
    from orchestra.reconcilers.workloads.pods import slow_start

    calls: list[int] = []

    async def create(i: int) -> None:
        calls.append(i)
        if i == 5:
            raise Invalid("boom")

    with trio.fail_after(5):
        ok, err = await slow_start(20, create)
    # batches 1, 2, 4 (indexes 3..6 contain the failure) -> stop after 7 calls, 6 succeeded
    assert sorted(calls) == list(range(7)) and ok == 6 and err is not None


async def test_ready_and_available_with_min_ready_seconds(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with running(rs_factory) as api:
            await api.create("ReplicaSet", replicaset(replicas=2, min_ready=10))
            await until(api, lambda: len(pods(api, "app=web")) == 2)
            t0 = trio.current_time()
            for p in pods(api, "app=web"):
                await set_pod(api, p["metadata"]["name"])

            def status() -> Obj:
                return api.get("ReplicaSet", "web").get("status", {})  # type: ignore[union-attr]

            await until(api, lambda: status().get("readyReplicas") == 2)
            assert status().get("availableReplicas") == 0
            t = await until(api, lambda: status().get("availableReplicas") == 2)
            assert t == pytest.approx(int(t0) + 10, abs=0.01)  # timestamps have second resolution


async def test_adopts_orphans_and_releases_non_matching(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with running(rs_factory) as api:
            orphan = {"metadata": {"name": "stray", "labels": {"app": "web"}},
                      "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
            await api.create("Pod", orphan)
            rs = await api.create("ReplicaSet", replicaset(replicas=2))
            await until(api, lambda: len(pods(api, "app=web")) == 2)
            stray = api.get("Pod", "stray")
            assert stray["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]  # type: ignore[index]
            # relabel: released, and replaced
            stray["metadata"]["labels"] = {"app": "other"}  # type: ignore[index]
            await api.client.update(api.rt("Pod"), stray)  # type: ignore[arg-type]
            await until(api, lambda: len(pods(api, "app=web")) == 2
                        and not api.get("Pod", "stray")["metadata"].get("ownerReferences"))  # type: ignore[index]


VICTIM_CASES = [
    # (name, node, phase, ready, restarts) for 4 pods; scale 4 -> 1; the survivor is expected
    pytest.param(
        [
            ("a", "n1", "Running", True, 0),
            ("b", None, "Pending", False, 0),
            ("c", "n1", "Running", True, 0),
            ("d", "n1", "Pending", False, 0),
        ],
        2,
        {"a", "c"},
        id="unassigned-and-pending-first",
    ),
    pytest.param(
        [
            ("a", "n1", "Running", False, 0),
            ("b", "n1", "Running", True, 0),
            ("c", "n1", "Running", True, 5),
            ("d", "n1", "Running", True, 0),
        ],
        2,
        {"b", "d"},
        id="not-ready-then-restarts",
    ),
    pytest.param(
        [
            ("a", "n1", "Running", True, 0),
            ("b", "n1", "Running", True, 0),
            ("c", "n1", "Unknown", False, 0),
            ("d", "n1", "Pending", False, 0),
        ],
        2,
        {"a", "b"},
        id="pending-before-unknown",
    ),
]


@pytest.mark.parametrize(("spec_", "keep", "survivors"), VICTIM_CASES)
async def test_scale_down_victim_order(spec_: list[tuple[str, str | None, str, bool, int]], keep: int,
                                       survivors: set[str], autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with running(rs_factory) as api:
            for name, node, _, _, _ in spec_:
                body: Obj = {"metadata": {"name": name, "labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
                if node:
                    body["spec"]["nodeName"] = node
                await api.create("Pod", body)
            for name, _, phase, ready, restarts in spec_:
                if phase != "Pending":
                    await set_pod(api, name, phase=phase, ready=ready, restarts=restarts)
            await api.create("ReplicaSet", replicaset(replicas=len(spec_)))
            await until(api, lambda: all(p["metadata"].get("ownerReferences") for p in pods(api, "app=web")))
            await scale(api, "web", keep)
            await until(api, lambda: len(active(api, "app=web")) == keep)
            assert {p["metadata"]["name"] for p in active(api, "app=web")} == survivors
            await until(api, lambda: len(events(api, "SuccessfulDelete")) == len(spec_) - keep)


async def test_pod_deleted_is_replaced(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with running(rs_factory) as api:
            await api.create("ReplicaSet", replicaset(replicas=2))
            await until(api, lambda: len(pods(api, "app=web")) == 2)
            victim = pods(api, "app=web")[0]["metadata"]["name"]
            await api.client.delete(api.rt("Pod"), "default", victim)
            await until(
                api,
                lambda: (
                    len(pods(api, "app=web")) == 2
                    and victim not in {p["metadata"]["name"] for p in pods(api)}
                ),
            )


async def test_status_after_scale_down_does_not_count_the_victims(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A Deployment reads availableReplicas mid-rollout: the status written by the sync that deletes
    pods must not still count them as available, or an old ReplicaSet gets scaled down too far."""
    with trio.fail_after(60):
        async with running(rs_factory) as api:
            await api.create("ReplicaSet", replicaset(replicas=3))
            await until(api, lambda: len(pods(api, "app=web")) == 3)
            for p in pods(api, "app=web"):
                await set_pod(api, p["metadata"]["name"])
            await until(api, lambda: api.get("ReplicaSet", "web")["status"].get("availableReplicas") == 3)  # type: ignore[index]
            seen: list[tuple[int, int]] = []  # (observedGeneration, availableReplicas) of each status write
            _, rv = await api.client.list(api.rt("ReplicaSet"), "default")

            async def record(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                task_status.started()
                async for _, obj in api.client.watch(api.rt("ReplicaSet"), "default", resource_version=rv):
                    st = obj.get("status") or {}
                    seen.append((st.get("observedGeneration", 0), st.get("availableReplicas", 0)))

            async with trio.open_nursery() as nursery:
                await nursery.start(record)
                await scale(api, "web", 1)
                await until(api, lambda: len(active(api, "app=web")) == 1 and (2, 1) in seen)
                nursery.cancel_scope.cancel()
            scaled = [available for generation, available in seen if generation == 2]
            assert scaled and max(scaled) == 1, seen
