"""Ephemeral containers (kubectl debug): the kubelet's half — started in the running pod, never
restarted, reported in status.ephemeralContainerStatuses.

Owns: for each spec.ephemeralContainers entry without an instance, pulling its image (with the
pod worker's ErrImagePull/ImagePullBackOff handling) and creating and starting it once in the pod's
sandbox, labelled as ephemeral; with `targetContainerName`, in that container's process namespace
(the runtime's `pid_namespace_of`: Podman's `pidns: container:<id>`), waiting while that container
has no running instance; and the ContainerViews its status is built from (never ready, restart
count 0). An exited ephemeral container stays exited (kubelet never restarts them); stopping them
is the pod's termination, like every other container.
Must not import: podman, reconcilers, apiserver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import trio

from orchestra.controller.events import NORMAL
from orchestra.node.env import ConfigError
from orchestra.node.status import ContainerView
from orchestra.objects import Obj
from orchestra.runtime.base import ContainerState, ContainerStatus

if TYPE_CHECKING:
    from orchestra.node.pod_worker import PodWorker

LABEL_EPHEMERAL = "orchestra.io/ephemeral-container"
RETRY = 1.0  # seconds: a target container not running yet is looked at again this often


async def step_ephemeral(worker: PodWorker, spec: Obj, observed: dict[str, list[ContainerStatus]]) -> None:
    """Start the ephemeral containers that have never run (one attempt each, as kubelet makes)."""
    for c in spec.get("ephemeralContainers") or []:
        if not isinstance(c, dict) or observed.get(c.get("name", "")):
            continue
        await _start_one(worker, c, observed)


async def _start_one(worker: PodWorker, c: Obj, observed: dict[str, list[ContainerStatus]]) -> None:
    name = c["name"]
    target_id = ""
    target = c.get("targetContainerName")
    if target:
        running = [i for i in observed.get(target, []) if i.state == ContainerState.RUNNING]
        if not running:
            worker.waiting[name] = ("ContainerCreating", f'waiting for container "{target}" to run')
            worker._schedule(trio.current_time() + RETRY)
            return
        target_id = running[0].id
    if await worker._pull(c) is None:
        return
    try:
        container = await worker._container_spec(c, 0, init=False)
    except ConfigError as exc:
        worker.waiting[name] = ("CreateContainerConfigError", str(exc))
        return
    container = attrs.evolve(container, labels={**container.labels, LABEL_EPHEMERAL: "true"},
                             pid_namespace_of=target_id)
    assert worker.sandbox_id is not None
    container_id = await worker.ctx.runtime.create_container(worker.sandbox_id, container)
    worker._event(NORMAL, "Created", f"Created container {name}")
    await worker._start(c, container_id, init=True)  # init=True: no probes (an ephemeral has none)


def ephemeral_views(worker: PodWorker, spec: Obj,
                    observed: dict[str, list[ContainerStatus]]) -> list[ContainerView]:
    """The status views of the pod's ephemeral containers (their only instance each)."""
    views = []
    for c in spec.get("ephemeralContainers") or []:
        if not isinstance(c, dict):
            continue
        instances = observed.get(c.get("name", ""), [])
        current = instances[0] if instances else None
        running = current is not None and current.state == ContainerState.RUNNING
        views.append(ContainerView(name=c.get("name", ""), image=c.get("image", ""), current=current,
                                   waiting=None if running else worker.waiting.get(c.get("name", "")),
                                   started=running, image_id=worker.image_ids.get(c.get("name", ""), "")))
    return views
