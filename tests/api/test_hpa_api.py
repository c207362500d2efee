"""HorizontalPodAutoscalers in the API core: one stored object served at autoscaling/v2 and
autoscaling/v1 (every verb converts), discovery and routes for both versions, kube's defaults,
validation messages and `kubectl get hpa` cells."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import trio

from orchestra.api import tables
from orchestra.api.conversion import hpa as conv
from orchestra.api.errors import BadRequest, Invalid
from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.api.request.core import ApiCore
from orchestra.api.request.deletion import DeleteOptions
from orchestra.api.request.schema import load_schema
from orchestra.api.request.watch import watch
from orchestra.apiserver.discovery import AGGREGATED_V2, Discovery
from orchestra.apiserver.openapi import OpenApi
from orchestra.apiserver.routes import parse_resource_path
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store

Obj = dict[str, Any]
V2 = DEFAULT_REGISTRY.by_path("autoscaling", "v2", "horizontalpodautoscalers")
V1 = DEFAULT_REGISTRY.by_path("autoscaling", "v1", "horizontalpodautoscalers")
REF = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store)
    await bootstrap(c)
    yield c
    store.close()


def _v2(name: str = "web", **spec: Any) -> Obj:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": REF, "maxReplicas": 5, **spec},
    }


def _v1(name: str = "web", **spec: Any) -> Obj:
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": REF, "maxReplicas": 5, **spec},
    }


MEMORY = {
    "type": "Resource",
    "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "64Mi"}},
}


def _route(path: str) -> Any:
    return parse_resource_path(DEFAULT_REGISTRY, path.split("/"))


def test_both_versions_are_served_and_v2_is_stored() -> None:
    assert V2 is not None and V1 is not None
    assert (V2.stored_as, V1.stored_as) == ("", "autoscaling/v2")
    assert DEFAULT_REGISTRY.by_kind("HorizontalPodAutoscaler") is V2
    assert DEFAULT_REGISTRY.resolve("hpa") is V2
    assert [t.version for t in DEFAULT_REGISTRY.types if t.kind == "HorizontalPodAutoscaler"] == ["v2"]
    assert DEFAULT_REGISTRY.versions("autoscaling") == ["v2", "v1"]
    assert V1.key("default", "web") == V2.key("default", "web")
    assert V1.definition == "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler"
    route = _route("apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web/status")
    assert route is not None and route.rt is V1 and route.subresource == "status"
    assert _route("apis/autoscaling/v3/namespaces/d/horizontalpodautoscalers") is None
    assert _route("apis/apps/v2/namespaces/d/deployments") is None


def test_discovery_lists_both_versions_preferring_v2() -> None:
    d = Discovery(DEFAULT_REGISTRY, "127.0.0.1:6443")
    group = json.loads(d.api_group("autoscaling") or b"{}")
    assert [v["version"] for v in group["versions"]] == ["v2", "v1"]
    assert group["preferredVersion"] == {"groupVersion": "autoscaling/v2", "version": "v2"}
    listed = next(g for g in json.loads(d.api_group_list())["groups"] if g["name"] == "autoscaling")
    assert [v["groupVersion"] for v in listed["versions"]] == ["autoscaling/v2", "autoscaling/v1"]
    for version in ("v1", "v2"):
        resources = json.loads(d.resource_list("autoscaling", version) or b"{}")["resources"]
        assert [(r["name"], r["kind"]) for r in resources] == [
            ("horizontalpodautoscalers", "HorizontalPodAutoscaler"),
            ("horizontalpodautoscalers/status", "HorizontalPodAutoscaler"),
        ]
        assert resources[0]["shortNames"] == ["hpa"] and resources[0]["categories"] == ["all"]
    item = next(
        i
        for i in json.loads(d.aggregated(False, AGGREGATED_V2))["items"]
        if i["metadata"]["name"] == "autoscaling"
    )
    assert [
        (v["version"], [r["responseKind"]["version"] for r in v["resources"]]) for v in item["versions"]
    ] == [("v2", ["v2"]), ("v1", ["v1"])]
    openapi = OpenApi(DEFAULT_REGISTRY, load_schema())  # its documents: tests/apiserver/test_openapi.py
    index = json.loads(openapi.v3_index())["paths"]
    assert {"apis/autoscaling/v2", "apis/autoscaling/v1"} <= set(index)
    doc = openapi.v3("apis/autoscaling/v1").doc
    assert "/apis/autoscaling/v1/namespaces/{namespace}/horizontalpodautoscalers/{name}" in doc["paths"]


async def test_a_v1_write_is_stored_as_v2_and_read_at_both(core: ApiCore) -> None:
    created = (await core.create(V1, "default", _v1(targetCPUUtilizationPercentage=60))).obj
    assert created["apiVersion"] == "autoscaling/v1"
    assert created["spec"] == {
        "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
        "minReplicas": 1,
        "maxReplicas": 5,
        "targetCPUUtilizationPercentage": 60,
    }
    assert created["status"] == {"currentReplicas": 0, "desiredReplicas": 0}
    stored = core.get(V2, "default", "web")
    assert stored["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
        }
    ]
    assert stored["status"] == {"desiredReplicas": 0, "currentMetrics": None}
    assert "generation" not in stored["metadata"]  # kube's HPA strategy keeps no generation
    assert [o["apiVersion"] for o in core.list(V1, "default").items] == ["autoscaling/v1"]


async def test_v1_updates_keep_what_only_v2_has(core: ApiCore) -> None:
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 30}}
    await core.create(V2, "default", _v2(metrics=[MEMORY], behavior=behavior))
    seen = core.get(V1, "default", "web")
    assert set(seen["metadata"]["annotations"]) == {conv.METRIC_SPECS, conv.BEHAVIOR}
    seen["spec"]["maxReplicas"] = 7
    await core.update(V1, "default", "web", seen)
    patch = orjson.dumps({"spec": {"targetCPUUtilizationPercentage": 40}})
    patched = (await core.patch(V1, "default", "web", "application/merge-patch+json", patch)).obj
    assert patched["spec"]["targetCPUUtilizationPercentage"] == 40
    stored = core.get(V2, "default", "web")
    assert stored["spec"]["maxReplicas"] == 7
    assert stored["spec"]["metrics"] == [
        MEMORY,
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 40}},
        },
    ]
    assert stored["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 30
    assert "annotations" not in stored["metadata"]


async def test_status_written_at_v2_reads_at_v1(core: ApiCore) -> None:
    await core.create(V2, "default", _v2())
    obj = core.get(V2, "default", "web")
    obj["status"] = {
        "currentReplicas": 2,
        "desiredReplicas": 3,
        "currentMetrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "current": {"averageValue": "75m", "averageUtilization": 75}},
            }
        ],
    }
    await core.update(V2, "default", "web", obj, subresource="status")
    seen = core.get(V1, "default", "web")
    assert seen["status"] == {
        "currentReplicas": 2,
        "desiredReplicas": 3,
        "currentCPUUtilizationPercentage": 75,
    }
    assert (
        json.loads(seen["metadata"]["annotations"][conv.METRIC_STATUSES])[0]["resource"][
            "currentAverageValue"
        ]
        == "75m"
    )


async def test_watch_and_delete_at_v1_show_v1_objects(core: ApiCore) -> None:
    await core.create(V2, "default", _v2())
    with trio.fail_after(5):
        async with aclosing(watch(core, V1, "default")) as events:
            kind, obj = await anext(events)
    assert (kind, obj["apiVersion"], obj["spec"].get("targetCPUUtilizationPercentage")) == (
        "ADDED",
        "autoscaling/v1",
        80,
    )
    deleted, gone = await core.delete(V1, "default", "web", DeleteOptions())
    assert gone and deleted["apiVersion"] == "autoscaling/v1"


async def test_a_body_of_the_other_version_is_refused(core: ApiCore) -> None:
    with pytest.raises(
        BadRequest,
        match=r"the API version in the data \(autoscaling/v1\) does not match the expected "
        r"API version \(autoscaling/v2\)",
    ):
        await core.create(V2, "default", _v1())


async def test_v2_writes_drop_the_round_trip_annotations(core: ApiCore) -> None:
    body = _v2()
    body["metadata"]["annotations"] = {conv.METRIC_SPECS: "[]", "team": "a"}
    created = (await core.create(V2, "default", body)).obj
    assert created["metadata"]["annotations"] == {"team": "a"}


async def test_defaults(core: ApiCore) -> None:
    created = (await core.create(V2, "default", _v2(behavior={"scaleUp": {"selectPolicy": "Min"}}))).obj
    spec = created["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
        }
    ]
    assert spec["behavior"] == {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Min",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15},
            ],
        },
        # no window: the controller's --horizontal-pod-autoscaler-downscale-stabilization (300 s) applies
        "scaleDown": {
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
        },
    }
    plain = (await core.create(V2, "default", _v2("plain"))).obj
    assert "behavior" not in plain["spec"]


PATH = "spec.metrics[0].resource.target"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"minReplicas": 0},
            [
                "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
                "spec.metrics: Forbidden: must specify at least one Object or External metric to support "
                "scaling to zero replicas",
            ],
        ),
        (
            {"minReplicas": 3, "maxReplicas": 2},
            ["spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"],
        ),
        (
            {"maxReplicas": 0},
            [
                "spec.maxReplicas: Invalid value: 0: must be greater than 0",
                "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`",
            ],
        ),
        (
            {"scaleTargetRef": {"kind": "", "name": "a/b"}},
            [
                "spec.scaleTargetRef.kind: Required value",
                "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'",
            ],
        ),
        (
            {
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 0},
                        },
                    }
                ]
            },
            [f"{PATH}.averageUtilization: Invalid value: 0: must be greater than 0"],
        ),
        (
            {
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 5, "averageValue": "1"},
                        },
                    }
                ]
            },
            [f"{PATH}.averageValue: Forbidden: may not set both a target raw value and a target utilization"],
        ),
        (
            {"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Average"}}}]},
            [
                f'{PATH}.type: Invalid value: "Average": must be either Utilization, Value, or AverageValue',
                f"{PATH}.averageUtilization: Required value: must set either a target raw value or a target "
                "utilization",
            ],
        ),
        (
            {
                "metrics": [
                    {
                        "type": "Pods",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 5},
                        },
                    }
                ]
            },
            ["spec.metrics[0].pods: Required value: must populate information for the given metric source"],
        ),
        (
            {
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 5},
                        },
                        "pods": {
                            "metric": {"name": "x"},
                            "target": {"type": "AverageValue", "averageValue": "1"},
                        },
                    }
                ]
            },
            ["spec.metrics[0].pods: Forbidden: must populate the given metric source only"],
        ),
        (
            {"metrics": [{"type": "Foo"}]},
            [
                'spec.metrics[0].type: Unsupported value: "Foo": supported values: "ContainerResource", '
                '"External", '
                '"Object", "Pods", "Resource"'
            ],
        ),
        (
            {
                "behavior": {
                    "scaleUp": {"stabilizationWindowSeconds": 3601, "selectPolicy": "Fast", "policies": []}
                }
            },
            [
                "spec.behavior.scaleUp.stabilizationWindowSeconds: Invalid value: 3601: "
                "must be less than or equal to 3600",
                'spec.behavior.scaleUp.selectPolicy: Unsupported value: "Fast": '
                'supported values: "Disabled", "Max", "Min"',
                "spec.behavior.scaleUp.policies: Required value: must specify at least one Policy",
            ],
        ),
        (
            {"behavior": {"scaleDown": {"policies": [{"type": "Pod", "value": 0, "periodSeconds": 1801}]}}},
            [
                'spec.behavior.scaleDown.policies[0].type: Unsupported value: "Pod": '
                'supported values: "Percent", "Pods"',
                "spec.behavior.scaleDown.policies[0].value: Invalid value: 0: must be greater than zero",
                "spec.behavior.scaleDown.policies[0].periodSeconds: Invalid value: 1801: "
                "must be less than or equal to 1800",
            ],
        ),
        (
            {
                "metrics": [
                    {
                        "type": "ContainerResource",
                        "containerResource": {
                            "name": "cpu",
                            "container": "Web_1",
                            "target": {"type": "Utilization", "averageUtilization": 50},
                        },
                    }
                ]
            },
            [
                'spec.metrics[0].containerResource.container: Invalid value: "Web_1": a lowercase RFC 1123 '
                "label must consist of lower case alphanumeric characters or '-', and must start and end "
                "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation "
                "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ],
        ),
    ],
    ids=[
        "min-zero",
        "max-below-min",
        "max-zero",
        "target-ref",
        "utilization-zero",
        "both-targets",
        "target-type",
        "other-source",
        "two-sources",
        "unknown-type",
        "scaling-rules",
        "policy",
        "container-name",
    ],
)
async def test_validation_as_kube_words_it(core: ApiCore, spec: Obj, expected: list[str]) -> None:
    with pytest.raises(Invalid) as info:
        await core.create(V2, "default", {**_v2(), "spec": {**_v2()["spec"], **spec}})
    assert [f"{c.field}: {c.message}" for c in info.value.causes] == expected + (
        expected[:1] if spec.get("metrics") == [{"type": "Foo"}] else []
    )  # kube reports an unknown type twice
    assert info.value.message.startswith('HorizontalPodAutoscaler.autoscaling "web" is invalid: ')
    assert info.value.message.count('Unsupported value: "Foo"') <= 1  # the message names each error once


async def test_a_v1_target_is_validated_where_v2_keeps_it(core: ApiCore) -> None:
    with pytest.raises(Invalid) as info:
        await core.create(V1, "default", _v1(targetCPUUtilizationPercentage=0))
    assert [f"{c.field}: {c.message}" for c in info.value.causes] == [
        f"{PATH}.averageUtilization: Invalid value: 0: must be greater than 0"
    ]


async def test_min_replicas_zero_stays_allowed_on_an_object_that_has_it(core: ApiCore) -> None:
    """With the HPAScaleToZero gate off, only an object that already has 0 may keep it."""
    obj = _v2(
        metrics=[
            {
                "type": "External",
                "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "1"}},
            }
        ]
    )
    await core.create(V2, "default", obj)
    stored = core.get(V2, "default", "web")
    stored["spec"]["minReplicas"] = 0
    with pytest.raises(Invalid, match="must be greater than or equal to 1"):
        await core.update(V2, "default", "web", stored)


NOW = datetime(2025, 1, 1, 0, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "status", "targets"),
    [
        (
            {
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 50},
                        },
                    }
                ]
            },
            {},
            "cpu: <unknown>/50%",
        ),
        (
            {
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 50},
                        },
                    }
                ]
            },
            {
                "currentMetrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "current": {"averageUtilization": 12, "averageValue": "12m"},
                        },
                    }
                ]
            },
            "cpu: 12%/50%",
        ),
        (
            {"metrics": [MEMORY]},
            {
                "currentMetrics": [
                    {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "20Mi"}}}
                ]
            },
            "memory: 20Mi/64Mi",
        ),
        (
            {
                "metrics": [
                    {
                        "type": "Pods",
                        "pods": {
                            "metric": {"name": "rps"},
                            "target": {"type": "AverageValue", "averageValue": "10"},
                        },
                    },
                    {
                        "type": "External",
                        "external": {
                            "metric": {"name": "q"},
                            "target": {"type": "AverageValue", "averageValue": "1"},
                        },
                    },
                    {
                        "type": "Object",
                        "object": {
                            "metric": {"name": "h"},
                            "describedObject": {"kind": "I", "name": "i"},
                            "target": {"type": "Value", "value": "5"},
                        },
                    },
                ]
            },
            {
                "currentMetrics": [
                    {"type": "Pods", "pods": {"metric": {"name": "rps"}, "current": {"averageValue": "7"}}}
                ]
            },
            "7/10, <unknown>/1 (avg) + 1 more...",
        ),
        (
            {
                "metrics": [
                    {
                        "type": "ContainerResource",
                        "containerResource": {
                            "name": "cpu",
                            "container": "a",
                            "target": {"type": "Utilization", "averageUtilization": 60},
                        },
                    }
                ]
            },
            {},
            "cpu: <unknown>/60%",
        ),
    ],
    ids=["unknown", "cpu", "memory-value", "three-kinds", "container"],
)
def test_kubectl_get_hpa_cells(spec: Obj, status: Obj, targets: str) -> None:
    obj = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"scaleTargetRef": REF, "minReplicas": 2, "maxReplicas": 9, **spec},
        "status": {"currentReplicas": 3, "desiredReplicas": 3, **status},
    }
    table = tables.table(V2, [obj], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Reference",
        "Targets",
        "MinPods",
        "MaxPods",
        "Replicas",
        "Age",
    ]
    assert table["rows"][0]["cells"] == ["web", "Deployment/web", targets, "2", 9, 3, "10m"]
    v1_table = tables.table(V1, [conv.to_v1(obj)], now=NOW)  # a v1 object prints as the v2 it stands for
    assert v1_table["rows"][0]["cells"] == table["rows"][0]["cells"]
