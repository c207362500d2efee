"""Joining a node, control-plane side, against `orchestra up --no-network` with kubectl 1.32: `orchestra
token create`, a joining node played in Python (bootstrap token -> CSR -> auto-approved, signed
certificate -> acts as system:node:<name>: its Node and Lease, refused another's Node and a Secret of a
pod not bound to it), refused tokens (unknown, expired, deleted), and `kubectl certificate approve`."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from orchestra.api.policy import bootstraptoken as bt
from tests.conftest import KUBECTL
from tests.csrs import csr, request_pem

pytestmark = pytest.mark.kubectl
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


class Cluster:
    def __init__(self, state: Path, url: str) -> None:
        self.state, self.url = state, url
        self.ca_pem = (state / "pki" / "ca.crt").read_bytes()

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.state / "kubeconfig"), "HOME": str(self.state)}
        proc = subprocess.run(
            [KUBECTL, *args], capture_output=True, text=True, env=env, timeout=60, input=input
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stdout}\n{proc.stderr}")
        return proc

    def orchestra(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestra", *args, "--kubeconfig", str(self.state / "kubeconfig")],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def client(self, *, token: str | None = None, cert: tuple[str, str] | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify = ssl.create_default_context(cafile=str(self.state / "pki" / "ca.crt"))
        if cert is not None:
            verify.load_cert_chain(*cert)
        return httpx.Client(base_url=self.url, headers=headers, verify=verify, timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("join-state")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
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
        env={**os.environ, "ORCHESTRA_NO_PODMAN": "1"},
    )
    try:
        deadline = time.monotonic() + 30  # wall-clock: a real process starts
        while True:
            assert proc.poll() is None, (state / "server.log").read_text()
            assert time.monotonic() < deadline, "orchestra up did not get ready"
            if (state / "kubeconfig").exists():
                c = Cluster(state, f"https://127.0.0.1:{port}")
                if c.kubectl("get", "--raw", "/readyz", check=False).returncode == 0:
                    break
            time.sleep(0.1)
        yield c
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        assert "Traceback" not in (state / "server.log").read_text(errors="replace")


def _wait(what: str, fn: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout  # wall-clock: a real server's controllers
    while time.monotonic() < deadline:
        found = fn()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _join_token(cluster: Cluster, *args: str) -> str:
    made = cluster.orchestra("token", "create", *args)
    assert made.returncode == 0, made.stderr
    digest, token = bt.parse_join_token(made.stdout.strip())
    der = x509.load_pem_x509_certificate(cluster.ca_pem).public_bytes(serialization.Encoding.DER)
    assert digest == hashlib.sha256(der).hexdigest()  # the join token pins the cluster CA
    return token


def _audit_reasons(cluster: Cluster) -> list[str]:
    lines = (cluster.state / "audit.log").read_text().splitlines()
    return [
        json.loads(line).get("annotations", {}).get("authentication.orchestra.io/failure-reason", "")
        for line in lines
    ]


def test_a_node_joins_with_a_bootstrap_token(cluster: Cluster, tmp_path: Path) -> None:
    token = _join_token(cluster, "--ttl", "1h", "--description", "worker-1")
    listed = cluster.orchestra("token", "list")
    assert token.split(".")[0] + ".<secret>" in listed.stdout and "worker-1" in listed.stdout
    with cluster.client(token=token) as boot:
        who = boot.post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        assert who.json()["status"]["userInfo"]["username"] == f"system:bootstrap:{token.split('.')[0]}"
        key = ec.generate_private_key(ec.SECP256R1())
        made = boot.post(
            CSRS,
            json=csr(
                "node-csr-worker-1", request_pem("system:node:worker-1", key=key), expirationSeconds=3600
            ),
        )
        assert made.status_code == 201, made.text
        assert made.json()["spec"]["username"] == f"system:bootstrap:{token.split('.')[0]}"

        def issued() -> Any:
            got = boot.get(f"{CSRS}/node-csr-worker-1").json()
            return got if (got.get("status") or {}).get("certificate") else None

        signed = _wait("the CSR to be approved and signed", issued)
        assert [c["reason"] for c in signed["status"]["conditions"]] == ["AutoApproved"]
        # a bootstrap token may not do more than join
        assert boot.get("/api/v1/namespaces/kube-system/secrets").status_code == 403
    cert_path, key_path = tmp_path / "node.crt", tmp_path / "node.key"
    cert_path.write_bytes(base64.b64decode(signed["status"]["certificate"]))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(seconds=3600 + 300)
    get = cluster.kubectl("get", "csr", "node-csr-worker-1").stdout
    assert get.split("\n")[0].split() == [
        "NAME",
        "AGE",
        "SIGNERNAME",
        "REQUESTOR",
        "REQUESTEDDURATION",
        "CONDITION",
    ]
    assert "Approved,Issued" in get and "60m" in get
    cluster.kubectl("create", "namespace", "apps")
    cluster.kubectl("create", "secret", "generic", "theirs", "-n", "apps", "--from-literal=a=b")
    with cluster.client(cert=(str(cert_path), str(key_path))) as node:
        node_obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1"}}
        assert node.post("/api/v1/nodes", json=node_obj).status_code == 201
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "worker-1", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "worker-1", "leaseDurationSeconds": 40},
        }
        made = node.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", json=lease)
        assert made.status_code == 201, made.text
        other = node.post("/api/v1/nodes", json={**node_obj, "metadata": {"name": "worker-2"}})
        assert other.status_code == 403
        assert other.json()["message"] == (
            'nodes "worker-2" is forbidden: node "worker-1" is not allowed to modify node "worker-2"'
        )
        secret = node.get("/api/v1/namespaces/apps/secrets/theirs")
        assert secret.status_code == 403
        assert secret.json()["message"] == (
            'secrets "theirs" is forbidden: User "system:node:worker-1" cannot get resource "secrets" in API '
            'group "" in the namespace "apps": no relationship found between node \'worker-1\' '
            "and this object"
        )
        taints = node.patch(
            "/api/v1/nodes/worker-1",
            json={"spec": {"taints": []}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert taints.status_code in (200, 403)  # unchanged taints pass; a change is refused below
        tainted = node.patch(
            "/api/v1/nodes/worker-1",
            json={"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert tainted.status_code == 403
        assert 'node "worker-1" is not allowed to modify taints' in tainted.json()["message"]
    # once a pod bound to the node uses the Secret, the node may read it
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "apps"},
        "spec": {
            "nodeName": "worker-1",
            "containers": [{"name": "c", "image": "busybox"}],
            "volumes": [{"name": "s", "secret": {"secretName": "theirs"}}],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    with cluster.client(cert=(str(cert_path), str(key_path))) as node:
        assert node.get("/api/v1/namespaces/apps/secrets/theirs").status_code == 200


def test_refused_tokens(cluster: Cluster) -> None:
    unknown = "zzzzzz.0123456789abcdef"
    with cluster.client(token=unknown) as c:
        assert c.get("/api/v1/nodes").status_code == 401
    expired = bt.token_secret(
        "expird", "0123456789abcdef", expires=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    )
    cluster.kubectl("create", "-f", "-", input=json.dumps(expired), check=False)  # the cleaner may race it
    with cluster.client(token="expird.0123456789abcdef") as c:
        assert c.get("/api/v1/nodes").status_code == 401
    token = _join_token(cluster)
    with cluster.client(token=token) as c:
        assert c.get(CSRS).status_code == 200
        deleted = cluster.orchestra("token", "delete", token.split(".")[0])
        assert deleted.returncode == 0, deleted.stderr
        assert c.get(CSRS).status_code == 401
    reasons = _wait(
        "the audit records",
        lambda: (
            [r for r in _audit_reasons(cluster) if r]
            if len([r for r in _audit_reasons(cluster) if r]) >= 3
            else None
        ),
    )
    assert any("bootstrap token zzzzzz is unknown" in r for r in reasons)
    assert any("bootstrap token expird" in r for r in reasons)  # expired, or already cleaned away
    assert any(f"bootstrap token {token.split('.')[0]} is unknown" in r for r in reasons)
    _wait(
        "the token cleaner",
        lambda: (
            cluster.kubectl(
                "get", "secret", "-n", "kube-system", "bootstrap-token-expird", check=False
            ).returncode
            != 0
        ),
    )


def test_kubectl_certificate_approve_and_deny(cluster: Cluster) -> None:
    body = csr(
        "jane",
        request_pem("jane", ("devs",)),
        signer="kubernetes.io/kube-apiserver-client",
        usages=["client auth"],
    )
    cluster.kubectl("create", "-f", "-", input=json.dumps(body))
    assert "Pending" in cluster.kubectl("get", "csr", "jane").stdout
    approved = cluster.kubectl("certificate", "approve", "jane")
    assert approved.stdout.strip() == "certificatesigningrequest.certificates.k8s.io/jane approved"
    _wait("jane's certificate", lambda: "Approved,Issued" in cluster.kubectl("get", "csr", "jane").stdout)
    other = {**body, "metadata": {"name": "bob"}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(other))
    denied = cluster.kubectl("certificate", "deny", "bob")
    assert denied.stdout.strip() == "certificatesigningrequest.certificates.k8s.io/bob denied"
    assert "Denied" in cluster.kubectl("get", "csr", "bob").stdout
    bad = {**body, "metadata": {"name": "short"}, "spec": {**body["spec"], "expirationSeconds": 60}}
    refused = cluster.kubectl("create", "-f", "-", input=json.dumps(bad), check=False)
    assert "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds" in (
        refused.stderr
    )
