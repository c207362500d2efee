"""The HorizontalPodAutoscaler controller (kube 1.32 pkg/controller/podautoscaler/horizontal.go).

Owns: syncing each HPA every sync period (15 s, kube's --horizontal-pod-autoscaler-sync-period; an
HPA is first synced one period after it appears, as kube's queue delays every add): reading the
target's scale subresource (any kind that has one), computing the desired count from the metrics
(sources.py), bounding it (normalize.py), updating the target's scale, and the HPA's status —
currentReplicas, desiredReplicas, currentMetrics, lastScaleTime and the AbleToScale, ScalingActive
and ScalingLimited conditions with kube's reasons and messages — plus kube's events
(SuccessfulRescale "New size: 3; reason: cpu resource utilization (percentage of request) above
target", FailedGetScale, FailedGetResourceMetric, FailedComputeMetricsReplicas, FailedRescale,
SelectorRequired, InvalidSelector, AmbiguousSelector, FailedUpdateStatus).
Timestamps in objects come from the injected Clock; windows and periods from trio time.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, NoReturn

import attrs
import trio

from orchestra.api.errors import ApiError, BadRequest
from orchestra.api.machinery.selectors import LabelSelector, parse_label_selector
from orchestra.api.registry import ResourceType
from orchestra.client.base import Client, MetricsClient
from orchestra.controller import NORMAL, WARNING, Controller, Result, registry_of, split_key
from orchestra.controller.clock import Clock, wall_clock
from orchestra.objects import (
    Obj,
    as_dict,
    as_dicts,
    deep_copy,
    format_time,
    labels_of,
    meta,
    object_key,
    spec,
    status,
)
from orchestra.reconcilers.autoscaling.normalize import History, Limits, Outcome
from orchestra.reconcilers.autoscaling.replicas import TOLERANCE, Readiness
from orchestra.reconcilers.autoscaling.sources import MetricFailure, MetricSources

log = logging.getLogger("orchestra.reconcilers.autoscaling")


@attrs.frozen
class HpaTimings:
    """kube-controller-manager's HPA flags."""

    sync_period: float = 15.0  # --horizontal-pod-autoscaler-sync-period
    downscale_stabilization: float = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization
    tolerance: float = TOLERANCE  # --horizontal-pod-autoscaler-tolerance
    cpu_initialization_period: float = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period
    initial_readiness_delay: float = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay


DEFAULT_HPA_TIMINGS = HpaTimings()
FAST_HPA_TIMINGS = HpaTimings(sync_period=5.0, downscale_stabilization=60.0)  # `orchestra up --timings fast`


class _Stop(Exception):
    """This sync ends here; conditions, status and events are already recorded."""


class _Unusable(Exception):
    """The target's selector cannot be used (the message is kube's error)."""


class HorizontalController(Controller):
    name = "horizontal-pod-autoscaler"

    def __init__(
        self,
        client: Client,
        metrics: MetricsClient,
        *,
        timings: HpaTimings = DEFAULT_HPA_TIMINGS,
        clock: Clock = wall_clock,
        workers: int = 1,
    ) -> None:
        super().__init__(client, workers=workers)
        self.timings = timings
        self.clock = clock
        self.hpas = self.informer("HorizontalPodAutoscaler")
        self.pods = self.informer("Pod")
        readiness = Readiness(timings.cpu_initialization_period, timings.initial_readiness_delay)
        self.sources = MetricSources(
            metrics, lambda ns, sel: self.pods.list(ns, sel), readiness=readiness, tolerance=timings.tolerance
        )
        self.history = History()
        self._selectors: dict[
            str, LabelSelector | None
        ] = {}  # HPA key -> its target's pod selector, once known
        self.enqueue_on(self.hpas, self._schedule)

    def _schedule(self, event_type: str, old: Obj | None, new: Obj | None) -> Iterable[str]:
        """kube adds every HPA event rate-limited by the sync period: one sync per period at most."""
        obj = new if new is not None else old
        if obj is None:
            return ()
        key = object_key(obj)
        if event_type == "DELETED":
            self._selectors.pop(key, None)
            return ()
        self._selectors.setdefault(key, None)
        self.queue.add_after(key, self.timings.sync_period)
        return ()

    def restarted(self) -> None:
        self.history = History()
        self._selectors.clear()

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        hpa = self.hpas.get(namespace, name)
        if hpa is None:
            self.history.forget(key)
            self._selectors.pop(key, None)
            return None
        try:
            await self._sync(key, deep_copy(hpa))
        except _Stop:
            log.debug("%s: %s: sync ended early (see its conditions and events)", self.name, key)
        return Result(requeue_after=self.timings.sync_period)

    # --- one sync ---------------------------------------------------------------------------------------

    async def _sync(self, key: str, hpa: Obj) -> None:
        before = deep_copy(status(hpa))
        rt, scale = await self._target_scale(hpa, before)
        self._condition(
            hpa,
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        )
        current = int(as_dict(scale.get("spec")).get("replicas") or 0)
        self.history.record_initial(key, current, trio.current_time())
        low = spec(hpa).get("minReplicas")
        low = 1 if low is None else int(low)
        high = int(spec(hpa).get("maxReplicas") or 0)
        statuses: list[Obj] | None = None
        rescale, reason = True, ""
        if current == 0 and low != 0:  # autoscaling is disabled for this target
            desired, rescale = 0, False
            self._condition(
                hpa,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )
        elif current > high:
            desired, reason = high, "Current number of replicas above Spec.MaxReplicas"
        elif current < low:
            desired, reason = low, "Current number of replicas below Spec.MinReplicas"
        else:
            proposed, metric, statuses = await self._metrics_replicas(key, hpa, scale, current, before)
            reason = (
                f"{metric} above target"
                if proposed > current
                else "All metrics below target"
                if proposed < current
                else ""
            )
            desired = self._normalized(key, hpa, Limits(key, current, proposed, low, high))
            rescale = desired != current
        if rescale:
            await self._rescale(key, hpa, rt, scale, current, desired, reason, statuses, before)
        else:
            desired = current
        self._set_status(hpa, current, desired, statuses, rescaled=rescale)
        await self._write_status(hpa, before)

    async def _target_scale(self, hpa: Obj, before: Obj) -> tuple[ResourceType, Obj]:
        """The target's resource and Scale; when they cannot be had, records why and stops the sync."""
        ref = as_dict(spec(hpa).get("scaleTargetRef"))
        group, problem = _parse_group(str(ref.get("apiVersion") or ""))
        kind, target_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        rt = None
        if problem is None:
            rt = next(
                (t for t in registry_of(self.client).types if t.group == group and t.kind == kind), None
            )
            if rt is None:
                problem = f'no matches for kind "{kind}" in group "{group}"'
            elif not rt.has_subresource("scale"):
                problem = "the server could not find the requested resource"
        if rt is not None and problem is None:
            try:
                return rt, await self.client.get_scale(rt, meta(hpa).get("namespace"), target_name)
            except ApiError as exc:
                problem = exc.message
        self.recorder.event(hpa, WARNING, "FailedGetScale", problem or "")
        self._condition(
            hpa,
            "AbleToScale",
            "False",
            "FailedGetScale",
            f"the HPA controller was unable to get the target's current scale: {problem}",
        )
        await self._write_status(hpa, before)
        raise _Stop

    async def _metrics_replicas(
        self, key: str, hpa: Obj, scale: Obj, current: int, before: Obj
    ) -> tuple[int, str, list[Obj]]:
        """computeReplicasForMetrics; when no metric gives a count, records why and stops the sync."""
        namespace = str(meta(hpa).get("namespace") or "")
        specs = as_dicts(spec(hpa).get("metrics"))
        statuses: list[Obj] = [{"type": ""} for _ in specs]  # Go's zero MetricStatus for each failed one
        try:
            selector = self._selector(key, hpa, scale)
        except _Unusable as problem:
            await self._metrics_failed(hpa, current, None, str(problem), before)
        replicas, metric, failed, first = 0, "", 0, None
        now = self.clock()
        for i, metric_spec in enumerate(specs):
            try:
                proposal = await self.sources.propose(metric_spec, namespace, current, selector, now)
            except MetricFailure as failure:
                self.recorder.event(hpa, WARNING, failure.reason, failure.cause)
                first = first or failure
                failed += 1
                continue
            statuses[i] = proposal.status
            if replicas == 0 or proposal.replicas > replicas:
                replicas, metric = proposal.replicas, proposal.metric
        if first is not None and (failed >= len(specs) or replicas < current):
            self._condition(
                hpa,
                "ScalingActive",
                "False",
                first.reason,
                f"the HPA was unable to compute the replica count: {first.cause}",
            )
            error = f"invalid metrics ({failed} invalid out of {len(specs)}), first error is: {first.error}"
            await self._metrics_failed(hpa, current, statuses, error, before)
        self._condition(
            hpa,
            "ScalingActive",
            "True",
            "ValidMetricFound",
            f"the HPA was able to successfully calculate a replica count from {metric}",
        )
        return replicas, metric, statuses

    async def _metrics_failed(
        self, hpa: Obj, current: int, statuses: list[Obj] | None, error: str, before: Obj
    ) -> NoReturn:
        self._set_status(hpa, current, int(status(hpa).get("desiredReplicas") or 0), statuses, rescaled=False)
        await self._write_status(hpa, before)
        self.recorder.event(hpa, WARNING, "FailedComputeMetricsReplicas", error)
        raise _Stop

    def _selector(self, key: str, hpa: Obj, scale: Obj) -> LabelSelector:
        """validateAndParseSelector; raises _Unusable (conditions and events recorded) when it is unusable."""
        text = str(as_dict(scale.get("status")).get("selector") or "")
        namespace = str(meta(hpa).get("namespace") or "")
        if not text:
            self.recorder.event(hpa, WARNING, "SelectorRequired", "selector is required")
            self._condition(
                hpa,
                "ScalingActive",
                "False",
                "InvalidSelector",
                "the HPA target's scale is missing a selector",
            )
            raise _Unusable("selector is required")
        try:
            selector = parse_label_selector(text)
        except BadRequest as exc:
            message = (
                f"couldn't convert selector into a corresponding internal selector object: {exc.message}"
            )
            self.recorder.event(hpa, WARNING, "InvalidSelector", message)
            self._condition(hpa, "ScalingActive", "False", "InvalidSelector", message)
            raise _Unusable(message) from None
        if key in self._selectors:
            self._selectors[key] = selector
        controlling = sorted(self._controlling(namespace, self.pods.list(namespace, selector)))
        if len(controlling) > 1:
            shown = " ".join(f"{{{name} {namespace}}}" for name in controlling)
            message = f"pods by selector {text} are controlled by multiple HPAs: [{shown}]"
            self.recorder.event(hpa, WARNING, "AmbiguousSelector", message)
            self._condition(hpa, "ScalingActive", "False", "AmbiguousSelector", message)
            raise _Unusable(message)
        return selector

    def _controlling(self, namespace: str, pods: list[Obj]) -> set[str]:
        """Names of the namespace's HPAs whose (known) selectors pick any of `pods`."""
        names = set()
        for key, selector in self._selectors.items():
            hpa_ns, hpa_name = split_key(key)
            if (
                selector is not None
                and hpa_ns == namespace
                and any(selector.matches(labels_of(p)) for p in pods)
            ):
                names.add(hpa_name)
        return names

    def _normalized(self, key: str, hpa: Obj, limits: Limits) -> int:
        behavior = spec(hpa).get("behavior")
        now = trio.current_time()
        if not isinstance(behavior, dict):
            outcome = self.history.normalize(limits, self.timings.downscale_stabilization, now)
        else:
            down = dict(as_dict(behavior.get("scaleDown")))
            if down.get("stabilizationWindowSeconds") is None:  # maybeInitScaleDownStabilizationWindow
                down["stabilizationWindowSeconds"] = int(self.timings.downscale_stabilization)
            limits = attrs.evolve(limits, scale_up=as_dict(behavior.get("scaleUp")), scale_down=down)
            outcome = self.history.normalize_with_behavior(limits, now)
        self._record(hpa, outcome)
        return outcome.replicas

    def _record(self, hpa: Obj, outcome: Outcome) -> None:
        self._condition(hpa, "AbleToScale", "True", outcome.able_reason, outcome.able_message)
        self._condition(
            hpa,
            "ScalingLimited",
            "True" if outcome.limited else "False",
            outcome.limited_reason,
            outcome.limited_message,
        )

    async def _rescale(
        self,
        key: str,
        hpa: Obj,
        rt: ResourceType,
        scale: Obj,
        current: int,
        desired: int,
        reason: str,
        statuses: list[Obj] | None,
        before: Obj,
    ) -> None:
        scale = {**scale, "spec": {**as_dict(scale.get("spec")), "replicas": desired}}
        try:
            await self.client.update_scale(rt, scale)
        except ApiError as exc:
            self.recorder.event(
                hpa, WARNING, "FailedRescale", f"New size: {desired}; reason: {reason}; error: {exc.message}"
            )
            self._condition(
                hpa,
                "AbleToScale",
                "False",
                "FailedUpdateScale",
                f"the HPA controller was unable to update the target scale: {exc.message}",
            )
            self._set_status(
                hpa, current, int(status(hpa).get("desiredReplicas") or 0), statuses, rescaled=False
            )
            await self._write_status(hpa, before)
            raise _Stop from None
        self._condition(
            hpa,
            "AbleToScale",
            "True",
            "SucceededRescale",
            f"the HPA controller was able to update the target scale to {desired}",
        )
        self.recorder.event(hpa, NORMAL, "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
        behavior = spec(hpa).get("behavior")
        self.history.store_scale_event(
            behavior if isinstance(behavior, dict) else None, key, current, desired, trio.current_time()
        )
        log.info("%s: %s: rescaled %d -> %d (%s)", self.name, key, current, desired, reason)

    # --- status -------------------------------------------------------------------------------------

    def _condition(self, hpa: Obj, ctype: str, cstatus: str, reason: str, message: str) -> None:
        """setCondition: in place, appended when new; the transition time moves only when the status does."""
        st = hpa.setdefault("status", {})
        conditions = as_dicts(st.get("conditions"))
        found = next((c for c in conditions if c.get("type") == ctype), None)
        if found is None:
            found = {"type": ctype}
            conditions.append(found)
        if found.get("status") != cstatus:
            found["lastTransitionTime"] = format_time(self.clock())
        found.update(status=cstatus, reason=reason, message=message)
        st["conditions"] = [_ordered(c) for c in conditions]

    def _set_status(
        self, hpa: Obj, current: int, desired: int, metrics: list[Obj] | None, *, rescaled: bool
    ) -> None:
        """setStatus, in the shape autoscaling/v2 serializes (currentReplicas and conditions omitempty)."""
        old = status(hpa)
        new: Obj = {}
        last = format_time(self.clock()) if rescaled else old.get("lastScaleTime")
        if last:
            new["lastScaleTime"] = last
        if current:
            new["currentReplicas"] = current
        new["desiredReplicas"] = desired
        new["currentMetrics"] = metrics
        if old.get("conditions"):
            new["conditions"] = old["conditions"]
        hpa["status"] = new

    async def _write_status(self, hpa: Obj, before: Obj) -> None:
        """updateStatusIfNeeded: write only a changed status; a failed write is an event, tried next sync."""
        if status(hpa) == before:
            return
        try:
            await self.client.update_status(self.hpas.rt, hpa)
        except ApiError as exc:
            self.recorder.event(hpa, WARNING, "FailedUpdateStatus", exc.message)
            log.info("%s: failed to update status for %s: %s", self.name, meta(hpa).get("name"), exc.message)


def _ordered(cond: Obj) -> Obj:
    """A condition's fields in the order autoscaling/v2 serializes them."""
    keys = ("type", "status", "lastTransitionTime", "reason", "message")
    return {k: cond[k] for k in keys if k in cond}


def _parse_group(api_version: str) -> tuple[str, str | None]:
    """schema.ParseGroupVersion's group: ("apps", None) for apps/v1; an error for a/b/c."""
    if api_version in ("", "/"):
        return "", None
    slashes = api_version.count("/")
    if slashes == 0:
        return "", None
    if slashes == 1:
        return api_version.split("/")[0], None
    return "", f"unexpected GroupVersion string: {api_version}"


def hpa_controllers(client: Client, metrics: MetricsClient, **kwargs: Any) -> list[Controller]:
    return [HorizontalController(client, metrics, **kwargs)]
