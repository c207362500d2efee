"""The cluster's settings for joined nodes (app/clustersettings.py): the ConfigMap
`kube-system/orchestra-cluster` that bootstrap writes at every start (rewritten only when a value
changed, keys an administrator added kept), and what a node makes of a missing or incomplete one."""

from __future__ import annotations

from typing import Any

import pytest

from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.app.clustersettings import ClusterSettings, fetch
from orchestra.client.local import LocalClient
from orchestra.net.routes import NetworkSetupError
from orchestra.store import Store

SETTINGS = ClusterSettings(service_cidr="10.96.0.0/12", cluster_cidr="10.244.0.0/16",
                           cluster_dns="10.96.0.10")


def _config_map(core: ApiCore) -> dict[str, Any]:
    rt = core.registry.by_kind("ConfigMap")
    assert rt is not None
    return core.get(rt, "kube-system", "orchestra-cluster")


async def test_bootstrap_publishes_the_settings_and_rewrites_them_only_when_they_change() -> None:
    core = ApiCore(Store.open_memory())
    await bootstrap(core, settings=SETTINGS)
    first = _config_map(core)
    assert first["data"] == {"serviceCIDR": "10.96.0.0/12", "clusterCIDR": "10.244.0.0/16",
                             "clusterDNS": "10.96.0.10", "clusterDomain": "cluster.local"}
    assert ClusterSettings.from_config_map(first) == SETTINGS
    await bootstrap(core, settings=SETTINGS)  # a restart with the same settings writes nothing
    assert _config_map(core)["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    rt = core.registry.by_kind("ConfigMap")
    assert rt is not None
    await core.update(rt, "kube-system", "orchestra-cluster",
                      {**first, "data": {**first["data"], "note": "the administrator's"}})
    moved = ClusterSettings(service_cidr="10.100.0.0/16", cluster_cidr="10.50.0.0/16",
                            cluster_dns="10.100.0.10")
    await bootstrap(core, settings=moved)  # a restart with another --service-cidr / --cluster-cidr
    now = _config_map(core)
    assert ClusterSettings.from_config_map(now) == moved
    assert now["data"]["note"] == "the administrator's"


@pytest.mark.parametrize(("data", "message"), [
    (None, "orchestra-cluster: configmaps \"orchestra-cluster\" not found"),
    ({"serviceCIDR": "10.96.0.0/12", "clusterDNS": ""}, "lacks clusterCIDR, clusterDNS, clusterDomain"),
], ids=["missing", "incomplete"])
async def test_a_node_that_cannot_read_the_settings_is_told_about_no_network(
        data: dict[str, str] | None, message: str) -> None:
    core = ApiCore(Store.open_memory())
    await bootstrap(core)
    if data is not None:
        rt = core.registry.by_kind("ConfigMap")
        assert rt is not None
        await core.create(rt, "kube-system", {"metadata": {"name": "orchestra-cluster"}, "data": data})
    with pytest.raises(NetworkSetupError) as caught:
        await fetch(LocalClient(core))
    assert message in str(caught.value)
    assert "Join with --no-network" in str(caught.value)
