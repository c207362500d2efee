"""Acceptance: `orchestra up` stops cleanly at any moment and leaves nothing behind.

Real `orchestra up` processes with Podman and service networking: SIGTERM at random moments of
start-up and `--apply` (20 runs), SIGINT likewise, a second signal forcing a quick exit, SIGKILL
leaving no Podman service, and the next `up` removing a dead cluster's pods.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.upserver import processes_naming, remove_pods

pytestmark = [pytest.mark.podman, pytest.mark.slow]

MANIFESTS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: localhost/busybox
        command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 & wait"]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: localhost/busybox
    command: ["sleep", "3600"]
"""
SERVICE_CIDR = "10.96.0.0/12"
STOP_BUDGET = 20.0  # wall-clock s from the signal to exit: pods' 2 s grace, Podman, and a loaded CI machine


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    path = tmp_path / "manifests"
    path.mkdir()
    (path / "app.yaml").write_text(MANIFESTS)
    return path


@pytest.fixture(autouse=True)
def _no_route_before() -> Iterator[None]:
    if _route_present():
        pytest.skip(f"the service route {SERVICE_CIDR} is already on this host (another cluster is running)")
    yield


def _route_present() -> bool:
    out = subprocess.run(
        ["ip", "route", "show", "table", "local", SERVICE_CIDR], capture_output=True, text=True, check=False
    ).stdout
    return SERVICE_CIDR in out


def _up(state: Path, *args: str) -> subprocess.Popen[bytes]:
    with (state.parent / f"{state.name}.log").open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestra",
                "up",
                "--state-dir",
                str(state),
                "--listen",
                "127.0.0.1:0",
                "--no-dashboard",
                # not the ingress's test: ports 80/443 may be another program's on this host
                "--ingress-listen",
                "off",
                "--ingress-tls-listen",
                "off",
                *args,
            ],
            stdout=log,
            stderr=log,
        )


def _log(state: Path) -> str:
    return (state.parent / f"{state.name}.log").read_text(errors="replace")


def _pods_of(state: Path) -> list[str]:
    out = subprocess.run(
        [
            "podman",
            "pod",
            "ps",
            "--filter",
            f"label=orchestra.io/state-dir={state.resolve()}",
            "--format",
            "{{.Name}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def _wait_exit(proc: subprocess.Popen[bytes], budget: float) -> float:
    started = time.monotonic()
    try:
        proc.wait(budget)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"orchestra up did not exit within {budget} s of the signal") from None
    return time.monotonic() - started


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _remove_pods(state: Path) -> None:
    remove_pods(_pods_of(state))


def _assert_nothing_left(state: Path) -> None:
    try:
        assert processes_naming(state) == [], _log(state)
        assert _pods_of(state) == [], _log(state)
        assert not _route_present(), _log(state)
    finally:
        _remove_pods(state)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_at_any_moment_of_start_up_stops_cleanly(tmp_path: Path, manifests: Path,
                                                            signum: signal.Signals) -> None:
    """20 runs with SIGTERM (6 with SIGINT) at random moments 0-3 s after launch: start-up, --apply,
    pods starting. Each exits 0 within its budget, and leaves no process, route or pod."""
    rng = random.Random(f"stop-{signum.name}")
    runs = 20 if signum == signal.SIGTERM else 6
    for i in range(runs):
        state = tmp_path / f"run{i}"
        proc = _up(state, "--stop-pods", "--timings", "fast", "--apply", str(manifests))
        delay = rng.uniform(0, 3)
        time.sleep(delay)
        proc.send_signal(signum)
        took = _wait_exit(proc, STOP_BUDGET)
        # 0 once `up` runs; before that (Python still importing the CLI) a quiet 143/130 and nothing started
        early = {signal.SIGTERM: 143, signal.SIGINT: 130}[signum]
        assert proc.returncode == 0 or (proc.returncode == early and not state.exists()), (
            f"run {i} (signal after {delay:.2f} s): exit {proc.returncode}\n{_log(state)}")
        assert "Traceback" not in _log(state), _log(state)
        _assert_nothing_left(state)
        print(f"run {i}: signal after {delay:.2f} s, exit {took:.2f} s later")


def test_a_second_signal_forces_a_quick_exit(tmp_path: Path, manifests: Path) -> None:
    (manifests / "app.yaml").write_text(MANIFESTS.replace("terminationGracePeriodSeconds: 2",
                                                          "terminationGracePeriodSeconds: 60"))
    state = tmp_path / "state"
    proc = _up(state, "--stop-pods", "--no-network", "--apply", str(manifests))
    try:
        _wait_for(lambda: len(_pods_of(state)) >= 3 and "orchestra is ready" in _log(state), 60, "three pods")
        time.sleep(2)  # the containers are running
        proc.send_signal(signal.SIGTERM)
        _wait_for(lambda: "stopping 3 pods" in _log(state), 15, "the --stop-pods progress line")
        assert "grace periods up to 10 s" in _log(state)  # 60 s asked, capped
        proc.send_signal(signal.SIGTERM)
        took = _wait_exit(proc, 8)
        assert took < 6, took
        assert "forcing the stop" in _log(state)
        # the reaper stops the Podman service once orchestra is gone (SIGKILL after 5 s at most)
        _wait_for(lambda: processes_naming(state) == [], 10, "the Podman service to end")
    finally:
        if proc.poll() is None:
            proc.kill()
        _remove_pods(state)


def test_sigkill_leaves_no_podman_service_and_the_next_up_removes_the_dead_clusters_pods(
        tmp_path: Path, manifests: Path) -> None:
    dead = tmp_path / "dead"
    proc = _up(dead, "--memory", "--no-network", "--apply", str(manifests))
    try:
        _wait_for(lambda: len(_pods_of(dead)) >= 3, 60, "the first cluster's pods")
        proc.kill()
        proc.wait()
        _wait_for(lambda: processes_naming(dead) == [], 10, "the Podman service to end with its cluster")
        pods = _pods_of(dead)
        assert len(pods) >= 3
        # A memory cluster's state is gone with its process: the next start on the same directory is
        # another cluster, and nothing will ever adopt the first one's pods.
        again = _up(dead, "--memory", "--no-network")
        try:
            _wait_for(lambda: _pods_of(dead) == [] and "pods of cluster" in _log(dead), 60,
                      "the dead cluster's pods to be removed")
            assert "now holds another cluster" in _log(dead)
            for name in pods:
                assert name in _log(dead)  # it says what it removed
        finally:
            again.send_signal(signal.SIGTERM)
            _wait_exit(again, STOP_BUDGET)
    finally:
        if proc.poll() is None:
            proc.kill()
        _remove_pods(dead)


def test_a_stopped_clusters_pods_are_kept_for_adoption(tmp_path: Path, manifests: Path) -> None:
    """Only dead clusters are cleaned: a durable cluster stopped by SIGKILL keeps its pods, and another
    cluster starting meanwhile leaves them alone."""
    kept = tmp_path / "kept"
    other = tmp_path / "other"
    proc = _up(kept, "--no-network", "--apply", str(manifests))
    try:
        _wait_for(lambda: len(_pods_of(kept)) >= 3, 60, "the first cluster's pods")
        proc.kill()
        proc.wait()
        pods = sorted(_pods_of(kept))
        second = _up(other, "--memory", "--no-network")
        try:
            _wait_for(lambda: "orchestra is ready" in _log(other), 30, "the second cluster")
            time.sleep(3)  # the clean-up sweep runs in the background after start-up
            assert sorted(_pods_of(kept)) == pods
            assert "pods of cluster" not in _log(other)
        finally:
            second.send_signal(signal.SIGTERM)
            _wait_exit(second, STOP_BUDGET)
    finally:
        if proc.poll() is None:
            proc.kill()
        _remove_pods(kept)
