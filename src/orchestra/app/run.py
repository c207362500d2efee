"""run_cluster(): one trio nursery hosting the store, the API server and every controller.

Owns: start-up order (the local etcd of `--store etcd` → store → signing key, RBAC index and API
core → certificates → bootstrap objects (with the cluster's settings for joined nodes) and RBAC
policy → audit log → HTTP with its authenticators and RBAC → controllers (on etcd: under the leader
election of app/leader.py) → network → node agents) and clean shutdown (the store closes after the
rest, the local etcd stops last). The API answers
(and /readyz says ready) before the rest starts.
Must not import: cli (and so never click or rich).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio
from cryptography import x509

from orchestra.api.policy.admission import AdmissionPlugin
from orchestra.api.policy.allocators import ServiceAllocator
from orchestra.api.policy.certificates import RequesterAdmission
from orchestra.api.policy.noderestriction import NodeRestriction
from orchestra.api.policy.serviceaccount import ServiceAccountAdmission
from orchestra.api.policy.tolerationseconds import DefaultTolerationSeconds
from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.api.request import encryption
from orchestra.api.request.core import ApiCore
from orchestra.api.request.stored import Codec
from orchestra.api.serviceaccount.tokens import TokenIssuer
from orchestra.apiserver.audit.log import AuditLog
from orchestra.apiserver.auth.authn import AdminToken, RequestAuthenticator
from orchestra.apiserver.auth.bootstraptokens import BootstrapTokens
from orchestra.apiserver.auth.escalation import RbacEscalation
from orchestra.apiserver.auth.node import NodeAuthorizer
from orchestra.apiserver.auth.nodegraph import NodeGraph
from orchestra.apiserver.auth.rbac import cluster_authorizer
from orchestra.apiserver.auth.rbacindex import RbacIndex
from orchestra.apiserver.auth.serviceaccounts import ServiceAccountTokens, StoreLookup
from orchestra.apiserver.auth.x509 import ClientCertificates
from orchestra.apiserver.metricsapi import MetricsApi
from orchestra.apiserver.serve import serve_api
from orchestra.apiserver.server import ApiServer
from orchestra.apiserver.streams import PodStreamsHandler
from orchestra.apiserver.tls import ServingCert, ensure_serving_cert
from orchestra.app.bootstrap import bootstrap, in_cluster_names, publish_api_endpoints
from orchestra.app.clustersettings import ClusterSettings
from orchestra.app.components import (
    AgentLocator,
    pod_cidr_plan,
    start_api_services,
    start_controllers,
    start_nodes,
)
from orchestra.app.config import Cluster, ClusterConfig
from orchestra.app.etcdlocal import LOCAL as LOCAL_ETCD
from orchestra.app.etcdlocal import LocalEtcd
from orchestra.app.kubelet import node_getter, remote_containers
from orchestra.app.leader import elected, start_elected_controllers
from orchestra.app.network import start_network
from orchestra.app.rbacpolicy import ensure_bootstrap_policy
from orchestra.app.shutdown import Shutdown
from orchestra.app.state import (
    load_or_create_encryption_config,
    load_or_create_signing_key,
    load_or_create_token,
    open_store,
    prepare_state_dir,
    write_cluster_id,
    write_kubeconfig,
)
from orchestra.net.nodelinks import NodeLinks
from orchestra.net.routes import NetworkSetupError, ServiceRoute
from orchestra.node.metrics import UsageCollector
from orchestra.store import Store

log = logging.getLogger("orchestra")


async def run_cluster(config: ClusterConfig, *, shutdown: Shutdown | None = None,
                      task_status: trio.TaskStatus[Cluster] = trio.TASK_STATUS_IGNORED) -> None:
    """Run every component in one nursery; `started()` hands back a Cluster once the API is ready
    and every controller has synced its caches. `shutdown.stop()` ends it cleanly at any moment,
    start-up included; `shutdown.force()` cuts the clean-up short."""
    shutdown = shutdown or Shutdown()
    state = prepare_state_dir(Path(config.state_dir))
    links = None
    if config.nodes > 1:  # the workers' link first: the API server listens on its host end
        links, config = _node_links(config)
    route = ServiceRoute(config.service_cidr)
    async with trio.open_nursery() as outlasting:  # the local etcd: stopped after the store closed
        try:
            with shutdown.scope:
                config = await _local_etcd(outlasting, config, state)
                token = await _cluster_token(config, state)
                store = await open_store(config)
                try:
                    await _run(config, shutdown, state, token, store, route, links, task_status)
                finally:
                    with trio.CancelScope(shield=True):
                        await store.aclose()
        finally:
            route.remove()
            outlasting.cancel_scope.cancel()


async def _cluster_token(config: ClusterConfig, state: Path) -> str:
    """The admin token, after (with an etcd store) the state directory took the shared files of the
    cluster in that etcd, or gave them to it (app/clusterbootstrap.py)."""
    from orchestra.app.clusterbootstrap import check_given_token, share_bootstrap
    from orchestra.app.state import etcd_tls, refuse_unfinished_migration

    if config.store.startswith(("etcd://", "etcds://")):
        tls = etcd_tls(config)
        await refuse_unfinished_migration(config.store, tls)  # before anything is written into that etcd
        log.info("%s", await share_bootstrap(config.store, state, config.cluster_token, tls=tls))
    else:
        check_given_token(state, config.cluster_token)
    return load_or_create_token(state, config.cluster_token)


async def _local_etcd(nursery: trio.Nursery, config: ClusterConfig, state: Path) -> ClusterConfig:
    """With `--store etcd`: start the local etcd under <state-dir>/etcd (app/etcdlocal.py) and return
    the config with its URL once it is healthy. It runs in `nursery`, which outlasts the cluster: a
    stop of the cluster (--stop-pods clean-up included) still has its store."""
    if config.store != LOCAL_ETCD:
        return config
    url = await nursery.start(LocalEtcd(state / "etcd").run)
    return attrs.evolve(config, store=url)


async def _run(
    config: ClusterConfig,
    shutdown: Shutdown,
    state: Path,
    token: str,
    store: Store,
    route: ServiceRoute,
    links: NodeLinks | None,
    task_status: trio.TaskStatus[Cluster],
) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        tokens = TokenIssuer(load_or_create_signing_key(state))
        codec, new_key = _open_codec(state)
        rbac = RbacIndex(store, decode=codec.decode)
        authorizer = cluster_authorizer(rbac, node=NodeAuthorizer(NodeGraph(store)))
        core = await _open_core(config, store, codec, new_key, tokens=tokens,
                                admission=(ServiceAccountAdmission(), RbacEscalation(rbac, authorizer),
                                           RequesterAdmission(), NodeRestriction(),
                                           DefaultTolerationSeconds(*config.toleration_seconds())))
        tls = ensure_serving_cert(state, [*api_hosts(config), *in_cluster_names(core)])
        await bootstrap(core, ca_pem=tls.ca_cert.read_text(), settings=ClusterSettings(
            service_cidr=config.service_cidr, cluster_cidr=pod_cidr_plan(config)[0],
            cluster_dns=core.allocator.dns_ip))
        await ensure_bootstrap_policy(core)
        audit = AuditLog(state / "audit.log", max_bytes=config.audit_max_bytes, backups=config.audit_backups)
        await nursery.start(audit.run)
        locator = AgentLocator(remote=remote_containers(state, node_getter(core)))
        usage = UsageCollector(locator.all_runtimes, lambda: set(locator.runtimes), pods=_pod_lister(core))
        server = ApiServer(core, token=token, server_address=f"{config.listen_host}:{config.listen_port}",
                           pod_streams=PodStreamsHandler(locator), metrics=MetricsApi(core, usage),
                           authenticator=_authenticator(core, token, tokens, tls), audit=audit,
                           authorizer=authorizer, rbac=rbac, ca_pem=tls.ca_cert.read_bytes())
        bound = await nursery.start(serve_api, server, config.listen_host, config.listen_port, tls)
        url = _url(bound, config)
        advertised = config.advertise_address
        if advertised and config.listen_host not in ("0.0.0.0", advertised):  # a listener of its own
            await nursery.start(serve_api, server, advertised, config.listen_port, tls)
        kubeconfig = state / "kubeconfig"
        write_kubeconfig(kubeconfig, url, token, tls.ca_cert)
        if not (config.controllers and elected(config)):  # else each server lists the live ones (servers.py)
            await publish_api_endpoints(core, f"https://{advertised}:{config.listen_port}" if advertised
                                        else url)
        server.ready = True
        cluster = Cluster(config, store, core, server, token, kubeconfig, url, tls.ca_cert, locator=locator,
                          shutdown=shutdown, audit=audit, tokens=tokens)
        log.info("API server ready at %s; kubeconfig %s", url, kubeconfig)
        write_cluster_id(state, cluster.cluster_id)
        await start_api_services(nursery, cluster)
        if config.controllers and elected(config):  # servers sharing etcd: controllers on the leader
            await start_elected_controllers(nursery, cluster)
        elif config.controllers:
            await start_controllers(nursery, cluster)
        if config.network:
            route.ensure()
            await start_network(nursery, cluster)
        await start_nodes(nursery, cluster)
        if links is not None:
            from orchestra.app.multinode import WorkerNodes

            cluster.workers = await nursery.start(WorkerNodes(cluster, links).run)
        task_status.started(cluster)


def _node_links(config: ClusterConfig) -> tuple[NodeLinks, ClusterConfig]:
    """The worker nodes' link (its bridge made now), and the config with the API server advertised on
    the bridge's address (unless an address was given)."""
    from orchestra.app.multinode import check_state_dir

    if not (config.network and config.podman):
        raise NetworkSetupError("--nodes needs Podman and service networking: drop --no-podman and "
                                "--no-network")
    check_state_dir(Path(config.state_dir), config.nodes)
    links = NodeLinks(config.node_link_cidr)
    address = links.ensure_bridge()
    return links, attrs.evolve(config, advertise_address=config.advertise_address or address)


def api_hosts(config: ClusterConfig) -> list[str]:
    """The addresses the serving certificate covers: the listen address, the advertised one, the
    --tls-san names, and for a wildcard listener every address of this host (nodes joining from
    elsewhere dial one of them)."""
    from orchestra.net.routes import host_addresses

    hosts = [config.listen_host]
    if config.advertise_address:
        hosts.append(config.advertise_address)
    hosts += config.tls_sans
    if config.listen_host in ("0.0.0.0", "::"):
        hosts += ["127.0.0.1", *host_addresses()]
    return list(dict.fromkeys(hosts))


def _authenticator(core: ApiCore, token: str, tokens: TokenIssuer, tls: ServingCert) -> RequestAuthenticator:
    """kube-apiserver's: client certificates of the cluster CA, the admin token, ServiceAccount tokens,
    bootstrap tokens."""
    certificates = ClientCertificates(x509.load_pem_x509_certificate(tls.ca_cert.read_bytes()))
    service_accounts = ServiceAccountTokens(tokens.verifier(), StoreLookup(core), clock=tokens.clock)
    bootstrap_tokens = BootstrapTokens(StoreLookup(core), tokens.audiences)
    return RequestAuthenticator([AdminToken(token, tokens.audiences), service_accounts, bootstrap_tokens],
                                certificates=certificates, api_audiences=tokens.audiences)


def _pod_lister(core: ApiCore) -> Callable[[str], list[dict[str, Any]]]:
    """namespace -> its pods (the scripted usage of simulated pods is in their annotations)."""
    rt = core.registry.by_kind("Pod")
    assert rt is not None
    return lambda namespace: core.list(rt, namespace).items


def _open_codec(state: Path) -> tuple[Codec, bool]:
    """Objects <-> store values, with Secrets encrypted at rest under the state directory's key, and
    whether that key is new."""
    doc, created = load_or_create_encryption_config(state)
    return Codec(encryption.transformers(doc, DEFAULT_REGISTRY)), created


async def _open_core(config: ClusterConfig, store: Store, codec: Codec, new_key: bool, *, tokens: TokenIssuer,
                     admission: tuple[AdmissionPlugin, ...]) -> ApiCore:
    """The API core (signing ServiceAccount tokens with `tokens`, with the `admission` plugins: the
    ServiceAccount plugin and RBAC's escalation checks) on `codec`. Secrets stored unencrypted (by an
    older orchestra) are encrypted now, once; then, when anything was rewritten or the key is new, a
    snapshot drops the old log segments that held them in the clear."""
    core = ApiCore(store, allocator=ServiceAllocator(config.service_cidr), codec=codec, tokens=tokens,
                   admission=admission)
    rewritten = await encryption.rewrite_stale(store, core.codec)
    if rewritten:
        log.info("encrypted %d stored values written before encryption at rest was configured", rewritten)
    if rewritten or (new_key and store.revision):
        await store.snapshot()
    return core


def _url(bound: list[str], config: ClusterConfig) -> str:
    for b in bound or []:
        if b.startswith("https://"):
            return b
    return f"https://{config.listen_host}:{config.listen_port}"
