"""APIService auto-registration (kube-aggregator's autoregister controller, as kube-apiserver runs it
for the groups it serves itself, with the crdregistration controller feeding it the CRDs' groups).

Owns: the APIService of every group/version the server serves built in (`api_services`: `v1.` for
the core group, `v1.apps`, ..., `v1beta1.metrics.k8s.io`) and of every group/version a
CustomResourceDefinition serves (`crd_api_service`: `v1.example.com`, kube's priorities 1000/100),
each Local (no spec.service: the API server serves it; the APIService strategy marks it
Available), labelled `kube-aggregator.kubernetes.io/automanaged`: `onstart` for the built-in ones,
`true` for the CRDs' ones; and kube's rules for them (checkAPIService): a built-in one is created,
or its spec put back, once per start of the server — a delete or an edit after that stays until the
next start; an automanaged one of a group no longer served that existed at start is deleted once. A
CRD's one is kept in line for as long as a CRD serves that group/version (re-created when deleted,
its spec put back when edited) and deleted once none does (a served version of any CRD counts,
Established or not, as kube's CRD lister does); a built-in group/version is never a CRD's. One the
user made (no label) is never touched.
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
ALWAYS = "true"  # kube's manageContinuously
CRD_PRIORITY = (1000, 100)  # crdregistration: CRDs have a low group priority, versions sort kube-like
# kube-apiserver's apiVersionPriorities: (groupPriorityMinimum, versionPriority); a group not listed
# gets no built-in APIService (kube skips it too, so a CRD's group never lingers as one)
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
        if priority is not None:
            out.append(_local(group, version, priority, ON_START))
    return out


def crd_api_service(group: str, version: str) -> Obj:
    """The Local APIService of a group/version a CustomResourceDefinition serves (crdregistration)."""
    return _local(group, version, CRD_PRIORITY, ALWAYS)


def _local(group: str, version: str, priority: tuple[int, int], managed: str) -> Obj:
    return {
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": f"{version}.{group}", "labels": {MANAGED_LABEL: managed}},
        "spec": {"group": group, "version": version, "groupPriorityMinimum": priority[0],
                 "versionPriority": priority[1]},
    }


def _crd_keys(_event: str, old: Obj | None, new: Obj | None) -> list[str]:
    """The APIService names of every version a CRD lists, before and after the change (a version
    dropped or no longer served must be looked at too)."""
    keys: dict[str, None] = {}
    for crd in (old, new):
        spec = (crd or {}).get("spec") or {}
        for v in spec.get("versions") or ():
            keys.setdefault(f"{v.get('name')}.{spec.get('group')}", None)
    return list(keys)


def _managed(service: Obj | None) -> str:
    return str(((meta(service).get("labels") or {}).get(MANAGED_LABEL)) or "") if service else ""


class AutoRegisterController(Controller):
    """`desired`: the built-in APIServices (api_services); the CRDs' ones come from the
    CustomResourceDefinitions the controller watches."""

    name = "autoregister-controller"

    def __init__(self, client: Client, desired: list[Obj], **kwargs: Any) -> None:
        super().__init__(client, workers=1, **kwargs)
        self.desired = {meta(s)["name"]: s for s in desired}
        self.services = self.informer("APIService")
        self.crds = self.informer("CustomResourceDefinition")
        self.enqueue_on(self.services, lambda _t, old, new: [meta(new or old)["name"]])
        self.enqueue_on(self.crds, _crd_keys)
        self.synced: set[str] = set()  # synced once since this server started
        self.at_start: set[str] | None = None  # the APIServices there when the cache first synced
        for name in self.desired:
            self.queue.add(name)

    def restarted(self) -> None:
        for name in self.desired.keys() - self.synced:  # the new queue lost them
            self.queue.add(name)

    def wanted(self, name: str) -> Obj | None:
        """The APIService `name` should be: built in, else a CRD's while one serves its version."""
        if name in self.desired:
            return self.desired[name]
        version, _, group = name.partition(".")
        for crd in self.crds.list():
            spec = crd.get("spec") or {}
            if spec.get("group") == group and any(
                v.get("name") == version and v.get("served") for v in spec.get("versions") or ()
            ):
                return crd_api_service(group, version)
        return None

    async def reconcile(self, key: str) -> Result | None:
        if self.at_start is None:
            self.at_start = {meta(s)["name"] for s in self.services.list()}
        await self._check(key, self.wanted(key), self.services.get(None, key))
        self.synced.add(key)
        return None

    async def _check(self, name: str, desired: Obj | None, current: Obj | None) -> None:
        """checkAPIService's table: rows are what is stored, columns what is wanted (module docstring)."""
        synced = name in self.synced
        if (current is None and desired is None) or (_managed(desired) == ON_START and synced):
            return  # nothing wanted, or a built-in one already synced once since the start
        rt = self.services.rt
        if current is None:
            assert desired is not None  # both None returned above
            try:
                await self.client.create(rt, None, deep_copy(desired))
            except AlreadyExists:  # made in the meantime: its event brings us back
                pass
            return
        managed = _managed(current)
        if managed not in (ON_START, ALWAYS) or (
            managed == ON_START and (name not in (self.at_start or set()) or synced)
        ):
            return  # not ours; or sync-on-start and added after we started, or already synced once
        try:
            if desired is None:
                await self.client.delete(rt, None, name, uid=meta(current).get("uid"))
            elif current.get("spec") != desired.get("spec"):
                await self.client.update(rt, {**deep_copy(current), "spec": deep_copy(desired["spec"])})
        except (NotFound, Conflict):  # deleted or changed in the meantime: its event brings us back
            pass
