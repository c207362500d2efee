"""The LimitRanger admission plugin (defaults, min/max/ratio, kube's messages) and the validation of
LimitRange and ResourceQuota objects."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestra.api.policy import limitranger
from orchestra.api.policy.defaults import default
from orchestra.api.policy.validation import validate

Obj = dict[str, Any]


def limit_range(*items: Obj) -> Obj:
    return default(
        "LimitRange", {"metadata": {"name": "lr", "namespace": "ns"}, "spec": {"limits": list(items)}}
    )


def pod(*containers: Obj, init: list[Obj] | None = None) -> Obj:
    spec: Obj = {"containers": list(containers)}
    if init:
        spec["initContainers"] = init
    return {"metadata": {"name": "p"}, "spec": spec, "status": {"phase": "Pending", "qosClass": "BestEffort"}}


def c(name: str = "c", requests: dict[str, str] | None = None, limits: dict[str, str] | None = None) -> Obj:
    res = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    return {"name": name, "image": "busybox", "resources": res}


def test_limit_range_defaults_fill_default_and_default_request() -> None:
    lr = limit_range(
        {
            "type": "Container",
            "max": {"cpu": "2", "memory": "1Gi"},
            "min": {"cpu": "100m"},
            "default": {"memory": "512Mi"},
        },
        {"type": "Pod", "max": {"cpu": "4"}},
    )
    container_item, pod_item = lr["spec"]["limits"]
    assert container_item["default"] == {"memory": "512Mi", "cpu": "2"}  # from max
    assert container_item["defaultRequest"] == {"memory": "512Mi", "cpu": "2"}  # from default, before min
    assert "default" not in pod_item and "defaultRequest" not in pod_item


def test_defaults_are_applied_and_annotated() -> None:
    lr = limit_range(
        {
            "type": "Container",
            "default": {"cpu": "500m", "memory": "256Mi"},
            "defaultRequest": {"cpu": "100m"},
        }
    )
    obj = pod(c("app", requests={"memory": "128Mi"}), init=[c("setup")])
    limitranger.mutate_pod(obj, [lr])
    app, setup = obj["spec"]["containers"][0], obj["spec"]["initContainers"][0]
    assert app["resources"] == {
        "requests": {"memory": "128Mi", "cpu": "100m"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    assert setup["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    assert obj["metadata"]["annotations"][limitranger.ANNOTATION] == (
        "LimitRanger plugin set: cpu request for container app; cpu, memory limit for container app; "
        "cpu, memory request for init container setup; cpu, memory limit for init container setup"
    )
    assert obj["status"]["qosClass"] == "Burstable"


def test_null_resources_are_defaulted() -> None:
    obj = pod({"name": "c", "image": "busybox", "resources": None}, {"name": "d", "image": "busybox"})
    limitranger.mutate_pod(obj, [limit_range({"type": "Container", "default": {"cpu": "1"}})])
    assert [c["resources"] for c in obj["spec"]["containers"]] == [
        {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}
    ] * 2


def test_nothing_to_default_leaves_the_pod_alone() -> None:
    obj = pod(c(requests={"cpu": "1"}, limits={"cpu": "1"}))
    before = copy.deepcopy(obj)
    limitranger.mutate_pod(
        obj,
        [
            limit_range({"type": "Container", "default": {"cpu": "2"}}),
            limit_range({"type": "Pod", "max": {"cpu": "4"}}),
        ],
    )
    assert obj == before


CONTAINER = {
    "type": "Container",
    "min": {"cpu": "100m"},
    "max": {"cpu": "1", "memory": "1Gi"},
    "maxLimitRequestRatio": {"memory": "2"},
}
MESSAGES = [
    (
        "max-limit",
        CONTAINER,
        pod(c(requests={"cpu": "200m", "memory": "1Gi"}, limits={"cpu": "2", "memory": "1Gi"})),
        "maximum cpu usage per Container is 1, but limit is 2",
    ),
    (
        "min-request",
        CONTAINER,
        pod(c(requests={"cpu": "50m", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"})),
        "minimum cpu usage per Container is 100m, but request is 50m",
    ),
    (
        "no-limit",
        {"type": "Container", "max": {"memory": "1Gi"}},
        pod(c(requests={"memory": "1Gi"})),
        "maximum memory usage per Container is 1Gi.  No limit is specified",
    ),
    (
        "no-request",
        {"type": "Container", "min": {"cpu": "1"}},
        pod(c(limits={"cpu": "2"})),
        "minimum cpu usage per Container is 1.  No request is specified",
    ),
    (
        "min-limit",
        {"type": "Container", "min": {"cpu": "1"}},
        pod(c(requests={"cpu": "1"}, limits={"cpu": "500m"})),
        "minimum cpu usage per Container is 1, but limit is 500m",
    ),
    (
        "max-request",
        {"type": "Container", "max": {"cpu": "1"}},
        pod(c(requests={"cpu": "1500m"}, limits={"cpu": "1"})),
        "maximum cpu usage per Container is 1, but request is 1500m",
    ),
    (
        "ratio",
        {"type": "Container", "maxLimitRequestRatio": {"memory": "2"}},
        pod(c(requests={"memory": "100Mi"}, limits={"memory": "300Mi"})),
        "memory max limit to request ratio per Container is 2, but provided ratio is 3.000000",
    ),
    (
        "ratio-no-request",
        {"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}},
        pod(c(limits={"cpu": "1"})),
        "cpu max limit to request ratio per Container is 2, but no request is specified or request is 0",
    ),
    (
        "pod-max",
        {"type": "Pod", "max": {"cpu": "1"}},
        pod(
            c("a", requests={"cpu": "600m"}, limits={"cpu": "600m"}),
            c("b", requests={"cpu": "600m"}, limits={"cpu": "600m"}),
        ),
        "maximum cpu usage per Pod is 1, but limit is 1200m",
    ),
    (
        "init-container",
        {"type": "Container", "max": {"cpu": "1"}},
        pod(c(limits={"cpu": "1"}), init=[c("i", limits={"cpu": "3"})]),
        "maximum cpu usage per Container is 1, but limit is 3",
    ),
    (
        "several",
        {"type": "Container", "max": {"cpu": "1", "memory": "1Gi"}},
        pod(c(limits={"cpu": "2", "memory": "2Gi"})),
        "[maximum cpu usage per Container is 1, but limit is 2, maximum memory usage per Container is 1Gi, "
        "but limit is 2Gi]",
    ),
]


@pytest.mark.parametrize(("item", "obj", "message"), [m[1:] for m in MESSAGES], ids=[m[0] for m in MESSAGES])
def test_pod_limit_messages(item: Obj, obj: Obj, message: str) -> None:
    assert limitranger.validate("Pod", obj, None, [limit_range(item)]) == message


def claim(storage: str | None) -> Obj:
    requests = {"storage": storage} if storage else {}
    return {"metadata": {"name": "data"}, "spec": {"resources": {"requests": requests}}}


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ("500Mi", "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"),
        ("20Gi", "maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"),
        ("5Gi", None),
    ],
    ids=["below-min", "above-max", "within"],
)
def test_claim_limits(storage: str, message: str | None) -> None:
    lr = limit_range({"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}})
    assert limitranger.validate("PersistentVolumeClaim", claim(storage), None, [lr]) == message


def test_pod_updates_and_deleting_claims_are_not_checked() -> None:
    lr = limit_range({"type": "Container", "max": {"cpu": "1"}})
    big = pod(c(limits={"cpu": "5"}))
    assert limitranger.validate("Pod", big, big, [lr]) is None
    terminating = {**claim("20Gi"), "metadata": {"name": "d", "deletionTimestamp": "2025-01-01T00:00:00Z"}}
    pvc_lr = limit_range({"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}})
    assert limitranger.validate("PersistentVolumeClaim", claim("20Gi"), terminating, [pvc_lr]) is None


def causes(kind: str, obj: Obj, old: Obj | None = None) -> list[tuple[str, str]]:
    return [(cause.field, cause.message) for cause in validate(kind, default(kind, obj), old)]


def go_q(value: int, scale: int, text: str) -> str:
    """A Quantity as Go's %#v prints a field's bad value."""
    return (
        f"resource.Quantity{{i:resource.int64Amount{{value:{value}, scale:{scale}}}, "
        f'd:resource.infDecAmount{{Dec:(*inf.Dec)(nil)}}, s:"{text}", Format:"DecimalSI"}}'
    )


Q2 = go_q(2, 0, "2")
LIMIT_RANGE_ERRORS = [
    (
        "min-over-max",
        [{"type": "Pod", "min": {"cpu": "2"}, "max": {"cpu": "1"}}],
        [("spec.limits[0].min[cpu]", f"Invalid value: {Q2}: min value 2 is greater than max value 1")],
    ),
    (
        "default-over-max",
        [{"type": "Container", "default": {"cpu": "3"}, "max": {"cpu": "2"}}],
        [
            (
                "spec.limits[0].defaultRequest[cpu]",
                f"Invalid value: {go_q(3, 0, '3')}: default request value 3 is greater than max value 2",
            ),
            (
                "spec.limits[0].default[cpu]",
                f"Invalid value: {Q2}: default value 3 is greater than max value 2",
            ),
        ],
    ),
    (
        "pod-defaults",
        [{"type": "Pod", "default": {"cpu": "1"}}],
        [("spec.limits[0].default", "Forbidden: may not be specified when `type` is 'Pod'")],
    ),
    (
        "claim-needs-storage",
        [{"type": "PersistentVolumeClaim", "max": {"cpu": "1"}}],
        [
            (
                "spec.limits[0].limits",
                "Required value: either minimum or maximum storage value is required, "
                "but neither was provided",
            )
        ],
    ),
    (
        "duplicate-type",
        [{"type": "Pod", "max": {"cpu": "1"}}, {"type": "Pod", "max": {"cpu": "2"}}],
        [("spec.limits[1].type", 'Duplicate value: "Pod"')],
    ),
    (
        "unknown-type",
        [{"type": "Node", "max": {"cpu": "1"}}],
        [("spec.limits[0].type", 'Invalid value: "Node": must be a standard limit type or fully qualified')],
    ),
    (
        "container-resource",
        [{"type": "Container", "max": {"pods": "1"}}],
        [
            ("spec.limits[0].max[pods]", 'Invalid value: "pods": must be a standard resource for containers'),
            (
                "spec.limits[0].default[pods]",
                'Invalid value: "pods": must be a standard resource for containers',
            ),
            (
                "spec.limits[0].defaultRequest[pods]",
                'Invalid value: "pods": must be a standard resource for containers',
            ),
        ],
    ),
    (
        "ratio-below-one",
        [{"type": "Container", "maxLimitRequestRatio": {"cpu": "500m"}}],
        [
            (
                "spec.limits[0].maxLimitRequestRatio[cpu]",
                f"Invalid value: {go_q(500, -3, '500m')}: ratio 500m is less than 1",
            )
        ],
    ),
]


@pytest.mark.parametrize(
    ("limits", "expected"), [e[1:] for e in LIMIT_RANGE_ERRORS], ids=[e[0] for e in LIMIT_RANGE_ERRORS]
)
def test_limit_range_validation(limits: list[Obj], expected: list[tuple[str, str]]) -> None:
    assert (
        causes("LimitRange", {"metadata": {"name": "lr", "namespace": "ns"}, "spec": {"limits": limits}})
        == expected
    )


def rq(hard: dict[str, Any], **spec: Any) -> Obj:
    return {"metadata": {"name": "q", "namespace": "ns"}, "spec": {"hard": hard, **spec}}


QUOTA_ERRORS = [
    ("valid", rq({"pods": "2", "requests.cpu": "1", "count/deployments.apps": "3"}), []),
    (
        "not-a-quota-resource",
        rq({"storage": "1Gi"}),
        [("spec.hard[storage]", 'Invalid value: "storage": must be a standard resource for quota')],
    ),
    (
        "unknown-resource",
        rq({"widgets": "1"}),
        [
            (
                "spec.hard[widgets]",
                'Invalid value: "widgets": must be a standard resource type or fully qualified',
            ),
            ("spec.hard[widgets]", 'Invalid value: "widgets": must be a standard resource for quota'),
        ],
    ),
    (
        "fractional-count",
        rq({"pods": "1500m"}),
        [
            (
                "spec.hard[pods]",
                f"Invalid value: {go_q(1500, -3, '1500m')}: must be an integer",
            )
        ],
    ),
    (
        "negative",
        rq({"requests.cpu": "-1"}),
        [("spec.hard[requests.cpu]", 'Invalid value: "-1": must be greater than or equal to 0')],
    ),
    (
        "best-effort-with-cpu",
        rq({"requests.cpu": "1"}, scopes=["BestEffort"]),
        [
            (
                "spec.scopes",
                'Invalid value: []core.ResourceQuotaScope{"BestEffort"}: '
                "unsupported scope applied to resource",
            )
        ],
    ),
    (
        "conflicting",
        rq({"pods": "1"}, scopes=["Terminating", "NotTerminating"]),
        [
            (
                "spec.scopes",
                'Invalid value: []core.ResourceQuotaScope{"Terminating", "NotTerminating"}: '
                "conflicting scopes",
            )
        ],
    ),
    (
        "selector-operator",
        rq(
            {"pods": "1"},
            scopeSelector={
                "matchExpressions": [{"scopeName": "BestEffort", "operator": "In", "values": ["x"]}]
            },
        ),
        [
            (
                "spec.scopeSelector.matchExpressions.operator",
                "Invalid value: \"In\": must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, "
                "ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, "
                "ResourceQuotaScopeNotBestEffort or "
                "ResourceQuotaScopeCrossNamespacePodAffinity",
            )
        ],
    ),
    (
        "selector-values",
        rq(
            {"pods": "1"},
            scopeSelector={"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In"}]},
        ),
        [
            (
                "spec.scopeSelector.matchExpressions.values",
                "Required value: must be at least one value when `operator` is 'In' or 'NotIn' "
                "for scope selector",
            )
        ],
    ),
]


@pytest.mark.parametrize(("obj", "expected"), [e[1:] for e in QUOTA_ERRORS], ids=[e[0] for e in QUOTA_ERRORS])
def test_resource_quota_validation(obj: Obj, expected: list[tuple[str, str]]) -> None:
    assert causes("ResourceQuota", obj) == expected


def test_quota_scopes_are_immutable() -> None:
    old = rq({"pods": "1"}, scopes=["NotTerminating"])
    new = rq({"pods": "2"}, scopes=["Terminating"])
    assert causes("ResourceQuota", new, old) == [
        ("spec.scopes", 'Invalid value: []core.ResourceQuotaScope{"Terminating"}: field is immutable')
    ]
    assert causes("ResourceQuota", rq({"pods": "5"}, scopes=["NotTerminating"]), old) == []
