"""The controller runtime: informer -> cache -> keyed work queue -> level-based reconcile(key).

Owns: the pieces every controller (scheduler, workload and cluster controllers, node agents) is
built from. Public surface re-exported here; see each module for semantics:
  * informer.py    `Informer` (list -> read-only cache with indexes -> watch, re-listing on 410 or a
                   broken watch) and `SharedInformers.of(client)`: one cache per kind per client, so
                   `Controller.informer(kind)` is shared by every controller on that client. Handlers,
                   index functions and transforms that raise are contained to their object (logged
                   with its key, statistics()["handler_errors"]); `replay(handler)` = the cache as ADDED.
  * customkinds.py `CustomKindInformers`: an informer per custom kind served now, started and
                   stopped as CustomResourceDefinitions come and go (for controllers that watch every
                   kind: the garbage collector, the resourcequota controller).
  * reconciler.py  `Controller`: informers -> keyed work queue -> N workers calling `reconcile(key)`;
                   `enqueue_on(informer, mapper, paced=True)` (paced is opt-in) queues keys 3x their
                   last reconcile's duration later (trio time, at most 1 s, none under 1 ms; the
                   workload controllers use it for pods); `Result` (requeue after), retry policy as
                   exceptions (errors.py).
  * workqueue.py   `WorkQueue`, `RateLimiter`, `ExponentialBackoff`, `TokenBucket`: client-go's
                   workqueue. Dependency-free, and only this package imports it (import-linter); other
                   layers use the names re-exported here.
  * supervisor.py  `Supervisor.run(name, fn)`: started() once (from fn's first run; a failure before it
                   is the caller's), then a crash is logged, counted and fn re-run after exponential
                   backoff (trio time); cancellation passes through. So every long-lived component
                   (Controller, Informer, Scheduler, NodeAgent, SimulatedNodes, ServiceProxy,
                   ClusterDNS) must accept run() again after it raised.
  * leaderelection.py `LeaderElector` (import it from there): client-go's leader election over a
                   coordination.k8s.io/v1 Lease; runs `lead()` while holding it, cancels it when a renewal
                   has failed for the renew deadline (app/leader.py runs the controllers under it).
  * events.py      `EventRecorder`: core/v1 Events like client-go's record package, never blocking.
  * clock.py       `Clock` (a callable giving an aware datetime), `wall_clock`, `virtual_clock(epoch)`:
                   the timestamps controllers write into objects; tests pass virtual_clock() (epoch +
                   trio time).

New code here: what more than one controller needs from the runtime (a cache feature, a queue
policy); a controller itself goes to reconcilers/ (or node/, net/).
Must not import: reconcilers, node, net, apiserver, app, cli; the API only through a client
(orchestra.client) and the api's registry, errors and selectors.
"""

from orchestra.controller.customkinds import CustomKindInformers
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
    "CustomKindInformers",
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
