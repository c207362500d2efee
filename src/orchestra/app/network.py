"""Starting a node's network: NetworkPolicy enforcement, the service proxy, cluster DNS.

Owns: `start_node_network` — what kube runs on every node as kube-proxy, node-local DNS and a
network plugin's policy agent — shared by `orchestra up` (`start_network`, the host's node, with
in-process clients, plus the ingress controller) and `orchestra join` (`start_joined_network`, a
joined node over HTTPS as `system:node:<name>`, from the cluster's settings ConfigMap; within
`service_route`, the service range routed to lo while it lasts). Each component runs under a
Supervisor (restarted after a crash). The service range must be routed to lo (net/routes.py) before
`start_node_network`.
Imports happen inside the starters, so the path to "API ready" loads none of them (start-up time).
Must not import: cli.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from orchestra.app.clustersettings import CLUSTER_DOMAIN, ClusterSettings
from orchestra.client.base import Client
from orchestra.controller.supervisor import Supervisor

if TYPE_CHECKING:
    from orchestra.app.config import Cluster

log = logging.getLogger("orchestra")


@attrs.frozen
class NodeNetwork:
    """What one node's network components are told."""

    node: str  # the NetworkPolicy enforcer polices this node's pods
    service_cidr: str
    dns_ip: str  # cluster DNS listens here (the kube-dns ClusterIP)
    domain: str = CLUSTER_DOMAIN
    enforce_policies: bool = True  # False: the node's pods are simulated (they send no packets)
    load_balancer_status: bool = True  # the proxy writes LoadBalancer Services' status (the server's only)
    # the node's own pod networks, published on its Node and routed from the other nodes
    # (net/podroutes.py); () when the node has no real pods
    pod_networks: tuple[str, ...] = ()
    remove_routes_at_exit: bool = False  # --stop-pods: the pod routes and their firewall rules go too


@attrs.define
class NodeNetworkComponents:
    proxy: Any  # net.proxy.ServiceProxy
    dns: Any  # net.dns.ClusterDNS
    netpol: Any = None  # net.netpol.NetworkPolicyEnforcer, when policies are enforced here
    routes: Any = None  # net.podroutes.PodRoutes, when the node has pod networks


async def start_node_network(nursery: trio.Nursery, supervisor: Supervisor,
                             client_for: Callable[[str], Client], net: NodeNetwork,
                             host_ips: list[str]) -> NodeNetworkComponents:
    """NetworkPolicy enforcement, the service proxy (which marks its connections for it), then
    cluster DNS; `client_for(field manager)` is the client each uses."""
    from orchestra.net.dns import ClusterDNS
    from orchestra.net.proxy import ServiceProxy
    from orchestra.net.routes import NetworkSetupError

    _check_dns_address(net.dns_ip)  # before the enforcer replaces the nftables table another one may own
    routes = None
    if net.pod_networks:
        from orchestra.net.podroutes import PodRoutes

        routes = PodRoutes(client_for("pod-routes"), net.node, own_networks=list(net.pod_networks))
        await nursery.start(_pod_routes, supervisor, routes, net.remove_routes_at_exit)
    netpol = None
    if net.enforce_policies:
        netpol = await start_netpol(nursery, supervisor, client_for("network-policy"), net)
    mark = netpol.source_mark if netpol is not None else None
    proxy = ServiceProxy(client_for("kube-proxy"), host_addresses=host_ips, source_mark=mark,
                         load_balancer_status=net.load_balancer_status)
    await nursery.start(supervisor.run, "kube-proxy", proxy.run)
    dns = ClusterDNS(client_for("kube-proxy"), host=net.dns_ip, domain=net.domain)
    try:
        await nursery.start(supervisor.run, "cluster-dns", dns.run)
    except OSError as exc:
        raise NetworkSetupError(
            f"cannot serve cluster DNS on {net.dns_ip}:53 ({exc.strerror or exc}); {_ANOTHER}") from None
    return NodeNetworkComponents(proxy, dns, netpol, routes)


async def _pod_routes(supervisor: Supervisor, routes: Any, remove_at_exit: bool, *,
                      task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The node's routes to the other nodes' pod networks, for the node's lifetime; removed at the end
    with `remove_at_exit` (else kept, like the pods, for the next start)."""
    try:
        await supervisor.run("pod-routes", routes.run, task_status=task_status)
    finally:
        if remove_at_exit:
            with trio.CancelScope(shield=True), trio.move_on_after(15):
                await routes.remove()


def _check_dns_address(dns_ip: str) -> None:
    """NetworkSetupError when the cluster DNS address cannot be bound: another orchestra's network runs
    in this network namespace (or the service range is not routed here)."""
    from orchestra.net.routes import NetworkSetupError

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a bind: no packet, no wait
        try:
            probe.bind((dns_ip, 53))
        except OSError as exc:
            raise NetworkSetupError(
                f"cannot serve cluster DNS on {dns_ip}:53 ({exc.strerror or exc}); {_ANOTHER}") from None


_ANOTHER = ("is another orchestra with networking (a server or a joined node) running in this network "
            "namespace? Stop it, or start this one with --no-network")


async def start_netpol(nursery: trio.Nursery, supervisor: Supervisor, client: Client,
                       net: NodeNetwork) -> Any:
    """The NetworkPolicy enforcer of this node, or None (with a warning that says why) when this host
    cannot enforce policies: then they are stored and served but change no traffic, as in a kube
    cluster whose network plugin does not implement them."""
    from orchestra.net.netpol import HostSettings, NetworkPolicyEnforcer, NftError
    from orchestra.net.netpol.kernel import bridge_filtering, unavailable

    reason = unavailable()
    if reason is None:
        bridge_warning = await trio.to_thread.run_sync(bridge_filtering)
        if bridge_warning:
            log.warning("%s", bridge_warning)
        host = HostSettings(service_cidr=net.service_cidr, dns_ip=net.dns_ip)
        enforcer = NetworkPolicyEnforcer(client, node=net.node, host=host)
        try:
            await nursery.start(supervisor.run, "network-policy", enforcer.run)
            return enforcer
        except NftError as exc:
            reason = f"nft refused the ruleset: {exc}"
    log.warning("NetworkPolicies are not enforced on this node: %s", reason)
    return None


async def start_network(nursery: trio.Nursery, cluster: Cluster) -> None:
    """`orchestra up`'s network: the host node's (policies enforced when it runs Podman pods), then the
    ingress controller. The service range must already be routed to lo."""
    from orchestra.app.components import node_name
    from orchestra.client.local import LocalClient
    from orchestra.net.routes import host_addresses

    host_ips = host_addresses()
    from orchestra.node.podcidr import PODMAN_NETWORK

    config = cluster.config
    net = NodeNetwork(node=node_name(), service_cidr=config.service_cidr,
                      dns_ip=cluster.core.allocator.dns_ip, enforce_policies=config.podman,
                      # the host node's pods are on Podman's own network (not its podCIDR)
                      pod_networks=(PODMAN_NETWORK,) if config.podman else (),
                      remove_routes_at_exit=config.stop_pods_on_exit)
    started = await start_node_network(nursery, cluster.supervisor,
                                       lambda manager: LocalClient(cluster.core, field_manager=manager),
                                       net, host_ips)
    cluster.netpol, cluster.proxy, cluster.dns = started.netpol, started.proxy, started.dns
    if cluster.config.ingress_listen or cluster.config.ingress_tls_listen:
        await start_ingress(nursery, cluster, host_ips)


@asynccontextmanager
async def service_route(settings: ClusterSettings | None) -> AsyncIterator[None]:
    """The service range routed to lo while the context lasts (nothing without `settings`: no network)."""
    from orchestra.net.routes import ServiceRoute

    if settings is None:
        yield
        return
    route = ServiceRoute(settings.service_cidr)
    try:
        await trio.to_thread.run_sync(route.ensure)
        yield
    finally:
        route.remove()


async def start_joined_network(nursery: trio.Nursery, supervisor: Supervisor, client: Client, node: str,
                               settings: ClusterSettings, *, pod_cidr: str,
                               remove_routes_at_exit: bool) -> NodeNetworkComponents:
    """A joined node's network, from the settings the server published (within `service_route`).
    NetworkSetupError, naming --no-network, when the cluster DNS address or a ClusterIP port is taken
    (another orchestra's network in this network namespace)."""
    from orchestra.net.routes import host_addresses

    host_ips = await trio.to_thread.run_sync(host_addresses)
    net = NodeNetwork(node=node, service_cidr=settings.service_cidr, dns_ip=settings.cluster_dns,
                      domain=settings.cluster_domain, load_balancer_status=False, pod_networks=(pod_cidr,),
                      remove_routes_at_exit=remove_routes_at_exit)
    started = await start_node_network(nursery, supervisor, lambda _: client, net, host_ips)
    _check_cluster_ips(started.proxy, settings.service_cidr)
    return started


def _check_cluster_ips(proxy: Any, service_cidr: str) -> None:
    """ClusterIP listeners another socket holds (all of them, when another orchestra's proxy serves this
    network namespace) stop the start; NodePorts and LoadBalancer ports only warn, as in `orchestra up`."""
    from orchestra.net.routes import NetworkSetupError

    network = ipaddress.ip_network(service_cidr, strict=False)
    taken = sorted((k.host, k.port, k.protocol) for k in proxy.in_use
                   if ipaddress.ip_address(k.host) in network)
    if taken:
        host, port, protocol = taken[0]
        raise NetworkSetupError(
            f"the service proxy cannot listen on the ClusterIP {host}:{port}/{protocol}"
            f"{f' (and {len(taken) - 1} more)' if len(taken) > 1 else ''}: the address is in use; {_ANOTHER} "
            f"(or free port {port}, which another program holds on every address)")


async def start_ingress(nursery: trio.Nursery, cluster: Cluster, host_ips: list[str]) -> None:
    """The built-in ingress controller (IngressClass `orchestra`) on the configured listeners; its
    default HTTPS certificate is signed by the cluster CA. A listener that was asked for and cannot
    be bound stops the start; one left at `orchestra up`'s default only logs a warning."""
    from orchestra.apiserver.tls import ensure_serving_cert
    from orchestra.client.local import LocalClient
    from orchestra.net.ingress import IngressController, ListenError
    from orchestra.net.ingress.certs import context_from_files
    from orchestra.net.routes import NetworkSetupError

    config = cluster.config

    def default_context() -> Any:  # files and key parsing: in a worker thread
        cert = ensure_serving_cert(config.state_dir, ["ingress.local", *host_ips], name="ingress")
        return context_from_files(cert.cert, cert.key)

    tls_default = await trio.to_thread.run_sync(default_context) if config.ingress_tls_listen else None
    ingress = IngressController(LocalClient(cluster.core, field_manager="ingress-controller"),
                                http=config.ingress_listen, https=config.ingress_tls_listen,
                                tls_default=tls_default, host_addresses=host_ips,
                                optional=config.ingress_optional)
    try:
        await nursery.start(cluster.supervisor.run, "ingress-controller", ingress.run)
    except ListenError as exc:
        option = "--ingress-listen" if exc.scheme == "http" else "--ingress-tls-listen"
        env = "ORCHESTRA_" + option[2:].upper().replace("-", "_")
        raise NetworkSetupError(
            f"the ingress controller {exc}, which {option} (or {env}) asked for; free the port, "
            f"give another HOST:PORT, or turn it off with `{option} off`"
        ) from None
    cluster.ingress = ingress
