"""Informers that follow the custom kinds CustomResourceDefinitions add and remove at run time.

Owns `CustomKindInformers`, for a controller that watches every kind of the cluster (the garbage
collector, the resourcequota controller): one informer per custom kind served now (a resource of
the registry's `types` with a `CustomKind`: its preferred version), built by the controller's
`make(rt)` (transform, indexes, handlers) and started in `run()`'s own nursery; a kind no longer
served, or served differently (another preferred version, another CRD of that name), has its
informer cancelled (`removed`), then a new one started (`added`). It re-reads the registry
whenever `kinds_changed` is called — the controller adds it as a handler of its
CustomResourceDefinition informer: the API core updates the registry before a CRD write returns,
so the registry is current by the time the event arrives.
Its informers are not the controller's shared ones: `Controller.run` neither starts nor counts them.
Must not import: reconcilers, node, net, apiserver, app, cli.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from orchestra.api.registry import Registry, ResourceType
from orchestra.controller.informer import Informer

Kind = Callable[[ResourceType, Informer], None]


def _nothing(_rt: ResourceType, _inf: Informer) -> None:
    """No bookkeeping for a kind that comes or goes."""


class CustomKindInformers:
    def __init__(self, registry: Registry, make: Callable[[ResourceType], Informer], *,
                 wanted: Callable[[ResourceType], bool] = lambda _rt: True,
                 added: Kind = _nothing, removed: Kind = _nothing) -> None:
        self.registry = registry
        self.make = make
        self.wanted = wanted
        self.added = added
        self.removed = removed
        self.running: dict[tuple[str, str], tuple[Informer, trio.CancelScope]] = {}  # (group, plural)
        self._changed = trio.Event()

    def kinds_changed(self, *_event: Any) -> None:
        """An informer handler (event type, old, new): the custom kinds may have changed."""
        self._changed.set()

    def served(self) -> dict[tuple[str, str], ResourceType]:
        return {(rt.group, rt.plural): rt for rt in self.registry.types
                if rt.custom is not None and self.wanted(rt)}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start an informer (synced) for every custom kind served now, report started, then follow
        the registry until cancelled. A run after a failure starts from nothing: the informers of the
        previous run ended with its nursery."""
        for inf, _ in self.running.values():
            self.removed(inf.rt, inf)
        self.running.clear()
        async with trio.open_nursery() as nursery:
            await self.sync(nursery)
            task_status.started()
            while True:
                await self._changed.wait()
                self._changed = trio.Event()
                await self.sync(nursery)

    async def sync(self, nursery: trio.Nursery) -> None:
        served = self.served()
        for key, (inf, scope) in list(self.running.items()):
            now = served.get(key)
            if now is None or now != inf.rt or now.custom != inf.rt.custom:
                scope.cancel()
                del self.running[key]
                self.removed(inf.rt, inf)
        for key, rt in served.items():
            if key in self.running:
                continue
            inf = self.make(rt)
            self.running[key] = (inf, await nursery.start(_run_scoped, inf))
            self.added(rt, inf)


async def _run_scoped(inf: Informer, *, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
    """Run `inf` under a cancel scope of its own; started (with the scope) once it has synced."""
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(inf.run)
            task_status.started(scope)
