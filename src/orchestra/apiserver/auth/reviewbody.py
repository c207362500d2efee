"""The body check every create-only review kind shares (TokenReview, SelfSubjectReview, the access reviews).

Owns: `checked_review(body, api_version, kind)`: kube's decoding errors for a review body that is not a
JSON object, names another kind or version, or has a metadata / spec that is not an object (400,
"<Kind> in version "v1" cannot be handled as a <Kind>: ..."), and the body with apiVersion and kind set.
Must not import: the api core, the store, reconcilers, node, net.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import BadRequest


def checked_review(body: Any, api_version: str, kind: str) -> dict[str, Any]:
    prefix = f'{kind} in version "v1" cannot be handled as a {kind}: '
    if not isinstance(body, dict):
        raise BadRequest(prefix + "the request body is not a JSON object")
    given_version, given = body.get("apiVersion") or api_version, body.get("kind") or kind
    if (given_version, given) != (api_version, kind):
        raise BadRequest(prefix + f'no kind "{given}" is registered for version "{given_version}"')
    for field in ("metadata", "spec"):
        if body.get(field) is not None and not isinstance(body[field], dict):
            raise BadRequest(prefix + f"{field} must be an object")
    return {**body, "apiVersion": api_version, "kind": kind}
