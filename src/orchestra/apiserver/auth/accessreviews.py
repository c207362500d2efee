"""authorization.k8s.io/v1 access reviews: create-only, answered in status, never stored.

Owns: `access_review(kind, body, requestor, namespace, authorizer, index)` for
  * SubjectAccessReview — may `spec.user` (with `spec.groups`, `extra`, `uid`) do
    `spec.resourceAttributes` or `spec.nonResourceAttributes`? (the user is taken as given: no
    system:authenticated is added, as in kube);
  * LocalSubjectAccessReview — the same in the URL's namespace (the attributes' namespace must match);
  * SelfSubjectAccessReview — may the requester? (`kubectl auth can-i VERB RESOURCE`);
  * SelfSubjectRulesReview — every rule the requester holds in `spec.namespace`
    (`kubectl auth can-i --list`), RBAC's RulesFor: resource rules and non-resource rules apart.
Each body is checked as kube validates it (`spec.user: Invalid value: "": at least one of user or
group must be specified`, exactly one of resourceAttributes / nonResourceAttributes) and answered
201 with the body and its status: allowed, denied (never: RBAC only allows), reason, and
evaluationError for bindings to missing roles.
Must not import: reconcilers, node, net.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from orchestra.api.errors import BadRequest, Cause, invalid
from orchestra.api.machinery.field import invalid as invalid_cause
from orchestra.api.user import UserInfo
from orchestra.apiserver.auth.authz import Authorizer, Decision
from orchestra.apiserver.auth.rbac import rules_for
from orchestra.apiserver.auth.rbacindex import RbacIndex
from orchestra.apiserver.auth.reviewbody import checked_review
from orchestra.apiserver.requestinfo import RequestInfo
from orchestra.objects import format_time

API_VERSION = "authorization.k8s.io/v1"
GROUP = "authorization.k8s.io"


def _checked(body: Any, kind: str) -> dict[str, Any]:
    review = checked_review(body, API_VERSION, kind)
    return {**review, "metadata": dict(body.get("metadata") or {}), "spec": dict(body.get("spec") or {})}


def _attributes_causes(spec: dict[str, Any]) -> list[Cause]:
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource is None and non_resource is None:
        return [
            invalid_cause(
                "spec.resourceAttributes",
                None,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        ]
    if resource is not None and non_resource is not None:
        return [
            invalid_cause(
                "spec.nonResourceAttributes",
                None,
                "cannot be specified in combination with resourceAttributes",
            )
        ]
    return []


def _request(spec: dict[str, Any]) -> RequestInfo:
    """AuthorizationAttributesFrom(spec)."""
    resource = spec.get("resourceAttributes")
    if isinstance(resource, dict):
        return RequestInfo(
            path="",
            verb=str(resource.get("verb") or ""),
            resource_request=True,
            api_group=str(resource.get("group") or ""),
            api_version=str(resource.get("version") or ""),
            namespace=str(resource.get("namespace") or ""),
            resource=str(resource.get("resource") or ""),
            subresource=str(resource.get("subresource") or ""),
            name=str(resource.get("name") or ""),
        )
    other = spec.get("nonResourceAttributes") or {}
    return RequestInfo(path=str(other.get("path") or ""), verb=str(other.get("verb") or ""))


def _subject(spec: dict[str, Any]) -> UserInfo:
    extra = spec.get("extra") if isinstance(spec.get("extra"), dict) else {}
    return UserInfo(
        str(spec.get("user") or ""),
        uid=str(spec.get("uid") or ""),
        groups=[str(g) for g in spec.get("groups") or []],
        extra={str(k): [str(x) for x in v or []] for k, v in (extra or {}).items()},
    )


def _status(authorizer: Authorizer, user: UserInfo, info: RequestInfo) -> dict[str, Any]:
    decision, reason = authorizer.authorize(user, info)
    status: dict[str, Any] = {"allowed": decision is Decision.ALLOW}
    if decision is Decision.DENY:
        status["denied"] = True
    if reason:
        status["reason"] = reason
    return status


def access_review(
    kind: str,
    body: Any,
    requestor: UserInfo,
    namespace: str | None,
    authorizer: Authorizer,
    index: RbacIndex | None,
) -> dict[str, Any]:
    review = _checked(body, kind)
    spec = review["spec"]
    if kind == "SelfSubjectRulesReview":
        if index is None:
            raise BadRequest("no rule resolver: this server does not authorize with RBAC")
        return _rules_review(review, requestor, index)
    causes = _attributes_causes(spec)
    if kind in ("SubjectAccessReview", "LocalSubjectAccessReview") and not (
        spec.get("user") or spec.get("groups")
    ):
        causes.append(
            invalid_cause(
                "spec.user", spec.get("user") or "", "at least one of user or group must be specified"
            )
        )
    if causes:
        raise invalid(kind, "", causes, group=GROUP)
    info = _request(spec)
    if kind == "LocalSubjectAccessReview":
        review["metadata"]["namespace"] = namespace
        if spec.get("resourceAttributes") is not None and info.namespace != namespace:
            raise BadRequest(f"spec.resourceAttributes.namespace must match namespace: {namespace}")
    user = requestor if kind == "SelfSubjectAccessReview" else _subject(spec)
    review["status"] = _status(authorizer, user, info)
    return _stamped(review)


def _stamped(review: dict[str, Any]) -> dict[str, Any]:
    review["metadata"]["creationTimestamp"] = format_time(datetime.now(UTC))
    return review


def _rules_review(review: dict[str, Any], user: UserInfo, index: RbacIndex) -> dict[str, Any]:
    namespace = str(review["spec"].get("namespace") or "")
    if not namespace:
        raise BadRequest("no namespace on request")
    rules, resolved = rules_for(index, user, namespace)
    resource_rules, url_rules = [], []
    for rule in rules:
        if rule.resources:
            out: dict[str, Any] = {"verbs": list(rule.verbs)}
            for key, values in (
                ("apiGroups", rule.api_groups),
                ("resources", rule.resources),
                ("resourceNames", rule.resource_names),
            ):
                if values:
                    out[key] = list(values)
            resource_rules.append(out)
        if rule.non_resource_urls:
            url_rules.append({"verbs": list(rule.verbs), "nonResourceURLs": list(rule.non_resource_urls)})
    status: dict[str, Any] = {
        "resourceRules": resource_rules,
        "nonResourceRules": url_rules,
        "incomplete": False,
    }
    if resolved.errors:
        status["evaluationError"] = (
            resolved.errors[0] if len(resolved.errors) == 1 else ("[" + ", ".join(resolved.errors) + "]")
        )
    review["status"] = status
    return _stamped(review)
