"""The filters every request passes before a handler, in kube-apiserver's order: audit ->
authentication -> authorization -> the handler (routing, then admission in the API core's writes).

Owns: `RequestChain(authenticator, authorizer, audit).serve(req, handle, fail)`: describes the request
(requestinfo.py), starts its audit record (and wraps its `send` to learn the response code), lets
the health endpoints through as `system:anonymous`, authenticates everything else (401 Unauthorized
with kube's Status when nobody accepts the credentials, audited with how it was attempted),
acts as the user the Impersonate-* headers name, if the user may (auth/impersonation.py), authorizes
the (acting) user for the request (403 from the Authorizer's denial), sets `req.user` and calls
`handle(req)`; the audit record completes when the request ends, however it ends.
Without an authenticator (tests that serve the API without credentials) every request passes with
no user. In-process components never come here: they call the API core directly.
Must not import: the api core, the store, reconcilers, node, net.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from orchestra.api.errors import ApiError, Unauthorized
from orchestra.api.user import ANONYMOUS, UNAUTHENTICATED, UserInfo
from orchestra.apiserver.audit.events import AuditRecord
from orchestra.apiserver.audit.log import AuditLog
from orchestra.apiserver.auth.authn import RequestAuthenticator, attempted
from orchestra.apiserver.auth.authz import AlwaysAllow, Authorizer, Decision, forbidden
from orchestra.apiserver.auth.base import AuthenticationError
from orchestra.apiserver.auth.impersonation import impersonate, wants_impersonation
from orchestra.apiserver.http import Request
from orchestra.apiserver.requestinfo import RequestInfo, request_info

log = logging.getLogger("orchestra.auth")

PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
ANONYMOUS_USER = UserInfo(ANONYMOUS, groups=(UNAUTHENTICATED,))
Handler = Callable[[Request], Awaitable[None]]
Fail = Callable[[Request, ApiError], Awaitable[None]]


class RequestChain:
    def __init__(self, authenticator: RequestAuthenticator | None, *, authorizer: Authorizer | None = None,
                 audit: AuditLog | None = None) -> None:
        self.authenticator = authenticator
        self.authorizer: Authorizer = authorizer or AlwaysAllow()
        self.audit = audit

    async def serve(self, req: Request, handle: Handler, fail: Fail) -> None:
        info = request_info(req.method, req.path, req.query)
        record = None
        if self.audit is not None:
            client = req.scope.get("client")
            record = AuditRecord(self.audit.add, info, _request_uri(req), client[0] if client else None,
                                 req.headers.get("user-agent", ""), req.headers.get("audit-id", "")[:64])
            req.send = record.wrap(req.send)
            req.audit = record
        try:
            if self.authenticator is None:
                await handle(req)
                return
            if req.path in PUBLIC_PATHS:
                req.user = ANONYMOUS_USER
            elif not await self._admit(req, info, record, fail):
                return
            if record is not None:
                record.authorized = True
                if record.user is None:
                    record.user = req.user
            await handle(req)
        finally:
            if record is not None:
                record.complete()

    async def _admit(self, req: Request, info: RequestInfo, record: AuditRecord | None, fail: Fail) -> bool:
        """Authenticate and authorize; False when the request was answered 401 or 403."""
        assert self.authenticator is not None
        tls = req.scope.get("extensions", {}).get("tls")
        try:
            user = self.authenticator.authenticate(req.headers, tls)
        except AuthenticationError as exc:
            log.debug("authentication of %s %s failed: %s", req.method, req.path, exc)
            if record is not None:
                record.failed_authentication(attempted(req.headers, tls))
            await fail(req, Unauthorized("Unauthorized"))
            return False
        if record is not None:
            record.user = user
        if wants_impersonation(req.headers):
            try:
                acting = impersonate(user, req.scope.get("headers") or (), self.authorizer)
            except ApiError as err:
                await fail(req, err)
                return False
            if acting is not None:
                user = acting
                if record is not None:
                    record.impersonated = acting
        req.user = user
        decision, reason = self.authorizer.authorize(user, info)
        if record is not None:
            record.reason = reason
        if decision is not Decision.ALLOW:
            if record is not None:
                record.forbidden = True
            await fail(req, forbidden(user, info, reason))
            return False
        return True


def _request_uri(req: Request) -> str:
    raw = req.scope.get("raw_path") or req.path.encode()
    query = req.scope.get("query_string") or b""
    uri = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    return f"{uri}?{query.decode('latin-1')}" if query else uri
