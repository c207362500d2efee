"""The app layer: `run_cluster()` starts every component of a cluster in one trio nursery.

Entry points (re-exported here): `run_cluster(config, *, task_status)` (run.py: store -> signing key
and API core (with the ServiceAccount admission plugin) -> certificates -> bootstrap objects -> audit
log -> HTTPS with its authenticators -> controllers -> network -> node agents; `task_status.started()` hands
back a `Cluster` once the API is ready and the controllers' caches are synced), `ClusterConfig`
and `Cluster` (config.py), `Shutdown` (shutdown.py: the graceful stop and the forced one),
`bootstrap` and `SYSTEM_NAMESPACES` (import them from orchestra.app.bootstrap: the objects every
cluster has), the state
directory's token, ServiceAccount signing key (pki/sa.key) and kubeconfig (state.py); the audit log
is <state-dir>/audit.log.
leader.py: on etcd, where several servers may share one cluster, the controllers and the scheduler
run only on the server holding the Lease kube-system/orchestra-controllers (one term of leadership at
a time; every server serves the API and runs its node agents).
components.py starts what comes after the API, each component under `Cluster.supervisor`
(controller/supervisor.py: a crash is logged, counted and restarted, never the end of the process),
with its imports inside the starter so the path to "API ready" loads none of them; network.py starts
a node's network (NetworkPolicy enforcer, service proxy, cluster DNS, the Service env), one function
for `orchestra up`'s host node and for a joined node (joined.py, `orchestra join`), which reads the
settings the server publishes in `kube-system/orchestra-cluster` (clustersettings.py); leftovers.py
removes what dead clusters left on this host (Podman pods, podman services); etcdlocal.py runs the
local etcd of `--store etcd` under <state-dir>/etcd (started first, stopped last); migrate.py moves a
stopped cluster between the durable log and etcd (`orchestra store migrate`), refusing a state
directory that running.py finds an orchestra on; kubelet.py makes the API
server's kubelet client (its certificate, the locator's RemoteContainers for pods of nodes in other
processes) and a node's kubelet API server (`kubelet_api`, for a node agent run outside `up`).
This is the only layer that wires concrete parts together: the runtime adapter into the node
agents, the node's container locator into the apiserver's streams, the usage collector into the
metrics API.

New code here: a new long-lived component's starter in components.py, or network.py for a node's
network (started with `nursery.start`, under the supervisor), a cluster-wide setting in
ClusterConfig, an object every cluster must have in bootstrap.py.
Must not import: cli (and so never click or rich).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestra.app.config import Cluster, ClusterConfig
    from orchestra.app.run import run_cluster
    from orchestra.app.shutdown import Shutdown
    from orchestra.app.state import load_or_create_token, write_kubeconfig

# Imported on first use (PEP 562), so `orchestra join` (app/joined.py) loads none of the server side.
# (`bootstrap` and SYSTEM_NAMESPACES: from orchestra.app.bootstrap, whose module name the function's
# would clash with)
_EXPORTS = {"Cluster": "config",
            "ClusterConfig": "config", "run_cluster": "run", "Shutdown": "shutdown",
            "load_or_create_token": "state", "write_kubeconfig": "state"}


def __getattr__(name: str) -> Any:
    import importlib

    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestra.app' has no attribute {name!r}")
    return getattr(importlib.import_module(f"orchestra.app.{module}"), name)


__all__ = ["Cluster", "ClusterConfig", "Shutdown", "load_or_create_token", "run_cluster", "write_kubeconfig"]
