"""Status conditions (`status.conditions`): finding them, readiness, and setting them with kube's
lastTransitionTime rules.

Owns:
  * `get_condition(status, type)`, `condition_true(obj, type)`, `ready_condition(obj)` (pods and
    nodes) and `is_pod_ready(pod)` (podutil.IsPodReady: the Ready condition is True);
  * two setters, because kube has two and they differ:
      - `set_condition(status, cond)` — the workload APIs' Set<Kind>Condition (apps, batch): the
        condition replaces the one of its type and moves to the end; the current
        lastTransitionTime is kept when the status is unchanged, else cond's own is used;
      - `set_status_condition(status, cond, now)` — apimachinery's meta.SetStatusCondition for
        metav1.Condition: updated in place, lastTransitionTime is `now` for a new condition or a
        status change, and the fields come out in metav1.Condition's order;
  * `remove_condition(status, type)` (drops the `conditions` key once empty).
Must not import: anything from orchestra (every layer imports this module).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestra.objects.meta import Obj, as_list, status


def get_condition(st: Mapping[str, Any], type_: str) -> Obj | None:
    """The condition of `type_` in a status dict, or None."""
    for c in as_list(st.get("conditions")):
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return None


def condition_true(obj: Mapping[str, Any] | None, type_: str) -> bool:
    """The object's condition of `type_` has status True."""
    c = get_condition(status(obj), type_)
    return c is not None and c.get("status") == "True"


def ready_condition(obj: Mapping[str, Any] | None) -> Obj | None:
    """The Ready condition of a pod or a node."""
    return get_condition(status(obj), "Ready")


def is_pod_ready(pod: Mapping[str, Any] | None) -> bool:
    """podutil.IsPodReady: the pod's Ready condition is True."""
    return condition_true(pod, "Ready")


def set_condition(st: Obj, cond: Obj) -> None:
    """Replace the condition of cond's type (it moves to the end); keep lastTransitionTime when the
    status is unchanged (kube's SetDeploymentCondition and its siblings)."""
    current = get_condition(st, cond["type"]) or {}
    if "lastTransitionTime" in current and current.get("status") == cond.get("status"):
        cond = {**cond, "lastTransitionTime": current["lastTransitionTime"]}
    st["conditions"] = [c for c in st.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(st: Obj, type_: str) -> None:
    conds = [c for c in st.get("conditions") or [] if c.get("type") != type_]
    if conds:
        st["conditions"] = conds
    else:
        st.pop("conditions", None)


def set_status_condition(st: Obj, cond: Obj, now: str) -> None:
    """apimeta.SetStatusCondition on st["conditions"]: add or update the condition of cond's
    type; lastTransitionTime is `now` for a new condition or a status change, else kept."""
    conditions = [dict(c) for c in st.get("conditions") or [] if isinstance(c, dict)]
    for i, existing in enumerate(conditions):
        if existing.get("type") == cond["type"]:
            since = existing.get("lastTransitionTime") if existing.get("status") == cond["status"] else now
            conditions[i] = _ordered({**cond, "lastTransitionTime": since or now})
            break
    else:
        conditions.append(_ordered({**cond, "lastTransitionTime": now}))
    st["conditions"] = conditions


_CONDITION_FIELDS = ("type", "status", "observedGeneration", "lastTransitionTime", "reason", "message")


def _ordered(cond: Obj) -> Obj:
    """metav1.Condition's field order (_CONDITION_FIELDS)."""
    return {k: cond[k] for k in _CONDITION_FIELDS if k in cond}
