"""HorizontalPodAutoscaler between autoscaling/v2 (stored) and autoscaling/v1, by kube's rules
(pkg/apis/autoscaling/v1/conversion.go): what each version shows, what the round-trip annotations
carry, and that a round trip through the other version loses nothing."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from orchestra.api.conversion import hpa

Obj = dict[str, Any]
REF = {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}
META = {"name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "7"}


def cpu(percent: int) -> Obj:
    return {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}},
    }


def v2(
    metrics: list[Obj] | None = None,
    *,
    behavior: Obj | None = None,
    status: Obj | None = None,
    annotations: Obj | None = None,
) -> Obj:
    spec: Obj = {
        "scaleTargetRef": dict(REF),
        "minReplicas": 1,
        "maxReplicas": 5,
        "metrics": metrics or [cpu(50)],
    }
    if behavior is not None:
        spec["behavior"] = behavior
    m = {**META, **({"annotations": annotations} if annotations else {})}
    return {
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v2",
        "metadata": m,
        "spec": spec,
        "status": status or {"desiredReplicas": 0, "currentMetrics": None},
    }


MEMORY = {
    "type": "Resource",
    "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}},
}
PODS = {
    "type": "Pods",
    "pods": {
        "metric": {"name": "rps", "selector": {"matchLabels": {"a": "b"}}},
        "target": {"type": "AverageValue", "averageValue": "10"},
    },
}
OBJECT = {
    "type": "Object",
    "object": {
        "describedObject": {"kind": "Ingress", "name": "main", "apiVersion": "networking.k8s.io/v1"},
        "target": {"type": "Value", "value": "2k"},
        "metric": {"name": "hits"},
    },
}
OBJECT_AVG = {
    "type": "Object",
    "object": {
        "describedObject": {"kind": "Ingress", "name": "main"},
        "target": {"type": "AverageValue", "value": "0", "averageValue": "300m"},
        "metric": {"name": "hits"},
    },
}
EXTERNAL = {
    "type": "External",
    "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}},
}
EXTERNAL_AVG = {
    "type": "External",
    "external": {
        "metric": {"name": "queue", "selector": {"matchLabels": {"q": "x"}}},
        "target": {"type": "AverageValue", "averageValue": "5"},
    },
}
CONTAINER = {
    "type": "ContainerResource",
    "containerResource": {
        "name": "cpu",
        "container": "app",
        "target": {"type": "Utilization", "averageUtilization": 60},
    },
}
BEHAVIOR = {
    "scaleUp": {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}],
    },
    "scaleDown": {
        "selectPolicy": "Disabled",
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    },
}
CONDITIONS = [
    {
        "type": "AbleToScale",
        "status": "True",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
        "reason": "ReadyForNewScale",
        "message": "recommended size matches current size",
    },
    {
        "type": "ScalingActive",
        "status": "False",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
        "reason": "FailedGetResourceMetric",
        "message": "x <y> & z",
    },
]
STATUS = {
    "lastScaleTime": "2025-01-01T00:01:00Z",
    "currentReplicas": 3,
    "desiredReplicas": 4,
    "currentMetrics": [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "current": {"averageValue": "61m", "averageUtilization": 61}},
        },
        {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "20Mi"}}},
    ],
    "conditions": CONDITIONS,
}


@pytest.mark.parametrize(
    "stored",
    [
        v2([cpu(50)]),
        v2([MEMORY]),
        v2([MEMORY, cpu(70)]),
        v2([PODS, OBJECT, EXTERNAL, cpu(40)]),
        v2([OBJECT_AVG, EXTERNAL_AVG, CONTAINER, cpu(40)]),
        v2([cpu(50)], behavior=BEHAVIOR),
        v2([cpu(50)], status=STATUS),
        v2([MEMORY, cpu(80)], behavior=BEHAVIOR, status=STATUS, annotations={"team": "a"}),
    ],
    ids=[
        "cpu-only",
        "memory-only",
        "other-metric-first",
        "pods-object-external",
        "averages-and-container",
        "behavior",
        "status",
        "everything",
    ],
)
def test_a_stored_object_survives_a_round_trip_through_v1(stored: Obj) -> None:
    served = hpa.to_v1(copy.deepcopy(stored))
    assert served["apiVersion"] == "autoscaling/v1"
    assert "metrics" not in served["spec"] and "behavior" not in served["spec"]
    assert hpa.to_v2(json.loads(json.dumps(served))) == stored


@pytest.mark.parametrize(
    ("stored", "spec", "status"),
    [
        (
            v2([cpu(50)]),
            {"scaleTargetRef": REF, "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
            {"currentReplicas": 0, "desiredReplicas": 0},
        ),
        (
            v2([MEMORY]),
            {"scaleTargetRef": REF, "minReplicas": 1, "maxReplicas": 5},
            {"currentReplicas": 0, "desiredReplicas": 0},
        ),
        (
            v2(
                [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "AverageValue", "averageValue": "1"}},
                    },
                    cpu(30),
                ]
            ),
            {"scaleTargetRef": REF, "minReplicas": 1, "maxReplicas": 5},
            {"currentReplicas": 0, "desiredReplicas": 0},
        ),
        (
            v2(status=STATUS),
            {"scaleTargetRef": REF, "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
            {
                "lastScaleTime": "2025-01-01T00:01:00Z",
                "currentReplicas": 3,
                "desiredReplicas": 4,
                "currentCPUUtilizationPercentage": 61,
            },
        ),
    ],
    ids=["cpu-target", "no-cpu", "first-cpu-metric-is-not-utilization", "status"],
)
def test_what_v1_shows(stored: Obj, spec: Obj, status: Obj) -> None:
    served = hpa.to_v1(stored)
    assert (served["spec"], served["status"]) == (spec, status)


def test_the_annotations_hold_what_v1_cannot_as_kube_marshals_it() -> None:
    served = hpa.to_v1(v2([MEMORY, cpu(80)], behavior=BEHAVIOR, status=STATUS))
    notes = served["metadata"]["annotations"]
    assert notes[hpa.METRIC_SPECS] == (
        '[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}}]'
    )
    assert notes[hpa.BEHAVIOR] == (
        '{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Pods",'
        '"Value":4,'
        '"PeriodSeconds":15}]},"ScaleDown":{"StabilizationWindowSeconds":null,"SelectPolicy":"Disabled",'
        '"Policies":[{"Type":"Percent","Value":100,"PeriodSeconds":15}]}}'
    )
    assert notes[hpa.METRIC_STATUSES] == (
        '[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":61,'
        '"currentAverageValue":"61m"}},'
        '{"type":"Resource","resource":{"name":"memory","currentAverageValue":"20Mi"}}]'
    )
    assert json.loads(notes[hpa.CONDITIONS]) == CONDITIONS
    assert "\\u003cy\\u003e \\u0026 z" in notes[hpa.CONDITIONS]  # Go escapes <, > and & in JSON strings


@pytest.mark.parametrize(
    ("v1_spec", "annotations", "metrics", "behavior"),
    [
        ({"targetCPUUtilizationPercentage": 30}, {}, [cpu(30)], None),
        ({}, {}, [cpu(80)], None),
        ({}, {hpa.METRIC_SPECS: "not json"}, [cpu(80)], None),
        (
            {},
            {hpa.BEHAVIOR: '{"scaleUp":{"selectPolicy":"Min"}}'},
            [cpu(80)],
            {"scaleUp": {"selectPolicy": "Min"}},
        ),
        ({}, {hpa.BEHAVIOR: '{"ScaleUp":null,"ScaleDown":null}'}, [cpu(80)], None),
        ({}, {hpa.BEHAVIOR: '{"ScaleUp":{"StabilizationWindowSeconds":"x"}}'}, [cpu(80)], None),
        (
            {"targetCPUUtilizationPercentage": 30},
            {hpa.METRIC_SPECS: '[{"type":"Pods","pods":{"metricName":"rps","targetAverageValue":"2"}}]'},
            [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "rps"},
                        "target": {"type": "AverageValue", "averageValue": "2"},
                    },
                },
                cpu(30),
            ],
            None,
        ),
    ],
    ids=[
        "target",
        "implicit-80",
        "bad-metrics-annotation",
        "behavior-any-case",
        "empty-behavior",
        "behavior-of-wrong-types",
        "other-metric-then-cpu",
    ],
)
def test_what_a_v1_write_stands_for(
    v1_spec: Obj, annotations: Obj, metrics: list[Obj], behavior: Obj | None
) -> None:
    body = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "annotations": {**annotations, "keep": "me"}},
        "spec": {"scaleTargetRef": REF, "maxReplicas": 3, **v1_spec},
    }
    stored = hpa.to_v2(body)
    assert stored["spec"]["metrics"] == metrics
    assert stored["spec"].get("behavior") == behavior
    assert stored["metadata"]["annotations"] == {"keep": "me"}  # the round-trip annotations are consumed


def test_v2_drops_the_round_trip_annotations_either_way() -> None:
    given = v2(annotations={hpa.METRIC_SPECS: "[]", hpa.CONDITIONS: "[]", "team": "a"})
    assert hpa.normalize_v2(given)["metadata"]["annotations"] == {"team": "a"}
    plain = v2()
    assert hpa.normalize_v2(plain) is plain
