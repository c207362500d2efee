"""Many node agents on one runtime in one process: `--simulate-nodes N`.

Owns: starting N `NodeAgent`s named sim-node-1..N on one (normally simulated) runtime, each with
its own Node, Lease and EventRecorder, but sharing what would otherwise grow with N: one pod
informer for the whole cluster (events dispatched to the agent of `spec.nodeName`), one runtime
event stream (dispatched by the node label), and no per-node polling — each agent has one
sleeping heartbeat task with a random phase within the renew interval, and node status is
posted on change or every `status_report_seconds` (kubelet's 5 min report frequency).

Nodes behave like kwok's: each gets a pod CIDR of its own from the node IPAM controller
(reconcilers/nodeipam.py, the one owner of spec.podCIDR; a Node keeps the one it has): with
`pod_cidr_timeout`, the Nodes are registered bare first and their agents start once the controller
gave every one its podCIDR, which the runtime then uses for that node's pods' IPs (None: no node
IPAM runs, the pods take the runtime's default range, as under a kubelet without a pod CIDR);
probes pass unless scripted (simprobe.py); and every pod's `sim.orchestra.io/*` annotations, with
which of its containers "complete" (init containers, and a Job's pods), become its PodScript in the
runtime before its agent sees the pod (a bad annotation is a Warning event on the pod).

    nodes = SimulatedNodes(client, runtime, 1000, state_dir=state / "sim-nodes")
    await nursery.start(nodes.run)
Must not import: podman, reconcilers, apiserver, cli.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs
import trio

from orchestra.api.errors import AlreadyExists
from orchestra.api.registry import DEFAULT_REGISTRY, Registry
from orchestra.client.base import Client
from orchestra.controller.events import WARNING
from orchestra.controller.informer import Informer, SharedInformers
from orchestra.node.agent import AgentConfig, AgentStatistics, ExtraEnv, NodeAgent
from orchestra.node.registration import simulated_host
from orchestra.node.sandbox import LABEL_NODE
from orchestra.node.simprobe import ProbeScript, SimulatedProber
from orchestra.objects import Obj
from orchestra.runtime.base import Runtime as RuntimeProtocol
from orchestra.runtime.base import RuntimeEvent, RuntimeFailure
from orchestra.runtime.simrules import PREFIX, PodScript, ScriptError, pod_script

log = logging.getLogger("orchestra.node.simulated")

NAME_PREFIX = "sim-node-"
START_CONCURRENCY = 50


@runtime_checkable
class PodScripting(Protocol):
    """What SimulatedRuntime offers simulated nodes beyond the Runtime protocol."""

    def script_pod(self, uid: str, script: PodScript | None) -> None: ...
    def assign_pod_cidr(self, label: str, value: str, cidr: str) -> None: ...


def pod_script_of(pod: Obj) -> PodScript | None:
    """The pod's script: its simulation annotations, and which containers complete (None: nothing)."""
    m = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    annotations = {k: v for k, v in (m.get("annotations") or {}).items() if k.startswith(PREFIX)}
    completes = [c.get("name", "") for c in spec.get("initContainers") or []
                 if c.get("restartPolicy") != "Always"]  # a sidecar runs on
    if any(ref.get("kind") == "Job" for ref in m.get("ownerReferences") or []):
        completes += [c.get("name", "") for c in spec.get("containers") or []]
    if not annotations and not completes:
        return None
    return pod_script(annotations, completes=completes)


@attrs.frozen
class SimulatedNodesStatistics:
    nodes: int
    pods: int
    workers: int
    lease_renewals: int
    status_updates: int
    containers_started: int


class PodCIDRTimeout(Exception):
    """The node IPAM controller gave not every simulated Node a podCIDR in time."""


class SimulatedNodes:
    def __init__(self, client: Client, runtime: RuntimeProtocol, count: int, *, state_dir: Path,
                 name_prefix: str = NAME_PREFIX, extra_env: ExtraEnv | None = None,
                 status_report_seconds: float = 300.0, resync_seconds: float = 300.0,
                 pod_cidr_timeout: float | None = None, **config: Any) -> None:
        self.client = client
        self.runtime = runtime
        self.pod_cidr_timeout = pod_cidr_timeout  # None: no node IPAM controller gives podCIDRs
        self.scripting = runtime if isinstance(runtime, PodScripting) else None
        self._script_errors: dict[str, str] = {}  # pod uid -> the annotation error last reported
        prober = SimulatedProber(runtime, runtime) if isinstance(runtime, ProbeScript) else None
        registry = getattr(client, "registry", None)
        self.registry: Registry = registry if isinstance(registry, Registry) else DEFAULT_REGISTRY
        self.agents: dict[str, NodeAgent] = {}
        jitter = float(config.pop("heartbeat_jitter", 10.0))
        for i in range(1, count + 1):
            name = f"{name_prefix}{i}"
            cfg = AgentConfig(
                node_name=name, state_dir=Path(state_dir) / name, probe_mode="exec",
                heartbeat_jitter=jitter,
                status_report_seconds=status_report_seconds, resync_seconds=resync_seconds,
                tmpfs_memory_volumes=False, host=None, **config)
            self.agents[name] = NodeAgent(client, runtime, cfg, extra_env=extra_env, prober=prober,
                                          own_pod_informer=False, own_runtime_events=False)

    async def run(self, *, task_status: trio.TaskStatus[SimulatedNodes] = trio.TASK_STATUS_IGNORED) -> None:
        version = await self.runtime.version()
        runtime_version = f"{version.name}://{version.version}"
        cidrs = await self._pod_cidrs() if self.pod_cidr_timeout is not None else {}
        for index, (name, agent) in enumerate(self.agents.items(), start=1):
            agent.config = attrs.evolve(agent.config, host=simulated_host(name, index, runtime_version))
            if self.scripting is not None and cidrs.get(name):
                self.scripting.assign_pod_cidr(LABEL_NODE, name, cidrs[name])
        if self.scripting is not None:
            await self._remove_strays()
        pod_rt = self.registry.by_kind("Pod")
        assert pod_rt is not None
        informer = SharedInformers.of(self.client).informer(pod_rt)  # the controllers' pod cache
        for agent in self.agents.values():
            agent.clear_pods()  # (on a restart) the handler replays the cache to them
        informer.add_handler(self._dispatch_pod)
        try:
            await self._run_agents(informer, task_status)
        finally:
            informer.remove_handler(self._dispatch_pod)  # the informer is shared and outlives us

    async def _pod_cidrs(self) -> dict[str, str]:
        """Each node's podCIDR from the node IPAM controller: the Nodes not there yet are created bare
        (the agents' registration completes them) and each is waited for until it has one."""
        node_rt = self.registry.by_kind("Node")
        assert node_rt is not None and self.pod_cidr_timeout is not None
        nodes, _ = await self.client.list(node_rt, None)
        known = {n["metadata"]["name"] for n in nodes}
        for name in self.agents:
            if name not in known:
                try:
                    await self.client.create(node_rt, None, {"apiVersion": "v1", "kind": "Node", "metadata": {
                        "name": name, "labels": {"kubernetes.io/hostname": name}}})
                except AlreadyExists:
                    pass  # registered meanwhile (a restart racing an earlier run's agent): ours all the same
        cidrs: dict[str, str] = {}
        with trio.move_on_after(self.pod_cidr_timeout):
            while True:
                nodes, _ = await self.client.list(node_rt, None)
                cidrs = {n["metadata"]["name"]: str((n.get("spec") or {}).get("podCIDR") or "")
                         for n in nodes if n["metadata"]["name"] in self.agents}
                if all(cidrs.get(name) for name in self.agents):
                    return cidrs
                await trio.sleep(0.2)
        missing = sorted(name for name in self.agents if not cidrs.get(name))
        raise PodCIDRTimeout(
            f"{len(missing)} simulated node(s) ({', '.join(missing[:3])}...) got no spec.podCIDR within "
            f"{self.pod_cidr_timeout:g} s: is the node IPAM controller running, and is its cluster CIDR "
            "full?")

    async def _remove_strays(self) -> None:
        """Sandboxes of nodes not simulated any more (a restart with fewer nodes): no agent would adopt
        or remove them. (Each agent removes its own node's orphans when it starts.)"""
        for sandbox in await self.runtime.list_sandboxes():
            if sandbox.labels.get(LABEL_NODE) not in self.agents:
                try:
                    await self.runtime.remove_sandbox(sandbox.id)
                except RuntimeFailure as exc:  # best effort: the next start tries again
                    log.warning("simulated nodes: removing stray sandbox %s: %s", sandbox.name, exc)

    async def _run_agents(self, informer: Informer, task_status: trio.TaskStatus[SimulatedNodes]) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self._runtime_events)
            if not informer.running:
                await nursery.start(informer.run)
            await informer.wait_synced()
            limiter = trio.CapacityLimiter(START_CONCURRENCY)
            async with trio.open_nursery() as starters:
                for agent in self.agents.values():
                    starters.start_soon(self._start_agent, nursery, agent, limiter)
            task_status.started(self)

    async def _start_agent(
        self, nursery: trio.Nursery, agent: NodeAgent, limiter: trio.CapacityLimiter
    ) -> None:
        async with limiter:
            await nursery.start(agent.run)

    def _dispatch_pod(self, event_type: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        node = ((obj or {}).get("spec") or {}).get("nodeName")
        agent = self.agents.get(node or "")
        if agent is not None:
            if self.scripting is not None and obj is not None:
                self._script_pod(agent, event_type, obj)
            agent.handle_pod_event(event_type, old, new)

    def _script_pod(self, agent: NodeAgent, event_type: str, pod: Obj) -> None:
        """Hand the pod's script to the runtime before the pod's worker can create a container."""
        assert self.scripting is not None
        m = pod.get("metadata") or {}
        uid = m.get("uid", "")
        if event_type == "DELETED":
            self.scripting.script_pod(uid, None)
            self._script_errors.pop(uid, None)
            return
        try:
            script = pod_script_of(pod)
            self._script_errors.pop(uid, None)
        except ScriptError as exc:
            if self._script_errors.get(uid) != str(exc):
                self._script_errors[uid] = str(exc)
                ref = {"apiVersion": "v1", "kind": "Pod", "metadata": {
                    k: m.get(k) for k in ("name", "namespace", "uid", "resourceVersion")}}
                agent.recorder.event(ref, WARNING, "InvalidSimulationScript",
                                     f"{exc}; the pod's simulation annotations are ignored")
            script = pod_script_of({**pod, "metadata": {**m, "annotations": {}}})
        self.scripting.script_pod(uid, script)

    def _dispatch_event(self, event: RuntimeEvent) -> None:
        agent = self.agents.get(event.labels.get(LABEL_NODE, ""))
        if agent is not None:
            agent.handle_runtime_event(event)

    async def _runtime_events(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        while True:
            try:
                async with self.runtime.events() as events:
                    if not started:
                        started = True
                        task_status.started()
                    async for event in events:
                        self._dispatch_event(event)
            except RuntimeFailure as exc:  # reconnect; workers re-sync on their own timers meanwhile
                log.warning("simulated nodes: runtime events: %s; reconnecting", exc)
                if not started:
                    started = True
                    task_status.started()
            await trio.sleep(1.0)

    def statistics(self) -> SimulatedNodesStatistics:
        stats: list[AgentStatistics] = [a.statistics() for a in self.agents.values()]
        return SimulatedNodesStatistics(
            nodes=len(stats), pods=sum(s.pods for s in stats), workers=sum(s.workers for s in stats),
            lease_renewals=sum(s.registration.lease_renewals for s in stats),
            status_updates=sum(s.registration.status_updates for s in stats),
            containers_started=sum(int(s.counters.get("containers_started", 0)) for s in stats),
        )
