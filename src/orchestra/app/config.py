"""Cluster configuration and the handle `run_cluster` gives back once the cluster is up.

Must not import: cli.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from orchestra.api.policy.allocators import DEFAULT_SERVICE_CIDR
from orchestra.api.policy.tolerationseconds import DEFAULT_SECONDS
from orchestra.app.shutdown import Shutdown
from orchestra.controller.supervisor import Supervisor

if TYPE_CHECKING:  # annotations only: a joined node imports this module without the server side
    from orchestra.api.request.core import ApiCore
    from orchestra.apiserver.server import ApiServer
    from orchestra.store import Store

FAST_TOLERATION_SECONDS = 30  # the default tolerations under `timings="fast"`


@attrs.frozen
class ClusterConfig:
    state_dir: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 6443
    # kube-apiserver's --advertise-address: where nodes and pods reach this API server (the `kubernetes`
    # Service's endpoint; in the serving certificate; served besides `listen_host` when that does not
    # cover it). None: the listen address (loopback for a wildcard listener, which only this host's proxy
    # uses).
    advertise_address: str | None = None
    # k3s's --tls-san: more names and addresses the API server's serving certificate covers (a load
    # balancer's, another name of this host)
    tls_sans: tuple[str, ...] = ()
    # "durable" | "memory" | "etcd://HOST:PORT[,HOST:PORT...]" | "etcd" (a local etcd that run_cluster
    # starts under <state_dir>/etcd: app/etcdlocal.py)
    store: str = "durable"
    # k3s' --token: the cluster's admin token. On a first start it becomes the state directory's token;
    # with an etcd store that already holds a cluster, it opens that cluster's bootstrap record
    # (app/clusterbootstrap.py) so this server serves it too. None: the state directory's (or a new one).
    cluster_token: str | None = None
    # kube-apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile, for an `etcds://` store
    etcd_cafile: str | None = None
    etcd_certfile: str | None = None
    etcd_keyfile: str | None = None
    simulate_nodes: int = 0
    # the simulated nodes' names: PREFIX1..PREFIXN (servers sharing one etcd each need their own)
    simulated_node_prefix: str = "sim-node-"
    # `orchestra up --nodes N`: this host's node plus N-1 worker nodes, each in a network namespace of its
    # own on a link of `node_link_cidr` (app/multinode.py)
    nodes: int = 1
    node_link_cidr: str = "10.243.0.0/24"
    apply_paths: tuple[Path, ...] = ()
    dashboard: bool = False
    podman: bool = True
    fsync: str = "always"
    network: bool = (
        False  # service proxy + cluster DNS (root: routes the service range); `orchestra up` turns it on
    )
    controllers: bool = True
    # "default" (Kubernetes'), or "fast": 10 s node grace, HPA sync every 5 s, a 60 s downscale window and
    # 30 s default tolerations of not-ready and unreachable nodes
    timings: str = "default"
    # kube-apiserver's --default-not-ready-toleration-seconds / --default-unreachable-toleration-seconds:
    # the tolerationSeconds of the NoExecute tolerations the DefaultTolerationSeconds admission plugin
    # gives pods. None: from `timings` (see `toleration_seconds`).
    default_not_ready_toleration_seconds: int | None = None
    default_unreachable_toleration_seconds: int | None = None
    service_cidr: str = DEFAULT_SERVICE_CIDR
    stop_pods_on_exit: bool = False  # else pods keep running and are adopted on the next start
    # the node IPAM controller's range: every Node's spec.podCIDR (a /24) comes from it
    # ("": 10.244.0.0/16, wider for more than 255 simulated nodes; node/podcidr.py plans it)
    cluster_cidr: str = ""
    # the ingress controller's HTTP and HTTPS listeners (with `network`); None: off.
    # `orchestra up` listens on 0.0.0.0:80 and 0.0.0.0:443 unless told otherwise.
    ingress_listen: tuple[str, int] | None = None
    ingress_tls_listen: tuple[str, int] | None = None
    # listeners ("http", "https") nobody asked for (`orchestra up`'s defaults): one whose port cannot
    # be bound is a warning and stays off; a listener that was asked for and cannot be bound stops
    # the start (NetworkSetupError).
    ingress_optional: frozenset[str] = frozenset()
    audit_max_bytes: int = 100 * 1024 * 1024  # <state-dir>/audit.log is rotated past this size
    audit_backups: int = 3  # rotated files kept: audit.log.1 ... audit.log.N

    def toleration_seconds(self) -> tuple[int, int]:
        """(not-ready, unreachable) seconds: as given, else 300 each (kube-apiserver's), 30 with the fast
        timings (a lost node's pods move about 40 s after its last heartbeat instead of 5 minutes)."""
        profile = FAST_TOLERATION_SECONDS if self.timings == "fast" else DEFAULT_SECONDS
        not_ready, unreachable = (self.default_not_ready_toleration_seconds,
                                  self.default_unreachable_toleration_seconds)
        return (profile if not_ready is None else not_ready, profile if unreachable is None else unreachable)


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
    ingress: Any = None  # net.ingress.IngressController, when it runs
    netpol: Any = None  # net.netpol.NetworkPolicyEnforcer, when NetworkPolicies are enforced
    agents: list[Any] = attrs.field(factory=list)
    workers: Any = None  # app.multinode.WorkerNodes, with `orchestra up --nodes N`
    locator: Any = None  # finds containers for pods/log, exec, portforward
    shutdown: Shutdown = attrs.field(factory=Shutdown)  # stop() / force() the cluster
    supervisor: Supervisor = attrs.field(factory=Supervisor)  # restarts a crashed component
    audit: Any = None  # the AuditLog (<state-dir>/audit.log)
    tokens: Any = None  # the TokenIssuer that signs ServiceAccount tokens
    elector: Any = None  # controller.leaderelection.LeaderElector, on etcd (app/leader.py)

    @property
    def advertised_url(self) -> str:
        """Where nodes reach this server: the advertised address, else the URL it listens on."""
        address = self.config.advertise_address
        if not address:
            return self.url
        host = f"[{address}]" if ":" in address else address
        return f"https://{host}:{urlsplit(self.url).port or self.config.listen_port}"

    @property
    def cluster_id(self) -> str:
        """kube-system's uid: labels this cluster's pods, recorded in <state-dir>/cluster-id."""
        rt = self.core.registry.by_kind("Namespace")
        assert rt is not None
        return str(self.core.get(rt, None, "kube-system")["metadata"]["uid"])
