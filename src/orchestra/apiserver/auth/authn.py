"""Authentication of one request: kube's union of authenticators, with its group adder.

Owns: `AdminToken` (the state directory's bearer token: `orchestra-admin` in `system:masters`, good for the
API server's audiences only, as kube's audience-agnostic token authenticators), and
`RequestAuthenticator`, which tries in kube's order the client certificate (x509.py), then the
bearer token against each token authenticator, adds `system:authenticated` to whoever passes and
raises AuthenticationError when nobody does ("invalid bearer token" when no authenticator knew the
token, or the errors of those that refused it).
Must not import: the api core, the store, reconcilers, node, net.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from orchestra.api.user import ADMIN, AUTHENTICATED, SYSTEM_MASTERS, UserInfo
from orchestra.apiserver.auth.base import AuthenticationError, Response, TokenAuthenticator
from orchestra.apiserver.auth.x509 import ClientCertificates

INVALID_TOKEN = "invalid bearer token"
USERS_REMEMBERED = 4096
ADMIN_USER = UserInfo(ADMIN, groups=(SYSTEM_MASTERS,))


class AdminToken:
    """The static admin token (kube's --token-auth-file with one line)."""

    def __init__(self, token: str, api_audiences: Sequence[str], *,
                 user: UserInfo = ADMIN_USER) -> None:
        self._token = token.encode()
        self.api_audiences = tuple(api_audiences)
        self.user = user

    def authenticate_token(self, token: str, audiences: Sequence[str]) -> Response | None:
        if not hmac.compare_digest(token.encode(), self._token):
            return None
        accepted = tuple(a for a in audiences if a in self.api_audiences) if audiences else self.api_audiences
        return Response(self.user, accepted) if accepted else None


def bearer_token(authorization: str) -> str | None:
    """kube's bearertoken authenticator: `Bearer <token>` (scheme in any case); else None."""
    parts = authorization.strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


class RequestAuthenticator:
    """The chain: client certificate, then the bearer token; the first that succeeds wins."""

    def __init__(self, tokens: Sequence[TokenAuthenticator], *,
                 certificates: ClientCertificates | None = None, api_audiences: Sequence[str] = ()) -> None:
        self.tokens = tuple(tokens)
        self.certificates = certificates
        self.api_audiences = tuple(api_audiences)
        self._authenticated: dict[UserInfo, UserInfo] = {}  # user -> the same with system:authenticated

    def _with_group(self, user: UserInfo) -> UserInfo:
        """kube's AuthenticatedGroupAdder, remembered: most requests come from a few users."""
        found = self._authenticated.get(user)
        if found is None:
            if len(self._authenticated) >= USERS_REMEMBERED:
                self._authenticated.clear()
            found = self._authenticated[user] = user.with_group(AUTHENTICATED)
        return found

    def authenticate(self, headers: dict[str, str], tls: dict[str, Any] | None) -> UserInfo:
        """The request's user (with system:authenticated); AuthenticationError when nobody accepts it."""
        errors: list[str] = []
        chain = (tls or {}).get("client_cert_chain") or ()
        if chain and self.certificates is not None:
            try:
                user = self.certificates.authenticate(chain[0])
            except AuthenticationError as exc:
                errors.append(str(exc))
            else:
                if user is not None:
                    return self._with_group(user)
        token = bearer_token(headers.get("authorization", ""))
        if token is not None:
            try:
                return self.authenticate_token(token).user
            except AuthenticationError as exc:
                errors.append(str(exc))
        raise AuthenticationError(", ".join(errors) if errors else "no credentials provided")

    def authenticate_token(self, token: str, audiences: Sequence[str] = ()) -> Response:
        """The token's user (with system:authenticated) and the audiences it is good for."""
        wanted = tuple(audiences) or self.api_audiences
        errors = []
        for authenticator in self.tokens:
            try:
                found = authenticator.authenticate_token(token, wanted)
            except AuthenticationError as exc:
                errors.append(str(exc))
                continue
            if found is not None:
                return Response(self._with_group(found.user), found.audiences)
        raise AuthenticationError(", ".join([INVALID_TOKEN, *errors]) if errors else INVALID_TOKEN)


def attempted(headers: dict[str, str], tls: dict[str, Any] | None) -> str:
    """kube's audit message for a failed authentication (getAuthMethods)."""
    methods = []
    parts = headers.get("authorization", "").strip().split(" ")
    if len(parts) > 1 and parts[0].lower() == "bearer":
        methods.append("bearer")
    if (tls or {}).get("client_cert_chain"):
        methods.append("x509")
    if methods:
        return "Authentication failed, attempted: " + ", ".join(methods)
    return "Authentication failed, no credentials provided"
