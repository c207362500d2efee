"""Objects every cluster has from its first start: system namespaces, well-known Services.

Must not import: cli.
"""

from __future__ import annotations

from orchestra.api.core import ApiCore
from orchestra.api.errors import AlreadyExists
from orchestra.net.common import SERVED_BY_ORCHESTRA

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def bootstrap(core: ApiCore) -> None:
    """Objects every cluster has: the system namespaces and the `kubernetes` Service."""
    ns_rt = core.registry.by_kind("Namespace")
    svc_rt = core.registry.by_kind("Service")
    assert ns_rt and svc_rt
    for ns in SYSTEM_NAMESPACES:
        try:
            await core.create(ns_rt, None, {"metadata": {"name": ns}})
        except AlreadyExists:
            pass  # restart: already there
    well_known = [
        ("default", {"metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                     "spec": {"clusterIP": core.allocator.kubernetes_ip,
                              "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}}),
        # served by orchestra's own DNS server on this ClusterIP, not by pods (so: no selector)
        ("kube-system", {"metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns"},
                                      "annotations": {SERVED_BY_ORCHESTRA: "dns"}},
                         "spec": {"clusterIP": core.allocator.dns_ip,
                                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}),
    ]
    for ns, svc in well_known:
        try:
            await core.create(svc_rt, ns, svc)
        except AlreadyExists:
            pass
