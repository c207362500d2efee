"""DaemonSet controller: a pod per eligible node, tolerations, rolling update."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from orchestra.reconcilers.workloads.daemonset import DaemonSetController, should_run, target_node
from tests.controller.harness import Api
from tests.reconcilers.test_workloads_support import CLOCK, FakeKubelet, active, running, until

Obj = dict[str, Any]


def factories() -> list[Any]:
    return [lambda api: DaemonSetController(api.client, clock=CLOCK), lambda api: FakeKubelet(api, delay=1)]


def node(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def ds(**pod_spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "c", "image": "v1"}], **pod_spec}}}}


def placed(api: Api) -> dict[str, str]:
    return {target_node(p) or "": p["spec"]["containers"][0]["image"] for p in active(api, "app=agent")}


async def test_one_pod_per_eligible_node_with_tolerations(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(*factories()) as api:
            await api.create("Node", node("n1", {"disk": "ssd"}), None)
            await api.create("Node", node("n2", {"disk": "hdd"}), None)
            await api.create(
                "Node",
                node("n3", {"disk": "ssd"}, [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]),
                None,
            )
            await api.create(
                "Node",
                node(
                    "n4",
                    {"disk": "ssd"},
                    [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
                ),
                None,
            )
            await api.create("DaemonSet", ds(nodeSelector={"disk": "ssd"}))
            await until(api, lambda: set(placed(api)) == {"n1", "n4"})
            pod = active(api, "app=agent")[0]
            keys = {t["key"] for t in pod["spec"]["tolerations"]}
            assert {
                "node.kubernetes.io/not-ready",
                "node.kubernetes.io/unreachable",
                "node.kubernetes.io/disk-pressure",
                "node.kubernetes.io/memory-pressure",
                "node.kubernetes.io/pid-pressure",
                "node.kubernetes.io/unschedulable",
            } <= keys
            term = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
                "nodeSelectorTerms"
            ][0]
            assert term["matchFields"][0]["key"] == "metadata.name"
            assert pod["metadata"]["labels"]["controller-revision-hash"]

            def st() -> Obj:
                return api.get("DaemonSet", "agent").get("status", {})  # type: ignore[union-attr]

            await until(api, lambda: st().get("numberReady") == 2)
            assert st()["desiredNumberScheduled"] == 2 and st()["currentNumberScheduled"] == 2
            assert st()["numberMisscheduled"] == 0 and st()["updatedNumberScheduled"] == 2
            # a new eligible node gets a pod
            await api.create("Node", node("n5", {"disk": "ssd"}), None)
            await until(api, lambda: set(placed(api)) == {"n1", "n4", "n5"})


async def test_rolling_update_max_unavailable(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(*factories()) as api:
            for i in range(4):
                await api.create("Node", node(f"n{i}"), None)
            await api.create("DaemonSet", ds())
            await until(
                api, lambda: api.get("DaemonSet", "agent").get("status", {}).get("numberAvailable") == 4
            )  # type: ignore[union-attr]
            d = api.get("DaemonSet", "agent")
            d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"  # type: ignore[index]
            await api.client.update(api.rt("DaemonSet"), d)  # type: ignore[arg-type]
            while not (len(placed(api)) == 4 and set(placed(api).values()) == {"v2"}):
                ready = [
                    p
                    for p in active(api, "app=agent")
                    if any(
                        c["type"] == "Ready" and c["status"] == "True"
                        for c in p.get("status", {}).get("conditions", [])
                    )
                ]
                assert len(ready) >= 3  # maxUnavailable 1
                async with api.store.watch("", start_revision=api.store.revision + 1) as changes:
                    await trio.testing.wait_all_tasks_blocked()
                    if len(placed(api)) == 4 and set(placed(api).values()) == {"v2"}:
                        break
                    await changes.__anext__()


async def test_controller_revisions_follow_the_template_and_are_pruned(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def revisions() -> dict[str, int]:
        return {r["metadata"]["name"]: r["revision"] for r in api.list("ControllerRevision", "default")}

    async def set_image(image: str) -> None:
        d = api.get("DaemonSet", "agent")
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image  # type: ignore[index]
        await api.client.update(api.rt("DaemonSet"), d)  # type: ignore[arg-type]
        await until(api, lambda: set(placed(api).values()) == {image})

    with trio.fail_after(600):
        async with running(*factories()) as api:
            await api.create("Node", node("n1"), None)
            d = ds()
            d["spec"]["revisionHistoryLimit"] = 1
            d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "first"}
            await api.create("DaemonSet", d)
            await until(api, lambda: len(revisions()) == 1 and bool(placed(api)))
            (rev,) = api.list("ControllerRevision", "default")
            pod_hash = active(api, "app=agent")[0]["metadata"]["labels"]["controller-revision-hash"]
            assert rev["metadata"]["name"] == f"agent-{pod_hash}" and rev["revision"] == 1
            assert rev["metadata"]["annotations"]["kubernetes.io/change-cause"] == "first"
            assert rev["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == "v1"
            first = rev["metadata"]["name"]
            await set_image("v2")
            await until(api, lambda: len(revisions()) == 2)
            assert revisions()[first] == 1 and max(revisions().values()) == 2
            await set_image("v1")  # an undo: the first revision is re-numbered, nothing is added
            await until(api, lambda: revisions().get(first) == 3)
            await set_image("v3")  # limit 1: of the two old revisions, the older one goes
            await until(api, lambda: len(revisions()) == 2 and max(revisions().values()) == 4)
            assert revisions()[first] == 3


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        ({"key": "dedicated", "operator": "Equal", "value": None, "effect": "NoSchedule"},
         {"key": "dedicated", "effect": "NoSchedule"}, (True, True)),
        ({"key": "dedicated", "operator": "Equal", "value": None, "effect": "NoExecute"},
         {"key": "dedicated", "value": "x", "effect": "NoExecute"}, (False, False)),
        ({"key": "dedicated", "operator": "Exists"},
         {"key": "dedicated", "value": "x", "effect": "NoExecute"}, (True, True)),
    ],
    ids=["null-value-is-empty", "null-value-other-value", "exists"],
)
def test_should_run_matches_tolerations_like_kube(
    toleration: Obj, taint: Obj, expected: tuple[bool, bool]
) -> None:
    # kube decodes `value: null` as "": the toleration tolerates a taint without a value (as the scheduler
    # does)
    assert should_run({"tolerations": [toleration]}, node("n1", taints=[taint])) == expected
