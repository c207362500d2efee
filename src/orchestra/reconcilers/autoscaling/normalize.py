"""From the metrics' desired count to the count an HPA scales to (kube 1.32 horizontal.go's
normalizeDesiredReplicas and normalizeDesiredReplicasWithBehaviors).

Owns: each HPA's recommendation history and scale events (in memory, as kube keeps them) and the
two paths:
  * without spec.behavior: the downscale stabilization window (the highest recommendation of the
    last 300 s) and a scale-up of at most max(2 x current, 4) per sync, bounded by min/max;
  * with spec.behavior: stabilization windows both ways (the lowest recent recommendation going
    up, the highest going down), then each direction's policies over their periods (Pods: a number
    of pods, Percent: of the count at the period's start; selectPolicy Max, Min or Disabled),
    bounded by min/max.
Each returns the count and the AbleToScale / ScalingLimited reasons and messages kube sets. Times
are trio's (seconds), so a virtual clock drives the windows.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs

from orchestra.objects import Obj, as_dict, as_dicts

SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0


@attrs.define
class _Recommendation:
    replicas: int
    at: float


@attrs.define
class _ScaleEvent:
    change: int  # replicas added (scale-up list) or removed (scale-down list)
    at: float
    outdated: bool = False


@attrs.frozen
class Limits:
    """NormalizationArg: one HPA's bounds, behavior and counts for one sync."""

    key: str
    current: int
    desired: int
    min_replicas: int
    max_replicas: int
    scale_up: Obj = attrs.field(factory=dict)
    scale_down: Obj = attrs.field(factory=dict)


@attrs.frozen
class Outcome:
    replicas: int
    able_reason: str  # AbleToScale (True)
    able_message: str
    limited: bool  # ScalingLimited's status
    limited_reason: str
    limited_message: str


STABLE = ("ReadyForNewScale", "recommended size matches current size")


class History:
    def __init__(self) -> None:
        self._recommendations: dict[str, list[_Recommendation]] = {}
        self._up: dict[str, list[_ScaleEvent]] = {}
        self._down: dict[str, list[_ScaleEvent]] = {}

    def forget(self, key: str) -> None:
        for table in (self._recommendations, self._up, self._down):
            table.pop(key, None)

    def record_initial(self, key: str, current: int, now: float) -> None:
        """recordInitialRecommendation: the first sync remembers the count it found."""
        self._recommendations.setdefault(key, [_Recommendation(current, now)])

    # --- without behavior ------------------------------------------------------------------------------

    def normalize(self, limits: Limits, window: float, now: float) -> Outcome:
        stabilized = self._stabilize(limits.key, limits.desired, window, now)
        able = (
            STABLE
            if stabilized == limits.desired
            else (
                "ScaleDownStabilized",
                "recent recommendations were higher than current one, applying the highest recent "
                "recommendation",
            )
        )
        replicas, reason, message = _within_rules(
            limits.current, stabilized, limits.min_replicas, limits.max_replicas
        )
        return Outcome(replicas, *able, replicas != stabilized, reason, message)

    def _stabilize(self, key: str, desired: int, window: float, now: float) -> int:
        """stabilizeRecommendation: the window's highest recommendation; the new one replaces an old one."""
        highest, old = desired, None
        recs = self._recommendations.setdefault(key, [])
        for i, rec in enumerate(recs):
            if rec.at < now - window:
                old = i
            elif rec.replicas > highest:
                highest = rec.replicas
        _replace_or_append(recs, old, _Recommendation(desired, now))
        return highest

    # --- with behavior -------------------------------------------------------------------------------

    def normalize_with_behavior(self, limits: Limits, now: float) -> Outcome:
        stabilized, reason, message = self._stabilize_with_behavior(limits, now)
        able = STABLE if stabilized == limits.desired else (reason, message)
        replicas, reason, message = self._rate_limited(attrs.evolve(limits, desired=stabilized), now)
        return Outcome(replicas, *able, replicas != stabilized, reason, message)

    def _stabilize_with_behavior(self, limits: Limits, now: float) -> tuple[int, str, str]:
        up_cutoff = now - _window(limits.scale_up)
        down_cutoff = now - _window(limits.scale_down)
        up, down, old = limits.desired, limits.desired, None
        recs = self._recommendations.setdefault(limits.key, [])
        for i, rec in enumerate(recs):
            if rec.at > up_cutoff:
                up = min(rec.replicas, up)
            if rec.at > down_cutoff:
                down = max(rec.replicas, down)
            if rec.at < up_cutoff and rec.at < down_cutoff:
                old = i
        recommendation = min(max(limits.current, up), down)
        _replace_or_append(recs, old, _Recommendation(limits.desired, now))
        if limits.desired >= limits.current:
            return (
                recommendation,
                "ScaleUpStabilized",
                (
                    "recent recommendations were lower than current one, "
                    "applying the lowest recent recommendation"
                ),
            )
        return (
            recommendation,
            "ScaleDownStabilized",
            (
                "recent recommendations were higher than current one, "
                "applying the highest recent recommendation"
            ),
        )

    def _rate_limited(self, limits: Limits, now: float) -> tuple[int, str, str]:
        """convertDesiredReplicasWithBehaviorRate."""
        up, down = self._up.get(limits.key, []), self._down.get(limits.key, [])
        if limits.desired > limits.current:
            limit = max(_scale_up_limit(limits.current, up, down, limits.scale_up, now), limits.current)
            if limits.max_replicas > limit:
                allowed, reason = (
                    limit,
                    (
                        "ScaleUpLimit",
                        "the desired replica count is increasing faster than the maximum scale rate",
                    ),
                )
            else:
                allowed, reason = (
                    limits.max_replicas,
                    ("TooManyReplicas", "the desired replica count is more than the maximum replica count"),
                )
            if limits.desired > allowed:
                return allowed, *reason
        elif limits.desired < limits.current:
            limit = min(_scale_down_limit(limits.current, up, down, limits.scale_down, now), limits.current)
            if limits.min_replicas < limit:
                allowed, reason = (
                    limit,
                    (
                        "ScaleDownLimit",
                        "the desired replica count is decreasing faster than the maximum scale rate",
                    ),
                )
            else:
                allowed, reason = (
                    limits.min_replicas,
                    ("TooFewReplicas", "the desired replica count is less than the minimum replica count"),
                )
            if limits.desired < allowed:
                return allowed, *reason
        return limits.desired, "DesiredWithinRange", "the desired count is within the acceptable range"

    def store_scale_event(self, behavior: Obj | None, key: str, before: int, after: int, now: float) -> None:
        """storeScaleEvent: a rescale counts against its direction's policies (only with a behavior)."""
        if behavior is None:
            return
        rules, table, change = (
            (as_dict(behavior.get("scaleUp")), self._up, after - before)
            if after > before
            else (as_dict(behavior.get("scaleDown")), self._down, before - after)
        )
        longest = max((int(p.get("periodSeconds") or 0) for p in as_dicts(rules.get("policies"))), default=0)
        events = table.setdefault(key, [])
        old = None
        for i, event in enumerate(events):  # markScaleEventsOutdated, then reuse the last outdated slot
            if event.at < now - longest:
                event.outdated = True
            if event.outdated:
                old = i
        _replace_or_append(events, old, _ScaleEvent(change, now))


def _replace_or_append(
    items: list[_Recommendation] | list[_ScaleEvent], index: int | None, item: object
) -> None:
    if index is None:
        items.append(item)  # type: ignore[arg-type]
    else:
        items[index] = item  # type: ignore[call-overload]


def _window(rules: Obj) -> float:
    return float(rules.get("stabilizationWindowSeconds") or 0)


def _changed_in_period(period: float, events: list[_ScaleEvent], now: float) -> int:
    """getReplicasChangePerPeriod: the changes of events strictly after the period's start."""
    return sum(e.change for e in events if e.at > now - period)


def _by_policies(
    rules: Obj,
    up: list[_ScaleEvent],
    down: list[_ScaleEvent],
    now: float,
    proposal: Callable[[int, str, int], int | None],
    *,
    scaling_up: bool,
) -> int | None:
    """The bound the policies allow, each from the count at its period's start (`proposal(net
    replicas added in the period, type, value)`), the widest or (Min) the narrowest change; None when
    scaling is disabled or no policy applies (the count stays)."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return None
    pick = max if (select != "Min") == scaling_up else min
    result: int | None = None
    for policy in as_dicts(rules.get("policies")):
        period = float(policy.get("periodSeconds") or 0)
        net_added = _changed_in_period(period, up, now) - _changed_in_period(period, down, now)
        bound = proposal(net_added, str(policy.get("type") or ""), int(policy.get("value") or 0))
        if bound is not None:  # validation allows Pods and Percent only
            result = bound if result is None else pick(result, bound)
    return result


def _scale_up_limit(
    current: int, up: list[_ScaleEvent], down: list[_ScaleEvent], rules: Obj, now: float
) -> int:
    """calculateScaleUpLimitWithScalingRules."""

    def proposal(net_added: int, ptype: str, value: int) -> int | None:
        start = current - net_added
        if ptype == "Pods":
            return start + value
        if ptype == "Percent":  # rounded up, or a small count could never grow
            return math.ceil(start * (1 + value / 100))
        return None

    limit = _by_policies(rules, up, down, now, proposal, scaling_up=True)
    return current if limit is None else limit


def _scale_down_limit(
    current: int, up: list[_ScaleEvent], down: list[_ScaleEvent], rules: Obj, now: float
) -> int:
    """calculateScaleDownLimitWithBehaviors."""

    def proposal(net_added: int, ptype: str, value: int) -> int | None:
        start = current - net_added
        if ptype == "Pods":
            return start - value
        if ptype == "Percent":
            return int(start * (1 - value / 100))  # truncated toward zero, as Go converts
        return None

    limit = _by_policies(rules, up, down, now, proposal, scaling_up=False)
    return current if limit is None else limit


def _within_rules(current: int, desired: int, low: int, high: int) -> tuple[int, str, str]:
    """convertDesiredReplicasWithRules: the count without a behavior."""
    scale_up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
    if high > scale_up_limit:
        allowed, reason = (
            scale_up_limit,
            ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"),
        )
    else:
        allowed, reason = (
            high,
            ("TooManyReplicas", "the desired replica count is more than the maximum replica count"),
        )
    if desired < low:
        return low, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
    if desired > allowed:
        return allowed, *reason
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"
