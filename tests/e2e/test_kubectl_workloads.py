"""The real kubectl 1.32 driving workloads on a cluster with 3 simulated nodes (issue 3, acceptance 2).

One in-process cluster for the module (`run_cluster` with simulate_nodes=3, the fast node-lifecycle
timings, no Podman, no network) in a thread; kubectl runs as a subprocess with a throw-away HOME.
The simulated runtime is scripted the kwok way, through the cluster handle: the registry "has"
localhost/busybox:v2 (so `set image` can pull it). The Job's `sh -c "echo done"` exits 0 by the
simulated command rules, as it would on a real node.
With the fast node-lifecycle profile (10 s grace) `run_cluster` gives the simulated kubelets the
matching heartbeat (Lease renewed every 2.5 s, up to 2 s of jitter), so nodes stay Ready.
The rolling-update watcher is a pod watch on the in-process API core, run in the cluster's trio
loop from a helper thread; it records (pods not terminating, ready pods not terminating) at every
change. Every test uses its own namespace, so they can run in any order.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time  # wall-clock: kubectl is a real subprocess against a real server
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio

from orchestra.client.local import LocalClient
from tests.conftest import ClusterThread, LiveCluster
from tests.etcdserver import session_store

pytestmark = pytest.mark.kubectl

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
Obj = dict[str, Any]

IMAGE_V1 = "localhost/busybox:latest"
IMAGE_V2 = "localhost/busybox:v2"
REPLICAS, MAX_SURGE, MAX_UNAVAILABLE = 4, 1, 1


class SimCluster(LiveCluster):
    runner: ClusterThread

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run fn(*args) in the cluster's trio thread (the fake is scripted there, not from here)."""
        return trio.from_thread.run_sync(fn, *args, trio_token=self.runner._token)


@pytest.fixture(scope="module")
def sim_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    from orchestra.app import ClusterConfig

    state = tmp_path_factory.mktemp("sim-state")
    home = tmp_path_factory.mktemp("sim-home")
    config = ClusterConfig(state_dir=state, listen_port=0, store=session_store(), podman=False,
                           network=False, simulate_nodes=3, timings="fast")
    runner = ClusterThread(config)
    cluster: Any = runner.start()
    live = SimCluster(cluster.url, cluster.token, cluster.kubeconfig, state, home, cluster.ca_cert)
    live.runner = runner
    nodes = cluster.agents[-1]

    def script() -> None:
        nodes.runtime.script.pullable_images.add(IMAGE_V2)

    live.call(script)
    yield live
    runner.stop()


@pytest.fixture(scope="module")
def kubectl(sim_cluster: SimCluster, kubectl_bin: str) -> Kubectl:
    def run(
        *args: str, input: str | None = None, check: bool = True, timeout: float = 90
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([kubectl_bin, *args], input=input, capture_output=True, text=True,
                              env=sim_cluster.kubectl_env(), timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


# --- manifests and helpers ------------------------------------------------------------------------


def deployment(ns: str, name: str = "x", replicas: int = REPLICAS) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "replicas": replicas,
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": MAX_SURGE, "maxUnavailable": MAX_UNAVAILABLE},
                },
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [
                            {
                                "name": "c",
                                "image": IMAGE_V1,
                                "command": ["sleep", "3600"],
                                "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
                            }
                        ]
                    },
                },
            },
        }
    )


def apply_namespace(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "namespace", ns)


def get_json(kubectl: Kubectl, *args: str) -> Obj:
    out: Obj = json.loads(kubectl("get", *args, "-o", "json").stdout)
    return out


def terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def ready(pod: Obj) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def live_pods(kubectl: Kubectl, ns: str, selector: str = "app=x") -> list[Obj]:
    items: list[Obj] = get_json(kubectl, "pods", "-n", ns, "-l", selector)["items"]
    return [p for p in items if not terminating(p)]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def rollout_status(kubectl: Kubectl, ns: str, name: str = "x") -> str:
    out = kubectl("rollout", "status", f"deploy/{name}", "-n", ns, "--timeout=60s").stdout
    assert f'deployment "{name}" successfully rolled out' in out
    return out


def replicasets(kubectl: Kubectl, ns: str) -> dict[str, Obj]:
    return {rs["metadata"]["name"]: rs for rs in get_json(kubectl, "rs", "-n", ns)["items"]}


def image_of(obj: Obj) -> str:
    image: str = obj["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def settled(kubectl: Kubectl, ns: str, n: int) -> bool:
    """Exactly n pods exist (none terminating), all Running and ready, and the Deployment says so."""
    items = get_json(kubectl, "pods", "-n", ns, "-l", "app=x")["items"]
    d = get_json(kubectl, "deploy/x", "-n", ns)
    st = d.get("status") or {}
    return (
        len(items) == n
        and all(not terminating(p) and ready(p) and p["status"].get("phase") == "Running" for p in items)
        and st.get("availableReplicas") == n
        and st.get("replicas") == n
        and st.get("observedGeneration") == d["metadata"]["generation"]
    )


class PodWatcher:
    """A watch on one namespace's pods in the cluster's trio loop, recording
    (pods not terminating, ready pods not terminating) whenever either changes."""

    def __init__(self, cluster: SimCluster, ns: str, selector: str) -> None:
        self.cluster, self.ns, self.selector = cluster, ns, selector
        self.samples: list[tuple[int, int]] = []
        self.listed = threading.Event()
        self._scope: trio.CancelScope | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._error: BaseException | None = None

    def _main(self) -> None:
        try:
            trio.from_thread.run(self._watch, trio_token=self.cluster.runner._token)
        except BaseException as exc:  # reported by stop()
            self._error = exc
        finally:
            self.listed.set()

    async def _watch(self) -> None:
        core = self.cluster.runner.cluster.core  # type: ignore[attr-defined]
        client = LocalClient(core)
        pod_rt = client.kind("Pod")
        with trio.CancelScope() as scope:
            self._scope = scope
            items, rv = await client.list(pod_rt, self.ns, label_selector=self.selector)
            pods = {p["metadata"]["uid"]: p for p in items}
            self._record(pods)
            self.listed.set()
            async for event_type, obj in client.watch(
                pod_rt, self.ns, resource_version=rv, label_selector=self.selector
            ):
                if event_type == "DELETED":
                    pods.pop(obj["metadata"]["uid"], None)
                elif event_type in ("ADDED", "MODIFIED"):
                    pods[obj["metadata"]["uid"]] = obj
                self._record(pods)

    def _record(self, pods: dict[str, Obj]) -> None:
        alive = [p for p in pods.values() if not terminating(p)]
        sample = (len(alive), sum(1 for p in alive if ready(p)))
        if not self.samples or self.samples[-1] != sample:
            self.samples.append(sample)

    def start(self) -> None:
        self._thread.start()
        assert self.listed.wait(10), "pod watch did not start"
        assert self._error is None, self._error

    def stop(self) -> list[tuple[int, int]]:
        if self._scope is not None:
            self.cluster.call(self._scope.cancel)
        self._thread.join(10)
        if self._error is not None:
            raise AssertionError("pod watcher failed") from self._error
        return self.samples


# --- the scenarios ---------------------------------------------------------------------------------


def test_rolling_update_respects_bounds_then_undo(kubectl: Kubectl, sim_cluster: SimCluster) -> None:
    ns = "roll"
    apply_namespace(kubectl, ns)
    assert "deployment.apps/x created" in kubectl("apply", "-f", "-", input=deployment(ns)).stdout
    rollout_status(kubectl, ns)
    wait_for("4 ready pods", lambda: settled(kubectl, ns, REPLICAS))
    (first_rs,) = replicasets(kubectl, ns)

    watcher = PodWatcher(sim_cluster, ns, "app=x")
    watcher.start()
    try:
        kubectl("set", "image", "deploy/x", f"c={IMAGE_V2}", "-n", ns)
        rollout_status(kubectl, ns)
        wait_for("4 ready v2 pods", lambda: settled(kubectl, ns, REPLICAS))
    finally:
        samples = watcher.stop()
    # the rollout went through intermediate states, and never beyond the configured bounds
    assert len(samples) > 3, samples
    assert max(total for total, _ in samples) <= REPLICAS + MAX_SURGE, samples
    assert min(available for _, available in samples) >= REPLICAS - MAX_UNAVAILABLE, samples
    assert samples[-1] == (REPLICAS, REPLICAS), samples
    assert {p["spec"]["containers"][0]["image"] for p in live_pods(kubectl, ns)} == {IMAGE_V2}
    rss = replicasets(kubectl, ns)
    (second_rs,) = set(rss) - {first_rs}
    assert rss[first_rs]["spec"]["replicas"] == 0 and rss[second_rs]["spec"]["replicas"] == REPLICAS

    history = kubectl("rollout", "history", "deploy/x", "-n", ns).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"], history
    assert IMAGE_V2 in kubectl("rollout", "history", "deploy/x", "-n", ns, "--revision=2").stdout

    assert "deployment.apps/x rolled back" in kubectl("rollout", "undo", "deploy/x", "-n", ns).stdout
    rollout_status(kubectl, ns)
    wait_for("4 ready v1 pods", lambda: settled(kubectl, ns, REPLICAS))
    assert image_of(get_json(kubectl, "deploy/x", "-n", ns)) == IMAGE_V1
    rss = replicasets(kubectl, ns)
    assert set(rss) == {first_rs, second_rs}, "undo reuses the old ReplicaSet instead of creating a third"
    assert rss[first_rs]["spec"]["replicas"] == REPLICAS and rss[second_rs]["spec"]["replicas"] == 0
    assert rss[first_rs]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert {p["spec"]["containers"][0]["image"] for p in live_pods(kubectl, ns)} == {IMAGE_V1}
    history = kubectl("rollout", "history", "deploy/x", "-n", ns).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"], history


def test_pause_resume_restart(kubectl: Kubectl) -> None:
    ns = "pause"
    apply_namespace(kubectl, ns)
    kubectl("apply", "-f", "-", input=deployment(ns))
    rollout_status(kubectl, ns)
    (first_rs,) = replicasets(kubectl, ns)

    assert "deployment.apps/x paused" in kubectl("rollout", "pause", "deploy/x", "-n", ns).stdout
    kubectl("set", "image", "deploy/x", f"c={IMAGE_V2}", "-n", ns)
    wait_for(
        "the paused spec observed",
        lambda: (lambda d: d["status"].get("observedGeneration") == d["metadata"]["generation"])(
            get_json(kubectl, "deploy/x", "-n", ns)
        ),
    )
    assert set(replicasets(kubectl, ns)) == {first_rs}, "a paused Deployment does not roll"
    out = kubectl("rollout", "status", "deploy/x", "-n", ns, "--watch=false").stdout
    assert "0 out of 4 new replicas have been updated" in out
    conds = {c["type"]: c for c in get_json(kubectl, "deploy/x", "-n", ns)["status"]["conditions"]}
    assert conds["Progressing"]["reason"] == "DeploymentPaused"

    assert "deployment.apps/x resumed" in kubectl("rollout", "resume", "deploy/x", "-n", ns).stdout
    rollout_status(kubectl, ns)
    wait_for("4 ready v2 pods", lambda: settled(kubectl, ns, REPLICAS))
    assert {p["spec"]["containers"][0]["image"] for p in live_pods(kubectl, ns)} == {IMAGE_V2}

    before = set(replicasets(kubectl, ns))
    assert "deployment.apps/x restarted" in kubectl("rollout", "restart", "deploy/x", "-n", ns).stdout
    rollout_status(kubectl, ns)
    wait_for("4 ready restarted pods", lambda: settled(kubectl, ns, REPLICAS))
    rss = replicasets(kubectl, ns)
    (restarted,) = set(rss) - before
    annotations = rss[restarted]["spec"]["template"]["metadata"].get("annotations") or {}
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    assert all(
        p["metadata"]["labels"]["pod-template-hash"] == restarted.rsplit("-", 1)[1]
        for p in live_pods(kubectl, ns)
    )
    history = kubectl("rollout", "history", "deploy/x", "-n", ns).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2", "3"], history


def test_scale_up_and_down_and_replace_deleted_pod(kubectl: Kubectl) -> None:
    ns = "scale"
    apply_namespace(kubectl, ns)
    kubectl("apply", "-f", "-", input=deployment(ns))
    rollout_status(kubectl, ns)
    assert "deployment.apps/x scaled" in kubectl("scale", "deploy/x", "--replicas=6", "-n", ns).stdout
    rollout_status(kubectl, ns)
    wait_for("6 ready pods", lambda: settled(kubectl, ns, 6))
    kubectl("scale", "deploy/x", "--replicas=2", "-n", ns)
    rollout_status(kubectl, ns)
    wait_for("2 ready pods, the others gone", lambda: settled(kubectl, ns, 2))

    victim = live_pods(kubectl, ns)[0]["metadata"]["name"]
    assert f'pod "{victim}" deleted' in kubectl("delete", "pod", victim, "-n", ns).stdout
    wait_for("a replacement pod", lambda: settled(kubectl, ns, 2))
    assert victim not in {p["metadata"]["name"] for p in live_pods(kubectl, ns)}


def test_pod_that_fits_nowhere_is_pending_with_the_kubernetes_reason(kubectl: Kubectl) -> None:
    ns = "pending"
    apply_namespace(kubectl, ns)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big", "namespace": ns},
           "spec": {"containers": [{"name": "c", "image": IMAGE_V1, "command": ["sleep", "3600"],
                                    "resources": {"requests": {"cpu": "1000"}}}]}}
    kubectl("apply", "-f", "-", input=json.dumps(pod))

    def described() -> str | None:
        out = kubectl("describe", "pod", "big", "-n", ns).stdout
        return out if "FailedScheduling" in out else None

    out = wait_for("a FailedScheduling event", described)
    assert "Status:           Pending" in out
    assert "PodScheduled   False" in out
    assert "0/3 nodes are available: 3 Insufficient cpu." in out
    assert "default-scheduler" in out
    got = get_json(kubectl, "pod/big", "-n", ns)
    assert not got["spec"].get("nodeName")
    (cond,) = [c for c in got["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"


def test_job_runs_to_completion(kubectl: Kubectl) -> None:
    ns = "job"
    apply_namespace(kubectl, ns)
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": ns},
           "spec": {"completions": 3, "parallelism": 2, "template": {"spec": {
               "restartPolicy": "Never",
               "containers": [{"name": "worker", "image": IMAGE_V1, "command": ["sh", "-c", "echo done"]}]}}}}
    kubectl("apply", "-f", "-", input=json.dumps(job))
    out = kubectl("wait", "--for=condition=complete", "job/j", "-n", ns, "--timeout=60s").stdout
    assert "job.batch/j condition met" in out
    got = get_json(kubectl, "job/j", "-n", ns)
    assert got["status"]["succeeded"] == 3
    pods = get_json(kubectl, "pods", "-n", ns, "-l", "job-name=j")["items"]
    assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Succeeded"}
    assert "3/3" in kubectl("get", "job", "j", "-n", ns).stdout


def _pods_on(kubectl: Kubectl, ns: str, node: str) -> list[str]:
    return [p["metadata"]["name"] for p in live_pods(kubectl, ns) if p["spec"].get("nodeName") == node]


def _drain_scenario(kubectl: Kubectl, ns: str, *extra: str) -> None:
    apply_namespace(kubectl, ns)
    kubectl("apply", "-f", "-", input=deployment(ns, replicas=6))
    rollout_status(kubectl, ns)
    wait_for("6 ready pods", lambda: settled(kubectl, ns, 6))
    assert _pods_on(kubectl, ns, "sim-node-1"), "spreading puts some pods on every node"
    try:
        assert "node/sim-node-1 cordoned" in kubectl("cordon", "sim-node-1").stdout
        assert get_json(kubectl, "node/sim-node-1")["spec"]["unschedulable"] is True
        out = kubectl("drain", "sim-node-1", "--ignore-daemonsets", "--delete-emptydir-data", "--force",
                      "--timeout=60s", *extra).stdout
        assert "node/sim-node-1 drained" in out
        wait_for("6 ready pods again", lambda: settled(kubectl, ns, 6))
        assert _pods_on(kubectl, ns, "sim-node-1") == [], "drain moved every pod off the node"
        assert {p["spec"]["nodeName"] for p in live_pods(kubectl, ns)} <= {"sim-node-2", "sim-node-3"}
    finally:
        kubectl("uncordon", "sim-node-1")


def test_cordon_and_drain_moves_pods(kubectl: Kubectl) -> None:
    _drain_scenario(kubectl, "drain")


def test_cordon_and_drain_with_delete_moves_pods(kubectl: Kubectl) -> None:
    """The same drain with --disable-eviction (kubectl deletes the pods instead of evicting them)."""
    _drain_scenario(kubectl, "drain-delete", "--disable-eviction")


def test_delete_deployment_removes_replicasets_and_pods(kubectl: Kubectl) -> None:
    ns = "gc"
    apply_namespace(kubectl, ns)
    kubectl("apply", "-f", "-", input=deployment(ns))
    rollout_status(kubectl, ns)
    kubectl("set", "image", "deploy/x", f"c={IMAGE_V2}", "-n", ns)
    rollout_status(kubectl, ns)
    assert len(replicasets(kubectl, ns)) == 2
    assert 'deployment.apps "x" deleted' in kubectl("delete", "deploy", "x", "-n", ns).stdout
    wait_for("ReplicaSets and pods gone", lambda: not replicasets(kubectl, ns)
             and not get_json(kubectl, "pods", "-n", ns)["items"])



def test_drain_honours_a_pod_disruption_budget(kubectl: Kubectl) -> None:
    """A Deployment of 3 under a PDB with minAvailable 3: drain keeps getting 429 and gives up at its
    timeout; with minAvailable 2 the same drain evicts the node's pod (which comes back elsewhere)."""
    ns, app = "budget", "budget"
    apply_namespace(kubectl, ns)
    kubectl("apply", "-f", "-", input=deployment(ns, app, replicas=3))
    rollout_status(kubectl, ns, app)
    out = kubectl(
        "create", "pdb", app, "-n", ns, f"--selector=app={app}", "--min-available=3"
    ).stdout  # protobuf body
    assert f"poddisruptionbudget.policy/{app} created" in out

    def budget_is(current: int, allowed: int, generation: int) -> bool:
        st = get_json(kubectl, "pdb", app, "-n", ns).get("status") or {}
        return (st.get("observedGeneration"), st.get("currentHealthy"), st.get("disruptionsAllowed")) == (
            generation,
            current,
            allowed,
        )

    wait_for("the budget computed", lambda: budget_is(3, 0, 1))
    lines = kubectl("get", "pdb", "-n", ns).stdout.splitlines()
    assert lines[0].split() == [
        "NAME",
        "MIN",
        "AVAILABLE",
        "MAX",
        "UNAVAILABLE",
        "ALLOWED",
        "DISRUPTIONS",
        "AGE",
    ]
    assert lines[1].split()[:4] == [app, "3", "N/A", "0"]
    node = live_pods(kubectl, ns, f"app={app}")[0]["spec"]["nodeName"]
    drain = (
        "drain",
        node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--force",
        f"--pod-selector=app={app}",
    )
    try:
        refused = kubectl(*drain, "--timeout=10s", check=False)
        assert refused.returncode != 0
        assert (
            "(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."
            in refused.stderr
        )
        assert "global timeout reached: 10s" in refused.stderr
        assert len(live_pods(kubectl, ns, f"app={app}")) == 3, "nothing was evicted"
        kubectl("patch", "pdb", app, "-n", ns, "--type=merge", "-p", '{"spec": {"minAvailable": 2}}')
        wait_for("the budget recomputed", lambda: budget_is(3, 1, 2))
        assert f"node/{node} drained" in kubectl(*drain, "--timeout=60s").stdout
        wait_for(
            f"3 ready pods, none on {node}",
            lambda: (
                [p["spec"].get("nodeName") for p in live_pods(kubectl, ns, f"app={app}") if ready(p)].count(
                    node
                )
                == 0
                and len([p for p in live_pods(kubectl, ns, f"app={app}") if ready(p)]) == 3
            ),
        )
        wait_for("the budget back to one disruption", lambda: budget_is(3, 1, 2))
    finally:
        kubectl("uncordon", node)


def test_daemonset_rollout_history_and_undo(kubectl: Kubectl) -> None:
    """ControllerRevisions make `rollout history` and `rollout undo` work for a DaemonSet."""
    ns = "ds-undo"
    apply_namespace(kubectl, ns)
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet",
          "metadata": {"name": "agent", "namespace": ns},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [
                       {"name": "c", "image": IMAGE_V1, "command": ["sleep", "3600"]}]}}}}
    kubectl("apply", "-f", "-", input=json.dumps(ds))
    kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=60s")

    def images() -> set[str]:
        return {p["spec"]["containers"][0]["image"] for p in live_pods(kubectl, ns, "app=agent")}

    kubectl("set", "image", "ds/agent", f"c={IMAGE_V2}", "-n", ns)
    kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=60s")
    wait_for(
        "pods on the second image",
        lambda: images() == {IMAGE_V2} and len(live_pods(kubectl, ns, "app=agent")) == 3,
    )
    history = kubectl("rollout", "history", "ds/agent", "-n", ns).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"], history
    revs = get_json(kubectl, "controllerrevisions", "-n", ns)["items"]
    assert sorted(r["revision"] for r in revs) == [1, 2]
    assert "daemonset.apps/agent" in kubectl("get", "controllerrevisions", "-n", ns).stdout
    assert "rolled back" in kubectl("rollout", "undo", "ds/agent", "-n", ns).stdout
    kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=60s")
    wait_for(
        "pods back on the first image",
        lambda: images() == {IMAGE_V1} and len(live_pods(kubectl, ns, "app=agent")) == 3,
    )
    history = kubectl("rollout", "history", "ds/agent", "-n", ns).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"], history
