"""The cluster controllers as one service: what kube-controller-manager runs besides workloads.

Owns: constructing and starting the CustomResourceDefinition controller, the garbage collector,
namespace lifecycle, node lifecycle, Endpoints/EndpointSlice, disruption (PodDisruptionBudget),
persistent volume (binding, local-path provisioning under `volumes_root`), storage in-use
protection, resource quota, clusterrole-aggregation, token-cleaner and node IPAM controllers on one
client, and the namespace furniture: the serviceaccount controller, and — given the cluster CA
(`ca_pem`) and the token signer (`tokens`) — the root-ca-cert-publisher and the legacy token
Secrets' controller.
`run_cluster_controllers` reports started() with the controllers once every one of them has synced
its caches and started its workers.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from pathlib import Path

import trio

from orchestra.api.serviceaccount.tokens import TokenIssuer
from orchestra.client.base import Client
from orchestra.controller import Controller
from orchestra.reconcilers.bootstraptokens import TokenCleaner
from orchestra.reconcilers.clusterroleaggregation import ClusterRoleAggregationController
from orchestra.reconcilers.crd import CRDController
from orchestra.reconcilers.disruption import DisruptionController
from orchestra.reconcilers.endpoints import EndpointsController
from orchestra.reconcilers.garbage_collector import GarbageCollector
from orchestra.reconcilers.namespace import NamespaceController
from orchestra.reconcilers.node_lifecycle import (
    DEFAULT_TIMINGS,
    NodeLifecycleController,
    NodeLifecycleTimings,
)
from orchestra.reconcilers.nodeipam import DEFAULT_NODE_MASK, NodeIpamController
from orchestra.reconcilers.protection import StorageProtectionController
from orchestra.reconcilers.resourcequota import ResourceQuotaController
from orchestra.reconcilers.serviceaccounts import RootCAPublisher, ServiceAccountsController
from orchestra.reconcilers.tokens import TokensController
from orchestra.reconcilers.volumes import PersistentVolumeController


def cluster_controllers(client: Client, *, timings: NodeLifecycleTimings = DEFAULT_TIMINGS,
                        volumes_root: Path | None = None, ca_pem: str | None = None,
                        tokens: TokenIssuer | None = None, cluster_cidr: str = "",
                        node_mask: int = DEFAULT_NODE_MASK) -> list[Controller]:
    controllers: list[Controller] = [
        CRDController(client),
        GarbageCollector(client),
        NamespaceController(client),
        NodeLifecycleController(client, timings=timings),
        EndpointsController(client, workers=2),
        DisruptionController(client),
        PersistentVolumeController(client, volumes_root=volumes_root),
        StorageProtectionController(client),
        ResourceQuotaController(client),
        ServiceAccountsController(client),
        ClusterRoleAggregationController(client),
        TokenCleaner(client),
        NodeIpamController(client, cluster_cidr=cluster_cidr, node_mask=node_mask),
    ]
    if ca_pem is not None:
        controllers.append(RootCAPublisher(client, ca_pem))
        if tokens is not None:
            controllers.append(TokensController(client, tokens, ca_pem))
    return controllers


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
