"""The app layer: `run_cluster()` starts every component of a cluster in one trio nursery.

Must not import: cli.
"""

from orchestra.app.bootstrap import SYSTEM_NAMESPACES, bootstrap
from orchestra.app.config import Cluster, ClusterConfig
from orchestra.app.run import run_cluster
from orchestra.app.shutdown import Shutdown
from orchestra.app.state import load_or_create_token, write_kubeconfig

__all__ = ["SYSTEM_NAMESPACES", "Cluster", "ClusterConfig", "Shutdown", "bootstrap", "load_or_create_token",
           "run_cluster", "write_kubeconfig"]
