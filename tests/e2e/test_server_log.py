"""A realistic workload leaves no ERROR in the server's log: a real `orchestra up` (simulated nodes)
gets every example applied, scaled, rolled, its pods and objects deleted, and finally its namespace
deleted while controllers are still reconciling in it. Such races (an object deleted mid-reconcile, a
namespace terminating under a controller) are routine in Kubernetes; they must not log tracebacks."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.upserver import UpServer, orchestra_up

pytestmark = [pytest.mark.slow, pytest.mark.kubectl]

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NS = "audit"
BAD_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpServer]:
    with orchestra_up(tmp_path_factory.mktemp("audit") / "state", nodes=2) as up:
        yield up


def _kubectl(server: UpServer, home: Path) -> Callable[..., str]:
    def run(*args: str) -> str:
        proc = subprocess.run([KUBECTL, "--kubeconfig", str(server.kubeconfig), *args], capture_output=True,
                              text=True, timeout=120, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    return run


def _until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_realistic_workload_logs_no_error(server: UpServer, tmp_path: Path) -> None:
    kubectl = _kubectl(server, tmp_path)
    kubectl("create", "namespace", NS)
    for manifest in sorted(EXAMPLES.rglob("*.yaml")):
        if manifest.name != "v2.yaml":  # the rolling update's second step, applied below
            kubectl("apply", "-n", NS, "-f", str(manifest))

    # its pods exist (simulated ones never pass its httpGet probe)
    def replicas(n: int) -> Callable[[], bool]:
        return lambda: kubectl("get", "-n", NS, "deploy/web", "-o", "jsonpath={.status.replicas}") == str(n)

    _until(replicas(2), "the web pods")
    kubectl("scale", "-n", NS, "deploy/web", "--replicas=5")
    _until(replicas(5), "the scaled-up web pods")
    kubectl("apply", "-n", NS, "-f", str(EXAMPLES / "rolling-update" / "v2.yaml"))
    kubectl("scale", "-n", NS, "deploy/web", "--replicas=1")
    time.sleep(3)  # let the controllers work through the changes
    kubectl("delete", "-n", NS, "pods", "--all", "--wait=false")
    kubectl("delete", "-n", NS, "statefulsets,services", "--all", "--wait=false")
    kubectl("delete", "namespace", NS, "--wait=false")  # while everything in it still reconciles
    _until(lambda: NS not in kubectl("get", "namespaces", "-o", "name"), "the namespace's removal")
    time.sleep(2)  # controllers catch up with the deletions
    errors = [line for line in server.log_text().splitlines() if BAD_LINE.search(line)]
    assert errors == [], "\n".join(errors)
