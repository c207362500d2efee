"""run_cluster(): one trio nursery hosting the store, the API server and every controller.

Owns: start-up order (store → API core → bootstrap objects → HTTP → controllers → node agents),
the state directory layout (store, token, kubeconfig), and clean shutdown.
Must not import: cli (and so never click or rich).
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Any

import attrs
import orjson
import trio

from orchestra.api.allocators import DEFAULT_SERVICE_CIDR, ServiceAllocator
from orchestra.api.core import ApiCore
from orchestra.api.errors import AlreadyExists
from orchestra.apiserver.serve import serve_api
from orchestra.apiserver.server import ApiServer
from orchestra.apiserver.tls import ensure_serving_cert
from orchestra.client.local import LocalClient
from orchestra.controller import SharedInformers
from orchestra.net.dns import ClusterDNS
from orchestra.net.proxy import SERVED_BY_ORCHESTRA, ServiceProxy
from orchestra.net.routes import ServiceRoute, host_addresses
from orchestra.net.service_env import env_for_pod
from orchestra.node.agent import AgentConfig, NodeAgent
from orchestra.node.simulated import SimulatedNodes
from orchestra.reconcilers.cluster import run_cluster_controllers
from orchestra.reconcilers.node_lifecycle import DEFAULT_TIMINGS, FAST_TIMINGS
from orchestra.reconcilers.scheduler import Scheduler
from orchestra.reconcilers.workloads import workload_controllers
from orchestra.runtime.images import ensure_busybox_image
from orchestra.runtime.podman import PodmanRuntime
from orchestra.runtime.service import PodmanService, given_socket
from orchestra.runtime.simulated import SimulatedRuntime
from orchestra.store import Store

log = logging.getLogger("orchestra")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@attrs.frozen
class ClusterConfig:
    state_dir: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 6443
    store: str = "durable"  # "durable" | "memory"
    simulate_nodes: int = 0
    apply_paths: tuple[Path, ...] = ()
    dashboard: bool = False
    podman: bool = True
    fsync: str = "always"
    network: bool = False  # service proxy + cluster DNS (root: routes the service range); `orchestra up` turns it on
    controllers: bool = True
    timings: str = "default"  # node lifecycle: "default" (Kubernetes' 40 s grace) or "fast" (10 s)
    service_cidr: str = DEFAULT_SERVICE_CIDR


@attrs.define
class Cluster:
    """Handles to the running pieces, given to whoever started the cluster (tests, the dashboard)."""

    config: ClusterConfig
    store: Store
    core: ApiCore
    server: ApiServer
    token: str
    kubeconfig: Path
    url: str
    ca_cert: Path
    controllers: list[Any] = attrs.field(factory=list)
    proxy: Any = None
    dns: Any = None
    agents: list[Any] = attrs.field(factory=list)


def load_or_create_token(state_dir: Path) -> str:
    """The bearer token every API request needs; created once, mode 0600."""
    path = state_dir / "token"
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def write_kubeconfig(path: Path, url: str, token: str, ca_cert: Path) -> None:
    ca_data = base64.b64encode(ca_cert.read_bytes()).decode()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "orchestra", "cluster": {"server": url, "certificate-authority-data": ca_data}}],
        "users": [{"name": "orchestra-admin", "user": {"token": token}}],
        "contexts": [{"name": "orchestra", "context": {"cluster": "orchestra", "user": "orchestra-admin", "namespace": "default"}}],
        "current-context": "orchestra",
        "preferences": {},
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def open_store(config: ClusterConfig) -> Store:
    if config.store == "memory":
        return Store.open_memory()
    return Store.open_durable(config.state_dir / "store", fsync=config.fsync)  # type: ignore[arg-type]


async def bootstrap(core: ApiCore) -> None:
    """Objects every cluster has: the system namespaces and the `kubernetes` Service."""
    ns_rt = core.registry.by_kind("Namespace")
    svc_rt = core.registry.by_kind("Service")
    assert ns_rt and svc_rt
    for ns in SYSTEM_NAMESPACES:
        try:
            await core.create(ns_rt, None, {"metadata": {"name": ns}})
        except AlreadyExists:
            pass  # restart: already there
    well_known = [
        ("default", {"metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                     "spec": {"clusterIP": core.allocator.kubernetes_ip,
                              "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}}),
        # served by orchestra's own DNS server on this ClusterIP, not by pods (so: no selector)
        ("kube-system", {"metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns"},
                                      "annotations": {SERVED_BY_ORCHESTRA: "dns"}},
                         "spec": {"clusterIP": core.allocator.dns_ip,
                                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}),
    ]
    for ns, svc in well_known:
        try:
            await core.create(svc_rt, ns, svc)
        except AlreadyExists:
            pass


async def run_cluster(config: ClusterConfig, *, task_status: trio.TaskStatus[Cluster] = trio.TASK_STATUS_IGNORED) -> None:
    """Run every component in one nursery; `started()` hands back a Cluster once the API is ready
    and every controller has synced its caches."""
    state = _prepare_state_dir(Path(config.state_dir))
    token = load_or_create_token(state)
    store = open_store(config)
    route = ServiceRoute(config.service_cidr)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            core = ApiCore(store, allocator=ServiceAllocator(config.service_cidr))
            await bootstrap(core)
            server = ApiServer(core, token=token, server_address=f"{config.listen_host}:{config.listen_port}")
            tls = ensure_serving_cert(state, [config.listen_host])
            bound = await nursery.start(serve_api, server, config.listen_host, config.listen_port, tls)
            url = _url(bound, config)
            kubeconfig = state / "kubeconfig"
            write_kubeconfig(kubeconfig, url, token, tls.ca_cert)
            server.ready = True
            cluster = Cluster(config, store, core, server, token, kubeconfig, url, tls.ca_cert)
            log.info("API server ready at %s; kubeconfig %s", url, kubeconfig)
            if config.controllers:
                await _start_controllers(nursery, cluster)
            if config.network:
                route.ensure()
                await _start_network(nursery, cluster)
            await _start_nodes(nursery, cluster)
            task_status.started(cluster)
    finally:
        route.remove()
        store.close()


async def _start_controllers(nursery: trio.Nursery, cluster: Cluster) -> None:
    client = LocalClient(cluster.core, field_manager="kube-controller-manager")
    timings = FAST_TIMINGS if cluster.config.timings == "fast" else DEFAULT_TIMINGS
    cluster.controllers.extend(await nursery.start(functools.partial(run_cluster_controllers, client, timings=timings)))
    scheduler_client = LocalClient(cluster.core, field_manager="default-scheduler")
    scheduler = Scheduler(scheduler_client)
    await nursery.start(scheduler.run)
    cluster.controllers.append(scheduler)
    for controller in workload_controllers(client):
        await nursery.start(controller.run)
        cluster.controllers.append(controller)


async def _start_network(nursery: trio.Nursery, cluster: Cluster) -> None:
    client = LocalClient(cluster.core, field_manager="kube-proxy")
    host_ips = host_addresses()
    proxy = ServiceProxy(client, host_addresses=host_ips)
    await nursery.start(proxy.run)
    dns = ClusterDNS(client, host=cluster.core.allocator.dns_ip)
    await nursery.start(dns.run)
    cluster.proxy, cluster.dns = proxy, dns


async def _start_nodes(nursery: trio.Nursery, cluster: Cluster) -> None:
    """The node agents: this host's (Podman) and, with --simulate-nodes, N simulated ones."""
    config = cluster.config
    if not (config.podman or config.simulate_nodes):
        return
    client = LocalClient(cluster.core, field_manager="kubelet")
    services = SharedInformers.of(client).informer(cluster.core.registry.by_kind("Service"))  # type: ignore[arg-type]
    await nursery.start(services.run)

    def extra_env(pod: dict[str, Any]) -> dict[str, str]:
        return env_for_pod(pod, services.list())

    dns = cluster.core.allocator.dns_ip if config.network else None
    if config.podman:
        socket_path = given_socket() or await nursery.start(PodmanService(config.state_dir / "podman").run)
        await ensure_busybox_image(config.state_dir / "podman")
        runtime = PodmanRuntime(socket_path)
        cluster_id = cluster.core.get(cluster.core.registry.by_kind("Namespace"), None, "kube-system")["metadata"]["uid"]  # type: ignore[arg-type]
        agent = NodeAgent(client, runtime, AgentConfig(
            node_name=node_name(), state_dir=config.state_dir / "node", cluster_dns=dns, control_plane=True,
            cluster_id=cluster_id), extra_env=extra_env)
        await nursery.start(agent.run)
        cluster.agents.append(agent)
    if config.simulate_nodes:
        sim = SimulatedRuntime()
        await nursery.start(sim.run)
        nodes = SimulatedNodes(client, sim, config.simulate_nodes, state_dir=config.state_dir / "sim-nodes",
                               extra_env=extra_env, cluster_dns=dns)
        await nursery.start(nodes.run)
        cluster.agents.append(nodes)


def node_name() -> str:
    """This host's node name: its hostname as a DNS-1123 subdomain."""
    raw = socket.gethostname().lower()
    name = re.sub(r"[^a-z0-9.-]", "-", raw).strip("-.") or "orchestra"
    return name[:63]


def _prepare_state_dir(state: Path) -> Path:
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)  # holds the token, the CA key and the store
    return state


def _url(bound: list[str], config: ClusterConfig) -> str:
    for b in bound or []:
        if b.startswith("https://"):
            return b
    return f"https://{config.listen_host}:{config.listen_port}"
