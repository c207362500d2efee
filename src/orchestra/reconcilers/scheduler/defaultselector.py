"""The default spreading selector of a pod (kube's scheduler helper.DefaultSelector).

Owns: the label selector the system default topology-spread constraints count pods with — the
selectors of the pod's namespace's Services that select it (merged as one label set), plus the
selector of the ReplicaSet or StatefulSet that controls it (its ownerReference with controller:
true). A pod that belongs to none of them gets the empty selector: it is not spread by default.
Reads the informers' caches only; parsed workload selectors are cached per object version.
Must not import: client, controller (it is given informer-like objects).
"""

from __future__ import annotations

from typing import Protocol

from orchestra.api.errors import ApiError
from orchestra.api.machinery.selectors import LabelSelector, Requirement, from_label_selector_object
from orchestra.objects import Obj, controller_ref, labels_match
from orchestra.reconcilers.scheduler.podinfo import PodInfo

OWNER_KINDS = {("apps/v1", "ReplicaSet"), ("apps/v1", "StatefulSet")}


class Cache(Protocol):
    def get(self, namespace: str | None, name: str) -> Obj | None: ...
    def list(self, namespace: str | None = None) -> list[Obj]: ...


class DefaultSelector:
    def __init__(self, services: Cache, replicasets: Cache, statefulsets: Cache) -> None:
        self.services = services
        self.owners = {"ReplicaSet": replicasets, "StatefulSet": statefulsets}
        self._parsed: dict[tuple[str, str], tuple[Requirement, ...]] = {}  # (uid, resourceVersion)

    def __call__(self, pod: PodInfo) -> LabelSelector:
        merged: dict[str, str] = {}
        for svc in self.services.list(pod.namespace):
            selector = (svc.get("spec") or {}).get("selector")
            if selector is None:  # a Service without a selector selects nothing
                continue
            if labels_match(selector, pod.labels):
                merged.update(selector)
        reqs = [Requirement(k, "=", frozenset([v])) for k, v in merged.items()]
        ref = controller_ref(pod.obj)
        if ref is not None and (ref.get("apiVersion"), ref.get("kind")) in OWNER_KINDS:
            owner = self.owners[str(ref["kind"])].get(pod.namespace, str(ref.get("name") or ""))
            if owner is not None:
                reqs.extend(self._requirements(owner))
        return LabelSelector(tuple(reqs))

    def _requirements(self, owner: Obj) -> tuple[Requirement, ...]:
        m = owner.get("metadata") or {}
        key = (str(m.get("uid") or ""), str(m.get("resourceVersion") or ""))
        reqs = self._parsed.get(key)
        if reqs is None:
            try:
                reqs = from_label_selector_object((owner.get("spec") or {}).get("selector")).requirements
            except ApiError:  # kube ignores a selector it cannot parse here
                reqs = ()
            if len(self._parsed) > 10_000:
                self._parsed.clear()
            self._parsed[key] = reqs
        return reqs
