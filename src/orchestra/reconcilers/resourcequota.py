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
Custom kinds count too (`count/<plural>.<group>`, kube's object count evaluator for every resource
its quota monitor discovers): the kinds and evaluators are re-read from the registry when it
changes, each served namespaced custom kind gets a replenishment informer while it is served
(controller/customkinds.py), and a quota whose spec.hard counts a kind that has just become served
is recalculated at once (kube waits for the quota's next event or resync).
Time: `clock()` (injected) for the terminating-pod rule of pod usage.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import trio

from orchestra.api.errors import NotFound
from orchestra.api.policy.quota.evaluators import IGNORED, Evaluator, counts_compute, object_count_name
from orchestra.api.policy.quota.usage import (
    cluster_evaluators,
    needed_resources,
    quota_status,
    status_changed,
)
from orchestra.api.registry import ResourceType
from orchestra.client.base import Client
from orchestra.controller import (
    Controller,
    CustomKindInformers,
    Informer,
    Result,
    object_key,
    registry_of,
    split_key,
)
from orchestra.controller.clock import Clock, wall_clock
from orchestra.objects import Obj, as_dict, namespace_of

RESYNC = 300.0


def _service_type(svc: Obj | None) -> str:
    """GetQuotaServiceType: only NodePort and LoadBalancer services count more than themselves."""
    kind = as_dict(as_dict(svc).get("spec")).get("type")
    return str(kind) if kind in ("NodePort", "LoadBalancer") else ""


def _allocated_storage(pvc: Obj | None) -> Any:
    return as_dict(as_dict(as_dict(pvc).get("status")).get("allocatedResources")).get("storage")


def _quotable(rt: ResourceType) -> bool:
    return rt.namespaced and "list" in rt.verbs and rt.group_resource not in IGNORED


def _metadata(obj: Obj) -> Obj:
    """What the cache of a custom kind keeps: replenishment reads a deleted object's namespace only."""
    m = as_dict(obj.get("metadata"))
    kept = {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion") if k in m}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": kept}


class ResourceQuotaController(Controller):
    name = "resourcequota-controller"

    def __init__(self, client: Client, *, clock: Clock = wall_clock, resync: float = RESYNC,
                 workers: int = 2, **kwargs: Any) -> None:
        super().__init__(client, workers=workers, **kwargs)
        self.clock = clock
        self.resync = resync
        self.registry = registry_of(client)
        self._generation = -1
        self.kinds: dict[str, ResourceType] = {}
        self.evaluators: list[Evaluator] = []
        self._current_kinds()
        self.quotas = self.informer("ResourceQuota")
        self.enqueue_on(self.quotas, self._quota_keys)
        for group_resource, rt in self.kinds.items():
            if rt.custom is None and rt.kind != "ResourceQuota":
                self.enqueue_on(self.informer(rt), functools.partial(self._replenish, group_resource))
        self.custom = CustomKindInformers(self.registry, self._custom_informer, wanted=_quotable,
                                          added=self._kind_added)
        if self.registry.by_kind("CustomResourceDefinition") is not None:
            self.informer("CustomResourceDefinition").add_handler(self.custom.kinds_changed)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(super().run)
            await nursery.start(self.custom.run)
            task_status.started()

    def _current_kinds(self) -> dict[str, ResourceType]:
        """The namespaced kinds served now and their evaluators (custom kinds come and go)."""
        if self._generation != self.registry.generation:
            self._generation = self.registry.generation
            self.kinds = {rt.group_resource: rt for rt in self.registry.types if _quotable(rt)}
            self.evaluators = cluster_evaluators(self.kinds)
        return self.kinds

    def _custom_informer(self, rt: ResourceType) -> Informer:
        inf = Informer(self.client, rt, transform=_metadata)
        replenish = functools.partial(self._replenish, rt.group_resource)
        inf.add_handler(lambda *event: self._enqueue(replenish(*event)))
        return inf

    def _kind_added(self, rt: ResourceType, _inf: Informer) -> None:
        counted = object_count_name(rt.group_resource)
        self._enqueue(object_key(q) for q in self.quotas.list()
                      if counted in as_dict(as_dict(q.get("spec")).get("hard")))

    def _enqueue(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.queue.add(key)

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
        kinds = self._current_kinds()
        objects = {}
        for group_resource in needed_resources(quota, self.evaluators):
            objects[group_resource], _ = await self.client.list(kinds[group_resource], namespace)
        status = quota_status(quota, self.evaluators, objects, self.clock())
        if status_changed(quota, status):
            await self.client.update_status(self.quotas.rt, {**quota, "status": status})
        return Result(requeue_after=self.resync)
