"""The scheduler: kube-scheduler's default profile (queue, cache, filters, scores, preemption).

Public surface: `Scheduler` (run with `await nursery.start(scheduler.run)`) and its statistics.
Modules, one concept each: podinfo (pod requests and terms), nodeinfo (per-node aggregates),
cache (nodes + assumed pods), queue (active/backoff/unschedulable), filters / interpod / spread /
scores (the plugins), framework (one pod's scheduling algorithm), preemption (PostFilter),
scheduler (informers, the cycle, API writes).
Must not import: node, net, apiserver, cli, runtime.
"""

from orchestra.reconcilers.scheduler.framework import num_feasible_to_find
from orchestra.reconcilers.scheduler.scheduler import SCHEDULER_NAME, Scheduler, SchedulerStatistics

__all__ = ["SCHEDULER_NAME", "Scheduler", "SchedulerStatistics", "num_feasible_to_find"]
