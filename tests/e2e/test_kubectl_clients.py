"""What kubectl 1.27 to 1.33 do beyond the basics, against a real orchestra cluster with Podman pods:
debug (an ephemeral container in the target's process namespace), cp both ways, port-forward
with an HTTP request through it, `kubectl proxy` to a Service, `run --rm -i`, `apply --prune`,
and the kinds kubectl probes (rc, cs, apiservices, events.k8s.io, `kubectl events`).

The cluster is test_kubectl_pods's module cluster (podman=True, network=False, its own
`podman system service`); the backend is a ReplicationController of busybox httpd pods that answer
`hello-<pod name>`.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_kubectl_pods import (  # noqa: F401  (the module-scoped cluster fixture)
    IMAGE,
    PodmanCluster,
    cluster,
    delete_quietly,
    ready,
)

pytestmark = [pytest.mark.podman, pytest.mark.kubectl, pytest.mark.slow]

KUBECTL_DIR = "/usr/lib/google-cloud-sdk/bin"
VERSIONS = ["1.27", "1.29", "1.31", "1.32", "1.33"]
HTTPD = "mkdir -p /www && echo hello-$(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"
Obj = dict[str, Any]


def kubectl(
    cluster: PodmanCluster,  # noqa: F811
    version: str,
    *args: str,
    input: str | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [f"{KUBECTL_DIR}/kubectl.{version}", *args],
        input=input,
        capture_output=True,
        text=True,
        env=cluster.env(),
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kubectl {version} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def rc(name: str, replicas: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "web",
                            "image": IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", HTTPD],
                            "ports": [{"containerPort": 8080}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                        }
                    ],
                },
            },
        },
    }


@pytest.fixture(scope="module")
def backend(cluster: PodmanCluster) -> Iterator[list[str]]:  # noqa: F811
    """A ReplicationController of two ready httpd pods and a Service in front of them."""
    cluster.apply(rc("web-rc", 2))
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web-rc"},
            "spec": {
                "selector": {"app": "web-rc"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        }
    )
    deadline = time.monotonic() + 90  # wall-clock: real Podman pods starting
    while not (len(cluster.pods("app=web-rc")) == 2 and all(ready(p) for p in cluster.pods("app=web-rc"))):
        assert time.monotonic() < deadline, json.dumps(cluster.pods("app=web-rc"))[:2000]
        time.sleep(0.2)  # wall-clock: polling the API for real pods
    yield sorted(p["metadata"]["name"] for p in cluster.pods("app=web-rc"))
    cluster.kubectl("delete", "rc/web-rc", "svc/web-rc", "--wait=false", check=False)


def _first_line(proc: subprocess.Popen[str], pattern: str, limit: float = 60) -> re.Match[str]:
    """Read the process's stdout until a line matches (kubectl port-forward/proxy print their port)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + limit  # wall-clock: a real kubectl starting up
    seen = []
    while time.monotonic() < deadline:  # wall-clock: as above
        if select.select([proc.stdout], [], [], 1)[0]:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found
    raise AssertionError(f"no {pattern!r} in {seen} (exit {proc.poll()})")


# ----------------------------------------------------------------------------------------- debug


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_debug_shares_the_targets_processes(
    cluster: PodmanCluster,  # noqa: F811
    backend: list[str],
    version: str,
) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            f"{KUBECTL_DIR}/kubectl.{version}",
            "debug",
            "-it",
            backend[0],
            f"--image={IMAGE}",
            "--target=web",
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
        for _ in range(20):  # the shell printed its prompt before we attached; Enter prints another
            os.write(master, b"\r")
            if read_for(b"# ", 1):
                break
        os.write(master, b"ps; echo marker-$((6*7)); exit\r")
        assert read_for(b"marker-42\r\n", 30), bytes(output)
        assert proc.wait(60) == 0
        assert b"httpd -f -p 8080" in output  # the target's process, seen from the debug container
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    name = re.search(rb"Defaulting debug container name to (debugger-\w+)", output)
    assert name is not None, bytes(output)
    pod = cluster.pod(backend[0])
    [status] = [
        s
        for s in pod["status"]["ephemeralContainerStatuses"]  # type: ignore[index]
        if s["name"] == name.group(1).decode()
    ]
    spec = next(c for c in pod["spec"]["ephemeralContainers"] if c["name"] == status["name"])  # type: ignore[index]
    assert spec["targetContainerName"] == "web" and status["restartCount"] == 0


# -------------------------------------------------------------------------------------------- cp


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_cp_to_and_from_a_pod(
    cluster: PodmanCluster,  # noqa: F811
    backend: list[str],
    version: str,
    tmp_path: Path,
) -> None:
    sent = tmp_path / "sent.txt"
    sent.write_text(f"copied by kubectl {version}\n" + "x" * 100_000)
    remote = f"/tmp/cp-{version}.txt"
    kubectl(cluster, version, "cp", str(sent), f"{backend[0]}:{remote}", "-c", "web")
    shown = kubectl(cluster, version, "exec", backend[0], "-c", "web", "--", "head", "-n1", remote)
    assert shown.stdout == f"copied by kubectl {version}\n"
    back = tmp_path / "back.txt"
    kubectl(cluster, version, "cp", f"{backend[0]}:{remote}", str(back), "-c", "web")
    assert back.read_text() == sent.read_text()
    folder = tmp_path / "dir"
    kubectl(cluster, version, "cp", f"{backend[0]}:/www", str(folder), "-c", "web")
    assert (folder / "index.html").read_text() == f"hello-{backend[0]}\n"


# ---------------------------------------------------------------------------------- port-forward


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_port_forward_carries_http(
    cluster: PodmanCluster,  # noqa: F811
    backend: list[str],
    version: str,
) -> None:
    with subprocess.Popen(
        [f"{KUBECTL_DIR}/kubectl.{version}", "port-forward", f"pod/{backend[1]}", ":8080"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cluster.env(),
    ) as proc:
        _forward_requests(proc, backend[1])


def _forward_requests(proc: subprocess.Popen[str], pod: str) -> None:
    try:
        port = int(_first_line(proc, r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080").group(1))
        with httpx.Client(timeout=10) as http:
            for _ in range(3):  # one connection each: every one is a new port-forward stream
                assert (
                    http.get(f"http://127.0.0.1:{port}/", headers={"Connection": "close"}).text
                    == f"hello-{pod}\n"
                )
            big = http.get(f"http://127.0.0.1:{port}/missing")
            assert big.status_code == 404
    finally:
        proc.terminate()
        proc.wait(10)


# ----------------------------------------------------------------------------------------- proxy


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_proxy_reaches_a_service(cluster: PodmanCluster, backend: list[str], version: str) -> None:  # noqa: F811
    with subprocess.Popen(
        [f"{KUBECTL_DIR}/kubectl.{version}", "proxy", "--port=0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cluster.env(),
    ) as proc:
        _proxy_requests(proc, backend)


def _proxy_requests(proc: subprocess.Popen[str], backend: list[str]) -> None:
    try:
        port = int(_first_line(proc, r"Starting to serve on 127\.0\.0\.1:(\d+)").group(1))
        base = f"http://127.0.0.1:{port}/api/v1/namespaces/default"
        with httpx.Client(timeout=10) as http:
            answers = {http.get(f"{base}/services/web-rc:80/proxy/").text for _ in range(12)}
            assert answers <= {f"hello-{name}\n" for name in backend} and answers, answers
            assert http.get(f"{base}/services/http:web-rc:http/proxy/index.html").text.startswith("hello-")
            assert http.get(f"{base}/pods/{backend[0]}:8080/proxy/").text == f"hello-{backend[0]}\n"
            redirect = http.get(f"{base}/services/web-rc:80/proxy")
            assert redirect.status_code == 301
            assert redirect.headers["location"].endswith("/services/web-rc:80/proxy/")
            missing = http.get(f"{base}/services/web-rc:81/proxy/")
            assert missing.status_code == 503 and missing.json()["reason"] == "ServiceUnavailable"
    finally:
        proc.terminate()
        proc.wait(10)


# ----------------------------------------------------------------------------------- run --rm -i


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_run_rm_prints_and_deletes_the_pod(cluster: PodmanCluster, version: str) -> None:  # noqa: F811
    name = f"echo-{version.replace('.', '')}"
    try:
        out = kubectl(
            cluster,
            version,
            "run",
            name,
            "--rm",
            "-i",
            "--restart=Never",
            f"--image={IMAGE}",
            "--",
            "echo",
            "hi",
        )
        assert "hi" in out.stdout.splitlines(), (out.stdout, out.stderr)
        assert f'pod "{name}" deleted' in out.stdout
        deadline = time.monotonic() + 60  # wall-clock: the real pod is being removed
        while cluster.pod(name) is not None:
            assert time.monotonic() < deadline
            time.sleep(0.2)  # wall-clock: polling the API
    finally:
        delete_quietly(cluster, name)


# ---------------------------------------------------------------------------------- apply --prune


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_apply_prune(cluster: PodmanCluster, version: str, tmp_path: Path) -> None:  # noqa: F811
    label = f"prune-{version.replace('.', '')}"
    docs = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{label}-{n}", "labels": {"app": label}},
            "data": {"n": n},
        }
        for n in ("a", "b")
    ]
    docs.append({**rc(f"{label}-rc", 0), "metadata": {"name": f"{label}-rc", "labels": {"app": label}}})
    for doc in docs:
        (tmp_path / f"{doc['metadata']['name']}.json").write_text(json.dumps(doc))
    # kubectl 1.27 checks its input against /openapi/v2 (protobuf), which orchestra does not serve
    validate = ["--validate=false"] if version == "1.27" else []
    try:
        kubectl(cluster, version, "apply", *validate, "-f", str(tmp_path))
        for doc in docs[1:]:
            (tmp_path / f"{doc['metadata']['name']}.json").unlink()
        out = kubectl(
            cluster,
            version,
            "apply",
            *validate,
            "--prune",
            "-l",
            f"app={label}",
            "-f",
            str(tmp_path),
            check=False,
        )
        # kubectl's default prune list names every kind it prunes (ReplicationController, Ingress, ...):
        # one the server lacks fails the whole apply with `no matches for kind`
        assert out.returncode == 0, out.stderr
        assert (
            f"configmap/{label}-b pruned" in out.stdout
            and f"replicationcontroller/{label}-rc pruned" in out.stdout
        )
        left = kubectl(cluster, version, "get", "cm,rc", "-l", f"app={label}", "-o", "name").stdout.split()
        assert left == [f"configmap/{label}-a"]
    finally:
        kubectl(cluster, version, "delete", "cm,rc", "-l", f"app={label}", "--wait=false", check=False)


# --------------------------------------------------------------------------- the kinds kubectl probes


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_reads_the_probed_kinds(cluster: PodmanCluster, backend: list[str], version: str) -> None:  # noqa: F811
    table = kubectl(cluster, version, "get", "rc", "web-rc", "-o", "wide").stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert table[1].split()[:4] == ["web-rc", "2", "2", "2"] and table[1].split()[-1] == "app=web-rc"
    cs = kubectl(cluster, version, "get", "cs")
    assert "v1 ComponentStatus is deprecated in v1.19+" in cs.stderr
    rows = {line.split()[0]: line.split()[1] for line in cs.stdout.splitlines()[1:]}
    assert rows == {"scheduler": "Healthy", "controller-manager": "Healthy", "etcd-0": "Healthy"}
    services = kubectl(cluster, version, "get", "apiservices").stdout
    assert re.search(r"^v1\.apps\s+Local\s+True\s", services, re.M), services
    assert re.search(r"^v1beta1\.metrics\.k8s\.io\s+Local\s+True\s", services, re.M), services
    for served in (r"v1\.events\.k8s\.io", r"v1\.autoscaling", r"v2\.autoscaling"):  # over stored types
        assert re.search(rf"^{served}\s+Local\s+True\s", services, re.M), services
    events = kubectl(
        cluster, version, "get", "events.events.k8s.io", "--field-selector", f"regarding.name={backend[0]}"
    ).stdout
    assert "Started" in events and f"pod/{backend[0]}" in events
    scaled = kubectl(cluster, version, "events", "--for", "rc/web-rc").stdout
    assert "SuccessfulCreate" in scaled and "replicationcontroller/web-rc" in scaled.lower()
