"""The client interface every controller, node agent and the dashboard use.

Owns: the typed contracts (`Client`, and `MetricsClient` for the resource metrics API). Objects are
JSON dicts; callers never mutate what they get from a cache — copy first (objects.deep_copy).
Must not import: apiserver, reconcilers, node, net, cli.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from orchestra.api.registry import ResourceType
from orchestra.objects import Obj

WatchEvent = tuple[str, Obj]  # ("ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR", object)


class Client(Protocol):
    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj: ...

    async def list(self, rt: ResourceType, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None) -> tuple[list[Obj], str]:
        """Items and the list's resourceVersion (start a watch from it)."""
        ...

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Kubernetes watch semantics; an ("ERROR", Status) event with code 410 means re-list."""
        ...

    async def create(self, rt: ResourceType, namespace: str | None, obj: Obj) -> Obj: ...

    async def update(self, rt: ResourceType, obj: Obj) -> Obj:
        """PUT with the object's metadata.resourceVersion: raises Conflict when it is stale."""
        ...

    async def update_status(self, rt: ResourceType, obj: Obj) -> Obj: ...

    async def patch(self, rt: ResourceType, namespace: str | None, name: str, patch: Any, *,
                    patch_type: str = "application/merge-patch+json", subresource: str = "") -> Obj: ...

    async def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        uid: str | None = None,
    ) -> Obj | None:
        """Returns the object if it still exists (finalizers, graceful deletion), else None. NotFound
        raises."""
        ...

    async def get_scale(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        """GET <resource>/scale: the autoscaling/v1 Scale (spec.replicas, status.replicas and selector)."""
        ...

    async def update_scale(self, rt: ResourceType, scale: Obj) -> Obj:
        """PUT <resource>/scale with the Scale's metadata.resourceVersion: raises Conflict when stale."""
        ...

    async def bind(self, namespace: str, name: str, node_name: str) -> None: ...

    async def finalize_namespace(self, obj: Obj) -> Obj:
        """PUT namespaces/{name}/finalize: only spec.finalizers changes."""
        ...


class MetricsClient(Protocol):
    """The resource metrics API (metrics.k8s.io/v1beta1), what kube's HPA controller reads through
    its resource metrics client: LocalMetricsClient in process, HttpMetricsClient over HTTP."""

    async def pod_metrics(self, namespace: str, label_selector: str = "") -> list[Obj]:
        """The PodMetrics a LIST returns: the namespace's matching pods that are Running and measured."""
        ...
