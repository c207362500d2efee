"""The cluster controllers as one service: what kube-controller-manager runs besides workloads.

Owns: constructing and starting the garbage collector, namespace lifecycle, node lifecycle,
Endpoints/EndpointSlice, disruption (PodDisruptionBudget), persistent volume (binding, local-path
provisioning under `volumes_root`), storage in-use protection and resource quota controllers on one
client.
`run_cluster_controllers` reports started() with the controllers once every one of them has synced
its caches and started its workers.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from pathlib import Path

import trio

from orchestra.client.base import Client
from orchestra.controller import Controller
from orchestra.reconcilers.disruption import DisruptionController
from orchestra.reconcilers.endpoints import EndpointsController
from orchestra.reconcilers.garbage_collector import GarbageCollector
from orchestra.reconcilers.namespace import NamespaceController
from orchestra.reconcilers.node_lifecycle import (
    DEFAULT_TIMINGS,
    NodeLifecycleController,
    NodeLifecycleTimings,
)
from orchestra.reconcilers.protection import StorageProtectionController
from orchestra.reconcilers.resourcequota import ResourceQuotaController
from orchestra.reconcilers.volumes import PersistentVolumeController


def cluster_controllers(client: Client, *, timings: NodeLifecycleTimings = DEFAULT_TIMINGS,
                        volumes_root: Path | None = None) -> list[Controller]:
    return [
        GarbageCollector(client),
        NamespaceController(client),
        NodeLifecycleController(client, timings=timings),
        EndpointsController(client, workers=2),
        DisruptionController(client),
        PersistentVolumeController(client, volumes_root=volumes_root),
        StorageProtectionController(client),
        ResourceQuotaController(client),
    ]


async def run_cluster_controllers(
    client: Client,
    *,
    timings: NodeLifecycleTimings = DEFAULT_TIMINGS,
    volumes_root: Path | None = None,
    task_status: trio.TaskStatus[list[Controller]] = trio.TASK_STATUS_IGNORED,
) -> None:
    controllers = cluster_controllers(client, timings=timings, volumes_root=volumes_root)
    async with trio.open_nursery() as nursery:
        for controller in controllers:
            await nursery.start(controller.run)
        task_status.started(controllers)
