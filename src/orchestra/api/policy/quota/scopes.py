"""Quota scopes: which objects a ResourceQuota's `scopes` / `scopeSelector` select.

Owns: a quota's scope selectors (kube's getScopeSelectorsFromQuota: each `spec.scopes` entry as
`Exists`, then `spec.scopeSelector.matchExpressions`), and how a pod matches one
(pkg/quota/v1/evaluator/core/pods.go podMatchesScopeFunc): Terminating / NotTerminating
(spec.activeDeadlineSeconds >= 0), BestEffort / NotBestEffort (the pod's QoS class),
PriorityClass (Exists, or a label selector on {"PriorityClass": spec.priorityClassName}),
CrossNamespacePodAffinity (a pod (anti-)affinity term naming namespaces or a namespace selector).
Objects other than pods match no scope (generic.MatchesNoScopeFunc).
Must not import: anything above the api layer (part of api/policy).
"""

from __future__ import annotations

import attrs

from orchestra.api.policy.defaults import qos_class
from orchestra.objects import Obj, as_dict, only_dicts

TERMINATING = "Terminating"
NOT_TERMINATING = "NotTerminating"
BEST_EFFORT = "BestEffort"
NOT_BEST_EFFORT = "NotBestEffort"
PRIORITY_CLASS = "PriorityClass"
CROSS_NAMESPACE_AFFINITY = "CrossNamespacePodAffinity"
STANDARD_SCOPES = (TERMINATING, NOT_TERMINATING, BEST_EFFORT, NOT_BEST_EFFORT, PRIORITY_CLASS,
                   CROSS_NAMESPACE_AFFINITY)
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@attrs.frozen
class Scope:
    """A ScopedResourceSelectorRequirement."""

    name: str
    operator: str = "Exists"
    values: tuple[str, ...] = ()


def scopes_of(quota: Obj) -> list[Scope]:
    spec = as_dict(quota.get("spec"))
    out = [Scope(str(s)) for s in spec.get("scopes") or []]
    for expr in only_dicts(as_dict(spec.get("scopeSelector")).get("matchExpressions")):
        out.append(Scope(str(expr.get("scopeName") or ""), str(expr.get("operator") or ""),
                         tuple(str(v) for v in expr.get("values") or [])))
    return out


def _label_requirement(scope: Scope, labels: dict[str, str]) -> bool:
    """labels.Requirement.Matches for the one-key label set the scope is matched against."""
    present = scope.name in labels
    if scope.operator == "In":
        return present and labels[scope.name] in scope.values
    if scope.operator == "NotIn":
        return not present or labels[scope.name] not in scope.values
    if scope.operator == "Exists":
        return present
    return scope.operator == "DoesNotExist" and not present


def is_best_effort(pod: Obj) -> bool:
    """qos.GetPodQOS: the class in the pod's status, else computed from its spec."""
    qos = as_dict(pod.get("status")).get("qosClass")
    return (qos or qos_class(as_dict(pod.get("spec")))) == "BestEffort"


def is_terminating(pod: Obj) -> bool:
    deadline = as_dict(pod.get("spec")).get("activeDeadlineSeconds")
    return isinstance(deadline, int) and deadline >= 0


def _cross_namespace(terms: list[Obj]) -> bool:
    return any(t.get("namespaces") or t.get("namespaceSelector") is not None for t in terms)


def uses_cross_namespace_affinity(pod: Obj) -> bool:
    affinity = as_dict(as_dict(pod.get("spec")).get("affinity"))
    for kind in ("podAffinity", "podAntiAffinity"):
        terms = as_dict(affinity.get(kind))
        required = only_dicts(terms.get("requiredDuringSchedulingIgnoredDuringExecution"))
        preferred = [as_dict(w.get("podAffinityTerm"))
                     for w in only_dicts(terms.get("preferredDuringSchedulingIgnoredDuringExecution"))]
        if _cross_namespace(required) or _cross_namespace(preferred):
            return True
    return False


def pod_matches(scope: Scope, pod: Obj) -> bool:
    if scope.name == TERMINATING:
        return is_terminating(pod)
    if scope.name == NOT_TERMINATING:
        return not is_terminating(pod)
    if scope.name == BEST_EFFORT:
        return is_best_effort(pod)
    if scope.name == NOT_BEST_EFFORT:
        return not is_best_effort(pod)
    if scope.name == PRIORITY_CLASS:
        name = str(as_dict(pod.get("spec")).get("priorityClassName") or "")
        return _label_requirement(scope, {PRIORITY_CLASS: name} if name else {})
    if scope.name == CROSS_NAMESPACE_AFFINITY:
        return uses_cross_namespace_affinity(pod)
    return False


def no_scope_matches(scope: Scope, obj: Obj) -> bool:
    """generic.MatchesNoScopeFunc: kinds without scopes are outside every scoped quota."""
    return False
