"""Workload controllers: ReplicaSet, Deployment, DaemonSet, StatefulSet, Job, CronJob (see each module)."""

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
    from orchestra.reconcilers.workloads.statefulset import StatefulSetController

    return [
        ReplicaSetController(client, workers=2),
        DeploymentController(client, workers=2),
        DaemonSetController(client),
        StatefulSetController(client),
        JobController(client),
        CronJobController(client),
    ]
