"""kube-controller-manager's token cleaner (pkg/controller/bootstrap/tokencleaner.go).

Owns: deleting bootstrap token Secrets (type `bootstrap.kubernetes.io/token` in kube-system) once
their `expiration` has passed (or is unparsable, which kube counts as expired); a Secret that
expires later is looked at again when it does. The delete carries the Secret's uid as a
precondition, so a token re-created under the same name meanwhile is left alone.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Conflict, NotFound
from orchestra.api.policy import bootstraptoken as bt
from orchestra.client.base import Client
from orchestra.controller import Controller, Result, split_key
from orchestra.controller.clock import Clock, wall_clock
from orchestra.objects import meta


class TokenCleaner(Controller):
    name = "token-cleaner"

    def __init__(self, client: Client, *, clock: Clock = wall_clock, **kwargs: Any) -> None:
        super().__init__(client, workers=1, **kwargs)
        self.clock = clock
        self.secrets = self.informer("Secret", field_selector=f"type={bt.SECRET_TYPE}")
        self.enqueue_on(self.secrets)

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        secret = self.secrets.get(namespace, name)
        if secret is None or namespace != bt.NAMESPACE:
            return None
        now = self.clock()
        if not bt.expired(secret, now):
            when = bt.expiration(secret)
            return Result(requeue_after=(when - now).total_seconds()) if when is not None else None
        try:
            await self.client.delete(self.secrets.rt, namespace, name, uid=meta(secret).get("uid"))
        except (NotFound, Conflict):
            pass  # gone already, or replaced by a new Secret of the same name: nothing to clean
        return None
