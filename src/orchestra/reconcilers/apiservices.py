"""APIService auto-registration (kube-aggregator's autoregister controller, as kube-apiserver runs it
for the groups it serves itself).

Owns: the APIService of every group/version the server serves (`api_services`: `v1.` for the core
group, `v1.apps`, ..., `v1beta1.metrics.k8s.io`), each Local (no spec.service: the API server
serves it; the APIService strategy marks it Available) with kube's group and version priorities,
labelled `kube-aggregator.kubernetes.io/automanaged: onstart`; and kube's sync-on-start rules
(checkAPIService): each is created, or its spec put back, once per start of the server — a delete
or an edit after that stays until the next start, as in kube; an automanaged APIService of a group
no longer served that existed at start is deleted once; one the user made is never touched.
Must not import: node, net, apiserver, cli, runtime, or another reconciler.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestra.api.errors import AlreadyExists, Conflict, NotFound
from orchestra.client.base import Client
from orchestra.controller import Controller, Result
from orchestra.objects import Obj, deep_copy, meta

MANAGED_LABEL = "kube-aggregator.kubernetes.io/automanaged"
ON_START = "onstart"
# kube-apiserver's apiVersionPriorities: (groupPriorityMinimum, versionPriority); a group not listed
# gets no APIService (kube skips it too, so a CRD's group never lingers)
PRIORITIES: dict[tuple[str, str], tuple[int, int]] = {
    ("", "v1"): (18000, 1),
    ("apiregistration.k8s.io", "v1"): (18000, 15),
    ("apps", "v1"): (17800, 15),
    ("events.k8s.io", "v1"): (17750, 15),
    ("authentication.k8s.io", "v1"): (17700, 15),
    ("authorization.k8s.io", "v1"): (17600, 15),
    ("autoscaling", "v1"): (17500, 15),
    ("autoscaling", "v2"): (17500, 30),
    ("batch", "v1"): (17400, 15),
    ("certificates.k8s.io", "v1"): (17300, 15),
    ("networking.k8s.io", "v1"): (17200, 15),
    ("policy", "v1"): (17100, 15),
    ("rbac.authorization.k8s.io", "v1"): (17000, 15),
    ("storage.k8s.io", "v1"): (16800, 15),
    ("apiextensions.k8s.io", "v1"): (16700, 15),
    ("admissionregistration.k8s.io", "v1"): (16700, 15),
    ("scheduling.k8s.io", "v1"): (16600, 15),
    ("coordination.k8s.io", "v1"): (16500, 15),
    ("node.k8s.io", "v1"): (16300, 15),
    ("discovery.k8s.io", "v1"): (16200, 15),
    ("flowcontrol.apiserver.k8s.io", "v1"): (16100, 21),
    ("metrics.k8s.io", "v1beta1"): (100, 100),  # metrics-server's; served in-process here (Local)
}


def api_services(group_versions: Iterable[tuple[str, str]]) -> list[Obj]:
    """The Local APIServices of the group/versions a server serves (makeAPIService)."""
    out = []
    for group, version in group_versions:
        priority = PRIORITIES.get((group, version))
        if priority is None:
            continue
        out.append({
            "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": f"{version}.{group}", "labels": {MANAGED_LABEL: ON_START}},
            "spec": {"group": group, "version": version, "groupPriorityMinimum": priority[0],
                     "versionPriority": priority[1]},
        })
    return out


class AutoRegisterController(Controller):
    name = "autoregister-controller"

    def __init__(self, client: Client, desired: list[Obj], **kwargs: Any) -> None:
        super().__init__(client, workers=1, **kwargs)
        self.desired = {meta(s)["name"]: s for s in desired}
        self.services = self.informer("APIService")
        self.enqueue_on(self.services, lambda _t, old, new: [meta(new or old)["name"]])
        self.synced: set[str] = set()  # synced once since this server started
        self.at_start: set[str] | None = None  # the APIServices there when the cache first synced
        for name in self.desired:
            self.queue.add(name)

    def restarted(self) -> None:
        for name in self.desired.keys() - self.synced:  # the new queue lost them
            self.queue.add(name)

    async def reconcile(self, key: str) -> Result | None:
        if self.at_start is None:
            self.at_start = {meta(s)["name"] for s in self.services.list()}
        if key in self.synced:
            return None  # the "once" of sync-on-start: later deletes and edits stay
        await self._check(key, self.desired.get(key), self.services.get(None, key))
        self.synced.add(key)
        return None

    async def _check(self, name: str, desired: Obj | None, current: Obj | None) -> None:
        rt = self.services.rt
        if current is None:
            if desired is not None:
                try:
                    await self.client.create(rt, None, deep_copy(desired))
                except AlreadyExists:  # made in the meantime: its event brings us back
                    pass
            return
        managed = (meta(current).get("labels") or {}).get(MANAGED_LABEL)
        if managed != ON_START or name not in (self.at_start or set()):
            return  # not ours, or one that appeared after we started
        try:
            if desired is None:
                await self.client.delete(rt, None, name, uid=meta(current).get("uid"))
            elif current.get("spec") != desired.get("spec"):
                await self.client.update(rt, {**deep_copy(current), "spec": deep_copy(desired["spec"])})
        except (NotFound, Conflict):  # deleted or changed in the meantime: its event brings us back
            pass
