"""Deletion in the API core: preconditions, propagation policy, graceful deletion, finalizers.

Owns: `DeleteOptions`, `DeletionMixin.delete` (uid / resourceVersion preconditions; Background,
Foreground (foregroundDeletion finalizer) and Orphan (orphan finalizer) propagation; a pod bound to
a node is marked with deletionTimestamp and its grace period and left for the node agent to finish;
objects with finalizers stay until they are removed; namespaces always go through the namespace
controller) and `finalizers_pending`. Mixed into ApiCore; uses its store and reads.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from orchestra.api import conversion
from orchestra.api.errors import BadRequest, Conflict, conflict
from orchestra.api.policy import admission
from orchestra.api.policy.crd import strategy as crd_strategy
from orchestra.api.registry import CRD, ResourceType
from orchestra.api.request.stored import Codec, meta, parse_rv, with_rv
from orchestra.objects import Obj, deep_copy, now_rfc3339
from orchestra.store import CompareFailed, KeyValue

if TYPE_CHECKING:
    from orchestra.store import Store

MAX_RETRIES = 100  # (as core.py's: kube retries a conflict for as long as it takes)
DELETE_OPTIONS = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"


@attrs.define
class DeleteOptions:
    propagation_policy: str | None = None  # Background | Foreground | Orphan
    grace_period_seconds: int | None = None
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False


def delete_options(body: dict[str, Any], *, propagation_policy: str | None = None,
                   grace_period_seconds: int | None = None, dry_run: str | None = None) -> DeleteOptions:
    """DeleteOptions from a body whose JSON types were checked against DELETE_OPTIONS (see
    typemeta.check_body_types); the query's values fill in what the body leaves out."""
    pre = body.get("preconditions") or {}
    dry = body.get("dryRun") or ([dry_run] if dry_run else [])
    grace = body.get("gracePeriodSeconds")
    policy = body.get("propagationPolicy") or ("Orphan" if body.get("orphanDependents") is True else None)
    return DeleteOptions(
        propagation_policy=policy or propagation_policy,
        grace_period_seconds=grace if grace is not None else grace_period_seconds,
        uid=pre.get("uid"),
        resource_version=pre.get("resourceVersion"),
        dry_run="All" in dry,
    )


class DeletionMixin:
    store: Store
    codec: Codec

    if TYPE_CHECKING:  # provided by ApiCore
        def _get_kv(self, rt: ResourceType, namespace: str | None, name: str) -> KeyValue: ...
        def _load(self, kv: KeyValue) -> Obj: ...
        def _presented(self, rt: ResourceType, obj: Obj) -> Obj: ...
        def _stored(self, rt: ResourceType, obj: Obj) -> Obj: ...
        def _written(self, rt: ResourceType, obj: Obj | None, name: str) -> None: ...

    async def delete(
        self, rt: ResourceType, namespace: str | None, name: str, opts: DeleteOptions | None = None
    ) -> tuple[Obj, bool]:
        """Delete; returns (object, gone): gone=False when the object lives on (finalizers, grace).
        The object is at `rt`'s version (api/conversion/)."""
        obj, gone = await self._delete_stored(rt, namespace, name, opts or DeleteOptions())
        return conversion.served(rt, obj), gone

    async def _delete_stored(
        self, rt: ResourceType, namespace: str | None, name: str, opts: DeleteOptions
    ) -> tuple[Obj, bool]:
        admission.admit_delete(rt.kind, name)
        if opts.propagation_policy not in (None, "Background", "Foreground", "Orphan"):
            raise BadRequest(
                f"propagationPolicy must be Background, Foreground or Orphan, got {opts.propagation_policy!r}"
            )
        for _ in range(MAX_RETRIES):
            kv = self._get_kv(rt, namespace, name)
            obj = self._load(kv)
            if rt.custom is not None:  # a custom resource's rules read it at the version asked for
                obj = self._presented(rt, obj)
            m = meta(obj)
            if opts.uid and opts.uid != m.get("uid"):
                raise Conflict(
                    f'Operation cannot be fulfilled on {rt.group_resource} "{name}": Precondition failed: '
                    f"UID in precondition: {opts.uid}, UID in object meta: {m.get('uid')}",
                    name=name,
                    group=rt.group,
                    kind=rt.plural,
                )
            if opts.resource_version and parse_rv(opts.resource_version) != kv.mod_revision:
                raise conflict(rt.group_resource, name, group=rt.group, plural=rt.plural)
            finalizers = list(m.get("finalizers") or [])
            policy = opts.propagation_policy or self._default_policy(rt)
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            elif policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            crd = rt.kind == CRD.kind and rt.group == CRD.group and not m.get("deletionTimestamp")
            if crd and crd_strategy.CLEANUP not in finalizers:
                finalizers.append(crd_strategy.CLEANUP)  # the CRD controller removes its instances first
            grace = self._grace(rt, obj, opts)
            if not finalizers and grace == 0:
                if opts.dry_run:
                    return obj, True
                try:
                    return await self._remove(rt, kv, obj), True
                except Conflict:
                    continue  # written meanwhile: read it again (a pinned resourceVersion then fails)
            if m.get("deletionTimestamp") and finalizers == list(m.get("finalizers") or []) and grace != 0:
                return obj, False  # already terminating
            new = deep_copy(obj)
            nm = meta(new)
            nm.pop("resourceVersion", None)
            nm.setdefault("deletionTimestamp", now_rfc3339())
            nm["deletionGracePeriodSeconds"] = max(grace, 0)
            if finalizers:
                nm["finalizers"] = finalizers
            if rt.kind == "Namespace":
                new.setdefault("status", {})["phase"] = "Terminating"
            if crd:
                crd_strategy.mark_deleting(new)
            if opts.dry_run:
                return new, False
            try:
                value = self.codec.encode(kv.key, self._stored(rt, new))
                nkv = await self.store.aput(kv.key, value, expect_mod_revision=kv.mod_revision)
            except CompareFailed:
                continue
            self._written(rt, new, name)
            await self.store.wait_durable(nkv.mod_revision)
            return with_rv(new, nkv), False
        raise conflict(rt.group_resource, name, group=rt.group, plural=rt.plural)

    def _default_policy(self, rt: ResourceType) -> str:
        return "Background"

    def _grace(self, rt: ResourceType, obj: Obj, opts: DeleteOptions) -> int:
        """Graceful deletion applies to pods bound to a node: the node agent finishes the delete."""
        if rt.kind == "Namespace":
            return -1  # namespaces always go through the namespace controller (spec.finalizers)
        if rt.kind != "Pod" or not (obj.get("spec") or {}).get("nodeName"):
            return 0
        if (obj.get("status") or {}).get("phase") in (
            "Succeeded",
            "Failed",
        ) and opts.grace_period_seconds is None:
            return 0
        if opts.grace_period_seconds is not None:
            return max(0, opts.grace_period_seconds)
        return int((obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30))

    async def _remove(self, rt: ResourceType, kv: KeyValue, obj: Obj) -> Obj:
        try:
            prev = await self.store.adelete(kv.key, expect_mod_revision=kv.mod_revision)
        except CompareFailed:
            raise conflict(
                rt.group_resource, meta(obj).get("name", ""), group=rt.group, plural=rt.plural
            ) from None
        rev = self.store.revision
        self._written(rt, None, meta(obj).get("name", ""))
        await self.store.wait_durable(rev)
        out = self.codec.decode(prev) if prev else obj
        if prev and rt.custom is not None:  # a custom resource answers at the version asked for
            out = self._presented(rt, out)
        meta(out)["resourceVersion"] = str(rev)
        return out



def finalizers_pending(rt: ResourceType, obj: Obj) -> bool:
    """Whether a terminating object must stay: metadata finalizers, or a namespace's spec.finalizers."""
    if (obj.get("metadata") or {}).get("finalizers"):
        return True
    return rt.kind == "Namespace" and bool((obj.get("spec") or {}).get("finalizers"))
