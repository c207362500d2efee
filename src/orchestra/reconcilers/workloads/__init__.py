"""Workload controllers: ReplicaSet, ReplicationController, Deployment, DaemonSet, StatefulSet, Job,
CronJob (see each module).

Entry point: `workload_controllers(client)`, every workload controller on one client (their
informers are shared through it); the controller modules are imported only then.
Each controller (replicaset.py, deployment.py, daemonset.py, statefulset.py, job.py, cronjob.py)
derives from base.WorkloadController (replication.py from the ReplicaSet controller); what they share:
pods.py (pods from templates, pod bookkeeping), common.py, history.py (ControllerRevisions),
claims.py (StatefulSet claims), rollout.py (Deployment rollout arithmetic, pure), cron.py (cron
schedules).
New code here: a workload kind's controller in a module of its own, listed in workload_controllers;
a rule two of them share in the module of its concept.
Must not import: the store, node, net, apiserver, app, cli, or another reconciler outside workloads/.
"""

from __future__ import annotations

from orchestra.client.base import Client
from orchestra.controller import Controller


def workload_controllers(client: Client) -> list[Controller]:
    """Every workload controller on one client (their informers are shared through it)."""
    from orchestra.reconcilers.workloads.cronjob import CronJobController
    from orchestra.reconcilers.workloads.daemonset import DaemonSetController
    from orchestra.reconcilers.workloads.deployment import DeploymentController
    from orchestra.reconcilers.workloads.job import JobController
    from orchestra.reconcilers.workloads.replicaset import ReplicaSetController
    from orchestra.reconcilers.workloads.replication import ReplicationControllerController
    from orchestra.reconcilers.workloads.statefulset import StatefulSetController

    return [
        ReplicaSetController(client, workers=2),
        ReplicationControllerController(client),
        DeploymentController(client, workers=2),
        DaemonSetController(client),
        StatefulSetController(client),
        JobController(client),
        CronJobController(client),
    ]
