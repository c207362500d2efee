"""Bootstrap tokens as bearer tokens: kube's bootstrap token authenticator (--enable-bootstrap-token-auth).

Owns: `BootstrapTokens(lookup, clock)`, a TokenAuthenticator: a token shaped `<id>.<secret>` is this
authenticator's; it authenticates as `system:bootstrap:<id>` in `system:bootstrappers` (and the
Secret's auth-extra-groups) while the Secret `kube-system/bootstrap-token-<id>` exists, is of type
`bootstrap.kubernetes.io/token`, holds the same id and secret, has not expired and is marked
usage-bootstrap-authentication=true (api/policy/bootstraptoken.py holds the rules). kube answers
every refusal "not mine" and only logs why; here the reason is an AuthenticationError, so it reaches
the log and the audit record (the client still only sees 401 Unauthorized). The Secret is read on
every request (a deleted or expired token is refused at once); it is a dict lookup in the store.
Must not import: reconcilers, node, net.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from orchestra.api.policy import bootstraptoken as bt
from orchestra.api.user import UserInfo
from orchestra.apiserver.auth.base import AuthenticationError, Response

Lookup = Callable[[str, str | None, str], dict | None]  # type: ignore[type-arg]


class BootstrapTokens:
    def __init__(self, lookup: Lookup, api_audiences: Sequence[str], *,
                 clock: Callable[[], dt.datetime] = bt.now_utc) -> None:
        self.lookup = lookup
        self.api_audiences = tuple(api_audiences)
        self.clock = clock

    def authenticate_token(self, token: str, audiences: Sequence[str]) -> Response | None:
        parsed = bt.parse_token(token)
        if parsed is None:
            return None
        token_id, token_secret = parsed
        accepted = tuple(a for a in audiences if a in self.api_audiences) if audiences else self.api_audiences
        if not accepted:
            return None  # kube's audience-agnostic authenticators: good for the API server only
        secret = self.lookup("Secret", bt.NAMESPACE, bt.secret_name(token_id))
        if secret is None:
            raise AuthenticationError(f"bootstrap token {token_id} is unknown: no Secret "
                                      f"{bt.NAMESPACE}/{bt.secret_name(token_id)} (deleted or never created)")
        try:
            found = bt.check_secret(secret, token_id, token_secret, self.clock())
        except bt.TokenRefused as exc:
            raise AuthenticationError(str(exc)) from None
        return Response(UserInfo(found.name, groups=found.groups), accepted)
