"""Acceptance: `orchestra dashboard` in a real terminal (tmux), driven by keys, checked on screen and via the
API.

A real server runs in a subprocess (in-memory store, no Podman, no controllers: a scaled Deployment
creates no pods, so the test checks spec.replicas). The dashboard runs in a 160x48 tmux pane; the test
types keys with `send-keys` and waits (bounded polls of `capture-pane -p`) for what must appear.
"""

from __future__ import annotations

import shlex
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is needed to drive a real terminal"),
]

SERVER = """
import sys, attrs, trio
from pathlib import Path
from orchestra.app import ClusterConfig, run_cluster
kw = {"state_dir": Path(sys.argv[1]), "listen_port": 0, "store": "memory", "podman": False}
if "controllers" in attrs.fields_dict(ClusterConfig):
    kw["controllers"] = False  # nothing may act on what the test creates
trio.run(run_cluster, ClusterConfig(**kw))
"""
NS = "demo"
SCREEN_TIMEOUT = 15.0  # wall-clock seconds: another process draws the screen


class Server:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.log = state.parent / "server.log"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(state)], stdout=subprocess.DEVNULL, stderr=err
            )
        self.kubeconfig = state / "kubeconfig"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()}")
            if self.kubeconfig.exists():
                cfg = orjson.loads(self.kubeconfig.read_bytes())
                self.url = cfg["clusters"][0]["cluster"]["server"]
                self.api = httpx.Client(
                    base_url=self.url,
                    headers={"Authorization": f"Bearer {cfg['users'][0]['user']['token']}"},
                    verify=ssl.create_default_context(cafile=str(state / "pki" / "ca.crt")),
                )
                try:
                    if self.api.get("/readyz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass  # not listening yet
                self.api.close()
            time.sleep(0.05)
        self.proc.kill()
        raise AssertionError("server did not become ready")

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)) -> Any:
        r = self.api.request(method, path, json=body)
        assert r.status_code in ok, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    def stop(self) -> None:
        self.api.close()
        self.proc.kill()
        self.proc.wait(10)


def seed(s: Server) -> None:
    s.call("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
    node = s.call(
        "POST",
        "/api/v1/nodes",
        {"metadata": {"name": "node-1", "labels": {"node-role.kubernetes.io/control-plane": ""}}},
    )
    node["status"] = {
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
    }
    s.call("PUT", "/api/v1/nodes/node-1/status", node)
    s.call(
        "POST",
        f"/apis/apps/v1/namespaces/{NS}/deployments",
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "busybox"}]},
                },
            },
        },
    )
    s.call("POST", f"/api/v1/namespaces/{NS}/services", {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    for name, cpu in (("web-a", "500m"), ("web-b", "64")):
        s.call(
            "POST",
            f"/api/v1/namespaces/{NS}/pods",
            {
                "metadata": {"name": name, "labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "busybox",
                            "resources": {"requests": {"cpu": cpu, "memory": "128Mi"}},
                        }
                    ]
                },
            },
        )
    s.call("POST", f"/api/v1/namespaces/{NS}/pods/web-a/binding", {"apiVersion": "v1", "kind": "Binding",
           "metadata": {"name": "web-a"}, "target": {"kind": "Node", "name": "node-1"}})
    pod = s.call("GET", f"/api/v1/namespaces/{NS}/pods/web-a")
    pod["status"] = {
        "phase": "Running",
        "podIP": "10.88.0.7",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {
                "name": "app",
                "ready": True,
                "restartCount": 0,
                "image": "busybox",
                "imageID": "",
                "started": True,
                "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}},
            }
        ],
    }
    s.call("PUT", f"/api/v1/namespaces/{NS}/pods/web-a/status", pod)
    s.call(
        "POST",
        f"/api/v1/namespaces/{NS}/events",
        {
            "metadata": {"name": "web-b.1"},
            "involvedObject": {"kind": "Pod", "namespace": NS, "name": "web-b"},
            "reason": "FailedScheduling",
            "type": "Warning",
            "count": 3,
            "source": {"component": "default-scheduler"},
            "message": "0/1 nodes are available: 1 Insufficient cpu.",
        },
    )


class Terminal:
    """One tmux session running a command; keys in, screen text out."""

    def __init__(self, command: str, *, width: int = 160, height: int = 48) -> None:
        self.name = f"orchestra-dash-{uuid.uuid4().hex[:8]}"
        script = f"{command}; echo DASHBOARD-EXITED $?; sleep 60"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                        "sh", "-c", script], check=True)

    def keys(self, *keys: str, literal: bool = False) -> None:
        subprocess.run(
            ["tmux", "send-keys", "-t", self.name, *(["-l"] if literal else []), *keys], check=True
        )

    def type(self, text: str) -> None:
        self.keys(text, literal=True)

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], check=True, capture_output=True, text=True
        ).stdout

    def wait(
        self, *texts: str, gone: tuple[str, ...] = (), check: Callable[[str], bool] | None = None
    ) -> str:
        """Wait until every `texts` is on screen (and none of `gone`); fail with the screen if not."""
        deadline = time.monotonic() + SCREEN_TIMEOUT
        screen = previous = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            # Two equal captures in a row: not a frame caught half drawn.
            if (screen == previous and all(t in screen for t in texts) and not any(g in screen for g in gone)
                    and (check is None or _holds(check, screen))):
                return screen
            previous = screen
            time.sleep(0.05)
        raise AssertionError(f"waited for {texts} (without {gone}); the screen shows:\n{screen}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False, capture_output=True)


def _holds(check: Callable[[str], bool], screen: str) -> bool:
    try:
        return check(screen)
    except (AssertionError, IndexError):  # the row is not there (yet)
        return False


def row(screen: str, needle: str) -> list[str]:
    lines = [line for line in screen.splitlines()[2:] if needle in line]  # below the two header lines
    assert lines, f"{needle!r} not on screen:\n{screen}"
    return lines[0].replace("▶", " ").split()


def dashboard_command(kubeconfig: Path) -> str:
    """`orchestra dashboard` when the main CLI registers it; its own module entry point otherwise."""
    from orchestra.cli.main import cli

    entry = (
        ["-m", "orchestra", "dashboard"] if "dashboard" in cli.commands else ["-m", "orchestra.cli.dashboard"]
    )
    return shlex.join([sys.executable, *entry, "--kubeconfig", str(kubeconfig)])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "state")
    try:
        yield s
    finally:
        s.stop()


def test_dashboard_in_a_real_terminal(server: Server, tmp_path: Path) -> None:
    seed(server)
    term = Terminal(
        f"cd {shlex.quote(str(tmp_path))} && {dashboard_command(server.kubeconfig)} 2>dashboard.err"
    )
    try:
        # Pods (the first view): live rows from the watch, header with the server and the counts.
        screen = term.wait("web-a", "web-b", "Running", "Pending", "RESTARTS")
        assert server.url in screen and "pods 2 (1 pending)" in screen and "namespace: all" in screen
        assert row(screen, "web-a")[:7] == [NS, "web-a", "1/1", "Running", "0", "node-1", "10.88.0.7"]
        assert row(screen, "web-b")[:6] == [NS, "web-b", "0/1", "Pending", "0", "<none>"]

        term.keys("1")  # Nodes: allocation bars from the bound pod's requests
        screen = term.wait("node-1", "CPU REQUESTS", "MEMORY REQUESTS")
        node = " ".join(row(screen, "node-1"))
        assert "Ready" in node and "control-plane" in node, node
        assert "12% 500m/4" in node and "2% 128Mi/8Gi" in node and "1/110" in node, node

        term.keys("3")  # Workloads
        assert row(term.wait("Deployment", "UP-TO-DATE"), "Deployment")[:4] == ["Deployment", NS, "web", "2"]
        term.keys("Tab")  # Services
        svc = row(term.wait("CLUSTER-IP", "80/TCP"), "80/TCP")
        assert svc[:3] == [NS, "web", "ClusterIP"]
        term.keys("5")  # Events
        assert "pod/web-b" in row(term.wait("FailedScheduling", "MESSAGE"), "FailedScheduling")

        # A pod's details: the scheduler's reason, describe's text, and the log (no node agent here).
        term.keys("2", "/")
        term.type("web-b")
        term.wait("filter: web-b█", gone=("web-a",))
        term.keys("Enter")
        term.wait("filter: web-b", gone=("█",))
        term.keys("Enter")
        screen = term.wait(
            f"── Pod {NS}/web-b",
            "is Pending: no node can run it",
            "Insufficient cpu",
            "Events:",
            "Last log lines",
            check=lambda s: "loading…" not in s,
        )
        assert "Name:" in screen and "FailedScheduling" in screen
        assert "needs a node agent" in screen or "BadRequest" in screen or "(empty)" in screen
        term.keys("Escape")
        term.wait("RESTARTS", gone=("── Pod",))

        # Scale the Deployment: a prompt for the number, then spec.replicas through the API.
        term.keys("Escape", "3")
        term.wait("UP-TO-DATE", "filter: -")
        term.keys("s")
        term.wait(f"Scale Deployment {NS}/web to:")
        term.type("5")
        term.keys("Enter")
        screen = term.wait(f"scaled Deployment {NS}/web to 5")
        term.wait(check=lambda s: row(s, "Deployment")[3] == "5")
        assert server.call("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/web")["spec"]["replicas"] == 5

        # Delete a pod: confirm with y, then it is gone (or terminating) in the API and on screen.
        term.keys("2", "/")
        term.type("web-a")
        term.keys("Enter")
        term.wait("filter: web-a", gone=("web-b",))
        term.keys("d")
        term.wait(f"Delete Pod {NS}/web-a? (y/n)")
        term.keys("y")
        screen = term.wait(
            check=lambda s: f"deleted Pod {NS}/web-a" in s or f"Pod {NS}/web-a is terminating" in s
        )
        r = server.api.get(f"/api/v1/namespaces/{NS}/pods/web-a")
        assert r.status_code == 404 or r.json()["metadata"].get("deletionTimestamp")
        if r.status_code == 404:
            term.wait("0 shown", "(nothing to show)")
        else:
            term.wait(check=lambda s: row(s, "web-a")[3] == "Terminating")

        term.keys("q")
        term.wait("DASHBOARD-EXITED 0")
        assert (tmp_path / "dashboard.err").read_text() == ""
    finally:
        term.close()
