"""The authenticators' shared vocabulary (kube's authenticator package).

Owns: `Response(user, audiences)`, `AuthenticationError` (a credential was presented and is bad;
the message is for logs, the audit log and TokenReview — a client only ever sees 401
"Unauthorized"), and the `TokenAuthenticator` protocol every bearer-token authenticator implements.
Must not import: anything of orchestra but api.user.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from orchestra.api.user import UserInfo


@attrs.frozen
class Response:
    user: UserInfo
    audiences: tuple[str, ...] = ()


class AuthenticationError(Exception):
    """Credentials were presented and refused; the message says why (never shown to the client)."""


class TokenAuthenticator(Protocol):
    def authenticate_token(self, token: str, audiences: Sequence[str]) -> Response | None:
        """The token's user, None when the token is not this authenticator's, AuthenticationError when
        it is but must be refused. `audiences`: those asked for (the API server's by default)."""
        ...
