"""The rules an aggregated ClusterRole gathers (kube's clusterroleaggregation controller's sum).

Owns: `aggregated_rules(role, cluster_roles)`: for each of the role's aggregationRule
clusterRoleSelectors in order, the ClusterRoles it selects by label, by name (never the role itself),
and their rules in order, each rule once. reconcilers/clusterroleaggregation.py writes the result.
Must not import: anything above api/policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestra.api.policy.validation.meta import selector_matches

Obj = dict[str, Any]


def selectors(role: Obj) -> list[Any]:
    rule = role.get("aggregationRule")
    found = rule.get("clusterRoleSelectors") if isinstance(rule, dict) else None
    return found if isinstance(found, list) else []


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def aggregated_rules(role: Obj, cluster_roles: Iterable[Obj]) -> list[Obj]:
    by_name = sorted(cluster_roles, key=_name)
    own = _name(role)
    rules: list[Obj] = []
    for selector in selectors(role):
        for other in by_name:
            if _name(other) == own or not selector_matches(
                selector, (other.get("metadata") or {}).get("labels")
            ):
                continue
            for rule in other.get("rules") or []:
                if rule not in rules:
                    rules.append(rule)
    return rules
