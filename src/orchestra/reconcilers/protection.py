"""Storage object in-use protection (kube-controller-manager's pvc-protection and pv-protection).

Owns the two finalizers the StorageObjectInUseProtection admission (api/policy/admission.py) puts on every
new claim and volume:
  * `kubernetes.io/pvc-protection` on a PersistentVolumeClaim is removed once the claim is being
    deleted and no pod of its namespace uses it — as in kube, a pod uses a claim when a volume names
    it (`persistentVolumeClaim.claimName`) and the pod is bound to a node, until the pod object is
    gone or deleted with grace period 0 (a finished pod still holds its claims: delete it first);
    until then `kubectl delete pvc` leaves the claim Terminating and its volume bound, so data a
    running pod writes is never reclaimed under it;
  * `kubernetes.io/pv-protection` on a PersistentVolume is removed once the volume is being deleted
    and is not Bound to a claim.
Like kube, claims and volumes that lack their finalizer and are not being deleted (made before the
admission existed) get it added. A pod that may have let go of its claims (deleted, finished, or
not bound) re-checks the claims it names.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from orchestra.api.policy.admission import PV_PROTECTION, PVC_PROTECTION
from orchestra.client.base import Client
from orchestra.controller import Controller, Informer, Result, object_key
from orchestra.objects import Obj, deep_copy, meta

FINISHED = ("Succeeded", "Failed")
CLAIM_INDEX = "claims-named"


def claims_of(pod: Obj) -> list[str]:
    """`namespace/claim` for every claim the pod's volumes name."""
    ns = meta(pod).get("namespace") or ""
    return sorted({f"{ns}/{claim}" for v in ((pod.get("spec") or {}).get("volumes") or [])
                   if (claim := (v.get("persistentVolumeClaim") or {}).get("claimName"))})


def _uses(pod: Obj) -> bool:
    """kube's podUsesPVC: a pod holds its claims once bound to a node, until it is gone or shut down
    (deleted with grace period 0: the kubelet is done with it, or it was force-deleted)."""
    m = meta(pod)
    shut_down = bool(m.get("deletionTimestamp")) and m.get("deletionGracePeriodSeconds") == 0
    return bool((pod.get("spec") or {}).get("nodeName")) and not shut_down


def _may_release(pod: Obj) -> bool:
    """kube's enqueuePVCs filter: only these pod events can let a claim go."""
    return str((pod.get("status") or {}).get("phase") or "") in FINISHED or not _uses(pod)


class StorageProtectionController(Controller):
    name = "storage-protection-controller"

    def __init__(self, client: Client, **kwargs: Any) -> None:
        super().__init__(client, workers=1, **kwargs)
        self.claims = self.informer("PersistentVolumeClaim")
        self.volumes = self.informer("PersistentVolume")
        self.pods = self.informer("Pod", indexers={CLAIM_INDEX: claims_of})
        self.enqueue_on(self.claims, lambda _t, old, new: [f"pvc/{object_key(new or old or {})}"])
        self.enqueue_on(self.volumes, lambda _t, old, new: [f"pv/{meta(new or old).get('name')}"])
        self.enqueue_on(self.pods, self._pod_keys)

    def _pod_keys(self, _t: str, old: Obj | None, new: Obj | None) -> list[str]:
        if new is not None and not _may_release(new):
            return []
        return [f"pvc/{key}" for key in claims_of(new or old or {})]

    async def reconcile(self, key: str) -> Result | None:
        kind, _, rest = key.partition("/")
        if kind == "pvc":
            ns, _, name = rest.partition("/")
            pvc = self.claims.get(ns, name)
            if pvc is not None:
                await self._sync(self.claims, pvc, PVC_PROTECTION, self._claim_in_use)
        else:
            pv = self.volumes.get(None, rest)
            if pv is not None:
                await self._sync(self.volumes, pv, PV_PROTECTION, self._volume_in_use)
        return None

    async def _claim_in_use(self, pvc: Obj) -> bool:
        key = object_key(pvc)
        if any(_uses(pod) for pod in self.pods.by_index(CLAIM_INDEX, key)):
            return True
        # like kube, ask the API server before letting go: a pod created a moment ago may not be
        # in the cache yet
        pods, _ = await self.client.list(self.pods.rt, meta(pvc).get("namespace"))
        return any(_uses(pod) and key in claims_of(pod) for pod in pods)

    async def _volume_in_use(self, pv: Obj) -> bool:
        return (pv.get("status") or {}).get("phase") == "Bound"

    async def _sync(self, informer: Informer, obj: Obj, finalizer: str,
                    in_use: Callable[[Obj], Awaitable[bool]]) -> None:
        finalizers = list(meta(obj).get("finalizers") or [])
        deleting = bool(meta(obj).get("deletionTimestamp"))
        if not deleting and finalizer not in finalizers:
            finalizers.append(finalizer)
        elif deleting and finalizer in finalizers and not await in_use(obj):
            finalizers.remove(finalizer)
        else:
            return
        updated = deep_copy(obj)
        updated["metadata"]["finalizers"] = finalizers
        await self.client.update(
            informer.rt, updated
        )  # a Conflict re-queues the key; the cache has the newer object
