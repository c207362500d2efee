"""kubectl attach and kubectl run -i / -it --rm against a real orchestra cluster with Podman pods.

The cluster (one per module, from test_kubectl_pods: podman=True, network=False, its own
`podman system service`) runs in a background thread; kubectl 1.32 attaches over WebSocket and
1.29 over a raw SPDY/3.1 upgrade. The fixture teardown removes whatever Podman objects the
cluster's agent left behind.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import threading
import time

import pytest

from tests.e2e.test_kubectl_pods import (  # noqa: F401  (the module-scoped cluster fixture)
    IMAGE,
    PodmanCluster,
    cluster,
    delete_quietly,
    pod,
    running,
    shell,
)

pytestmark = [pytest.mark.podman, pytest.mark.kubectl, pytest.mark.slow]

KUBECTL_DIR = "/usr/lib/google-cloud-sdk/bin"
TICKER = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"


def kubectl(cluster: PodmanCluster, version: str, *args: str, input: str | None = None,  # noqa: F811
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([f"{KUBECTL_DIR}/kubectl.{version}", *args], input=input, capture_output=True,
                          text=True, env=cluster.env(), timeout=timeout)


def wait_gone(cluster: PodmanCluster, name: str, limit: float = 60) -> None:  # noqa: F811
    """The pod is gone from the API and its Podman pod from the machine."""
    cluster.wait_pod(name, lambda p: p is None, limit)
    deadline = time.monotonic() + limit  # wall-clock: a real Podman pod is being removed
    while any(f"_{name}_" in p["Name"] for p in cluster.pod_ps()):
        assert time.monotonic() < deadline, f"the Podman pod of {name} is still there"  # wall-clock: as above
        time.sleep(0.2)  # wall-clock: polling podman, nothing to wait on


@pytest.mark.parametrize("version", ["1.32", "1.29"])
def test_kubectl_run_i_rm(cluster: PodmanCluster, version: str) -> None:  # noqa: F811
    name = f"reader-{version.replace('.', '')}"
    try:
        out = kubectl(cluster, version, "run", "-i", "--rm", "--restart=Never", name, f"--image={IMAGE}",
                      "--", "sh", "-c", "read x; echo got $x", input="hello\n")
        assert out.returncode == 0, out.stderr
        assert "got hello" in out.stdout.splitlines(), out.stdout
        assert f'pod "{name}" deleted' in out.stdout
        wait_gone(cluster, name)
    finally:
        delete_quietly(cluster, name)


def test_kubectl_attach_to_a_printing_pod(cluster: PodmanCluster) -> None:  # noqa: F811
    cluster.apply(pod("ticker", [shell("main", TICKER)], terminationGracePeriodSeconds=0))
    try:
        cluster.wait_pod("ticker", running, limit=60)
        for version in ("1.32", "1.29"):
            lines = _attached_lines(cluster, version, "ticker", "main", count=3)
            numbers = [int(line.removeprefix("tick ")) for line in lines]
            assert numbers == list(range(numbers[0], numbers[0] + 3)), lines
        p = cluster.pod("ticker")  # detaching left the container running
        assert running(p) and int(p["status"]["containerStatuses"][0]["restartCount"]) == 0  # type: ignore[index]
    finally:
        delete_quietly(cluster, "ticker")


def _attached_lines(cluster: PodmanCluster, version: str, name: str, container: str, count: int) -> list[str]:  # noqa: F811
    with subprocess.Popen(
        [f"{KUBECTL_DIR}/kubectl.{version}", "attach", name, "-c", container],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cluster.env(),
    ) as proc:
        watchdog = threading.Timer(60, proc.kill)  # a hung attach fails the test instead of hanging it
        watchdog.start()
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline().rstrip("\n") for _ in range(count)]
            assert all(lines), (
                f"kubectl attach ended early: {lines} {proc.stderr.read() if proc.stderr else ''}"
            )
            return lines
        finally:
            watchdog.cancel()
            proc.terminate()
            proc.wait(10)


def test_kubectl_run_it_rm_under_a_pty(cluster: PodmanCluster) -> None:  # noqa: F811
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            f"{KUBECTL_DIR}/kubectl.1.32",
            "run",
            "-it",
            "--rm",
            "--restart=Never",
            "tty-shell",
            f"--image={IMAGE}",
            "--",
            "sh",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=cluster.env(),
        start_new_session=True,
    )
    os.close(slave)
    output = bytearray()

    def read_for(marker: bytes, limit: float) -> bool:
        deadline = time.monotonic() + limit  # wall-clock: a real kubectl on a real pty
        while marker not in output and (left := deadline - time.monotonic()) > 0:  # wall-clock: as above
            if select.select([master], [], [], left)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: kubectl exited and closed the pty
                    return marker in output
                if not chunk:
                    break
                output.extend(chunk)
        return marker in output

    try:
        assert read_for(b"If you don't see a command prompt, try pressing enter.", 90), bytes(output)
        # the shell printed its prompt before we attached; Enter makes it print another
        for _ in range(20):
            os.write(master, b"\r")
            if read_for(b"# ", 1):
                break
        assert b"# " in output, bytes(output)
        os.write(master, b"echo answer-$((6*7)); exit 3\r")
        assert read_for(b"answer-42\r\n", 20), bytes(output)
        assert proc.wait(60) == 3  # the pod failed with exit code 3, and kubectl says so
        wait_gone(cluster, "tty-shell")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        delete_quietly(cluster, "tty-shell")
