"""ServiceAccount tokens as bearer tokens: kube's JWT token authenticator, with a small cache.

Owns: `ServiceAccountTokens(verifier, lookup)`, a TokenAuthenticator for the JWTs
api/serviceaccount makes (TokenRequest tokens and the tokens of legacy token Secrets): a token
whose issuer is not ours is "not mine"; one that is ours is checked — signature, audiences, times —
and then, on every request, against the objects it names (api/serviceaccount/claims.py): the
ServiceAccount and the pod or Secret it is bound to must still be there with their uids, so a
deleted pod's token is refused at once. `StoreLookup(core)` reads those objects from the store
through the core's codec (a token Secret is encrypted at rest), decoding each only when its
revision changed.
Cost: the signature and audience check (an ES256 verification, ~100 µs) happens once per token
(`CACHE_SIZE` tokens are remembered, refusals too, except time-dependent ones); a request with a
known token costs a dict lookup, the time check and one or two store reads (see bench/api.py).
Must not import: reconcilers, node, net.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from orchestra.api.request.core import ApiCore
from orchestra.api.serviceaccount.claims import is_legacy, validate_bound, validate_legacy
from orchestra.api.serviceaccount.tokens import TokenInvalid, TokenVerifier
from orchestra.apiserver.auth.base import AuthenticationError, Response

CACHE_SIZE = 4096
Obj = dict[str, Any]


@attrs.frozen
class _Checked:
    claims: dict[str, Any] | None  # None: refused for good (`error` says why)
    audiences: tuple[str, ...] = ()
    error: str = ""


class StoreLookup:
    """(kind, namespace, name) -> the stored object or None; shared decoded objects (read-only)."""

    def __init__(self, core: ApiCore, *, size: int = CACHE_SIZE) -> None:
        self.core = core
        self.size = size
        self._decoded: dict[str, tuple[int, Obj]] = {}

    def __call__(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        rt = self.core.registry.by_kind(kind)
        if rt is None or not name:
            return None
        kv = self.core.store.get(rt.key(namespace, name))
        if kv is None:
            return None
        hit = self._decoded.get(kv.key)
        if hit is not None and hit[0] == kv.mod_revision:
            return hit[1]
        obj: Obj = self.core.codec.decode(kv)  # Secrets are encrypted at rest: the codec decrypts them
        _remember(self._decoded, kv.key, (kv.mod_revision, obj), self.size)
        return obj


def _remember(cache: dict[Any, Any], key: Any, value: Any, size: int) -> None:
    if key not in cache and len(cache) >= size:
        del cache[next(iter(cache))]  # the oldest entry: insertion order
    cache[key] = value


class ServiceAccountTokens:
    def __init__(self, verifier: TokenVerifier, lookup: Callable[[str, str | None, str], Obj | None], *,
                 clock: Callable[[], float] = time.time, size: int = CACHE_SIZE) -> None:
        self.verifier = verifier
        self.lookup = lookup
        self.clock = clock
        self.size = size
        self._checked: dict[tuple[str, tuple[str, ...]], _Checked | None] = {}
        self.statistics = {"verified": 0, "cached": 0}

    def authenticate_token(self, token: str, audiences: Sequence[str]) -> Response | None:
        key = (token, tuple(audiences))
        if key in self._checked:
            checked = self._checked[key]
            self.statistics["cached"] += 1
        else:
            checked = self._check(token, key[1])
            self.statistics["verified"] += 1
            _remember(self._checked, key, checked, self.size)
        if checked is None:
            return None
        if checked.claims is None:
            raise AuthenticationError(checked.error)
        try:
            self.verifier.check_times(checked.claims)
            if is_legacy(checked.claims):
                user = validate_legacy(checked.claims, token, self.lookup)
            else:
                user = validate_bound(checked.claims, self.lookup, now=self.clock())
        except TokenInvalid as exc:
            raise AuthenticationError(str(exc)) from None
        return Response(user, checked.audiences)

    def _check(self, token: str, audiences: tuple[str, ...]) -> _Checked | None:
        """What never changes for a token: is it ours, its signature and its audiences."""
        if self.verifier.peek(token) is None:
            return None
        try:
            claims = self.verifier.signed_claims(token)
            accepted = self.verifier.accepted_audiences(claims, audiences or self.verifier.audiences)
        except TokenInvalid as exc:
            return _Checked(None, error=str(exc))
        return _Checked(claims, accepted)
