"""Scheduler behaviour: binding and events, retries on cluster changes, scoring, spreading,
preemption and assumed pods — against the real store, API core and LocalClient."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.reconcilers.scheduler import num_feasible_to_find
from orchestra.reconcilers.scheduler.podinfo import PodInfo, pod_requests
from orchestra.reconcilers.scheduler.queue import SchedulingQueue
from tests.controller.harness import make_api, wait_for
from tests.reconcilers.test_scheduler_helpers import (
    add_nodes,
    add_priority_classes,
    events,
    node,
    node_of,
    running,
    scheduled_condition,
    spod,
    wait_bound,
    wait_unschedulable,
)

Obj = dict[str, Any]


async def test_binds_and_records_scheduled_event(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        await add_nodes(api, node("a"))
        async with running(api) as scheduler:
            await api.create("Pod", spod("web", cpu="100m"))
            await wait_bound(api, "web")
            assert node_of(api, "web") == "a"
            assert (scheduled_condition(api, "web") or {}).get("status") == "True"
            await wait_for(api, lambda: bool(events(api, "Scheduled", "web")))
            (event,) = events(api, "Scheduled", "web")
            assert event["type"] == "Normal"
            assert event["message"] == "Successfully assigned default/web to a"
            assert event["source"]["component"] == "default-scheduler"
            stats = scheduler.statistics()
            assert (stats.scheduled, stats.attempts, stats.nodes, stats.pods) == (1, 1, 1, 1)
            assert stats.queue.active == stats.queue.unschedulable == 0


async def test_ignores_other_schedulers_and_bound_pods(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        await add_nodes(api, node("a"))
        async with running(api) as scheduler:
            await api.create("Pod", spod("mine", schedulerName="my-scheduler"))
            await api.create("Pod", spod("preset", node_name="a", cpu="1"))
            await trio.testing.wait_all_tasks_blocked()
            await trio.sleep(5)
            assert node_of(api, "mine") is None
            assert scheduler.statistics().attempts == 0
            assert scheduler.cache.nodes["a"].req_cpu == 1000


async def test_pending_pod_scheduled_when_node_added(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        api = await make_api()
        await add_nodes(api, node("small", cpu="1"))
        async with running(api):
            await api.create("Pod", spod("big", cpu="3"))
            cond = await wait_unschedulable(api, "big")
            assert cond["message"].startswith("0/1 nodes are available: 1 Insufficient cpu.")
            await trio.sleep(30)  # parked: nothing changes, so no retry is needed
            added = trio.current_time()
            await add_nodes(api, node("large", cpu="8"))
            bound_at = await wait_bound(api, "big")
            assert node_of(api, "big") == "large"
            assert bound_at - added < 0.01  # the NodeAdd event moved it at once (its backoff had expired)


async def test_no_nodes_is_a_scheduler_error_retried_with_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(120):
        api = await make_api()
        async with running(api):
            await api.create("Pod", spod("p"))
            cond = await wait_unschedulable(api, "p")
            assert (cond["reason"], cond["message"]) == (
                "SchedulerError",
                "no nodes available to schedule pods",
            )
            await add_nodes(api, node("a"))
            await wait_bound(api, "p")


async def test_pod_deletion_frees_resources_for_pending_pod(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        api = await make_api()
        await add_nodes(api, node("a", cpu="2"))
        await api.create("Pod", spod("old", cpu="2", node_name="a"))
        async with running(api):
            await api.create("Pod", spod("new", cpu="2"))
            await wait_unschedulable(api, "new")
            await api.client.delete(api.rt("Pod"), "default", "old", grace_period_seconds=0)
            await wait_bound(api, "new")


async def test_deleted_pending_pod_leaves_the_queue(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        await add_nodes(api, node("a", cpu="1"))
        async with running(api) as scheduler:
            await api.create("Pod", spod("big", cpu="2"))
            await wait_unschedulable(api, "big")
            assert scheduler.statistics().queue.unschedulable == 1
            await api.client.delete(api.rt("Pod"), "default", "big")
            await wait_for(api, lambda: api.get("Pod", "big") is None)
            await trio.testing.wait_all_tasks_blocked()
            stats = scheduler.statistics()
            assert (stats.queue.active, stats.queue.backoff, stats.queue.unschedulable) == (0, 0, 0)
            assert (stats.attempts, stats.unschedulable, stats.scheduled) == (1, 1, 0)


async def test_least_allocated_spreads_a_burst(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        await add_nodes(api, node("a"), node("b"), node("c"))
        async with running(api):
            for i in range(6):
                await api.create("Pod", spod(f"p{i}", cpu="1", memory="1Gi"))
            await wait_bound(api, *(f"p{i}" for i in range(6)))
        assert Counter(node_of(api, f"p{i}") for i in range(6)) == {"a": 2, "b": 2, "c": 2}


async def test_least_allocated_prefers_the_emptier_node(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        await add_nodes(api, node("busy"), node("idle"))
        await api.create("Pod", spod("load", cpu="3", memory="6Gi", node_name="busy"))
        async with running(api):
            await api.create("Pod", spod("p", cpu="500m", memory="512Mi"))
            await wait_bound(api, "p")
        assert node_of(api, "p") == "idle"


async def test_preferred_node_affinity_wins(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        await add_nodes(api, node("a"), node("b", labels={"disk": "ssd"}), node("c"))
        affinity = {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 50,
                        "preference": {
                            "matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]
                        },
                    }
                ]
            }
        }
        async with running(api):
            for i in range(3):
                await api.create("Pod", spod(f"p{i}", cpu="100m", affinity=affinity))
            await wait_bound(api, "p0", "p1", "p2")
        assert {node_of(api, f"p{i}") for i in range(3)} == {"b"}


async def test_prefer_no_schedule_taint_is_avoided(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        await add_nodes(
            api,
            node("tainted", taints=[{"key": "spot", "value": "yes", "effect": "PreferNoSchedule"}]),
            node("clean"),
        )
        async with running(api):
            await api.create("Pod", spod("p", cpu="100m"))
            await wait_bound(api, "p")
        assert node_of(api, "p") == "clean"


async def test_preferred_pod_affinity_co_locates(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        await add_nodes(api, node("a"), node("b"), node("c"))
        await api.create("Pod", spod("cache", labels={"app": "cache"}, node_name="c", cpu="1"))
        affinity = {
            "podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": {"app": "cache"}},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        }
        async with running(api):
            await api.create("Pod", spod("web", cpu="100m", affinity=affinity))
            await wait_bound(api, "web")
        assert node_of(api, "web") == "c"


async def test_topology_spread_across_zones(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        zones = {"a1": "z1", "a2": "z1", "a3": "z1", "b1": "z2"}
        await add_nodes(api, *(node(n, labels={"topology.kubernetes.io/zone": z}) for n, z in zones.items()))
        constraint = {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}},
        }
        async with running(api):
            for i in range(6):
                await api.create("Pod", spod(f"w{i}", labels={"app": "web"}, cpu="100m",
                                             topologySpreadConstraints=[constraint]))
            await wait_bound(api, *(f"w{i}" for i in range(6)))
        per_zone = Counter(zones[node_of(api, f"w{i}") or ""] for i in range(6))
        assert per_zone == {"z1": 3, "z2": 3}  # 3 nodes in z1 but one in z2: the skew still holds


async def test_soft_topology_spread_prefers_the_emptier_zone(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        await add_nodes(api, node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"}))
        await api.create("Pod", spod("x", labels={"app": "web"}, node_name="a"))
        constraint = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
                      "labelSelector": {"matchLabels": {"app": "web"}}}
        async with running(api):
            await api.create("Pod", spod("y", labels={"app": "web"}, topologySpreadConstraints=[constraint]))
            await wait_bound(api, "y")
        assert node_of(api, "y") == "b"


@pytest.mark.parametrize("belongs_to", ["ReplicaSet", "StatefulSet", "Service", None])
async def test_system_default_spreading(
    autojump_clock: trio.testing.MockClock, belongs_to: str | None
) -> None:
    """kube's System default constraints (hostname maxSkew 3, zone maxSkew 5, ScheduleAnyway) spread the
    pods of a ReplicaSet, StatefulSet or Service over every node even when LeastAllocated alone would
    leave a busier node out; a pod that belongs to none of them is not spread."""
    with trio.fail_after(60):
        api = await make_api()
        await add_nodes(api, node("a"), node("b"), node("c"))
        await api.create("Pod", spod("load", labels={"app": "load"}, node_name="a", cpu="1", memory="2Gi"))
        owner: list[Obj] = []
        if belongs_to == "Service":
            await api.create("Service", {"metadata": {"name": "web"},
                                         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
        elif belongs_to is not None:
            spec: Obj = {"selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}}, "spec": spod("t")["spec"]}}
            if belongs_to == "StatefulSet":
                spec["serviceName"] = "web"
            created = await api.create(belongs_to, {"metadata": {"name": "web"}, "spec": spec})
            owner = [
                {
                    "apiVersion": "apps/v1",
                    "kind": belongs_to,
                    "name": "web",
                    "uid": created["metadata"]["uid"],
                    "controller": True,
                }
            ]
        async with running(api):
            for i in range(6):
                pod = spod(f"w{i}", labels={"app": "web"})
                pod["metadata"]["ownerReferences"] = owner
                await api.create("Pod", pod)
            await wait_bound(api, *(f"w{i}" for i in range(6)))
        per_node = Counter(node_of(api, f"w{i}") for i in range(6))
        if belongs_to is None:
            assert per_node["a"] == 0  # LeastAllocated alone: the loaded node gets nothing
        else:
            assert per_node == {"a": 2, "b": 2, "c": 2}


async def test_anti_affinity_spreads_replicas(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        await add_nodes(api, node("a"), node("b"), node("c"))
        anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}
        async with running(api):
            for i in range(4):
                await api.create("Pod", spod(f"db{i}", labels={"app": "db"}, affinity=anti))
            await wait_bound(api, "db0", "db1", "db2")
            cond = await wait_unschedulable(api, "db3")
        assert {node_of(api, f"db{i}") for i in range(3)} == {"a", "b", "c"}
        assert cond["message"] == (
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. "
            "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
        )


async def test_preemption_of_a_lower_priority_pod(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        api = await make_api()
        await add_nodes(api, node("a", cpu="2"))
        await add_priority_classes(api, p1=1, p5=5, p10=10)
        async with running(api) as scheduler:
            await api.create("Pod", spod("low", cpu="1500m", priorityClassName="p1"))
            await api.create("Pod", spod("mid", cpu="500m", priorityClassName="p5"))
            await wait_bound(api, "low", "mid")
            preemptor = await api.create("Pod", spod("high", cpu="1", priorityClassName="p10"))
            await wait_for(
                api, lambda: bool((api.get("Pod", "low") or {}).get("metadata", {}).get("deletionTimestamp"))
            )
            low = api.get("Pod", "low")
            assert low is not None
            assert any(c["type"] == "DisruptionTarget" and c["reason"] == "PreemptionByScheduler"
                       for c in low["status"]["conditions"])
            assert (
                not (api.get("Pod", "mid") or {}).get("metadata", {}).get("deletionTimestamp")
            )  # minimal victims
            await wait_for(
                api, lambda: (api.get("Pod", "high") or {}).get("status", {}).get("nominatedNodeName") == "a"
            )
            cond = await wait_unschedulable(api, "high")
            assert cond["message"] == "0/1 nodes are available: 1 Insufficient cpu."
            await wait_for(api, lambda: bool(events(api, "Preempted", "low")))
            assert (
                events(api, "Preempted", "low")[0]["message"]
                == f"Preempted by pod {preemptor['metadata']['uid']} on node a"
            )
            # while the victim terminates, a lower-priority pod must not take the nominated room
            await api.create("Pod", spod("sneaky", cpu="1", priorityClassName="p1"))
            await wait_unschedulable(api, "sneaky")
            await api.client.delete(
                api.rt("Pod"), "default", "low", grace_period_seconds=0
            )  # the kubelet finishes
            await wait_bound(api, "high")
            assert node_of(api, "high") == "a"
            assert node_of(api, "sneaky") is None
            assert scheduler.statistics().preemptions == 1


async def test_assumed_pods_prevent_overcommit_in_a_burst(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        await add_nodes(api, node("a", cpu="2"))
        async with running(api) as scheduler:
            async with trio.open_nursery() as burst:  # created together: binds overlap the next decisions
                for i in range(3):
                    burst.start_soon(api.create, "Pod", spod(f"p{i}", cpu="1"))
            names = [f"p{i}" for i in range(3)]
            await wait_for(
                api,
                lambda: (
                    sum(1 for n in names if node_of(api, n)) == 2
                    and sum(1 for n in names if (scheduled_condition(api, n) or {}).get("status") == "False")
                    == 1
                ),
            )
            await trio.sleep(30)
            assert sum(1 for n in names if node_of(api, n)) == 2
            assert scheduler.cache.nodes["a"].req_cpu == 2000
            assert not scheduler.cache.assumed


# --- units ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("nodes", "want"), [(1, 1), (99, 99), (100, 100), (200, 100), (1000, 420),
                                             (5000, 500), (6000, 300), (100_000, 5000)])
def test_num_feasible_nodes_to_find(nodes: int, want: int) -> None:
    assert num_feasible_to_find(nodes) == want


def test_pod_requests_follow_kube_rules() -> None:
    spec = {
        "containers": [{"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}, {"resources": {}}],
        "initContainers": [
            {"resources": {"requests": {"cpu": "1"}}},
            {"restartPolicy": "Always", "resources": {"requests": {"cpu": "200m", "memory": "1Gi"}}},
        ],
        "overhead": {"cpu": "10m"},
    }
    assert pod_requests(spec) == {"cpu": 1010, "memory": 64 * 2**20 + 2**30}
    # the non-zero variant gives a container without requests 100m / 200Mi
    assert pod_requests({"containers": [{}]}, non_zero=True) == {"cpu": 100, "memory": 200 * 2**20}


def _info(name: str, priority: int = 0) -> PodInfo:
    return PodInfo.from_pod({"metadata": {"name": name, "namespace": "default"},
                             "spec": {"containers": [], "priority": priority}})


async def test_queue_backoff_doubles_to_ten_seconds(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        queue = SchedulingQueue()
        queue.add(_info("p"))
        qp = await queue.pop()
        waits = []
        for _ in range(5):
            failed = trio.current_time()
            queue.error(qp)
            assert queue.statistics().backoff == 1
            qp = await queue.pop()
            waits.append(round(trio.current_time() - failed, 6))
        assert waits == [1.0, 2.0, 4.0, 8.0, 10.0]


async def test_queue_orders_by_priority_then_time(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        queue = SchedulingQueue()
        queue.add(_info("low", 1))
        await trio.sleep(1)
        queue.add(_info("high-late", 100))
        queue.add(_info("low-late", 1))
        queue.add(_info("high-later", 100))
        order = [(await queue.pop()).info.name for _ in range(4)]
        assert order == ["high-late", "high-later", "low", "low-late"]


async def test_queue_parks_unschedulable_pods_until_a_helpful_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(600):
        queue = SchedulingQueue()
        queue.add(_info("p"))
        qp = await queue.pop()
        queue.unschedulable(qp, frozenset({"NodeResourcesFit"}))
        assert queue.statistics().unschedulable == 1
        with trio.move_on_after(100):
            await queue.pop()
            pytest.fail("a parked pod must wait for an event")
        assert queue.move_all({"InterPodAffinity"}) == 0  # cannot help a resource failure
        assert queue.move_all() == 1
        qp = await queue.pop()
        queue.move_all()  # the cluster changed while the pod was being tried ...
        failed = trio.current_time()
        queue.unschedulable(qp, frozenset({"NodeResourcesFit"}))
        assert queue.statistics().unschedulable == 0  # ... so it is retried after its backoff, not parked
        await queue.pop()
        assert trio.current_time() - failed == pytest.approx(2.0)


async def test_queue_flushes_pods_parked_for_five_minutes(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        queue = SchedulingQueue()
        queue.add(_info("p"))
        qp = await queue.pop()
        parked = trio.current_time()
        queue.unschedulable(qp, frozenset({"NodeAffinity"}))
        await queue.pop()
        assert 300.0 <= trio.current_time() - parked <= 330.0
