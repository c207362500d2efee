"""Pod streams of a pod on another node, through that node's kubelet API, with kubectl 1.32.

`orchestra up --no-network --no-podman` runs the control plane in a subprocess (state dir A). The test
process plays a joined node "worker-1": a bootstrap token, a kubelet client CSR auto-approved through the
API, the node agent over HTTPS as system:node:worker-1 on real Podman (its own `podman system service`
under the test's tmp dir; Podman's storage is the host's, the pods are told apart by a cluster id
label), and its kubelet API on 127.0.0.1 with a serving certificate from a kubelet-serving CSR that the
test approves with `kubectl certificate approve`. Then kubectl logs, logs -f, exec -i, attach,
port-forward and cp against a pod bound to worker-1 go API server -> kubelet API -> Podman.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from orchestra.api.policy import bootstraptoken as bt
from orchestra.app.kubelet import kubelet_api
from orchestra.client.http import Endpoint, HttpClient, load_pem_chain
from orchestra.node.agent import AgentConfig, NodeAgent
from orchestra.node.kubeletapi.server import KubeletApiConfig
from orchestra.node.registration import probe_host
from orchestra.runtime.images import ensure_busybox_image
from orchestra.runtime.podman import PodmanRuntime
from orchestra.runtime.service import PodmanService
from tests.conftest import KUBECTL
from tests.csrs import csr, request_pem

pytestmark = [pytest.mark.kubectl, pytest.mark.podman, pytest.mark.slow]
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@attrs.frozen
class Server:
    state: Path
    url: str

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.state / "kubeconfig"), "HOME": str(self.state)}

    async def kubectl(
        self, *args: str, stdin: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        done = await trio.run_process(
            [KUBECTL, *args],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            env=self.env(),
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stdout!r} {done.stderr!r}")
        return done


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    if os.environ.get("ORCHESTRA_NO_PODMAN") == "1":
        pytest.skip("ORCHESTRA_NO_PODMAN=1")
    state = tmp_path / "A"
    state.mkdir()
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
            "--state-dir",
            str(state),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30  # wall-clock: a real process starts
        while True:
            assert proc.poll() is None, (state / "server.log").read_text()
            assert time.monotonic() < deadline, "orchestra up did not get ready"
            if (state / "kubeconfig").exists():
                ready = subprocess.run(
                    [KUBECTL, "get", "--raw", "/readyz"],
                    capture_output=True,
                    env={**os.environ, "KUBECONFIG": str(state / "kubeconfig")},
                )
                if ready.returncode == 0:
                    break
            time.sleep(0.1)
        yield Server(state, f"https://127.0.0.1:{port}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        assert "Traceback" not in (state / "server.log").read_text(errors="replace")


async def _node_credentials(server: Server, ca: bytes) -> tuple[bytes, bytes]:
    """Join as kubeadm does: a bootstrap token, a kubelet client CSR, its auto-approved certificate."""
    made = await trio.run_process(
        [
            sys.executable,
            "-m",
            "orchestra",
            "token",
            "create",
            "--kubeconfig",
            str(server.state / "kubeconfig"),
        ],
        capture_stdout=True,
        capture_stderr=True,
    )
    _, token = bt.parse_join_token(made.stdout.decode().strip())
    key = ec.generate_private_key(ec.SECP256R1())
    async with httpx.AsyncClient(
        base_url=server.url,
        verify=ssl.create_default_context(cadata=ca.decode()),
        headers={"Authorization": f"Bearer {token}"},
    ) as boot:
        got = await boot.post(
            CSRS, json=csr("node-csr-worker-1", request_pem("system:node:worker-1", key=key))
        )
        assert got.status_code == 201, got.text
        cert = None
        while cert is None:  # the control plane's signer, in another process
            cert = ((await boot.get(f"{CSRS}/node-csr-worker-1")).json().get("status") or {}).get(
                "certificate"
            )
            await trio.sleep(0.1)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return base64.b64decode(cert), key_pem


async def _approve_serving_csr(server: Server) -> str:
    while True:
        listed = json.loads((await server.kubectl("get", "csr", "-o", "json")).stdout)
        pending = [
            c["metadata"]["name"]
            for c in listed["items"]
            if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving" and not c.get("status")
        ]
        if pending:
            await server.kubectl("certificate", "approve", pending[0])
            return str(pending[0])
        await trio.sleep(0.2)


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "far", "namespace": "default"},
    "spec": {
        "nodeName": "worker-1",
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {
                "name": "main",
                "image": "localhost/busybox:latest",
                "command": [
                    "sh",
                    "-c",
                    "httpd -p 8080 -h /www; i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done",
                ],
            }
        ],
    },
}


async def _read_until(server: Server, args: list[str], needle: bytes) -> bytes:
    """Run kubectl until its stdout shows `needle`, then stop it; what it printed."""
    out = b""
    proc = await trio.lowlevel.open_process(
        [KUBECTL, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=server.env()
    )
    try:
        assert proc.stdout is not None
        while needle not in out:
            chunk = await proc.stdout.receive_some(4096)
            assert chunk, f"kubectl {args} ended before {needle!r}: {out!r}"
            out += chunk
    finally:
        proc.terminate()
        await proc.wait()
        if proc.stdout is not None:
            await proc.stdout.aclose()
    return out


async def _port_forward_get(server: Server) -> bytes:
    proc = await trio.lowlevel.open_process(
        [KUBECTL, "port-forward", "far", ":8080"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=server.env(),
    )
    try:
        assert proc.stdout is not None
        line = b""
        while b"->" not in line:
            chunk = await proc.stdout.receive_some(4096)
            assert chunk, f"kubectl port-forward ended: {line!r}"
            line += chunk
        local = int(line.split(b"127.0.0.1:")[1].split(b" ")[0])
        stream = await trio.open_tcp_stream("127.0.0.1", local)
        async with stream:
            await stream.send_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
            answer = b""
            while chunk := await stream.receive_some(4096):  # HTTP/1.0: the answer ends when the pod hangs up
                answer += chunk
    finally:
        proc.terminate()
        await proc.wait()
        if proc.stdout is not None:
            await proc.stdout.aclose()
    return answer


async def test_streams_of_a_pod_on_another_node(server: Server, tmp_path: Path) -> None:
    ca = (server.state / "pki" / "ca.crt").read_bytes()
    node_dir, kubelet_port = tmp_path / "B", _free_port()
    cluster_id = f"kubeletapi-{uuid.uuid4().hex[:8]}"
    with trio.fail_after(60):
        cert, key = await _node_credentials(server, ca)
    client = HttpClient(
        Endpoint(server=server.url, ca_data=ca, cert_data=cert, key_data=key), field_manager="kubelet"
    )
    async with trio.open_nursery() as nursery:
        with trio.fail_after(120):
            socket_path = await nursery.start(PodmanService(node_dir / "podman").run)
            await ensure_busybox_image(node_dir / "podman")
        runtime = PodmanRuntime(socket_path)
        host = attrs.evolve(
            probe_host(node_dir / "node", "podman://4", hostname="worker-1"), internal_ip="127.0.0.1"
        )
        agent = NodeAgent(
            client,
            runtime,
            AgentConfig(
                node_name="worker-1",
                state_dir=node_dir / "node",
                host=host,
                cluster_id=cluster_id,
                kubelet_port=kubelet_port,
            ),
        )
        api = kubelet_api(
            client,
            agent,
            runtime,
            KubeletApiConfig(
                "worker-1",
                ["127.0.0.1"],
                node_dir / "pki",
                server.state / "pki" / "ca.crt",
                host="127.0.0.1",
                port=kubelet_port,
            ),
        )
        try:
            async with trio.open_nursery() as node:  # the agent and its kubelet API stop before the clean-up
                with trio.fail_after(60):
                    await node.start(agent.run)
                    node.start_soon(_approve_serving_csr, server)
                    await node.start(api.run)
                with trio.fail_after(240):
                    await _check_streams(server, tmp_path, ca, cert, key, kubelet_port)
                node.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(60):
                for sandbox in await runtime.list_sandboxes({"orchestra.io/cluster": cluster_id}):
                    await runtime.remove_sandbox(sandbox.id)
                await runtime.aclose()
                await client.aclose()
            nursery.cancel_scope.cancel()


async def _check_streams(
    server: Server, tmp_path: Path, ca: bytes, cert: bytes, key: bytes, port: int
) -> None:
    node = json.loads((await server.kubectl("get", "node", "worker-1", "-o", "json")).stdout)
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == port
    await server.kubectl("apply", "-f", "-", stdin=json.dumps(POD).encode())
    await server.kubectl("wait", "--for=condition=Ready", "pod/far", "--timeout=120s")
    while b"tick 1" not in (await server.kubectl("logs", "far", check=False)).stdout:  # noqa: ASYNC110
        await trio.sleep(0.2)  # (a real process writes them)
    assert (await server.kubectl("logs", "far", "--tail=1")).stdout.startswith(b"tick ")
    followed = await server.kubectl(
        "logs", "-f", "far", "--limit-bytes=40"
    )  # ends at the limit, not the pod's end
    assert followed.stdout.startswith(b"tick 0\ntick 1\n") and len(followed.stdout) == 40
    piped = await server.kubectl("exec", "-i", "far", "--", "cat", stdin=b"piped\nthrough\n")
    assert piped.stdout == b"piped\nthrough\n"
    failed = await server.kubectl("exec", "far", "--", "sh", "-c", "echo out; exit 3", check=False)
    assert (failed.returncode, failed.stdout) == (3, b"out\n")
    attached = await _read_until(server, ["attach", "far"], b"tick")
    assert b"tick" in attached
    answer = await _port_forward_get(server)
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"hello from orchestra busybox" in answer, answer
    local = tmp_path / "copied.txt"
    local.write_text("through the kubelet API\n")
    await server.kubectl("cp", str(local), "far:/tmp/copied.txt")
    assert (
        await server.kubectl("exec", "far", "--", "cat", "/tmp/copied.txt")
    ).stdout == b"through the kubelet API\n"
    back = tmp_path / "back.txt"
    await server.kubectl("cp", "far:/tmp/copied.txt", str(back))
    assert back.read_text() == "through the kubelet API\n"
    await _check_refusals(ca, cert, key, port)
    await _check_unreachable_node(server)


async def _check_unreachable_node(server: Server) -> None:
    """A node whose kubelet API does not answer: kube's "error dialing backend", a 500."""
    closed = _free_port()
    await server.kubectl("create", "-f", "-", stdin=json.dumps(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "ghost"}}).encode())
    status = {"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                         "daemonEndpoints": {"kubeletEndpoint": {"Port": closed}}}}
    await server.kubectl("patch", "node", "ghost", "--subresource=status", "--type=merge",
                         "-p", json.dumps(status))
    lost = {**POD, "metadata": {"name": "lost", "namespace": "default"},
            "spec": {**POD["spec"], "nodeName": "ghost"}}  # type: ignore[dict-item]
    await server.kubectl("apply", "-f", "-", stdin=json.dumps(lost).encode())
    running = {"status": {"phase": "Running", "containerStatuses": [{
        "name": "main", "ready": True, "restartCount": 0, "image": "localhost/busybox:latest", "imageID": "",
        "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}]}}
    await server.kubectl("patch", "pod", "lost", "--subresource=status", "--type=merge",
                         "-p", json.dumps(running))
    want = f"error dialing backend: dial tcp 127.0.0.1:{closed}: connect: connection refused".encode()
    for args in (["logs", "lost"], ["exec", "lost", "--", "true"]):
        refused = await server.kubectl(*args, check=False)
        assert refused.returncode == 1 and want in refused.stderr, refused.stderr
        assert b"InternalError" in refused.stderr or b"Error from server" in refused.stderr


async def _check_refusals(ca: bytes, cert: bytes, key: bytes, port: int) -> None:
    anonymous = ssl.create_default_context(cadata=ca.decode())
    async with httpx.AsyncClient(verify=anonymous) as c:
        got = await c.get(f"https://127.0.0.1:{port}/containerLogs/default/far/main")
        assert (got.status_code, got.text) == (401, "Unauthorized\n")
    as_node = ssl.create_default_context(cadata=ca.decode())
    load_pem_chain(as_node, cert, key)
    async with httpx.AsyncClient(verify=as_node) as c:
        got = await c.get(f"https://127.0.0.1:{port}/containerLogs/default/far/main")
        assert got.status_code == 403
        assert got.text == (
            "Forbidden (user=system:node:worker-1, verb=get, resource=nodes, subresource(s)=[proxy])\n"
        )
