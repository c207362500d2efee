"""Reconciling a stored role or binding with the wanted one (kube's rbac/reconciliation, additive mode).

Owns: `reconcile_role(existing, wanted)` and `reconcile_binding(existing, wanted)` — what the API
server's start-up does with its bootstrap policy (bootstrap.py): labels and annotations the wanted
object has are added (the stored values win), rules it lacks are added (broken down, as kube adds
them), aggregation selectors it lacks are added, subjects it lacks are added; nothing is removed. A
stored object annotated `rbac.authorization.kubernetes.io/autoupdate: "false"` is the
administrator's: it is left alone. A binding whose roleRef differs must be re-created (roleRef is
immutable). Each returns the object to write, or None when nothing changes.
Must not import: anything above api/policy.
"""

from __future__ import annotations

import copy
from typing import Any

from orchestra.api.policy.rbac.bootstrap import AUTOUPDATE
from orchestra.api.policy.rbac.rules import covers, rules_of

Obj = dict[str, Any]


def protected(existing: Obj) -> bool:
    annotations = (existing.get("metadata") or {}).get("annotations") or {}
    return annotations.get(AUTOUPDATE) == "false"


def _merge_meta(result: Obj, wanted: Obj) -> None:
    meta, want = result.setdefault("metadata", {}), wanted.get("metadata") or {}
    for field in ("labels", "annotations"):
        if want.get(field):
            meta[field] = {**want[field], **(meta.get(field) or {})}


def reconcile_role(existing: Obj, wanted: Obj) -> Obj | None:
    if protected(existing):
        return None
    result = copy.deepcopy(existing)
    _merge_meta(result, wanted)
    missing = covers(rules_of(existing), rules_of(wanted))
    if missing:
        result["rules"] = [*(existing.get("rules") or []), *(m.to_json() for m in missing)]
    wanted_rule = wanted.get("aggregationRule")
    if isinstance(wanted_rule, dict):
        have = result.setdefault("aggregationRule", {}).setdefault("clusterRoleSelectors", [])
        for selector in wanted_rule.get("clusterRoleSelectors") or []:
            if selector not in have:
                have.append(selector)
    return result if result != existing else None


def reconcile_binding(existing: Obj, wanted: Obj) -> tuple[Obj | None, bool]:
    """(the object to write or None, whether it must be deleted and created again)."""
    if protected(existing):
        return None, False
    result = copy.deepcopy(existing)
    recreate = existing.get("roleRef") != wanted.get("roleRef")
    if recreate:
        result["roleRef"] = copy.deepcopy(wanted.get("roleRef"))
    _merge_meta(result, wanted)
    subjects = result.get("subjects") or []
    for subject in wanted.get("subjects") or []:
        if subject not in subjects:
            subjects.append(subject)
    if subjects:
        result["subjects"] = subjects
    return (result if result != existing else None), recreate
