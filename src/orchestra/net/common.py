"""Shared helpers of the net layer: resource types and the EndpointSlice → Service index."""

from __future__ import annotations

from orchestra.api.registry import DEFAULT_REGISTRY, ResourceType
from orchestra.objects import Obj

# Services orchestra answers itself (kube-dns): the proxy leaves their ClusterIP ports alone.
SERVED_BY_ORCHESTRA = "orchestra.io/served-by"
# The IngressClass controller name orchestra's built-in ingress controller answers for.
INGRESS_CONTROLLER = "orchestra.io/ingress-controller"


def kind(name: str) -> ResourceType:
    rt = DEFAULT_REGISTRY.by_kind(name)
    assert rt is not None, name
    return rt


def slice_service_key(obj: Obj) -> list[str]:
    """`namespace/service` of an EndpointSlice (its kubernetes.io/service-name label)."""
    m = obj.get("metadata") or {}
    svc = (m.get("labels") or {}).get("kubernetes.io/service-name")
    return [f"{m.get('namespace')}/{svc}"] if svc else []
