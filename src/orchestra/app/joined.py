"""`orchestra join`: a node of a cluster served elsewhere, with its own Podman.

Owns: the joined node's lifetime: join (node/join.py) unless <state-dir>/kubeconfig already holds a
certificate for that server (a restarted node resumes as itself), its Node registered before any pod
(so the node IPAM controller gives it a podCIDR), its own Podman (the cgroup filesystems mounted
again when started by `ip netns exec`, runtime/cgroupmounts.py; runtime/nodepodman.py: storage, run
state and network of its own, the `orchestra` bridge on the podCIDR, its own `podman system service`
under reaper.py), the node agent as system:node:<name> over HTTPS, certificate rotation, unless
`network` is off the node's network (app/network.py: from the server's kube-system/orchestra-cluster
ConfigMap, the service range routed to lo, the NetworkPolicy enforcer, the service proxy and cluster
DNS, each supervised; the agent gets the cluster DNS address), the Service env of its containers,
and the node's kubelet API (app/kubelet.py: on `kubelet_port`, published in the Node's
daemonEndpoints, with a serving certificate for the Node's InternalIP and hostname from a
kubelet-serving CSR, which the server's approver signs off when those are the Node's addresses;
client certificates of the cluster CA, whose copy from the kubeconfig is <state-dir>/pki/ca.crt), and
its client's failover between the cluster's API servers (app/joinservers.py: learned from the
`kubernetes` Endpoints, kept in <state-dir>/servers.json, every one verified with the cluster CA). On
a stop its pods keep running (adopted on the next start) unless `stop_pods_on_exit`, as `orchestra
up`; what a dead earlier run of the same state dir left is removed at the start
(app/joinleftovers.py), and the pods are labelled with the cluster (its CA's hash) and the state
dir.
Must not import: cli.
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import logging
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
from cryptography import x509

from orchestra.api.errors import AlreadyExists
from orchestra.app.joinleftovers import (
    clear_marker,
    cluster_id_of,
    read_marker,
    remove_idle_bridge,
    remove_leftovers,
    write_marker,
)
from orchestra.app.joinservers import follow_servers, known_servers, load_known
from orchestra.client.http import Endpoint, HttpClient, KubeconfigError, TransportError
from orchestra.node.join import JoinError, JoinRequest, join

log = logging.getLogger("orchestra.join")
STOP_GRACE_CAP = 10


@attrs.frozen
class JoinConfig:
    server: str
    token: str
    node_name: str
    state_dir: Path
    stop_pods_on_exit: bool = False
    wait_seconds: float = 120.0
    certificate_seconds: int | None = None  # requested client certificate lifetime (None: the signer's)
    timings: str = "default"
    kubelet_port: int = 10250  # the kubelet API (kubelet's --port)
    # the node's service proxy, cluster DNS and NetworkPolicy enforcer (app/network.py); off for a node
    # sharing its network namespace with the server or another node (theirs serve it)
    network: bool = True


async def fetch_ca(server: str) -> bytes:
    """The CA the server serves at /cacerts, read without trusting the server (checked by its pin next)."""
    try:
        async with httpx.AsyncClient(base_url=server, verify=False, timeout=10.0) as http:
            resp = await http.get("/cacerts")
    except httpx.HTTPError as exc:
        raise TransportError(str(exc) or type(exc).__name__) from exc
    if resp.status_code != 200:
        raise JoinError(f"{server}/cacerts answered {resp.status_code}: is it an orchestra API server?")
    return resp.content


def _resumable(kubeconfig: Path, server: str) -> bool:
    """A kubeconfig of an earlier join to this server whose certificate is still valid."""
    try:
        endpoint = Endpoint.from_kubeconfig(kubeconfig)
    except (KubeconfigError, OSError):
        return False
    if endpoint.server != server.rstrip("/") or endpoint.cert_data is None:
        return False
    cert = x509.load_pem_x509_certificate(endpoint.cert_data)
    return cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)  # wall-clock


async def node_kubeconfig(cfg: JoinConfig) -> Path:
    path = cfg.state_dir / "kubeconfig"
    if _resumable(path, cfg.server):
        log.info("node %s: resuming with %s", cfg.node_name, path)
        return path
    return await join(JoinRequest(cfg.server.rstrip("/"), cfg.token, cfg.node_name, cfg.state_dir,
                                  wait_seconds=cfg.wait_seconds, expiration_seconds=cfg.certificate_seconds),
                      fetch_ca=fetch_ca, connect=lambda e: HttpClient(e))


async def pod_cidr(client: HttpClient, name: str, *, wait_seconds: float = 30.0) -> str:
    """Register the Node (if new) and wait for the node IPAM controller's podCIDR."""
    rt = client.kind("Node")
    try:
        await client.create(rt, None, {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": name, "labels": {"kubernetes.io/hostname": name}}})
    except AlreadyExists:
        pass  # a rejoin: the Node is ours already
    with trio.move_on_after(wait_seconds):
        while True:
            node = await client.get(rt, None, name)
            cidr = (node.get("spec") or {}).get("podCIDR")
            if cidr:
                return str(cidr)
            await trio.sleep(0.05)
    raise JoinError(f"node {name} got no spec.podCIDR within {wait_seconds:g} s: is the node IPAM controller "
                    "running on the server (`kubectl get node -o yaml`), and is its --cluster-cidr full?")


async def run_joined_node(cfg: JoinConfig, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    from orchestra.app.clustersettings import CLUSTER_DOMAIN
    from orchestra.app.clustersettings import fetch as fetch_settings
    from orchestra.app.components import start_service_env
    from orchestra.app.network import service_route, start_joined_network
    from orchestra.controller.supervisor import Supervisor
    from orchestra.node.agent import AgentConfig, NodeAgent
    from orchestra.node.certrotation import CertificateRotation
    from orchestra.runtime.cgroupmounts import restore_cgroup_mounts
    from orchestra.runtime.images import BUSYBOX_IMAGE
    from orchestra.runtime.nodepodman import NodePodman
    from orchestra.runtime.podman import PodmanRuntime
    from orchestra.runtime.service import PodmanService

    kubeconfig = await node_kubeconfig(cfg)
    servers = known_servers(cfg.server, load_known(cfg.state_dir))  # a restart may find its server gone
    async with HttpClient(Endpoint.from_kubeconfig(kubeconfig), field_manager="kubelet",
                          servers=servers) as client:
        cidr = await pod_cidr(client, cfg.node_name)
        settings = await fetch_settings(client) if cfg.network else None
        await trio.to_thread.run_sync(restore_cgroup_mounts)  # (started by `ip netns exec`)
        podman = NodePodman(cfg.state_dir / "podman")
        await podman.ensure_network(cidr)
        image_loaded = trio.Event()

        async def load_image() -> None:  # meanwhile the service starts; pods wait for it (the agent does)
            try:
                if not await podman.load_host_image(BUSYBOX_IMAGE):
                    log.info("the host has no %s to copy: pods pull their images", BUSYBOX_IMAGE)
            finally:
                image_loaded.set()
        heartbeat: dict[str, Any] = (
            {"lease_renew_seconds": 2.5, "lease_duration_seconds": 10, "status_update_seconds": 2.5}
            if cfg.timings == "fast" else {})
        service_scope = trio.CancelScope()

        async def service(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            with service_scope:
                await PodmanService(podman.dir, env=podman.env).run(task_status=task_status)

        ca_data = Endpoint.from_kubeconfig(kubeconfig).ca_data
        assert ca_data is not None  # join wrote the pinned CA into the kubeconfig
        cluster_id, node_dir = cluster_id_of(ca_data), cfg.state_dir / "node"
        earlier = read_marker(node_dir)  # an earlier run that did not stop cleanly
        async with trio.open_nursery() as nursery:
            nursery.start_soon(load_image)
            socket_path = await nursery.start(service)
            # it outlives a stop until the pods are stopped through it (`up`'s way)
            service_scope.shield = True
            runtime = PodmanRuntime(socket_path)
            stopped_cleanly = False
            try:
                if await remove_leftovers(runtime, cluster_id, earlier):
                    await remove_idle_bridge(podman.interface)
                write_marker(node_dir, cluster_id, cfg.stop_pods_on_exit)
                rotation = CertificateRotation(client, kubeconfig, cfg.node_name,
                                               expiration_seconds=cfg.certificate_seconds)
                # the network components stop before the service range's route goes
                async with service_route(settings), trio.open_nursery() as node:
                    supervisor = Supervisor()  # the network components restart after a crash
                    if settings is not None:  # started beside the agent (it fails the join if it cannot)
                        node.start_soon(functools.partial(
                            start_joined_network, node, supervisor, client, cfg.node_name, settings,
                            pod_cidr=cidr, remove_routes_at_exit=cfg.stop_pods_on_exit))
                    extra_env = await start_service_env(node, supervisor, client)
                    agent = NodeAgent(client, runtime, AgentConfig(
                        node_name=cfg.node_name, state_dir=node_dir, kubelet_port=cfg.kubelet_port,
                        cluster_id=cluster_id, cluster_state_dir=str(cfg.state_dir),
                        cluster_dns=settings.cluster_dns if settings else None,
                        cluster_domain=settings.cluster_domain if settings else CLUSTER_DOMAIN, **heartbeat),
                        extra_env=extra_env)
                    await node.start(functools.partial(follow_servers, client, cfg.server, cfg.state_dir,
                                                       interval=2.0 if cfg.timings == "fast" else 5.0))
                    await image_loaded.wait()
                    await node.start(agent.run)
                    await node.start(rotation.run)
                    node.start_soon(_kubelet_api, cfg, client, kubeconfig, agent, runtime)
                    task_status.started((agent, rotation, cidr))
            finally:
                # the pods go before the Podman service does (it is shielded from the stop until then)
                with trio.CancelScope(shield=True), trio.move_on_after(STOP_GRACE_CAP + 15):
                    if cfg.stop_pods_on_exit:
                        await _stop_pods(runtime)
                        await remove_idle_bridge(podman.interface)
                    await runtime.aclose()
                    stopped_cleanly = True
                if stopped_cleanly:  # else the next start finds the marker and removes what is left
                    clear_marker(node_dir)
                service_scope.cancel()


async def _kubelet_api(cfg: JoinConfig, client: HttpClient, kubeconfig: Path, agent: Any,
                       runtime: Any) -> None:
    """The node's kubelet API, once its serving certificate is issued (pods run meanwhile, as
    kubelet's do)."""
    from orchestra.app.kubelet import kubelet_api
    from orchestra.node.kubeletapi.server import KubeletApiConfig

    pki = cfg.state_dir / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    ca_data = Endpoint.from_kubeconfig(kubeconfig).ca_data
    assert ca_data is not None  # join wrote the pinned CA into the kubeconfig
    (pki / "ca.crt").write_bytes(ca_data)
    addresses = [agent.host.internal_ip, agent.host.hostname]  # the Node's status.addresses
    api = kubelet_api(client, agent, runtime, KubeletApiConfig(cfg.node_name, addresses, pki, pki / "ca.crt",
                                                               port=cfg.kubelet_port))
    async with trio.open_nursery() as nursery:
        try:
            bound = await nursery.start(api.run)
        except* OSError as group:
            if group.subgroup(lambda e: isinstance(e, OSError) and e.errno == errno.EADDRINUSE) is None:
                raise
            raise JoinError(f"the kubelet API cannot listen on port {cfg.kubelet_port}, which another "
                            "program holds: choose another with --kubelet-port") from None
        log.info("node %s: kubelet API serving on %s", cfg.node_name, bound)


async def _stop_pods(runtime: Any) -> None:
    from orchestra.runtime.base import RuntimeFailure

    for sandbox in await runtime.list_sandboxes({}):
        try:
            await runtime.stop_sandbox(sandbox.id, STOP_GRACE_CAP)
            await runtime.remove_sandbox(sandbox.id)
        except RuntimeFailure as exc:  # best effort: the next start adopts or removes what is left
            log.warning("could not remove pod sandbox %s: %s", sandbox.name, exc)
