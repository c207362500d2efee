"""The resource metrics API (metrics.k8s.io/v1beta1, what metrics-server serves and `kubectl top` reads).

Owns: `Usage` (one measurement, made by node/metrics.py; `UsageSource` is what makes them) and
reading a pod's or node's usage out of it (`pod_metrics_items`: the PodMetrics a list returns);
the two read-only resource types — NodeMetrics (`nodes`, cluster-scoped) and PodMetrics
(`pods`, namespaced), get and list only — kept out of the main registry because nothing stores,
watches or garbage-collects them (discovery lists them); and the objects metrics-server returns:
usage as `<n>n` nanocores and `<n>Ki` memory, `timestamp` (when sampled) and `window` (the span the
CPU rate was measured over, a Go duration).
Must not import: the store, the HTTP server, or anything above the api layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import attrs

from orchestra.api.registry import Registry, ResourceType
from orchestra.objects import Obj

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
VERBS = ("get", "list")

NODE_METRICS = ResourceType(GROUP, VERSION, "NodeMetrics", "nodes", "", namespaced=False, verbs=VERBS)
POD_METRICS = ResourceType(GROUP, VERSION, "PodMetrics", "pods", "", namespaced=True, verbs=VERBS)
METRICS_REGISTRY = Registry((NODE_METRICS, POD_METRICS))



def cpu_quantity(cores: float) -> str:
    return f"{max(0, round(cores * 1e9))}n"


def memory_quantity(size: int) -> str:
    return f"{max(0, size) // 1024}Ki"


def window_text(seconds: float) -> str:
    """The `window` field: seconds at millisecond precision (`10.034s`, `0.5s`, `90s`). Not Go's
    Duration.String() (objects.go_duration_seconds), which metrics-server prints: the two differ
    under 1 s (`500ms`) and from 1 min (`1m30s`)."""
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


def _metrics_meta(obj: Obj, now: str) -> Obj:
    m = obj.get("metadata") or {}
    out: Obj = {"name": m.get("name"), "creationTimestamp": now}
    if m.get("namespace"):
        out["namespace"] = m["namespace"]
    if m.get("labels"):
        out["labels"] = dict(m["labels"])
    return out


def node_metrics(node: Obj, cpu: float, memory: int, *, timestamp: str, window: float) -> Obj:
    return {"kind": "NodeMetrics", "apiVersion": API_VERSION, "metadata": _metrics_meta(node, timestamp),
            "timestamp": timestamp, "window": window_text(window),
            "usage": {"cpu": cpu_quantity(cpu), "memory": memory_quantity(memory)}}


def pod_metrics(pod: Obj, containers: list[tuple[str, float, int]], *, timestamp: str, window: float) -> Obj:
    """`containers`: (name, cpu cores, memory bytes) in the pod's container order."""
    return {"kind": "PodMetrics", "apiVersion": API_VERSION, "metadata": _metrics_meta(pod, timestamp),
            "timestamp": timestamp, "window": window_text(window),
            "containers": [{"name": name, "usage": {"cpu": cpu_quantity(cpu), "memory": memory_quantity(mem)}}
                           for name, cpu, mem in containers]}


def metrics_list(rt: ResourceType, items: list[Obj]) -> Obj:
    return {"kind": rt.list_kind, "apiVersion": API_VERSION, "metadata": {}, "items": items}


@attrs.frozen
class Usage:
    """One measurement: per pod uid, per container name (cpu cores, memory bytes); per node."""

    timestamp: str
    window: float
    containers: Mapping[str, Mapping[str, tuple[float, int]]]
    nodes: Mapping[str, tuple[float, int]]


class UsageSource(Protocol):
    """Where measurements come from: node/metrics.py's UsageCollector (handed in by the app)."""

    async def usage(self) -> Usage: ...


def pod_metrics_items(pods: list[Obj], usage: Usage) -> list[Obj]:
    """PodMetrics of `pods`, like metrics-server: only Running pods whose containers were measured."""
    items = []
    for pod in pods:
        if (pod.get("status") or {}).get("phase") != "Running":
            continue
        containers = pod_usage(usage, pod)
        if containers is not None:
            items.append(pod_metrics(pod, containers, timestamp=usage.timestamp, window=usage.window))
    return items


def pod_usage(usage: Usage, pod: Obj) -> list[tuple[str, float, int]] | None:
    """(container, cpu, memory) in the pod's container order; None when none of them was measured."""
    measured = usage.containers.get(str((pod.get("metadata") or {}).get("uid") or ""))
    if not measured:
        return None
    names = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    return [(n, *measured[n]) for n in names if n in measured]


def node_usages(usage: Usage, nodes: list[str], pods: list[Obj]) -> dict[str, tuple[float, int]]:
    """The host's usage for the host's node; for a simulated node the sum of its pods (0 without)."""
    sums: dict[str, list[float]] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or node in usage.nodes:
            continue
        acc = sums.setdefault(node, [0.0, 0.0])
        for _name, cpu, memory in pod_usage(usage, pod) or ():
            acc[0] += cpu
            acc[1] += memory
    out: dict[str, tuple[float, int]] = {}
    for node in nodes:
        if node in usage.nodes:
            out[node] = usage.nodes[node]
        else:
            acc = sums.get(node, [0.0, 0.0])
            out[node] = (acc[0], int(acc[1]))
    return out
