"""authentication.k8s.io/v1 TokenReview and SelfSubjectReview: create-only, never stored.

Owns: `token_review(authenticator, body)` — kube's TokenReview REST: the body's spec.token (400 when
empty) goes through the token authenticators for spec.audiences (default the API server's); the
answer's status says authenticated, the user (with system:authenticated), the audiences it is
good for, or the error — and `self_subject_review(user)` (`kubectl auth whoami`): the requester's
own UserInfo. Both answer 201 with the object, as kube does.
Must not import: the api core, the store, reconcilers, node, net.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from orchestra.api.errors import BadRequest
from orchestra.api.user import UserInfo
from orchestra.apiserver.auth.authn import RequestAuthenticator
from orchestra.apiserver.auth.base import AuthenticationError
from orchestra.apiserver.auth.reviewbody import checked_review
from orchestra.objects import format_time

API_VERSION = "authentication.k8s.io/v1"


def token_review(authenticator: RequestAuthenticator, body: Any) -> dict[str, Any]:
    review = checked_review(body, API_VERSION, "TokenReview")
    spec = review.get("spec") or {}
    token = spec.get("token")
    if not isinstance(token, str) or not token:
        raise BadRequest("token is required for TokenReview in authentication.k8s.io")
    audiences = spec.get("audiences") or []
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise BadRequest('TokenReview in version "v1" cannot be handled as a TokenReview: '
                         "spec.audiences must be a list of strings")
    status: dict[str, Any] = {"authenticated": False, "user": {}}
    try:
        found = authenticator.authenticate_token(token, audiences)
    except AuthenticationError as exc:
        status["error"] = str(exc)
    else:
        status.update(authenticated=True, user=found.user.to_json(), audiences=list(found.audiences))
    return {**review, "metadata": review.get("metadata") or {}, "spec": spec, "status": status}


def self_subject_review(user: UserInfo, body: Any) -> dict[str, Any]:
    review = checked_review(body if body is not None else {}, API_VERSION, "SelfSubjectReview")
    metadata = {**(review.get("metadata") or {}), "creationTimestamp": format_time(datetime.now(UTC))}
    return {"kind": "SelfSubjectReview", "apiVersion": API_VERSION, "metadata": metadata,
            "status": {"userInfo": user.to_json()}}
