"""The pod worker's side of the pod status: a ContainerView of each container, from the runtime's
instances and what the worker decided.

Owns: `ContainerViews`, mixed into the PodWorker: `_view` (one init or app container: current and
previous instance, restart count, the waiting reason the worker chose, started/ready from the
probes, or from the absence of a startup/readiness probe) and `_status` (the status document from
the init, app and ephemeral containers' views: node/status.py's build_status).
Must not import: podman, reconcilers, apiserver, the pod worker (it mixes this in).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestra.node.context import attempt_of
from orchestra.node.sidecars import is_sidecar
from orchestra.node.status import ContainerView, PodFacts, build_status
from orchestra.objects import Obj, now_rfc3339
from orchestra.runtime.base import ContainerState, ContainerStatus

if TYPE_CHECKING:
    from orchestra.node.probes import ProbeManager


class ContainerViews:
    if TYPE_CHECKING:  # provided by the PodWorker (and its EphemeralContainers mixin)
        probes: ProbeManager | None
        waiting: dict[str, tuple[str, str]]
        image_ids: dict[str, str]

        def _initial_attempt(self, name: str) -> int: ...
        def _latest(self) -> Obj: ...
        def _ephemeral_views(self, spec: Obj, observed: dict[str, list[ContainerStatus]]
                             ) -> list[ContainerView]: ...

    def _view(self, c: Obj, instances: list[ContainerStatus], *, init: bool) -> ContainerView:
        name = c["name"]
        cur = instances[0] if instances else None
        prev = instances[1] if len(instances) > 1 else None
        running = cur is not None and cur.state == ContainerState.RUNNING
        probed = not init or is_sidecar(c)
        health = self.probes.get(name, cur.id) if (self.probes and cur is not None and probed) else None
        started = running and (health.started if health else not c.get("startupProbe"))
        ready = running and (health.ready if health else not c.get("readinessProbe"))
        restarts = attempt_of(cur) if cur is not None else max(self._initial_attempt(name) - 1, 0)
        return ContainerView(name=name, image=c.get("image", ""), current=cur, previous=prev,
                             restart_count=restarts, waiting=self.waiting.get(name), ready=ready and started,
                             started=started, image_id=self.image_ids.get(name, ""),
                             sidecar=init and is_sidecar(c))

    def _status(self, pod: Obj, observed: dict[str, list[ContainerStatus]], facts: PodFacts) -> Obj:
        spec = pod.get("spec") or {}
        init_views = [self._view(c, observed.get(c["name"], []), init=True)
                      for c in spec.get("initContainers") or []]
        views = [self._view(c, observed.get(c["name"], []), init=False) for c in spec.get("containers") or []]
        return build_status(self._latest(), facts, init_views, views, now_rfc3339(),
                            self._ephemeral_views(spec, observed))
