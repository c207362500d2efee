"""Objects every cluster has from its first start: system namespaces, well-known Services, the
system PriorityClasses, the default StorageClass `local-path` (as k3s ships it), the default
IngressClass `orchestra` (served by net/ingress), the ConfigMap `kube-system/orchestra-cluster` of
the settings a joined node's network needs (clustersettings.py), and in each system namespace its
`default` ServiceAccount and `kube-root-ca.crt` ConfigMap (the serviceaccount and root-ca-cert-publisher
controllers keep them in every namespace; made here too, so that pods applied the moment the API
answers never wait for those controllers' first sync).

Must not import: cli.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from orchestra.api.errors import AlreadyExists, NotFound
from orchestra.api.policy.admission import SYSTEM_CLASS_OBJECTS
from orchestra.api.policy.serviceaccount import default_service_account, root_ca_config_map
from orchestra.api.request.core import ApiCore
from orchestra.app.clustersettings import ClusterSettings, publish
from orchestra.net.common import INGRESS_CONTROLLER, SERVED_BY_ORCHESTRA

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
LOCAL_PATH_CLASS: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {
        "name": "local-path",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
    "provisioner": "orchestra.io/local-path",
    "reclaimPolicy": "Delete",
    "volumeBindingMode": "WaitForFirstConsumer",
}

ORCHESTRA_INGRESS_CLASS: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "IngressClass",
    "metadata": {
        "name": "orchestra",
        "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"},
    },
    "spec": {"controller": INGRESS_CONTROLLER},
}


async def bootstrap(core: ApiCore, *, ca_pem: str | None = None,
                    settings: ClusterSettings | None = None) -> None:
    """Objects every cluster has: the system namespaces (with their default ServiceAccount and, given
    the cluster CA, kube-root-ca.crt), the `kubernetes` Service, the system PriorityClasses
    (kube-apiserver's post-start hook), and given its `settings` the ConfigMap joined nodes start
    their network from (clustersettings.py)."""
    ns_rt = core.registry.by_kind("Namespace")
    svc_rt = core.registry.by_kind("Service")
    pc_rt = core.registry.by_kind("PriorityClass")
    assert ns_rt and svc_rt and pc_rt
    for pc in SYSTEM_CLASS_OBJECTS:
        try:
            await core.create(pc_rt, None, pc)
        except AlreadyExists:
            pass
    for ns in SYSTEM_NAMESPACES:
        try:
            await core.create(ns_rt, None, {"metadata": {"name": ns}})
        except AlreadyExists:
            pass  # restart: already there
        await _furnish(core, ns, ca_pem)
    well_known = [
        (
            "default",
            {
                "metadata": {
                    "name": "kubernetes",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "clusterIP": core.allocator.kubernetes_ip,
                    "ports": [{"name": "https", "port": 443, "targetPort": 6443}],
                },
            },
        ),
        # served by orchestra's own DNS server on this ClusterIP, not by pods (so: no selector)
        (
            "kube-system",
            {
                "metadata": {
                    "name": "kube-dns",
                    "labels": {"k8s-app": "kube-dns"},
                    "annotations": {SERVED_BY_ORCHESTRA: "dns"},
                },
                "spec": {
                    "clusterIP": core.allocator.dns_ip,
                    "ports": [
                        {"name": "dns", "port": 53, "protocol": "UDP"},
                        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                    ],
                },
            },
        ),
    ]
    for ns, svc in well_known:
        try:
            await core.create(svc_rt, ns, svc)
        except AlreadyExists:
            pass
    sc_rt = core.registry.by_kind("StorageClass")
    assert sc_rt
    try:
        await core.create(sc_rt, None, LOCAL_PATH_CLASS)
    except AlreadyExists:
        pass  # restart (or an administrator's own local-path class): keep it
    ic_rt = core.registry.by_kind("IngressClass")
    assert ic_rt
    try:
        await core.create(ic_rt, None, ORCHESTRA_INGRESS_CLASS)
    except AlreadyExists:
        pass  # restart (or an administrator's own class of that name): keep it
    if settings is not None:
        await publish(core, settings)


async def _furnish(core: ApiCore, namespace: str, ca_pem: str | None) -> None:
    sa_rt, cm_rt = core.registry.by_kind("ServiceAccount"), core.registry.by_kind("ConfigMap")
    assert sa_rt and cm_rt
    wanted = [(sa_rt, default_service_account(namespace))]
    if ca_pem is not None:
        wanted.append((cm_rt, root_ca_config_map(namespace, ca_pem)))
    for rt, obj in wanted:
        try:
            await core.create(rt, namespace, obj)
        except AlreadyExists:
            pass  # restart: the controllers keep it current from here on


def in_cluster_names(core: ApiCore) -> list[str]:
    """Names pods use for the API (the serving certificate must cover them)."""
    return [core.allocator.kubernetes_ip, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local"]


def api_address(url: str) -> tuple[str, int]:
    """(host, port) of an API server URL as the `kubernetes` Service's endpoints name it."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 443
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"  # the proxy runs on this host, so loopback reaches a wildcard listener
    return host, port


def kubernetes_endpoints(addresses: list[tuple[str, int]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The `default/kubernetes` Endpoints and EndpointSlices (bodies, without resourceVersions) listing
    these API servers: one subset per port (servers may listen on different ports), one slice per port
    and address family (the first named `kubernetes`, as kube's, the others `kubernetes-<port>[-v6]`)."""
    ports = sorted({port for _, port in addresses})
    subsets = [{"addresses": [{"ip": h} for h in sorted({h for h, p in addresses if p == port})],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]} for port in ports]
    eps: dict[str, Any] = {
        "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": subsets,
    }
    groups = sorted({(port, ":" in host) for host, port in addresses}) or [(443, False)]
    slices = []
    for i, (port, v6) in enumerate(groups):
        hosts = sorted({h for h, p in addresses if p == port and (":" in h) == v6})
        slices.append({
            "metadata": {
                "name": "kubernetes" if i == 0 else f"kubernetes-{port}{'-v6' if v6 else ''}",
                "labels": {
                    "kubernetes.io/service-name": "kubernetes",
                    "endpointslice.kubernetes.io/managed-by": "orchestra",
                },
            },
            "addressType": "IPv6" if v6 else "IPv4",
            "endpoints": [{"addresses": [h], "conditions": {"ready": True}} for h in hosts],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}] if hosts else [],
        })
    return eps, slices


async def publish_api_endpoints(core: ApiCore, url: str) -> None:
    """Point the `kubernetes` Service at this API server, so pods reach it on 10.96.0.1:443 (one server;
    servers sharing etcd list each other from their identity Leases: servers.py)."""
    slice_rt, ep_rt = core.registry.by_kind("EndpointSlice"), core.registry.by_kind("Endpoints")
    assert slice_rt and ep_rt
    eps, slices = kubernetes_endpoints([api_address(url)])
    for rt, body in ((ep_rt, eps), (slice_rt, slices[0])):
        try:
            current = core.get(rt, "default", "kubernetes")
        except NotFound:
            await core.create(rt, "default", body)
            continue
        await core.update(
            rt, "default", "kubernetes", {**body, "metadata": {**current["metadata"], **body["metadata"]}}
        )
