"""Starting the components that come after the API: controllers, network, node agents.

Each long-lived component runs under the cluster's Supervisor (controller/supervisor.py): one that
raises is logged, counted and restarted with backoff, and never ends the process.
Imports happen inside each starter, so the path to "API ready" loads none of them (start-up time).
Must not import: cli.
"""

from __future__ import annotations

import logging
import re
import socket
from typing import Any

import trio

from orchestra.app.config import Cluster
from orchestra.client.local import LocalClient
from orchestra.controller import SharedInformers

log = logging.getLogger("orchestra")


async def start_controllers(nursery: trio.Nursery, cluster: Cluster) -> None:
    """kube-controller-manager's controllers and the scheduler, each started once its caches synced."""
    from orchestra.reconcilers.cluster import cluster_controllers
    from orchestra.reconcilers.node_lifecycle import DEFAULT_TIMINGS, FAST_TIMINGS
    from orchestra.reconcilers.scheduler import Scheduler
    from orchestra.reconcilers.workloads import workload_controllers

    client = LocalClient(cluster.core, field_manager="kube-controller-manager")
    timings = FAST_TIMINGS if cluster.config.timings == "fast" else DEFAULT_TIMINGS
    scheduler = Scheduler(LocalClient(cluster.core, field_manager="default-scheduler"))
    volumes_root = cluster.config.state_dir / "volumes"
    controllers: list[Any] = [*cluster_controllers(client, timings=timings, volumes_root=volumes_root),
                              scheduler, *workload_controllers(client)]
    for controller in controllers:
        await nursery.start(cluster.supervisor.run, controller.name, controller.run)
        cluster.controllers.append(controller)


async def start_network(nursery: trio.Nursery, cluster: Cluster) -> None:
    """The service proxy and cluster DNS (the service range must already be routed to lo)."""
    from orchestra.net.dns import ClusterDNS
    from orchestra.net.proxy import ServiceProxy
    from orchestra.net.routes import NetworkSetupError, host_addresses

    client = LocalClient(cluster.core, field_manager="kube-proxy")
    host_ips = host_addresses()
    proxy = ServiceProxy(client, host_addresses=host_ips)
    await nursery.start(cluster.supervisor.run, "kube-proxy", proxy.run)
    dns = ClusterDNS(client, host=cluster.core.allocator.dns_ip)
    try:
        await nursery.start(cluster.supervisor.run, "cluster-dns", dns.run)
    except OSError as exc:
        raise NetworkSetupError(
            f"cannot serve cluster DNS on {cluster.core.allocator.dns_ip}:53 ({exc.strerror or exc}); is another "
            "orchestra with networking running on this host? Stop it, or start this one with --no-network") from None
    cluster.proxy, cluster.dns = proxy, dns


async def start_nodes(nursery: trio.Nursery, cluster: Cluster) -> None:
    """The node agents: this host's (Podman) and, with --simulate-nodes, N simulated ones."""
    from orchestra.net.service_env import env_for_pod
    from orchestra.node.agent import AgentConfig, NodeAgent
    from orchestra.node.simulated import SimulatedNodes
    from orchestra.runtime.images import ensure_busybox_image
    from orchestra.runtime.podman import PodmanRuntime
    from orchestra.runtime.service import PodmanService, given_socket
    from orchestra.runtime.simulated import SimScript, SimulatedRuntime

    config = cluster.config
    if not (config.podman or config.simulate_nodes):
        return
    client = LocalClient(cluster.core, field_manager="kubelet")
    services = SharedInformers.of(client).informer(cluster.core.registry.by_kind("Service"))  # type: ignore[arg-type]
    if not services.running:  # shared: the endpoints controller may have started it already
        await nursery.start(cluster.supervisor.run, "service-informer", services.run)
    await services.wait_synced()

    def extra_env(pod: dict[str, Any]) -> dict[str, str]:
        return env_for_pod(pod, services.list())

    dns = cluster.core.allocator.dns_ip if config.network else None
    # with fast node-failure detection (10 s grace) kubelets must renew faster than every 10 s
    heartbeat: dict[str, Any] = ({"lease_renew_seconds": 2.5, "lease_duration_seconds": 10, "status_update_seconds": 2.5}
                                 if config.timings == "fast" else {})
    if config.podman:
        cluster_id = cluster.core.get(cluster.core.registry.by_kind("Namespace"), None, "kube-system")["metadata"]["uid"]  # type: ignore[arg-type]
        # The Podman service must outlive the cluster's cancellation long enough for _close_on_exit to
        # remove pods (--stop-pods) through it; _close_on_exit cancels it last.
        service_scope = trio.CancelScope(shield=True)

        async def podman_service(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            with service_scope:
                await PodmanService(config.state_dir / "podman").run(task_status=task_status)

        socket_path = given_socket() or await nursery.start(podman_service)
        runtime = PodmanRuntime(socket_path)
        nursery.start_soon(_close_on_exit, runtime, cluster_id if config.stop_pods_on_exit else None, service_scope)
        await ensure_busybox_image(config.state_dir / "podman")
        agent = NodeAgent(client, runtime, AgentConfig(
            node_name=node_name(), state_dir=config.state_dir / "node", cluster_dns=dns, control_plane=True,
            cluster_id=cluster_id, **heartbeat), extra_env=extra_env)
        await nursery.start(cluster.supervisor.run, f"kubelet {agent.node_name}", agent.run)
        cluster.agents.append(agent)
        cluster.locator.runtimes[agent.node_name] = runtime
    if config.simulate_nodes:
        sim = SimulatedRuntime(SimScript(pull_any=True))
        await nursery.start(sim.run)
        cluster.locator.fallback = sim
        nodes = SimulatedNodes(client, sim, config.simulate_nodes, state_dir=config.state_dir / "sim-nodes",
                               extra_env=extra_env, cluster_dns=dns,
                               **({**heartbeat, "heartbeat_jitter": 2.0} if heartbeat else {}))
        await nursery.start(cluster.supervisor.run, "simulated-nodes", nodes.run)
        cluster.agents.append(nodes)


STOP_GRACE = 10  # seconds each pod gets to stop on `orchestra up --stop-pods` exit


def node_name() -> str:
    """This host's node name: its hostname as a DNS-1123 subdomain."""
    raw = socket.gethostname().lower()
    name = re.sub(r"[^a-z0-9.-]", "-", raw).strip("-.") or "orchestra"
    return name[:63]


async def _close_on_exit(runtime: Any, stop_cluster: str | None, service_scope: trio.CancelScope) -> None:
    """When the cluster shuts down: with `stop_cluster` (a cluster id), stop and remove its pods
    (`orchestra up --stop-pods`; by default they keep running and are adopted on the next start),
    then close the runtime's connections."""
    from orchestra.node.sandbox import LABEL_CLUSTER
    from orchestra.runtime.base import RuntimeFailure

    try:
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            if stop_cluster:
                async def remove(sandbox_id: str) -> None:
                    try:
                        await runtime.stop_sandbox(sandbox_id, STOP_GRACE)
                        await runtime.remove_sandbox(sandbox_id)
                    except RuntimeFailure as exc:  # best effort: the next start removes orphans
                        log.warning("could not remove pod sandbox %s: %s", sandbox_id[:12], exc)

                with trio.move_on_after(60):
                    # all at once: pods that ignore SIGTERM each wait out the grace period
                    async with trio.open_nursery() as removals:
                        for sandbox in await runtime.list_sandboxes({LABEL_CLUSTER: stop_cluster}):
                            removals.start_soon(remove, sandbox.id)
            await runtime.aclose()
        service_scope.cancel()  # now the Podman service this cluster started may stop


class AgentLocator:
    """Finds a pod's containers for logs/exec/attach/port-forward: the runtime of the node the pod runs on."""

    def __init__(self) -> None:
        self.runtimes: dict[str, Any] = {}  # node name -> runtime
        self.fallback: Any = None  # the simulated runtime serves every sim-node-N

    def all_runtimes(self) -> dict[str, Any]:
        """Node name -> runtime for the host's nodes, plus the simulated runtime (under "*")."""
        return {**self.runtimes, **({"*": self.fallback} if self.fallback is not None else {})}

    def runtime_for(self, pod: dict[str, Any]) -> Any:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        return self.runtimes.get(node, self.fallback)

    async def locate(self, pod: dict[str, Any], container: str, *, previous: bool = False) -> tuple[Any, str]:
        from orchestra.api.errors import BadRequest
        from orchestra.node.agent import ContainerLookupError, find_container

        runtime = self.runtime_for(pod)
        if runtime is None:
            name = (pod.get("metadata") or {}).get("name", "")
            raise BadRequest(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
        try:
            ref = await find_container(runtime, pod, container or None, previous=previous)
        except ContainerLookupError as exc:
            raise BadRequest(str(exc)) from None
        return ref.runtime, ref.container_id

    def pod_ip(self, pod: dict[str, Any]) -> str | None:
        ip = (pod.get("status") or {}).get("podIP")
        return str(ip) if ip else None
