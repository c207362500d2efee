"""The kubelet API's paths, its authentication and authorization, and its answers before any stream."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
import trio
from cryptography import x509

from orchestra.apiserver.tls import ensure_serving_cert, issue_client_cert
from orchestra.node.kubeletapi import authz, paths
from orchestra.node.kubeletapi.app import KubeletApp
from orchestra.node.kubeletapi.paths import Attributes, KubeletRequest
from orchestra.runtime.base import Runtime


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("/containerLogs/ns/web-0/main", KubeletRequest("log", "ns", "web-0", "main")),
        ("/exec/ns/web-0/main", KubeletRequest("exec", "ns", "web-0", "main")),
        ("/attach/ns/web-0/main", KubeletRequest("attach", "ns", "web-0", "main")),
        ("/portForward/ns/web-0", KubeletRequest("portforward", "ns", "web-0")),
        ("/pods", KubeletRequest("pods")),
        ("/healthz", KubeletRequest("healthz")),
        ("/containerLogs/ns/web-0", None),
        ("/exec/ns/web-0/main/extra", None),
        ("/exec/ns//main", None),
        ("/portForward/ns/web-0/main", None),
        ("/run/ns/web-0/main", None),
        ("/", None),
    ],
    ids=[
        "logs",
        "exec",
        "attach",
        "portforward",
        "pods",
        "healthz",
        "logs-no-container",
        "exec-too-long",
        "exec-empty-pod",
        "portforward-too-long",
        "run-not-served",
        "root",
    ],
)
def test_paths(path: str, want: KubeletRequest | None) -> None:
    assert paths.parse(path) == want


@pytest.mark.parametrize(
    ("method", "path", "verb", "sub"),
    [
        ("GET", "/containerLogs/ns/p/c", "get", "proxy"),
        ("POST", "/exec/ns/p/c", "create", "proxy"),
        ("GET", "/exec/ns/p/c", "get", "proxy"),
        ("GET", "/pods", "get", "proxy"),
        ("GET", "/healthz", "get", "proxy"),
        ("GET", "/stats/summary", "get", "stats"),
        ("GET", "/metrics", "get", "metrics"),
        ("GET", "/logs/syslog", "get", "log"),
        ("PUT", "/spec/", "update", "spec"),
    ],
    ids=["logs", "exec-spdy", "exec-websocket", "pods", "healthz", "stats", "metrics", "node-logs", "spec"],
)
def test_authorization_attributes(method: str, path: str, verb: str, sub: str) -> None:
    assert paths.attributes(method, path, "worker-1") == Attributes(verb, "nodes", sub, "worker-1")


def test_stream_query_translates_kubelets_exec_names() -> None:
    query = {"command": ["sh", "-c", "x"], "input": ["1"], "output": ["1"], "error": ["1"], "tty": ["0"]}
    got = paths.stream_query(query, KubeletRequest("exec", "ns", "p", "main"))
    assert got == {
        "command": ["sh", "-c", "x"],
        "stdin": ["1"],
        "stdout": ["1"],
        "stderr": ["1"],
        "tty": ["0"],
        "container": ["main"],
    }
    logs = paths.stream_query({"follow": ["true"], "error": ["x"]}, KubeletRequest("log", "ns", "p", "c"))
    assert logs == {"follow": ["true"], "error": ["x"], "container": ["c"]}  # only exec/attach translate


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("pki")
    ensure_serving_cert(state, [])
    return state


def _ca(state: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((state / "pki" / "ca.crt").read_bytes())


@pytest.mark.parametrize(
    ("user", "groups", "allowed"),
    [
        ("kube-apiserver-kubelet-client", ["system:masters"], True),
        ("admin", ["system:masters", "devs"], True),
        ("system:node:worker-1", ["system:nodes"], False),
        ("alice", [], False),
    ],
    ids=["apiserver", "admin", "node", "user"],
)
def test_authorize_client_certificates(pki: Path, user: str, groups: list[str], allowed: bool) -> None:
    cert, _ = issue_client_cert(pki, user, groups)
    caller = authz.authenticate(cert.decode(), _ca(pki), dt.datetime.now(dt.UTC))
    assert caller == authz.Caller(user, tuple(groups))
    refused = authz.authorize(caller, paths.attributes("GET", "/containerLogs/ns/p/c", "worker-1"))
    if allowed:
        assert refused is None
    else:
        assert refused == f"Forbidden (user={user}, verb=get, resource=nodes, subresource(s)=[proxy])"


def test_authenticate_refuses_other_cas_and_expired(pki: Path, tmp_path: Path) -> None:
    ensure_serving_cert(tmp_path, [])
    foreign, _ = issue_client_cert(tmp_path, "admin", ["system:masters"])
    assert authz.authenticate(foreign.decode(), _ca(pki), dt.datetime.now(dt.UTC)) is None
    mine, _ = issue_client_cert(pki, "admin", ["system:masters"], days=1)
    assert authz.authenticate(mine.decode(), _ca(pki), dt.datetime.now(dt.UTC) + dt.timedelta(days=2)) is None
    assert authz.authenticate(None, _ca(pki), dt.datetime.now(dt.UTC)) is None
    assert authz.authenticate("not a certificate", _ca(pki), dt.datetime.now(dt.UTC)) is None


class _Pods:
    def __init__(self, *pods: dict[str, Any]) -> None:
        self.items = list(pods)

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next((p for p in self.items if p["metadata"] == {"namespace": namespace, "name": name}), None)

    def pods(self) -> list[dict[str, Any]]:
        return self.items


async def _call(app: KubeletApp, path: str, cert: bytes | None) -> tuple[int, bytes]:
    tls = {"client_cert_chain": [cert.decode()] if cert else []}
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": [],
        "extensions": {"tls": tls},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Any) -> None:
        sent.append(message)

    with trio.fail_after(5):
        await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize(
    ("path", "who", "code", "body"),
    [
        ("/healthz", None, 401, b"Unauthorized\n"),
        ("/containerLogs/ns/web/main", None, 401, b"Unauthorized\n"),
        (
            "/containerLogs/ns/web/main",
            "node",
            403,
            b"Forbidden (user=system:node:worker-1, verb=get, resource=nodes, subresource(s)=[proxy])\n",
        ),
        ("/healthz", "apiserver", 200, b"ok"),
        ("/containerLogs/ns/gone/main", "apiserver", 404, b"pod does not exist\n"),
        ("/configz/x", "apiserver", 404, b"404 page not found\n"),
    ],
    ids=["no-cert-healthz", "no-cert-logs", "node-cert", "healthz", "pod-not-here", "unknown-path"],
)
async def test_app_answers(pki: Path, path: str, who: str | None, code: int, body: bytes) -> None:
    identities = {
        "node": ("system:node:worker-1", ["system:nodes"]),
        "apiserver": ("kube-apiserver-kubelet-client", ["system:masters"]),
    }
    cert = issue_client_cert(pki, *identities[who])[0] if who else None
    pod = {"metadata": {"namespace": "ns", "name": "web"}}
    app = KubeletApp("worker-1", _ca(pki), _Pods(pod), cast(Runtime, None))
    assert await _call(app, path, cert) == (code, body)
    assert app.served == (1 if code not in (401, 403) else 0)


async def test_app_lists_its_pods(pki: Path) -> None:
    cert, _ = issue_client_cert(pki, "kube-apiserver-kubelet-client", ["system:masters"])
    pods = [{"metadata": {"namespace": "b", "name": "x"}}, {"metadata": {"namespace": "a", "name": "y"}}]
    code, body = await _call(
        KubeletApp("worker-1", _ca(pki), _Pods(*pods), cast(Runtime, None)), "/pods", cert
    )
    assert code == 200
    listed = orjson.loads(body)
    assert listed["kind"] == "PodList" and [p["metadata"]["name"] for p in listed["items"]] == ["y", "x"]
