"""One pod worker per pod bound to the node: a trio task that converges the runtime to the pod.

Owns: the level-based sync of one pod — sandbox, volumes, init containers in order (sidecars started
in order and kept running: sidecars.py), app containers, restarts with CrashLoopBackOff, image pulls
with ErrImagePull/ImagePullBackOff, liveness/startup kills, activeDeadlineSeconds, the terminal
phases (sidecars stopped once the regular containers are done), graceful termination (hooks.py:
preStop, SIGTERM, SIGKILL after the grace period; app containers first, then sidecars in reverse
order; sandbox removal, the final delete with grace 0) — and writing the pod status when it changed
(built from the containers' views: container_views.py; ephemeral containers: ephemeral.py).
Every sync re-reads the runtime (containers labelled with the pod uid, the newest
`orchestra.io/attempt` is the current instance, the one before it the previous instance kept for
`logs --previous`), so a restarted agent simply carries on. The worker is woken by pod changes (not
its own status writes), runtime events, probe results and timers; nothing here polls.
Must not import: podman, reconcilers, apiserver.
"""

from __future__ import annotations

import logging
import math
import random
from typing import Any

import trio

from orchestra.api.errors import Conflict, NotFound
from orchestra.controller.events import NORMAL, WARNING
from orchestra.node.container_views import ContainerViews
from orchestra.node.context import (
    AgentContext,
    attempt_of,
    expected_failure,
    fetch_sources,
    pod_ref,
    resource_version,
    should_restart,
    wake_view,
)
from orchestra.node.env import ConfigError, NodeFacts, Sources, expand_command, resolve_env
from orchestra.node.ephemeral import EphemeralContainers
from orchestra.node.hooks import grace_for, run_hook, stop_container
from orchestra.node.probes import ProbeManager
from orchestra.node.sandbox import LABEL_ATTEMPT, LABEL_INIT, LABEL_NODE, resources_of, sandbox_spec
from orchestra.node.sidecars import is_sidecar, regular_done, stop_after
from orchestra.node.status import PodFacts
from orchestra.node.volumes import PodVolume, mounts_for
from orchestra.objects import Obj, go_duration_seconds, now_rfc3339
from orchestra.runtime.base import (
    LABEL_POD_UID,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    ImagePullError,
    InvalidState,
    PortMapping,
    PullPolicy,
    RuntimeFailure,
    SandboxState,
)
from orchestra.runtime.base import NotFound as RuntimeNotFound

log = logging.getLogger("orchestra.node.pod_worker")

ERROR_RETRY = (1.0, 30.0)
TERMINAL = ("Succeeded", "Failed")


class PodWorker(EphemeralContainers, ContainerViews):
    def __init__(self, ctx: AgentContext, pod: Obj, *, sandbox_id: str | None = None) -> None:
        m = pod["metadata"]
        self.ctx = ctx
        self.uid: str = m["uid"]
        self.namespace: str = m.get("namespace", "default")
        self.name: str = m["name"]
        self.pod: Obj = pod
        self.deleted = False
        self.sandbox_id = sandbox_id
        self.pod_ip = ""
        self.terminal = (pod.get("status") or {}).get("phase") in TERMINAL
        self.done = trio.Event()
        self.exit_seen: dict[str, float] = {}  # container id -> trio time its exit was noticed
        self.waiting: dict[str, tuple[str, str]] = {}
        self.image_ids: dict[str, str] = {}
        self.pull_retry: dict[str, float] = {}
        self.volumes: dict[str, PodVolume] = {}
        self._volumes_due = -math.inf
        self._written: Obj | None = None
        self._wake = trio.Event()
        self._deadline = math.inf
        self._errors = 0
        self._reported: set[tuple[str, str]] = set()  # (reason, id) pairs already evented for this back-off
        self._start_trio: float | None = None
        self._stopped_sandbox = False
        self.probes: ProbeManager | None = None

    # --- waking ---------------------------------------------------------------------------------

    def update(self, pod: Obj, *, deleted: bool = False) -> None:
        old = self.pod
        self.pod = pod
        if self._written is not None and resource_version(pod) >= resource_version(self._written):
            self._written = None  # the shared cache has caught up: do not keep a private copy per pod
        if deleted or wake_view(old) != wake_view(pod):
            self.deleted = self.deleted or deleted
            self.wake()

    def wake(self) -> None:
        self._wake.set()

    def _schedule(self, at: float) -> None:
        self._deadline = min(self._deadline, at)

    def container_exited(self, container_id: str) -> None:
        self.exit_seen.setdefault(container_id, trio.current_time())
        self.wake()

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self.probes = ProbeManager(self.ctx.prober, nursery, self.wake, self._probe_failed)
                await self._loop()
                self.probes.stop_all()
        finally:
            self.done.set()

    async def _loop(self) -> None:
        while True:
            wake = self._wake = trio.Event()
            self._deadline = trio.current_time() + self.ctx.resync_seconds * random.uniform(0.9, 1.1)
            self.ctx.counters.syncs += 1
            try:
                if await self._sync():
                    return
                self._errors = 0
            except Exception as exc:  # retried with back-off; level-based. A bug or a pod the sync cannot
                self._errors += 1  # digest is contained to this pod the same way, with its traceback
                self.ctx.counters.sync_errors += 1
                self.ctx.counters.sync_crashes += not (expected := expected_failure(exc))
                log.log(logging.WARNING if expected else logging.ERROR, "pod %s/%s: sync failed: %s",
                        self.namespace, self.name, exc, exc_info=not expected and self._errors == 1)
                self._schedule(trio.current_time()
                               + min(ERROR_RETRY[0] * 2 ** (self._errors - 1), ERROR_RETRY[1]))
            with trio.move_on_at(self._deadline):
                await wake.wait()

    async def _sync(self) -> bool:
        """Converge once; True when the pod is gone and the worker is finished."""
        pod = self.pod
        if self.deleted or (pod.get("metadata") or {}).get("deletionTimestamp"):
            await self._terminate()
            return True
        if self._start_trio is None:
            self._start_trio = trio.current_time()
        if self.terminal:
            await self._stop_terminal()
            return False
        facts = await self._converge(pod)
        observed = await self._observe()
        await self._write_status(self._status(pod, observed, facts))
        return False

    async def _converge(self, pod: Obj) -> PodFacts:
        spec = pod.get("spec") or {}
        deadline_facts = await self._check_deadline(spec)
        if deadline_facts is not None:
            return deadline_facts
        observed = await self._observe()
        if not await self._ensure_sandbox():
            return self._facts(False, False, False)
        if not await self._ensure_volumes(pod):
            return self._facts(True, False, False)
        finishing = regular_done(spec, observed)
        initialized, init_failed = await self._step_init(spec, observed, finishing)
        if initialized:
            for c in spec.get("containers") or []:
                await self._step_container(spec, c, observed.get(c["name"], []))
        await self._step_ephemeral(spec, observed)
        if (finishing or init_failed) and spec.get("initContainers"):
            await self._kill_all(grace_for(spec, {}, ""))  # the sidecars, the pod is done (computePodActions)
        return self._facts(True, initialized, init_failed)

    def _facts(self, sandbox: bool, initialized: bool, init_failed: bool, **extra: str) -> PodFacts:
        return PodFacts(sandbox_ready=sandbox and bool(self.pod_ip), pod_ip=self.pod_ip,
                        host_ip=self.ctx.host_ip, start_time=now_rfc3339(), initialized=initialized,
                        init_failed=init_failed, **extra)

    # --- observing ------------------------------------------------------------------------------

    async def _observe(self) -> dict[str, list[ContainerStatus]]:
        """The pod's containers in the runtime by name, newest attempt first."""
        found = await self.ctx.runtime.list_containers({LABEL_POD_UID: self.uid})
        groups: dict[str, list[ContainerStatus]] = {}
        for c in found:
            if self.sandbox_id and c.sandbox_id and c.sandbox_id != self.sandbox_id:
                continue
            groups.setdefault(c.name, []).append(c)
        for instances in groups.values():
            instances.sort(key=attempt_of, reverse=True)
        return groups

    # --- sandbox and volumes --------------------------------------------------------------------

    async def _ensure_sandbox(self) -> bool:
        rt = self.ctx.runtime
        if self.sandbox_id:
            try:
                sandbox = await rt.sandbox_status(self.sandbox_id)
            except RuntimeNotFound:
                sandbox = None
            if sandbox is not None and sandbox.state == SandboxState.CREATED:
                await rt.start_sandbox(self.sandbox_id)
                sandbox = await rt.sandbox_status(self.sandbox_id)
            if sandbox is not None and sandbox.state == SandboxState.READY:
                self.pod_ip = sandbox.ip
                return True
            self._event(NORMAL, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
            await rt.remove_sandbox(self.sandbox_id)
            self.sandbox_id = None
        spec = sandbox_spec(self.pod, node_name=self.ctx.node_name, owner_labels=self.ctx.owner_labels,
                            cluster_dns=self.ctx.cluster_dns,
                            domain=self.ctx.cluster_domain, resolv_conf=self.ctx.resolv_conf)
        try:
            sandbox_id = await rt.create_sandbox(spec)
        except InvalidState:  # a leftover with our name (a crash between create and record): replace it
            for old in await rt.list_sandboxes({LABEL_POD_UID: self.uid}):
                await rt.remove_sandbox(old.id)
            sandbox_id = await rt.create_sandbox(spec)
        self.sandbox_id = sandbox_id
        self.ctx.counters.sandboxes_created += 1
        await rt.start_sandbox(sandbox_id)
        self.pod_ip = (await rt.sandbox_status(sandbox_id)).ip
        return True

    async def _sources(self, pod: Obj) -> Sources:
        return await fetch_sources(self.ctx, pod)

    def node_facts(self) -> NodeFacts:
        a = self.ctx.allocatable
        return NodeFacts(node_name=self.ctx.node_name, host_ip=self.ctx.host_ip, pod_ip=self.pod_ip,
                         allocatable_cpu=a.get("cpu", "1"), allocatable_memory=a.get("memory", "1Gi"))

    async def _ensure_volumes(self, pod: Obj) -> bool:
        """Write the pod's volumes (again every resync, so configMap/secret changes show up)."""
        if not (pod.get("spec") or {}).get("volumes"):
            return True
        now = trio.current_time()
        if now < self._volumes_due:
            self._schedule(self._volumes_due)
            return True
        try:
            self.volumes = await self.ctx.volumes.prepare(pod, await self._sources(pod), self.node_facts())
        except ConfigError as exc:
            self._event(WARNING, "FailedMount", f"MountVolume.SetUp failed: {exc}")
            self._schedule(now + 10)
            return False
        self._volumes_due = min(now + self.ctx.resync_seconds, self.ctx.tokens.due(self.uid))
        self._schedule(self._volumes_due)
        return True

    # --- containers -----------------------------------------------------------------------------

    async def _step_init(self, spec: Obj, observed: dict[str, list[ContainerStatus]],
                         finishing: bool) -> tuple[bool, bool]:
        """(initialized, failed) after advancing the init containers one step; sidecars are started in
        order (the next init container waits until the sidecar has started) and kept running."""
        inits = spec.get("initContainers") or []
        initialized = any(observed.get(c["name"]) for c in spec.get("containers") or [])
        policy = spec.get("restartPolicy", "Always")
        for c in inits:
            instances = observed.get(c["name"], [])
            if is_sidecar(c):
                started = False if finishing else await self._step_container(spec, c, instances, sidecar=True)
                if started or initialized:
                    continue
                return False, False
            if initialized:
                continue
            cur = instances[0] if instances else None
            if cur is not None and cur.state == ContainerState.EXITED and cur.exit_code == 0:
                self.waiting.pop(c["name"], None)
                continue
            if cur is not None and cur.state == ContainerState.RUNNING:
                return False, False
            if cur is not None and cur.state == ContainerState.CREATED:
                await self._start(c, cur.id, init=True)
                return False, False
            if cur is not None:  # failed
                if policy == "Never":
                    self.waiting.pop(c["name"], None)
                    return False, True
                if not self._may_restart(c, cur):
                    return False, False
            await self._run_container(c, instances, init=True)
            return False, False
        return True, False

    async def _step_container(self, spec: Obj, c: Obj, instances: list[ContainerStatus], *,
                              sidecar: bool = False) -> bool:
        """Keep an app container (or a sidecar: restarted whatever the pod's policy) running; True
        while it runs and has started (its startup probe passed)."""
        assert self.probes is not None
        name = c["name"]
        cur = instances[0] if instances else None
        if cur is not None and cur.state == ContainerState.RUNNING:
            health = self.probes.track(c, cur.id, self.pod_ip)
            if not health.kill_reason:
                self.waiting.pop(name, None)
                return health.started
            self.ctx.counters.liveness_kills += 1
            kind = health.kill_reason
            self._event(NORMAL, "Killing", f"Init container {name} failed {kind} probe" if sidecar
                        else f"Container {name} failed {kind} probe, will be restarted")
            self.probes.forget(name)
            await self._stop_container(c, cur.id, grace_for(spec, c, health.kill_reason))
            self.exit_seen.setdefault(cur.id, trio.current_time())
            cur = await self.ctx.runtime.container_status(cur.id)
            instances = [cur, *instances[1:]]
        if cur is not None and cur.state == ContainerState.CREATED:
            return await self._start(c, cur.id, init=sidecar)
        if cur is not None:
            policy = "Always" if sidecar else spec.get("restartPolicy", "Always")
            if not should_restart(policy, cur.exit_code):
                self.waiting.pop(name, None)
                return False
            if not self._may_restart(c, cur):
                return False
        return await self._run_container(c, instances, init=sidecar)

    def _may_restart(self, c: Obj, cur: ContainerStatus) -> bool:
        """kubelet's doBackOff: False (and CrashLoopBackOff) while the container must wait."""
        name = c["name"]
        seen = self.exit_seen.setdefault(cur.id, trio.current_time())
        key = f"{self.uid}/{name}"
        backoff = self.ctx.crash_backoff
        if backoff.in_backoff_since(key, seen):
            delay = backoff.get(key)
            message = (f"back-off {go_duration_seconds(round(delay))} restarting failed container={name} "
                       f"pod={pod_ref(self.pod)}")
            self.waiting[name] = ("CrashLoopBackOff", message)
            if ("BackOff", cur.id) not in self._reported:
                self._reported.add(("BackOff", cur.id))
                self._event(WARNING, "BackOff",
                            f"Back-off restarting failed container {name} in pod {pod_ref(self.pod)}")
            self._schedule(seen + delay)
            return False
        backoff.next(key, seen)
        return True

    def _initial_attempt(self, name: str) -> int:
        """A first instance after a lost sandbox continues the restart count from the pod status."""
        status = self.pod.get("status") or {}
        for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
            if cs.get("name") == name and cs.get("containerID"):
                return int(cs.get("restartCount") or 0) + 1
        return 0

    async def _run_container(self, c: Obj, instances: list[ContainerStatus], *, init: bool) -> bool:
        """Create and start a new instance; True when it runs and has started."""
        name, image = c["name"], c.get("image", "")
        now = trio.current_time()
        retry = self.pull_retry.get(name)
        if retry is not None and now < retry:
            self.waiting[name] = ("ImagePullBackOff", f'Back-off pulling image "{image}"')
            if ("ImagePullBackOff", str(retry)) not in self._reported:
                self._reported.add(("ImagePullBackOff", str(retry)))
                self._event(NORMAL, "BackOff", f'Back-off pulling image "{image}"')
                self._event(WARNING, "Failed", "Error: ImagePullBackOff")
            self._schedule(retry)
            return False
        image_id = await self._pull(c)
        if image_id is None:
            return False
        attempt = attempt_of(instances[0]) + 1 if instances else self._initial_attempt(name)
        try:
            spec = await self._container_spec(c, attempt, init=init)
        except ConfigError as exc:
            self.waiting[name] = ("CreateContainerConfigError", str(exc))
            self._event(WARNING, "Failed", f"Error: {exc}")
            self._schedule(now + 10)
            return False
        for old in instances[1:]:  # keep only the previous instance (for logs --previous)
            await self.ctx.runtime.remove_container(old.id)
            self.exit_seen.pop(old.id, None)
        assert self.sandbox_id is not None
        container_id = await self.ctx.runtime.create_container(self.sandbox_id, spec)
        self._event(NORMAL, "Created", f"Created container {name}")
        if instances:
            self.ctx.counters.containers_restarted += 1
        return await self._start(c, container_id, init=init)

    async def _pull(self, c: Obj) -> str | None:
        name, image = c["name"], c.get("image", "")
        policy = PullPolicy(c.get("imagePullPolicy") or "IfNotPresent")
        key = f"{self.uid}/{name}/image"
        try:
            image_id = await self.ctx.runtime.ensure_image(image, policy)
        except ImagePullError as exc:
            now = trio.current_time()
            delay = self.ctx.pull_backoff.next(key, now)
            self.pull_retry[name] = now + delay
            self.waiting[name] = ("ErrImagePull", str(exc))
            if policy != PullPolicy.NEVER:
                self._event(NORMAL, "Pulling", f'Pulling image "{image}"')
            self._event(WARNING, "Failed", f'Failed to pull image "{image}": {exc}')
            self._event(WARNING, "Failed", "Error: ErrImagePull")
            self._schedule(now + 1)  # show ImagePullBackOff right after the failed pull, as kubelet does
            return None
        self.pull_retry.pop(name, None)
        self.ctx.pull_backoff.forget(key)
        self.image_ids[name] = image_id
        self._event(NORMAL, "Pulled", f'Container image "{image}" already present on machine')
        return image_id

    async def _container_spec(self, c: Obj, attempt: int, *, init: bool) -> ContainerSpec:
        pod = self.pod
        # The hook sees the pod, so it decides what enableServiceLinks: false leaves out.
        extra = dict(self.ctx.extra_env(pod)) if self.ctx.extra_env else {}
        env = resolve_env(pod, c, await self._sources(pod), self.node_facts(), extra)
        command, args = expand_command(c, env)
        labels = {**self.ctx.owner_labels, LABEL_NODE: self.ctx.node_name, LABEL_ATTEMPT: str(attempt)}
        if init:
            labels[LABEL_INIT] = "true"
        ports = []
        for p in c.get("ports") or []:
            ports.append(PortMapping(container_port=int(p.get("containerPort", 0)),
                                     host_port=int(p.get("hostPort") or 0),
                                     protocol=p.get("protocol", "TCP")))
        fields: dict[str, Any] = {  # (a dict: mypy cannot type attrs' tuple converters)
            "command": command, "args": args, "mounts": mounts_for(c, self.volumes), "ports": ports}
        return ContainerSpec(
            name=c["name"], image=c.get("image", ""), env=env, working_dir=c.get("workingDir", ""),
            resources=resources_of(c, self.ctx.pod_pids_limit), labels=labels,
            tty=bool(c.get("tty")), stdin=bool(c.get("stdin")), stdin_once=bool(c.get("stdinOnce")), **fields,
        )

    async def _start(self, c: Obj, container_id: str, *, init: bool) -> bool:
        assert self.probes is not None
        name = c["name"]
        try:
            await self.ctx.runtime.start_container(container_id)
        except RuntimeNotFound:
            raise
        except RuntimeFailure as exc:  # e.g. executable not found: the container exited; back-off restarts it
            self.exit_seen.setdefault(container_id, trio.current_time())
            self._event(WARNING, "Failed", f"Error: {exc}")
            return False
        self.waiting.pop(name, None)
        self.ctx.counters.containers_started += 1
        self._event(NORMAL, "Started", f"Started container {name}")
        post_start = (c.get("lifecycle") or {}).get("postStart")
        if post_start:
            ok, message = await run_hook(self.ctx.runtime, self.ctx.prober, post_start, c, container_id,
                                         self.pod_ip, 30.0)
            if not ok:
                self._event(WARNING, "FailedPostStartHook", f"PostStartHook failed: {message}")
                grace = grace_for(self.pod.get("spec") or {}, c, "")
                await self.ctx.runtime.stop_container(container_id, grace)
                return False
        if not init or is_sidecar(c):
            return self.probes.track(c, container_id, self.pod_ip).started
        return True

    async def _stop_container(self, c: Obj | None, container_id: str, grace: float,
                              after: tuple[trio.Event, ...] = ()) -> None:
        def failed(message: str) -> None:
            self._event(WARNING, "FailedPreStopHook", f"PreStopHook failed: {message}")

        await stop_container(self.ctx.runtime, self.ctx.prober, c, container_id, self.pod_ip, grace, failed,
                             after)

    # --- deadlines, termination -----------------------------------------------------------------

    async def _check_deadline(self, spec: Obj) -> PodFacts | None:
        seconds = spec.get("activeDeadlineSeconds")
        if seconds is None or self._start_trio is None:
            return None
        deadline = self._start_trio + float(seconds)
        if trio.current_time() < deadline:
            self._schedule(deadline)
            return None
        message = "Pod was active on the node longer than the specified deadline"
        self._event(NORMAL, "DeadlineExceeded", message)
        await self._kill_all(grace_for(spec, {}, ""))
        return self._facts(bool(self.pod_ip), True, False,
                           reason="DeadlineExceeded", message=message, phase="Failed")

    async def _kill_all(self, grace: float) -> None:
        """Stop every running container: the app containers at once, then the sidecars in reverse order."""
        assert self.probes is not None
        self.probes.stop_all()
        spec = self.pod.get("spec") or {}
        running = {name: instances[0].id for name, instances in (await self._observe()).items()
                   if instances and instances[0].state == ContainerState.RUNNING}
        specs = {c["name"]: c for key in ("initContainers", "containers") for c in spec.get(key) or []}
        stopped = {name: trio.Event() for name in running}
        async with trio.open_nursery() as nursery:
            for name, waits in stop_after(spec, running).items():
                self._event(NORMAL, "Killing", f"Stopping container {name}")
                nursery.start_soon(self._stop_then_set, specs.get(name), running[name], grace,
                                   tuple(stopped[n] for n in waits), stopped[name])

    async def _stop_then_set(self, c: Obj | None, container_id: str, grace: float,
                             after: tuple[trio.Event, ...], stopped: trio.Event) -> None:
        try:
            await self._stop_container(c, container_id, grace, after)
        finally:
            stopped.set()  # the containers waiting for this one go on even if stopping it failed

    async def _stop_terminal(self) -> None:
        """A finished pod keeps its exited containers (for logs) but not its sandbox's network."""
        assert self.probes is not None
        self.probes.stop_all()
        if self.sandbox_id and not self._stopped_sandbox:
            await self.ctx.runtime.stop_sandbox(self.sandbox_id, 0)
            self._stopped_sandbox = True

    async def _terminate(self) -> None:
        pod = self.pod
        m = pod.get("metadata") or {}
        grace = m.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        await self._kill_all(float(grace))
        rt = self.ctx.runtime
        for sandbox in await rt.list_sandboxes({LABEL_POD_UID: self.uid}):
            await rt.remove_sandbox(sandbox.id)
        for container in await rt.list_containers({LABEL_POD_UID: self.uid}):
            await rt.remove_container(container.id)
        self.sandbox_id = None
        await self.ctx.volumes.cleanup(self.uid)
        self.ctx.crash_backoff.forget_prefix(f"{self.uid}/")
        self.ctx.pull_backoff.forget_prefix(f"{self.uid}/")
        self.ctx.counters.pods_terminated += 1
        if not self.deleted:
            try:
                await self.ctx.client.delete(self.ctx.pod_rt, self.namespace, self.name,
                                             grace_period_seconds=0, uid=self.uid)
            except (NotFound, Conflict):  # already gone, or a new pod took the name
                pass

    # --- status ---------------------------------------------------------------------------------

    def _latest(self) -> Obj:
        """The newest copy of the pod we know: the informer's or the one our last write returned."""
        return (self._written
                if self._written is not None and resource_version(self._written) > resource_version(self.pod)
                else self.pod)

    async def _write_status(self, status: Obj) -> None:
        for _ in range(3):
            latest = self._latest()
            if latest.get("status") == status:
                break
            try:
                self._written = await self.ctx.client.update_status(self.ctx.pod_rt,
                                                                    {**latest, "status": status})
                self.ctx.counters.status_writes += 1
                break
            except Conflict:  # someone else wrote the pod: re-read and try again
                self.ctx.counters.status_conflicts += 1
                self._written = await self.ctx.client.get(self.ctx.pod_rt, self.namespace, self.name)
        if self._written is not None and resource_version(self._written) <= resource_version(self.pod):
            # The informer already delivered our write (perhaps while update_status awaited): keep
            # no private copy, or 30,000 pods cost a second decoded pod each.
            self._written = None
        if status.get("phase") in TERMINAL and not self.terminal:
            self.terminal = True
            await self._stop_terminal()

    # --- events ---------------------------------------------------------------------------------

    def _event(self, type_: str, reason: str, message: str) -> None:
        m = self.pod.get("metadata") or {}
        ref = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": m.get("name"), "namespace": m.get("namespace"), "uid": m.get("uid"),
                            "resourceVersion": m.get("resourceVersion")}}
        self.ctx.recorder.event(ref, type_, reason, message)

    def _probe_failed(self, kind: str, name: str, message: str) -> None:
        self._event(WARNING, "Unhealthy", f"{kind.capitalize()} probe failed: {message}")
