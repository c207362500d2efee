"""Scheduling constraints of a pod spec: node affinity (and node selectors in general), pod
(anti-)affinity terms and topology spread constraints, worded like kube-apiserver 1.32
(pkg/apis/core/validation: ValidateNodeSelector, validatePodAffinityTerm, validateTopologySpreadConstraints).

Owns: validate_affinity, validate_node_selector, validate_topology_spread_constraints.
Kube quirks kept on purpose: a bad operator is `Invalid value: "Bogus": not a valid selector operator`
(not "Unsupported value"), Gt/Lt need exactly one value but validation does not parse it as an
integer, preferred node terms never check label values, and a pod affinity term's namespaces are
reported at `<term>.namespace`. Values an existing object already had are allowed on its updates by
validate() (kube's AllowInvalidLabelValue* options).
Must not import: pod.py or any per-kind module (pod.py imports this one).
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import duplicate, forbidden, invalid, is_int, not_supported, required
from orchestra.api.machinery.names import is_dns1123_label, is_dns1123_subdomain, is_qualified_name
from orchestra.api.policy.validation.meta import (
    validate_label_selector,
    validate_selector_requirement,
)
from orchestra.objects import Obj, as_dict, as_dicts, as_list

_NOT_POSITIVE = "must be greater than zero"
_WHEN_UNSATISFIABLE = ("DoNotSchedule", "ScheduleAnyway")
_INCLUSION_POLICIES = ("Honor", "Ignore")


def _label_name(key: Any, path: str) -> list[Cause]:
    """ValidateLabelName: a qualified name, one cause per problem."""
    return [invalid(path, key, m) for m in is_qualified_name(str(key))]


# --- node affinity ---------------------------------------------------------------------------------


def _node_field_requirement(req: Obj, path: str) -> list[Cause]:
    op, values = req.get("operator", ""), as_list(req.get("values"))
    errs: list[Cause] = []
    if op in ("In", "NotIn"):
        if len(values) != 1:
            errs.append(
                required(
                    f"{path}.values",
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                )
            )
    else:
        errs.append(invalid(f"{path}.operator", op, "not a valid selector operator"))
    key = req.get("key", "")
    if key != "metadata.name":
        return [*errs, invalid(f"{path}.key", key, "not a valid field selector key")]
    return errs + [
        invalid(f"{path}.values[{i}]", v, m)
        for i, v in enumerate(values)
        for m in is_dns1123_subdomain(str(v))
    ]


def _node_selector_term(term: Obj, path: str, *, check_values: bool) -> list[Cause]:
    errs: list[Cause] = []
    for j, req in enumerate(as_dicts(term.get("matchExpressions"))):
        errs += validate_selector_requirement(
            req, f"{path}.matchExpressions[{j}]", node=True, check_values=check_values
        )
    for j, req in enumerate(as_dicts(term.get("matchFields"))):
        errs += _node_field_requirement(req, f"{path}.matchFields[{j}]")
    return errs


def validate_node_selector(selector: Any, path: str) -> list[Cause]:
    """ValidateNodeSelector (a required node affinity, a PersistentVolume's nodeAffinity.required)."""
    terms = as_dicts(as_dict(selector).get("nodeSelectorTerms"))
    if not terms:
        return [required(f"{path}.nodeSelectorTerms", "must have at least one node selector term")]
    errs: list[Cause] = []
    for i, term in enumerate(terms):
        errs += _node_selector_term(term, f"{path}.nodeSelectorTerms[{i}]", check_values=True)
    return errs


def _weight(term: Obj, path: str) -> list[Cause]:
    weight = term.get("weight", 0)
    if is_int(weight) and 1 <= weight <= 100:
        return []
    return [invalid(path, weight, "must be in the range 1-100")]


def _node_affinity(affinity: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    required_terms = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required_terms is not None:
        p = f"{path}.requiredDuringSchedulingIgnoredDuringExecution"
        errs += validate_node_selector(required_terms, p)
    for i, term in enumerate(as_dicts(affinity.get("preferredDuringSchedulingIgnoredDuringExecution"))):
        p = f"{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        # preferred terms may name any label value: they can still succeed on a single-node cluster
        errs += _weight(term, f"{p}.weight")
        errs += _node_selector_term(as_dict(term.get("preference")), f"{p}.preference", check_values=False)
    return errs


# --- pod affinity ----------------------------------------------------------------------------------


def _label_keys(keys: list[Any], selector: Any, path: str) -> list[Cause]:
    if not keys:
        return []
    if selector is None:
        return [forbidden(path, "must not be specified when labelSelector is not set")]
    return [c for i, key in enumerate(keys) for c in _label_name(key, f"{path}[{i}]")]


def _match_label_keys(term: Obj, path: str) -> list[Cause]:
    """validateMatchLabelKeysAndMismatchLabelKeys, on the term as written (kube checks a pod's term
    after merging its labels in; a template's term is checked as written, like here)."""
    match, mismatch = as_list(term.get("matchLabelKeys")), as_list(term.get("mismatchLabelKeys"))
    selector = term.get("labelSelector")
    errs = _label_keys(match, selector, f"{path}.matchLabelKeys")
    errs += _label_keys(mismatch, selector, f"{path}.mismatchLabelKeys")
    if selector is not None:
        positions = {key: i for i, key in enumerate(match)}
        seen: set[Any] = set(as_dict(as_dict(selector).get("matchLabels")))
        for expr in as_dicts(as_dict(selector).get("matchExpressions")):
            key = expr.get("key")
            if key in positions and key in seen:
                errs.append(
                    invalid(
                        f"{path}[{positions[key]}]", key, "exists in both matchLabelKeys and labelSelector"
                    )
                )
            seen.add(key)
    errs += [
        invalid(f"{path}.matchLabelKeys[{i}]", key, "exists in both matchLabelKeys and mismatchLabelKeys")
        for i, key in enumerate(match)
        if key in mismatch
    ]
    return errs


def _pod_affinity_term(term: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for key in ("labelSelector", "namespaceSelector"):
        if term.get(key) is not None:
            errs += validate_label_selector(term[key], f"{path}.{key}")
    for name in as_list(term.get("namespaces")):
        errs += [invalid(f"{path}.namespace", name, m) for m in is_dns1123_label(str(name))]
    errs += _match_label_keys(term, path)
    topology_key = term.get("topologyKey") or ""
    if not topology_key:
        errs.append(required(f"{path}.topologyKey", "can not be empty"))
    return errs + _label_name(topology_key, f"{path}.topologyKey")


def _pod_affinity(affinity: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    p = f"{path}.requiredDuringSchedulingIgnoredDuringExecution"
    for i, term in enumerate(as_dicts(affinity.get("requiredDuringSchedulingIgnoredDuringExecution"))):
        errs += _pod_affinity_term(term, f"{p}[{i}]")
    p = f"{path}.preferredDuringSchedulingIgnoredDuringExecution"
    for j, weighted in enumerate(as_dicts(affinity.get("preferredDuringSchedulingIgnoredDuringExecution"))):
        errs += _weight(weighted, f"{p}[{j}].weight")
        errs += _pod_affinity_term(as_dict(weighted.get("podAffinityTerm")), f"{p}[{j}].podAffinityTerm")
    return errs


def validate_affinity(affinity: Any, path: str) -> list[Cause]:
    """validateAffinity: nodeAffinity, podAffinity, podAntiAffinity."""
    affinity = as_dict(affinity)
    errs: list[Cause] = []
    if affinity.get("nodeAffinity") is not None:
        errs += _node_affinity(as_dict(affinity["nodeAffinity"]), f"{path}.nodeAffinity")
    for key in ("podAffinity", "podAntiAffinity"):
        if affinity.get(key) is not None:
            errs += _pod_affinity(as_dict(affinity[key]), f"{path}.{key}")
    return errs


# --- topology spread -------------------------------------------------------------------------------


def _positive(value: Any, path: str) -> list[Cause]:
    return [] if is_int(value) and value > 0 else [invalid(path, value, _NOT_POSITIVE)]


def _spread_constraint(c: Obj, rest: list[Obj], path: str) -> list[Cause]:
    errs = _positive(c.get("maxSkew", 0), f"{path}.maxSkew")
    key, when = c.get("topologyKey") or "", c.get("whenUnsatisfiable") or ""
    if not key:
        errs.append(required(f"{path}.topologyKey", "can not be empty"))
    if when not in _WHEN_UNSATISFIABLE:
        errs.append(not_supported(f"{path}.whenUnsatisfiable", when, _WHEN_UNSATISFIABLE))
    if any((r.get("topologyKey") or "", r.get("whenUnsatisfiable") or "") == (key, when) for r in rest):
        errs.append(duplicate(f"{path}.{{topologyKey, whenUnsatisfiable}}", f"{{{key}, {when}}}"))
    min_domains = c.get("minDomains")
    if min_domains is not None:
        errs += _positive(min_domains, f"{path}.minDomains")
        if when != "DoNotSchedule":
            errs.append(
                invalid(
                    f"{path}.minDomains",
                    min_domains,
                    f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {when}",
                )
            )
    for policy in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
        if c.get(policy) is not None and c[policy] not in _INCLUSION_POLICIES:
            errs.append(not_supported(f"{path}.{policy}", c[policy], _INCLUSION_POLICIES))
    errs += _spread_label_keys(c, path)
    if c.get("labelSelector") is not None:
        errs += validate_label_selector(c["labelSelector"], f"{path}.labelSelector")
    return errs


def _spread_label_keys(c: Obj, path: str) -> list[Cause]:
    keys = as_list(c.get("matchLabelKeys"))
    if not keys:
        return []
    selector = c.get("labelSelector")
    errs: list[Cause] = []
    if selector is None:
        errs.append(
            forbidden(f"{path}.matchLabelKeys", "must not be specified when labelSelector is not set")
        )
    in_selector: set[Any] = set(as_dict(as_dict(selector).get("matchLabels")))
    in_selector |= {e.get("key") for e in as_dicts(as_dict(selector).get("matchExpressions"))}
    for i, key in enumerate(keys):
        errs += _label_name(key, f"{path}.matchLabelKeys[{i}]")
        if key in in_selector:
            errs.append(
                invalid(f"{path}.matchLabelKeys[{i}]", key, "exists in both matchLabelKeys and labelSelector")
            )
    return errs


def validate_topology_spread_constraints(constraints: Any, path: str) -> list[Cause]:
    items = as_dicts(constraints)
    errs: list[Cause] = []
    for i, c in enumerate(items):
        errs += _spread_constraint(c, items[i + 1 :], f"{path}[{i}]")
    return errs
