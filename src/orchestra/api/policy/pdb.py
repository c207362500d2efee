"""PodDisruptionBudget semantics shared by the eviction subresource (api/request/eviction.py) and the
disruption controller (reconcilers/disruption.py) — kube's pkg/apis/policy helpers and pdb helper.

Owns:
  * which pods a budget selects: its selector as a LabelSelector; a nil or invalid selector selects
    nothing; an empty one `{}` selects every pod of the namespace for the controller (policy/v1),
    but nothing for the eviction handler (kube: "a PDB with a nil or empty selector ... should
    match nothing");
  * the DisruptionAllowed condition (SufficientPods / InsufficientPods / SyncFailed), set with
    apimachinery's SetStatusCondition rules (orchestra.objects.set_status_condition).
Pod health as a budget sees it is podutil.IsPodReady (orchestra.objects.is_pod_ready).
Must not import: anything above the api layer.
"""

from __future__ import annotations

from orchestra.api.errors import BadRequest
from orchestra.api.machinery.selectors import LabelSelector, from_label_selector_object
from orchestra.objects import Obj, as_dict, get_condition, meta, set_status_condition

DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"
ALWAYS_ALLOW = "AlwaysAllow"
DELETION_TIMEOUT = 120.0  # seconds a pod stays in status.disruptedPods before the controller gives up on it


def selector_of(pdb: Obj, *, empty_selects_all: bool) -> LabelSelector | None:
    """The budget's pod selector, or None when it selects nothing (nil, invalid, or empty for the
    eviction handler)."""
    sel = as_dict(pdb.get("spec")).get("selector")
    if not isinstance(sel, dict):
        return None
    try:
        selector = from_label_selector_object(sel)
    except (BadRequest, KeyError, TypeError):
        return None  # kube: "this object has an invalid selector, it does not match the pod"
    if selector.empty and not empty_selects_all:
        return None
    return selector


def selects(pdb: Obj, pod: Obj, *, empty_selects_all: bool) -> bool:
    """Whether `pdb` covers `pod` (same namespace, selector matches the pod's labels)."""
    pm, bm = meta(pod), meta(pdb)
    if pm.get("namespace") != bm.get("namespace"):
        return False
    selector = selector_of(pdb, empty_selects_all=empty_selects_all)
    return selector is not None and selector.matches(pm.get("labels") or {})


def disruption_allowed_condition(status: Obj) -> Obj:
    """The DisruptionAllowed condition UpdateDisruptionAllowedCondition sets for `status`."""
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    cond: Obj = {"type": DISRUPTION_ALLOWED, "status": "True" if allowed else "False"}
    if status.get("observedGeneration"):
        cond["observedGeneration"] = status["observedGeneration"]
    cond["reason"] = SUFFICIENT_PODS if allowed else INSUFFICIENT_PODS
    cond["message"] = ""
    return cond


def update_disruption_allowed_condition(status: Obj, now: str) -> None:
    """pdbhelper.UpdateDisruptionAllowedCondition."""
    set_status_condition(status, disruption_allowed_condition(status), now)


def conditions_up_to_date(pdb: Obj) -> bool:
    """pdbhelper.ConditionsAreUpToDate: the DisruptionAllowed condition matches disruptionsAllowed
    and the status is of the current generation."""
    status = as_dict(pdb.get("status"))
    cond = get_condition(status, DISRUPTION_ALLOWED)
    if cond is None or status.get("observedGeneration") != meta(pdb).get("generation"):
        return False
    if int(status.get("disruptionsAllowed") or 0) > 0:
        return bool(cond.get("status") == "True" and cond.get("reason") == SUFFICIENT_PODS)
    return bool(cond.get("status") == "False" and cond.get("reason") == INSUFFICIENT_PODS)
