"""What a joined node's network may read as `system:node:<name>`, and nothing more: the bootstrap policy
binds `system:nodes` to kube's `system:node-proxier` and to `orchestra:node-network`, and lets nodes
and bootstrap tokens get the `kube-system/orchestra-cluster` ConfigMap (and no other ConfigMap).

Two ways: the authorizer (Node, then RBAC, as the API server chains them) decides a table of
requests; and the real components — the service proxy, cluster DNS, the NetworkPolicy enforcer (its
nft faked: this test must not touch the host's ruleset) and the Service env informer — run as a node
over HTTPS against an in-process `run_cluster`, with a client certificate of the cluster CA: each
lists, then follows its watch, and the node's writes and other reads are refused."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from orchestra.api.errors import Forbidden
from orchestra.api.request.core import ApiCore
from orchestra.api.user import UserInfo
from orchestra.apiserver.auth.authz import Decision
from orchestra.apiserver.auth.node import NodeAuthorizer
from orchestra.apiserver.auth.nodegraph import NodeGraph
from orchestra.apiserver.auth.rbac import cluster_authorizer
from orchestra.apiserver.auth.rbacindex import RbacIndex
from orchestra.apiserver.requestinfo import request_info
from orchestra.apiserver.tls import issue_client_cert
from orchestra.app import ClusterConfig, run_cluster
from orchestra.app.bootstrap import bootstrap
from orchestra.app.clustersettings import ClusterSettings, fetch
from orchestra.app.components import start_service_env
from orchestra.app.config import Cluster
from orchestra.app.rbacpolicy import ensure_bootstrap_policy
from orchestra.client.http import Endpoint, HttpClient
from orchestra.client.local import LocalClient
from orchestra.controller.informer import Informer
from orchestra.controller.supervisor import Supervisor
from orchestra.net.common import kind
from orchestra.net.dns import ClusterDNS
from orchestra.net.netpol import HostSettings, NetworkPolicyEnforcer
from orchestra.net.proxy import ServiceProxy
from orchestra.store import Store
from tests.net.test_netpol_reconciler import FakeNft

NODE = UserInfo("system:node:n1", groups=("system:nodes", "system:authenticated"))
BOOTSTRAP = UserInfo("system:bootstrap:abcdef", groups=("system:bootstrappers", "system:authenticated"))
SOMEONE = UserInfo("jane", groups=("system:authenticated",))
SETTINGS = "/api/v1/namespaces/kube-system/configmaps/orchestra-cluster"
NP = "/apis/networking.k8s.io/v1"

# (user, method, path, query, allowed)
TABLE: dict[str, tuple[UserInfo, str, str, dict[str, list[str]], bool]] = {
    # what the proxy, DNS and the Service env watch (system:node-proxier, the Node rules)
    "list-services": (NODE, "GET", "/api/v1/services", {}, True),
    "watch-services": (NODE, "GET", "/api/v1/services", {"watch": ["1"]}, True),
    "list-slices": (NODE, "GET", "/apis/discovery.k8s.io/v1/endpointslices", {}, True),
    "watch-slices": (NODE, "GET", "/apis/discovery.k8s.io/v1/endpointslices", {"watch": ["1"]}, True),
    # what the NetworkPolicy enforcer watches (pods: the Node rules; the rest: orchestra:node-network)
    "watch-pods": (NODE, "GET", "/api/v1/pods", {"watch": ["1"]}, True),
    "list-namespaces": (NODE, "GET", "/api/v1/namespaces", {}, True),
    "watch-namespaces": (NODE, "GET", "/api/v1/namespaces", {"watch": ["1"]}, True),
    "list-policies": (NODE, "GET", f"{NP}/networkpolicies", {}, True),
    "watch-policies": (NODE, "GET", f"{NP}/networkpolicies", {"watch": ["1"]}, True),
    # the settings ConfigMap, and no other
    "get-settings": (NODE, "GET", SETTINGS, {}, True),
    "bootstrap-get-settings": (BOOTSTRAP, "GET", SETTINGS, {}, True),
    "no-other-configmap": (NODE, "GET", "/api/v1/namespaces/kube-system/configmaps/other", {}, False),
    "no-configmap-list": (NODE, "GET", "/api/v1/namespaces/kube-system/configmaps", {}, False),
    "no-settings-update": (NODE, "PUT", SETTINGS, {}, False),
    "no-settings-for-others": (SOMEONE, "GET", SETTINGS, {}, False),
    # nothing more: reads only, no policy or namespace writes, no Secrets
    "no-policy-create": (NODE, "POST", f"{NP}/namespaces/default/networkpolicies", {}, False),
    "no-policy-delete": (NODE, "DELETE", f"{NP}/namespaces/default/networkpolicies/p", {}, False),
    "no-namespace-get": (NODE, "GET", "/api/v1/namespaces/default", {}, False),
    "no-namespace-delete": (NODE, "DELETE", "/api/v1/namespaces/default", {}, False),
    "no-service-status": (NODE, "PATCH", "/api/v1/namespaces/default/services/s/status", {}, False),
    "no-slice-write": (NODE, "POST", "/apis/discovery.k8s.io/v1/namespaces/d/endpointslices", {}, False),
    "no-secret-list": (NODE, "GET", "/api/v1/secrets", {}, False),
    "no-policies-for-others": (SOMEONE, "GET", f"{NP}/networkpolicies", {}, False),
    "no-bootstrap-policies": (BOOTSTRAP, "GET", f"{NP}/networkpolicies", {}, False),
}


@pytest.fixture
async def authorizer() -> AsyncIterator[Any]:
    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    await ensure_bootstrap_policy(core)
    yield cluster_authorizer(RbacIndex(store), node=NodeAuthorizer(NodeGraph(store)))
    store.close()


@pytest.mark.parametrize(("user", "method", "path", "query", "allowed"), list(TABLE.values()),
                         ids=list(TABLE))
async def test_what_a_node_may_read_for_its_network(authorizer: Any, user: UserInfo, method: str, path: str,
                                              query: dict[str, list[str]], allowed: bool) -> None:
    decision, _ = authorizer.authorize(user, request_info(method, path, query))
    assert (decision is Decision.ALLOW) == allowed


async def _node_client(cluster: Cluster, state: Path) -> HttpClient:
    cert, key = issue_client_cert(state, "system:node:n1", ["system:nodes"])
    return HttpClient(Endpoint(server=cluster.url, ca_data=cluster.ca_cert.read_bytes(), cert_data=cert,
                               key_data=key), field_manager="kubelet")


async def _until(informer: Informer, namespace: str | None, name: str) -> None:
    """Wait for the object to arrive in the informer's cache (through its watch)."""
    arrived = trio.Event()
    informer.add_handler(lambda _t, _old, new: arrived.set() if new and new["metadata"]["name"] == name
                         else None)
    if informer.get(namespace, name) is None:
        await arrived.wait()


async def test_the_network_components_run_as_a_node(tmp_path: Path) -> None:
    config = ClusterConfig(state_dir=tmp_path, listen_port=0, store="memory", podman=False, network=False,
                           controllers=False)
    loopback = f"127.{random.randint(10, 250)}.{random.randint(1, 250)}.1"  # nobody's: the proxy's
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            cluster: Cluster = await nursery.start(run_cluster, config)
            async with await _node_client(cluster, tmp_path) as node:
                settings = await fetch(node)
                assert settings == ClusterSettings(service_cidr=config.service_cidr,
                                                   cluster_cidr="10.244.0.0/16",
                                                   cluster_dns=cluster.core.allocator.dns_ip)
                supervisor = Supervisor()
                proxy = ServiceProxy(node, host_addresses=[], bind=lambda _: loopback,
                                     nodeport_host=loopback, load_balancer_status=False)
                dns = ClusterDNS(node, host="127.0.0.1", port=0, upstreams=[])
                host = HostSettings(service_cidr=settings.service_cidr, dns_ip=settings.cluster_dns)
                nft: Any = FakeNft()  # the host's ruleset is not this test's
                enforcer = NetworkPolicyEnforcer(node, node="n1", nft=nft, host=host)
                for name, component in (("kube-proxy", proxy), ("cluster-dns", dns),
                                        ("network-policy", enforcer)):
                    await nursery.start(supervisor.run, name, component.run)
                extra_env = await start_service_env(nursery, supervisor, node)
                env = extra_env({"metadata": {"namespace": "default"}, "spec": {}})
                assert env["KUBERNETES_SERVICE_HOST"] == cluster.core.allocator.kubernetes_ip
                # each informer follows its watch: a new object of its kind arrives in its cache
                await _create_one_of_each(LocalClient(cluster.core))
                for informer, namespace, name in (
                        (proxy.services, "apps", "web"), (proxy.slices, "apps", "web-1"),
                        (dns.services, "apps", "web"), (dns.slices, "apps", "web-1"),
                        (enforcer.namespaces, None, "apps"), (enforcer.policies, "apps", "deny"),
                        (enforcer.pods, "default", "p")):
                    await _until(informer, namespace, name)
                assert all(s.crashes == 0 for s in supervisor.statistics().values())
                # and nothing more: no writes to what they read, no Secrets, no other ConfigMap
                deny = {"metadata": {"name": "x"}, "spec": {"podSelector": {}}}
                for call in (lambda: node.create(kind("NetworkPolicy"), "apps", deny),
                             lambda: node.list(kind("Secret")),
                             lambda: node.get(kind("ConfigMap"), "kube-system", "kube-root-ca.crt"),
                             lambda: node.patch(kind("Service"), "apps", "web", {"status": {}},
                                                subresource="status")):
                    with pytest.raises(Forbidden):
                        await call()
            nursery.cancel_scope.cancel()


async def _create_one_of_each(admin: LocalClient) -> None:
    await admin.create(kind("Namespace"), None, {"metadata": {"name": "apps"}})
    await admin.create(kind("Service"), "apps", {"metadata": {"name": "web"},
                                                 "spec": {"ports": [{"port": 80}]}})
    await admin.create(kind("EndpointSlice"), "apps", {
        "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "endpoints": [], "ports": []})
    await admin.create(kind("NetworkPolicy"), "apps", {"metadata": {"name": "deny"},
                                                       "spec": {"podSelector": {}}})
    await admin.create(kind("Pod"), "default", {"metadata": {"name": "p"}, "spec": {
        "nodeName": "n2", "containers": [{"name": "c", "image": "busybox"}]}})
