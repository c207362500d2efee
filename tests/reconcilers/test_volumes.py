"""Persistent volumes: static binding, local-path provisioning (Immediate and WaitForFirstConsumer),
Retain vs Delete, the scheduler's VolumeBinding checks and StatefulSet volumeClaimTemplates — real
store, API core and LocalClient, under trio's autojump clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.reconcilers.garbage_collector import GarbageCollector
from orchestra.reconcilers.protection import StorageProtectionController
from orchestra.reconcilers.volumes import (
    BIND_COMPLETED,
    PROVISIONED_BY,
    SELECTED_NODE,
    PersistentVolumeController,
)
from orchestra.reconcilers.workloads.statefulset import StatefulSetController
from tests.controller.harness import Api, wait_for
from tests.reconcilers.test_scheduler_helpers import (
    add_nodes,
    node,
    node_of,
    spod,
    wait_bound,
    wait_unschedulable,
)
from tests.reconcilers.test_scheduler_helpers import running as scheduler_running
from tests.reconcilers.test_workloads_support import CLOCK, FakeKubelet, events, running

Obj = dict[str, Any]


def pvc(name: str, *, size: str = "1Gi", cls: str | None = None, modes: tuple[str, ...] = ("ReadWriteOnce",),
        selector: Obj | None = None) -> Obj:
    spec: Obj = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if cls is not None:
        spec["storageClassName"] = cls
    if selector is not None:
        spec["selector"] = selector
    return {"metadata": {"name": name}, "spec": spec}


def pv(
    name: str,
    *,
    size: str = "1Gi",
    cls: str = "manual",
    policy: str = "Retain",
    labels: dict[str, str] | None = None,
    path: str = "/srv/data",
    affinity_node: str | None = None,
) -> Obj:
    spec: Obj = {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                 "persistentVolumeReclaimPolicy": policy, "hostPath": {"path": path}}
    if affinity_node:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [affinity_node]}]}]}}
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def storage_class(name: str = "local-path", *, mode: str = "Immediate", policy: str = "Delete",
                  default: bool = False) -> Obj:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"metadata": {"name": name, "annotations": annotations}, "provisioner": "orchestra.io/local-path",
            "reclaimPolicy": policy, "volumeBindingMode": mode}


def phase(api: Api, kind: str, name: str) -> str:
    obj = api.get(kind, name, "default" if kind == "PersistentVolumeClaim" else None) or {}
    return str(obj.get("status", {}).get("phase") or "")


def controllers(root: Path) -> tuple[Any, ...]:
    """The volume controller and, as in kube-controller-manager, the pvc/pv-protection controller
    (every claim and volume carries its protection finalizer)."""
    return (lambda api: PersistentVolumeController(api.client, volumes_root=root),
            lambda api: StorageProtectionController(api.client))


async def test_static_binding_picks_the_smallest_matching_volume(autojump_clock: trio.testing.MockClock,
                                                                  tmp_path: Path) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await api.create("PersistentVolume", pv("big", size="10Gi"), None)
            await api.create("PersistentVolume", pv("small", size="500Mi"), None)
            await api.create("PersistentVolume", pv("fits", size="2Gi"), None)
            await api.create("PersistentVolume", pv("other-class", size="1Gi", cls="fast"), None)
            await api.create("PersistentVolume", pv("wrong-label", size="1Gi", labels={"tier": "cold"}), None)
            await wait_for(api, lambda: phase(api, "PersistentVolume", "big") == "Available")
            await api.create("PersistentVolumeClaim", pvc("data", cls="manual",
                                                          selector={"matchLabels": {}}))
            await wait_for(api, lambda: phase(api, "PersistentVolumeClaim", "data") == "Bound")
            claim = api.get("PersistentVolumeClaim", "data") or {}
            assert claim["spec"]["volumeName"] == "wrong-label"  # 1Gi: the smallest that fits
            volume = api.get("PersistentVolume", claim["spec"]["volumeName"], None) or {}
            assert claim["status"]["capacity"] == volume["spec"]["capacity"]
            assert claim["status"]["accessModes"] == ["ReadWriteOnce"]
            assert claim["metadata"]["annotations"][BIND_COMPLETED] == "yes"
            assert volume["status"]["phase"] == "Bound"
            assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
            assert phase(api, "PersistentVolume", "small") == "Available"  # too small
            assert phase(api, "PersistentVolume", "other-class") == "Available"


async def test_selector_restricts_static_binding(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await api.create("PersistentVolume", pv("warm", labels={"tier": "warm"}), None)
            await api.create("PersistentVolume", pv("cold", labels={"tier": "cold"}), None)
            await api.create(
                "PersistentVolumeClaim", pvc("data", cls="manual", selector={"matchLabels": {"tier": "cold"}})
            )
            await wait_for(api, lambda: phase(api, "PersistentVolumeClaim", "data") == "Bound")
            assert (api.get("PersistentVolumeClaim", "data") or {})["spec"]["volumeName"] == "cold"
            assert phase(api, "PersistentVolume", "warm") == "Available"


async def test_retain_keeps_a_released_static_volume(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await api.create("PersistentVolume", pv("keep"), None)
            await api.create("PersistentVolumeClaim", pvc("data", cls="manual"))
            await wait_for(api, lambda: phase(api, "PersistentVolumeClaim", "data") == "Bound")
            await api.client.delete(api.rt("PersistentVolumeClaim"), "default", "data")
            await wait_for(api, lambda: phase(api, "PersistentVolume", "keep") == "Released")
            await trio.sleep(30)
            assert phase(api, "PersistentVolume", "keep") == "Released"  # not rebound, not deleted


async def test_claim_without_class_gets_the_default_class(autojump_clock: trio.testing.MockClock,
                                                          tmp_path: Path) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await api.create("StorageClass", storage_class(default=True), None)
            created = await api.create("PersistentVolumeClaim", pvc("data"))
            assert created["spec"]["storageClassName"] == "local-path"
            explicit = await api.create("PersistentVolumeClaim", pvc("none", cls=""))
            assert explicit["spec"]["storageClassName"] == ""


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
async def test_dynamic_provisioning_and_reclaim(autojump_clock: trio.testing.MockClock, tmp_path: Path,
                                                policy: str) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await api.create("StorageClass", storage_class(policy=policy), None)
            claim = await api.create("PersistentVolumeClaim", pvc("data", cls="local-path"))
            name = f"pvc-{claim['metadata']['uid']}"
            await wait_for(api, lambda: phase(api, "PersistentVolumeClaim", "data") == "Bound")
            volume = api.get("PersistentVolume", name, None) or {}
            assert volume["spec"]["hostPath"]["path"] == str(tmp_path / name)
            assert volume["spec"]["persistentVolumeReclaimPolicy"] == policy
            assert volume["metadata"]["annotations"][PROVISIONED_BY] == "orchestra.io/local-path"
            assert "nodeAffinity" not in volume["spec"]  # Immediate: no node chosen
            assert (tmp_path / name).is_dir()
            (tmp_path / name / "file").write_text("kept?")
            await wait_for(api, lambda: bool(events(api, "ProvisioningSucceeded", "data")))
            assert events(api, "ProvisioningSucceeded", "data") == [f"Successfully provisioned volume {name}"]
            await api.client.delete(api.rt("PersistentVolumeClaim"), "default", "data")
            if policy == "Delete":
                await wait_for(api, lambda: api.get("PersistentVolume", name, None) is None)
                assert not (tmp_path / name).exists()
            else:
                await wait_for(api, lambda: phase(api, "PersistentVolume", name) == "Released")
                assert (tmp_path / name / "file").read_text() == "kept?"


async def test_wait_for_first_consumer_provisions_on_the_selected_node(autojump_clock: trio.testing.MockClock,
                                                                      tmp_path: Path) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await api.create("StorageClass", storage_class(mode="WaitForFirstConsumer"), None)
            await api.create("PersistentVolumeClaim", pvc("data", cls="local-path"))
            await wait_for(api, lambda: bool(events(api, "WaitForFirstConsumer", "data")))
            await trio.sleep(30)
            assert phase(api, "PersistentVolumeClaim", "data") == "Pending"
            assert api.list("PersistentVolume") == []
            await api.client.patch(api.rt("PersistentVolumeClaim"), "default", "data",
                                   {"metadata": {"annotations": {SELECTED_NODE: "n1"}}})
            await wait_for(api, lambda: phase(api, "PersistentVolumeClaim", "data") == "Bound")
            (volume,) = api.list("PersistentVolume")
            terms = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
            assert terms == [
                {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}
            ]
            claim = api.get("PersistentVolumeClaim", "data") or {}
            assert (
                claim["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"]
                == "orchestra.io/local-path"
            )


# --- scheduler: VolumeBinding -------------------------------------------------------------------


def claim_pod(name: str, claim: str) -> Obj:
    return spod(name, volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": claim}}])


async def test_scheduler_reports_missing_and_unbound_immediate_claims(autojump_clock: trio.testing.MockClock,
                                                                      tmp_path: Path) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await add_nodes(api, node("a"), node("b"))
            async with scheduler_running(api):
                await api.create("Pod", claim_pod("missing", "nope"))
                cond = await wait_unschedulable(api, "missing")
                assert cond["message"] == (
                    '0/2 nodes are available: persistentvolumeclaim "nope" not found. '
                    "preemption: 0/2 nodes are available: 2 Preemption is not helpful for "
                    "scheduling."
                )
                await api.create("PersistentVolumeClaim", pvc("static", cls="manual"))  # no volume for it yet
                await api.create("Pod", claim_pod("unbound", "static"))
                cond = await wait_unschedulable(api, "unbound")
                assert cond["message"].startswith("0/2 nodes are available: pod has unbound immediate "
                                                  "PersistentVolumeClaims.")
                await api.create(
                    "PersistentVolume", pv("vol", affinity_node="b"), None
                )  # the claim binds: retried
                await wait_bound(api, "unbound", limit=1000)
                assert node_of(api, "unbound") == "b"  # the volume's node affinity
                await api.create("PersistentVolumeClaim", pvc("data", cls="nothing"))
                await wait_for(api, lambda: bool(events(api, "ProvisioningFailed", "data")))


async def test_scheduler_rejects_nodes_outside_the_volume_affinity(autojump_clock: trio.testing.MockClock,
                                                                   tmp_path: Path) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await add_nodes(api, node("a"))
            await api.create("PersistentVolume", pv("vol", affinity_node="elsewhere"), None)
            await api.create("PersistentVolumeClaim", pvc("data", cls="manual"))
            await wait_for(api, lambda: phase(api, "PersistentVolumeClaim", "data") == "Bound")
            async with scheduler_running(api):
                await api.create("Pod", claim_pod("p", "data"))
                cond = await wait_unschedulable(api, "p")
                assert cond["message"].startswith(
                    "0/1 nodes are available: 1 node(s) had volume node affinity conflict."
                )


async def test_scheduler_selects_a_node_for_wait_for_first_consumer(autojump_clock: trio.testing.MockClock,
                                                                    tmp_path: Path) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await add_nodes(api, node("a", labels={"kubernetes.io/hostname": "a"}))
            await api.create("StorageClass", storage_class(mode="WaitForFirstConsumer"), None)
            await api.create("PersistentVolumeClaim", pvc("data", cls="local-path"))
            async with scheduler_running(api):
                await api.create("Pod", claim_pod("p", "data"))
                await wait_bound(api, "p")
                assert phase(api, "PersistentVolumeClaim", "data") == "Bound"  # PreBind: the claim first
                claim = api.get("PersistentVolumeClaim", "data") or {}
                assert claim["metadata"]["annotations"][SELECTED_NODE] == "a"
                # a second pod on the same (now node-bound) claim lands on the same node
                await api.create("Pod", claim_pod("q", "data"))
                await wait_bound(api, "q")
                assert node_of(api, "q") == "a"


# --- StatefulSet volumeClaimTemplates ----------------------------------------------------------


def sts(replicas: int) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": replicas,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "containers": [
                        {"name": "c", "image": "v1", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
                    ]
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data", "labels": {"kind": "db-data"}},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        },
    }


async def test_statefulset_claims_survive_scale_down_and_pod_recreation(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(600):
        async with running(*controllers(tmp_path), lambda api: StatefulSetController(api.client, clock=CLOCK),
                           lambda api: FakeKubelet(api, delay=2)) as api:
            await api.create("StorageClass", storage_class(default=True), None)
            await api.create("StatefulSet", sts(2))
            await wait_for(api, lambda: all(phase(api, "PersistentVolumeClaim", f"data-db-{i}") == "Bound"
                                            for i in range(2)) and api.get("Pod", "db-1") is not None)
            claim0 = api.get("PersistentVolumeClaim", "data-db-0") or {}
            assert claim0["metadata"]["labels"] == {"kind": "db-data", "app": "db"}
            assert "ownerReferences" not in claim0["metadata"]  # whenDeleted: Retain
            assert claim0["spec"]["storageClassName"] == "local-path"
            pod0 = api.get("Pod", "db-0") or {}
            assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}} in pod0["spec"][
                "volumes"
            ]
            assert any(m == "create Claim data-db-0 Pod db-0 in StatefulSet db success"
                       for m in events(api, "SuccessfulCreate", "db"))
            await api.client.patch(api.rt("StatefulSet"), "default", "db", {"spec": {"replicas": 1}})
            await wait_for(api, lambda: api.get("Pod", "db-1") is None)
            assert phase(api, "PersistentVolumeClaim", "data-db-1") == "Bound"  # kept on scale-down
            await api.client.delete(api.rt("Pod"), "default", "db-0")
            await wait_for(api, lambda: (api.get("Pod", "db-0") or {}).get("metadata", {}).get("uid")
                           not in (None, pod0["metadata"]["uid"]))
            again = api.get("PersistentVolumeClaim", "data-db-0") or {}
            assert again["metadata"]["uid"] == claim0["metadata"]["uid"]  # the same claim, reused
            volumes = (api.get("Pod", "db-0") or {})["spec"]["volumes"]
            assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}} in volumes
            await api.client.patch(api.rt("StatefulSet"), "default", "db", {"spec": {"replicas": 2}})
            await wait_for(api, lambda: api.get("Pod", "db-1") is not None)
            assert len(api.list("PersistentVolumeClaim", "default")) == 2  # data-db-1 reused, not duplicated


@pytest.mark.parametrize("when_deleted", ["Retain", "Delete"])
async def test_statefulset_retention_policy_when_scaled_delete(autojump_clock: trio.testing.MockClock,
                                                              tmp_path: Path, when_deleted: str) -> None:
    """persistentVolumeClaimRetentionPolicy: whenScaled Delete gives a condemned pod its claims just
    before it is deleted, so they go with it; scaling up again makes fresh ones. whenDeleted Delete
    makes the set their owner, so they go with the set."""
    with trio.fail_after(600):
        async with running(
            *controllers(tmp_path),
            lambda api: StatefulSetController(api.client, clock=CLOCK),
            lambda api: GarbageCollector(api.client),
            lambda api: FakeKubelet(api, delay=2),
        ) as api:
            await api.create("StorageClass", storage_class(default=True), None)
            body = sts(3)
            body["spec"]["persistentVolumeClaimRetentionPolicy"] = {
                "whenDeleted": when_deleted,
                "whenScaled": "Delete",
            }
            await api.create("StatefulSet", body)
            await wait_for(api, lambda: all(phase(api, "PersistentVolumeClaim", f"data-db-{i}") == "Bound"
                                            for i in range(3)) and api.get("Pod", "db-2") is not None)
            owners = [
                (r["kind"], r["name"])
                for r in (api.get("PersistentVolumeClaim", "data-db-0") or {})["metadata"].get(
                    "ownerReferences"
                )
                or []
            ]
            assert owners == ([("StatefulSet", "db")] if when_deleted == "Delete" else [])
            old1 = (api.get("PersistentVolumeClaim", "data-db-1") or {})["metadata"]["uid"]
            await api.client.patch(api.rt("StatefulSet"), "default", "db", {"spec": {"replicas": 1}})
            await wait_for(api, lambda: api.get("PersistentVolumeClaim", "data-db-2") is None
                           and api.get("PersistentVolumeClaim", "data-db-1") is None)
            assert phase(api, "PersistentVolumeClaim", "data-db-0") == "Bound"
            await api.client.patch(api.rt("StatefulSet"), "default", "db", {"spec": {"replicas": 2}})
            await wait_for(api, lambda: phase(api, "PersistentVolumeClaim", "data-db-1") == "Bound"
                           and api.get("Pod", "db-1") is not None)
            assert (api.get("PersistentVolumeClaim", "data-db-1") or {})["metadata"]["uid"] != old1
            await api.client.delete(api.rt("StatefulSet"), "default", "db")
            await wait_for(api, lambda: not api.list("Pod", "default"))
            await trio.sleep(30)
            left = sorted(c["metadata"]["name"] for c in api.list("PersistentVolumeClaim", "default"))
            assert left == ([] if when_deleted == "Delete" else ["data-db-0", "data-db-1"])


async def test_prebind_gives_up_when_the_claim_is_never_bound(autojump_clock: trio.testing.MockClock,
                                                              tmp_path: Path) -> None:
    """A WaitForFirstConsumer claim nobody provisions: the pod is not bound, and after kube's 600 s
    bind timeout the scheduler reports why and tries again."""
    with trio.fail_after(6000):
        async with running(*controllers(tmp_path)) as api:
            await add_nodes(api, node("a", labels={"kubernetes.io/hostname": "a"}))
            other = storage_class("elsewhere", mode="WaitForFirstConsumer")
            other["provisioner"] = "example.com/not-here"
            await api.create("StorageClass", other, None)
            await api.create("PersistentVolumeClaim", pvc("data", cls="elsewhere"))
            async with scheduler_running(api):
                await api.create("Pod", claim_pod("p", "data"))
                await wait_for(api, lambda: SELECTED_NODE in ((api.get("PersistentVolumeClaim", "data") or {})
                                                              .get("metadata", {}).get("annotations") or {}))
                await trio.sleep(599)
                assert not (api.get("Pod", "p") or {})["spec"].get("nodeName")
                await wait_for(api, lambda: any("binding volumes: timed out waiting for the condition" in m
                                                for m in events(api, "FailedScheduling", "p")))
                assert not (api.get("Pod", "p") or {})["spec"].get("nodeName")


def _pod_with_claim(name: str, claim: str, node_name: str = "") -> Obj:
    return {"metadata": {"name": name}, "spec": {
        **({"nodeName": node_name} if node_name else {}),
        "containers": [{"name": "c", "image": "busybox"}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}}


async def test_claim_in_use_by_a_pod_stays_until_the_pod_is_gone(autojump_clock: trio.testing.MockClock,
                                                                 tmp_path: Path) -> None:
    """pvc-protection: `kubectl delete pvc` while a pod bound to a node uses the claim leaves it
    Terminating and its volume Bound (also when the pod has finished, as in kube); deleting the pods
    lets it go, and then the volume is released and reclaimed. An unbound pod does not hold it."""
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await api.create("StorageClass", storage_class(), None)
            created = await api.create("PersistentVolumeClaim", pvc("data", cls="local-path"))
            assert created["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
            await wait_for(api, lambda: phase(api, "PersistentVolumeClaim", "data") == "Bound")
            volume = (api.get("PersistentVolumeClaim", "data") or {})["spec"]["volumeName"]
            assert (api.get("PersistentVolume", volume, None) or {})["metadata"]["finalizers"] == \
                ["kubernetes.io/pv-protection"]
            await api.create("Pod", _pod_with_claim("user", "data", node_name="n1"))
            await api.create("Pod", _pod_with_claim("done", "data", node_name="n1"))
            await api.create("Pod", _pod_with_claim("unbound", "data"))
            done = api.get("Pod", "done") or {}
            done["status"] = {"phase": "Succeeded"}
            await api.client.update_status(api.rt("Pod"), done)

            await api.client.delete(api.rt("PersistentVolumeClaim"), "default", "data")
            for pod in ("user", "done", None):
                if pod:
                    await trio.sleep(30)
                    held = api.get("PersistentVolumeClaim", "data") or {}
                    assert held["metadata"].get("deletionTimestamp") and held["metadata"]["finalizers"] == \
                        ["kubernetes.io/pvc-protection"], pod
                    assert phase(api, "PersistentVolume", volume) == "Bound"
                    await api.client.delete(api.rt("Pod"), "default", pod, grace_period_seconds=0)
            await wait_for(api, lambda: api.get("PersistentVolumeClaim", "data") is None)
            await wait_for(
                api, lambda: api.get("PersistentVolume", volume, None) is None
            )  # reclaimPolicy Delete
            assert api.get("Pod", "unbound") is not None


async def test_a_bound_volume_stays_until_its_claim_is_gone(autojump_clock: trio.testing.MockClock,
                                                           tmp_path: Path) -> None:
    """pv-protection: a volume deleted while Bound waits for its claim; once released it goes."""
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await api.create("PersistentVolume", pv("keep"), None)
            await api.create("PersistentVolumeClaim", pvc("data", cls="manual"))
            await wait_for(api, lambda: phase(api, "PersistentVolumeClaim", "data") == "Bound")
            await api.client.delete(api.rt("PersistentVolume"), None, "keep")
            await trio.sleep(30)
            held = api.get("PersistentVolume", "keep", None) or {}
            assert (
                held["metadata"].get("deletionTimestamp")
                and phase(api, "PersistentVolume", "keep") == "Bound"
            )
            await api.client.delete(api.rt("PersistentVolumeClaim"), "default", "data")
            await wait_for(api, lambda: api.get("PersistentVolume", "keep", None) is None)


async def test_protection_finalizer_is_put_back(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Claims and volumes that lack their finalizer (made before the admission) get it."""
    with trio.fail_after(600):
        async with running(*controllers(tmp_path)) as api:
            await api.create("PersistentVolumeClaim", pvc("data", cls="manual"))
            bare = api.get("PersistentVolumeClaim", "data") or {}
            bare["metadata"]["finalizers"] = []
            await api.client.update(api.rt("PersistentVolumeClaim"), bare)
            await wait_for(
                api,
                lambda: (
                    (api.get("PersistentVolumeClaim", "data") or {})["metadata"].get("finalizers")
                    == ["kubernetes.io/pvc-protection"]
                ),
            )
