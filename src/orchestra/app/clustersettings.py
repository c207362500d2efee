"""What a node must know of its cluster to run its network: the ConfigMap `kube-system/orchestra-cluster`.

Owns: `ClusterSettings` (the service range, the node IPAM controller's cluster range, the cluster DNS
address, that is the kube-dns ClusterIP, and the cluster domain) and its ConfigMap form: the server
writes it at every start (`publish`, from bootstrap.py; rewritten only when a value changed), a
joined node reads it (`fetch`) as `system:node:<name>`, which the bootstrap policy's Role
`orchestra:nodes-cluster-settings` allows (kubeadm keeps its ClusterConfiguration in
`kube-system/kubeadm-config` the same way, for `kubeadm join`).
Must not import: cli.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from orchestra.api.errors import ApiError, NotFound
from orchestra.api.policy.rbac.bootstrap import CLUSTER_SETTINGS, SETTINGS_NAMESPACE
from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.client.base import Client
from orchestra.net.routes import NetworkSetupError

if TYPE_CHECKING:  # the server's side; a joined node only fetches
    from orchestra.api.request.core import ApiCore

CLUSTER_DOMAIN = "cluster.local"
_FIELDS = {"serviceCIDR": "service_cidr", "clusterCIDR": "cluster_cidr", "clusterDNS": "cluster_dns",
           "clusterDomain": "cluster_domain"}


@attrs.frozen
class ClusterSettings:
    service_cidr: str
    cluster_cidr: str
    cluster_dns: str
    cluster_domain: str = CLUSTER_DOMAIN

    def to_data(self) -> dict[str, str]:
        return {key: getattr(self, attr) for key, attr in _FIELDS.items()}

    @classmethod
    def from_config_map(cls, obj: dict[str, Any]) -> ClusterSettings:
        """The settings a ConfigMap holds; ValueError naming the keys it lacks."""
        data = obj.get("data") or {}
        missing = [key for key in _FIELDS if not isinstance(data.get(key), str) or not data[key]]
        if missing:
            raise ValueError(f"{SETTINGS_NAMESPACE}/{CLUSTER_SETTINGS} lacks {', '.join(missing)}")
        return cls(**{attr: data[key] for key, attr in _FIELDS.items()})

    def config_map(self) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": CLUSTER_SETTINGS, "namespace": SETTINGS_NAMESPACE},
                "data": self.to_data()}


async def publish(core: ApiCore, settings: ClusterSettings) -> None:
    """Write the ConfigMap when it is missing or holds other values (a restart with another
    --service-cidr or --cluster-cidr); other keys an administrator added are kept."""
    rt = core.registry.by_kind("ConfigMap")
    assert rt is not None
    try:
        current = core.get(rt, SETTINGS_NAMESPACE, CLUSTER_SETTINGS)
    except NotFound:
        await core.create(rt, SETTINGS_NAMESPACE, settings.config_map())
        return
    data = current.get("data") or {}
    if all(data.get(key) == value for key, value in settings.to_data().items()):
        return
    await core.update(rt, SETTINGS_NAMESPACE, CLUSTER_SETTINGS,
                      {**current, "data": {**data, **settings.to_data()}})


async def fetch(client: Client) -> ClusterSettings:
    """The settings the server published, read by a joined node; NetworkSetupError (naming
    --no-network) when it cannot read them."""
    try:
        rt = DEFAULT_REGISTRY.by_kind("ConfigMap")
        assert rt is not None
        obj = await client.get(rt, SETTINGS_NAMESPACE, CLUSTER_SETTINGS)
        return ClusterSettings.from_config_map(obj)
    except (ApiError, ValueError) as exc:
        why = exc.message if isinstance(exc, ApiError) else str(exc)
        raise NetworkSetupError(
            f"cannot read the cluster's network settings ({SETTINGS_NAMESPACE}/{CLUSTER_SETTINGS}: {why}); "
            "is the server an older orchestra? Join with --no-network to run this node without service "
            "networking"
        ) from None
