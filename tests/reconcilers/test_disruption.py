"""Disruption controller: PodDisruptionBudget status from the selected pods and their controllers'
scale, disruptedPods expiry and the stale DisruptionTarget reset on virtual time, and the eviction
API spending the budget the controller computed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.api.errors import TooManyRequests
from orchestra.api.request.eviction import evict
from orchestra.controller.clock import VIRTUAL_EPOCH
from orchestra.objects import format_time
from orchestra.reconcilers.disruption import DisruptionController
from tests.controller.harness import Api, owner_ref, pod
from tests.reconcilers.test_workloads_support import CLOCK, events, running, set_pod, until

Obj = dict[str, Any]


def controller(api: Api) -> DisruptionController:
    return DisruptionController(api.client, clock=CLOCK)


def template(app: str) -> Obj:
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def workload(
    api: Api, kind: str, replicas: int, pods: int, *, ready: int | None = None, app: str = "web"
) -> None:
    """A `kind` (Deployment -> ReplicaSet, ReplicaSet, StatefulSet, Job, or None for bare pods) with
    `pods` pods labelled app=<app>, the first `ready` of them Ready (no workload controller runs)."""
    body = {"selector": {"matchLabels": {"app": app}}, "template": template(app)}
    owner = None
    if kind in ("Deployment", "ReplicaSet", "StatefulSet"):
        owner = await api.create(kind, {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": app},
                                        "spec": {**body, "replicas": replicas,
                                                 **({"serviceName": app} if kind == "StatefulSet" else {})}})
    if kind == "Deployment":
        assert owner is not None
        owner = await api.create(
            "ReplicaSet",
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {"name": f"{app}-1", "ownerReferences": [owner_ref(owner)]},
                "spec": {**body, "replicas": replicas},
            },
        )
    if kind == "Job":
        owner = await api.create(
            "Job",
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": app},
                "spec": {
                    "template": {
                        **template(app),
                        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "b"}]},
                    }
                },
            },
        )
    for i in range(pods):
        await api.create(
            "Pod", pod(f"{app}-{i}", labels={"app": app}, owner=owner_ref(owner) if owner else None)
        )
        await set_pod(api, f"{app}-{i}", ready=i < (pods if ready is None else ready))


async def budget(api: Api, name: str = "web", **spec: Any) -> Obj:
    return await api.create(
        "PodDisruptionBudget",
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
        },
    )


def pdb_status(api: Api, name: str = "web") -> Obj:
    obj = api.get("PodDisruptionBudget", name)
    assert obj is not None
    return obj["status"]  # type: ignore[no-any-return]


def counts(api: Api, name: str = "web") -> tuple[int, int, int, int]:
    """(expectedPods, desiredHealthy, currentHealthy, disruptionsAllowed)."""
    st = pdb_status(api, name)
    return st["expectedPods"], st["desiredHealthy"], st["currentHealthy"], st["disruptionsAllowed"]


def synced(api: Api, name: str = "web") -> bool:
    obj = api.get("PodDisruptionBudget", name)
    return obj is not None and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]


def condition(api: Api, name: str = "web") -> Obj:
    (cond,) = pdb_status(api, name)["conditions"]
    return cond  # type: ignore[no-any-return]


async def test_new_budget_has_zero_status_then_the_controller_fills_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with running(controller) as api:
            await workload(api, "Deployment", replicas=3, pods=3)
            created = await budget(api, minAvailable=2)
            assert created["status"] == {
                "disruptionsAllowed": 0,
                "currentHealthy": 0,
                "desiredHealthy": 0,
                "expectedPods": 0,
            }
            assert created["metadata"]["generation"] == 1
            await until(api, lambda: synced(api))
            assert pdb_status(api) == {
                "observedGeneration": 1,
                "disruptionsAllowed": 1,
                "currentHealthy": 3,
                "desiredHealthy": 2,
                "expectedPods": 3,
                "conditions": [
                    {
                        "type": "DisruptionAllowed",
                        "status": "True",
                        "observedGeneration": 1,
                        "lastTransitionTime": format_time(VIRTUAL_EPOCH),
                        "reason": "SufficientPods",
                        "message": "",
                    }
                ],
            }
            await trio.sleep(30)
            await set_pod(api, "web-0", ready=False)  # one pod fails its readiness probe
            await until(api, lambda: counts(api)[2] == 2)
            assert counts(api) == (3, 2, 2, 0)
            cond = condition(api)
            assert (cond["status"], cond["reason"]) == ("False", "InsufficientPods")
            assert cond["lastTransitionTime"] == format_time(VIRTUAL_EPOCH + timedelta(seconds=30))


# (workload kind, replicas, pods, ready pods, budget spec) -> (expected, desired, healthy, allowed)
SCALE_CASES = [
    ("min-int-counts-pods", "Deployment", 5, 3, 3, {"minAvailable": 2}, (3, 2, 3, 1)),
    ("min-percent-deployment-scale", "Deployment", 4, 4, 4, {"minAvailable": "50%"}, (4, 2, 4, 2)),
    ("min-percent-rounds-up", "ReplicaSet", 3, 3, 3, {"minAvailable": "50%"}, (3, 2, 3, 1)),
    ("max-int-missing-pod", "Deployment", 4, 3, 3, {"maxUnavailable": 1}, (4, 3, 3, 0)),
    ("max-percent-statefulset", "StatefulSet", 3, 3, 3, {"maxUnavailable": "34%"}, (3, 1, 3, 2)),
    ("max-100-percent", "ReplicaSet", 2, 2, 1, {"maxUnavailable": "100%"}, (2, 0, 1, 1)),
    ("unmanaged-with-int", None, 0, 2, 2, {"minAvailable": 1}, (2, 1, 2, 1)),
    ("unmanaged-with-max", None, 0, 2, 2, {"maxUnavailable": 1}, (0, 0, 2, 0)),
    ("no-pods", None, 0, 0, 0, {"minAvailable": 1}, (0, 1, 0, 0)),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "replicas", "n", "ready", "spec", "expected"), [c[1:] for c in SCALE_CASES],
                         ids=[c[0] for c in SCALE_CASES])
async def test_expected_pods_from_controller_scale(
    autojump_clock: trio.testing.MockClock,
    kind: str | None,
    replicas: int,
    n: int,
    ready: int,
    spec: Obj,
    expected: tuple[int, ...],
) -> None:
    with trio.fail_after(60):
        async with running(controller) as api:
            await workload(api, kind or "", replicas, n, ready=ready)
            await budget(api, **spec)
            await until(api, lambda: synced(api))
            assert counts(api) == expected
            allowed = expected[3] > 0
            assert condition(api)["reason"] == ("SufficientPods" if allowed else "InsufficientPods")
            if kind is None and "maxUnavailable" in spec:
                await until(api, lambda: bool(events(api, "UnmanagedPods")))
                assert events(api, "UnmanagedPods")[0].startswith(
                    "Pods selected by this PodDisruptionBudget (selector: "
                    "&LabelSelector{MatchLabels:map[string]string{app: web,},"
                    "MatchExpressions:[]LabelSelectorRequirement{},}) were found to be unmanaged."
                )
            if n == 0:
                await until(api, lambda: events(api, "NoPods") == ["No matching pods found"])


async def test_controller_without_scale_fails_safe(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with running(controller) as api:
            await workload(api, "Job", 0, 2)
            await budget(api, minAvailable="50%")
            await until(api, lambda: bool(pdb_status(api).get("conditions")))
            st = pdb_status(api)
            assert st["disruptionsAllowed"] == 0 and "observedGeneration" not in st
            assert condition(api) == {
                "type": "DisruptionAllowed",
                "status": "False",
                "lastTransitionTime": format_time(VIRTUAL_EPOCH),
                "reason": "SyncFailed",
                "message": "jobs.batch does not implement the scale subresource",
            }
            await until(api, lambda: bool(events(api, "CalculateExpectedPodCountFailed")))
            # an integer minAvailable needs no scale: the budget recovers once the spec changes
            obj = api.get("PodDisruptionBudget", "web")
            assert obj is not None
            obj["spec"]["minAvailable"] = 1
            await api.client.update(api.rt("PodDisruptionBudget"), obj)
            await until(api, lambda: synced(api))
            assert counts(api) == (2, 1, 2, 1) and condition(api)["reason"] == "SufficientPods"


async def test_spec_change_bumps_generation_and_status_follows(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with running(controller) as api:
            await workload(api, "Deployment", replicas=3, pods=3)
            await budget(api, minAvailable=3)
            await until(api, lambda: synced(api))
            assert counts(api) == (3, 3, 3, 0)
            obj = api.get("PodDisruptionBudget", "web")
            assert obj is not None
            obj["spec"]["minAvailable"] = 1
            updated = await api.client.update(api.rt("PodDisruptionBudget"), obj)
            assert updated["metadata"]["generation"] == 2 and updated["status"]["observedGeneration"] == 1
            await until(api, lambda: synced(api))
            assert counts(api) == (3, 1, 3, 2) and pdb_status(api)["observedGeneration"] == 2


async def test_pod_label_change_resyncs_the_budget_it_left(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with running(controller) as api:
            await workload(api, None, 0, 2)  # type: ignore[arg-type]
            await budget(api, minAvailable=1)
            await until(api, lambda: synced(api) and counts(api) == (2, 1, 2, 1))
            p = api.get("Pod", "web-1")
            assert p is not None
            p["metadata"]["labels"] = {"app": "other"}
            await api.client.update(api.rt("Pod"), p)
            await until(api, lambda: counts(api) == (1, 1, 1, 0))


async def test_evicted_pods_are_not_healthy_until_the_timeout(autojump_clock: trio.testing.MockClock) -> None:
    """An eviction the API approved whose pod never goes away: the pod is left out of
    currentHealthy for 2 minutes, then its disruptedPods entry is dropped (and a NotDeleted event)."""
    with trio.fail_after(600):  # virtual seconds
        async with running(controller) as api:
            await workload(api, "Deployment", replicas=3, pods=3)
            await budget(api, maxUnavailable=1)
            await until(api, lambda: synced(api))
            assert counts(api) == (3, 2, 3, 1)
            obj = api.get("PodDisruptionBudget", "web")
            assert obj is not None
            start = trio.current_time()
            obj["status"]["disruptedPods"] = {"web-0": format_time(CLOCK())}
            obj["status"]["disruptionsAllowed"] = 0
            await api.client.update_status(api.rt("PodDisruptionBudget"), obj)
            await until(api, lambda: counts(api)[2] == 2)
            assert pdb_status(api)["disruptedPods"] == {
                "web-0": format_time(VIRTUAL_EPOCH + timedelta(seconds=start))
            }
            at = await until(api, lambda: "disruptedPods" not in pdb_status(api))
            assert at - start == pytest.approx(120, abs=1.0)
            assert counts(api) == (3, 2, 3, 1)
            await until(api, lambda: bool(events(api, "NotDeleted")))
            assert events(api, "NotDeleted") == [
                "Pod was expected by PDB default/default to be deleted but it wasn't"
            ]


async def test_stale_disruption_target_is_reset_after_two_minutes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(600):  # virtual seconds
        async with running(controller) as api:
            await workload(api, None, 0, 1)  # type: ignore[arg-type]
            p = api.get("Pod", "web-0")
            assert p is not None
            start = trio.current_time()
            p["status"]["conditions"].append(
                {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "EvictionByEvictionAPI",
                    "message": "Eviction API: evicting",
                    "lastTransitionTime": format_time(CLOCK()),
                }
            )
            await api.client.update_status(api.rt("Pod"), p)

            def target() -> Obj:
                cur = api.get("Pod", "web-0")
                assert cur is not None
                return next(c for c in cur["status"]["conditions"] if c["type"] == "DisruptionTarget")  # type: ignore[no-any-return]

            at = await until(api, lambda: target()["status"] == "False")
            assert at - start == pytest.approx(120, abs=1.0)
            assert target()["reason"] == "EvictionByEvictionAPI"


async def test_eviction_spends_the_budget_the_controller_computed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with running(controller) as api:
            await workload(api, "Deployment", replicas=3, pods=3)
            await budget(api, minAvailable=2)
            await until(api, lambda: synced(api) and counts(api) == (3, 2, 3, 1))
            await evict(
                api.core,
                "default",
                "web-0",
                {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-0"}},
                now=lambda: format_time(CLOCK()),
            )
            assert api.get("Pod", "web-0") is None
            assert (
                pdb_status(api)["disruptionsAllowed"] == 0
            )  # spent (api-level details: tests/api/test_eviction.py)
            # the controller sees web-0 gone: its disruptedPods entry goes, the budget stays at its edge
            await until(api, lambda: "disruptedPods" not in pdb_status(api) and counts(api) == (2, 2, 2, 0))
            with pytest.raises(TooManyRequests) as err:
                await evict(api.core, "default", "web-1", {"metadata": {"name": "web-1"}})
            assert (
                err.value.causes[0].message
                == "The disruption budget web needs 2 healthy pods and has 2 currently"
            )
            assert api.get("Pod", "web-1") is not None
