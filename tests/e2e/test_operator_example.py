"""examples/operator: the kopf StaticSite operator against a real `orchestra up` (a subprocess, memory
store, one simulated node, no network), driven with kubectl: a StaticSite makes its ConfigMap,
Deployment and Service and gets a status; deleting it removes what it made. The operator runs as the
ServiceAccount its rbac.yaml ships (RBAC authorizes its custom resources, their status subresource and
what it makes), and kube's `view` role covers StaticSites through rbac.yaml's aggregated ClusterRole."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import KUBECTL

pytest.importorskip("kopf")
pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "operator"
SA = "staticsite-operator"  # its ServiceAccount and namespace (rbac.yaml)
BIN = Path(sys.executable).parent
T = TypeVar("T")


def wait_for(what: str, cond: Callable[[], T | None], limit: float = 60.0) -> T:
    deadline = time.monotonic() + limit  # wall clock: real processes
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}")
        time.sleep(0.3)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, str]]:
    state = tmp_path / "state"
    env = {**os.environ, "HOME": str(tmp_path / "home"), "KUBECONFIG": str(state / "kubeconfig")}
    log = (tmp_path / "orchestra.log").open("w")
    up = subprocess.Popen(
        [
            str(BIN / "orchestra"),
            "up",
            "--memory",
            "--no-podman",
            "--no-network",
            "--no-dashboard",
            "--simulate-nodes",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            str(state),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        wait_for("the API", lambda: (state / "kubeconfig").exists() and subprocess.run(
            [KUBECTL, "get", "--raw", "/readyz"], capture_output=True, env=env).returncode == 0)
        yield env
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
        log.close()


def kubectl(env: dict[str, str], *args: str, check: bool = True) -> str:
    proc = subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def get(env: dict[str, str], *args: str) -> Any:
    proc = subprocess.run(
        [KUBECTL, "get", *args, "-o", "json"], capture_output=True, text=True, env=env, timeout=60
    )
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def operator_kubeconfig(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The environment of a client that is the operator's ServiceAccount (README.md's steps)."""
    token = kubectl(env, "create", "token", SA, "-n", SA, "--duration", "1h").strip()
    path = tmp_path / "operator.kubeconfig"
    shutil.copy(env["KUBECONFIG"], path)
    operator_env = {**env, "KUBECONFIG": str(path)}
    kubectl(operator_env, "config", "set-credentials", SA, f"--token={token}")
    kubectl(operator_env, "config", "set-context", "--current", f"--user={SA}")
    assert json.loads(kubectl(operator_env, "auth", "whoami", "-o", "json"))["status"]["userInfo"][
        "username"] == f"system:serviceaccount:{SA}:{SA}"
    return operator_env


def test_staticsite_operator(cluster: dict[str, str], tmp_path: Path) -> None:
    env = cluster
    kubectl(env, "apply", "-f", str(EXAMPLE / "crd.yaml"))
    kubectl(
        env, "wait", "--for=condition=established", "crd/staticsites.sites.orchestra.dev", "--timeout=30s"
    )
    kubectl(env, "apply", "-f", str(EXAMPLE / "rbac.yaml"))
    operator_env = operator_kubeconfig(env, tmp_path)
    can_i = ("auth", "can-i", "patch", "staticsites", "--subresource=status", "-A")
    assert kubectl(operator_env, *can_i, check=False) == "yes\n"
    assert kubectl(operator_env, "auth", "can-i", "list", "secrets", "-A", check=False) == "no\n"
    kopf = shutil.which("kopf", path=str(BIN)) or "kopf"
    log = (tmp_path / "kopf.log").open("w")
    operator = subprocess.Popen(
        [kopf, "run", "--standalone", "--all-namespaces", str(EXAMPLE / "operator.py")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=operator_env,
    )
    try:
        kubectl(env, "apply", "-f", str(EXAMPLE / "staticsite.yaml"))
        deploy = wait_for("the Deployment", lambda: get(env, "deployment", "hello"))
        assert deploy["spec"]["replicas"] == 2
        assert deploy["metadata"]["ownerReferences"][0]["kind"] == "StaticSite"
        assert get(env, "configmap", "hello-content")["data"]["index.html"].startswith("<h1>Hello")
        assert get(env, "service", "hello")["spec"]["ports"][0]["port"] == 80
        site = wait_for("the site's status", lambda: (s := get(env, "staticsite", "hello"))
                        and s.get("status", {}).get("phase") == "Ready" and s)
        assert site["status"] == {
            "replicas": 2,
            "readyReplicas": 2,
            "service": "hello.default.svc",
            "phase": "Ready",
        }
        rows = kubectl(env, "get", "staticsites").splitlines()
        assert rows[0].split() == ["NAME", "REPLICAS", "READY", "SERVICE", "AGE"]
        assert rows[1].split()[:4] == ["hello", "2", "2", "hello.default.svc"]

        # a user with kube's `view` in the namespace reads StaticSites (rbac.yaml's aggregated role)
        kubectl(env, "create", "rolebinding", "jane-views", "--clusterrole=view", "--user=jane")
        assert "hello" in wait_for("view to cover StaticSites", lambda: kubectl(
            env, "get", "staticsites", "--as=jane", check=False))
        assert kubectl(env, "auth", "can-i", "delete", "staticsites", "--as=jane", check=False) == "no\n"

        kubectl(env, "scale", "staticsite", "hello", "--replicas=1")
        wait_for("the scaled Deployment", lambda: get(env, "deployment", "hello")["spec"]["replicas"] == 1)

        kubectl(env, "delete", "staticsite", "hello")
        for kind, name in (("deployment", "hello"), ("configmap", "hello-content"), ("service", "hello")):
            wait_for(f"{kind} {name} to go", lambda kind=kind, name=name: get(env, kind, name) is None)
    finally:
        operator.send_signal(signal.SIGINT)
        try:
            operator.wait(30)
        except subprocess.TimeoutExpired:
            operator.kill()
            operator.wait()
        log.close()
