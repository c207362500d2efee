"""Legacy ServiceAccount token Secrets: kube-controller-manager's tokens controller.

Owns, for every Secret of type `kubernetes.io/service-account-token` (a user makes one with the
annotation `kubernetes.io/service-account.name`; since kube 1.24 none is made automatically):
  * while its ServiceAccount exists (with the uid the `kubernetes.io/service-account.uid`
    annotation names, when it names one): data.token (a non-expiring JWT, api/serviceaccount's
    legacy claims, signed with the cluster's key), data["ca.crt"] (the cluster CA) and
    data.namespace are filled in when missing (ca.crt also when it differs), and both annotations set;
  * once the ServiceAccount is gone (or replaced by one with another uid): the Secret is deleted,
    and with it the token, which the API server then refuses.
The Secret is re-read before it is written, and left to the next event when it changed meanwhile.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import base64
from typing import Any

from orchestra.api.errors import NotFound
from orchestra.api.serviceaccount import NAME_ANNOTATION, ROOT_CA_KEY, TOKEN_SECRET_TYPE, UID_ANNOTATION
from orchestra.api.serviceaccount.claims import legacy_claims
from orchestra.api.serviceaccount.tokens import TokenIssuer
from orchestra.client.base import Client
from orchestra.controller import Controller, Result, object_key, split_key
from orchestra.objects import Obj, deep_copy, meta

SA_INDEX = "service-account"


def _account_of(secret: Obj) -> list[str]:
    name = (meta(secret).get("annotations") or {}).get(NAME_ANNOTATION)
    return [f"{meta(secret).get('namespace')}/{name}"] if name else []


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


class TokensController(Controller):
    name = "serviceaccount-token-controller"

    def __init__(self, client: Client, issuer: TokenIssuer, ca_pem: str, **kwargs: Any) -> None:
        super().__init__(client, workers=1, **kwargs)
        self.issuer = issuer
        self.ca = _b64(ca_pem)
        self.accounts = self.informer("ServiceAccount")
        self.secrets = self.informer("Secret", field_selector=f"type={TOKEN_SECRET_TYPE}",
                                     indexers={SA_INDEX: _account_of})
        self.enqueue_on(self.secrets)
        self.enqueue_on(self.accounts, self._secrets_of_account)

    def _secrets_of_account(self, _t: str, old: Obj | None, new: Obj | None) -> list[str]:
        obj = new if new is not None else old
        return [object_key(s) for s in self.secrets.by_index(SA_INDEX, object_key(obj))] if obj else []

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        secret = self.secrets.get(namespace, name)
        if secret is None:
            return None
        sa = await self._account(secret)
        if sa is None:
            try:
                await self.client.delete(self.secrets.rt, namespace, name, uid=meta(secret).get("uid"))
            except NotFound:
                pass  # deleted meanwhile
            return None
        if not self._needs_update(secret):
            return None
        live = await self.client.get(self.secrets.rt, namespace, name)
        if meta(live).get("resourceVersion") != meta(secret).get("resourceVersion"):
            return None  # it changed: the informer brings the new version, and a new reconcile
        await self.client.update(self.secrets.rt, self._filled(sa, live))
        return None

    async def _account(self, secret: Obj) -> Obj | None:
        """The ServiceAccount the Secret names, if it exists with the uid the Secret expects."""
        annotations = meta(secret).get("annotations") or {}
        namespace, name = meta(secret).get("namespace"), annotations.get(NAME_ANNOTATION)
        if not name:
            return None
        sa = self.accounts.get(namespace, name)
        if sa is None:  # perhaps not in the cache yet: ask before deleting anything (fetchOnCacheMiss)
            try:
                sa = await self.client.get(self.accounts.rt, namespace, name)
            except NotFound:
                return None
        uid = annotations.get(UID_ANNOTATION)
        return None if uid and uid != meta(sa).get("uid") else sa

    def _needs_update(self, secret: Obj) -> bool:
        data = secret.get("data") or {}
        return not data.get("token") or not data.get("namespace") or data.get(ROOT_CA_KEY) != self.ca

    def _filled(self, sa: Obj, secret: Obj) -> Obj:
        updated = deep_copy(secret)
        data = updated.get("data") or {}
        data[ROOT_CA_KEY] = self.ca
        if not data.get("namespace"):
            data["namespace"] = _b64(str(meta(updated).get("namespace") or ""))
        if not data.get("token"):
            data["token"] = _b64(self.issuer.sign(legacy_claims(sa, updated)))
        updated["data"] = data
        annotations = meta(updated).setdefault("annotations", {})
        annotations[NAME_ANNOTATION] = meta(sa).get("name")
        annotations[UID_ANNOTATION] = meta(sa).get("uid")
        return updated
