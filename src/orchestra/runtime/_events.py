"""Podman's event stream as the `Runtime` contract's `RuntimeEvent`s.

Owns: the mapping of libpod event dicts (`Type`, `Action`, `Actor.Attributes`) to `RuntimeEvent`, the
label filter of `Runtime.events(labels)`, and the infra container -> pod id cache infra events need
(libpod's `podId` attribute is missing on some of them, so the pod is looked up once by inspect).
Must not import: podman (podman-py; `podman.py` is its only importer), anything above runtime.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from orchestra.runtime.base import LABEL_CONTAINER_NAME, LABEL_SANDBOX_ID, NotFound, RuntimeEvent

_EVENT_TYPES: dict[str, Any] = {
    "create": "created",
    "start": "started",
    "died": "died",
    "oom": "oom",
    "remove": "removed",
}


class EventTranslator:
    """Turns libpod event dicts into `RuntimeEvent`s; `inspect` is the runtime's container inspect."""

    def __init__(self, inspect: Callable[[str], Awaitable[dict[str, Any]]]):
        self._inspect = inspect
        self._infra_pods: dict[str, str] = {}  # infra container id -> pod id

    def events(self, raw: AsyncIterator[dict[str, Any]], wanted: Mapping[str, str]) -> Events:
        return Events(self, raw, wanted)

    async def translate(self, item: Mapping[str, Any]) -> RuntimeEvent | None:
        kind = _EVENT_TYPES.get(item.get("Action", ""))
        if item.get("Type") != "container" or kind is None:
            return None
        actor = item.get("Actor") or {}
        container_id = actor.get("ID", "")
        attributes = dict(actor.get("Attributes") or {})
        pod_id = attributes.pop("podId", "")
        exit_code = attributes.pop("containerExitCode", None)
        for key in ("image", "name"):
            attributes.pop(key, None)
        infra = LABEL_CONTAINER_NAME not in attributes
        if infra:
            pod_id = pod_id or self._infra_pods.get(container_id) or await self._pod_of(container_id)
            self._infra_pods[container_id] = pod_id
            if kind == "removed":
                self._infra_pods.pop(container_id, None)
        sandbox_id = attributes.get(LABEL_SANDBOX_ID) or pod_id
        return RuntimeEvent(
            type=kind,
            container_id=container_id,
            sandbox_id=sandbox_id,
            infra=infra,
            exit_code=int(exit_code) if kind == "died" and exit_code is not None else None,
            labels=attributes,
        )

    async def _pod_of(self, container_id: str) -> str:
        try:
            return str((await self._inspect(container_id)).get("Pod", ""))
        except NotFound:  # already gone; the event still counts
            return ""


class Events:
    """RuntimeEvents from libpod event dicts (an iterator class: nothing to close if abandoned)."""

    def __init__(self, translator: EventTranslator, raw: AsyncIterator[dict[str, Any]],
                 wanted: Mapping[str, str]):
        self._translator = translator
        self._raw = raw
        self._wanted = wanted

    def __aiter__(self) -> Events:
        return self

    async def __anext__(self) -> RuntimeEvent:
        while True:
            event = await self._translator.translate(await self._raw.__anext__())
            if event is not None and all(event.labels.get(k) == v for k, v in self._wanted.items()):
                return event
