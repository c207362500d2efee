"""The API server's streaming pod subresources: pods/log, pods/exec, pods/attach, pods/portforward.

Owns: `PodStreamsHandler(locator)`, the `PodStreams` provider that `ApiServer` calls with the route
and the pod already read. What is served, and how, is streaming/pods.py's (shared with the node's
kubelet API); the locator the app hands in says where each pod's containers are: a runtime in this
process, or another node's kubelet API (apiserver/kubelet/).
Must not import: cli, reconcilers, node; from runtime only the `base` contract.
"""

from __future__ import annotations

from typing import Any

from orchestra.apiserver.http import Request
from orchestra.apiserver.routes import Route
from orchestra.streaming.pods import ContainerLocator as ContainerLocator  # (re-exported: the app's seam)
from orchestra.streaming.pods import PodStreams


class PodStreamsHandler(PodStreams):
    """`PodStreams` for ApiServer: `PodStreamsHandler(locator)`."""

    async def handle(self, req: Request, route: Route, pod: dict[str, Any]) -> None:
        await self.serve(req, route.subresource, pod)
