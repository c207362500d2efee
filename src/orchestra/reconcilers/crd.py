"""CustomResourceDefinition controllers: kube's naming, establishing and finalizer controllers in one.

Owns, per CRD (key: its name):
  * naming — status.acceptedNames from spec.names unless another CRD of the group (or a built-in
    resource of that group) holds a name already: NamesAccepted False with kube's reason
    (PluralConflict, SingularConflict, ShortNamesConflict, KindConflict, ListKindConflict) and
    message (`"widgets" is already in use`), else True NoConflicts; Established False Installing
    until established;
  * establishing — NamesAccepted True makes Established True (InitialNamesAccepted); the API core
    then serves the kind (api/request/customkinds.py keeps the registry in step with stored CRDs);
  * finalizer — a CRD being deleted (the core adds `customresourcecleanup.apiextensions.k8s.io` and
    Terminating True) has every custom resource of it deleted (InstanceDeletionInProgress), is
    re-checked until none is left, then Terminating False InstanceDeletionCompleted and the
    finalizer goes; the core then removes the CRD.
A CRD whose names change re-queues the others of its group (a released name may unblock them).
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import logging
from typing import Any

from orchestra.api.errors import Conflict, NotFound
from orchestra.api.policy.crd.strategy import CLEANUP
from orchestra.api.registry import Registry, ResourceType
from orchestra.client.base import Client
from orchestra.controller import Controller, Result, registry_of
from orchestra.objects import Obj, as_dict, deep_copy, now_rfc3339
from orchestra.objects.conditions import get_condition, set_status_condition

log = logging.getLogger("orchestra.reconcilers.crd")

RECHECK = 1.0  # seconds between checks that a terminating CRD's instances are gone
_CONFLICTS = (("plural", "PluralConflict"), ("singular", "SingularConflict"))
_KIND_CONFLICTS = (("kind", "KindConflict"), ("listKind", "ListKindConflict"))


def set_condition(crd: Obj, kind: str, status: str, reason: str, message: str) -> None:
    """kube's SetCRDCondition: in place; lastTransitionTime moves only when the status does."""
    cond = {"type": kind, "status": status, "reason": reason, "message": message}
    set_status_condition(crd.setdefault("status", {}), cond, now_rfc3339())


class CRDController(Controller):
    name = "apiextensions-controller"

    def __init__(self, client: Client, *, workers: int = 1, **kwargs: Any) -> None:
        super().__init__(client, workers=workers, **kwargs)
        self.registry: Registry = registry_of(client)
        self.crds = self.informer("CustomResourceDefinition")
        self.enqueue_on(self.crds, self._keys)

    def _keys(self, event_type: str, old: Obj | None, new: Obj | None) -> list[str]:
        obj = new if new is not None else old
        assert obj is not None
        name = as_dict(obj.get("metadata")).get("name", "")
        if new is None or as_dict(as_dict(old or {}).get("status")).get("acceptedNames") != as_dict(
                new.get("status")).get("acceptedNames"):
            group = as_dict(obj.get("spec")).get("group")
            return [name, *(as_dict(c.get("metadata")).get("name", "") for c in self.crds.list()
                            if as_dict(c.get("spec")).get("group") == group)]
        return [name]

    async def reconcile(self, key: str) -> Result | None:
        crd = self.crds.get(None, key)
        if crd is None:
            return None
        if as_dict(crd.get("metadata")).get("deletionTimestamp"):
            return await self._finalize(crd)
        await self._names(crd)
        return None

    # --- naming and establishing --------------------------------------------------------------

    def _taken(self, crd: Obj) -> tuple[set[str], set[str]]:
        """Names and kinds already accepted in the CRD's group (by other CRDs, or built-in kinds)."""
        group = as_dict(crd.get("spec")).get("group")
        me = as_dict(crd.get("metadata")).get("name")
        resources: set[str] = set()
        kinds: set[str] = set()
        for other in self.crds.list():
            if (
                as_dict(other.get("spec")).get("group") != group
                or as_dict(other.get("metadata")).get("name") == me
            ):
                continue
            names = as_dict(as_dict(other.get("status")).get("acceptedNames"))
            resources |= {str(names.get("plural") or ""), str(names.get("singular") or ""),
                          *(str(s) for s in names.get("shortNames") or [])}
            kinds |= {str(names.get("kind") or ""), str(names.get("listKind") or "")}
        for rt in self.registry.builtin:
            if rt.group == group:
                resources |= {rt.plural, rt.singular, *rt.short_names}
                kinds |= {rt.kind, rt.list_kind}
        return resources - {""}, kinds - {""}

    def accepted(self, crd: Obj) -> tuple[Obj, tuple[str, str, str]]:
        """(acceptedNames, NamesAccepted (status, reason, message)) as kube's naming controller."""
        resources, kinds = self._taken(crd)
        wanted = as_dict(as_dict(crd.get("spec")).get("names"))
        have = as_dict(as_dict(crd.get("status")).get("acceptedNames"))
        names = dict(have)
        verdict = ("True", "NoConflicts", "no conflicts found")
        for field, reason in _CONFLICTS:
            if _fresh(wanted.get(field), have.get(field), resources):
                names[field] = wanted.get(field)
            else:
                verdict = ("False", reason, f'"{wanted.get(field)}" is already in use')
        if list(wanted.get("shortNames") or []) != list(have.get("shortNames") or []):
            clashes = [f'"{s}" is already in use' for s in wanted.get("shortNames") or []
                       if s not in (have.get("shortNames") or []) and s in resources]
            if clashes:
                verdict = ("False", "ShortNamesConflict", clashes[0] if len(clashes) == 1
                           else "[" + ", ".join(clashes) + "]")
            else:
                names["shortNames"] = wanted.get("shortNames")
        for field, reason in _KIND_CONFLICTS:
            if _fresh(wanted.get(field), have.get(field), kinds):
                names[field] = wanted.get(field)
            else:
                verdict = ("False", reason, f'"{wanted.get(field)}" is already in use')
        if wanted.get("categories") is not None:
            names["categories"] = wanted.get("categories")
        else:
            names.pop("categories", None)
        return {k: v for k, v in names.items() if v not in (None, [])}, verdict

    async def _names(self, crd: Obj) -> None:
        new = deep_copy(crd)
        names, (status, reason, message) = self.accepted(crd)
        new.setdefault("status", {})["acceptedNames"] = names
        set_condition(new, "NamesAccepted", status, reason, message)
        established = get_condition(as_dict(crd.get("status")), "Established")
        if established is None or established.get("status") != "True":
            if status == "True":
                set_condition(
                    new, "Established", "True", "InitialNamesAccepted", "the initial names have been accepted"
                )
            else:
                set_condition(new, "Established", "False", "NotAccepted", "not all names are accepted")
        if new != crd:
            await self._update_status(new)

    async def _update_status(self, crd: Obj) -> Obj | None:
        try:
            return await self.client.update_status(self.crds.rt, crd)
        except (NotFound, Conflict):
            return None  # deleted or changed meanwhile: its own event brings it back

    # --- finalizer ----------------------------------------------------------------------------

    async def _finalize(self, crd: Obj) -> Result | None:
        if CLEANUP not in (as_dict(crd.get("metadata")).get("finalizers") or []):
            return None
        name = str(as_dict(crd.get("metadata")).get("name"))
        rt = self._served(crd)
        if rt is not None:
            left = await self._delete_instances(rt)
            if left:
                new = deep_copy(crd)
                set_condition(new, "Terminating", "True", "InstanceDeletionInProgress",
                              "CustomResource deletion is in progress")
                if new != crd:
                    await self._update_status(new)
                log.info("%s: waiting for %d custom resources to go", name, left)
                return Result(requeue_after=RECHECK)
            done = ("False", "InstanceDeletionCompleted", "removed all instances")
        else:
            done = ("False", "NeverEstablished", "resource was never established")
        new = deep_copy(crd)
        set_condition(new, "Terminating", *done)
        updated = await self._update_status(new)
        if updated is None:
            return None
        finalizers = [f for f in as_dict(updated.get("metadata")).get("finalizers") or [] if f != CLEANUP]
        patch = {"metadata": {"finalizers": finalizers or None,
                              "resourceVersion": updated["metadata"]["resourceVersion"]}}
        try:
            await self.client.patch(self.crds.rt, None, name, patch)
        except (NotFound, Conflict):
            return None  # gone, or changed meanwhile: the next event retries
        return None

    def _served(self, crd: Obj) -> ResourceType | None:
        spec = as_dict(crd.get("spec"))
        names = as_dict(as_dict(crd.get("status")).get("acceptedNames"))
        rt = self.registry.by_plural(str(spec.get("group") or ""), str(names.get("plural") or ""))
        return rt if rt is not None and rt.custom is not None else None

    async def _delete_instances(self, rt: ResourceType) -> int:
        """Delete every instance not yet terminating; how many are left."""
        items, _ = await self.client.list(rt)
        for obj in items:
            m = as_dict(obj.get("metadata"))
            if m.get("deletionTimestamp"):
                continue
            try:
                await self.client.delete(rt, m.get("namespace"), str(m.get("name")), uid=m.get("uid"))
            except (NotFound, Conflict):
                continue  # gone already, or replaced: the next pass sees it
        remaining, _ = await self.client.list(rt)
        return len(remaining)


def _fresh(requested: Any, accepted: Any, used: set[str]) -> bool:
    """equalToAcceptedOrFresh: the name is ours already, or nobody else's."""
    return requested == accepted or requested not in used
