"""ServiceAccount tokens for projected volumes: the kubelet's token manager.

Owns: `TokenManager(client).get(pod, projection)` — the token a `serviceAccountToken` projection
of a pod's volume holds: asked for through TokenRequest (`serviceaccounts/<pod's account>/token`)
bound to the pod (name and uid), for the projection's audience (none: the API server's) and
`expirationSeconds`, and kept until it must be refreshed — at 80 % of its life, as the kubelet
does (requiresRefresh: within 20 % of the TTL of expiry), or after 24 hours at most; `due(uid)`:
when (trio time) the first of a pod's tokens is due, so its worker comes back to rewrite the file
then; `forget(uid)` drops a pod's tokens when it goes. Failures of TokenRequest are ConfigErrors
(the pod waits with FailedMount).
Time is trio's: a virtual clock drives refreshes in tests.
Must not import: podman, reconcilers, apiserver.
"""

from __future__ import annotations

import math

import attrs
import trio

from orchestra.api.errors import ApiError
from orchestra.client.base import Client
from orchestra.node.env import ConfigError
from orchestra.objects import Obj

REFRESH_AT = 0.8  # of the token's lifetime
MAX_TTL = 24 * 60 * 60.0  # a token is refreshed after a day whatever its expiry (kubelet's maxTTL)
DEFAULT_EXPIRATION = 3600  # ServiceAccountTokenProjection.expirationSeconds' default


@attrs.frozen
class _Token:
    token: bytes
    refresh_at: float


class TokenManager:
    def __init__(self, client: Client) -> None:
        self.client = client
        self._tokens: dict[tuple[str, str, str, int], _Token] = {}
        self.requests = 0  # TokenRequests made (tests and statistics)

    async def get(self, pod: Obj, projection: Obj) -> bytes:
        """The projection's token, asked for anew when it is due for a refresh."""
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        uid, namespace = str(meta.get("uid") or ""), str(meta.get("namespace") or "")
        account = str(spec.get("serviceAccountName") or "default")
        audience = str(projection.get("audience") or "")
        seconds = int(projection.get("expirationSeconds") or DEFAULT_EXPIRATION)
        key = (uid, account, audience, seconds)
        now = trio.current_time()
        cached = self._tokens.get(key)
        if cached is not None and now < cached.refresh_at:
            return cached.token
        bound = {"apiVersion": "v1", "kind": "Pod", "name": meta.get("name"), "uid": uid}
        request: Obj = {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": [audience] if audience else None, "expirationSeconds": seconds,
                     "boundObjectRef": bound},
        }
        try:
            answered = await self.client.create_token(namespace, account, request)
        except ApiError as exc:
            raise ConfigError(f"failed to fetch token: {exc.message}") from None
        self.requests += 1
        lifetime = float((answered.get("spec") or {}).get("expirationSeconds") or seconds)
        token = _Token(str((answered.get("status") or {}).get("token") or "").encode(),
                       now + min(REFRESH_AT * lifetime, MAX_TTL))
        self._tokens[key] = token
        return token.token

    def due(self, uid: str) -> float:
        """When (trio time) the first of the pod's tokens must be refreshed; inf when it has none."""
        return min((t.refresh_at for k, t in self._tokens.items() if k[0] == uid), default=math.inf)

    def forget(self, uid: str) -> None:
        for key in [k for k in self._tokens if k[0] == uid]:
            del self._tokens[key]
