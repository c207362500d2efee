"""Endpoints and EndpointSlices for Services with a selector (kube's endpoint + endpointslice controllers).

Owns: for each Service with a selector (not ExternalName), from the pods it selects that have a
podIP and are not Succeeded/Failed —
  * the Endpoints object of the same name: subsets grouped by resolved port set, ready pods in
    `addresses`, others in `notReadyAddresses` (terminating pods left out unless
    publishNotReadyAddresses), named targetPorts resolved per pod from its container ports;
  * EndpointSlices labelled kubernetes.io/service-name and managed-by endpointslice-controller.k8s.io,
    owned by the Service, one per resolved port set (at most 100 endpoints each, like kube's
    maxEndpointsPerSlice), endpoints with conditions ready/serving/terminating, nodeName, targetRef;
    a Service selecting nothing keeps one empty placeholder slice.
ready = the pod's Ready condition is True and it is not terminating.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestra.api.errors import NotFound
from orchestra.api.machinery.selectors import from_label_selector_object
from orchestra.client.base import Client
from orchestra.controller import Controller, Result, object_key, split_key
from orchestra.objects import Obj, deep_copy, is_pod_ready, labels_match, meta, new_controller_ref

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
MAX_ENDPOINTS_PER_SLICE = 100

PortKey = tuple[tuple[str, int, str], ...]  # ((name, port, protocol), ...) sorted


def _slice_service_key(obj: Obj) -> list[str]:
    labels = meta(obj).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{meta(obj).get('namespace')}/{labels[SERVICE_NAME_LABEL]}"]


def resolve_port(pod: Obj, service_port: Obj) -> int | None:
    """kube's podutil.FindPort: a numeric targetPort as is, a named one from the pod's containers."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                return int(p["containerPort"])
    return None


def _pod_ports(pod: Obj, svc: Obj) -> PortKey | None:
    """The pod's resolved ports for the service; None when the service has ports and none resolve."""
    ports = (svc.get("spec") or {}).get("ports") or []
    resolved = []
    for sp in ports:
        n = resolve_port(pod, sp)
        if n is not None:
            resolved.append((str(sp.get("name") or ""), n, str(sp.get("protocol") or "TCP")))
    if ports and not resolved:
        return None
    return tuple(sorted(resolved))


def _target_ref(pod: Obj) -> Obj:
    m = meta(pod)
    return {"kind": "Pod", "namespace": m.get("namespace"), "name": m.get("name"), "uid": m.get("uid")}


def _app_protocols(svc: Obj) -> dict[str, str]:
    return {str(p.get("name") or ""): p["appProtocol"] for p in (svc.get("spec") or {}).get("ports") or []
            if p.get("appProtocol")}


class EndpointsController(Controller):
    name = "endpoint-controller"

    def __init__(self, client: Client, *, workers: int = 1, **kwargs: Any) -> None:
        super().__init__(client, workers=workers, **kwargs)
        self.services = self.informer("Service")
        self.pods = self.informer("Pod")
        self.endpoints = self.informer("Endpoints")
        self.slices = self.informer("EndpointSlice", indexers={"service": _slice_service_key})
        self.enqueue_on(self.services)
        # like kube's endpoints controller: only a deleted Endpoints re-triggers its Service, so
        # Endpoints a user made for a Service that does not exist are left alone
        self.enqueue_on(
            self.endpoints, lambda t, old, new: [object_key(old)] if t == "DELETED" and old else []
        )
        self.enqueue_on(self.pods, self._services_for_pod)
        self.enqueue_on(self.slices, lambda _t, old, new: _slice_service_key(new or old or {}))
        self._last_write: dict[str, tuple[str, str]] = {}  # service key -> (endpoints rv, slices rv)

    def _services_for_pod(self, event_type: str, old: Obj | None, new: Obj | None) -> Iterable[str]:
        keys: set[str] = set()
        for pod in (old, new):
            if pod is None:
                continue
            m = meta(pod)
            for svc in self.services.by_index("namespace", str(m.get("namespace") or "")):
                sel = (svc.get("spec") or {}).get("selector")
                if sel and labels_match(sel, m.get("labels") or {}):
                    keys.add(object_key(svc))
        return keys

    async def reconcile(self, key: str) -> Result | None:
        ns, name = split_key(key)
        ep_rv, slice_rv = self._last_write.pop(key, ("", ""))
        await self.endpoints.wait_for_resource_version(ep_rv)
        await self.slices.wait_for_resource_version(slice_rv)
        svc = self.services.get(ns, name)
        if svc is None:
            await self._delete_all(ns, name, key)
            return None
        spec = svc.get("spec") or {}
        if not spec.get("selector") or spec.get("type") == "ExternalName":
            return None  # not ours: Endpoints of selector-less Services are managed by users
        selector = from_label_selector_object({"matchLabels": spec["selector"]})
        pods = [p for p in self.pods.list(ns, selector) if _eligible(p)]
        ep_rv = await self._sync_endpoints(svc, pods)
        slice_rv = await self._sync_slices(svc, pods)
        if ep_rv or slice_rv:
            self._last_write[key] = (ep_rv, slice_rv)
        return None

    async def _delete_all(self, ns: str | None, name: str, key: str) -> None:
        if self.endpoints.get(ns, name) is not None:
            try:
                await self.client.delete(self.endpoints.rt, ns, name)
            except NotFound:
                pass  # already gone
        for s in self.slices.by_index("service", key):
            try:
                await self.client.delete(self.slices.rt, ns, meta(s)["name"])
            except NotFound:
                pass  # already gone (e.g. by the garbage collector)

    # --- Endpoints ----------------------------------------------------------------------------

    async def _sync_endpoints(self, svc: Obj, pods: list[Obj]) -> str:
        m = meta(svc)
        desired_subsets = endpoints_subsets(svc, pods)
        labels = dict(m.get("labels") or {})
        if (svc.get("spec") or {}).get("clusterIP") == "None":
            labels[HEADLESS_LABEL] = ""
        current = self.endpoints.get(m["namespace"], m["name"])
        if current is None:
            obj: Obj = {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {
                    "name": m["name"],
                    "namespace": m["namespace"],
                    **({"labels": labels} if labels else {}),
                },
                "subsets": desired_subsets,
            }
            created = await self.client.create(self.endpoints.rt, m["namespace"], obj)
            return str(meta(created).get("resourceVersion") or "")
        if (current.get("subsets") or []) == desired_subsets and (
            meta(current).get("labels") or {}
        ) == labels:
            return ""
        obj = deep_copy(current)
        obj["subsets"] = desired_subsets
        obj["metadata"]["labels"] = labels
        updated = await self.client.update(self.endpoints.rt, obj)
        return str(meta(updated).get("resourceVersion") or "")

    # --- EndpointSlices -----------------------------------------------------------------------

    async def _sync_slices(self, svc: Obj, pods: list[Obj]) -> str:
        m = meta(svc)
        desired = desired_slices(svc, pods)
        existing = sorted(
            self.slices.by_index("service", object_key(svc)), key=lambda s: meta(s).get("name", "")
        )
        by_ports: dict[PortKey, list[Obj]] = {}
        for s in existing:
            by_ports.setdefault(_slice_port_key(s), []).append(s)
        last_rv = ""
        for ports, body in desired:
            reuse = by_ports.get(ports)
            current = reuse.pop(0) if reuse else None
            want_labels = {**body["metadata"]["labels"]}
            if current is None:
                owner = new_controller_ref(svc, api_version="v1", kind="Service")
                obj = {
                    **body,
                    "metadata": {
                        **body["metadata"],
                        "generateName": f"{m['name']}-",
                        "namespace": m["namespace"],
                        "ownerReferences": [owner],
                    },
                }
                created = await self.client.create(self.slices.rt, m["namespace"], obj)
                last_rv = str(meta(created).get("resourceVersion") or "")
                continue
            if (
                (current.get("endpoints") or []) == body["endpoints"]
                and (current.get("ports") or []) == body["ports"]
                and current.get("addressType") == body["addressType"]
                and (meta(current).get("labels") or {}) == want_labels
            ):
                continue
            obj = deep_copy(current)
            obj.update(endpoints=body["endpoints"], ports=body["ports"], addressType=body["addressType"])
            obj["metadata"]["labels"] = want_labels
            updated = await self.client.update(self.slices.rt, obj)
            last_rv = str(meta(updated).get("resourceVersion") or "")
        for leftovers in by_ports.values():
            for s in leftovers:
                try:
                    await self.client.delete(self.slices.rt, m["namespace"], meta(s)["name"])
                except NotFound:
                    pass  # already gone
        return last_rv


def _eligible(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return bool(status.get("podIP")) and status.get("phase") not in ("Succeeded", "Failed")


def endpoints_subsets(svc: Obj, pods: list[Obj]) -> list[Obj]:
    """Endpoints.subsets like kube's endpoints controller after RepackSubsets (sorted, stable)."""
    spec = svc.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    app = _app_protocols(svc)
    groups: dict[PortKey, tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        terminating = bool(meta(pod).get("deletionTimestamp"))
        if terminating and not publish:
            continue
        ports = _pod_ports(pod, svc)
        if ports is None:
            continue
        ready, not_ready = groups.setdefault(ports, ([], []))
        addr: Obj = {"ip": pod["status"]["podIP"]}
        if (pod.get("spec") or {}).get("nodeName"):
            addr["nodeName"] = pod["spec"]["nodeName"]
        addr["targetRef"] = _target_ref(pod)
        (ready if publish or is_pod_ready(pod) else not_ready).append(addr)
    subsets = []
    for ports, (ready, not_ready) in sorted(groups.items()):
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=lambda a: a["ip"])
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: a["ip"])
        if ports:
            subset["ports"] = [_port(n, p, proto, app) for n, p, proto in ports]
        subsets.append(subset)
    return subsets


def _port(name: str, port: int, protocol: str, app: dict[str, str], *, slice_port: bool = False) -> Obj:
    out: Obj = {"name": name} if (name or slice_port) else {}
    out.update(port=port, protocol=protocol)
    if name in app:
        out["appProtocol"] = app[name]
    return out


def desired_slices(svc: Obj, pods: list[Obj]) -> list[tuple[PortKey, Obj]]:
    """(port key, slice body without name/owner) for each slice the service should have."""
    spec = svc.get("spec") or {}
    m = meta(svc)
    publish = bool(spec.get("publishNotReadyAddresses"))
    app = _app_protocols(svc)
    labels = {
        k: v for k, v in (m.get("labels") or {}).items() if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)
    }
    labels.update({SERVICE_NAME_LABEL: m["name"], MANAGED_BY_LABEL: MANAGED_BY})
    if spec.get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    groups: dict[tuple[PortKey, str], list[Obj]] = {}
    for pod in sorted(pods, key=lambda p: (p["status"]["podIP"], meta(p).get("name", ""))):
        ports = _pod_ports(pod, svc)
        if ports is None:
            continue
        serving = is_pod_ready(pod)
        terminating = bool(meta(pod).get("deletionTimestamp"))
        ip = pod["status"]["podIP"]
        ep: dict[str, Any] = {"addresses": [ip],
                   "conditions": {"ready": publish or (serving and not terminating), "serving": serving,
                                  "terminating": terminating},
                   "targetRef": _target_ref(pod)}
        if (pod.get("spec") or {}).get("nodeName"):
            ep["nodeName"] = pod["spec"]["nodeName"]
        groups.setdefault((ports, "IPv6" if ":" in ip else "IPv4"), []).append(ep)
    out: list[tuple[PortKey, Obj]] = []
    for (ports, family), eps in sorted(groups.items()):
        for i in range(0, len(eps), MAX_ENDPOINTS_PER_SLICE):
            body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"labels": labels}, "addressType": family,
                    "endpoints": eps[i:i + MAX_ENDPOINTS_PER_SLICE],
                    "ports": [_port(n, p, proto, app, slice_port=True) for n, p, proto in ports]}
            out.append((ports, body))
    if not out:  # kube keeps a placeholder slice (no ports, no endpoints)
        out.append(
            (
                (),
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {"labels": labels},
                    "addressType": "IPv4",
                    "endpoints": [],
                    "ports": [],
                },
            )
        )
    return out


def _slice_port_key(s: Obj) -> PortKey:
    return tuple(sorted((str(p.get("name") or ""), int(p.get("port") or 0), str(p.get("protocol") or "TCP"))
                        for p in s.get("ports") or []))
