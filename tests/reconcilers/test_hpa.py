"""The HorizontalPodAutoscaler controller end to end on the virtual clock: Deployments scaled up on
load and down after the stabilization window, bounded by scaling policies and min/max, and the
conditions and events kube writes when metrics are missing or pods have no requests.

Real store, API core, scheduler, Deployment and ReplicaSet controllers, a simulated node running the
pods, the resource metrics API in process (usage scripted per pod) — see hpa_harness.py.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.reconcilers.autoscaling import HpaTimings
from tests.reconcilers.hpa_harness import Cluster, cluster, deployment, hpa

UP = "cpu resource utilization (percentage of request) above target"
SYNC = 15.0


async def _start(c: Cluster, *, replicas: int = 1, cpu: str = "50m", **hpa_args: Any) -> float:
    """A Deployment whose pods use `cpu` (of 100m requested) and an HPA on it; returns when it exists."""
    await c.client.create(c.rt("Deployment"), "default", deployment(replicas=replicas, cpu=cpu))
    await c.until(lambda: len(c.running()) == replicas)
    await c.client.create(c.rt("HorizontalPodAutoscaler"), "default", hpa(**hpa_args))
    return trio.current_time()


def _scale_times(c: Cluster, log: list[tuple[float, int]]) -> None:
    replicas = c.replicas()
    if not log or log[-1][1] != replicas:
        log.append((trio.current_time(), replicas))


async def _watch_replicas(c: Cluster, log: list[tuple[float, int]], until: float) -> None:
    while trio.current_time() < until:
        _scale_times(c, log)
        await trio.sleep(0.5)


async def test_scales_up_on_load_within_the_default_limits(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """No behavior: each sync at most doubles (at least +4), up to maxReplicas; the first sync is one
    period after the HPA appears; events say why."""
    with trio.fail_after(5_000):
        async with cluster(tmp_path) as c:
            created = await _start(c, cpu="200m", max_replicas=10)  # 200 % of the request, target 50 %
            log: list[tuple[float, int]] = []
            await _watch_replicas(c, log, created + 5 * SYNC)
            assert [n for _, n in log] == [1, 4, 8, 10]
            first = log[1][0] - created
            assert SYNC <= first <= SYNC + 2, first
            assert all(SYNC - 1 <= b[0] - a[0] <= SYNC + 2 for a, b in itertools.pairwise(log[1:]))
            assert [e[2] for e in c.events("web")] == [f"New size: {n}; reason: {UP}" for n in (4, 8, 10)]
            status = c.get("HorizontalPodAutoscaler", "web")["status"]
            assert status["currentReplicas"] == 10 and status["desiredReplicas"] == 10
            assert status["currentMetrics"] == [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "current": {"averageValue": "200m", "averageUtilization": 200},
                    },
                }
            ]
            limited = c.condition("web", "ScalingLimited")
            assert (limited["status"], limited["reason"], limited["message"]) == (
                "True",
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
            active = c.condition("web", "ScalingActive")
            assert (active["reason"], active["message"]) == (
                "ValidMetricFound",
                "the HPA was able to successfully calculate a replica count from cpu resource "
                "utilization (percentage of request)",
            )


async def test_scale_up_is_bounded_by_the_pods_policy_per_period(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A Pods policy of 4 per 60 s: +4, then nothing until the first scale-up leaves the period."""
    behavior = {"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]}}
    with trio.fail_after(5_000):
        async with cluster(tmp_path) as c:
            created = await _start(c, cpu="500m", max_replicas=20, behavior=behavior)
            log: list[tuple[float, int]] = []
            await _watch_replicas(c, log, created + 10 * SYNC)
            counts = [n for _, n in log]
            assert counts[:4] == [1, 5, 9, 13], log
            for (t0, n0), (t1, n1) in itertools.pairwise(log[1:]):
                assert n1 - n0 <= 4 and t1 - t0 >= 60, log
            limited = c.condition("web", "ScalingLimited")
            assert limited["reason"] == "ScaleUpLimit"
            assert (
                limited["message"]
                == "the desired replica count is increasing faster than the maximum scale rate"
            )


async def test_scales_down_only_after_the_stabilization_window(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Load stops: the highest recommendation of the window holds the count (AbleToScale
    ScaleDownStabilized) until it is older than the window; then all metrics are below target."""
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 60}}
    with trio.fail_after(5_000):
        async with cluster(tmp_path) as c:
            created = await _start(c, cpu="150m", max_replicas=3, behavior=behavior)
            await c.until(lambda: c.replicas() == 3 and len(c.running()) == 3)
            await trio.sleep(2 * SYNC)  # a few more high recommendations
            dropped = trio.current_time()
            await c.set_load("10m")
            log: list[tuple[float, int]] = []
            await trio.sleep(SYNC + 1)
            assert c.condition("web", "AbleToScale")["reason"] == "ScaleDownStabilized"
            assert c.condition("web", "AbleToScale")["message"] == (
                "recent recommendations were higher than current one, "
                "applying the highest recent recommendation"
            )
            await _watch_replicas(c, log, dropped + 90 + 2 * SYNC)
            assert [n for _, n in log] == [3, 1], log
            # the last high recommendation came from the last sync before the drop (at most one period before)
            down = log[1][0] - dropped
            assert 60 - SYNC < down <= 60 + SYNC + 2, down
            assert c.events("web")[-1][2] == "New size: 1; reason: All metrics below target"
            assert created < dropped


async def test_the_default_downscale_stabilization_is_five_minutes(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(5_000):
        async with cluster(tmp_path) as c:
            await _start(c, replicas=3, cpu="50m")  # at the 50 % target: no change
            await trio.sleep(3 * SYNC)
            assert c.replicas() == 3
            await c.set_load("5m")
            dropped = trio.current_time()
            moved = await c.until(lambda: c.replicas() != 3, limit=600)
            assert 300 - SYNC < moved - dropped <= 300 + SYNC + 2, moved - dropped
            assert c.replicas() == 1


async def test_disabled_scale_down_never_scales_down(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    behavior = {"scaleDown": {"selectPolicy": "Disabled", "stabilizationWindowSeconds": 0}}
    with trio.fail_after(5_000):
        async with cluster(tmp_path) as c:
            await _start(c, replicas=4, cpu="5m", behavior=behavior)
            await trio.sleep(6 * SYNC)
            assert c.replicas() == 4
            limited = c.condition("web", "ScalingLimited")
            assert (limited["status"], limited["reason"]) == ("True", "ScaleDownLimit")


@pytest.mark.parametrize(
    ("replicas", "low", "high", "size", "reason"),
    [
        (6, 1, 4, 4, "Current number of replicas above Spec.MaxReplicas"),
        (1, 3, 5, 3, "Current number of replicas below Spec.MinReplicas"),
    ],
    ids=["above-max", "below-min"],
)
async def test_min_and_max_bound_the_count_whatever_the_metrics(
    autojump_clock: trio.testing.MockClock,
    tmp_path: Path,
    replicas: int,
    low: int,
    high: int,
    size: int,
    reason: str,
) -> None:
    with trio.fail_after(5_000):
        async with cluster(tmp_path) as c:
            await _start(c, replicas=replicas, cpu="50m", min_replicas=low, max_replicas=high)
            await c.until(lambda: c.scaled_to(size) and c.events("web"))
            assert c.events("web") == [("Normal", "SuccessfulRescale", f"New size: {size}; reason: {reason}")]
            await trio.sleep(4 * SYNC)
            assert c.replicas() == size  # at target from then on


async def test_scale_down_to_min_replicas_says_too_few(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 0}}
    with trio.fail_after(5_000):
        async with cluster(tmp_path) as c:
            await _start(c, replicas=4, cpu="1m", min_replicas=2, behavior=behavior)
            await c.until(lambda: c.scaled_to(2))
            limited = c.condition("web", "ScalingLimited")
            assert (limited["status"], limited["reason"], limited["message"]) == (
                "True",
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )


async def test_no_metrics_is_kube_s_condition_and_events(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Pods that never run have no metrics: ScalingActive False, and the count is left alone."""
    cause = (
        "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from "
        "resource metrics API"
    )
    with trio.fail_after(5_000):
        async with cluster(tmp_path, nodes=0) as c:
            await c.client.create(c.rt("Deployment"), "default", deployment(replicas=2))
            await c.client.create(c.rt("HorizontalPodAutoscaler"), "default", hpa())
            await trio.sleep(2 * SYNC + 2)
            active = c.condition("web", "ScalingActive")
            assert (active["status"], active["reason"], active["message"]) == (
                "False",
                "FailedGetResourceMetric",
                f"the HPA was unable to compute the replica count: {cause}",
            )
            assert c.condition("web", "AbleToScale")["reason"] == "SucceededGetScale"
            reasons = {(t, r, m) for t, r, m in c.events("web")}
            assert reasons == {
                ("Warning", "FailedGetResourceMetric", cause),
                (
                    "Warning",
                    "FailedComputeMetricsReplicas",
                    "invalid metrics (1 invalid out of 1), first error is: "
                    f"failed to get cpu resource metric value: {cause}",
                ),
            }
            status = c.get("HorizontalPodAutoscaler", "web")["status"]
            assert status["currentReplicas"] == 2 and status["desiredReplicas"] == 0
            assert status["currentMetrics"] == [{"type": ""}]
            assert c.replicas() == 2


async def test_pods_without_requests_cannot_be_measured_against_them(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(5_000):
        async with cluster(tmp_path) as c:
            await c.client.create(c.rt("Deployment"), "default", deployment(request=None, cpu="200m"))
            await c.until(lambda: len(c.running()) == 1)
            await c.client.create(c.rt("HorizontalPodAutoscaler"), "default", hpa())
            await trio.sleep(SYNC + 2)
            pod = c.running()[0]["metadata"]["name"]
            cause = f"failed to get cpu utilization: missing request for cpu in container c of Pod {pod}"
            active = c.condition("web", "ScalingActive")
            assert (active["status"], active["reason"], active["message"]) == (
                "False",
                "FailedGetResourceMetric",
                f"the HPA was unable to compute the replica count: {cause}",
            )
            assert ("Warning", "FailedGetResourceMetric", cause) in c.events("web")
            assert c.replicas() == 1


async def test_average_value_targets_raw_usage(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """AverageValue: the pods' average usage against a quantity (no requests needed)."""
    metric = [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "AverageValue", "averageValue": "100m"}},
        }
    ]
    with trio.fail_after(5_000):
        async with cluster(tmp_path) as c:
            await c.client.create(
                c.rt("Deployment"), "default", deployment(request=None, cpu="250m", replicas=2)
            )
            await c.until(lambda: len(c.running()) == 2)
            await c.client.create(
                c.rt("HorizontalPodAutoscaler"), "default", hpa(metrics=metric, max_replicas=5)
            )
            # 2 x 250m / 100m = 5, at most doubled in one sync
            await c.until(lambda: c.scaled_to(4) and c.events("web"))
            status = c.get("HorizontalPodAutoscaler", "web")["status"]
            assert status["currentMetrics"][0]["resource"]["current"] == {"averageValue": "250m"}
            assert c.events("web")[0][2] == "New size: 4; reason: cpu resource above target"


async def test_a_missing_target_is_failed_get_scale(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(5_000):
        async with cluster(tmp_path, nodes=0) as c:
            await c.client.create(c.rt("HorizontalPodAutoscaler"), "default", hpa("nope"))
            await c.client.create(
                c.rt("HorizontalPodAutoscaler"),
                "default",
                hpa("odd", kind="Widget", api_version="example.com/v1"),
            )
            await trio.sleep(SYNC + 1)
            able = c.condition("nope", "AbleToScale")
            assert (able["status"], able["reason"], able["message"]) == (
                "False",
                "FailedGetScale",
                "the HPA controller was unable to get the target's current scale: "
                'deployments.apps "nope" not found',
            )
            assert c.events("nope") == [("Warning", "FailedGetScale", 'deployments.apps "nope" not found')]
            assert c.events("odd") == [
                ("Warning", "FailedGetScale", 'no matches for kind "Widget" in group "example.com"')
            ]


async def test_two_hpas_on_the_same_pods_are_ambiguous(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(5_000):
        async with cluster(tmp_path) as c:
            await _start(c, cpu="50m")
            second = hpa()
            second["metadata"]["name"] = "web-2"
            await c.client.create(c.rt("HorizontalPodAutoscaler"), "default", second)
            await trio.sleep(2 * SYNC + 2)
            active = c.condition("web-2", "ScalingActive")
            assert (active["status"], active["reason"]) == ("False", "AmbiguousSelector")
            assert active["message"] == (
                "pods by selector app=web are controlled by multiple HPAs: [{web default} {web-2 default}]"
            )


async def test_a_target_scaled_to_zero_is_left_alone(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(5_000):
        async with cluster(tmp_path) as c:
            await _start(c, replicas=0, cpu="500m")
            await trio.sleep(2 * SYNC + 2)
            active = c.condition("web", "ScalingActive")
            assert (active["status"], active["reason"], active["message"]) == (
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )
            assert c.replicas() == 0


async def test_fast_timings_sync_every_five_seconds(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(5_000):
        async with cluster(tmp_path, timings=HpaTimings(sync_period=5.0)) as c:
            created = await _start(c, cpu="200m")
            scaled = await c.until(lambda: c.replicas() > 1)
            assert 5 <= scaled - created <= 8
