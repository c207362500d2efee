"""End to end: a real `orchestra up` (in-memory store, no Podman) driven by the `orchestra` CLI.

The server runs as a subprocess (`python -m orchestra up`), exactly as a user starts it; the client
commands run in-process through click's CliRunner, except `get -w`, which needs a real process to
interrupt.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestra.cli.config import ClientConfig
from orchestra.cli.errors import CliError
from orchestra.cli.main import cli
from orchestra.cli.rest import RestClient

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("orchestra.app") is None, reason="orchestra.app not written yet"
    ),
]

APP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: e2e
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: e2e
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: IMAGE
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: e2e
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Namespace
metadata:
  name: e2e
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running `orchestra up`; yields its kubeconfig."""
    state = tmp_path_factory.mktemp("state")
    port = _free_port()
    log = (state / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestra",
            "up",
            "--memory",
            "--no-podman",
            "--no-network",
            "--simulate-nodes",
            "1",
            "--state-dir",
            str(state),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ORCHESTRA_NO_PODMAN": "1"},
    )
    try:
        _wait_ready(proc, port, state)
        yield state / "kubeconfig"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
        log.close()
        output = (state / "server.log").read_text(errors="replace")
        assert "Traceback" not in output, output
        assert rc in (0, 130), output


def _wait_ready(proc: subprocess.Popen[bytes], port: int, state: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"orchestra up exited with {proc.returncode}:\n{(state / 'server.log').read_text()}")
        kubeconfig = state / "kubeconfig"
        if kubeconfig.exists():  # written once the API server listens (http or https)
            with RestClient(ClientConfig.from_kubeconfig(kubeconfig), timeout=1) as client:
                try:
                    client.get_text("/readyz")
                    return
                except CliError:
                    pass  # not ready yet
        time.sleep(0.05)
    pytest.fail(f"orchestra up not ready after 20s:\n{(state / 'server.log').read_text()}")


def run(kubeconfig: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, [*args, "--kubeconfig", str(kubeconfig)], input=input)


@pytest.fixture(scope="module")
def app(server: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("manifests") / "app.yaml"
    path.write_text(APP.replace("IMAGE", "busybox:1"))
    result = run(server, "apply", "-f", str(path))
    assert result.exit_code == 0, result.output
    # Namespaces first, then the rest in file order.
    assert result.stdout.splitlines() == [
        "namespace/e2e created",
        "configmap/cfg created",
        "deployment.apps/web created",
        "service/web created",
    ]
    return path


def test_reapply_is_unchanged_and_a_change_is_configured(server: Path, app: Path, tmp_path: Path) -> None:
    again = run(server, "apply", "-f", str(app))
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        "namespace/e2e unchanged",
        "configmap/cfg unchanged",
        "deployment.apps/web unchanged",
        "service/web unchanged",
    ]
    changed = tmp_path / "app.yaml"
    changed.write_text(APP.replace("IMAGE", "busybox:2"))
    result = run(server, "apply", "-f", str(changed))
    assert result.exit_code == 0, result.output
    assert "deployment.apps/web configured" in result.stdout.splitlines()
    image = run(server, "get", "deploy", "web", "-n", "e2e", "-o", "json")
    assert '"image": "busybox:2"' in image.stdout


def test_server_side_errors_abort_before_anything_is_applied(server: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\ndata: {a: b}\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: broken}\n"
        "spec:\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: x}}\n"
        "    spec:\n      containers:\n      - name: c\n        imagee: busybox\n"
    )
    result = run(server, "apply", "-f", str(bad))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {bad}: document 2 (line 6): "), result.stderr
    assert "imagee" in result.stderr or "image" in result.stderr
    gone = run(server, "get", "configmap", "first")
    assert gone.exit_code == 1
    assert gone.stderr == 'Error from server (NotFound): configmaps "first" not found\n'


def test_get_tables(server: Path, app: Path) -> None:
    deploy = run(server, "get", "deploy", "-n", "e2e")
    assert deploy.exit_code == 0, deploy.output
    assert deploy.stdout.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert deploy.stdout.split("\n")[1].startswith("web   ")

    wide = run(server, "get", "deploy", "-n", "e2e", "-o", "wide")
    assert wide.stdout.split("\n")[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]

    both = run(server, "get", "deploy,svc", "-n", "e2e")
    names = [line.split()[0] for line in both.stdout.splitlines() if line and not line.startswith("NAME")]
    assert names == ["deployment.apps/web", "service/web"]

    everywhere = run(server, "get", "cm", "-A")
    assert everywhere.stdout.split("\n")[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == ["e2e", "cfg"] for line in everywhere.stdout.splitlines())


def test_get_empty_namespace(server: Path) -> None:
    result = run(server, "get", "pods", "-n", "nothing-here")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "No resources found in nothing-here namespace.\n"


def test_get_plain_objects(server: Path, app: Path) -> None:
    one = run(server, "get", "cm/cfg", "-n", "e2e", "-o", "yaml")
    assert one.exit_code == 0, one.output
    assert "kind: ConfigMap\n" in one.stdout
    assert "  greeting: hello\n" in one.stdout

    listed = run(server, "get", "cm", "-n", "e2e", "-o", "json")
    assert '"kind": "List"' in listed.stdout
    assert '"kind": "ConfigMap"' in listed.stdout

    names = run(server, "get", "deploy,svc", "-n", "e2e", "-o", "name")
    assert names.stdout.splitlines() == ["deployment.apps/web", "service/web"]


def test_describe(server: Path, app: Path) -> None:
    deploy = run(server, "describe", "deploy", "web", "-n", "e2e")
    assert deploy.exit_code == 0, deploy.output
    lines = deploy.stdout.splitlines()
    assert lines[0].split() == ["Name:", "web"]
    assert lines[1].split() == ["Namespace:", "e2e"]
    assert any(line.startswith("Replicas:") and "2 desired" in line for line in lines)
    assert any(line.startswith("Events:") for line in lines)

    svc = run(server, "describe", "svc/web", "-n", "e2e")
    assert svc.exit_code == 0, svc.output
    assert any(line.split()[:2] == ["Type:", "ClusterIP"] for line in svc.stdout.splitlines())

    ns = run(server, "describe", "ns", "e2e")
    assert ns.exit_code == 0, ns.output
    assert ns.stdout.splitlines()[0].split() == ["Name:", "e2e"]

    cm = run(server, "describe", "cm", "cfg", "-n", "e2e")
    assert cm.exit_code == 0, cm.output
    assert "greeting: hello" in cm.stdout

    missing = run(server, "describe", "pod", "nope")
    assert missing.exit_code == 1
    assert missing.stderr == 'Error from server (NotFound): pods "nope" not found\n'


def test_delete_by_name_and_by_file(server: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "cms.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n---\n"
                        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\n")
    assert run(server, "apply", "-f", str(manifest)).exit_code == 0
    one = run(server, "delete", "configmap", "one")
    assert one.exit_code == 0, one.output
    assert one.stdout == 'configmap "one" deleted\n'
    rest = run(server, "delete", "-f", str(manifest))
    assert rest.exit_code == 1
    assert rest.stdout == 'configmap "two" deleted\n'
    assert rest.stderr == 'Error from server (NotFound): configmaps "one" not found\n'
    assert run(server, "delete", "-f", str(manifest), "--ignore-not-found").exit_code == 0


def test_get_watch_follows_changes(server: Path, tmp_path: Path) -> None:
    assert (
        run(
            server, "apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: w1}\n"
        ).exit_code
        == 0
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestra", "get", "configmaps", "-w", "--kubeconfig", str(server)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        assert lines.get(timeout=10).split() == ["NAME", "DATA", "AGE"]
        assert lines.get(timeout=10).split()[0] == "kube-root-ca.crt"  # every namespace has the cluster CA
        assert lines.get(timeout=10).split()[0] == "w1"
        created = run(
            server, "apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: w2}\n"
        )
        assert created.exit_code == 0
        assert lines.get(timeout=10).split()[0] == "w2"
        # Later events may carry no column definitions; the row must still print in full.
        assert run(server, "delete", "cm", "w2").exit_code == 0
        assert lines.get(timeout=10).split()[:2] == ["w2", "0"]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err
    run(server, "delete", "cm", "w1")


def test_version_reports_the_server(server: Path) -> None:
    result = run(server, "version")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].startswith("Server Version: v1.32")


CUSTOM = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.cli.example.com
spec:
  group: cli.example.com
  scope: Namespaced
  names: {plural: gizmos, kind: Gizmo, shortNames: [gz], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, default: 3}
---
apiVersion: cli.example.com/v1
kind: Gizmo
metadata:
  name: g1
  namespace: default
spec: {}
"""


def test_custom_resources(server: Path, tmp_path: Path) -> None:
    """The CLI reads the server's discovery for kinds it does not know; apply takes a CRD and its
    objects in one run (the CRD first, established, then the objects)."""
    path = tmp_path / "gizmos.yaml"
    path.write_text(CUSTOM)
    applied = run(server, "apply", "-f", str(path))
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.splitlines() == [
        "customresourcedefinition.apiextensions.k8s.io/gizmos.cli.example.com created",
        "gizmo.cli.example.com/g1 created",
    ]
    table = run(server, "get", "gizmos")
    assert table.exit_code == 0, table.output
    assert [line.split() for line in table.stdout.splitlines()] == [["NAME", "SIZE"], ["g1", "3"]]
    assert "gizmo.cli.example.com/g1" in run(server, "get", "all").stdout
    described = run(server, "describe", "gz", "g1")
    assert (
        described.exit_code == 0
        and "Kind:         Gizmo" in described.stdout
        and "size: 3" in described.stdout
    )
    deleted = run(server, "delete", "gizmo", "g1")
    assert deleted.exit_code == 0 and 'gizmo.cli.example.com "g1" deleted' in deleted.stdout
    cleaned = run(server, "delete", "-f", str(path), "--ignore-not-found")
    assert cleaned.exit_code == 0, cleaned.output
    assert 'customresourcedefinition.apiextensions.k8s.io "gizmos.cli.example.com" deleted' in cleaned.stdout
