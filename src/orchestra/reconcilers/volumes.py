"""PersistentVolumeClaim binding and the local-path provisioner (kube's persistentvolume-controller
plus k3s's local-path-provisioner, in one controller).

Owns, per claim (key `pvc/<ns>/<name>`):
  * static binding: an Available PV of the claim's class, volume mode and access modes, with enough
    capacity and labels matching the claim's selector (the smallest such volume; one pre-bound to the
    claim first) gets the claim in spec.claimRef; the claim gets spec.volumeName and
    pv.kubernetes.io/bind-completed / bound-by-controller; both become Bound (the claim's
    status.capacity and accessModes from the PV);
  * a claim naming its volume (spec.volumeName) binds only a free volume that fits it
    (checkVolumeSatisfyClaim; else VolumeMismatch, Pending) or one reserved for it; a volume whose
    claimRef names another claim is never taken (FailedBinding `volume "x" already bound to a
    different claim.`, Pending); a bound claim whose volume names another claim is Lost
    (ClaimMisbound); a claim without any class gets the default class (RetroactiveDefaultStorageClass);
  * dynamic provisioning for classes whose provisioner is `orchestra.io/local-path`: PV
    `pvc-<claim uid>` with hostPath `<volumes root>/<pv name>` (the directory made here),
    reclaimPolicy from the class, pv.kubernetes.io/provisioned-by; for WaitForFirstConsumer only once
    the scheduler put volume.kubernetes.io/selected-node on the claim, and then with a required node
    affinity for that node;
  * events like kube's: WaitForFirstConsumer, Provisioning, ProvisioningSucceeded, ProvisioningFailed,
    ExternalProvisioning, FailedBinding.
Per volume (key `pv/<name>`): Available when unclaimed; when its claim is gone (or has another uid)
Released, then Retain leaves it, Delete removes a provisioned volume's directory and the PV (a
static PV with Delete fails with VolumeFailedDelete: there is no deleter for it).
Not done: pv-protection / pvc-protection finalizers, volume expansion, Recycle, claims bound by the
scheduler to static PVs under WaitForFirstConsumer (they bind here once a node is selected).
Directory work (one mkdir, one rmtree of a volume) is small and local, so it runs inline like the node
agent's volume files: a thread would let a test's autojump clock leap while it runs.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

from orchestra.api.errors import AlreadyExists, NotFound
from orchestra.api.machinery.selectors import from_label_selector_object
from orchestra.api.policy.admission import default_storage_class
from orchestra.api.policy.storageclass import BETA_CLASS_ANNOTATION, claim_class
from orchestra.client.base import Client
from orchestra.controller import NORMAL, WARNING, Controller, Result, TemporaryError, object_key
from orchestra.objects import Obj, deep_copy, meta, now_rfc3339, spec
from orchestra.objects.quantity import parse_or_none

LOCAL_PATH_PROVISIONER = "orchestra.io/local-path"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
HOSTNAME_LABEL = "kubernetes.io/hostname"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"


def _phase(obj: Obj | None) -> str:
    return str(((obj or {}).get("status") or {}).get("phase") or "")


def _size(value: Any) -> Fraction:
    """A storage size to compare: an absent or malformed one counts as 0."""
    q = parse_or_none(value)
    return q.value if q is not None else Fraction(0)


def requested(pvc: Obj) -> Any:
    return ((spec(pvc).get("resources") or {}).get("requests") or {}).get("storage")


def is_bound_to_claim(pv: Obj, pvc: Obj) -> bool:
    """pvutil.IsVolumeBoundToClaim: the volume's claimRef names this claim (and its uid, once set)."""
    ref = spec(pv).get("claimRef") or {}
    m = meta(pvc)
    return (bool(ref) and ref.get("namespace") == m.get("namespace") and ref.get("name") == m.get("name")
            and ref.get("uid") in (None, "", m.get("uid")))


def _too_small(pv: Obj, pvc: Obj) -> bool:
    return _size((spec(pv).get("capacity") or {}).get("storage")) < _size(requested(pvc))


def _mode_differs(pv: Obj, pvc: Obj) -> bool:
    return (spec(pv).get("volumeMode") or "Filesystem") != (spec(pvc).get("volumeMode") or "Filesystem")


def _modes_fit(pv: Obj, pvc: Obj) -> bool:
    return set(spec(pvc).get("accessModes") or []) <= set(spec(pv).get("accessModes") or [])


def mismatch(pv: Obj, pvc: Obj) -> str:
    """checkVolumeSatisfyClaim: why the volume cannot serve the claim, "" when it can."""
    name = meta(pv).get("name")
    checks = (
        (bool(meta(pv).get("deletionTimestamp")), f'the volume is marked for deletion "{name}"'),
        (_too_small(pv, pvc), "requested PV is too small"),
        (claim_class(pv) != claim_class(pvc), "storageClassName does not match"),
        (_mode_differs(pv, pvc), "incompatible volumeMode"),
        (not _modes_fit(pv, pvc), "incompatible accessMode"),
    )
    return next((reason for failed, reason in checks if failed), "")


def volume_matches(pv: Obj, pvc: Obj) -> bool:
    """kube's findMatchingVolume for one volume: large enough, of the claim's volume mode and access
    modes, not being deleted; then either pre-bound to this claim (whatever its class), or available,
    of the claim's class, with labels matching the claim's selector."""
    if (meta(pv).get("deletionTimestamp") or _too_small(pv, pvc) or _mode_differs(pv, pvc)
            or not _modes_fit(pv, pvc)):
        return False
    if is_bound_to_claim(pv, pvc):
        return True
    if spec(pv).get("claimRef") or _phase(pv) not in ("Available", "Pending", ""):
        return False
    if claim_class(pv) != claim_class(pvc):
        return False
    return from_label_selector_object(spec(pvc).get("selector")).matches(meta(pv).get("labels") or {})


def _claim_ref(pvc: Obj) -> Obj:
    m = meta(pvc)
    return {"kind": "PersistentVolumeClaim", "namespace": m.get("namespace"), "name": m.get("name"),
            "uid": m.get("uid"), "apiVersion": "v1", "resourceVersion": m.get("resourceVersion")}


def _node_affinity(node: str) -> Obj:
    return {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]}]}}


class PersistentVolumeController(Controller):
    name = "persistentvolume-controller"

    def __init__(self, client: Client, *, volumes_root: Path | None = None, **kwargs: Any) -> None:
        super().__init__(client, workers=1, **kwargs)  # one worker: binding decisions never race
        self.volumes_root = volumes_root
        self.claims = self.informer("PersistentVolumeClaim")
        self.volumes = self.informer("PersistentVolume")
        self.classes = self.informer("StorageClass")
        self.enqueue_on(self.claims, self._claim_keys)
        self.enqueue_on(self.volumes, self._volume_keys)
        self.enqueue_on(self.classes, self._class_keys)

    # --- event -> key mappers ----------------------------------------------------------------------

    def _claim_keys(self, _t: str, old: Obj | None, new: Obj | None) -> list[str]:
        obj = new or old or {}
        keys = [f"pvc/{object_key(obj)}"]
        if spec(obj).get("volumeName"):
            keys.append(f"pv/{spec(obj)['volumeName']}")
        return keys

    def _volume_keys(self, _t: str, old: Obj | None, new: Obj | None) -> list[str]:
        obj = new or old or {}
        name = meta(obj).get("name")
        keys = [f"pv/{name}"]
        ref = spec(obj).get("claimRef")
        if ref:
            keys.append(f"pvc/{ref.get('namespace')}/{ref.get('name')}")
        elif new is not None and _phase(new) == "Available":  # a new volume may satisfy a waiting claim
            keys += [f"pvc/{object_key(c)}" for c in self.claims.list() if not spec(c).get("volumeName")]
        # claims naming this volume learn when it is taken, freed or re-pointed (no periodic resync here)
        keys += [f"pvc/{object_key(c)}" for c in self.claims.list() if spec(c).get("volumeName") == name]
        return keys

    def _class_keys(self, _t: str, old: Obj | None, new: Obj | None) -> list[str]:
        return [f"pvc/{object_key(c)}" for c in self.claims.list() if not spec(c).get("volumeName")]

    # --- reconcile ------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        kind, _, rest = key.partition("/")
        if kind == "pvc":
            ns, _, name = rest.partition("/")
            await self._sync_claim(ns, name)
        else:
            await self._sync_volume(rest)
        return None

    async def _sync_claim(self, ns: str, name: str) -> None:
        pvc = self.claims.get(ns, name)
        if pvc is None or meta(pvc).get("deletionTimestamp"):
            return
        volume_name = spec(pvc).get("volumeName")
        if BIND_COMPLETED in (meta(pvc).get("annotations") or {}):
            await self._sync_bound_claim(pvc, volume_name)
        elif volume_name:
            await self._sync_requested_volume(pvc, volume_name)
        else:
            await self._find_volume(pvc)

    async def _find_volume(self, pvc: Obj) -> None:
        """A claim that names no volume: the best match (a pre-bound one, else the smallest), the
        default class for a claim that has none, or provisioning."""
        candidates = [pv for pv in self.volumes.list() if volume_matches(pv, pvc)]
        if candidates:
            pv = min(candidates, key=lambda v: (not is_bound_to_claim(v, pvc),
                                                _size((spec(v).get("capacity") or {}).get("storage")),
                                                meta(v).get("name")))
            await self._bind(pvc, pv)
        elif not await self._assign_default_class(pvc):
            await self._provision_or_wait(pvc)

    async def _assign_default_class(self, pvc: Obj) -> bool:
        """RetroactiveDefaultStorageClass: a claim without any class gets today's default class."""
        if spec(pvc).get("storageClassName") is not None or BETA_CLASS_ANNOTATION in (
                meta(pvc).get("annotations") or {}):
            return False
        default = default_storage_class(self.classes.list())
        if default is None:
            return False
        pvc = deep_copy(pvc)
        pvc["spec"]["storageClassName"] = meta(default).get("name")
        await self.client.update(self.claims.rt, pvc)
        return True  # the claim's update event brings it back with its class

    async def _sync_requested_volume(self, pvc: Obj, volume_name: str) -> None:
        """syncUnboundClaim for a claim naming its volume: bind only a free volume that fits, or one
        already reserved for this claim; a volume bound to another claim is never taken."""
        pv = self.volumes.get(None, volume_name)
        if pv is None:
            await self._claim_status(pvc, {"phase": "Pending"})
            return
        if not spec(pv).get("claimRef"):
            reason = mismatch(pv, pvc)
            if reason:
                self.recorder.event(pvc, WARNING, "VolumeMismatch",
                                    f'Cannot bind to requested volume "{volume_name}": {reason}')
                await self._claim_status(pvc, {"phase": "Pending"})
                return
            await self._bind(pvc, pv)
        elif is_bound_to_claim(pv, pvc):
            await self._bind(pvc, pv)
        else:
            self.recorder.event(pvc, WARNING, "FailedBinding",
                                f'volume "{volume_name}" already bound to a different claim.')
            if BOUND_BY_CONTROLLER in (meta(pvc).get("annotations") or {}):
                ref = spec(pv)["claimRef"]
                raise TemporaryError(f'invalid binding of claim "{object_key(pvc)}" to volume '
                                     f'"{volume_name}": volume already claimed by '
                                     f'"{ref.get("namespace")}/{ref.get("name")}"')
            await self._claim_status(pvc, {"phase": "Pending"})

    async def _sync_bound_claim(self, pvc: Obj, volume_name: str | None) -> None:
        """syncBoundClaim: keep a bound claim bound, or mark it Lost (never re-point the volume)."""
        pv = self.volumes.get(None, volume_name) if volume_name else None
        if pv is None:
            message = ("Bound claim has lost its PersistentVolume. Data on the volume is lost!" if volume_name
                       else "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
            await self._claim_lost(pvc, "ClaimLost", message)
        elif not spec(pv).get("claimRef") or spec(pv)["claimRef"].get("uid") == meta(pvc).get("uid"):
            await self._bind(pvc, pv)
        else:
            await self._claim_lost(pvc, "ClaimMisbound",
                                   "Two claims are bound to the same volume, this one is bound incorrectly")

    async def _claim_lost(self, pvc: Obj, reason: str, message: str) -> None:
        if _phase(pvc) != "Lost":  # updateClaimStatusWithEvent: the event only when the phase changes
            await self._claim_status(pvc, {"phase": "Lost"})
            self.recorder.event(pvc, WARNING, reason, message)

    async def _provision_or_wait(self, pvc: Obj) -> None:
        class_name = claim_class(pvc)
        if not class_name:
            self.recorder.event(pvc, NORMAL, "FailedBinding",
                                "no persistent volumes available for this claim and no storage class is set")
            return
        sc = self.classes.get(None, class_name)
        if sc is None:
            self.recorder.event(pvc, WARNING, "ProvisioningFailed",
                                f'storageclass.storage.k8s.io "{class_name}" not found')
            return
        node = (meta(pvc).get("annotations") or {}).get(SELECTED_NODE)
        if sc.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER and not node:
            self.recorder.event(pvc, NORMAL, "WaitForFirstConsumer",
                                "waiting for first consumer to be created before binding")
            return
        provisioner = str(sc.get("provisioner") or "")
        pvc = await self._annotate_provisioner(pvc, provisioner)
        if provisioner != LOCAL_PATH_PROVISIONER or self.volumes_root is None:
            self.recorder.event(
                pvc,
                NORMAL,
                "ExternalProvisioning",
                f"Waiting for a volume to be created either by the external provisioner '{provisioner}' "
                "or manually by the system administrator. If volume creation is delayed, please verify "
                "that the provisioner is running and correctly registered.",
            )
            return
        await self._provision(pvc, sc, node)

    async def _annotate_provisioner(self, pvc: Obj, provisioner: str) -> Obj:
        annotations = meta(pvc).get("annotations") or {}
        if annotations.get(STORAGE_PROVISIONER) == provisioner:
            return pvc
        pvc = deep_copy(pvc)
        pvc["metadata"]["annotations"] = {**annotations, STORAGE_PROVISIONER: provisioner,
                                          BETA_STORAGE_PROVISIONER: provisioner}
        return await self.client.update(self.claims.rt, pvc)

    async def _provision(self, pvc: Obj, sc: Obj, node: str | None) -> None:
        assert self.volumes_root is not None
        m = meta(pvc)
        pv_name = f"pvc-{m['uid']}"
        path = self.volumes_root / pv_name
        self.recorder.event(
            pvc,
            NORMAL,
            "Provisioning",
            f'External provisioner is provisioning volume for claim "{m["namespace"]}/{m["name"]}"',
        )
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.recorder.event(pvc, WARNING, "ProvisioningFailed", f"failed to provision volume: {exc}")
            raise TemporaryError(str(exc)) from exc
        pv_spec: Obj = {
            "capacity": {"storage": requested(pvc)},
            "accessModes": list(spec(pvc).get("accessModes") or []),
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
            "storageClassName": meta(sc).get("name"),
            "volumeMode": spec(pvc).get("volumeMode") or "Filesystem",
            "claimRef": _claim_ref(pvc),
        }
        if node:
            pv_spec["nodeAffinity"] = _node_affinity(node)
        pv = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv_name, "annotations": {PROVISIONED_BY: LOCAL_PATH_PROVISIONER}},
            "spec": pv_spec,
        }
        try:
            created = await self.client.create(self.volumes.rt, None, pv)
        except AlreadyExists:
            return  # provisioned before; the volume's event brings this claim back
        self.recorder.event(pvc, NORMAL, "ProvisioningSucceeded",
                            f"Successfully provisioned volume {pv_name}")
        await self._bind(pvc, created)

    async def _bind(self, pvc: Obj, pv: Obj) -> None:
        """Both halves of the bind, each only if not done yet (kube's syncBoundClaim/bind)."""
        pv_name = meta(pv)["name"]
        if not spec(pv).get("claimRef") or spec(pv)["claimRef"].get("uid") != meta(pvc).get("uid"):
            pv = deep_copy(pv)
            pv["spec"]["claimRef"] = _claim_ref(pvc)
            pv["metadata"].setdefault("annotations", {})[BOUND_BY_CONTROLLER] = "yes"
            pv = await self.client.update(self.volumes.rt, pv)
        if _phase(pv) != "Bound":
            await self._volume_status(pv, "Bound")
        annotations = meta(pvc).get("annotations") or {}
        if spec(pvc).get("volumeName") != pv_name or annotations.get(BIND_COMPLETED) != "yes":
            pvc = deep_copy(pvc)
            pvc["spec"]["volumeName"] = pv_name
            pvc["metadata"]["annotations"] = {
                **annotations,
                BIND_COMPLETED: "yes",
                BOUND_BY_CONTROLLER: "yes",
            }
            pvc = await self.client.update(self.claims.rt, pvc)
        status = {"phase": "Bound", "accessModes": list(spec(pv).get("accessModes") or []),
                  "capacity": dict(spec(pv).get("capacity") or {})}
        if {k: (pvc.get("status") or {}).get(k) for k in status} != status:
            await self._claim_status(pvc, status)

    async def _claim_status(self, pvc: Obj, status: Obj) -> None:
        """updateClaimStatus: the phase, with the volume's capacity and access modes only when Bound."""
        current = pvc.get("status") or {}
        wanted = {**current, **status}
        if status.get("phase") != "Bound":
            wanted.pop("capacity", None)
            wanted.pop("accessModes", None)
        if wanted == current:
            return
        pvc = deep_copy(pvc)
        pvc["status"] = wanted
        await self.client.update_status(self.claims.rt, pvc)

    async def _volume_status(self, pv: Obj, phase: str, message: str = "", reason: str = "") -> Obj:
        pv = deep_copy(pv)
        pv["status"] = {"phase": phase, "lastPhaseTransitionTime": now_rfc3339(),
                        **({"message": message} if message else {}), **({"reason": reason} if reason else {})}
        return await self.client.update_status(self.volumes.rt, pv)

    # --- volumes ----------------------------------------------------------------------------------

    async def _sync_volume(self, name: str) -> None:
        pv = self.volumes.get(None, name)
        if pv is None:
            return  # a volume being deleted is still released and reclaimed: pv-protection waits for that
        ref = spec(pv).get("claimRef")
        if not ref:
            if _phase(pv) in ("", "Pending", "Released"):
                await self._volume_status(pv, "Available")
            return
        pvc = self.claims.get(ref.get("namespace"), str(ref.get("name") or ""))
        if pvc is not None and ref.get("uid") in (None, "", meta(pvc).get("uid")):
            return  # bound or being bound: the claim's sync owns that
        await self._reclaim(pv)

    async def _reclaim(self, pv: Obj) -> None:
        if _phase(pv) not in ("Released", "Failed"):
            pv = await self._volume_status(pv, "Released")
        policy = spec(pv).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy != "Delete" or _phase(pv) == "Failed":
            return  # Retain: the data and the PV stay until an administrator deals with them
        name = meta(pv)["name"]
        if (meta(pv).get("annotations") or {}).get(
            PROVISIONED_BY
        ) != LOCAL_PATH_PROVISIONER or self.volumes_root is None:
            message = (
                f'error getting deleter volume plugin for volume "{name}": no deletable volume plugin matched'
            )
            await self._volume_status(pv, "Failed", message)
            self.recorder.event(pv, WARNING, "VolumeFailedDelete", message)
            return
        await self._remove_directory(pv)
        try:
            await self.client.delete(self.volumes.rt, None, name)
        except NotFound:
            pass  # deleted already (an earlier attempt, or by hand)

    async def _remove_directory(self, pv: Obj) -> None:
        assert self.volumes_root is not None
        path = Path(str((spec(pv).get("hostPath") or {}).get("path") or ""))
        if path.parent != self.volumes_root:
            return  # never delete outside the provisioner's own root
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            pass  # already gone
        except OSError as exc:
            self.recorder.event(pv, WARNING, "VolumeFailedDelete", f"failed to delete {path}: {exc}")
            raise TemporaryError(str(exc)) from exc
