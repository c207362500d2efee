"""The HPA's replica calculation and its bounds, rule by rule (kube's replica_calculator.go and
normalize functions of horizontal.go), with the resource metrics API faked as PodMetrics objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestra.api.machinery.selectors import parse_label_selector
from orchestra.reconcilers.autoscaling.normalize import History, Limits
from orchestra.reconcilers.autoscaling.replicas import (
    MetricError,
    PodMetric,
    Readiness,
    go_duration_value,
    group_pods,
    pod_metric_values,
    pod_requests,
)
from orchestra.reconcilers.autoscaling.sources import MetricFailure, MetricSources, go_selector

Obj = dict[str, Any]
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def _t(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    name: str,
    *,
    phase: str = "Running",
    ready: str | None = "True",
    started: float | None = 600,
    changed: float = 590,
    request: str | None = "100m",
    deleted: bool = False,
) -> Obj:
    st: Obj = {"phase": phase}
    if started is not None:
        st["startTime"] = _t(started)
    if ready is not None:
        st["conditions"] = [{"type": "Ready", "status": ready, "lastTransitionTime": _t(changed)}]
    resources = {"requests": {"cpu": request}} if request else {}
    m: Obj = {"name": name, "namespace": "default", "labels": {"app": "web"}}
    if deleted:
        m["deletionTimestamp"] = _t(1)
    return {"metadata": m, "spec": {"containers": [{"name": "c", "resources": resources}]}, "status": st}


def metrics_item(name: str, cpu: str, *, at: float = 0, window: str = "15s") -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "timestamp": _t(at),
        "window": window,
        "containers": [{"name": "c", "usage": {"cpu": cpu, "memory": "1Mi"}}],
    }


@pytest.mark.parametrize(
    ("pod_obj", "resource", "group"),
    [
        (pod("p"), "cpu", "ready"),
        (pod("p", deleted=True), "cpu", "ignored"),
        (pod("p", phase="Failed"), "cpu", "ignored"),
        (pod("p", phase="Pending"), "cpu", "unready"),
        (pod("p", ready=None), "cpu", "unready"),
        (pod("p", started=None), "cpu", "unready"),
        # within the 5 minute initialization period: a sample counts once a window passed since Ready
        (pod("p", started=100, changed=90), "cpu", "ready"),
        (pod("p", started=100, changed=10), "cpu", "unready"),
        (pod("p", started=100, changed=90, ready="False"), "cpu", "unready"),
        # past it: an unready pod counts unless it never became ready within 30 s of starting
        (pod("p", started=600, changed=590, ready="False"), "cpu", "unready"),
        (pod("p", started=600, changed=60, ready="False"), "cpu", "ready"),
        (pod("p", started=100, changed=10), "memory", "ready"),
    ],
    ids=[
        "running-ready",
        "deleted",
        "failed",
        "pending",
        "no-ready-condition",
        "no-start-time",
        "initializing-window-passed",
        "initializing-window-not-passed",
        "initializing-unready",
        "unready-never-ready",
        "unready-after-being-ready",
        "memory-ignores-readiness",
    ],
)
def test_pods_are_grouped_by_kube_s_readiness_rules(pod_obj: Obj, resource: str, group: str) -> None:
    metrics = {"p": PodMetric(50, NOW, 15.0)}
    g = group_pods([pod_obj], metrics, resource, NOW, Readiness())
    got = "ready" if g.ready else "ignored" if g.ignored else "unready" if g.unready else "missing"
    assert got == group


def test_a_pod_without_metrics_is_missing() -> None:
    g = group_pods([pod("p")], {}, "cpu", NOW, Readiness())
    assert g.missing == {"p"} and g.ready == 0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15.0), ("1.5s", 1.5), ("1m0s", 60.0), ("500ms", 0.5), ("", 0.0)],
    ids=["s", "fraction", "m-s", "ms", "empty"],
)
def test_metric_windows_are_go_durations(text: str, seconds: float) -> None:
    assert go_duration_value(text) == seconds


def test_pod_metrics_sum_containers_and_a_missing_usage_makes_the_pod_missing() -> None:
    two = {
        "metadata": {"name": "a"},
        "containers": [{"name": "c", "usage": {"cpu": "100m"}}, {"name": "d", "usage": {"cpu": "25m"}}],
    }
    half = {
        "metadata": {"name": "b"},
        "containers": [{"name": "c", "usage": {"cpu": "100m"}}, {"name": "d", "usage": {}}],
    }
    empty = {"metadata": {"name": "e"}, "containers": []}
    values = pod_metric_values([two, half, empty], "cpu")
    assert {k: v.value for k, v in values.items()} == {"a": 125}
    assert pod_metric_values([two], "cpu", "d")["a"].value == 25
    with pytest.raises(MetricError, match=r"container x not present in metrics for pod /a"):
        pod_metric_values([two], "cpu", "x")


def test_requests_count_restartable_init_containers_and_name_the_first_missing_one() -> None:
    p = pod("p")
    p["spec"]["initContainers"] = [
        {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
        {"name": "init", "resources": {}},
    ]
    assert pod_requests([p], "", "cpu") == {"p": 150}
    with pytest.raises(MetricError, match=r"^missing request for cpu in container c of Pod q$"):
        pod_requests([pod("q", request=None)], "", "cpu")


class FakeMetrics:
    """The resource metrics API as a list of PodMetrics (what metrics.k8s.io returns)."""

    def __init__(self, items: list[Obj]) -> None:
        self.items = items

    async def pod_metrics(self, namespace: str, label_selector: str = "") -> list[Obj]:
        return self.items


async def _propose(pods: list[Obj], items: list[Obj], current: int, target: int = 50) -> int:
    sources = MetricSources(FakeMetrics(items), lambda ns, sel: pods)
    spec = {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}},
    }
    proposal = await sources.propose(spec, "default", current, parse_label_selector("app=web"), NOW)
    return proposal.replicas


@pytest.mark.parametrize(
    ("usages", "extra", "current", "want"),
    [
        (["52m", "48m"], [], 2, 2),  # 50 % on average: at the target
        (["54m", "54m"], [], 2, 2),  # 54 %: ratio 1.08, within the 0.1 tolerance
        (["60m", "60m"], [], 2, 3),  # 1.2 -> ceil(2.4)
        (["10m", "10m"], [], 4, 1),  # 10 %: ratio 0.2 over the two measured pods -> ceil(0.4)
        (
            ["90m"],
            [pod("missing")],
            2,
            2,
        ),  # 1.8 up, the missing pod counts as 0 %: ratio 0.9 -> within tolerance
        (["200m"], [pod("missing")], 2, 4),  # 4.0 up, missing at 0: ratio 2.0 over 2 pods -> 4
        (
            ["10m"],
            [pod("missing")],
            2,
            2,
        ),  # down: the missing pod counts as 100 %: ratio 1.1 -> would flip: keep
        (
            ["200m"],
            [pod("slow", phase="Pending")],
            2,
            4,
        ),  # up with an unready pod counted as 0: ratio 2.0 x 2
    ],
    ids=[
        "at-target",
        "within-tolerance",
        "up",
        "down",
        "missing-dampens-up",
        "missing-counts-zero-up",
        "missing-keeps-down",
        "unready-counts-zero-up",
    ],
)
async def test_utilization_replica_counts(
    usages: list[str], extra: list[Obj], current: int, want: int
) -> None:
    pods = [pod(f"p{i}") for i in range(len(usages))] + extra
    items = [metrics_item(f"p{i}", cpu) for i, cpu in enumerate(usages)]
    assert await _propose(pods, items, current) == want


@pytest.mark.parametrize(
    ("pods", "items", "cause"),
    [
        (
            [pod("p")],
            [],
            "unable to get metrics for resource cpu: no metrics returned from resource metrics API",
        ),
        ([], [metrics_item("p", "10m")], "no pods returned by selector while calculating replica count"),
        (
            [pod("p", phase="Pending")],
            [metrics_item("p", "10m")],
            "did not receive metrics for targeted pods (pods might be unready)",
        ),
        (
            [pod("p", request=None)],
            [metrics_item("p", "10m")],
            "missing request for cpu in container c of Pod p",
        ),
    ],
    ids=["no-metrics", "no-pods", "all-unready", "no-request"],
)
async def test_what_keeps_a_metric_from_a_count_is_worded_as_kube_words_it(
    pods: list[Obj], items: list[Obj], cause: str
) -> None:
    with pytest.raises(MetricFailure) as info:
        await _propose(pods, items, 1)
    assert info.value.reason == "FailedGetResourceMetric"
    assert info.value.cause == f"failed to get cpu utilization: {cause}"
    assert (
        info.value.error == f"failed to get cpu resource metric value: failed to get cpu utilization: {cause}"
    )


@pytest.mark.parametrize(
    ("spec", "reason", "error"),
    [
        (
            {
                "type": "Pods",
                "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "1"}},
            },
            "FailedGetPodsMetric",
            "failed to get pods metric value: unable to get metric rps: unable to fetch metrics from "
            "custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered",
        ),
        (
            {
                "type": "External",
                "external": {
                    "metric": {"name": "q", "selector": {"matchLabels": {"a": "b"}}},
                    "target": {"type": "Value", "value": "1"},
                },
            },
            "FailedGetExternalMetric",
            "failed to get q external metric value: failed to get external metric q: unable to get "
            "external metric default/q/&LabelSelector{MatchLabels:map[string]string{a: b,},"
            "MatchExpressions:[]LabelSelectorRequirement{},}: unable to fetch metrics from external "
            "metrics API: the server could not find "
            "the requested resource (get q.external.metrics.k8s.io)",
        ),
        ({"type": "Foo"}, "InvalidMetricSourceType", 'unknown metric source type "Foo"'),
    ],
    ids=["pods", "external", "unknown"],
)
async def test_metrics_of_apis_orchestra_does_not_serve_fail_as_kube_fails_without_them(
    spec: Obj, reason: str, error: str
) -> None:
    sources = MetricSources(FakeMetrics([]), lambda ns, sel: [])
    with pytest.raises(MetricFailure) as info:
        await sources.propose(spec, "default", 1, parse_label_selector("app=web"), NOW)
    assert (info.value.reason, info.value.error) == (reason, error)


def test_label_selectors_print_as_go_prints_them() -> None:
    sel = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [{"key": "k", "operator": "In", "values": ["x", "y"]}],
    }
    assert go_selector(sel) == (
        "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:"
        "[]LabelSelectorRequirement{LabelSelectorRequirement{Key:k,Operator:In,Values:[x y],},},}"
    )
    assert go_selector(None) == "nil"


# --- bounds ------------------------------------------------------------------------------------------

UP_4_PODS = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}],
}
DOWN = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
}


def _with_behavior(
    history: History,
    current: int,
    desired: int,
    now: float,
    up: Obj = UP_4_PODS,
    down: Obj = DOWN,
    low: int = 1,
    high: int = 100,
) -> int:
    outcome = history.normalize_with_behavior(Limits("k", current, desired, low, high, up, down), now)
    if outcome.replicas != current:
        history.store_scale_event({"scaleUp": up, "scaleDown": down}, "k", current, outcome.replicas, now)
    return outcome.replicas


def test_a_pods_policy_counts_what_was_added_in_its_period() -> None:
    h = History()
    assert _with_behavior(h, 1, 20, 0) == 5
    assert _with_behavior(h, 5, 20, 30) == 5  # 4 added 30 s ago: nothing left in this period
    assert _with_behavior(h, 5, 20, 59.5) == 5
    assert _with_behavior(h, 5, 20, 60) == 9  # the event is no longer after the period's start


@pytest.mark.parametrize(
    ("select", "want"), [("Max", 6), ("Min", 5), ("Disabled", 3)], ids=["max", "min", "disabled"]
)
def test_select_policy_picks_the_widest_or_narrowest_change(select: str, want: int) -> None:
    up = {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": select,
        "policies": [
            {"type": "Pods", "value": 2, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ],
    }
    assert _with_behavior(History(), 3, 50, 0, up=up) == want


def test_a_percent_policy_rounds_up_and_down_truncates() -> None:
    up = {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 10, "periodSeconds": 15}],
    }
    assert _with_behavior(History(), 3, 50, 0, up=up) == 4  # ceil(3.3)
    assert _with_behavior(History(), 5, 1, 0) == 2  # int(5 x 0.5)


def test_stabilization_windows_hold_the_count_both_ways() -> None:
    up = {**UP_4_PODS, "stabilizationWindowSeconds": 60}
    down = {**DOWN, "stabilizationWindowSeconds": 120}
    h = History()
    h.record_initial("k", 4, 0)
    assert _with_behavior(h, 4, 8, 10, up=up, down=down) == 4  # the lowest recent recommendation (4) holds
    assert _with_behavior(h, 4, 8, 80, up=up, down=down) == 8  # 60 s of 8s: up
    assert _with_behavior(h, 8, 2, 100, up=up, down=down) == 8  # recent 8s hold it up
    assert _with_behavior(h, 8, 2, 201, up=up, down=down) == 4  # the 8s left the window; 50 % per minute
