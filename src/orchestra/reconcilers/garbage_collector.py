"""Garbage collector: the ownerReferences graph over every registered kind, and its three policies.

Owns (kube's garbagecollector, keyed by object uid):
  * Background — a dependent whose owners are all gone (uid absent, checked against the API when
    the cache does not know it) is deleted; dangling references next to a live owner are removed;
  * Foreground — an owner with the "foregroundDeletion" finalizer has its dependents deleted (in
    turn with Foreground when they have dependents of their own); once no dependent with
    blockOwnerDeletion remains, the finalizer is removed and the API core removes the owner;
  * Orphan — an owner with the "orphan" finalizer has its ownerReferences removed from every
    dependent, then the finalizer is removed.
It watches every kind except Events (kube ignores them too) through metadata-only caches —
custom kinds too: a CRD change makes it start a cache for each newly served custom kind and drop
the caches of kinds no longer served (owner references work between custom resources and built-in
objects in both directions).
Writes are merge patches that carry the resourceVersion read (a Conflict re-queues the uid).
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import trio

from orchestra.api.errors import NotFound
from orchestra.api.registry import ResourceType
from orchestra.client.base import Client
from orchestra.controller import Controller, CustomKindInformers, Informer, Result, registry_of
from orchestra.objects import Obj, meta, owner_uids

log = logging.getLogger("orchestra.reconcilers.gc")

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
IGNORED_KINDS = frozenset({"Event"})
_META_FIELDS = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "ownerReferences",
    "finalizers",
    "deletionTimestamp",
)


def metadata_only(obj: Obj) -> Obj:
    """The metadata view the graph needs (kube's GC uses metadata-only informers too)."""
    m = obj.get("metadata") or {}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
            "metadata": {k: m[k] for k in _META_FIELDS if k in m}}


def _uid_index(obj: Obj) -> list[str]:
    uid = meta(obj).get("uid")
    return [uid] if uid else []


class GarbageCollector(Controller):
    name = "garbage-collector-controller"

    def __init__(self, client: Client, *, workers: int = 2, **kwargs: Any) -> None:
        super().__init__(client, workers=workers, **kwargs)
        self.registry = registry_of(client)
        self.graph: dict[ResourceType, Informer] = {}
        self.custom = CustomKindInformers(self.registry, self._custom_informer,
                                          added=self.graph.__setitem__, removed=self._forget)
        for rt in self.registry.types:
            if (
                rt.custom is not None
                or rt.kind in IGNORED_KINDS
                or not {"list", "watch", "delete"} <= set(rt.verbs)
            ):
                continue
            inf = self.informer(
                rt, transform=metadata_only, indexers={"uid": _uid_index, "owner": owner_uids}
            )
            self.graph[rt] = inf
            self.enqueue_on(inf, self._keys)
            if rt.kind == "CustomResourceDefinition":
                inf.add_handler(self.custom.kinds_changed)

    # --- custom kinds ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(super().run)
            await nursery.start(self.custom.run)
            task_status.started()

    def _custom_informer(self, rt: ResourceType) -> Informer:
        inf = Informer(self.client, rt, transform=metadata_only,
                       indexers={"uid": _uid_index, "owner": owner_uids})
        inf.add_handler(self._enqueue_keys)
        return inf

    def _forget(self, rt: ResourceType, _inf: Informer) -> None:
        self.graph.pop(rt, None)

    def _enqueue_keys(self, event_type: str, old: Obj | None, new: Obj | None) -> None:
        for key in self._keys(event_type, old, new):
            self.queue.add(key)

    # --- graph queries -----------------------------------------------------------------------

    def find(self, uid: str) -> tuple[ResourceType, Obj] | None:
        for rt, inf in self.graph.items():
            found = inf.by_index("uid", uid)
            if found:
                return rt, found[0]
        return None

    def dependents(self, uid: str) -> list[tuple[ResourceType, Obj]]:
        return [(rt, obj) for rt, inf in self.graph.items() for obj in inf.by_index("owner", uid)]

    def _keys(self, event_type: str, old: Obj | None, new: Obj | None) -> Iterable[str]:
        """An object's own uid when there is something to do for it (it has owners, or is being
        deleted: as kube's graph builder, an object with neither is not queued); its dependents when
        it is deleted or starts deleting; its owners that are waiting on dependents (foreground) when
        it changes."""
        obj = new if new is not None else old
        assert obj is not None
        uid = meta(obj).get("uid")
        if not uid:
            return []
        keys = [uid] if new is not None and (meta(new).get("ownerReferences")
                                             or meta(new).get("deletionTimestamp")) else []
        if new is None or meta(new).get("deletionTimestamp"):
            keys.extend(meta(d).get("uid", "") for _, d in self.dependents(uid))
        refs = {r.get("uid") for o in (old, new) if o for r in meta(o).get("ownerReferences") or []}
        for ref_uid in refs:
            owner = self.find(ref_uid) if ref_uid else None
            if owner is not None and meta(owner[1]).get("deletionTimestamp"):
                keys.append(ref_uid)  # type: ignore[arg-type]
        return [k for k in keys if k]

    # --- reconcile ---------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        found = self.find(key)
        if found is None:
            return None
        rt, obj = found
        m = meta(obj)
        if m.get("deletionTimestamp"):
            finalizers = m.get("finalizers") or []
            if ORPHAN in finalizers:
                await self._orphan_dependents(rt, obj)
            elif FOREGROUND in finalizers:
                await self._delete_dependents(rt, obj)
            return None
        if m.get("ownerReferences"):
            await self._check_owners(rt, obj)
        return None

    async def _check_owners(self, rt: ResourceType, obj: Obj) -> None:
        """kube's attemptToDeleteItem: classify owners as solid, dangling or waiting (foreground)."""
        m = meta(obj)
        by_state: dict[str, list[Obj]] = {"solid": [], "dangling": [], "waiting": []}
        for ref in m.get("ownerReferences") or []:
            by_state[await self._owner_state(ref, m.get("namespace"))].append(ref)
        solid, dangling, waiting = by_state["solid"], by_state["dangling"], by_state["waiting"]
        if solid:
            if dangling or waiting:
                gone = {r["uid"] for r in dangling + waiting}
                await self._patch_refs(rt, obj, [r for r in m["ownerReferences"] if r.get("uid") not in gone])
            return
        if waiting and self.dependents(m["uid"]):
            policy = "Foreground"  # our own dependents must go first, then us, then the owner
        elif waiting:
            policy = "Background"
        else:
            finalizers = m.get("finalizers") or []
            policy = (
                "Orphan"
                if ORPHAN in finalizers
                else "Foreground"
                if FOREGROUND in finalizers
                else "Background"
            )
        log.info(
            "deleting %s %s/%s (owners gone or deleting), propagation %s",
            rt.kind,
            m.get("namespace", ""),
            m["name"],
            policy,
        )
        try:
            await self.client.delete(
                rt, m.get("namespace"), m["name"], propagation_policy=policy, uid=m["uid"]
            )
        except NotFound:
            pass  # already gone

    async def _owner_state(self, ref: Obj, namespace: str | None) -> str:
        found = self.find(ref.get("uid", ""))
        if found is not None:
            owner = found[1]
        else:
            # The cache may lag a just-created owner: ask the API before calling it absent.
            rt = self.registry.by_api_version_kind(
                str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
            )
            if rt is None:
                return "solid"  # a kind we cannot resolve cannot be verified: never delete for it
            try:
                owner = await self.client.get(
                    rt, namespace if rt.namespaced else None, str(ref.get("name") or "")
                )
            except NotFound:
                return "dangling"
            if meta(owner).get("uid") != ref.get("uid"):
                return "dangling"  # same name, new object: the owner we referenced is gone
        om = meta(owner)
        if om.get("deletionTimestamp") and FOREGROUND in (om.get("finalizers") or []):
            return "waiting"
        return "solid"

    async def _delete_dependents(self, rt: ResourceType, owner: Obj) -> None:
        """Foreground: queue every dependent (each deletes itself seeing a waiting owner); drop
        the finalizer once no dependent blocks the owner's deletion."""
        uid = meta(owner)["uid"]
        blocking = 0
        for _, dep in self.dependents(uid):
            if not meta(dep).get("deletionTimestamp"):
                self.queue.add(meta(dep)["uid"])
            if any(
                r.get("uid") == uid and r.get("blockOwnerDeletion")
                for r in meta(dep).get("ownerReferences") or []
            ):
                blocking += 1
        if blocking == 0:
            await self._remove_finalizer(rt, owner, FOREGROUND)

    async def _orphan_dependents(self, rt: ResourceType, owner: Obj) -> None:
        uid = meta(owner)["uid"]
        for dep_rt, dep in self.dependents(uid):
            dm = meta(dep)
            if dm.get("deletionTimestamp") and not dm.get("finalizers"):
                # Already on its way out (e.g. a pod in its grace period): its references no
                # longer matter, and any write would end its graceful termination early.
                continue
            refs = dm.get("ownerReferences") or []
            await self._patch_refs(dep_rt, dep, [r for r in refs if r.get("uid") != uid])
        await self._remove_finalizer(rt, owner, ORPHAN)

    # --- writes ------------------------------------------------------------------------------

    async def _patch_refs(self, rt: ResourceType, obj: Obj, refs: list[Obj]) -> None:
        m = meta(obj)
        patch = {"metadata": {"ownerReferences": refs or None, "resourceVersion": m["resourceVersion"]}}
        try:
            await self.client.patch(rt, m.get("namespace"), m["name"], patch)
        except NotFound:
            pass  # deleted meanwhile: nothing to orphan

    async def _remove_finalizer(self, rt: ResourceType, obj: Obj, finalizer: str) -> None:
        m = meta(obj)
        rest = [f for f in m.get("finalizers") or [] if f != finalizer]
        patch = {"metadata": {"finalizers": rest or None, "resourceVersion": m["resourceVersion"]}}
        try:
            await self.client.patch(rt, m.get("namespace"), m["name"], patch)
        except NotFound:
            pass  # already removed
