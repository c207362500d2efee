"""A ResourceQuota's status from the objects of its namespace (kube's quota.CalculateUsage and the
resourcequota controller's syncResourceQuota).

Owns: which evaluators a cluster has (one per namespaced kind: pods, services and claims count
their resources, every other kind its objects; events none), which group resources a quota needs
listed, and its recalculated status: `hard` = spec.hard, `used` = for every hard resource an
evaluator can measure, the sum over the objects in the quota's scopes (zero when there are none);
a hard resource no evaluator measures keeps the used value it had. `status_changed` says whether
that differs from the stored status (the controller writes only then).
Must not import: anything above the api layer (part of api/policy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from orchestra.api.policy.quota import resources as rl
from orchestra.api.policy.quota.evaluators import Evaluator, evaluator_for
from orchestra.api.policy.quota.scopes import scopes_of
from orchestra.objects import Obj, as_dict


def cluster_evaluators(group_resources: Iterable[str]) -> list[Evaluator]:
    """An evaluator for each namespaced group resource the cluster serves (ignored ones left out)."""
    found = (evaluator_for(gr) for gr in dict.fromkeys(group_resources))
    return [e for e in found if e is not None]


def _hard_names(quota: Obj) -> list[str]:
    return list(rl.parse_list(as_dict(quota.get("spec")).get("hard")))


def _matched(quota: Obj, evaluators: list[Evaluator]) -> list[str]:
    hard = _hard_names(quota)
    potential = {name for e in evaluators for name in e.matching_resources(hard)}
    return [name for name in hard if name in potential]


def needed_resources(quota: Obj, evaluators: list[Evaluator]) -> list[str]:
    """The group resources whose objects the quota's usage is computed from."""
    matched = _matched(quota, evaluators)
    return [e.group_resource for e in evaluators if e.matching_resources(matched)]


def quota_status(quota: Obj, evaluators: list[Evaluator], objects: Mapping[str, list[Obj]],
                 now: datetime) -> Obj:
    """The status the controller keeps: `hard` (spec.hard) and `used`. `objects` holds the namespace's
    objects of every group resource needed_resources() named."""
    hard = rl.parse_list(as_dict(quota.get("spec")).get("hard"))
    matched = _matched(quota, evaluators)
    scopes = scopes_of(quota)
    observed: rl.ResourceList = {}
    for evaluator in evaluators:
        measured = evaluator.matching_resources(matched)
        if not measured:
            continue
        stats: rl.ResourceList = {name: rl.ZERO for name in measured}
        for item in objects.get(evaluator.group_resource, []):
            if all(evaluator.scope_matches(scope, item) for scope in scopes):
                stats = rl.add(stats, evaluator.usage(item, now))
        observed = rl.add(observed, stats)
    used = rl.parse_list(as_dict(quota.get("status")).get("used"))
    used.update(rl.mask(observed, matched))
    return {"hard": rl.to_json(hard), "used": rl.to_json(rl.mask(used, hard))}


def status_changed(quota: Obj, new_status: Obj) -> bool:
    status = as_dict(quota.get("status"))
    if status.get("hard") is None or status.get("used") is None:
        return True
    return not (rl.equals(rl.parse_list(status["hard"]), rl.parse_list(new_status["hard"]))
                and rl.equals(rl.parse_list(status["used"]), rl.parse_list(new_status["used"])))
