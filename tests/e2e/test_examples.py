"""Every file in examples/ applied to a real cluster (Podman pods, service network), end state checked.

One module-scoped cluster, driven with the real kubectl 1.32 like a user would. Needs root and Podman
(as CI has); only one network-enabled cluster may run on a host at a time (see
tests/e2e/test_network_podman.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import KUBECTL, ClusterThread
from tests.e2e.test_network_podman import preflight
from tests.e2e.upserver import remove_pods

pytestmark = [pytest.mark.podman, pytest.mark.kubectl, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
T = TypeVar("T")


class Kubectl:
    def __init__(self, kubeconfig: Path, home: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}

    def __call__(self, *args: str, check: bool = True, timeout: float = 90) -> str:
        proc = subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc.stdout + proc.stderr

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))


def wait_for(what: str, cond: Callable[[], T | None], limit: float = 90.0) -> T:
    deadline = time.monotonic() + limit  # wall-clock: real containers
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    from orchestra.app import ClusterConfig

    routed_before = preflight()
    state = tmp_path_factory.mktemp("examples-state")
    runner = ClusterThread(
        ClusterConfig(state_dir=state, listen_port=0, store="memory", podman=True, network=True)
    )
    cluster: Any = runner.start()
    cluster_id = cluster.core.get(cluster.core.registry.by_kind("Namespace"), None, "kube-system")[
        "metadata"
    ]["uid"]
    try:
        yield Kubectl(cluster.kubeconfig, tmp_path_factory.mktemp("examples-home"))
    finally:
        runner.stop()
        conf = state / "podman" / "containers.conf"
        env = {**os.environ, "CONTAINERS_CONF": str(conf)} if conf.exists() else dict(os.environ)
        pods = subprocess.run(
            ["podman", "pod", "ps", "-q", "--filter", f"label=orchestra.io/cluster={cluster_id}"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        ).stdout.split()
        remove_pods(pods, env=env)
        if not routed_before:
            subprocess.run(
                ["ip", "route", "del", "local", "10.96.0.0/16", "dev", "lo"], capture_output=True, check=False
            )


@pytest.fixture(scope="module")
def applied(kubectl: Kubectl) -> Kubectl:
    out = kubectl("apply", "-f", str(EXAMPLES))
    for line in ("deployment.apps/web created", "service/web created", "configmap/web-content created",
                 "pod/shared-localhost created", "job.batch/countdown created", "cronjob.batch/hello created",
                 "daemonset.apps/node-reporter created"):
        assert line in out, out
    kubectl("apply", "-f", str(EXAMPLES / "self-healing"))
    return kubectl


def test_web_app_serves_the_config_map_through_the_service(applied: Kubectl) -> None:
    applied("rollout", "status", "deploy/web", "--timeout=90s")
    page = wait_for("the page through the Service", lambda: _try(
        applied, "exec", "deploy/web", "--", "wget", "-qO-", "http://web"))
    assert "Hello from orchestra" in page
    full = applied("exec", "deploy/web", "--", "wget", "-qO-", "http://web.default.svc.cluster.local")
    assert "Hello from orchestra" in full


def test_multi_container_pod_shares_localhost(applied: Kubectl) -> None:
    logs = wait_for(
        "the client's log of the server's page",
        lambda: (
            out
            if "hello from the server container"
            in (out := _try(applied, "logs", "shared-localhost", "-c", "client"))
            else None
        ),
    )
    assert "hello from the server container" in logs
    pod = applied.json("get", "pod", "shared-localhost")
    assert [c["ready"] for c in pod["status"]["containerStatuses"]] == [True, True]


def test_job_completes_and_cronjob_template_runs(applied: Kubectl) -> None:
    applied("wait", "--for=condition=complete", "job/countdown", "--timeout=90s", timeout=100)
    job = applied.json("get", "job", "countdown")
    assert job["status"]["succeeded"] == 3
    assert "done" in applied("logs", "job/countdown")
    applied("create", "job", "hello-now", "--from=cronjob/hello")
    applied("wait", "--for=condition=complete", "job/hello-now", "--timeout=60s", timeout=70)
    assert "hello from a CronJob" in applied("logs", "job/hello-now")


def test_daemonset_runs_one_pod_per_node(applied: Kubectl) -> None:
    nodes = applied.json("get", "nodes")["items"]
    wait_for(
        "a ready pod per node",
        lambda: applied.json("get", "ds", "node-reporter")["status"].get("numberReady") == len(nodes),
    )
    pod = applied.json("get", "pods", "-l", "app=node-reporter")["items"][0]
    node = pod["spec"]["nodeName"]
    assert wait_for(
        "the node name in the log", lambda: node in _try(applied, "logs", pod["metadata"]["name"])
    )


def test_self_healing_crash_loop_and_liveness(applied: Kubectl) -> None:
    def restarted(name: str) -> int | None:
        statuses = applied.json("get", "pod", name)["status"].get("containerStatuses") or []
        count = statuses[0]["restartCount"] if statuses else 0
        return count if count >= 1 else None

    assert wait_for("the crashing container to restart", lambda: restarted("crasher"), limit=60)
    assert wait_for(
        "the failing liveness probe to restart the container", lambda: restarted("liveness"), limit=90
    )
    events = applied("get", "events", "--field-selector", "involvedObject.name=liveness")
    assert "Unhealthy" in events and "Killing" in events
    last = applied.json("get", "pod", "crasher")["status"]["containerStatuses"][0]["lastState"]
    assert last["terminated"]["exitCode"] == 1 and last["terminated"]["reason"] == "Error"


def test_rolling_update_walkthrough(applied: Kubectl) -> None:
    applied("apply", "-f", str(EXAMPLES / "rolling-update" / "v1.yaml"))
    applied("rollout", "status", "deploy/greeter", "--timeout=90s")
    applied("apply", "-f", str(EXAMPLES / "rolling-update" / "v2.yaml"))
    applied("rollout", "status", "deploy/greeter", "--timeout=90s")
    assert "hello from v2" in applied("exec", "deploy/greeter", "--", "cat", "/tmp/index.html")
    history = applied("rollout", "history", "deploy/greeter")
    assert "1" in history and "2" in history
    applied("rollout", "undo", "deploy/greeter")
    applied("rollout", "status", "deploy/greeter", "--timeout=90s")
    env = applied.json("get", "deploy", "greeter")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "GREETING", "value": "hello from v1"}]


def _try(kubectl: Kubectl, *args: str) -> str:
    try:
        return kubectl(*args)
    except AssertionError:
        return ""
