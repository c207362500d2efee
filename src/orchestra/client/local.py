"""LocalClient: the Client interface in-process, straight onto the API core (no HTTP, same rules).

Must not import: apiserver, reconcilers, node, net, cli.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import orjson

from orchestra.api.machinery.selectors import parse_field_selector, parse_label_selector
from orchestra.api.registry import ResourceType
from orchestra.api.request.core import ApiCore
from orchestra.api.request.deletion import DeleteOptions
from orchestra.api.request.types import WriteOptions
from orchestra.api.request.watch import watch
from orchestra.client.base import WatchEvent
from orchestra.objects import Obj


class LocalClient:
    def __init__(self, core: ApiCore, *, field_manager: str = "orchestra-controller") -> None:
        self.core = core
        self.registry = core.registry
        self.opts = WriteOptions(field_manager=field_manager, field_validation="Ignore")

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        return self.core.get(rt, namespace, name)

    async def list(self, rt: ResourceType, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None) -> tuple[list[Obj], str]:
        res = self.core.list(rt, namespace, label_selector=parse_label_selector(label_selector),
                             field_selector=parse_field_selector(field_selector, rt.kind, rt.group))
        return res.items, res.resource_version

    async def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        stream = watch(self.core, rt, namespace, resource_version=resource_version,
                       label_selector=parse_label_selector(label_selector),
                       field_selector=parse_field_selector(field_selector, rt.kind, rt.group))
        async with aclosing(stream):  # type: ignore[type-var]
            async for ev in stream:
                yield ev

    async def create(self, rt: ResourceType, namespace: str | None, obj: Obj) -> Obj:
        return (await self.core.create(rt, namespace, obj, self.opts)).obj

    async def update(self, rt: ResourceType, obj: Obj) -> Obj:
        m = obj["metadata"]
        return (await self.core.update(rt, m.get("namespace"), m["name"], obj, self.opts)).obj

    async def update_status(self, rt: ResourceType, obj: Obj) -> Obj:
        m = obj["metadata"]
        return (
            await self.core.update(rt, m.get("namespace"), m["name"], obj, self.opts, subresource="status")
        ).obj

    async def patch(self, rt: ResourceType, namespace: str | None, name: str, patch: Any, *,
                    patch_type: str = "application/merge-patch+json", subresource: str = "") -> Obj:
        body = patch if isinstance(patch, bytes) else orjson.dumps(patch)
        return (
            await self.core.patch(rt, namespace, name, patch_type, body, self.opts, subresource=subresource)
        ).obj

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
        obj, gone = await self.core.delete(rt, namespace, name, DeleteOptions(
            propagation_policy=propagation_policy, grace_period_seconds=grace_period_seconds, uid=uid))
        return None if gone else obj

    async def bind(self, namespace: str, name: str, node_name: str) -> None:
        await self.core.bind(namespace, name, {"target": {"kind": "Node", "name": node_name}})

    async def finalize_namespace(self, obj: Obj) -> Obj:
        rt = self.kind("Namespace")
        return (
            await self.core.update(rt, None, obj["metadata"]["name"], obj, self.opts, subresource="finalize")
        ).obj

    def kind(self, kind: str) -> ResourceType:
        rt = self.registry.by_kind(kind)
        if rt is None:
            raise KeyError(kind)
        return rt


