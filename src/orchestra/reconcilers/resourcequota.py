"""ResourceQuota status (kube-controller-manager's `resourcequota` controller).

Owns, for each ResourceQuota: status.hard (= spec.hard) and status.used, recalculated in full from
the objects of its namespace (api/policy/quota/usage.py: kube's CalculateUsage) and written
through the status subresource, only when it changed, with the resourceVersion of the quota read
just before the objects were listed — so a charge the API core made meanwhile (admission raises
status.used before it stores an object) makes the write a Conflict and the quota is recalculated,
never overwritten with a count that misses the new object.
When: a new quota and a change of spec.hard (kube's missing-usage queue), every RESYNC seconds
(kube's --resource-quota-sync-period, 5 minutes), and on the events that give usage back (kube's
replenishment): an object of a counted kind deleted, a pod turning terminal, a service changing
between ClusterIP, NodePort and LoadBalancer, a claim's allocated storage changing. Creations need
no recalculation: admission charged them.
Time: `clock()` (injected) for the terminating-pod rule of pod usage.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from orchestra.api.errors import NotFound
from orchestra.api.policy.quota.evaluators import IGNORED, counts_compute
from orchestra.api.policy.quota.usage import (
    cluster_evaluators,
    needed_resources,
    quota_status,
    status_changed,
)
from orchestra.client.base import Client
from orchestra.controller import Controller, Result, object_key, registry_of, split_key
from orchestra.controller.clock import Clock, wall_clock
from orchestra.objects import Obj, as_dict, namespace_of

RESYNC = 300.0


def _service_type(svc: Obj | None) -> str:
    """GetQuotaServiceType: only NodePort and LoadBalancer services count more than themselves."""
    kind = as_dict(as_dict(svc).get("spec")).get("type")
    return str(kind) if kind in ("NodePort", "LoadBalancer") else ""


def _allocated_storage(pvc: Obj | None) -> Any:
    return as_dict(as_dict(as_dict(pvc).get("status")).get("allocatedResources")).get("storage")


class ResourceQuotaController(Controller):
    name = "resourcequota-controller"

    def __init__(self, client: Client, *, clock: Clock = wall_clock, resync: float = RESYNC,
                 workers: int = 2, **kwargs: Any) -> None:
        super().__init__(client, workers=workers, **kwargs)
        self.clock = clock
        self.resync = resync
        registry = registry_of(client)
        self.kinds = {rt.group_resource: rt for rt in registry.types
                      if rt.namespaced and "list" in rt.verbs and rt.group_resource not in IGNORED}
        self.evaluators = cluster_evaluators(self.kinds)
        self.quotas = self.informer("ResourceQuota")
        self.enqueue_on(self.quotas, self._quota_keys)
        for group_resource, rt in self.kinds.items():
            if rt.kind != "ResourceQuota":
                self.enqueue_on(self.informer(rt), functools.partial(self._replenish, group_resource))

    def _namespace_quotas(self, namespace: str) -> list[str]:
        return [object_key(q) for q in self.quotas.by_index("namespace", namespace)]

    def _quota_keys(self, event_type: str, old: Obj | None, new: Obj | None) -> Iterable[str]:
        if new is None:  # a deleted quota gives back its `resourcequotas` count
            return self._namespace_quotas(namespace_of(old or {}))
        if old is None or as_dict(as_dict(old.get("spec")).get("hard")) != as_dict(
                as_dict(new.get("spec")).get("hard")):
            return [object_key(new)]
        return []

    def _replenish(self, group_resource: str, event_type: str, old: Obj | None,
                   new: Obj | None) -> Iterable[str]:
        if old is None:
            return []  # a creation was charged by admission
        if new is not None and not self._gives_back(group_resource, old, new):
            return []
        return self._namespace_quotas(namespace_of(old))

    def _gives_back(self, group_resource: str, old: Obj, new: Obj) -> bool:
        """kube's replenishment update filters."""
        if group_resource == "pods":
            now = self.clock()
            return counts_compute(old, now) and not counts_compute(new, now)
        if group_resource == "services":
            return _service_type(old) != _service_type(new)
        if group_resource == "persistentvolumeclaims":
            return bool(_allocated_storage(old) != _allocated_storage(new))
        return False

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        if self.quotas.get(namespace, name) is None:
            return None
        try:
            quota = await self.client.get(self.quotas.rt, namespace, name)  # newer than the cache
        except NotFound:
            return None
        objects = {}
        for group_resource in needed_resources(quota, self.evaluators):
            objects[group_resource], _ = await self.client.list(self.kinds[group_resource], namespace)
        status = quota_status(quota, self.evaluators, objects, self.clock())
        if status_changed(quota, status):
            await self.client.update_status(self.quotas.rt, {**quota, "status": status})
        return Result(requeue_after=self.resync)
