"""RBAC PolicyRules: matching a request, covering other rules, kube's compact wording.

Owns: `Rule` (one rbac/v1 PolicyRule, its lists frozen into sets for matching), `Access` (what a
request asks in RBAC's terms: verb, API group, resource, subresource, name — or a non-resource path),
`Rule.allows(access)` (kube's RuleAllows: `*` verbs/groups/resources, `*/subresource`, resourceNames,
nonResourceURLs with a trailing `*`), `covers(owner, wanted) -> missing rules` (kube's
validation.Covers over rules broken down to one verb, group, resource and name each) and
`compact_string(rule)` / `compact_rules(rules)` (how escalation errors and `kubectl auth can-i
--list` word missing rules).
Must not import: anything above api/policy (pure functions of rule dicts).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import attrs

ALL = "*"


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


class Attributes(Protocol):
    """What RBAC reads of a request (the apiserver's RequestInfo is one)."""

    @property
    def verb(self) -> str: ...
    @property
    def api_group(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def subresource(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def resource_request(self) -> bool: ...


@attrs.frozen
class Access:
    """One request in RBAC's terms (kube's authorizer.Attributes, without the user)."""

    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""
    path: str = ""
    resource_request: bool = True


@attrs.frozen(eq=False)
class Rule:
    """A PolicyRule; the list fields keep the stored order (for JSON), the sets make matching cheap."""

    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    _verbs: frozenset[str] = attrs.field(init=False)
    _groups: frozenset[str] = attrs.field(init=False)
    _resources: frozenset[str] = attrs.field(init=False)
    _names: frozenset[str] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_verbs", frozenset(self.verbs))
        object.__setattr__(self, "_groups", frozenset(self.api_groups))
        object.__setattr__(self, "_resources", frozenset(self.resources))
        object.__setattr__(self, "_names", frozenset(self.resource_names))

    @classmethod
    def from_json(cls, rule: Any) -> Rule:
        r = rule if isinstance(rule, dict) else {}
        return cls(
            _strings(r.get("verbs")),
            _strings(r.get("apiGroups")),
            _strings(r.get("resources")),
            _strings(r.get("resourceNames")),
            _strings(r.get("nonResourceURLs")),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verbs": list(self.verbs)}
        for key, value in (
            ("apiGroups", self.api_groups),
            ("resources", self.resources),
            ("resourceNames", self.resource_names),
            ("nonResourceURLs", self.non_resource_urls),
        ):
            if value:
                out[key] = list(value)
        return out

    def key(self) -> tuple[tuple[str, ...], ...]:
        return (self.verbs, self.api_groups, self.resources, self.resource_names, self.non_resource_urls)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def allows(self, access: Attributes) -> bool:
        """kube's RuleAllows."""
        if access.verb not in self._verbs and ALL not in self._verbs:
            return False
        if not access.resource_request:
            return self._url_matches(access.path)
        if access.api_group not in self._groups and ALL not in self._groups:
            return False
        sub = access.subresource
        if not self._resource_matches(f"{access.resource}/{sub}" if sub else access.resource, sub):
            return False
        return not self._names or access.name in self._names

    def _resource_matches(self, combined: str, subresource: str) -> bool:
        resources = self._resources
        if ALL in resources or combined in resources:
            return True
        return bool(subresource) and f"*/{subresource}" in resources

    def _url_matches(self, path: str) -> bool:
        for url in self.non_resource_urls:
            if url in (ALL, path) or (url.endswith(ALL) and path.startswith(url[:-1])):
                return True
        return False


def rules_of(obj: Any) -> tuple[Rule, ...]:
    """The rules of a Role or ClusterRole document."""
    rules = obj.get("rules") if isinstance(obj, dict) else None
    return tuple(Rule.from_json(r) for r in rules) if isinstance(rules, list) else ()


# --- covering (escalation checks) ---------------------------------------------------------------------


def _breakdown(rule: Rule) -> list[Rule]:
    """One rule per verb x group x resource (x name), and per verb x non-resource URL."""
    out: list[Rule] = []
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                if rule.resource_names:
                    out.extend(Rule((verb,), (group,), (resource,), (name,)) for name in rule.resource_names)
                else:
                    out.append(Rule((verb,), (group,), (resource,)))
    for url in rule.non_resource_urls:
        out.extend(Rule((verb,), non_resource_urls=(url,)) for verb in rule.verbs)
    return out


def _has_resource(owned: Sequence[str], resource: str) -> bool:
    for own in owned:
        if own in (ALL, resource):
            return True
        if own.startswith("*/") and resource.endswith(own[1:]):  # "*/scale" covers "deployments/scale"
            return True
    return False


def _has_url(owned: Sequence[str], url: str) -> bool:
    return any(own == url or (own.endswith(ALL) and url.startswith(own[:-1])) for own in owned)


def _rule_covers(owner: Rule, sub: Rule) -> bool:
    """kube's ruleCovers for a broken-down `sub`."""
    if ALL not in owner.verbs and not set(sub.verbs) <= set(owner.verbs):
        return False
    if ALL not in owner.api_groups and not set(sub.api_groups) <= set(owner.api_groups):
        return False
    if not all(_has_resource(owner.resources, r) for r in sub.resources):
        return False
    if not all(_has_url(owner.non_resource_urls, u) for u in sub.non_resource_urls):
        return False
    if not owner.resource_names:
        return True
    return bool(sub.resource_names) and set(sub.resource_names) <= set(owner.resource_names)


def covers(owner: Sequence[Rule], wanted: Iterable[Rule]) -> list[Rule]:
    """The broken-down parts of `wanted` that no rule of `owner` covers (empty: all covered)."""
    missing = []
    for rule in wanted:
        for sub in _breakdown(rule):
            if not any(_rule_covers(own, sub) for own in owner):
                missing.append(sub)
    return missing


def compact_rules(rules: Sequence[Rule]) -> list[Rule]:
    """kube's CompactRules: rules of one group and one resource (no names, no URLs) that differ only
    in their verbs become one rule with the verbs in order of appearance."""
    merged: dict[tuple[str, str], list[str]] = {}
    out: list[Rule | tuple[str, str]] = []
    for rule in rules:
        simple = (
            len(rule.api_groups) == 1
            and len(rule.resources) == 1
            and not rule.resource_names
            and not rule.non_resource_urls
        )
        if not simple:
            out.append(rule)
            continue
        key = (rule.api_groups[0], rule.resources[0])
        if key not in merged:
            merged[key] = []
            out.append(key)
        merged[key].extend(v for v in rule.verbs if v not in merged[key])
    return [r if isinstance(r, Rule) else Rule(tuple(merged[r]), (r[0],), (r[1],)) for r in out]


def go_strings(values: Sequence[str]) -> str:
    """Go's %q of a []string: `["a" "b"]`."""
    return "[" + " ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def compact_string(rule: Rule) -> str:
    """kube's PolicyRule.CompactString: `{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`."""
    parts = [
        f"{label}:{go_strings(values)}"
        for label, values in (
            ("APIGroups", rule.api_groups),
            ("Resources", rule.resources),
            ("NonResourceURLs", rule.non_resource_urls),
            ("ResourceNames", rule.resource_names),
            ("Verbs", rule.verbs),
        )
        if values
    ]
    return "{" + ", ".join(parts) + "}"
