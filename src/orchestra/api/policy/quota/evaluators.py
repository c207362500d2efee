"""Quota evaluators: what an object of each resource counts against a ResourceQuota.

Owns kube's pkg/quota/v1/evaluator/core and apiserver/pkg/quota/v1/generic, per group resource:
  * pods: `count/pods` always (every pod in storage); while the pod is not terminal (phase
    Succeeded/Failed) and not stuck terminating past its grace period, also `pods` and its compute
    resources: `requests.cpu`/`cpu`, `requests.memory`/`memory`, `requests.ephemeral-storage`/
    `ephemeral-storage`, the `limits.*` of those, hugepages and `requests.<extended>` (from the
    pod's summed requests and limits); evaluated on create only; a quota on cpu or memory
    requires every container to state it (Constraints: `must specify limits.cpu for: c`);
  * services: `count/services`, `services`, `services.nodeports` (one per port of a NodePort or
    LoadBalancer service; with allocateLoadBalancerNodePorts false only ports that have a
    nodePort), `services.loadbalancers`; create and update (the type can change);
  * persistentvolumeclaims: `count/persistentvolumeclaims`, `persistentvolumeclaims`,
    `requests.storage` (rounded up to whole bytes; the larger of the request and
    status.allocatedResources), and both per class: `<class>.storageclass.storage.k8s.io/<name>`;
    create and update;
  * any other resource: `count/<resource>.<group>` (`count/<resource>` in the core group), plus the
    legacy names `configmaps`, `secrets`, `resourcequotas`, `replicationcontrollers`; create only.
Events are never counted (kube's ignored resources). Only pods match quota scopes.
Must not import: anything above the api layer (part of api/policy).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from fractions import Fraction

import attrs

from orchestra.api.machinery.names import is_qualified_name
from orchestra.api.policy.quota import resources as rl
from orchestra.api.policy.quota.resources import ResourceList
from orchestra.api.policy.quota.scopes import Scope, no_scope_matches, pod_matches, scopes_of
from orchestra.api.policy.storageclass import claim_class
from orchestra.objects import Obj, as_dict, meta, only_dicts, parse_time
from orchestra.objects.quantity import Quantity, parse_or_none

IGNORED = frozenset({"events", "events.events.k8s.io"})
LEGACY_ALIASES = {
    "configmaps": "configmaps",
    "secrets": "secrets",
    "resourcequotas": "resourcequotas",
    "replicationcontrollers": "replicationcontrollers",
}
REQUESTS = "requests."
HUGEPAGES = "hugepages-"
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
POD_RESOURCES = (
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
)
# Quotas on these make every container state them (kube's backward-compatible "validationSet").
VALIDATION_SET = frozenset(
    {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}
)
SERVICE_RESOURCES = ("count/services", "services", "services.nodeports", "services.loadbalancers")
PVC_RESOURCES = ("persistentvolumeclaims", "requests.storage")
CREATE, UPDATE = "CREATE", "UPDATE"


def object_count_name(group_resource: str) -> str:
    """generic.ObjectCountQuotaResourceNameFor: `count/pods`, `count/deployments.apps`."""
    return f"count/{group_resource}"


def is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_extended(name: str) -> bool:
    """helper.IsExtendedResourceName."""
    if is_native(name) or name.startswith(REQUESTS):
        return False
    return not is_qualified_name(REQUESTS + name)


@attrs.frozen
class Evaluator:
    """One group resource's evaluator (kube's quota.Evaluator)."""

    group_resource: str
    operations: tuple[str, ...]
    matching_resources: Callable[[list[str]], list[str]]
    usage: Callable[[Obj, datetime], ResourceList]
    scope_matches: Callable[[Scope, Obj], bool] = no_scope_matches
    constraints: Callable[[list[str], Obj], str | None] = lambda _required, _obj: None

    def handles(self, operation: str) -> bool:
        return operation in self.operations

    def matches(self, quota: Obj, obj: Obj) -> bool:
        """generic.Matches: the quota's status.hard names a resource of this evaluator, and the object
        is in every one of its scopes."""
        hard = list(as_dict(as_dict(quota.get("status")).get("hard")))
        if not self.matching_resources(hard):
            return False
        return all(self.scope_matches(scope, obj) for scope in scopes_of(quota))


# --- pods ------------------------------------------------------------------------------------------


def _pod_matching(names: list[str]) -> list[str]:
    out = [n for n in names if n in POD_RESOURCES]
    for n in names:
        if n.startswith((HUGEPAGES, REQUESTS + HUGEPAGES)):
            out.append(n)
        if not is_native(n) and n.startswith(REQUESTS):
            out.append(n)
    return out


def _compute_usage(requests: ResourceList, limits: ResourceList) -> ResourceList:
    """podComputeUsageHelper."""
    out: ResourceList = {"pods": rl.ONE}
    for name in ("cpu", "memory", "ephemeral-storage"):
        if name in requests:
            out[name] = out[REQUESTS + name] = requests[name]
        if name in limits:
            out["limits." + name] = limits[name]
    for name, q in requests.items():
        if name.startswith(HUGEPAGES):
            out[name] = out[REQUESTS + name] = q
        if is_extended(name):
            out[REQUESTS + name] = q
    return out


def counts_compute(pod: Obj, now: datetime) -> bool:
    """QuotaV1Pod: not terminal, and not still terminating past deletionTimestamp + grace period."""
    if as_dict(pod.get("status")).get("phase") in ("Succeeded", "Failed"):
        return False
    m = meta(pod)
    deleted, grace = parse_time(m.get("deletionTimestamp")), m.get("deletionGracePeriodSeconds")
    if deleted is not None and isinstance(grace, int):
        return not now > deleted + timedelta(seconds=grace)
    return True


def pod_usage(pod: Obj, now: datetime) -> ResourceList:
    usage: ResourceList = {"count/pods": rl.ONE}
    if not counts_compute(pod, now):
        return usage
    spec = as_dict(pod.get("spec"))
    return rl.add(usage, _compute_usage(rl.pod_requests(spec), rl.pod_limits(spec)))


def pod_constraints(required: list[str], pod: Obj) -> str | None:
    """Every container must state each cpu/memory resource a matching quota limits."""
    needed = set(required) & VALIDATION_SET
    missing: dict[str, set[str]] = {}
    spec = as_dict(pod.get("spec"))
    for c in [*only_dicts(spec.get("containers")), *only_dicts(spec.get("initContainers"))]:
        res = as_dict(c.get("resources"))
        have = _compute_usage(rl.parse_list(res.get("requests")), rl.parse_list(res.get("limits")))
        for name in needed - have.keys():
            missing.setdefault(name, set()).add(str(c.get("name") or ""))
    if not missing:
        return None
    parts = [f"{name} for: {','.join(sorted(missing[name]))}" for name in sorted(missing)]
    return "must specify " + "; ".join(parts)


PODS = Evaluator("pods", (CREATE,), _pod_matching, pod_usage, pod_matches, pod_constraints)


# --- services ----------------------------------------------------------------------------------------


def service_usage(svc: Obj, _now: datetime) -> ResourceList:
    spec = as_dict(svc.get("spec"))
    ports = only_dicts(spec.get("ports"))
    usage: ResourceList = {
        "count/services": rl.ONE,
        "services": rl.ONE,
        "services.loadbalancers": rl.ZERO,
        "services.nodeports": rl.ZERO,
    }
    if spec.get("type") == "NodePort":
        usage["services.nodeports"] = rl.count(len(ports))
    elif spec.get("type") == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is False:
            usage["services.nodeports"] = rl.count(sum(1 for p in ports if p.get("nodePort")))
        else:
            usage["services.nodeports"] = rl.count(len(ports))
        usage["services.loadbalancers"] = rl.ONE
    return usage


SERVICES = Evaluator(
    "services", (CREATE, UPDATE), lambda names: [n for n in names if n in SERVICE_RESOURCES], service_usage
)


# --- persistent volume claims --------------------------------------------------------------------------


def _pvc_matching(names: list[str]) -> list[str]:
    return [
        n
        for n in names
        if n == "count/persistentvolumeclaims"
        or n in PVC_RESOURCES
        or any(n.endswith(STORAGE_CLASS_SUFFIX + r) for r in PVC_RESOURCES)
    ]


def _round_up(q: Quantity) -> Quantity:
    """Quantity.RoundUp(0): whole bytes."""
    return Quantity(Fraction(math.ceil(q.value)), q.format)


def _storage(pvc: Obj) -> Quantity | None:
    request = parse_or_none(
        as_dict(as_dict(as_dict(pvc.get("spec")).get("resources")).get("requests")).get("storage")
    )
    if request is None:
        return None
    result = _round_up(request)
    allocated = parse_or_none(as_dict(as_dict(pvc.get("status")).get("allocatedResources")).get("storage"))
    if allocated is not None and allocated.value > result.value:
        result = _round_up(allocated)
    return result


def pvc_usage(pvc: Obj, _now: datetime) -> ResourceList:
    usage: ResourceList = {"persistentvolumeclaims": rl.ONE, "count/persistentvolumeclaims": rl.ONE}
    cls = claim_class(pvc)
    if cls:
        usage[cls + STORAGE_CLASS_SUFFIX + "persistentvolumeclaims"] = rl.ONE
    storage = _storage(pvc)
    if storage is not None:
        usage["requests.storage"] = storage
        if cls:
            usage[cls + STORAGE_CLASS_SUFFIX + "requests.storage"] = storage
    return usage


PVCS = Evaluator("persistentvolumeclaims", (CREATE, UPDATE), _pvc_matching, pvc_usage)


# --- object counts ---------------------------------------------------------------------------------


def count_evaluator(group_resource: str) -> Evaluator:
    """generic.NewObjectCountEvaluator, with the legacy alias where kube has one."""
    names = tuple(n for n in (object_count_name(group_resource), LEGACY_ALIASES.get(group_resource)) if n)

    def usage(_obj: Obj, _now: datetime) -> ResourceList:
        return {n: rl.ONE for n in names}

    return Evaluator(group_resource, (CREATE,), lambda given: [n for n in given if n in names], usage)


_SPECIAL = {e.group_resource: e for e in (PODS, SERVICES, PVCS)}


def evaluator_for(group_resource: str) -> Evaluator | None:
    """The evaluator of a group resource (`pods`, `deployments.apps`); None for ignored ones."""
    if group_resource in IGNORED:
        return None
    return _SPECIAL.get(group_resource) or count_evaluator(group_resource)
