"""The ResourceQuota admission check (apiserver/pkg/admission/plugin/resourcequota's CheckRequest).

Owns: deciding whether a create or update fits every quota of its namespace, and what each quota's
status.used becomes if it does. A quota takes part when its status.hard names a resource the
object's evaluator counts and the object is in its scopes (so a quota the controller has not filled
in yet limits nothing); then the object must meet the evaluator's constraints ("failed quota: q:
must specify ...") and the quota must know its usage ("status unknown for quota: q, resources:
..."). The object's usage (on an update: what it adds to the old object's, never below zero, for
quotas the old object was counted in too) is added to each quota's used; a quota that would go
over its hard limit refuses the request with kube's 403:
`exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`.
The caller (api/request/quota.py) writes the returned quotas with a compare-and-swap before it
stores the object, as kube's quota evaluator updates status.used before the write proceeds.
Must not import: anything above the api layer (part of api/policy).
"""

from __future__ import annotations

from datetime import datetime

from orchestra.api.errors import Forbidden
from orchestra.api.policy.quota import resources as rl
from orchestra.api.policy.quota.evaluators import UPDATE, evaluator_for
from orchestra.objects import Obj, as_dict, deep_copy, name_of


def forbidden(group_resource: str, name: str, why: str) -> Forbidden:
    """admission.NewForbidden: `<resource> "<name>" is forbidden: <why>`."""
    plural, _, group = group_resource.partition(".")
    return Forbidden(f'{group_resource} "{name}" is forbidden: {why}', name=name, kind=plural, group=group)


def _status_list(quota: Obj, field: str) -> rl.ResourceList:
    return rl.parse_list(as_dict(quota.get("status")).get(field))


def _has_usage_stats(quota: Obj, resources: list[str]) -> bool:
    used = as_dict(as_dict(quota.get("status")).get("used"))
    wanted = set(resources)
    return all(name in used for name in as_dict(as_dict(quota.get("status")).get("hard")) if name in wanted)


def check_request(quotas: list[Obj], *, operation: str, group_resource: str, obj: Obj, old: Obj | None,
                  now: datetime) -> list[Obj]:
    """The quotas (copies) whose status.used grows by this request, in the order given; [] when none
    does. Raises Forbidden when the request does not fit."""
    evaluator = evaluator_for(group_resource)
    if evaluator is None or not evaluator.handles(operation) or not quotas:
        return []
    name = name_of(obj)
    interesting: list[Obj] = []
    for quota in quotas:
        if not evaluator.matches(quota, obj):
            continue
        restricted = evaluator.matching_resources(list(as_dict(as_dict(quota.get("status")).get("hard"))))
        why = evaluator.constraints(restricted, obj)
        if why:
            raise forbidden(group_resource, name, f"failed quota: {name_of(quota)}: {why}")
        if not _has_usage_stats(quota, restricted):
            raise forbidden(group_resource, name, f"status unknown for quota: {name_of(quota)}, "
                                                  f"resources: {','.join(sorted(restricted))}")
        interesting.append(quota)
    usage = evaluator.usage(obj, now)
    negative = rl.is_negative(usage)
    if negative:
        raise forbidden(group_resource, name,
                        f"quota usage is negative for resource(s): {','.join(negative)}")
    deltas = {id(q): usage for q in interesting}
    if operation == UPDATE and old is not None:
        delta = rl.subtract_non_negative(usage, evaluator.usage(old, now))
        for quota in interesting:
            if evaluator.matches(quota, old):
                deltas[id(quota)] = delta
    changed: list[Obj] = []
    for quota in interesting:
        delta = rl.remove_zeros(deltas[id(quota)])
        if not delta:
            continue
        hard, used = _status_list(quota, "hard"), _status_list(quota, "used")
        requested = rl.mask(delta, hard)
        new_used = rl.add(used, requested)
        fits, exceeded = rl.less_than_or_equal(rl.mask(new_used, requested), hard)
        if not fits:
            raise forbidden(group_resource, name, (
                f"exceeded quota: {name_of(quota)}, requested: {rl.pretty(rl.mask(requested, exceeded))}, "
                f"used: {rl.pretty(rl.mask(used, exceeded))}, limited: {rl.pretty(rl.mask(hard, exceeded))}"))
        if not rl.equals(new_used, used):
            updated = deep_copy(quota)
            updated.setdefault("status", {})["used"] = rl.to_json(new_used)
            changed.append(updated)
    return changed
