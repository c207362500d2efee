"""The resource metrics API (metrics.k8s.io/v1beta1): the usage collector on the simulated runtime
under trio's virtual clock, then `kubectl top` and the raw API against a cluster of simulated nodes."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.api.metrics import cpu_quantity, memory_quantity, node_usages, pod_usage, window_text
from orchestra.node.metrics import MIN_WINDOW, UsageCollector, host_usage
from orchestra.runtime.base import ContainerSpec, PodSandboxSpec
from orchestra.runtime.simulated import ContainerScript, SimScript, open_simulated_runtime
from tests.conftest import ClusterThread, LiveCluster

Obj = dict[str, Any]
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def test_quantities_look_like_metrics_server() -> None:
    assert cpu_quantity(0.25) == "250000000n" and cpu_quantity(-1) == "0n"
    assert memory_quantity(4 << 20) == "4096Ki"
    assert window_text(1.0) == "1s" and window_text(10.034) == "10.034s" and window_text(0.5) == "0.5s"


def test_host_usage_reads_proc() -> None:
    busy, memory = host_usage()
    assert busy > 0 and memory > 0


def _pod(uid: str, node: str, *containers: str) -> Obj:
    return {
        "metadata": {"name": uid, "namespace": "default", "uid": uid},
        "spec": {"nodeName": node, "containers": [{"name": c} for c in containers]},
        "status": {"phase": "Running"},
    }


async def test_collector_measures_rates_over_its_window(autojump_clock: trio.testing.MockClock) -> None:
    script = SimScript(containers={"busy": ContainerScript(cpu=0.5, memory=64 << 20)})
    host = iter([(100.0, 1 << 30), (101.5, 2 << 30), (105.0, 3 << 30)])
    async with open_simulated_runtime(script) as rt:
        sandbox = await rt.create_sandbox(PodSandboxSpec(name="p", uid="uid-p", namespace="default"))
        await rt.start_sandbox(sandbox)
        for name in ("busy", "idle"):
            cid = await rt.create_container(
                sandbox, ContainerSpec(name=name, image="busybox", command=("sleep", "9"))
            )
            await rt.start_container(cid)
        collector = UsageCollector(lambda: {"sim-1": rt, "sim-2": rt, "host": rt}, lambda: {"host"},
                                   host=lambda: next(host))
        await trio.sleep(10)
        start = trio.current_time()
        first = await collector.usage()
        assert trio.current_time() - start == pytest.approx(
            MIN_WINDOW
        )  # no earlier sample: it waited for one
        assert first.window == pytest.approx(MIN_WINDOW)
        assert first.containers["uid-p"]["busy"] == (pytest.approx(0.5), 64 << 20)
        assert first.containers["uid-p"]["idle"] == (pytest.approx(0.0008), 4 << 20)  # the script's defaults
        assert first.nodes == {"host": (pytest.approx(1.5), 2 << 30)}  # host CPU seconds over the window
        assert await collector.usage() is first  # asked again at once: the same answer
        await trio.sleep(4)
        second = await collector.usage()  # measured from the previous sample: no wait
        assert second.window == pytest.approx(4) and second.nodes["host"] == (pytest.approx(3.5 / 4), 3 << 30)
        pods = [_pod("uid-p", "sim-1", "busy", "idle"), _pod("uid-q", "sim-1", "gone")]
        assert pod_usage(second, pods[0]) == [("busy", pytest.approx(0.5), 64 << 20),
                                              ("idle", pytest.approx(0.0008), 4 << 20)]
        assert pod_usage(second, pods[1]) is None
        usages = node_usages(second, ["sim-1", "sim-2", "host"], pods)
        assert usages["sim-1"] == (pytest.approx(0.5008), (64 << 20) + (4 << 20))
        assert usages["sim-2"] == (0.0, 0) and usages["host"] == second.nodes["host"]


@pytest.mark.parametrize(("cpu", "memory", "node", "busy", "idle"), [
    ("250m", "64Mi", "sim-1", (0.25, 64 << 20), (0.25, 64 << 20)),
    ("busy=1.5, idle=2m", None, "sim-1", (1.5, 4 << 20), (0.002, 4 << 20)),
    ("busy=900m", None, "sim-1", (0.9, 4 << 20), (0.0008, 4 << 20)),
    ("lots", "64Mi", "sim-1", (0.0008, 64 << 20), (0.0008, 64 << 20)),
    ("250m", "64Mi", "host", (0.0008, 4 << 20), (0.0008, 4 << 20)),
], ids=["every-container", "per-container", "others-measured", "not-a-quantity", "not-on-the-host"])
async def test_simulated_pods_report_their_scripted_usage(
        autojump_clock: trio.testing.MockClock, cpu: str, memory: str | None, node: str,
        busy: tuple[float, int], idle: tuple[float, int]) -> None:
    """A pod on a simulated node uses what its orchestra.io/simulated-* annotations say, read at each
    measurement; a host's pods report what they really use."""
    annotations = {"orchestra.io/simulated-cpu": cpu}
    if memory:
        annotations["orchestra.io/simulated-memory"] = memory
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "uid-p", "annotations": annotations}}
    async with open_simulated_runtime(SimScript()) as rt:
        sandbox = await rt.create_sandbox(PodSandboxSpec(name="p", uid="uid-p", namespace="default"))
        await rt.start_sandbox(sandbox)
        for name in ("busy", "idle"):
            spec = ContainerSpec(name=name, image="busybox", command=("sleep", "9"))
            await rt.start_container(await rt.create_container(sandbox, spec))
        collector = UsageCollector(lambda: {node: rt}, lambda: {"host"}, host=lambda: (0.0, 0),
                                   pods=lambda ns: [pod] if ns == "default" else [])
        usage = await collector.usage()
    assert usage.containers["uid-p"]["busy"] == (pytest.approx(busy[0]), busy[1])
    assert usage.containers["uid-p"]["idle"] == (pytest.approx(idle[0]), idle[1])


# --- a cluster of simulated nodes, kubectl top ------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    from orchestra.app import ClusterConfig

    state = tmp_path_factory.mktemp("metrics-state")
    home = tmp_path_factory.mktemp("metrics-home")
    runner = ClusterThread(ClusterConfig(state_dir=state, listen_port=0, store="memory", podman=False,
                                         network=False, simulate_nodes=2))
    c: Any = runner.start()
    yield LiveCluster(c.url, c.token, c.kubeconfig, state, home, c.ca_cert)
    runner.stop()


@pytest.fixture(scope="module")
def kubectl(cluster: LiveCluster, kubectl_bin: str) -> Kubectl:
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [kubectl_bin, *args], capture_output=True, text=True, env=cluster.kubectl_env(), timeout=60
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc
    return run


def _running(kubectl: Kubectl, selector: str, n: int) -> list[str]:
    deadline = time.monotonic() + 60  # wall-clock: a live cluster
    while True:
        pods = json.loads(kubectl("get", "pods", "-l", selector, "-o", "json").stdout)["items"]
        names = [p["metadata"]["name"] for p in pods if p.get("status", {}).get("phase") == "Running"]
        if len(names) == n:
            return sorted(names)
        assert time.monotonic() < deadline, f"{n} running pods {selector}: {names}"  # wall-clock: as above
        time.sleep(0.2)  # wall-clock: polling


def test_kubectl_top_pods_and_nodes(kubectl: Kubectl) -> None:
    kubectl("create", "deployment", "web", "--image=busybox", "--replicas=3", "--", "sleep", "3600")
    names = _running(kubectl, "app=web", 3)
    top = kubectl("top", "pods", "-l", "app=web", "--containers").stdout.splitlines()
    assert top[0].split() == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert sorted(line.split() for line in top[1:]) == [[n, "busybox", "1m", "4Mi"] for n in names]
    nodes = kubectl("top", "nodes").stdout.splitlines()
    assert nodes[0].split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert sorted(line.split()[0] for line in nodes[1:]) == ["sim-node-1", "sim-node-2"]
    memory = sum(int(line.split()[3].removesuffix("Mi")) for line in nodes[1:])
    assert memory == 4 * 3  # a simulated node reports the sum of its pods
    one = json.loads(
        kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/{names[0]}").stdout
    )
    assert one["kind"] == "PodMetrics" and one["metadata"]["labels"]["app"] == "web"
    assert one["containers"][0]["usage"]["memory"] == "4096Ki" and one["window"].endswith("s")


def test_metrics_api_discovery_and_errors(kubectl: Kubectl) -> None:
    resources = kubectl("api-resources", "--api-group=metrics.k8s.io", "--no-headers").stdout.split("\n")
    assert sorted(r.split()[0] for r in resources if r) == ["nodes", "pods"]
    missing = kubectl("top", "pod", "nope", check=False)
    assert missing.returncode == 1 and 'podmetrics.metrics.k8s.io "nope" not found' in missing.stderr
    empty = json.loads(
        kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/kube-public/pods").stdout
    )
    assert empty == {
        "kind": "PodMetricsList",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [],
    }
    post = kubectl("create", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", "-f", "/dev/null", check=False)
    assert (
        post.returncode != 0
        and "the server does not allow this method on the requested resource" in post.stderr
    ), post.stderr


def test_annotating_a_simulated_pod_scripts_what_top_shows(kubectl: Kubectl) -> None:
    kubectl("create", "deployment", "load", "--image=busybox", "--", "sleep", "3600")
    [name] = _running(kubectl, "app=load", 1)
    kubectl("annotate", "pod", name, "orchestra.io/simulated-cpu=300m", "orchestra.io/simulated-memory=40Mi")
    deadline = time.monotonic() + 30  # wall-clock: a live cluster
    while True:
        # 404 until a sample measured the new pod (a sample is reused for a second), as metrics-server
        top = kubectl("top", "pod", name, "--no-headers", check=False)
        assert top.returncode == 0 or "not found" in top.stderr, top.stderr
        if top.stdout.split()[1:] == ["300m", "40Mi"]:
            break
        assert time.monotonic() < deadline, (top.stdout, top.stderr)  # wall-clock: as above
        time.sleep(0.3)  # wall-clock: the collector measures at most once a second
