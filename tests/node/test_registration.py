"""Node registration, Lease heartbeats and node status; many simulated nodes."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from orchestra.node.registration import probe_host
from orchestra.node.simulated import SimulatedNodes
from orchestra.runtime.simulated import SimulatedRuntime

from .harness import NODE, deserialize, open_env

NODE_INFO_FIELDS = {
    "machineID",
    "systemUUID",
    "bootID",
    "kernelVersion",
    "osImage",
    "containerRuntimeVersion",
    "kubeletVersion",
    "kubeProxyVersion",
    "operatingSystem",
    "architecture",
}


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def test_probe_host_reads_the_machine(tmp_path: Path) -> None:
    host = probe_host(tmp_path, "podman://4.3.1")
    assert set(host.node_info) == NODE_INFO_FIELDS and all(host.node_info[k] for k in ("bootID", "osImage"))
    assert host.node_info["containerRuntimeVersion"] == "podman://4.3.1"
    assert host.node_info["kubeletVersion"] == "v1.32.0"
    assert int(host.capacity["cpu"]) >= 1 and host.capacity["pods"] == "110"
    assert host.capacity["memory"].endswith("Ki") and host.allocatable["ephemeral-storage"]
    assert host.internal_ip


async def test_node_and_lease(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(120):
        async with open_env(tmp_path, control_plane=True) as env:
            node = await env.client.get(env.rt("Node"), None, NODE)
            labels = node["metadata"]["labels"]
            assert labels["kubernetes.io/hostname"] == NODE and labels["kubernetes.io/os"] == "linux"
            assert "kubernetes.io/arch" in labels and "node-role.kubernetes.io/control-plane" in labels
            status = node["status"]
            assert set(status["nodeInfo"]) == NODE_INFO_FIELDS
            assert {c["type"]: c["status"] for c in status["conditions"]} == {
                "Ready": "True", "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False"}
            assert all(c["lastHeartbeatTime"] for c in status["conditions"])
            assert {a["type"] for a in status["addresses"]} == {"InternalIP", "Hostname"}
            assert status["capacity"]["pods"] == "110" and status["allocatable"]
            deserialize(node, "V1Node")
            lease = await env.client.get(env.rt("Lease"), "kube-node-lease", NODE)
            assert lease["spec"]["holderIdentity"] == NODE and lease["spec"]["leaseDurationSeconds"] == 40
            assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
            deserialize(lease, "V1Lease")
            versions = [lease["metadata"]["resourceVersion"]]
            await trio.sleep(5)  # read between beats
            for _ in range(3):
                await trio.sleep(10)
                lease = await env.client.get(env.rt("Lease"), "kube-node-lease", NODE)
                versions.append(lease["metadata"]["resourceVersion"])
            assert len(set(versions)) == 4  # renewed every 10 s
            stats = env.agent.statistics()  # type: ignore[union-attr]
            assert stats.registration.lease_renewals == 4 and stats.registration.status_updates >= 3


async def test_restarted_agent_updates_existing_node(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(60):
        async with open_env(tmp_path) as env:
            uid = (await env.client.get(env.rt("Node"), None, NODE))["metadata"]["uid"]
            await env.stop_agent()
            await env.start_agent(labels={"zone": "a"})
            node = await env.client.get(env.rt("Node"), None, NODE)
            assert node["metadata"]["uid"] == uid and node["metadata"]["labels"]["zone"] == "a"


async def test_simulated_nodes_run_pods(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(300):
        async with open_env(tmp_path, start=False) as env:
            sim = env.runtime
            assert isinstance(sim, SimulatedRuntime)
            nodes = SimulatedNodes(env.client, sim, 200, state_dir=tmp_path / "sim")
            await env.nursery.start(nodes.run)
            items, _ = await env.client.list(env.rt("Node"))
            assert sorted(n["metadata"]["name"] for n in items)[:2] == ["sim-node-1", "sim-node-10"]
            assert len(items) == 200
            for i in (1, 57, 200):
                await env.client.create(env.rt("Pod"), "default", {
                    "metadata": {"name": f"p{i}"},
                    "spec": {"nodeName": f"sim-node-{i}", "containers": [{"name": "c", "image": "busybox"}]}})
            await trio.sleep(5)
            for i in (1, 57, 200):
                pod = await env.client.get(env.rt("Pod"), "default", f"p{i}")
                assert pod["status"]["phase"] == "Running"
                assert pod["status"]["hostIP"] == f"10.240.{i // 250}.{i % 250 + 1}"
            await trio.sleep(60)
            stats = nodes.statistics()
            assert stats.nodes == 200 and stats.pods == 3 and stats.containers_started == 3
            # each node renews every 10 s (with a random phase): ~6-7 renewals per node in 60 s
            assert 200 * 6 <= stats.lease_renewals <= 200 * 8
            await env.client.delete(env.rt("Pod"), "default", "p57")
            await trio.sleep(35)
            assert len(await sim.list_sandboxes()) == 2
