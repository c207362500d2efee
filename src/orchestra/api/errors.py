"""API errors as Kubernetes `Status` objects (reason, code, message, details.causes).

Owns: the exception hierarchy every api-layer module raises and the Status rendering.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from typing import Any

import attrs

NAMESPACE_TERMINATING = "NamespaceTerminating"  # v1.NamespaceTerminatingCause


@attrs.frozen
class Cause:
    """One entry of `details.causes` (e.g. a field that failed validation)."""

    reason: str
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        d = {"reason": self.reason, "message": self.message}
        if self.field:
            d["field"] = self.field
        return d


class ApiError(Exception):
    """An error the API returns to a client as a `Status` with this code and reason."""

    code = 500
    reason = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        name: str = "",
        group: str = "",
        kind: str = "",
        causes: tuple[Cause, ...] | list[Cause] = (),
        retry_after: int | None = None,
        details: bool = False,
    ) -> None:
        """`details`: render `details` even when empty, as kube's NewGenericServerResponse does (its
        404 for an unknown path is `"details":{}`)."""
        super().__init__(message)
        self.message = message
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = tuple(causes)
        self.retry_after = retry_after
        self.empty_details = details

    def status(self) -> dict[str, Any]:
        """The Status, its fields in the order kube's encoder writes them (metav1.Status's and
        StatusDetails' field order), so the bytes match kube-apiserver's."""
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:  # else a bare Status (kube's eviction answers some failures that way)
            out["reason"] = self.reason
        if details or self.empty_details:
            out["details"] = details
        out["code"] = self.code
        return out


class BadRequest(ApiError):
    code, reason = 400, "BadRequest"


class Unauthorized(ApiError):
    code, reason = 401, "Unauthorized"


class Forbidden(ApiError):
    code, reason = 403, "Forbidden"


class NotFound(ApiError):
    code, reason = 404, "NotFound"


class MethodNotAllowed(ApiError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(ApiError):
    code, reason = 406, "NotAcceptable"


class AlreadyExists(ApiError):
    code, reason = 409, "AlreadyExists"


class Conflict(ApiError):
    code, reason = 409, "Conflict"


class Gone(ApiError):
    """The requested resourceVersion is older than the retained history."""

    code, reason = 410, "Expired"


class RequestEntityTooLarge(ApiError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(ApiError):
    code, reason = 422, "Invalid"


class TooManyRequests(ApiError):
    code, reason = 429, "TooManyRequests"


class InternalError(ApiError):
    code, reason = 500, "InternalError"


class ServiceUnavailable(ApiError):
    code, reason = 503, "ServiceUnavailable"


class Timeout(ApiError):
    code, reason = 504, "Timeout"


def namespace_terminating(err: ApiError) -> bool:
    """A 403 refusing new content in a terminating namespace (apierrors.HasStatusCause(err,
    v1.NamespaceTerminatingCause))."""
    return isinstance(err, Forbidden) and any(c.reason == NAMESPACE_TERMINATING for c in err.causes)


def new_content_forbidden(group_resource: str, name: str, namespace: str, *, group: str,
                          plural: str) -> Forbidden:
    """NamespaceLifecycle's 403 for a create in a terminating namespace, with the cause clients and
    `namespace_terminating` test for."""
    return Forbidden(
        f'{group_resource} "{name}" is forbidden: unable to create new content in namespace {namespace} '
        "because it is being terminated",
        name=name, group=group, kind=plural,
        causes=[Cause(NAMESPACE_TERMINATING, f"namespace {namespace} is being terminated",
                      "metadata.namespace")],
    )


def path_not_found() -> NotFound:
    """kube's 404 for a path no API serves: `"details":{}` and this message."""
    return NotFound("the server could not find the requested resource", details=True)


def not_found(group_resource: str, name: str, *, group: str, plural: str) -> NotFound:
    return NotFound(f'{group_resource} "{name}" not found', name=name, group=group, kind=plural)


def already_exists(group_resource: str, name: str, *, group: str, plural: str) -> AlreadyExists:
    return AlreadyExists(f'{group_resource} "{name}" already exists', name=name, group=group, kind=plural)


def conflict(group_resource: str, name: str, *, group: str, plural: str) -> Conflict:
    return Conflict(
        f'Operation cannot be fulfilled on {group_resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        name=name,
        group=group,
        kind=plural,
    )


def invalid(kind: str, name: str, causes: list[Cause], *, group: str = "") -> Invalid:
    """422 with kube-apiserver's message: `The Deployment "web" is invalid: spec.x: Required value`."""
    # field.ErrorList.ToAggregate: the message names each distinct error once (the causes keep them all)
    parts = list(dict.fromkeys(f"{c.field}: {c.message}" if c.field else c.message for c in causes))
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    qualified = f"{kind}.{group}" if group else kind
    return Invalid(
        f'{qualified} "{name}" is invalid: {joined}', name=name, group=group, kind=kind, causes=causes
    )
