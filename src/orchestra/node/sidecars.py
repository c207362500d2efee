"""Native sidecars (restartable init containers: `initContainers[].restartPolicy: Always`, GA in 1.29),
the kubelet's rules as pure functions.

Owns: what makes an init container a sidecar, when a pod's regular containers are all done for good
(kubelet's computePodActions `keepCount == 0`: the pod then stops its sidecars and completes, so a Job's
pod succeeds), and the termination order of kubelet 1.29+ (every app container at once, then the
sidecars one at a time in reverse spec order: each waits for the containers it must outlive).
The pod worker starts sidecars in order during initialization and keeps them running afterwards.
Must not import: the client, podman, trio.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from orchestra.node.context import should_restart
from orchestra.objects import Obj
from orchestra.runtime.base import ContainerState, ContainerStatus


def is_sidecar(container: Obj) -> bool:
    return container.get("restartPolicy") == "Always"


def sidecar_names(spec: Obj) -> list[str]:
    return [str(c.get("name")) for c in spec.get("initContainers") or [] if is_sidecar(c)]


def regular_done(spec: Obj, observed: Mapping[str, Sequence[ContainerStatus]]) -> bool:
    """Every regular container has exited and the pod's restartPolicy restarts none of them."""
    containers = spec.get("containers") or []
    policy = spec.get("restartPolicy", "Always")
    for c in containers:
        instances = observed.get(c.get("name", "")) or []
        cur = instances[0] if instances else None
        if cur is None or cur.state != ContainerState.EXITED or should_restart(policy, cur.exit_code):
            return False
    return bool(containers)


def stop_after(spec: Obj, running: Iterable[str]) -> dict[str, list[str]]:
    """For each running container, the running containers whose stop it must wait for first."""
    running = list(running)
    order = sidecar_names(spec)
    others = [n for n in running if n not in order]
    waits: dict[str, list[str]] = {n: [] for n in others}
    for i, name in enumerate(order):
        if name in running:
            waits[name] = others + [n for n in order[i + 1:] if n in running]
    return waits
