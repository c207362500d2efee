"""Starting the components that come after the API: controllers, node agents (the network: network.py).
`start_service_env` gives node agents (this host's and a joined node's) kubelet's Service variables.

Each long-lived component runs under the cluster's Supervisor (controller/supervisor.py): one that
raises is logged, counted and restarted with backoff, and never ends the process.
Imports happen inside each starter, so the path to "API ready" loads none of them (start-up time).
Must not import: cli.
"""

from __future__ import annotations

import functools
import logging
import re
import socket
from typing import TYPE_CHECKING, Any

import trio

from orchestra.client.base import Client
from orchestra.controller.supervisor import Supervisor

if TYPE_CHECKING:
    from orchestra.app.config import Cluster

log = logging.getLogger("orchestra")


async def start_controllers(nursery: trio.Nursery, cluster: Cluster, *,
                            informer_scope: object = None) -> None:
    """kube-controller-manager's controllers and the scheduler, each started once its caches synced
    (in informers of their own under `informer_scope`: app/leader.py starts them for each term it
    leads)."""
    from orchestra.app.certificates import certificate_controllers
    from orchestra.client.local import LocalClient, LocalMetricsClient
    from orchestra.reconcilers.autoscaling import DEFAULT_HPA_TIMINGS, FAST_HPA_TIMINGS, hpa_controllers
    from orchestra.reconcilers.cluster import cluster_controllers
    from orchestra.reconcilers.node_lifecycle import DEFAULT_TIMINGS, FAST_TIMINGS
    from orchestra.reconcilers.scheduler import Scheduler
    from orchestra.reconcilers.workloads import workload_controllers

    client = LocalClient(cluster.core, field_manager="kube-controller-manager", informer_scope=informer_scope)
    fast = cluster.config.timings == "fast"
    timings = FAST_TIMINGS if fast else DEFAULT_TIMINGS
    scheduler = Scheduler(LocalClient(cluster.core, field_manager="default-scheduler",
                                      informer_scope=informer_scope))
    volumes_root = cluster.config.state_dir / "volumes"
    ipam = pod_cidr_plan(cluster.config)
    cluster_wide = cluster_controllers(client, timings=timings, volumes_root=volumes_root,
                                       ca_pem=cluster.ca_cert.read_text(), tokens=cluster.tokens,
                                       cluster_cidr=ipam[0], node_mask=ipam[1])
    certificates = certificate_controllers(client, cluster.config.state_dir, cluster.server.chain.authorizer)
    controllers: list[Any] = [*cluster_wide, scheduler, *workload_controllers(client), *certificates]
    if cluster.server.metrics is not None:  # the HPA reads the resource metrics API the server answers
        metrics = LocalMetricsClient(cluster.core, cluster.server.metrics.collector)
        hpa_timings = FAST_HPA_TIMINGS if fast else DEFAULT_HPA_TIMINGS
        controllers += hpa_controllers(client, metrics, timings=hpa_timings)
    for controller in controllers:
        await nursery.start(cluster.supervisor.run, controller.name, controller.run)
        cluster.controllers.append(controller)
    statuses = cluster.server.component_statuses  # `kubectl get cs` reads these
    statuses.add("scheduler", _health(cluster, [scheduler.name]))
    statuses.add("controller-manager", _health(cluster, [c.name for c in controllers if c is not scheduler]))


def _health(cluster: Cluster, names: list[str]) -> Any:
    """A componentstatuses probe: healthy while every named component runs (none awaits a restart)."""

    def probe() -> tuple[bool, str, str]:
        stats = cluster.supervisor.statistics()
        for name in names:
            s = stats.get(name)
            if s is None or not s.running or s.restart_at is not None:
                why = f": {s.last_error}" if s is not None and s.last_error else ""
                return False, "", f"{name} is not running{why}"
        return True, "ok", ""

    return probe


async def start_api_services(nursery: trio.Nursery, cluster: Cluster) -> None:
    """kube-aggregator's autoregister: an APIService for each group/version this server serves built
    in, and (the controller watches CRDs, as kube's crdregistration) for each a CRD serves."""
    from orchestra.client.local import LocalClient
    from orchestra.reconcilers.apiservices import AutoRegisterController, api_services

    served = cluster.core.registry.group_versions()
    if cluster.server.metrics is not None:
        served.append(("metrics.k8s.io", "v1beta1"))
    client = LocalClient(cluster.core, field_manager="kube-apiserver")
    controller = AutoRegisterController(client, api_services(served))
    await nursery.start(cluster.supervisor.run, controller.name, controller.run)


async def start_nodes(nursery: trio.Nursery, cluster: Cluster) -> None:
    """The node agents: this host's (Podman) and, with --simulate-nodes, N simulated ones."""
    from orchestra.app.leftovers import clean_up_host
    from orchestra.client.local import LocalClient
    from orchestra.node.agent import AgentConfig, NodeAgent
    from orchestra.node.simulated import SimulatedNodes
    from orchestra.runtime.images import ensure_busybox_image
    from orchestra.runtime.simulated import SimClock, SimScript, SimulatedRuntime

    config = cluster.config
    if not (config.podman or config.simulate_nodes):
        return
    client = LocalClient(cluster.core, field_manager="kubelet")
    extra_env = await start_service_env(nursery, cluster.supervisor, client)
    dns = cluster.core.allocator.dns_ip if config.network else None
    # with fast node-failure detection (10 s grace) kubelets must renew faster than every 10 s
    heartbeat: dict[str, Any] = (
        {"lease_renew_seconds": 2.5, "lease_duration_seconds": 10, "status_update_seconds": 2.5}
        if config.timings == "fast"
        else {}
    )
    if config.podman:
        cluster_id = cluster.cluster_id
        agent_done = trio.Event()  # --stop-pods lists the pods once no agent call can make another
        handed_over = False
        try:
            runtime = await nursery.start(_podman_host, cluster, cluster_id, agent_done)
            await ensure_busybox_image(config.state_dir / "podman")
            agent = NodeAgent(
                client,
                runtime,
                AgentConfig(
                    node_name=node_name(),
                    state_dir=config.state_dir / "node",
                    cluster_dns=dns,
                    control_plane=True,
                    # with --nodes, the workers reach this node on their link, as on kind's network
                    node_ip=config.advertise_address if config.nodes > 1 else None,
                    cluster_id=cluster_id,
                    cluster_state_dir=str(config.state_dir.resolve()),
                    **heartbeat,
                ),
                extra_env=extra_env,
            )
            await nursery.start(_set_when_done, functools.partial(
                cluster.supervisor.run, f"kubelet {agent.node_name}", agent.run), agent_done)
            handed_over = True
        finally:
            if not handed_over:
                agent_done.set()
        nursery.start_soon(clean_up_host, runtime, cluster_id)
        cluster.agents.append(agent)
        cluster.locator.runtimes[agent.node_name] = runtime
    if config.simulate_nodes:
        # Wall-clock timestamps (the base taken once, here); state kept under the state dir, so the
        # simulated pods outlive a restart of `up` like Podman's do.
        sim = SimulatedRuntime(SimScript(pull_any=True), clock=SimClock.wall(),
                               state_dir=config.state_dir / "sim-nodes" / "runtime")
        await nursery.start(_simulated_host, cluster, sim)
        cluster.locator.fallback = sim
        nodes = SimulatedNodes(client, sim, config.simulate_nodes, state_dir=config.state_dir / "sim-nodes",
                               name_prefix=config.simulated_node_prefix,
                               extra_env=extra_env, cluster_dns=dns,
                               # the node IPAM controller gives the Nodes their podCIDRs
                               pod_cidr_timeout=POD_CIDR_TIMEOUT if config.controllers else None,
                               **({**heartbeat, "heartbeat_jitter": 2.0} if heartbeat else {}))
        cluster.locator.simulated = set(nodes.agents)
        await nursery.start(cluster.supervisor.run, "simulated-nodes", nodes.run)
        cluster.agents.append(nodes)


async def start_service_env(nursery: trio.Nursery, supervisor: Supervisor, client: Client) -> Any:
    """`extra_env(pod)` for node agents: kubelet's Service variables, from a shared Service informer
    (started here unless another component started it), synced before this returns."""
    from orchestra.controller import SharedInformers
    from orchestra.net.common import kind
    from orchestra.net.service_env import env_for_pod

    services = SharedInformers.of(client).informer(kind("Service"))
    if not services.running:  # shared: the endpoints controller may have started it already
        await nursery.start(supervisor.run, "service-informer", services.run)
    await services.wait_synced()

    def extra_env(pod: dict[str, Any]) -> dict[str, str]:
        return env_for_pod(pod, services.list())

    return extra_env


STOP_GRACE_CAP = 10  # seconds: `orchestra up --stop-pods` gives each pod its grace period, at most this


def node_name() -> str:
    """This host's node name: its hostname as a DNS-1123 subdomain."""
    raw = socket.gethostname().lower()
    name = re.sub(r"[^a-z0-9.-]", "-", raw).strip("-.") or "orchestra"
    return name[:63]


async def _set_when_done(run: Any, done: trio.Event, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    try:
        await run(task_status=task_status)
    finally:
        done.set()


POD_CIDR_TIMEOUT = 60.0  # seconds simulated nodes wait for the node IPAM controller's podCIDRs


def pod_cidr_plan(config: Any) -> tuple[str, int]:
    """The node IPAM controller's (cluster CIDR, node mask): room for the simulated nodes, this host's
    and its worker nodes (a joined one fits in the rest), clear of the service range, Podman's pods and
    the workers' link."""
    from orchestra.node.podcidr import PODMAN_NETWORK, PodCIDRError, check_overlap, plan
    from orchestra.runtime.base import RuntimeUnavailable

    try:
        cidr, mask = plan(config.simulate_nodes + config.nodes, config.cluster_cidr)
        in_use = {"the service CIDR": config.service_cidr, "Podman's network": PODMAN_NETWORK}
        if config.nodes > 1:
            in_use["the node link range"] = config.node_link_cidr
        check_overlap(cidr, in_use)
    except PodCIDRError as exc:
        raise RuntimeUnavailable(f"--cluster-cidr: {exc}") from None
    return cidr, mask


async def _simulated_host(cluster: Cluster, sim: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """The simulated runtime for the cluster's lifetime. Its pods outlive the process (they are
    adopted on the next start) unless `--stop-pods` asks to stop them: then its state is discarded."""
    try:
        await sim.run(task_status=task_status)
    finally:
        if cluster.config.stop_pods_on_exit:
            sim.discard_state()


async def _podman_host(cluster: Cluster, cluster_id: str, agent_done: trio.Event, *,
                       task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """This host's Podman for the cluster's lifetime: its own `podman system service` (unless a socket
    was given) and the runtime talking to it, handed back through `started()`. When the cluster stops —
    at any moment, start-up included — it stops the cluster's pods if asked (--stop-pods), closes the
    runtime, and only then lets the service go (the service is shielded so the pods can still be
    stopped through it; a forced stop cuts that short)."""
    from orchestra.runtime.podman import PodmanRuntime
    from orchestra.runtime.service import PodmanService, given_socket

    shutdown = cluster.shutdown
    service_scope = trio.CancelScope()

    async def service(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        with service_scope:
            await PodmanService(cluster.config.state_dir / "podman").run(task_status=task_status)

    runtime = None
    async with trio.open_nursery() as nursery:
        try:
            socket_path = given_socket() or await nursery.start(service)
            # Shielded only once started: a shielded task that a cancelled start() waits for would
            # never be handed over (trio keeps it in start() until it ends), and stop would hang.
            service_scope.shield = True
            runtime = PodmanRuntime(socket_path)
            task_status.started(runtime)
            await trio.sleep_forever()
        finally:
            if runtime is not None:
                with shutdown.shielded(STOP_GRACE_CAP + 15):
                    if cluster.config.stop_pods_on_exit:
                        await agent_done.wait()
                        await stop_cluster_pods(cluster, runtime, cluster_id)
                    await runtime.aclose()
            service_scope.cancel()  # now the Podman service this cluster started may stop


async def stop_cluster_pods(cluster: Cluster, runtime: Any, cluster_id: str) -> None:
    """Stop and remove the cluster's pods (`orchestra up --stop-pods`; by default they keep running and
    are adopted on the next start): all at once, each with its pod's grace period (at most
    STOP_GRACE_CAP), reporting progress."""
    from orchestra.node.sandbox import LABEL_CLUSTER
    from orchestra.runtime.base import RuntimeFailure

    sandboxes = await runtime.list_sandboxes({LABEL_CLUSTER: cluster_id})
    if not sandboxes:
        return
    graces = _grace_periods(cluster)
    longest = max(graces.get(s.uid, 30) for s in sandboxes)
    log.warning("stopping %d pods (grace periods up to %d s; Ctrl-C again to leave them running)",
                len(sandboxes), min(longest, STOP_GRACE_CAP))
    stopped = 0

    async def remove(sandbox: Any) -> None:
        nonlocal stopped
        try:
            await runtime.stop_sandbox(sandbox.id, min(graces.get(sandbox.uid, 30), STOP_GRACE_CAP))
            await runtime.remove_sandbox(sandbox.id)
        except RuntimeFailure as exc:  # best effort: the next start adopts or removes what is left
            log.warning("could not remove pod sandbox %s: %s", sandbox.name, exc)
            return
        stopped += 1
        log.info("stopped pod %s (%d/%d)", sandbox.name, stopped, len(sandboxes))

    async with trio.open_nursery() as removals:
        for sandbox in sandboxes:
            removals.start_soon(remove, sandbox)
    log.warning("stopped %d of %d pods", stopped, len(sandboxes))


def _grace_periods(cluster: Cluster) -> dict[str, int]:
    """Pod uid -> its terminationGracePeriodSeconds, from the store (30 s when unset)."""
    pods = cluster.core.list(cluster.core.registry.by_kind("Pod"), None).items  # type: ignore[arg-type]
    out = {}
    for pod in pods:
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        out[pod["metadata"]["uid"]] = grace if isinstance(grace, int) and grace >= 0 else 30
    return out


class AgentLocator:
    """Finds a pod's containers for logs/exec/attach/port-forward: the runtime of the node the pod runs on
    when that node's agent is in this process, else (`remote`) the node's kubelet API."""

    def __init__(self, remote: Any = None) -> None:
        self.runtimes: dict[str, Any] = {}  # node name -> runtime
        self.fallback: Any = None  # the simulated runtime serves every sim-node-N
        self.simulated: set[str] = set()  # the nodes the fallback serves (with a remote, only these)
        self.remote = remote  # apiserver/kubelet RemoteContainers: pods of nodes in other processes

    def all_runtimes(self) -> dict[str, Any]:
        """Node name -> runtime for the host's nodes, plus the simulated runtime (under "*")."""
        return {**self.runtimes, **({"*": self.fallback} if self.fallback is not None else {})}

    def runtime_for(self, pod: dict[str, Any]) -> Any:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        return self.runtimes.get(node, self.fallback)

    def _elsewhere(self, pod: dict[str, Any]) -> bool:
        """Is the pod on a node this process does not run (so its kubelet API serves it)?"""
        node = (pod.get("spec") or {}).get("nodeName") or ""
        return (bool(node) and self.remote is not None and node not in self.runtimes
                and node not in self.simulated)

    async def locate(self, pod: dict[str, Any], container: str, *, previous: bool = False) -> tuple[Any, str]:
        from orchestra.api.errors import BadRequest
        from orchestra.node.agent import locate_container

        if self._elsewhere(pod):
            located: tuple[Any, str] = await self.remote.locate(pod, container, previous=previous)
            return located
        runtime = self.runtime_for(pod)
        if runtime is None:
            name = (pod.get("metadata") or {}).get("name", "")
            raise BadRequest(
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
            )
        return await locate_container(runtime, pod, container, previous=previous)

    def pod_ip(self, pod: dict[str, Any]) -> str | None:
        ip = (pod.get("status") or {}).get("podIP")
        return str(ip) if ip else None

    async def connector(self, pod: dict[str, Any]) -> Any:
        if self._elsewhere(pod):
            return await self.remote.connector(pod)
        return None  # this host's pods: port-forward connects to the pod IP
