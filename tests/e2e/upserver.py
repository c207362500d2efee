"""A real `orchestra up` subprocess for the client suites (Helm, kr8s, lightkube, the log audit):
in-memory store (or the one asked for), simulated nodes (or the host's Podman node), no service
networking, on a free port."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import httpx


def remove_pods(pods: list[str], *, podman: tuple[str, ...] = ("podman",),
                env: dict[str, str] | None = None) -> None:
    """`podman pod rm -f -t 0`, one process per pod, all at once: a pod whose stop was still under way
    when its cluster was stopped (a rolling update's old pods) holds its lock until that stop's
    timeout, ~17 s; one after another, six such pods took 100 s of a test's teardown."""
    procs = [subprocess.Popen([*podman, "pod", "rm", "-f", "-t", "0", pod], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env) for pod in pods]
    for proc in procs:
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def remove_cluster_containers(state: Path, cluster_id: str) -> None:
    """Every Podman pod and container labelled with the cluster's id (`orchestra.io/cluster`), through
    the Podman configuration of its state directory; nothing when the tests cleaned up already."""
    if not cluster_id:
        return
    env = {**os.environ, "CONTAINERS_CONF": str(state / "podman" / "containers.conf")}
    label = f"label=orchestra.io/cluster={cluster_id}"

    def listed(*what: str) -> list[str]:
        return subprocess.run(["podman", *what, "-q", "--filter", label], capture_output=True, text=True,
                              env=env, timeout=60, check=False).stdout.split()

    remove_pods(listed("pod", "ps"), env=env)
    ctrs = listed("ps", "-a")
    if ctrs:
        subprocess.run(["podman", "rm", "-f", "-t", "0", *ctrs], capture_output=True, env=env, timeout=120,
                       check=False)


@attrs.frozen
class UpServer:
    state: Path
    url: str
    proc: subprocess.Popen[bytes]

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def log(self) -> Path:
        return self.state.parent / f"{self.state.name}.log"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def http(self) -> httpx.Client:
        token = (self.state / "token").read_text().strip()
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10,
                            verify=ssl.create_default_context(cafile=str(self.state / "pki" / "ca.crt")))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def orchestra_up(state: Path, *extra: str, nodes: int = 1, podman: bool = False,
                 store: tuple[str, ...] = ("--memory",)) -> Iterator[UpServer]:
    """Start `orchestra up` (with `nodes` simulated nodes, or the Podman node when `podman`; on the
    memory store unless `store` says otherwise, e.g. ("--store", "etcd")), wait for /readyz, yield it;
    stop it with SIGINT (as Ctrl-C does)."""
    port = _free_port()
    log = (state.parent / f"{state.name}.log").open("wb")
    nodes_args = [] if podman else ["--no-podman", "--simulate-nodes", str(nodes)]
    env = dict(os.environ) if podman else {**os.environ, "ORCHESTRA_NO_PODMAN": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestra", "up", *store, "--no-network", "--no-dashboard", *nodes_args,
         "--state-dir", str(state), "--listen", f"127.0.0.1:{port}", *extra],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    server = UpServer(state, f"https://127.0.0.1:{port}", proc)
    try:
        _wait_ready(server)
        yield server
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_ready(server: UpServer, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"orchestra up exited with {server.proc.returncode}:\n{server.log_text()}")
        if (server.state / "token").exists() and (server.state / "pki" / "ca.crt").exists():
            try:
                with server.http() as client:
                    if client.get("/readyz").status_code == 200:
                        return
            except (httpx.HTTPError, OSError, ssl.SSLError):
                pass  # not listening yet
        time.sleep(0.05)
    raise AssertionError(f"orchestra up not ready after {timeout}s:\n{server.log_text()}")


def processes_naming(state: Path) -> list[str]:
    """Every process whose command line names the state directory (orchestra, reaper, Podman service,
    etcd): what a stopped cluster must not leave behind."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # exited meanwhile
                continue
            if str(state) in argv:
                found.append(f"{entry.name}: {argv}")
    return found
