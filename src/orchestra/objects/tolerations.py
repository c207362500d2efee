"""Taints and tolerations: kube's matching rules (k8s.io/api/core/v1 toleration.go, taint helpers).

Owns:
  * `tolerates(toleration, taint)` — Toleration.ToleratesTaint: an effect, when set, must equal
    the taint's; a key, when set, must equal the taint's (an empty key with operator Exists
    matches every taint); operator Exists matches any value, Equal (or empty) compares values
    (absent and null are ""), any other operator matches nothing;
  * `tolerations_tolerate(tolerations, taint)` — TolerationsTolerateTaint (any of them does);
  * `untolerated_taint(taints, tolerations, effects)` — FindMatchingUntoleratedTaint: the first
    taint with one of `effects` that no toleration tolerates;
  * `min_toleration_seconds(tolerations, taints)` — the taint eviction controller's
    getMinTolerationTime over the tolerations matching each taint.
Must not import: anything from orchestra (the scheduler, the DaemonSet and node lifecycle
controllers use these).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from orchestra.objects.meta import Obj

NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "PreferNoSchedule", "NoExecute"


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """kube's Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def tolerations_tolerate(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """kube's TolerationsTolerateTaint: some toleration tolerates `taint`."""
    return any(tolerates(t, taint) for t in tolerations)


def untolerated_taint(taints: Iterable[Obj], tolerations: Sequence[Mapping[str, Any]],
                      effects: tuple[str, ...]) -> Obj | None:
    """kube's FindMatchingUntoleratedTaint restricted to taints with one of `effects`."""
    for taint in taints:
        if taint.get("effect") in effects and not tolerations_tolerate(tolerations, taint):
            return taint
    return None


def min_toleration_seconds(tolerations: Sequence[Mapping[str, Any]], taints: Iterable[Obj]) -> float | None:
    """None if some taint is not tolerated; else the shortest tolerationSeconds of the tolerations
    matching the taints (math.inf = tolerated forever; a negative value counts as 0)."""
    shortest = math.inf
    for taint in taints:
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return None
        for t in matching:
            secs = t.get("tolerationSeconds")
            if secs is not None:
                shortest = min(shortest, max(0.0, float(secs)))
    return shortest
