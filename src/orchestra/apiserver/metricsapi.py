"""GET /apis/metrics.k8s.io/v1beta1/...: the resource metrics API `kubectl top` reads.

Owns: the routes metrics-server serves — `nodes`, `nodes/{name}`, `pods` (every namespace),
`namespaces/{ns}/pods`, `namespaces/{ns}/pods/{name}` — with `labelSelector` on lists, answered
from the in-process usage collector (node/metrics.py, handed in by the app) and the API's Nodes and
Pods. Like metrics-server: only Running pods whose containers were measured are listed; a name that
has no metrics is 404 `podmetrics.metrics.k8s.io "x" not found`; anything but GET, and watch, is 405.
Must not import: cli, node, reconcilers, runtime (the collector is handed in).
"""

from __future__ import annotations

from typing import Any

from orchestra.api import metrics
from orchestra.api.errors import MethodNotAllowed, NotFound, path_not_found
from orchestra.api.machinery.selectors import parse_label_selector
from orchestra.api.metrics import UsageSource, node_usages, pod_metrics_items
from orchestra.api.request.core import ApiCore
from orchestra.apiserver.http import Request, send_json

PREFIX = ("apis", metrics.GROUP, metrics.VERSION)


class MetricsApi:
    def __init__(self, core: ApiCore, collector: UsageSource) -> None:
        self.core = core
        self.collector = collector

    async def serve(self, req: Request, parts: list[str]) -> None:
        """`parts`: the path after /apis/metrics.k8s.io/v1beta1."""
        if req.method != "GET" or req.flag("watch"):
            raise MethodNotAllowed("the server does not allow this method on the requested resource")
        if parts[:1] == ["nodes"] and len(parts) <= 2:
            await self._nodes(req, parts[1] if len(parts) == 2 else None)
        elif parts == ["pods"]:
            await self._pods(req, None, None)
        elif len(parts) in (3, 4) and parts[0] == "namespaces" and parts[2] == "pods":
            await self._pods(req, parts[1], parts[3] if len(parts) == 4 else None)
        else:
            raise path_not_found()

    def _listed(
        self, kind: str, namespace: str | None, req: Request, name: str | None
    ) -> list[dict[str, Any]]:
        rt = self.core.registry.by_kind(kind)
        assert rt is not None
        if name is not None:
            try:
                return [self.core.get(rt, namespace, name)]
            except NotFound:
                return []
        return list(
            self.core.list(rt, namespace, label_selector=parse_label_selector(req.arg("labelSelector"))).items
        )

    async def _nodes(self, req: Request, name: str | None) -> None:
        nodes = self._listed("Node", None, req, name)
        usage = await self.collector.usage()
        pod_rt = self.core.registry.by_kind("Pod")
        assert pod_rt is not None
        per_node = node_usages(
            usage, [n["metadata"]["name"] for n in nodes], list(self.core.list(pod_rt, None).items)
        )
        items = [
            metrics.node_metrics(
                n, *per_node[n["metadata"]["name"]], timestamp=usage.timestamp, window=usage.window
            )
            for n in nodes
        ]
        await self._answer(req, metrics.NODE_METRICS, items, name)

    async def _pods(self, req: Request, namespace: str | None, name: str | None) -> None:
        pods = self._listed("Pod", namespace, req, name)
        items = pod_metrics_items(pods, await self.collector.usage())
        await self._answer(req, metrics.POD_METRICS, items, name)

    async def _answer(self, req: Request, rt: Any, items: list[dict[str, Any]], name: str | None) -> None:
        if name is None:
            await send_json(req.send, 200, metrics.metrics_list(rt, items))
        elif items:
            await send_json(req.send, 200, items[0])
        else:
            raise NotFound(f'{rt.kind.lower()}.{metrics.GROUP} "{name}" not found', name=name,
                           kind=rt.kind.lower(), group=metrics.GROUP)
