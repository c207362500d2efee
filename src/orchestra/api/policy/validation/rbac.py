"""rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding, ClusterRoleBinding (kube's
pkg/apis/rbac/validation), with kube's paths and messages.

Owns: `validate_role`, `validate_cluster_role`, `validate_role_binding`,
`validate_cluster_role_binding` (each also the update check: a binding's roleRef cannot change) and
`path_segment_name` (ValidateRBACName: any name but `.`/`..` and names with `/` or `%`).
Must not import: anything in orchestra.api.policy.validation but meta.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import GoRepr, go_quote, invalid, not_supported, required
from orchestra.api.machinery.names import is_dns1123_subdomain
from orchestra.api.policy.validation.meta import validate_label_selector, validate_object_meta
from orchestra.objects import Obj, as_dict, as_dicts, as_list

GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def path_segment_name(name: str) -> list[str]:
    """path.IsValidPathSegmentName."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in "/%" if c in name]


def _rule(rule: Obj, namespaced: bool, path: str) -> list[Cause]:
    errs: list[Cause] = []
    if not as_list(rule.get("verbs")):
        errs.append(required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = as_list(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            errs.append(
                invalid(f"{path}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs")
            )
        if (
            as_list(rule.get("apiGroups"))
            or as_list(rule.get("resources"))
            or as_list(rule.get("resourceNames"))
        ):
            errs.append(
                invalid(
                    f"{path}.nonResourceURLs",
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        return errs
    if not as_list(rule.get("apiGroups")):
        errs.append(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not as_list(rule.get("resources")):
        errs.append(required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errs


def _rules(obj: Obj, namespaced: bool) -> list[Cause]:
    return [
        c for i, rule in enumerate(as_dicts(obj.get("rules"))) for c in _rule(rule, namespaced, f"rules[{i}]")
    ]


def validate_role(obj: Obj, old: Obj | None) -> list[Cause]:
    return validate_object_meta(obj.get("metadata"), path_segment_name) + _rules(obj, True)


def validate_cluster_role(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), path_segment_name) + _rules(obj, False)
    aggregation = obj.get("aggregationRule")
    if isinstance(aggregation, dict):
        selectors = as_list(aggregation.get("clusterRoleSelectors"))
        if not selectors:
            errs.append(
                required(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                )
            )
        for i, selector in enumerate(selectors):
            errs += validate_label_selector(selector, f"aggregationRule.clusterRoleSelectors[{i}]")
    return errs


def _subject(subject: Obj, namespaced: bool, path: str) -> list[Cause]:
    errs: list[Cause] = []
    name, kind, group = (
        str(subject.get("name") or ""),
        subject.get("kind"),
        str(subject.get("apiGroup") or ""),
    )
    if not name:
        errs.append(required(f"{path}.name"))
    if kind == "ServiceAccount":
        if name:
            errs += [invalid(f"{path}.name", name, m) for m in is_dns1123_subdomain(name)]
        if group:
            errs.append(not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            errs.append(required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != GROUP:
            errs.append(not_supported(f"{path}.apiGroup", group, [GROUP]))
    else:
        errs.append(not_supported(f"{path}.kind", kind or "", SUBJECT_KINDS))
    return errs


def role_ref_repr(ref: Any) -> GoRepr:
    """%#v of the internal rbac.RoleRef (how kube prints a changed roleRef)."""
    ref = as_dict(ref)
    fields = ", ".join(
        f"{k}:{go_quote(str(ref.get(j) or ''))}"
        for k, j in (("APIGroup", "apiGroup"), ("Kind", "kind"), ("Name", "name"))
    )
    return GoRepr(f"rbac.RoleRef{{{fields}}}")


def _binding(obj: Obj, old: Obj | None, kinds: tuple[str, ...], namespaced: bool) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), path_segment_name)
    ref = as_dict(obj.get("roleRef"))
    if ref.get("apiGroup") != GROUP:
        errs.append(not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [GROUP]))
    if ref.get("kind") not in kinds:
        errs.append(not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    name = str(ref.get("name") or "")
    if not name:
        errs.append(required("roleRef.name"))
    errs += [invalid("roleRef.name", name, m) for m in path_segment_name(name)] if name else []
    for i, subject in enumerate(as_dicts(obj.get("subjects"))):
        errs += _subject(subject, namespaced, f"subjects[{i}]")
    if old is not None and as_dict(old.get("roleRef")) != ref:
        errs.append(invalid("roleRef", role_ref_repr(ref), "cannot change roleRef"))
    return errs


def validate_role_binding(obj: Obj, old: Obj | None) -> list[Cause]:
    return _binding(obj, old, ("Role", "ClusterRole"), True)


def validate_cluster_role_binding(obj: Obj, old: Obj | None) -> list[Cause]:
    return _binding(obj, old, ("ClusterRole",), False)
