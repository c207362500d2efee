"""The furniture of every namespace: kube-controller-manager's serviceaccount controller and
root-ca-cert-publisher.

Owns, keyed by namespace, for every namespace that is not being deleted:
  * `ServiceAccountsController`: the `default` ServiceAccount exists (re-created when deleted), so
    pods — which the ServiceAccount admission plugin gives `default` — can be created there;
  * `RootCAPublisher`: the `kube-root-ca.crt` ConfigMap holds exactly the cluster CA under `ca.crt`
    with kube's description annotation (re-created when deleted, put back when edited), so pods can
    check the API server's certificate (the `kube-api-access-*` volume projects it).
A namespace being deleted is left alone (its content is going); a create that races the deletion
is not retried, as in kube.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import AlreadyExists, Forbidden, NotFound
from orchestra.api.policy.serviceaccount import default_service_account, root_ca_config_map
from orchestra.api.serviceaccount import DEFAULT_NAME, ROOT_CA_CONFIGMAP, ROOT_CA_DESCRIPTION
from orchestra.client.base import Client
from orchestra.controller import Controller, Result
from orchestra.objects import Obj, deep_copy, is_terminating, meta


def _namespace_key(_t: str, old: Obj | None, new: Obj | None) -> list[str]:
    obj = new if new is not None else old
    return [str(meta(obj).get("namespace") or "")] if obj is not None else []


def _own_key(_t: str, _old: Obj | None, new: Obj | None) -> list[str]:
    return [str(meta(new).get("name") or "")] if new is not None and not is_terminating(new) else []


async def _create(client: Client, rt: Any, namespace: str, obj: Obj) -> None:
    try:
        await client.create(rt, namespace, obj)
    except AlreadyExists:
        pass  # made meanwhile (by the app's bootstrap, or an earlier run)
    except (NotFound, Forbidden):
        pass  # the namespace went, or is being deleted: nothing to furnish (kube does not retry either)


class ServiceAccountsController(Controller):
    name = "serviceaccount-controller"

    def __init__(self, client: Client, **kwargs: Any) -> None:
        super().__init__(client, workers=1, **kwargs)
        self.namespaces = self.informer("Namespace")
        self.accounts = self.informer("ServiceAccount")
        self.enqueue_on(self.namespaces, _own_key)
        self.enqueue_on(self.accounts, lambda t, old, new: _namespace_key(t, old, new) if new is None else [])

    async def reconcile(self, key: str) -> Result | None:
        ns = self.namespaces.get(None, key)
        if ns is None or is_terminating(ns) or self.accounts.get(key, DEFAULT_NAME) is not None:
            return None
        await _create(self.client, self.accounts.rt, key, default_service_account(key))
        return None


class RootCAPublisher(Controller):
    name = "root-ca-cert-publisher"

    def __init__(self, client: Client, ca_pem: str, **kwargs: Any) -> None:
        super().__init__(client, workers=1, **kwargs)
        self.ca_pem = ca_pem
        self.namespaces = self.informer("Namespace")
        self.config_maps = self.informer("ConfigMap", field_selector=f"metadata.name={ROOT_CA_CONFIGMAP}")
        self.enqueue_on(self.namespaces, _own_key)
        self.enqueue_on(self.config_maps, _namespace_key)

    async def reconcile(self, key: str) -> Result | None:
        ns = self.namespaces.get(None, key)
        if ns is None or is_terminating(ns):
            return None
        wanted = root_ca_config_map(key, self.ca_pem)
        current = self.config_maps.get(key, ROOT_CA_CONFIGMAP)
        if current is None:
            await _create(self.client, self.config_maps.rt, key, wanted)
            return None
        annotations = meta(current).get("annotations") or {}
        description = "kubernetes.io/description"
        if current.get("data") == wanted["data"] and annotations.get(description):
            return None
        updated = deep_copy(current)
        updated["data"] = wanted["data"]
        updated.pop("binaryData", None)
        meta(updated).setdefault("annotations", {})[description] = ROOT_CA_DESCRIPTION
        await self.client.update(self.config_maps.rt, updated)  # a Conflict re-queues with the fresh object
        return None
