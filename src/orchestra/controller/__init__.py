"""The controller runtime: informer -> cache -> keyed work queue -> level-based reconcile(key).

Owns: the pieces every controller (scheduler, workload and cluster controllers, node agents) is
built from. Public surface re-exported here; see each module for semantics.
Must not import: reconcilers, node, net, apiserver, cli.
"""

from orchestra.controller.errors import PermanentError, ReconcileError, TemporaryError
from orchestra.controller.events import NORMAL, WARNING, EventRecorder, involved_object
from orchestra.controller.informer import Informer, SharedInformers, index_by_namespace
from orchestra.controller.reconciler import (
    Controller,
    ControllerStatistics,
    Result,
    keys_of_object,
    registry_of,
)
from orchestra.controller.supervisor import ComponentStatistics, RestartPolicy, Supervisor
from orchestra.controller.workqueue import (
    ExponentialBackoff,
    QueueShutDown,
    RateLimiter,
    TokenBucket,
    WorkQueue,
)
from orchestra.objects import object_key, split_key

__all__ = [
    "NORMAL",
    "WARNING",
    "ComponentStatistics",
    "Controller",
    "ControllerStatistics",
    "EventRecorder",
    "ExponentialBackoff",
    "Informer",
    "PermanentError",
    "QueueShutDown",
    "RateLimiter",
    "ReconcileError",
    "RestartPolicy",
    "Result",
    "SharedInformers",
    "Supervisor",
    "TemporaryError",
    "TokenBucket",
    "WorkQueue",
    "index_by_namespace",
    "involved_object",
    "keys_of_object",
    "object_key",
    "registry_of",
    "split_key",
]
