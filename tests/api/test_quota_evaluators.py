"""ResourceQuota evaluators, scopes, the admission check and the usage calculation, as kube's
pkg/quota/v1/evaluator/core and the resourcequota admission plugin count and word them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from orchestra.api.errors import Forbidden
from orchestra.api.policy.quota import resources as rl
from orchestra.api.policy.quota.check import check_request
from orchestra.api.policy.quota.evaluators import CREATE, UPDATE, evaluator_for
from orchestra.api.policy.quota.scopes import Scope, pod_matches
from orchestra.api.policy.quota.usage import cluster_evaluators, needed_resources, quota_status

Obj = dict[str, Any]
NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def container(
    name: str = "c",
    requests: dict[str, str] | None = None,
    limits: dict[str, str] | None = None,
    **extra: Any,
) -> Obj:
    res = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    return {"name": name, "image": "busybox", "resources": res, **extra}


def pod(*containers: Obj, init: list[Obj] | None = None, phase: str = "Pending", **spec: Any) -> Obj:
    body = {"containers": list(containers) or [container()], **spec}
    if init:
        body["initContainers"] = init
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": body, "status": {"phase": phase}}


def usage(group_resource: str, obj: Obj) -> dict[str, str]:
    evaluator = evaluator_for(group_resource)
    assert evaluator is not None
    return rl.to_json(evaluator.usage(obj, NOW))


POD_USAGE = [
    ("no-resources", pod(), {"count/pods": "1", "pods": "1"}),
    (
        "requests-and-limits",
        pod(container(requests={"cpu": "250m", "memory": "64Mi"}, limits={"cpu": "500m", "memory": "128Mi"})),
        {
            "count/pods": "1",
            "pods": "1",
            "cpu": "250m",
            "requests.cpu": "250m",
            "limits.cpu": "500m",
            "memory": "64Mi",
            "requests.memory": "64Mi",
            "limits.memory": "128Mi",
        },
    ),
    (
        "containers-summed",
        pod(container("a", requests={"cpu": "500m"}), container("b", requests={"cpu": "500m"})),
        {"count/pods": "1", "pods": "1", "cpu": "1", "requests.cpu": "1"},
    ),
    (
        "zero-plus-binary-keeps-binary",
        pod(container("a", requests={"memory": "512Mi"}), container("b", requests={"memory": "512Mi"})),
        {"count/pods": "1", "pods": "1", "memory": "1Gi", "requests.memory": "1Gi"},
    ),
    (
        "init-container-is-a-maximum",
        pod(container(requests={"cpu": "100m"}), init=[container("i", requests={"cpu": "2"})]),
        {"count/pods": "1", "pods": "1", "cpu": "2", "requests.cpu": "2"},
    ),
    (
        "sidecar-adds-up",
        pod(
            container(requests={"cpu": "100m"}),
            init=[container("s", requests={"cpu": "50m"}, restartPolicy="Always")],
        ),
        {"count/pods": "1", "pods": "1", "cpu": "150m", "requests.cpu": "150m"},
    ),
    (
        "overhead-on-requests-and-set-limits",
        pod(
            container(requests={"cpu": "100m"}, limits={"cpu": "200m"}),
            overhead={"cpu": "10m", "memory": "8Mi"},
        ),
        {
            "count/pods": "1",
            "pods": "1",
            "cpu": "110m",
            "requests.cpu": "110m",
            "limits.cpu": "210m",
            "memory": "8Mi",
            "requests.memory": "8Mi",
        },
    ),
    (
        "ephemeral-hugepages-extended",
        pod(
            container(
                requests={"ephemeral-storage": "1Gi", "hugepages-2Mi": "4Mi", "example.com/gpu": "1"},
                limits={"ephemeral-storage": "2Gi"},
            )
        ),
        {
            "count/pods": "1",
            "pods": "1",
            "ephemeral-storage": "1Gi",
            "requests.ephemeral-storage": "1Gi",
            "limits.ephemeral-storage": "2Gi",
            "hugepages-2Mi": "4Mi",
            "requests.hugepages-2Mi": "4Mi",
            "requests.example.com/gpu": "1",
        },
    ),
    (
        "succeeded-counts-only-the-object",
        pod(container(requests={"cpu": "1"}), phase="Succeeded"),
        {"count/pods": "1"},
    ),
    ("failed-counts-only-the-object", pod(phase="Failed"), {"count/pods": "1"}),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in POD_USAGE], ids=[c[0] for c in POD_USAGE])
def test_pod_usage(obj: Obj, expected: dict[str, str]) -> None:
    assert usage("pods", obj) == expected


@pytest.mark.parametrize(
    ("deleted", "grace", "counted"),
    [
        ("2025-01-01T11:59:50Z", 30, True),  # still within its grace period
        ("2025-01-01T11:59:00Z", 30, False),  # stuck terminating past deletionTimestamp + grace
    ],
    ids=["within-grace", "past-grace"],
)
def test_terminating_pod_stops_counting_after_its_grace_period(
    deleted: str, grace: int, counted: bool
) -> None:
    obj = pod()
    obj["metadata"].update(deletionTimestamp=deleted, deletionGracePeriodSeconds=grace)
    assert ("pods" in usage("pods", obj)) is counted


SERVICE_USAGE = [
    (
        "cluster-ip",
        {"ports": [{"port": 80}]},
        {"count/services": "1", "services": "1", "services.loadbalancers": "0", "services.nodeports": "0"},
    ),
    (
        "node-port",
        {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]},
        {"count/services": "1", "services": "1", "services.loadbalancers": "0", "services.nodeports": "2"},
    ),
    (
        "load-balancer",
        {"type": "LoadBalancer", "ports": [{"port": 80}]},
        {"count/services": "1", "services": "1", "services.loadbalancers": "1", "services.nodeports": "1"},
    ),
    (
        "load-balancer-without-node-ports",
        {
            "type": "LoadBalancer",
            "allocateLoadBalancerNodePorts": False,
            "ports": [{"port": 80, "nodePort": 30080}, {"port": 81}],
        },
        {"count/services": "1", "services": "1", "services.loadbalancers": "1", "services.nodeports": "1"},
    ),
]


@pytest.mark.parametrize(
    ("spec", "expected"), [c[1:] for c in SERVICE_USAGE], ids=[c[0] for c in SERVICE_USAGE]
)
def test_service_usage(spec: Obj, expected: dict[str, str]) -> None:
    assert usage("services", {"metadata": {"name": "s"}, "spec": spec}) == expected


def claim(storage: str, cls: str | None = "gold", allocated: str | None = None) -> Obj:
    obj: Obj = {"metadata": {"name": "c"}, "spec": {"resources": {"requests": {"storage": storage}}}}
    if cls:
        obj["spec"]["storageClassName"] = cls
    if allocated:
        obj["status"] = {"allocatedResources": {"storage": allocated}}
    return obj


PVC_USAGE = [
    (
        "with-class",
        claim("1Gi"),
        {
            "count/persistentvolumeclaims": "1",
            "persistentvolumeclaims": "1",
            "requests.storage": "1Gi",
            "gold.storageclass.storage.k8s.io/persistentvolumeclaims": "1",
            "gold.storageclass.storage.k8s.io/requests.storage": "1Gi",
        },
    ),
    (
        "no-class-rounded-up",
        claim("1500m", cls=None),
        {"count/persistentvolumeclaims": "1", "persistentvolumeclaims": "1", "requests.storage": "2"},
    ),
    (
        "allocated-larger",
        claim("1Gi", cls=None, allocated="2Gi"),
        {"count/persistentvolumeclaims": "1", "persistentvolumeclaims": "1", "requests.storage": "2Gi"},
    ),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in PVC_USAGE], ids=[c[0] for c in PVC_USAGE])
def test_claim_usage(obj: Obj, expected: dict[str, str]) -> None:
    assert usage("persistentvolumeclaims", obj) == expected


@pytest.mark.parametrize(
    ("group_resource", "expected"),
    [
        ("configmaps", {"count/configmaps": "1", "configmaps": "1"}),
        ("secrets", {"count/secrets": "1", "secrets": "1"}),
        ("resourcequotas", {"count/resourcequotas": "1", "resourcequotas": "1"}),
        ("deployments.apps", {"count/deployments.apps": "1"}),
        ("jobs.batch", {"count/jobs.batch": "1"}),
    ],
    ids=["configmaps", "secrets", "resourcequotas", "deployments", "jobs"],
)
def test_object_counts(group_resource: str, expected: dict[str, str]) -> None:
    assert usage(group_resource, {"metadata": {"name": "x"}}) == expected


def test_events_are_never_counted_and_operations_are_kubes() -> None:
    assert evaluator_for("events") is None
    assert [
        evaluator_for(gr).handles(UPDATE)
        for gr in ("pods", "services", "persistentvolumeclaims", "configmaps")
    ] == [False, True, True, False]


def _pc(name: str | None) -> Obj:
    return pod(priorityClassName=name) if name else pod()


SCOPES = [
    ("terminating", Scope("Terminating"), pod(activeDeadlineSeconds=30), True),
    ("not-terminating", Scope("NotTerminating"), pod(activeDeadlineSeconds=30), False),
    ("best-effort", Scope("BestEffort"), pod(), True),
    ("not-best-effort", Scope("NotBestEffort"), pod(container(requests={"cpu": "1"})), True),
    ("best-effort-from-status", Scope("BestEffort"), {**pod(), "status": {"qosClass": "Burstable"}}, False),
    ("priority-exists", Scope("PriorityClass"), _pc("high"), True),
    ("priority-exists-none", Scope("PriorityClass"), _pc(None), False),
    ("priority-in", Scope("PriorityClass", "In", ("high", "mid")), _pc("mid"), True),
    ("priority-in-other", Scope("PriorityClass", "In", ("high",)), _pc("low"), False),
    ("priority-not-in-none", Scope("PriorityClass", "NotIn", ("high",)), _pc(None), True),
    ("priority-does-not-exist", Scope("PriorityClass", "DoesNotExist"), _pc(None), True),
    (
        "cross-namespace-affinity",
        Scope("CrossNamespacePodAffinity"),
        pod(
            affinity={
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {}, "topologyKey": "zone", "namespaces": ["other"]}
                    ]
                }
            }
        ),
        True,
    ),
    ("no-cross-namespace-affinity", Scope("CrossNamespacePodAffinity"), pod(), False),
]


@pytest.mark.parametrize(("scope", "obj", "expected"), [c[1:] for c in SCOPES], ids=[c[0] for c in SCOPES])
def test_pod_scopes(scope: Scope, obj: Obj, expected: bool) -> None:
    assert pod_matches(scope, obj) is expected


def quota(name: str, hard: dict[str, str], used: dict[str, str] | None = None, **spec: Any) -> Obj:
    status = {"hard": hard, "used": used} if used is not None else {}
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"hard": hard, **spec}, "status": status}


def check(quotas: list[Obj], obj: Obj, gr: str = "pods", old: Obj | None = None) -> list[Obj]:
    return check_request(
        quotas, operation=UPDATE if old else CREATE, group_resource=gr, obj=obj, old=old, now=NOW
    )


REFUSALS = [
    (
        "pods-exceeded",
        [quota("q", {"pods": "2"}, {"pods": "2"})],
        pod(),
        'pods "p" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2',
    ),
    (
        "only-exceeded-resources-named",
        [quota("compute", {"pods": "5", "requests.cpu": "1"}, {"pods": "1", "requests.cpu": "800m"})],
        pod(container(requests={"cpu": "500m"})),
        'pods "p" is forbidden: exceeded quota: compute, requested: requests.cpu=500m, '
        "used: requests.cpu=800m, limited: requests.cpu=1",
    ),
    (
        "must-specify-limits",
        [
            quota(
                "compute",
                {"limits.cpu": "2", "limits.memory": "1Gi"},
                {"limits.cpu": "0", "limits.memory": "0"},
            )
        ],
        pod(container("a"), container("b", limits={"cpu": "1"})),
        'pods "p" is forbidden: failed quota: compute: '
        "must specify limits.cpu for: a; limits.memory for: a,b",
    ),
    (
        "status-unknown",
        [quota("q", {"pods": "2"}, {})],
        pod(),
        'pods "p" is forbidden: status unknown for quota: q, resources: pods',
    ),
    (
        "count-of-other-kinds",
        [quota("q", {"count/deployments.apps": "1"}, {"count/deployments.apps": "1"})],
        {"metadata": {"name": "web"}},
        'deployments.apps "web" is forbidden: exceeded quota: q, requested: count/deployments.apps=1, '
        "used: count/deployments.apps=1, limited: count/deployments.apps=1",
    ),
]


@pytest.mark.parametrize(
    ("quotas", "obj", "message"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS]
)
def test_refusals_are_kubes_403(quotas: list[Obj], obj: Obj, message: str) -> None:
    gr = "deployments.apps" if "count/deployments.apps" in quotas[0]["spec"]["hard"] else "pods"
    with pytest.raises(Forbidden) as exc:
        check(quotas, obj, gr)
    assert exc.value.message == message
    assert exc.value.code == 403


def test_charges_every_matching_quota_and_skips_others() -> None:
    quotas = [
        quota("all", {"pods": "10", "requests.cpu": "4"}, {"pods": "1", "requests.cpu": "500m"}),
        quota(
            "besteffort", {"pods": "3"}, {"pods": "0"}, scopes=["BestEffort"]
        ),  # the pod is not best-effort
        quota("unsynced", {"pods": "1"}),  # no status yet: matches nothing, limits nothing
        quota("disk", {"requests.ephemeral-storage": "1Gi"}, {"requests.ephemeral-storage": "0"}),  # no use
        quota("maps", {"configmaps": "1"}, {"configmaps": "1"}),  # not about pods
    ]
    charged = check(quotas, pod(container(requests={"cpu": "500m"})))
    assert [(q["metadata"]["name"], q["status"]["used"]) for q in charged] == [
        ("all", {"pods": "2", "requests.cpu": "1"})
    ]
    assert quotas[0]["status"]["used"] == {"pods": "1", "requests.cpu": "500m"}  # the input is not changed


def test_update_charges_only_the_growth() -> None:
    quotas = [
        quota("q", {"services.nodeports": "2", "services": "5"}, {"services.nodeports": "1", "services": "1"})
    ]
    old = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}}
    new = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81}]}}
    [charged] = check(quotas, new, "services", old)
    assert charged["status"]["used"] == {"services": "1", "services.nodeports": "2"}
    assert check(quotas, old, "services", new) == []  # shrinking gives nothing back at admission
    grown = {**new, "spec": {**new["spec"], "ports": [{"port": p} for p in (80, 81, 82)]}}
    with pytest.raises(Forbidden) as exc:
        check(quotas, grown, "services", old)
    assert "requested: services.nodeports=2, used: services.nodeports=1" in exc.value.message


def test_quota_status_recalculates_within_scopes() -> None:
    evaluators = cluster_evaluators(["pods", "services", "configmaps", "events"])
    q = quota("q", {"pods": "5", "count/pods": "9", "requests.cpu": "4"}, scopes=["NotBestEffort"])
    assert needed_resources(q, evaluators) == ["pods"]
    pods = [
        pod(container(requests={"cpu": "1"})),
        pod(),
        pod(container(requests={"cpu": "1"}), phase="Succeeded"),
    ]
    status = quota_status(q, evaluators, {"pods": pods}, NOW)
    assert status == {
        "hard": {"count/pods": "9", "pods": "5", "requests.cpu": "4"},
        "used": {"count/pods": "2", "pods": "1", "requests.cpu": "1"},
    }


def test_quota_status_keeps_usage_it_cannot_measure_and_canonicalises_hard() -> None:
    evaluators = cluster_evaluators(["pods"])
    q = quota("q", {"memory": "1024Mi", "count/widgets.example.com": "3"})
    q["status"] = {"used": {"count/widgets.example.com": "2", "gone": "1"}}
    status = quota_status(q, evaluators, {"pods": []}, NOW)
    assert status == {
        "hard": {"count/widgets.example.com": "3", "memory": "1Gi"},
        "used": {"count/widgets.example.com": "2", "memory": "0"},
    }
