"""The scheduler: kube-scheduler's default profile (queue, cache, filters, scores, preemption).

Public surface: `Scheduler` (run with `await nursery.start(scheduler.run)`) and its statistics.
Modules, one concept each: podinfo (pod requests and terms), nodeinfo (per-node aggregates),
cache (nodes + assumed pods), queue (active/backoff/unschedulable), filters / interpod / spread /
scores (the plugins), framework (one pod's scheduling algorithm), preemption (PostFilter),
scheduler (informers, the cycle, API writes); also results (node-local results per pod
signature), retry (pods whose event could not be handled), defaultselector (a pod's default
spreading selector) and volumebinding (the VolumeBinding plugin).
New code here: a plugin in the module of its kind (filters.py, scores.py, or a module of its own
like spread.py), called from framework.py; what a pod or node carries for it in podinfo.py /
nodeinfo.py.
Must not import: the store, node, net, apiserver, app, cli, runtime, another reconciler.
"""

from orchestra.reconcilers.scheduler.framework import num_feasible_to_find
from orchestra.reconcilers.scheduler.scheduler import SCHEDULER_NAME, Scheduler, SchedulerStatistics

__all__ = ["SCHEDULER_NAME", "Scheduler", "SchedulerStatistics", "num_feasible_to_find"]
