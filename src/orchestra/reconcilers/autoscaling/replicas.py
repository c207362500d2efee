"""The HPA's replica calculation (kube 1.32 pkg/controller/podautoscaler/replica_calculator.go and
metrics/utilization.go), on PodMetrics objects and pods as the controller's caches hold them.

Owns: reading PodMetrics into per-pod values (`pod_metric_values`: the metrics client's
getPodMetrics / getContainerMetrics), grouping pods into ready, unready (pending; for CPU: not
Ready, or within the 5 minute initialization period until one metric window after becoming Ready,
or never Ready within the 30 s initial readiness delay), missing (no metrics) and ignored (deleted
or failed), the requests per pod (a container without a request is an error), the utilization and
usage ratios (integer percent, as kube truncates), the tolerance (0.1 either way), and the
missing-pod and unready-pod rules: on a scale-up missing and unready pods count as using nothing,
on a scale-down missing pods count as using their request (or the target, above 100 %); a
rule that flips the direction, or a change within tolerance, keeps the current count.
Errors are `MetricError`s worded as kube's errors, for the controller's conditions and events.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

import attrs

from orchestra.objects import Obj, as_dict, as_dicts, get_condition, meta, parse_time, status
from orchestra.objects.quantity import parse_or_none

TOLERANCE = 0.1
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


class MetricError(Exception):
    """Why no replica count came out of a metric, in kube's words."""


@attrs.frozen
class PodMetric:
    value: int  # milli-units (millicores, or milli-bytes for memory)
    timestamp: datetime | None = None
    window: float = 0.0  # seconds the value was measured over


@attrs.frozen
class Grouping:
    ready: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


@attrs.frozen
class Readiness:
    """When a CPU sample of a pod counts (the controller's flags)."""

    cpu_initialization_period: float = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period
    initial_readiness_delay: float = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay


def go_duration_value(text: object) -> float:
    """A metav1.Duration as metrics-server writes `window` (`15.034s`, `1m0s`, `500ms`), in seconds."""
    parts = _DURATION.findall(str(text or ""))
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def pod_metric_values(items: list[Obj], resource: str, container: str = "") -> dict[str, PodMetric]:
    """Per pod name: the resource summed over its containers (or the one `container`). A pod with no
    containers, or one lacking the resource, has no value (getPodMetrics)."""
    out: dict[str, PodMetric] = {}
    for item in items:
        m = meta(item)
        name = str(m.get("name") or "")
        when, window = parse_time(item.get("timestamp")), go_duration_value(item.get("window"))
        containers = as_dicts(item.get("containers"))
        if container:
            found = next((c for c in containers if c.get("name") == container), None)
            if found is None:
                raise MetricError(
                    f"failed to get container metrics: container {container} not present in metrics "
                    f"for pod {m.get('namespace') or ''}/{name}"
                )
            value = _usage(found, resource)
            if value is not None:
                out[name] = PodMetric(value, when, window)
            continue
        values = [_usage(c, resource) for c in containers]
        if containers and None not in values:
            out[name] = PodMetric(sum(v for v in values if v is not None), when, window)
    return out


def _usage(container: Obj, resource: str) -> int | None:
    """The container's usage in milli-units; None when absent (a malformed one counts as absent)."""
    usage = parse_or_none(as_dict(container.get("usage")).get(resource))
    return None if usage is None else usage.milli_value()


def group_pods(
    pods: Iterable[Obj], metrics: Mapping[str, PodMetric], resource: str, now: datetime, readiness: Readiness
) -> Grouping:
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        name, phase = str(meta(pod).get("name") or ""), status(pod).get("phase")
        if meta(pod).get("deletionTimestamp") or phase == "Failed":
            ignored.add(name)
        elif phase == "Pending":
            unready.add(name)
        elif name not in metrics:
            missing.add(name)
        elif resource == "cpu" and _cpu_sample_unready(pod, metrics[name], now, readiness):
            unready.add(name)
        else:
            ready += 1
    return Grouping(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def _cpu_sample_unready(pod: Obj, metric: PodMetric, now: datetime, readiness: Readiness) -> bool:
    condition = get_condition(status(pod), "Ready")
    started = parse_time(status(pod).get("startTime"))
    if condition is None or started is None:
        return True
    changed = parse_time(condition.get("lastTransitionTime"))
    if started + timedelta(seconds=readiness.cpu_initialization_period) > now:
        # still initializing: ignore the sample if unready, or taken before one window after becoming ready
        if condition.get("status") == "False":
            return True
        return (
            metric.timestamp is None
            or changed is None
            or metric.timestamp < changed + timedelta(seconds=metric.window)
        )
    # past initialization: ignore it only if unready and never ready since the initial readiness delay
    return (
        condition.get("status") == "False"
        and changed is not None
        and started + timedelta(seconds=readiness.initial_readiness_delay) > changed
    )


def pod_requests(pods: Iterable[Obj], container: str, resource: str) -> dict[str, int]:
    """Per pod name, the request in milli-units of its containers (regular and restartable init ones),
    or of the one `container`; an error names the first container without one."""
    out: dict[str, int] = {}
    for pod in pods:
        spec = as_dict(pod.get("spec"))
        containers = as_dicts(spec.get("containers")) + [
            c for c in as_dicts(spec.get("initContainers")) if c.get("restartPolicy") == "Always"
        ]
        total = 0
        for c in containers:
            if container and c.get("name") != container:
                continue
            request = parse_or_none(as_dict(as_dict(c.get("resources")).get("requests")).get(resource))
            if request is None:
                raise MetricError(
                    f"missing request for {resource} in container {c.get('name') or ''} of Pod "
                    f"{meta(pod).get('name') or ''}"
                )
            total += request.milli_value()
        out[str(meta(pod).get("name") or "")] = total
    return out


def utilization_ratio(
    metrics: Mapping[str, PodMetric], requests: Mapping[str, int], target: int
) -> tuple[float, int, int]:
    """(usage ratio, utilization percent, average raw value) — GetResourceUtilizationRatio."""
    used = requested = entries = 0
    for name, metric in metrics.items():
        if name not in requests:
            continue  # missing requests are checked elsewhere: an extraneous metric
        used, requested, entries = used + metric.value, requested + requests[name], entries + 1
    if requested == 0:
        raise MetricError("no metrics returned matched known pods")
    utilization = _go_div(used * 100, requested)
    return utilization / target, utilization, _go_div(used, entries)


def usage_ratio(metrics: Mapping[str, PodMetric], target: int) -> tuple[float, int]:
    """(usage ratio, average usage) — GetMetricUsageRatio."""
    average = _go_div(sum(m.value for m in metrics.values()), len(metrics))
    return average / target, average


def _go_div(a: int, b: int) -> int:
    """Go's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def within_tolerance(ratio: float, tolerance: float = TOLERANCE) -> bool:
    return abs(1.0 - ratio) <= tolerance


@attrs.frozen
class Calculation:
    """What the pods measured: everything a rule below needs."""

    current: int  # the target's spec.replicas
    metrics: dict[str, PodMetric]
    grouping: Grouping
    tolerance: float = TOLERANCE


def replicas_for_ratio(
    calc: Calculation,
    ratio: float,
    recount: Callable[[dict[str, PodMetric]], float],
    fallback: dict[str, int],
) -> int:
    """The desired count from a usage ratio, with kube's rules for unready and missing pods.
    `recount(metrics) -> ratio` re-runs the ratio with adjusted values; `fallback` is what each
    missing pod counts as on a scale-down."""
    g = calc.grouping
    scale_up_with_unready = bool(g.unready) and ratio > 1.0
    if not scale_up_with_unready and not g.missing:
        if within_tolerance(ratio, calc.tolerance):
            return calc.current
        return math.ceil(ratio * g.ready)
    metrics = dict(calc.metrics)
    if g.missing:
        if ratio < 1.0:
            metrics.update({name: PodMetric(fallback.get(name, 0)) for name in g.missing})
        elif ratio > 1.0:
            metrics.update({name: PodMetric(0) for name in g.missing})
    if scale_up_with_unready:
        metrics.update({name: PodMetric(0) for name in g.unready})
    new_ratio = recount(metrics)
    if within_tolerance(new_ratio, calc.tolerance) or (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio):
        return calc.current  # too small a change, or the direction would flip
    replicas = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and replicas > calc.current) or (new_ratio > 1.0 and replicas < calc.current):
        return calc.current  # counting the pods differently would flip the direction
    return replicas
