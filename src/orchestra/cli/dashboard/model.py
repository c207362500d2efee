"""The dashboard's data: one Informer per kind it shows, and a change signal for the renderer.

Owns: which kinds are watched (`KINDS`), starting their informers, the `generation` counter that
moves on every cache change (views key their row caches on it), and `wait_changed()`, which wakes
the render loop. Nothing here polls: every update arrives through an informer's watch.
Must not import: the server side (apiserver, app); rich (rendering lives in views.py).
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from orchestra.api.registry import DEFAULT_REGISTRY, ResourceType
from orchestra.client.base import Client
from orchestra.controller.informer import Informer
from orchestra.objects import Obj

KINDS = ("Namespace", "Node", "Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "Service",
         "EndpointSlice", "Event", "HorizontalPodAutoscaler", "Ingress")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def _by_node(obj: Obj) -> list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


def _by_service(obj: Obj) -> list[str]:
    m = obj.get("metadata") or {}
    svc = (m.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{m.get('namespace')}/{svc}"] if svc else []


def _by_involved(obj: Obj) -> list[str]:
    ref = obj.get("involvedObject") or {}
    ns = ref.get("namespace") or ""
    return [f"{ref.get('kind')}/{ns}/{ref.get('name')}"]


def involved_key(kind: str, namespace: str | None, name: str) -> str:
    """The `involved` index value for events about one object."""
    return f"{kind}/{namespace or ''}/{name}"


class Model:
    """Informer caches for every kind the dashboard shows; read-only for everyone but the informers."""

    def __init__(self, client: Client, *, kinds: tuple[str, ...] = KINDS) -> None:
        self.client = client
        registry = getattr(client, "registry", DEFAULT_REGISTRY)
        self.informers: dict[str, Informer] = {}
        for kind in kinds:
            rt = registry.by_kind(kind)
            assert rt is not None, kind
            self.informers[kind] = Informer(client, rt, indexers=_INDEXERS.get(kind))
        self.generation = 0
        self._changed = trio.Event()
        self._listeners: list[Callable[[], None]] = []
        for informer in self.informers.values():
            informer.add_handler(self._on_event)

    def rt(self, kind: str) -> ResourceType:
        return self.informers[kind].rt

    def _on_event(self, _type: str, _old: Obj | None, _new: Obj | None) -> None:
        self.generation += 1
        changed, self._changed = self._changed, trio.Event()
        changed.set()
        for listener in self._listeners:
            listener()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener()` (synchronously, cheaply) after every cache change."""
        self._listeners.append(listener)

    async def wait_changed(self) -> None:
        await self._changed.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run every informer; `started()` at once, so the screen shows while the lists load."""
        async with trio.open_nursery() as nursery:
            for informer in self.informers.values():
                nursery.start_soon(informer.run)
            task_status.started()

    async def wait_synced(self) -> None:
        for informer in self.informers.values():
            await informer.wait_synced()

    @property
    def synced(self) -> bool:
        return all(i.has_synced for i in self.informers.values())

    # --- reads -----------------------------------------------------------------------------------

    def items(self, kind: str) -> list[Obj]:
        return self.informers[kind].list()

    def count(self, kind: str) -> int:
        return len(self.informers[kind].keys())

    def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        return self.informers[kind].get(namespace, name)

    def pods_on(self, node: str) -> list[Obj]:
        return self.informers["Pod"].by_index("node", node)

    def slices_of(self, namespace: str, service: str) -> list[Obj]:
        return self.informers["EndpointSlice"].by_index("service", f"{namespace}/{service}")

    def events_for(self, kind: str, namespace: str | None, name: str) -> list[Obj]:
        """Events about one object, oldest first (as `kubectl describe` lists them)."""
        events = self.informers["Event"].by_index("involved", involved_key(kind, namespace, name))
        return sorted(events, key=event_time)

    def namespaces(self) -> list[str]:
        return sorted(str((n.get("metadata") or {}).get("name")) for n in self.items("Namespace"))


def event_time(event: Obj) -> str:
    """When an event last happened (RFC 3339; these sort as strings when in the same zone)."""
    series = event.get("series") or {}
    return str(event.get("lastTimestamp") or series.get("lastObservedTime") or event.get("eventTime")
               or event.get("firstTimestamp") or (event.get("metadata") or {}).get("creationTimestamp") or "")


_INDEXERS = {
    "Pod": {"node": _by_node},
    "EndpointSlice": {"service": _by_service},
    "Event": {"involved": _by_involved},
}
