"""The client interface every controller, node agent and the dashboard use.

Owns: the typed contract (`Client` Protocol). Objects are JSON dicts; callers never mutate what
they get from a cache — copy first (objects.deep_copy).
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

    async def bind(self, namespace: str, name: str, node_name: str) -> None: ...

    async def finalize_namespace(self, obj: Obj) -> Obj:
        """PUT namespaces/{name}/finalize: only spec.finalizers changes."""
        ...
