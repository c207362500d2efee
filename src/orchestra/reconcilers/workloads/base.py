"""WorkloadController: the Controller every workload controller derives from.

Owns: the injected clock, the Pod informer (own or shared), write expectations, the PodControl,
mapping pod events to their controller's key (and orphans to every owner whose selector matches,
so they get adopted), and the status write that only happens when the status changed.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestra.api.machinery.selectors import LabelSelector, from_label_selector_object
from orchestra.client.base import Client
from orchestra.controller import Controller, Informer, keys_of_object, object_key
from orchestra.controller.clock import Clock, wall_clock
from orchestra.objects import Obj, controller_ref, deep_copy, meta, namespace_of
from orchestra.reconcilers.workloads.common import Expectations, owner_keys
from orchestra.reconcilers.workloads.pods import PodControl

_ORPHAN = "orphan/"  # index value of a pod without a controller: orphan/<namespace>


def _controller_index(pod: Obj) -> list[str]:
    ref = controller_ref(pod)
    return [str(ref.get("uid") or "")] if ref is not None else [_ORPHAN + namespace_of(pod)]


class WorkloadController(Controller):
    kind = ""  # the owner kind (ReplicaSet, DaemonSet, ...)

    def __init__(self, client: Client, *, clock: Clock = wall_clock, pods: Informer | None = None,
                 workers: int = 1, **kwargs: Any) -> None:
        super().__init__(client, workers=workers, **kwargs)
        self.clock = clock
        self.expect = Expectations()
        self.owners = self.informer(self.kind)
        self.pods = (
            self.use_informer(pods)
            if pods is not None
            else self.informer("Pod", indexers={"controller": _controller_index})
        )
        if not self.pods.has_indexer("controller"):
            self.pods.add_indexer("controller", _controller_index)
        self.pod_control = PodControl(client, self.recorder, self.pods.rt)
        self.enqueue_on(self.owners, self.owner_keys)
        self.pods.add_handler(self.expect.observe)
        self.enqueue_on(self.pods, self.owners_of_pod, paced=True)

    def restarted(self) -> None:
        self.expect.clear()

    def owner_keys(self, event_type: str, old: Obj | None, new: Obj | None) -> Iterable[str]:
        """Keys for an owner event (default: its own key). Subclasses skip what cannot matter."""
        return keys_of_object(event_type, old, new)

    def owners_of_pod(self, event_type: str, old: Obj | None, new: Obj | None) -> Iterable[str]:
        keys: set[str] = set()
        for pod in (old, new):
            if pod is None:
                continue
            if controller_ref(pod) is not None:
                keys.update(owner_keys(pod, self.kind))
                continue
            labels = meta(pod).get("labels") or {}
            for owner in self.owners.by_index("namespace", namespace_of(pod)):
                sel = (owner.get("spec") or {}).get("selector")
                if sel and self.selector_of(owner).matches(labels):
                    keys.add(object_key(owner))
        return keys

    def selector_of(self, owner: Obj) -> LabelSelector:
        """The owner's pod selector (a metav1.LabelSelector; the ReplicationController's differs)."""
        return from_label_selector_object((owner.get("spec") or {}).get("selector"))

    def pods_of(self, owner: Obj) -> list[Obj]:
        """The pods `owner` may claim, from the cache: those it controls and the orphans of its
        namespace (kube lists the whole namespace; the rest belong to other controllers and claim
        skips them), without those this controller has just deleted."""
        m = meta(owner)
        pods = self.pods.by_index("controller", str(m.get("uid") or ""))
        pods += self.pods.by_index("controller", _ORPHAN + str(m.get("namespace") or ""))
        return [p for p in pods if not self.expect.hidden(p)]

    async def write_status(self, key: str, obj: Obj, new_status: Obj) -> Obj:
        """Write `new_status` through the status subresource when it differs (with the rv read)."""
        if (obj.get("status") or {}) == new_status:
            return obj
        out = deep_copy(obj)
        out["status"] = new_status
        written = await self.client.update_status(self.owners.rt, out)
        self.expect.wrote(key, self.owners, written)
        return written
