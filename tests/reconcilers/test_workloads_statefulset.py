"""StatefulSet controller: ordered creation, reverse scale-down, rolling update with partition."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from orchestra.reconcilers.workloads.statefulset import StatefulSetController
from tests.controller.harness import Api
from tests.reconcilers.test_workloads_support import CLOCK, FakeKubelet, active, events, running, until

Obj = dict[str, Any]


def sts(replicas: int = 3, policy: str = "OrderedReady", partition: int = 0) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"replicas": replicas, "serviceName": "db", "podManagementPolicy": policy,
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}},
                     "selector": {"matchLabels": {"app": "db"}},
                     "template": {"metadata": {"labels": {"app": "db"}},
                                  "spec": {"containers": [{"name": "c", "image": "v1"}]}}}}


def factories(delay: float = 5.0) -> list[Any]:
    return [
        lambda api: StatefulSetController(api.client, clock=CLOCK),
        lambda api: FakeKubelet(api, delay=delay),
    ]


def names(api: Api) -> list[str]:
    return [p["metadata"]["name"] for p in active(api, "app=db")]


async def test_ordered_ready_creation_and_reverse_scale_down(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(*factories()) as api:
            t0 = trio.current_time()
            await api.create("StatefulSet", sts(3))
            times = []
            for i in range(3):
                times.append(await until(api, lambda i=i: len(names(api)) == i + 1))
                assert names(api) == [f"db-{j}" for j in range(i + 1)]
            # each ordinal waits for the previous one to be Running and Ready (5 s fake kubelet)
            assert [round(t - t0) for t in times] == [0, 5, 10]
            p1 = api.get("Pod", "db-1")
            assert p1["spec"]["hostname"] == "db-1" and p1["spec"]["subdomain"] == "db"  # type: ignore[index]
            assert p1["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-1"  # type: ignore[index]
            await until(api, lambda: api.get("StatefulSet", "db").get("status", {}).get("readyReplicas") == 3)  # type: ignore[union-attr]
            s = api.get("StatefulSet", "db")
            s["spec"]["replicas"] = 1  # type: ignore[index]
            await api.client.update(api.rt("StatefulSet"), s)  # type: ignore[arg-type]
            await until(api, lambda: names(api) == ["db-0"])
            await until(api, lambda: len(events(api, "SuccessfulDelete")) == 2)
            assert events(api, "SuccessfulDelete") == ["Deleted pod: db-2", "Deleted pod: db-1"]


async def test_parallel_creates_all(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(*factories()) as api:
            await api.create("StatefulSet", sts(3, policy="Parallel"))
            t0 = trio.current_time()
            t = await until(api, lambda: len(names(api)) == 3)
            assert t - t0 < 1


async def test_rolling_update_reverse_with_partition(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(*factories(delay=1)) as api:
            await api.create("StatefulSet", sts(3, partition=1))
            await until(api, lambda: api.get("StatefulSet", "db").get("status", {}).get("readyReplicas") == 3)  # type: ignore[union-attr]
            s = api.get("StatefulSet", "db")
            first_rev = s["status"]["updateRevision"]  # type: ignore[index]
            s["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"  # type: ignore[index]
            await api.client.update(api.rt("StatefulSet"), s)  # type: ignore[arg-type]

            def images() -> dict[str, str]:
                return {
                    p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in active(api, "app=db")
                }

            await until(api, lambda: images() == {"db-0": "v1", "db-1": "v2", "db-2": "v2"}
                        and api.get("StatefulSet", "db")["status"].get("updatedReplicas") == 2)  # type: ignore[index]
            st = api.get("StatefulSet", "db")["status"]  # type: ignore[index]
            assert st["currentRevision"] == first_rev and st["updateRevision"] != first_rev
            assert st["currentReplicas"] == 1


def revisions(api: Api) -> dict[str, int]:
    return {r["metadata"]["name"]: r["revision"] for r in api.list("ControllerRevision", "default")}


async def test_revisions_and_a_pod_below_the_partition_keeps_the_current_template(
        autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(*factories(delay=1)) as api:
            await api.create("StatefulSet", sts(3, partition=2))
            await until(api, lambda: api.get("StatefulSet", "db").get("status", {}).get("readyReplicas") == 3)  # type: ignore[union-attr]
            s = api.get("StatefulSet", "db")
            v1 = s["status"]["currentRevision"]  # type: ignore[index]
            assert revisions(api) == {v1: 1}
            (rev,) = api.list("ControllerRevision", "default")
            assert rev["data"]["spec"]["template"]["$patch"] == "replace"
            assert rev["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
            assert rev["metadata"]["labels"]["app"] == "db"
            s["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"  # type: ignore[index]
            await api.client.update(api.rt("StatefulSet"), s)  # type: ignore[arg-type]
            await until(api, lambda: len(revisions(api)) == 2 and images(api).get("db-2") == "v2")
            v2 = api.get("StatefulSet", "db")["status"]["updateRevision"]  # type: ignore[index]
            assert revisions(api) == {v1: 1, v2: 2}
            # db-0 fails and is recreated: below the partition it gets the current revision (v1)
            await api.client.delete(api.rt("Pod"), "default", "db-0", grace_period_seconds=0)
            await until(api, lambda: images(api).get("db-0") == "v1")
            assert api.get("Pod", "db-0")["metadata"]["labels"]["controller-revision-hash"] == v1  # type: ignore[index]
            # back to v1 (what rollout undo does): the old revision is re-numbered, none is added
            s = api.get("StatefulSet", "db")
            s["spec"]["template"]["spec"]["containers"][0]["image"] = "v1"  # type: ignore[index]
            await api.client.update(api.rt("StatefulSet"), s)  # type: ignore[arg-type]
            await until(api, lambda: revisions(api) == {v1: 3, v2: 2})


def images(api: Api) -> dict[str, str]:
    return {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in active(api, "app=db")}
