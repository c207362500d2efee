"""NodeAgent: orchestra's kubelet. Registers its Node, heartbeats, and runs the pods bound to it.

Owns: wiring (Node registration + Lease, the pod informer with `spec.nodeName=<node>`, the
runtime event stream, the EventRecorder with source component "kubelet"), adoption on start-up
(sandboxes labelled with this node are kept for pods that still exist and are bound here, the
rest are removed, and only then do pod workers start), one `PodWorker` task per pod uid, and the
container lookup the log/exec/port-forward streams use (`find_container`, and `locate_container`
with kube's 400).

    agent = NodeAgent(client, runtime, AgentConfig(node_name="node-1", state_dir=state / "node"))
    await nursery.start(agent.run)      # started() once registered, adopted and running pods

For many agents in one process (`node.simulated`), pods and runtime events can be fed from one
shared informer / event stream through `handle_pod_event` / `handle_runtime_event`.
A pod worker that raises is contained to its pod: logged, counted (`sync_crashes`) and started again
after a backoff (WORKER_RESTART). `run()` may be called again after it raised (a supervisor
restarting the agent): it registers and adopts the running pods again, as after a process restart.
Must not import: podman, reconcilers, apiserver, cli.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import trio

from orchestra.api.errors import BadRequest
from orchestra.api.registry import DEFAULT_REGISTRY, Registry
from orchestra.client.base import Client
from orchestra.controller.events import EventRecorder
from orchestra.controller.informer import Informer
from orchestra.node.context import AgentContext, attempt_of
from orchestra.node.pod_worker import PodWorker
from orchestra.node.probes import Prober
from orchestra.node.registration import HostInfo, NodeRegistration, RegistrationStatistics, probe_host
from orchestra.node.sandbox import LABEL_CLUSTER, LABEL_NODE, LABEL_STATE_DIR
from orchestra.node.volumes import VolumeManager
from orchestra.objects import Obj
from orchestra.runtime.base import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_UID,
    ContainerState,
    EventType,
    RuntimeEvent,
    RuntimeFailure,
    SandboxState,
)
from orchestra.runtime.base import Runtime as RuntimeProtocol

log = logging.getLogger("orchestra.node.agent")

ExtraEnv = Callable[[Obj], Mapping[str, str]]
ADOPT_CONCURRENCY = 8
WORKER_RESTART = (1.0, 30.0)  # backoff before a crashed pod worker starts again: initial, cap


@attrs.frozen
class AgentConfig:
    node_name: str
    state_dir: Path  # volumes live under <state_dir>/pods/<uid>/
    cluster_dns: str | None = None  # ClusterFirst pods get this nameserver (None: the host's resolver)
    cluster_domain: str = "cluster.local"
    labels: Mapping[str, str] = attrs.field(factory=dict)
    control_plane: bool = False  # adds node-role.kubernetes.io/control-plane
    probe_mode: str = "network"  # "exec": httpGet/tcpSocket probes run as wget in the container (simulation)
    resync_seconds: float = 60.0  # every pod is re-synced (volumes refreshed) this often
    lease_duration_seconds: int = 40
    lease_renew_seconds: float = 10.0
    status_update_seconds: float = 10.0
    status_report_seconds: float = 10.0
    heartbeat_jitter: float = 0.0  # spread heartbeats of many nodes over this many seconds
    pod_pids_limit: int | None = None  # kubelet's podPidsLimit (None: unlimited)
    tmpfs_memory_volumes: bool | None = None  # None: when running as root on a real runtime
    resolv_conf: Path | None = Path("/etc/resolv.conf")
    host: HostInfo | None = None  # None: probe the real host
    cluster_id: str = ""  # labels every runtime object, so another cluster on this host never adopts it
    cluster_state_dir: str = ""  # labels every sandbox: where the cluster lives (app/leftovers.py reads it)
    kubelet_port: int = 10250  # published as status.daemonEndpoints.kubeletEndpoint (the kubelet API)
    node_ip: str | None = None  # kubelet's --node-ip: the Node's InternalIP (None: the default route's)


@attrs.frozen
class ContainerRef:
    """Where a pod's container lives, for logs / exec / port-forward."""

    runtime: RuntimeProtocol
    container_id: str
    name: str
    pod_uid: str
    state: ContainerState
    restart_count: int


class ContainerLookupError(Exception):
    """The container cannot be used; the message is kube's (the API answers 400 Bad Request)."""


@attrs.frozen
class AgentStatistics:
    node_name: str
    pods: int
    workers: int
    adopted_sandboxes: int
    removed_orphans: int
    counters: Mapping[str, int]
    registration: RegistrationStatistics
    probes_run: int
    events_recorded: int


def _container_names(pod: Obj) -> list[str]:
    spec = pod.get("spec") or {}
    return [c.get("name", "") for key in ("containers", "initContainers", "ephemeralContainers")
            for c in spec.get(key) or []]


def _default_container(pod: Obj) -> str:
    m = pod.get("metadata") or {}
    annotated = (m.get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    containers = (pod.get("spec") or {}).get("containers") or []
    if annotated:
        return str(annotated)
    if len(containers) == 1:
        return str(containers[0].get("name", ""))
    names = " ".join(c.get("name", "") for c in containers)
    raise ContainerLookupError(
        f"a container name must be specified for pod {m.get('name')}, choose one of: [{names}]"
    )


async def find_container(runtime: RuntimeProtocol, pod: Obj, container: str | None = None, *,
                         previous: bool = False) -> ContainerRef:
    """The current (or, with `previous`, the last terminated) instance of a pod's container,
    found by labels, so it works from any process that has the runtime (no agent state needed)."""
    m = pod.get("metadata") or {}
    name = container or _default_container(pod)
    if name not in _container_names(pod):
        raise ContainerLookupError(f"container {name} is not valid for pod {m.get('name')}")
    found = await runtime.list_containers({LABEL_POD_UID: m.get("uid", ""), LABEL_CONTAINER_NAME: name})
    found.sort(key=attempt_of, reverse=True)
    index = 1 if previous else 0
    if len(found) <= index:
        if previous:
            raise ContainerLookupError(
                f'previous terminated container "{name}" in pod "{m.get("name")}" not found'
            )
        waiting = _waiting_reason(pod, name)
        raise ContainerLookupError(
            f'container "{name}" in pod "{m.get("name")}" is waiting to start: {waiting}'
        )
    c = found[index]
    return ContainerRef(runtime, c.id, name, m.get("uid", ""), c.state, attempt_of(c))


async def locate_container(runtime: RuntimeProtocol, pod: Obj, container: str, *,
                           previous: bool = False) -> tuple[RuntimeProtocol, str]:
    """The streams' ContainerLocator.locate over one runtime: (runtime, container id) of `container`
    ("": the pod's default), a container that cannot be used being kube's 400 with kube's message."""
    try:
        ref = await find_container(runtime, pod, container or None, previous=previous)
    except ContainerLookupError as exc:
        raise BadRequest(str(exc)) from None
    return ref.runtime, ref.container_id


def _waiting_reason(pod: Obj, name: str) -> str:
    status = pod.get("status") or {}
    for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if cs.get("name") == name:
            return str(((cs.get("state") or {}).get("waiting") or {}).get("reason") or "ContainerCreating")
    return "ContainerCreating"


def _owner_labels(cfg: AgentConfig) -> dict[str, str]:
    if not cfg.cluster_id:
        return {}
    return {
        LABEL_CLUSTER: cfg.cluster_id,
        **({LABEL_STATE_DIR: cfg.cluster_state_dir} if cfg.cluster_state_dir else {}),
    }


class NodeAgent:
    def __init__(self, client: Client, runtime: RuntimeProtocol, config: AgentConfig, *,
                 extra_env: ExtraEnv | None = None, recorder: EventRecorder | None = None,
                 own_pod_informer: bool = True, own_runtime_events: bool = True,
                 prober: Prober | None = None) -> None:
        self.client = client
        self.runtime = runtime
        self.config = config
        self.node_name = config.node_name
        self.extra_env = extra_env
        self._own_recorder = recorder is None
        self.recorder = recorder or EventRecorder(client, "kubelet", host=config.node_name)
        self._own_pod_informer = own_pod_informer
        self._own_runtime_events = own_runtime_events
        self._prober = prober  # None: a Prober of cfg.probe_mode (simulated nodes bring their own)
        registry = getattr(client, "registry", None)
        self.registry: Registry = registry if isinstance(registry, Registry) else DEFAULT_REGISTRY
        pod_rt = self.registry.by_kind("Pod")
        assert pod_rt is not None
        self.pod_rt = pod_rt
        self._pods: dict[str, Obj] = {}  # uid -> latest pod bound here
        self._workers: dict[str, PodWorker] = {}
        self._nursery: trio.Nursery | None = None
        self._ready = False
        self._crashes: dict[str, int] = {}  # pod uid -> consecutive worker crashes
        self._runtime_ok = True
        self.ctx: AgentContext | None = None
        self.registration: NodeRegistration | None = None
        self.host: HostInfo | None = None
        self.adopted = 0
        self.orphans_removed = 0

    # --- start-up -------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[NodeAgent] = trio.TASK_STATUS_IGNORED) -> None:
        self._ready = False  # (again, on a restart) no worker starts before adoption
        if self._own_pod_informer:
            self.clear_pods()  # refilled by this run's informer
        version = await self.runtime.version()
        runtime_version = f"{version.name}://{version.version}"
        cfg = self.config
        self.host = cfg.host or probe_host(Path(cfg.state_dir), runtime_version, hostname=cfg.node_name,
                                             node_ip=cfg.node_ip)
        tmpfs = cfg.tmpfs_memory_volumes
        if tmpfs is None:
            tmpfs = version.name == "podman" and os.geteuid() == 0
        self.ctx = AgentContext(
            node_name=cfg.node_name,
            host_ip=self.host.internal_ip,
            client=self.client,
            runtime=self.runtime,
            recorder=self.recorder,
            volumes=VolumeManager(Path(cfg.state_dir), tmpfs=tmpfs),
            prober=self._prober or Prober(self.runtime, mode=cfg.probe_mode),
            pod_rt=self.pod_rt,
            config_map_rt=self.registry.by_kind("ConfigMap"),
            secret_rt=self.registry.by_kind("Secret"),
            pvc_rt=self.registry.by_kind("PersistentVolumeClaim"),
            pv_rt=self.registry.by_kind("PersistentVolume"),
            cluster_dns=cfg.cluster_dns,
            cluster_domain=cfg.cluster_domain,
            resolv_conf=cfg.resolv_conf,
            owner_labels=_owner_labels(cfg),
            extra_env=self.extra_env,
            allocatable=dict(self.host.allocatable),
            resync_seconds=cfg.resync_seconds,
            pod_pids_limit=cfg.pod_pids_limit,
        )
        labels = dict(cfg.labels)
        if cfg.control_plane:
            labels["node-role.kubernetes.io/control-plane"] = ""
        self.registration = NodeRegistration(
            self.client, cfg.node_name, self.host, labels=labels,
            lease_duration_seconds=cfg.lease_duration_seconds, lease_renew_seconds=cfg.lease_renew_seconds,
            status_update_seconds=cfg.status_update_seconds, status_report_seconds=cfg.status_report_seconds,
            jitter=cfg.heartbeat_jitter, ready=self._node_ready, kubelet_port=cfg.kubelet_port)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self._own_recorder:
                await nursery.start(self.recorder.run)
            await nursery.start(self.registration.run)
            if self._own_pod_informer:
                informer = Informer(self.client, self.pod_rt, field_selector=f"spec.nodeName={cfg.node_name}")
                informer.add_handler(self.handle_pod_event)
                await nursery.start(informer.run)
            if self._own_runtime_events:
                await nursery.start(self._runtime_events)
            await self._adopt()
            self._ready = True
            for pod in list(self._pods.values()):
                if pod["metadata"]["uid"] not in self._workers:
                    self._start_worker(pod)
            task_status.started(self)

    def _node_ready(self) -> tuple[bool, str]:
        return (True, "") if self._runtime_ok else (False, "container runtime is down")

    async def _adopt(self) -> None:
        """Keep one sandbox per pod that is still bound here; remove everything else we labelled."""
        rt = self.runtime
        keep: dict[str, str] = {}
        doomed: list[str] = []
        by_uid: dict[str, list[Any]] = {}
        mine = (
            {LABEL_CLUSTER: self.config.cluster_id, LABEL_NODE: self.node_name}
            if self.config.cluster_id
            else {LABEL_NODE: self.node_name}
        )
        for sandbox in await rt.list_sandboxes(mine):
            by_uid.setdefault(sandbox.uid, []).append(sandbox)
        for uid, sandboxes in by_uid.items():
            if uid in self._pods:
                ready = [s for s in sandboxes if s.state == SandboxState.READY] or sandboxes
                best = max(ready, key=lambda s: s.created_at.timestamp() if s.created_at else 0.0)
                keep[uid] = best.id
            doomed += [s.id for s in sandboxes if s.id != keep.get(uid)]
        containers = await rt.list_containers(mine)
        stray = [c.id for c in containers if c.sandbox_id not in keep.values() and c.sandbox_id not in doomed]
        limiter = trio.CapacityLimiter(ADOPT_CONCURRENCY)

        async def remove(fn: Callable[[str], Any], ident: str) -> None:
            async with limiter:
                try:
                    await fn(ident)
                except RuntimeFailure as exc:  # best effort; the next start-up tries again
                    log.warning("node %s: removing orphan %s failed: %s", self.node_name, ident[:12], exc)

        async with trio.open_nursery() as nursery:
            for ident in doomed:
                nursery.start_soon(remove, rt.remove_sandbox, ident)
            for ident in stray:
                nursery.start_soon(remove, rt.remove_container, ident)
        assert self.ctx is not None
        for uid in self.ctx.volumes.known_pods():
            if uid not in self._pods:
                await self.ctx.volumes.cleanup(uid)
        self.adopted, self.orphans_removed = len(keep), len(doomed) + len(stray)
        for uid, sandbox_id in keep.items():
            self._start_worker(self._pods[uid], sandbox_id=sandbox_id)

    # --- feeding workers ------------------------------------------------------------------------

    def handle_pod_event(self, event_type: str, old: Obj | None, new: Obj | None) -> None:
        """Informer handler (also called by node.simulated's shared informer)."""
        obj = new if new is not None else old
        if obj is None or (obj.get("spec") or {}).get("nodeName") != self.node_name:
            return
        old_uid = ((old or {}).get("metadata") or {}).get("uid")
        if event_type == "DELETED" or new is None:
            self._deleted(old_uid or obj["metadata"]["uid"], obj)
            return
        uid = new["metadata"]["uid"]
        if old_uid and old_uid != uid and old is not None:  # re-list saw a replacement pod with the same name
            self._deleted(old_uid, old)
        self._pods[uid] = new
        worker = self._workers.get(uid)
        if worker is not None:
            worker.update(new)
        elif self._ready:
            self._start_worker(new)

    def clear_pods(self) -> None:
        """Forget the pods fed so far (whoever feeds `handle_pod_event` is about to replay them)."""
        self._pods.clear()

    def _deleted(self, uid: str, last: Obj) -> None:
        self._pods.pop(uid, None)
        worker = self._workers.get(uid)
        if worker is not None:
            worker.update(last, deleted=True)

    def handle_runtime_event(self, event: RuntimeEvent) -> None:
        worker = self._workers.get(event.labels.get(LABEL_POD_UID, ""))
        if worker is None:
            return
        if event.type in (EventType.DIED, EventType.OOM) and not event.infra:
            worker.container_exited(event.container_id)
        elif event.type in (EventType.DIED, EventType.REMOVED):
            worker.wake()

    def _start_worker(self, pod: Obj, *, sandbox_id: str | None = None) -> PodWorker:
        assert self._nursery is not None and self.ctx is not None
        worker = PodWorker(self.ctx, pod, sandbox_id=sandbox_id)
        self._workers[worker.uid] = worker
        self._nursery.start_soon(self._run_worker, worker)
        return worker

    async def _run_worker(self, worker: PodWorker) -> None:
        try:
            await worker.run()
        except Exception:  # a bug in a sync or a probe: contained to this pod, its worker starts again
            crashes = self._crashes[worker.uid] = self._crashes.get(worker.uid, 0) + 1
            if self.ctx is not None:
                self.ctx.counters.sync_crashes += 1
            log.exception("node %s: worker of pod %s/%s crashed", self.node_name, worker.namespace,
                          worker.name)
        else:
            self._crashes.pop(worker.uid, None)
            if self.ctx is not None:
                self.ctx.tokens.forget(worker.uid)  # the pod is gone: so are its tokens
            return
        finally:
            if self._workers.get(worker.uid) is worker:
                del self._workers[worker.uid]
        await trio.sleep(min(WORKER_RESTART[0] * 2 ** (crashes - 1), WORKER_RESTART[1]))
        if worker.uid in self._workers or not self._ready:
            return  # the pod came back meanwhile and has a worker, or the agent is restarting
        pod = self._pods.get(worker.uid)
        if pod is not None:
            self._start_worker(pod)
        else:  # deleted meanwhile: a worker still has to stop and remove its containers
            self._start_worker(worker.pod).update(worker.pod, deleted=True)

    async def _runtime_events(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        while True:
            try:
                async with self.runtime.events() as events:
                    self._runtime_ok = True
                    if not started:
                        started = True
                        task_status.started()
                    else:  # events may have been missed while disconnected: re-check every pod
                        for worker in list(self._workers.values()):
                            worker.wake()
                    async for event in events:
                        self.handle_runtime_event(event)
            except RuntimeFailure as exc:  # the runtime went away: report NotReady and reconnect
                self._runtime_ok = False
                if self.registration is not None:
                    self.registration.nudge()
                log.warning("node %s: runtime events: %s; reconnecting", self.node_name, exc)
                if not started:
                    started = True
                    task_status.started()
            await trio.sleep(1.0)

    # --- lookups for streams, statistics --------------------------------------------------------

    def pod(self, namespace: str, name: str) -> Obj | None:
        for pod in self._pods.values():
            m = pod["metadata"]
            if m.get("namespace") == namespace and m.get("name") == name:
                return pod
        return None

    def pods(self) -> list[Obj]:
        """The pods bound to this node, as last seen (the kubelet API's /pods)."""
        return list(self._pods.values())

    async def container_ref(self, namespace: str, name: str, container: str | None = None, *,
                            previous: bool = False) -> ContainerRef:
        pod = self.pod(namespace, name)
        if pod is None:
            raise ContainerLookupError(f'pod "{name}" is not running on node {self.node_name}')
        return await find_container(self.runtime, pod, container, previous=previous)

    def worker(self, uid: str) -> PodWorker | None:
        return self._workers.get(uid)

    def statistics(self) -> AgentStatistics:
        counters = attrs.asdict(self.ctx.counters) if self.ctx else {}
        probes = sum(w.probes.runs for w in self._workers.values() if w.probes is not None)
        return AgentStatistics(
            node_name=self.node_name,
            pods=len(self._pods),
            workers=len(self._workers),
            adopted_sandboxes=self.adopted,
            removed_orphans=self.orphans_removed,
            counters=counters,
            registration=attrs.evolve(self.registration.stats)
            if self.registration
            else RegistrationStatistics(),
            probes_run=probes,
            events_recorded=self.recorder.statistics().recorded,
        )
