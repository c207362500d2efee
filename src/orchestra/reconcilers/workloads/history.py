"""ControllerRevisions for DaemonSets and StatefulSets (kube's pkg/controller/history).

Owns, for one owner kind:
  * the ControllerRevision informer (indexed by controller uid) and waking the owner when one of
    its revisions changes;
  * `sync(owner, hash)`: the revision for the owner's current template — `<owner>-<hash>`, data
    `{"spec": {"template": {..., "$patch": "replace"}}}` (what `kubectl rollout undo` patches back),
    labels = the template's labels plus controller-revision-hash, the owner's annotations (so
    `kubectl rollout history` shows kubernetes.io/change-cause), a controller ownerReference, and
    `revision` one above the highest; a template that returns to an earlier revision's (an undo)
    re-numbers that revision instead of making a new one;
  * `prune(owner, in_use)`: the oldest revisions beyond revisionHistoryLimit that no live pod uses
    and that are not current are deleted;
  * `template_of(revision)`: the pod template a revision holds (a StatefulSet recreates a pod below
    its partition from the current revision, not the update one).
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestra.api.errors import AlreadyExists, Conflict, NotFound
from orchestra.objects import Obj, controller_ref, deep_copy, meta, new_controller_ref, spec
from orchestra.reconcilers.workloads.common import owner_keys

if TYPE_CHECKING:
    from orchestra.reconcilers.workloads.base import WorkloadController

REVISION_LABEL = "controller-revision-hash"
DEFAULT_HISTORY_LIMIT = 10


def _controller_uid(rev: Obj) -> list[str]:
    ref = controller_ref(rev)
    return [str(ref.get("uid") or "")] if ref is not None else []


def revision_number(rev: Obj) -> int:
    return int(rev.get("revision") or 0)


def template_of(rev: Obj) -> Obj:
    template = deep_copy(((rev.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def _data(owner: Obj) -> Obj:
    template = deep_copy(spec(owner).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


class RevisionHistory:
    def __init__(self, controller: WorkloadController) -> None:
        self.controller = controller
        self.kind = controller.kind
        self.revisions = controller.informer("ControllerRevision", indexers={"controller": _controller_uid})
        controller.enqueue_on(
            self.revisions, lambda _t, old, new: {*owner_keys(old, self.kind), *owner_keys(new, self.kind)}
        )

    def of(self, owner: Obj) -> list[Obj]:
        """The owner's revisions, oldest first."""
        revs = self.revisions.by_index("controller", str(meta(owner).get("uid") or ""))
        return sorted(revs, key=lambda r: (revision_number(r), meta(r).get("name") or ""))

    async def sync(self, owner: Obj, hash_: str) -> Obj:
        """The revision holding the owner's current template, created or re-numbered as needed."""
        m = meta(owner)
        name = f"{m['name']}-{hash_}"
        revs = self.of(owner)
        top = max((revision_number(r) for r in revs), default=0)
        data = _data(owner)
        rt = self.revisions.rt
        for rev in revs:
            if meta(rev).get("name") == name:
                if revision_number(rev) == top:
                    return rev
                updated = {**deep_copy(rev), "revision": top + 1}
                try:
                    return await self.controller.client.update(rt, updated)
                except (Conflict, NotFound):
                    return rev  # the informer is behind; the next sync sees the change
        labels = {
            **((spec(owner).get("template") or {}).get("metadata") or {}).get("labels", {}),
            REVISION_LABEL: hash_,
        }
        body: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": name, "namespace": m.get("namespace"), "labels": labels,
                         "ownerReferences": [new_controller_ref(owner)]},
            "data": data, "revision": top + 1,
        }
        if m.get("annotations"):
            body["metadata"]["annotations"] = dict(m["annotations"])
        try:
            return await self.controller.client.create(rt, m.get("namespace"), body)
        except AlreadyExists:  # created by an earlier sync the informer has not shown yet
            return await self.controller.client.get(rt, m.get("namespace"), name)

    async def prune(self, owner: Obj, in_use: set[str]) -> None:
        """Delete the oldest revisions beyond spec.revisionHistoryLimit that are not in use (names in
        `in_use`: the current and update revisions and those of live pods)."""
        limit = spec(owner).get("revisionHistoryLimit")
        limit = DEFAULT_HISTORY_LIMIT if limit is None else int(limit)
        old = [r for r in self.of(owner) if meta(r).get("name") not in in_use]
        for rev in old[:max(len(old) - limit, 0)]:
            try:
                await self.controller.client.delete(
                    self.revisions.rt, meta(rev).get("namespace"), meta(rev)["name"]
                )
            except NotFound:
                pass
