"""The resource metrics API (metrics.k8s.io/v1beta1, what metrics-server serves and `kubectl top` reads).

Owns: the two read-only resource types — NodeMetrics (`nodes`, cluster-scoped) and PodMetrics
(`pods`, namespaced), get and list only — kept out of the main registry because nothing stores,
watches or garbage-collects them (discovery lists them); and the objects metrics-server returns:
usage as `<n>n` nanocores and `<n>Ki` memory, `timestamp` (when sampled) and `window` (the span the
CPU rate was measured over, a Go duration).
Must not import: the store, the HTTP server, or anything above the api layer.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.registry import Registry, ResourceType

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
VERBS = ("get", "list")

NODE_METRICS = ResourceType(GROUP, VERSION, "NodeMetrics", "nodes", "", namespaced=False, verbs=VERBS)
POD_METRICS = ResourceType(GROUP, VERSION, "PodMetrics", "pods", "", namespaced=True, verbs=VERBS)
METRICS_REGISTRY = Registry((NODE_METRICS, POD_METRICS))

Obj = dict[str, Any]


def cpu_quantity(cores: float) -> str:
    return f"{max(0, round(cores * 1e9))}n"


def memory_quantity(size: int) -> str:
    return f"{max(0, size) // 1024}Ki"


def go_duration(seconds: float) -> str:
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


def _meta(obj: Obj, now: str) -> Obj:
    m = obj.get("metadata") or {}
    out: Obj = {"name": m.get("name"), "creationTimestamp": now}
    if m.get("namespace"):
        out["namespace"] = m["namespace"]
    if m.get("labels"):
        out["labels"] = dict(m["labels"])
    return out


def node_metrics(node: Obj, cpu: float, memory: int, *, timestamp: str, window: float) -> Obj:
    return {"kind": "NodeMetrics", "apiVersion": API_VERSION, "metadata": _meta(node, timestamp),
            "timestamp": timestamp, "window": go_duration(window),
            "usage": {"cpu": cpu_quantity(cpu), "memory": memory_quantity(memory)}}


def pod_metrics(pod: Obj, containers: list[tuple[str, float, int]], *, timestamp: str, window: float) -> Obj:
    """`containers`: (name, cpu cores, memory bytes) in the pod's container order."""
    return {"kind": "PodMetrics", "apiVersion": API_VERSION, "metadata": _meta(pod, timestamp),
            "timestamp": timestamp, "window": go_duration(window),
            "containers": [{"name": name, "usage": {"cpu": cpu_quantity(cpu), "memory": memory_quantity(mem)}}
                           for name, cpu, mem in containers]}


def metrics_list(rt: ResourceType, items: list[Obj]) -> Obj:
    return {"kind": rt.list_kind, "apiVersion": API_VERSION, "metadata": {}, "items": items}
