"""Ephemeral containers (kubectl debug): the kubelet's half — started in the running pod, never
restarted, reported in status.ephemeralContainerStatuses.

Owns: `EphemeralContainers`, mixed into the PodWorker: for each spec.ephemeralContainers entry
without an instance, pulling its image (with the worker's ErrImagePull/ImagePullBackOff handling)
and creating and starting it once in the pod's sandbox, labelled as ephemeral; with
`targetContainerName`, in that container's process namespace (the runtime's `pid_namespace_of`:
Podman's `pidns: container:<id>`), waiting while that container has no running instance; and the
ContainerViews its status is built from (never ready, restart count 0). An exited ephemeral
container stays exited (kubelet never restarts them); stopping them is the pod's termination,
like every other container's.
Must not import: podman, reconcilers, apiserver, the pod worker (it mixes this in).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import trio

from orchestra.controller.events import NORMAL
from orchestra.node.env import ConfigError
from orchestra.node.status import ContainerView
from orchestra.objects import Obj
from orchestra.runtime.base import ContainerSpec, ContainerState, ContainerStatus

if TYPE_CHECKING:
    from orchestra.node.context import AgentContext

LABEL_EPHEMERAL = "orchestra.io/ephemeral-container"
RETRY = 1.0  # seconds: a target container not running yet is looked at again this often
Observed = dict[str, list[ContainerStatus]]


class EphemeralContainers:
    if TYPE_CHECKING:  # provided by the PodWorker
        ctx: AgentContext
        sandbox_id: str | None
        waiting: dict[str, tuple[str, str]]
        image_ids: dict[str, str]

        async def _pull(self, c: Obj) -> str | None: ...
        async def _container_spec(self, c: Obj, attempt: int, *, init: bool) -> ContainerSpec: ...
        async def _start(self, c: Obj, container_id: str, *, init: bool) -> bool: ...
        def _event(self, type_: str, reason: str, message: str) -> None: ...
        def _schedule(self, at: float) -> None: ...

    async def _step_ephemeral(self, spec: Obj, observed: Observed) -> None:
        """Start the ephemeral containers that have never run (one attempt each, as kubelet makes)."""
        for c in spec.get("ephemeralContainers") or []:
            if isinstance(c, dict) and not observed.get(c.get("name", "")):
                await self._start_ephemeral(c, observed)

    async def _start_ephemeral(self, c: Obj, observed: Observed) -> None:
        name = c["name"]
        target_id = ""
        target = c.get("targetContainerName")
        if target:
            running = [i for i in observed.get(target, []) if i.state == ContainerState.RUNNING]
            if not running:
                self.waiting[name] = ("ContainerCreating", f'waiting for container "{target}" to run')
                self._schedule(trio.current_time() + RETRY)
                return
            target_id = running[0].id
        if await self._pull(c) is None:
            return
        try:
            container = await self._container_spec(c, 0, init=False)
        except ConfigError as exc:
            self.waiting[name] = ("CreateContainerConfigError", str(exc))
            return
        container = attrs.evolve(container, labels={**container.labels, LABEL_EPHEMERAL: "true"},
                                 pid_namespace_of=target_id)
        assert self.sandbox_id is not None
        container_id = await self.ctx.runtime.create_container(self.sandbox_id, container)
        self._event(NORMAL, "Created", f"Created container {name}")
        await self._start(c, container_id, init=True)  # init=True: no probes (an ephemeral has none)

    def _ephemeral_views(self, spec: Obj, observed: Observed) -> list[ContainerView]:
        """The status views of the pod's ephemeral containers (their only instance each)."""
        views = []
        for c in spec.get("ephemeralContainers") or []:
            if not isinstance(c, dict):
                continue
            name = c.get("name", "")
            instances = observed.get(name, [])
            current = instances[0] if instances else None
            running = current is not None and current.state == ContainerState.RUNNING
            views.append(ContainerView(name=name, image=c.get("image", ""), current=current,
                                       waiting=None if running else self.waiting.get(name),
                                       started=running, image_id=self.image_ids.get(name, "")))
        return views
