"""LocalClient: the Client interface in-process, straight onto the API core (no HTTP, same rules);
LocalMetricsClient: the MetricsClient interface in process.

Must not import: apiserver, reconcilers, node, net, cli.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import orjson

from orchestra.api.machinery.selectors import parse_label_selector
from orchestra.api.metrics import UsageSource, pod_metrics_items
from orchestra.api.registry import ResourceType
from orchestra.api.request.core import ApiCore
from orchestra.api.request.custom import field_selector as custom_field_selector
from orchestra.api.request.deletion import DeleteOptions
from orchestra.api.request.tokenrequest import create_token
from orchestra.api.request.types import WriteOptions
from orchestra.api.request.watch import watch
from orchestra.client.base import WatchEvent
from orchestra.objects import Obj


class LocalClient:
    def __init__(self, core: ApiCore, *, field_manager: str = "orchestra-controller",
                 informer_scope: object = None) -> None:
        self.core = core
        self.informer_scope = informer_scope  # see SharedInformers.of: None shares with the whole core
        self.registry = core.registry
        self.opts = WriteOptions(field_manager=field_manager, field_validation="Ignore")

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        return self.core.get(rt, namespace, name)

    async def list(self, rt: ResourceType, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None) -> tuple[list[Obj], str]:
        res = self.core.list(rt, namespace, label_selector=parse_label_selector(label_selector),
                             field_selector=custom_field_selector(rt, field_selector))
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
                       field_selector=custom_field_selector(rt, field_selector))
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

    async def get_scale(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        return self.core.get_scale(rt, namespace, name)

    async def update_scale(self, rt: ResourceType, scale: Obj) -> Obj:
        m = scale["metadata"]
        return await self.core.update_scale(rt, m.get("namespace"), m["name"], scale, None, self.opts)

    async def bind(self, namespace: str, name: str, node_name: str) -> None:
        await self.core.bind(namespace, name, {"target": {"kind": "Node", "name": node_name}})

    async def finalize_namespace(self, obj: Obj) -> Obj:
        rt = self.kind("Namespace")
        return (
            await self.core.update(rt, None, obj["metadata"]["name"], obj, self.opts, subresource="finalize")
        ).obj

    async def create_token(self, namespace: str, name: str, request: Obj) -> Obj:
        answered, _ = await create_token(self.core, namespace, name, request)
        return answered

    def kind(self, kind: str) -> ResourceType:
        rt = self.registry.by_kind(kind)
        if rt is None:
            raise KeyError(kind)
        return rt


class LocalMetricsClient:
    """The resource metrics API in process: the API core's pods and the usage source the API server
    answers metrics.k8s.io from, through the same code (api/metrics.py)."""

    def __init__(self, core: ApiCore, source: UsageSource) -> None:
        self.core = core
        self.source = source

    async def pod_metrics(self, namespace: str, label_selector: str = "") -> list[Obj]:
        rt = self.core.registry.by_kind("Pod")
        assert rt is not None
        selector = parse_label_selector(label_selector or None)
        pods = self.core.list(rt, namespace, label_selector=selector).items
        return pod_metrics_items(pods, await self.source.usage())
