"""One metric spec of an HPA -> a replica proposal and its MetricStatus (kube 1.32 horizontal.go's
computeReplicasForMetric and computeStatusFor*Metric, with replica_calculator.go's Get*Replicas).

Owns: the Resource and ContainerResource metrics, read from the resource metrics API (PodMetrics,
through a `MetricsClient`) against the pods the target's selector picks — Utilization (percent of
the pods' requests) and AverageValue — and kube's wording for each way they fail. Pods, Object
and External metrics need the custom and external metrics APIs, which orchestra does not serve:
they fail as kube fails without them. A failure is a `MetricFailure`: the ScalingActive reason,
the cause (the condition's and the Warning event's text) and the error computeReplicasForMetric
returns.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from fractions import Fraction
from typing import Any

import attrs

from orchestra.api.errors import ApiError
from orchestra.api.machinery.selectors import LabelSelector
from orchestra.client.base import MetricsClient
from orchestra.objects import Obj, as_dict, as_dicts
from orchestra.objects.quantity import canonical, parse_or_none
from orchestra.reconcilers.autoscaling.replicas import (
    TOLERANCE,
    Calculation,
    MetricError,
    PodMetric,
    Readiness,
    group_pods,
    pod_metric_values,
    pod_requests,
    replicas_for_ratio,
    usage_ratio,
    utilization_ratio,
)

NO_CUSTOM_METRICS = (
    "unable to fetch metrics from custom metrics API: no custom metrics API "
    "(custom.metrics.k8s.io) registered"
)
PodsOf = Callable[[str, LabelSelector], list[Obj]]
DEFAULT_READINESS = Readiness()


@attrs.frozen
class Proposal:
    replicas: int
    metric: str  # how events and conditions name it: "cpu resource utilization (percentage of request)"
    status: Obj  # the MetricStatus


class MetricFailure(Exception):
    def __init__(self, reason: str, cause: str, error: str) -> None:
        super().__init__(error)
        self.reason, self.cause, self.error = reason, cause, error


def milli_quantity(value: int) -> str:
    """resource.NewMilliQuantity(value, DecimalSI).String()."""
    return canonical(Fraction(value, 1000))


def go_selector(sel: Any) -> str:
    """A *metav1.LabelSelector as %+v prints it (its generated String())."""
    if sel is None:
        return "nil"
    sel = as_dict(sel)
    labels = as_dict(sel.get("matchLabels"))
    shown = "".join(f"{k}: {labels[k]}," for k in sorted(labels))
    exprs = "".join(
        f"LabelSelectorRequirement{{Key:{e.get('key') or ''},Operator:{e.get('operator') or ''},"
        f"Values:[{' '.join(str(v) for v in e.get('values') or [])}],}},"
        for e in as_dicts(sel.get("matchExpressions"))
    )
    return (
        f"&LabelSelector{{MatchLabels:map[string]string{{{shown}}},"
        f"MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )


def _target_milli(target: Obj, key: str) -> int:
    value = parse_or_none(target.get(key))
    return 0 if value is None else value.milli_value()  # validation requires a quantity here


class MetricSources:
    def __init__(
        self,
        metrics: MetricsClient,
        pods: PodsOf,
        *,
        readiness: Readiness = DEFAULT_READINESS,
        tolerance: float = TOLERANCE,
    ) -> None:
        self.metrics = metrics
        self.pods = pods
        self.readiness = readiness
        self.tolerance = tolerance

    async def propose(
        self, spec: Obj, namespace: str, spec_replicas: int, selector: LabelSelector, now: datetime
    ) -> Proposal:
        mtype = str(spec.get("type") or "")
        if mtype == "Resource":
            return await self._resource(
                as_dict(spec.get("resource")), namespace, spec_replicas, selector, now
            )
        if mtype == "ContainerResource":
            return await self._resource(
                as_dict(spec.get("containerResource")),
                namespace,
                spec_replicas,
                selector,
                now,
                container=True,
            )
        if mtype == "Pods":
            name = str(as_dict(as_dict(spec.get("pods")).get("metric")).get("name") or "")
            cause = f"unable to get metric {name}: {NO_CUSTOM_METRICS}"
            raise MetricFailure("FailedGetPodsMetric", cause, f"failed to get pods metric value: {cause}")
        if mtype == "Object":
            raise self._object_failure(as_dict(spec.get("object")), namespace)
        if mtype == "External":
            raise self._external_failure(as_dict(spec.get("external")), namespace)
        cause = f'unknown metric source type "{mtype}"'
        raise MetricFailure("InvalidMetricSourceType", cause, cause)

    # --- resource metrics --------------------------------------------------------------------------

    async def _resource(
        self,
        source: Obj,
        namespace: str,
        current: int,
        selector: LabelSelector,
        now: datetime,
        *,
        container: bool = False,
    ) -> Proposal:
        resource, target = str(source.get("name") or ""), as_dict(source.get("target"))
        name = str(source.get("container") or "") if container else ""
        kind = "ContainerResource" if container else "Resource"
        try:
            replicas, value, metric = await self._generic(
                target, resource, namespace, name, current, selector, now
            )
        except MetricError as exc:
            reason = "FailedGetContainerResourceMetric" if container else "FailedGetResourceMetric"
            wrapped = (
                f"failed to get {name} container metric value: {exc}"
                if container
                else f"failed to get {resource} resource metric value: {exc}"
            )
            raise MetricFailure(reason, str(exc), wrapped) from None
        if container and metric.endswith("(percentage of request)"):
            metric = f"{resource} container resource utilization (percentage of request)"
        status: Obj = {"name": resource, "current": value}
        if container:
            status = {"name": resource, "container": name, "current": value}
        return Proposal(
            replicas, metric, {"type": kind, "containerResource" if container else "resource": status}
        )

    async def _generic(
        self,
        target: Obj,
        resource: str,
        namespace: str,
        container: str,
        current: int,
        selector: LabelSelector,
        now: datetime,
    ) -> tuple[int, Obj, str]:
        if target.get("averageValue") is not None:
            try:
                replicas, usage = await self._raw_replicas(
                    current,
                    _target_milli(target, "averageValue"),
                    resource,
                    namespace,
                    selector,
                    container,
                    now,
                )
            except MetricError as exc:
                raise MetricError(f"failed to get {resource} usage: {exc}") from None
            return replicas, {"averageValue": milli_quantity(usage)}, f"{resource} resource"
        if target.get("averageUtilization") is None:
            raise MetricError(
                "invalid resource metric source: neither an average utilization target nor an average "
                "value (usage) target was set"
            )
        try:
            replicas, percent, raw = await self._utilization_replicas(
                current, int(target["averageUtilization"]), resource, namespace, selector, container, now
            )
        except MetricError as exc:
            raise MetricError(f"failed to get {resource} utilization: {exc}") from None
        value: Obj = {"averageValue": milli_quantity(raw), "averageUtilization": percent}
        return replicas, value, f"{resource} resource utilization (percentage of request)"

    async def _resource_metric(
        self, resource: str, namespace: str, selector: LabelSelector, container: str
    ) -> dict[str, PodMetric]:
        """GetResourceMetric, wrapped as GetResourceReplicas wraps it."""
        try:
            try:
                items = await self.metrics.pod_metrics(namespace, str(selector))
            except ApiError as exc:
                raise MetricError(
                    f"unable to fetch metrics from resource metrics API: {exc.message}"
                ) from None
            except OSError as exc:  # the metrics API could not be reached (HttpMetricsClient)
                raise MetricError(f"unable to fetch metrics from resource metrics API: {exc}") from None
            if not items:
                raise MetricError("no metrics returned from resource metrics API")
            return pod_metric_values(items, resource, container)
        except MetricError as exc:
            raise MetricError(f"unable to get metrics for resource {resource}: {exc}") from None

    def _measured(
        self,
        metrics: dict[str, PodMetric],
        resource: str,
        namespace: str,
        selector: LabelSelector,
        now: datetime,
    ) -> tuple[list[Obj], Calculation]:
        pods = self.pods(namespace, selector)
        if not pods:
            raise MetricError("no pods returned by selector while calculating replica count")
        grouping = group_pods(pods, metrics, resource, now, self.readiness)
        kept = {k: v for k, v in metrics.items() if k not in grouping.ignored and k not in grouping.unready}
        if not kept:
            raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
        return pods, Calculation(0, kept, grouping, self.tolerance)

    async def _utilization_replicas(
        self,
        current: int,
        target: int,
        resource: str,
        namespace: str,
        selector: LabelSelector,
        container: str,
        now: datetime,
    ) -> tuple[int, int, int]:
        """GetResourceReplicas: (replicas, utilization percent, average raw value)."""
        metrics = await self._resource_metric(resource, namespace, selector, container)
        pods, calc = self._measured(metrics, resource, namespace, selector, now)
        requests = pod_requests(pods, container, resource)
        ratio, percent, raw = utilization_ratio(calc.metrics, requests, target)
        fallback = {name: requests.get(name, 0) * max(100, target) // 100 for name in calc.grouping.missing}
        replicas = replicas_for_ratio(
            attrs.evolve(calc, current=current),
            ratio,
            lambda m: utilization_ratio(m, requests, target)[0],
            fallback,
        )
        return replicas, percent, raw

    async def _raw_replicas(
        self,
        current: int,
        target: int,
        resource: str,
        namespace: str,
        selector: LabelSelector,
        container: str,
        now: datetime,
    ) -> tuple[int, int]:
        """GetRawResourceReplicas: (replicas, average usage)."""
        metrics = await self._resource_metric(resource, namespace, selector, container)
        _, calc = self._measured(metrics, resource, namespace, selector, now)
        ratio, usage = usage_ratio(calc.metrics, target)
        fallback = {name: target for name in calc.grouping.missing}  # on a scale-down: exactly the target
        replicas = replicas_for_ratio(
            attrs.evolve(calc, current=current), ratio, lambda m: usage_ratio(m, target)[0], fallback
        )
        return replicas, usage

    # --- metrics of APIs orchestra does not serve ------------------------------------------------------

    @staticmethod
    def _object_failure(source: Obj, namespace: str) -> MetricFailure:
        target, metric = as_dict(source.get("target")), as_dict(source.get("metric"))
        described = as_dict(source.get("describedObject"))
        name, ttype = str(metric.get("name") or ""), target.get("type")
        cause = (
            f"unable to get metric {name}: {NO_CUSTOM_METRICS} on {described.get('kind') or ''} "
            f"{namespace}/{described.get('name') or ''}"
        )
        if ttype == "Value" and target.get("value") is not None:
            inner = cause
        elif ttype == "AverageValue" and target.get("averageValue") is not None:
            inner = f"failed to get {name} object metric: {cause}"
        else:
            cause = inner = (
                "invalid object metric source: neither a value target nor an average value target was set"
            )
        return MetricFailure("FailedGetObjectMetric", cause, f"failed to get object metric value: {inner}")

    @staticmethod
    def _external_failure(source: Obj, namespace: str) -> MetricFailure:
        target, metric = as_dict(source.get("target")), as_dict(source.get("metric"))
        name = str(metric.get("name") or "")
        outer = f"failed to get {name} external metric value: "
        if target.get("averageValue") is None and target.get("value") is None:
            cause = (
                "invalid external metric source: neither a value target nor an average value target was set"
            )
            return MetricFailure("FailedGetExternalMetric", cause, outer + cause)
        cause = (
            f"unable to get external metric {namespace}/{name}/{go_selector(metric.get('selector'))}: "
            "unable to "
            f"fetch metrics from external metrics API: the server could not find the requested resource "
            f"(get {name}.external.metrics.k8s.io)"
        )
        inner = (
            f"failed to get {name} external metric: {cause}"
            if target.get("averageValue") is not None
            else f"failed to get external metric {name}: {cause}"
        )
        return MetricFailure("FailedGetExternalMetric", cause, outer + inner)
