"""Helpers of the `orchestra join` end-to-end tests: a real `orchestra up` server process and its
kubectl, join tokens, joined node processes with short state dirs, and the clean-up that removes their
pods and bridges whatever a test does."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import KUBECTL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(what: str, fn: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout  # wall-clock: real processes
    while time.monotonic() < deadline:
        found = fn()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server:
    def __init__(self, state: Path, port: int) -> None:
        self.state, self.url = state, f"https://127.0.0.1:{port}"

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        env = {**os.environ, "KUBECONFIG": str(self.state / "kubeconfig"), "HOME": str(self.state)}
        proc = subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env, timeout=60,
                              input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def token(self) -> str:
        made = subprocess.run([sys.executable, "-m", "orchestra", "token", "create", "--kubeconfig",
                               str(self.state / "kubeconfig")], capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    def node(self, name: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", "node", name, "-o", "json")))

    def ready(self, name: str) -> str:
        conditions = self.node(name).get("status", {}).get("conditions") or []
        return next((c["status"] for c in conditions if c["type"] == "Ready"), "")


@contextmanager
def orchestra_up(state: Path, *args: str) -> Iterator[Server]:
    """`orchestra up --state-dir STATE --listen 127.0.0.1:<free port> ARGS` until /readyz answers; stopped
    with SIGINT at the end. Its output is STATE/up.log."""
    port = free_port()
    with (state / "up.log").open("wb") as log:
        command = [sys.executable, "-m", "orchestra", "up", "--state-dir", str(state), "--listen",
                   f"127.0.0.1:{port}", *args]
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait("orchestra up", lambda: proc.poll() is None and (state / "kubeconfig").exists()
                 and subprocess.run([KUBECTL, "--kubeconfig", str(state / "kubeconfig"), "get", "--raw",
                                     "/readyz"], capture_output=True).returncode == 0)
            yield Server(state, port)
        finally:
            stop(proc)


def join(server_url: str, state: Path, token: str, *extra: str,
         prefix: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """`PREFIX orchestra join SERVER_URL --token T --state-dir STATE EXTRA`; its output is STATE.log."""
    with (state.parent / f"{state.name}.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen([*prefix, sys.executable, "-m", "orchestra", "join", server_url,
                                 "--token", token, "--state-dir", str(state), *extra],
                                stdout=log, stderr=subprocess.STDOUT)


class NodeDirs:
    """Short state dirs for joined nodes (podman's CLI refuses a runroot over 50 chars), and their
    joiners; whatever a test does, the finalizer stops the joiners, removes their pods (conmon keeps
    a pod's containers running after its Podman service is gone) and bridges, and the dirs. `prefix`
    runs that clean-up where the nodes ran (`ip netns exec NAME`)."""

    def __init__(self, prefix: Sequence[str] = ()) -> None:
        self.dirs: list[Path] = []
        self.joiners: list[subprocess.Popen[bytes]] = []
        self.prefix = list(prefix)

    def new(self, name: str) -> Path:
        short = Path(tempfile.mkdtemp(prefix="jn", dir="/tmp"))
        self.dirs.append(short)
        return short / name

    def clean(self) -> None:
        for joiner in self.joiners:
            stop(joiner)
        for short in self.dirs:
            for state in [p for p in short.iterdir() if (p / "podman").is_dir()] if short.exists() else []:
                remove_pods_and_bridge(state, self.prefix)
            shutil.rmtree(short, ignore_errors=True)


def node_env(state: Path) -> dict[str, str]:
    conf = state / "podman"
    return {**os.environ, "CONTAINERS_CONF": str(conf / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(conf / "storage.conf")}


def bridge(state: Path) -> str:
    return "orch" + hashlib.sha256(str((state / "podman").resolve()).encode()).hexdigest()[:8]


def bridge_exists(state: Path) -> bool:
    return subprocess.run(["ip", "link", "show", bridge(state)], capture_output=True).returncode == 0


def remove_pods_and_bridge(state: Path, prefix: Sequence[str] = ()) -> None:
    podman = [*prefix, "podman", "--root", str(state / "podman" / "storage"),
              "--runroot", str(state / "podman" / "run")]
    subprocess.run([*podman, "pod", "rm", "--force", "--all"], capture_output=True, timeout=120,
                   env=node_env(state))
    subprocess.run([*podman, "system", "reset", "--force"], capture_output=True, timeout=120,
                   env=node_env(state))
    subprocess.run([*prefix, "ip", "link", "delete", bridge(state)], capture_output=True, timeout=30)


def podman(state: Path, *args: str, prefix: Sequence[str] = ()) -> str:
    root = ["--root", str(state / "podman" / "storage"), "--runroot", str(state / "podman" / "run")]
    done = subprocess.run([*prefix, "podman", *root, *args], capture_output=True, text=True, timeout=60,
                          env=node_env(state))
    assert done.returncode == 0, done.stderr
    return done.stdout
