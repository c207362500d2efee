"""Deployment controller: rollouts within surge/unavailable bounds, rollout status, undo, pause,
progress deadline — with the ReplicaSet controller and a fake kubelet, under the virtual clock."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from orchestra.reconcilers.workloads.deployment import DeploymentController
from orchestra.reconcilers.workloads.replicaset import ReplicaSetController
from tests.controller.harness import Api
from tests.reconcilers.test_workloads_support import CLOCK, FakeKubelet, active, events, running, until

Obj = dict[str, Any]


def controllers(kubelet_delay: float | None = 1.0) -> list[Any]:
    out: list[Any] = [lambda api: ReplicaSetController(api.client, clock=CLOCK),
                      lambda api: DeploymentController(api.client, clock=CLOCK)]
    if kubelet_delay is not None:
        out.append(lambda api: FakeKubelet(api, delay=kubelet_delay))
    return out


def deployment(name: str = "web", replicas: int = 4, image: str = "v1", **strategy: Any) -> Obj:
    obj: Obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{"name": "c", "image": image}]}}}}
    if strategy:
        obj["spec"]["strategy"] = strategy
    return obj


def rollout_status(api: Api, name: str = "web") -> str:
    """kubectl 1.32's rollout status rule (polymorphichelpers/rollout_status.go)."""
    d = api.get("Deployment", name)
    assert d is not None
    st, n = d.get("status", {}), d["spec"]["replicas"]
    if d["metadata"]["generation"] > st.get("observedGeneration", 0):
        return "waiting-spec"
    for c in st.get("conditions", []):
        if c["type"] == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return "deadline"
    if st.get("updatedReplicas", 0) < n:
        return "updating"
    if st.get("replicas", 0) > st.get("updatedReplicas", 0):
        return "old-pending"
    if st.get("availableReplicas", 0) < st.get("updatedReplicas", 0):
        return "unavailable"
    return "done"


async def patch_template(api: Api, name: str, **changes: Any) -> None:
    d = api.get("Deployment", name)
    assert d is not None
    if "image" in changes:
        d["spec"]["template"]["spec"]["containers"][0]["image"] = changes["image"]
    if "annotations" in changes:
        d["spec"]["template"]["metadata"]["annotations"] = changes["annotations"]
    if "paused" in changes:
        d["spec"]["paused"] = changes["paused"]
    if "replicas" in changes:
        d["spec"]["replicas"] = changes["replicas"]
    await api.client.update(api.rt("Deployment"), d)


def rss(api: Api, name: str = "web") -> dict[str, Obj]:
    return {r["metadata"]["name"]: r for r in api.list("ReplicaSet", "default")
            if r["metadata"].get("labels", {}).get("app") == name}


def new_rs(api: Api, image: str) -> Obj | None:
    for r in rss(api).values():
        if r["spec"]["template"]["spec"]["containers"][0]["image"] == image:
            return r
    return None


async def test_initial_rollout_completes_and_status_is_right(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        async with running(*controllers()) as api:
            await api.create("Deployment", deployment(replicas=3))
            await until(api, lambda: rollout_status(api) == "done")
            d = api.get("Deployment", "web")
            assert d is not None
            st = d["status"]
            assert (
                st["replicas"] == st["updatedReplicas"] == st["readyReplicas"] == st["availableReplicas"] == 3
            )
            assert st.get("unavailableReplicas") == 0 and st["observedGeneration"] == 1
            conds = {c["type"]: c for c in st["conditions"]}
            assert conds["Available"]["reason"] == "MinimumReplicasAvailable"
            assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
            (rs,) = rss(api).values()
            h = rs["metadata"]["labels"]["pod-template-hash"]
            assert rs["metadata"]["name"] == f"web-{h}" and 1 <= len(h) <= 10
            assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
            assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"
            assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "4"
            assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
            assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
            assert all(p["metadata"]["labels"]["pod-template-hash"] == h for p in active(api, "app=web"))
            await until(
                api, lambda: f"Scaled up replica set web-{h} to 3 from 0" in events(api, "ScalingReplicaSet")
            )


SURGE_CASES = [
    pytest.param(4, 1, 0, id="surge1-unavail0"),
    pytest.param(4, 0, 1, id="surge0-unavail1"),
    pytest.param(10, "25%", "25%", id="defaults-25pct"),
    pytest.param(5, "30%", "30%", id="pct-rounding"),  # surge ceil(1.5)=2, unavailable floor(1.5)=1
    pytest.param(3, "0%", "10%", id="both-round-to-zero-means-unavailable-1"),
]


@pytest.mark.parametrize(("n", "surge", "unavail"), SURGE_CASES)
async def test_rolling_update_honours_surge_and_unavailable(n: int, surge: Any, unavail: Any,
                                                            autojump_clock: trio.testing.MockClock) -> None:
    from orchestra.objects import scaled_value
    max_surge = scaled_value(surge, n, round_up=True)
    max_unavail = scaled_value(unavail, n, round_up=False)
    if max_surge == 0 and max_unavail == 0:
        max_unavail = 1
    with trio.fail_after(600):
        async with running(*controllers()) as api:
            strategy = {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavail},
            }
            await api.create("Deployment", deployment(replicas=n, **strategy))
            await until(api, lambda: rollout_status(api) == "done")
            await patch_template(api, "web", image="v2")
            seen_max_total = 0
            seen_min_ready = n
            with trio.fail_after(500):
                while rollout_status(api) != "done" or any(
                        p["spec"]["containers"][0]["image"] == "v1" for p in active(api, "app=web")):
                    pods_ = active(api, "app=web")
                    ready = sum(1 for p in pods_ if any(c["type"] == "Ready" and c["status"] == "True"
                                                        for c in p.get("status", {}).get("conditions", [])))
                    # pods are counted from the API: terminating ones are removed at once by the fake kubelet
                    seen_max_total = max(seen_max_total, len(pods_))
                    seen_min_ready = min(seen_min_ready, ready)
                    assert len(pods_) <= n + max_surge, (len(pods_), n, max_surge)
                    assert ready >= n - max_unavail, (ready, n, max_unavail)
                    async with api.store.watch("", start_revision=api.store.revision + 1) as changes:
                        await trio.testing.wait_all_tasks_blocked()
                        if rollout_status(api) == "done":
                            continue
                        await changes.__anext__()
            assert all(p["spec"]["containers"][0]["image"] == "v2" for p in active(api, "app=web"))
            assert len(active(api, "app=web")) == n
            v1 = new_rs(api, "v1")
            assert v1 is not None and v1["spec"]["replicas"] == 0
            assert seen_max_total == n + max_surge or max_surge == 0


async def test_undo_by_template_change_reuses_old_rs(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(*controllers()) as api:
            await api.create("Deployment", deployment(replicas=2))
            await until(api, lambda: rollout_status(api) == "done")
            await patch_template(api, "web", image="v2")
            await until(api, lambda: rollout_status(api) == "done" and len(active(api, "app=web")) == 2
                        and new_rs(api, "v2") is not None)
            v1 = new_rs(api, "v1")
            assert v1 is not None
            assert new_rs(api, "v2")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"  # type: ignore[index]
            # kubectl rollout undo: copy the v1 RS template (minus pod-template-hash) into the deployment
            await patch_template(api, "web", image="v1")
            await until(api, lambda: rollout_status(api) == "done" and
                        all(p["spec"]["containers"][0]["image"] == "v1" for p in active(api, "app=web")))
            assert len(rss(api)) == 2  # the old RS was reused, not a third one created
            v1 = new_rs(api, "v1")
            ann = v1["metadata"]["annotations"]  # type: ignore[index]
            assert ann["deployment.kubernetes.io/revision"] == "3"
            assert ann["deployment.kubernetes.io/revision-history"] == "1"
            d = api.get("Deployment", "web")
            assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"  # type: ignore[index]


async def test_restart_annotation_makes_new_rs(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(*controllers()) as api:
            await api.create("Deployment", deployment(replicas=2))
            await until(api, lambda: rollout_status(api) == "done")
            await patch_template(
                api, "web", annotations={"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}
            )
            await until(api, lambda: rollout_status(api) == "done" and len(rss(api)) == 2
                        and len(active(api, "app=web")) == 2)


async def test_pause_and_resume(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(*controllers()) as api:
            await api.create("Deployment", deployment(replicas=2))
            await until(api, lambda: rollout_status(api) == "done")
            await patch_template(api, "web", paused=True)

            def progressing() -> Obj:
                d = api.get("Deployment", "web")
                return next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")  # type: ignore[index]

            await until(api, lambda: progressing()["reason"] == "DeploymentPaused")
            assert progressing()["status"] == "Unknown"
            await patch_template(api, "web", image="v2")
            await trio.sleep(30)
            assert len(rss(api)) == 1  # no rollout while paused
            await patch_template(api, "web", replicas=3)  # scaling still works while paused
            await until(api, lambda: len(active(api, "app=web")) == 3)
            await patch_template(api, "web", paused=False)
            await until(api, lambda: rollout_status(api) == "done" and len(rss(api)) == 2
                        and all(p["spec"]["containers"][0]["image"] == "v2" for p in active(api, "app=web")))
            assert progressing()["reason"] == "NewReplicaSetAvailable"


async def test_progress_deadline_exceeded(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(*controllers(kubelet_delay=None)) as api:
            body = deployment(replicas=2)
            body["spec"]["progressDeadlineSeconds"] = 30
            await api.create("Deployment", body)
            t0 = trio.current_time()
            t = await until(api, lambda: rollout_status(api) == "deadline")
            # the condition's lastUpdateTime (whole seconds) + 30 s, plus the controller's 1 s slack
            assert 30 <= t - t0 <= 32
            d = api.get("Deployment", "web")
            cond = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")  # type: ignore[index]
            assert cond["status"] == "False" and cond["message"].endswith("has timed out progressing.")
            avail = next(c for c in d["status"]["conditions"] if c["type"] == "Available")  # type: ignore[index]
            assert avail["reason"] == "MinimumReplicasUnavailable"


async def test_recreate_deletes_old_before_new(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(*controllers()) as api:
            await api.create("Deployment", deployment(replicas=3, type="Recreate"))
            await until(api, lambda: rollout_status(api) == "done")
            await patch_template(api, "web", image="v2")
            mixed = False
            while not (rollout_status(api) == "done" and all(
                    p["spec"]["containers"][0]["image"] == "v2" for p in active(api, "app=web"))):
                images = {p["spec"]["containers"][0]["image"] for p in active(api, "app=web")}
                mixed = mixed or images == {"v1", "v2"}
                async with api.store.watch("", start_revision=api.store.revision + 1) as changes:
                    await trio.testing.wait_all_tasks_blocked()
                    if rollout_status(api) == "done":
                        continue
                    await changes.__anext__()
            assert not mixed


async def test_history_limit_cleans_old_replicasets(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(*controllers()) as api:
            body = deployment(replicas=1)
            body["spec"]["revisionHistoryLimit"] = 1
            await api.create("Deployment", body)
            for image in ("v2", "v3", "v4"):
                await until(api, lambda: rollout_status(api) == "done")
                await patch_template(api, "web", image=image)
            await until(api, lambda: rollout_status(api) == "done" and len(rss(api)) == 2)
            assert new_rs(api, "v4") is not None and new_rs(api, "v3") is not None


async def test_undo_as_kubectl_sends_it_reuses_old_rs(autojump_clock: trio.testing.MockClock) -> None:
    """kubectl 1.32's rollout undo: a JSON patch replacing /spec/template with the old RS's template as
    Go serializes it (`metadata.creationTimestamp: null`, no pod-template-hash label). null is Go's zero
    value, so the template equals the old RS's and that RS is scaled back up; no third RS appears."""
    import orjson

    with trio.fail_after(600):
        async with running(*controllers()) as api:
            await api.create("Deployment", deployment(replicas=2))
            await until(api, lambda: rollout_status(api) == "done")
            await patch_template(api, "web", image="v2")
            await until(api, lambda: rollout_status(api) == "done" and new_rs(api, "v2") is not None
                        and len(active(api, "app=web")) == 2)
            v1 = new_rs(api, "v1")
            assert v1 is not None
            template = v1["spec"]["template"]
            del template["metadata"]["labels"]["pod-template-hash"]
            template["metadata"]["creationTimestamp"] = None
            patch = [{"op": "replace", "path": "/spec/template", "value": template},
                     {"op": "replace", "path": "/metadata/annotations", "value": {}}]
            await api.client.patch(api.rt("Deployment"), "default", "web", orjson.dumps(patch),
                                   patch_type="application/json-patch+json")
            await until(api, lambda: rollout_status(api) == "done" and
                        all(p["spec"]["containers"][0]["image"] == "v1" for p in active(api, "app=web")))
            assert set(rss(api)) == {v1["metadata"]["name"], new_rs(api, "v2")["metadata"]["name"]}  # type: ignore[index]
            assert rss(api)[v1["metadata"]["name"]]["spec"]["replicas"] == 2


AVAILABLE_CASES = [
    # (spec.replicas, status.availableReplicas) per ReplicaSet -> pods available once they converge
    pytest.param([(3, 2), (2, 3)], 4, id="old-rs-just-scaled-down-still-reports-its-victims"),
    pytest.param([(1, 0), (4, 4)], 4, id="converged"),
    pytest.param([(0, 1), (3, 3)], 3, id="scaled-to-zero-stale-status"),
    pytest.param([(2, 0), (0, 0)], 0, id="nothing-available"),
]


@pytest.mark.parametrize(("sets", "expected"), AVAILABLE_CASES)
def test_scale_down_budget_counts_available_pods_up_to_spec(
    sets: list[tuple[int, int]], expected: int
) -> None:
    from orchestra.reconcilers.workloads import rollout as ro

    rss_ = [{"metadata": {}, "spec": {"replicas": n}, "status": {"availableReplicas": a}} for n, a in sets]
    assert ro.available_after_scaling(rss_) == expected
