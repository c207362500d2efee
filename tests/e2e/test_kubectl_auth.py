"""Authentication end to end with kubectl 1.32: the admin, a certificate user made by `orchestra
kubeconfig`, ServiceAccount tokens from `kubectl create token`; refused credentials; TokenReview; the
furniture of a new namespace; the audit log. What each identity may do is RBAC's (test_kubectl_rbac.py):
a user nobody bound may only discover the API and ask about itself."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestra.api.serviceaccount.claims import bound_claims
from orchestra.api.serviceaccount.tokens import TokenIssuer, load_key, new_signing_key
from orchestra.apiserver.tls import ensure_serving_cert
from tests.conftest import ClusterThread, LiveCluster

pytestmark = pytest.mark.kubectl

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
# kubectl's words for a 401: the Status message when the refused request is the command's own, client-go's
# generic text when it is discovery's (no discovery cache yet), as against kube-apiserver
UNAUTHORIZED = ("error: You must be logged in to the server (Unauthorized)",
                "error: You must be logged in to the server (the server has asked for the client to provide "
                "credentials)")


def refused_as_unauthorized(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode == 1 and any(words in proc.stderr for words in UNAUTHORIZED)


@pytest.fixture
def kubectl(live_cluster: LiveCluster, kubectl_bin: str) -> Kubectl:
    def run(*args: str, input: str | None = None, check: bool = True, kubeconfig: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = live_cluster.kubectl_env()
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        proc = subprocess.run([kubectl_bin, *args], input=input, capture_output=True, text=True, env=env,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


def orchestra(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestra", *args, "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=60, check=False)


def whoami(kubectl: Kubectl, *args: str, kubeconfig: Path | None = None) -> dict[str, Any]:
    out = kubectl("auth", "whoami", "-o", "json", *args, kubeconfig=kubeconfig).stdout
    return json.loads(out)["status"]["userInfo"]  # type: ignore[no-any-return]


def issuer(live_cluster: LiveCluster, *, clock: Callable[[], float] = time.time) -> TokenIssuer:
    return TokenIssuer(load_key((live_cluster.state_dir / "pki" / "sa.key").read_bytes()), clock=clock)


def audit_events(live_cluster: LiveCluster) -> list[dict[str, Any]]:
    time.sleep(1.2)  # the log is written every half second
    path = live_cluster.state_dir / "audit.log"
    # JSON lines end at b"\n" only: str.splitlines() would also split inside strings at U+2028, U+0085 ...
    # (which JSON leaves unescaped), as in the URIs of the HTTP fuzz tests that share this cluster
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_three_identities(kubectl: Kubectl, live_cluster: LiveCluster, tmp_path: Path) -> None:
    admin = whoami(kubectl)
    assert admin == {"username": "orchestra-admin", "groups": ["system:masters", "system:authenticated"]}

    jane = tmp_path / "jane.kubeconfig"
    made = orchestra("kubeconfig", "--user", "jane", "--group", "dev", "--group", "qa", "--out", str(jane),
                     state_dir=live_cluster.state_dir)
    assert made.returncode == 0, made.stderr
    assert oct(jane.stat().st_mode & 0o777) == "0o600"
    assert whoami(kubectl, kubeconfig=jane) == {"username": "jane",
                                                "groups": ["dev", "qa", "system:authenticated"]}
    refused = kubectl("get", "pods", "-A", kubeconfig=jane, check=False)  # bound to nothing
    assert 'User "jane" cannot list resource "pods" in API group "" at the cluster scope' in refused.stderr
    view = kubectl("config", "view", "--raw", "-o", "json", kubeconfig=jane).stdout
    assert json.loads(view)["users"][0]["user"].keys() == {"client-certificate-data", "client-key-data"}

    token = kubectl("create", "token", "default", "--duration", "10m").stdout.strip()
    robot = whoami(kubectl, "--token", token)
    assert robot["username"] == "system:serviceaccount:default:default"
    assert robot["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:default",
        "system:authenticated",
    ]
    assert robot["uid"] == json.loads(kubectl("get", "sa", "default", "-o", "json").stdout)["metadata"]["uid"]
    refused = kubectl("--token", token, "get", "configmaps", check=False)
    assert 'User "system:serviceaccount:default:default" cannot list resource "configmaps"' in refused.stderr


def test_the_orchestra_cli_works_with_a_certificate_kubeconfig(
    kubectl: Kubectl, live_cluster: LiveCluster, tmp_path: Path
) -> None:
    kubectl("create", "clusterrole", "namespace-reader", "--verb=get,list", "--resource=namespaces")
    kubectl("create", "clusterrolebinding", "jane-reads-namespaces", "--clusterrole=namespace-reader",
            "--user=jane")
    jane = tmp_path / "jane.kubeconfig"
    assert (
        orchestra(
            "kubeconfig", "--user", "jane", "--out", str(jane), state_dir=live_cluster.state_dir
        ).returncode
        == 0
    )
    got = subprocess.run(
        [sys.executable, "-m", "orchestra", "get", "namespaces", "--kubeconfig", str(jane)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert got.returncode == 0, got.stderr
    assert "kube-system" in got.stdout


def test_a_pod_bound_token_dies_with_its_pod(kubectl: Kubectl) -> None:
    kubectl("run", "bound", "--image", "localhost/busybox:latest", "--", "sleep", "3600")
    token = kubectl("create", "token", "default", "--bound-object-kind", "Pod", "--bound-object-name",
                    "bound").stdout.strip()
    robot = whoami(kubectl, "--token", token)
    assert robot["extra"]["authentication.kubernetes.io/pod-name"] == ["bound"]
    kubectl("delete", "pod", "bound", "--grace-period=0", "--force")
    assert refused_as_unauthorized(kubectl("--token", token, "get", "pods", check=False))


def test_pods_get_the_token_volume(kubectl: Kubectl) -> None:
    kubectl("run", "mounted", "--image", "localhost/busybox:latest", "--", "sleep", "3600")
    spec = json.loads(kubectl("get", "pod", "mounted", "-o", "json").stdout)["spec"]
    assert spec["serviceAccountName"] == "default"
    volume = next(v for v in spec["volumes"] if v["name"].startswith("kube-api-access-"))
    assert [next(iter(s)) for s in volume["projected"]["sources"]] == ["serviceAccountToken", "configMap",
                                                                       "downwardAPI"]
    assert {
        "name": volume["name"],
        "readOnly": True,
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    } in spec["containers"][0]["volumeMounts"]
    missing = kubectl("run", "lost", "--image", "x", "--overrides", '{"spec":{"serviceAccountName":"ghost"}}',
                      check=False)
    assert 'pods "lost" is forbidden: service account default/ghost was not found' in missing.stderr
    kubectl("delete", "pod", "mounted", "--grace-period=0", "--force")


def _sa_token(live_cluster: LiveCluster, *, now: float | None = None, audiences: list[str] | None = None,
              key: Any = None, sa: dict[str, Any] | None = None) -> str:
    iss = issuer(live_cluster) if key is None else TokenIssuer(key)
    account = sa or {
        "metadata": {"name": "default", "namespace": "default", "uid": _default_uid(live_cluster)}
    }
    return iss.sign(bound_claims(account, audiences=audiences or list(iss.audiences), issuer=iss.issuer,
                                 now=time.time() if now is None else now, expiration_seconds=600))


def _default_uid(live_cluster: LiveCluster) -> str:
    with _http(live_cluster) as http:
        return str(http.get("/api/v1/namespaces/default/serviceaccounts/default").json()["metadata"]["uid"])


BAD_TOKENS: dict[str, Callable[[LiveCluster], str]] = {
    "garbage": lambda c: "garbage",
    "malformed-jwt": lambda c: "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln",
    "expired": lambda c: _sa_token(c, now=time.time() - 7200),
    "wrong-signature": lambda c: _sa_token(c, key=new_signing_key()),
    "wrong-audience": lambda c: _sa_token(c, audiences=["https://vault.example"]),
    "deleted-account": lambda c: _sa_token(
        c, sa={"metadata": {"name": "gone", "namespace": "default", "uid": "u"}}
    ),
    "replaced-account": lambda c: _sa_token(
        c, sa={"metadata": {"name": "default", "namespace": "default", "uid": "an-older-uid"}}
    ),
    "admin-token-with-a-typo": lambda c: c.token + "x",
}


@pytest.mark.parametrize("make", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_tokens_are_401(
    kubectl: Kubectl, live_cluster: LiveCluster, make: Callable[[LiveCluster], str]
) -> None:
    token = make(live_cluster)
    assert refused_as_unauthorized(kubectl("--token", token, "get", "pods", check=False))
    with _http(live_cluster, token=token) as http:
        r = http.get("/api/v1/namespaces/default/pods")
    assert r.status_code == 401
    assert r.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    audit_id = r.headers["audit-id"]
    event = next(e for e in audit_events(live_cluster) if e["auditID"] == audit_id)
    assert event["user"] == {} and event["stage"] == "ResponseStarted"
    assert event["responseStatus"] == {
        "metadata": {},
        "code": 401,
        "message": "Authentication failed, attempted: bearer",
    }


def test_a_token_with_an_audience_works_only_there(kubectl: Kubectl) -> None:
    token = kubectl("create", "token", "default", "--audience", "https://vault.example").stdout.strip()
    assert refused_as_unauthorized(kubectl("--token", token, "get", "pods", check=False))
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
              "spec": {"token": token, "audiences": ["https://vault.example"]}}
    reviewed = json.loads(kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review)).stdout)
    assert reviewed["status"]["authenticated"] is True
    assert reviewed["status"]["user"]["username"] == "system:serviceaccount:default:default"
    assert reviewed["status"]["audiences"] == ["https://vault.example"]
    default = {**review, "spec": {"token": token}}
    refused = json.loads(kubectl("create", "-f", "-", "-o", "json", input=json.dumps(default)).stdout)[
        "status"
    ]
    assert refused["authenticated"] is False
    assert refused["error"].startswith(
        'invalid bearer token, token audiences ["https://vault.example"] is invalid'
    )


def _client_cert(tmp_path: Path, state: Path, user: str) -> tuple[Path, Path]:
    from orchestra.apiserver.tls import issue_client_cert

    cert, key = issue_client_cert(state, user, [])
    (tmp_path / f"{user}.crt").write_bytes(cert)
    (tmp_path / f"{user}.key").write_bytes(key)
    return tmp_path / f"{user}.crt", tmp_path / f"{user}.key"


def test_certificates_of_another_ca_are_refused(kubectl: Kubectl, live_cluster: LiveCluster,
                                                tmp_path: Path) -> None:
    """Python's ssl checks a certificate the client sends during the handshake: one of another CA fails
    there, and kubectl reports that it could not connect (kube-apiserver answers 401 instead; README,
    Known limits). Never a 500, never a crash, and the server carries on."""
    other = tmp_path / "other-cluster"
    ensure_serving_cert(other, [])
    cert, key = _client_cert(tmp_path, other, "mallory")
    refused = kubectl("--client-certificate", str(cert), "--client-key", str(key), "get", "pods", check=False)
    assert refused.returncode == 1
    # the connection fails, worded as the timing has it: TLS 1.3 checks the certificate after the client
    # thinks the handshake is done, so kubectl may read an EOF or a reset ("Unable to connect to the
    # server: EOF", "... read: connection reset by peer - error from a previous attempt: EOF")
    assert any(w in refused.stderr for w in ("EOF", "connection reset by peer")), refused.stderr
    assert "Internal" not in refused.stderr
    with pytest.raises(httpx.HTTPError), _http(live_cluster, token=None, cert=(cert, key)) as http:
        http.get("/api/v1/pods")
    assert whoami(kubectl)["username"] == "orchestra-admin"  # the server is fine


def test_the_new_namespace_is_furnished(kubectl: Kubectl, live_cluster: LiveCluster) -> None:
    kubectl("create", "namespace", "furnished")
    deadline = time.monotonic() + 20  # wall-clock: the controllers run in another thread
    while time.monotonic() < deadline:
        sa = kubectl("get", "serviceaccount", "default", "-n", "furnished", check=False)
        cm = kubectl("get", "configmap", "kube-root-ca.crt", "-n", "furnished", "-o", "json", check=False)
        if sa.returncode == 0 and cm.returncode == 0:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the namespace was not furnished")
    assert json.loads(cm.stdout)["data"] == {"ca.crt": live_cluster.ca_cert.read_text()}


def test_the_audit_log_has_a_line_per_request_with_user_and_code(kubectl: Kubectl, live_cluster: LiveCluster,
                                                                 tmp_path: Path) -> None:
    cert, key = _client_cert(tmp_path, live_cluster.state_dir, "auditor")
    kubectl("create", "role", "auditor", "--verb=get,create", "--resource=configmaps,secrets")
    kubectl("create", "rolebinding", "auditor", "--role=auditor", "--user=auditor")
    with _http(live_cluster, token=None, cert=(cert, key)) as http:
        ids = [http.get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt").headers["audit-id"],
               http.get("/api/v1/namespaces/default/secrets/none").headers["audit-id"],
               http.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "audited"}},
                         headers={"User-Agent": "audit-test"}).headers["audit-id"]]
    events = {e["auditID"]: e for e in audit_events(live_cluster)}
    got = [(events[i]["user"]["username"], events[i]["verb"], events[i]["objectRef"].get("name"),
            events[i]["responseStatus"]["code"], events[i]["stage"]) for i in ids]
    assert got == [("auditor", "get", "kube-root-ca.crt", 200, "ResponseComplete"),
                   ("auditor", "get", "none", 404, "ResponseComplete"),
                   ("auditor", "create", None, 201, "ResponseComplete")]
    assert events[ids[2]]["userAgent"] == "audit-test"
    assert events[ids[2]]["objectRef"] == {
        "resource": "configmaps",
        "namespace": "default",
        "apiVersion": "v1",
    }
    assert oct((live_cluster.state_dir / "audit.log").stat().st_mode & 0o777) == "0o600"


def test_the_audit_log_rotates_in_a_running_cluster(tmp_path: Path) -> None:
    from orchestra.app import ClusterConfig

    config = ClusterConfig(state_dir=tmp_path / "state", listen_port=0, store="memory", podman=False,
                           network=False, controllers=False, audit_max_bytes=20_000, audit_backups=2)
    runner = ClusterThread(config)
    cluster: Any = runner.start()
    try:
        with httpx.Client(base_url=cluster.url, headers={"Authorization": f"Bearer {cluster.token}"},
                          verify=ssl.create_default_context(cafile=str(cluster.ca_cert))) as http:
            for i in range(150):
                assert http.get(f"/api/v1/namespaces/default/configmaps/c{i}").status_code == 404
                if i % 30 == 29:
                    time.sleep(0.7)  # let the writer flush (and rotate) between bursts
        time.sleep(1.2)
    finally:
        runner.stop()
    logs = sorted(p.name for p in (tmp_path / "state").iterdir() if p.name.startswith("audit.log"))
    assert logs == ["audit.log", "audit.log.1", "audit.log.2"]
    assert all((tmp_path / "state" / name).stat().st_size <= 20_000 for name in logs)


def _http(live_cluster: LiveCluster, *, token: str | None = "admin",
          cert: tuple[Path, Path] | None = None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(live_cluster.ca_cert))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {live_cluster.token if token == 'admin' else token}"
    return httpx.Client(base_url=live_cluster.url, headers=headers, verify=ctx, timeout=10)


def test_the_serving_certificate_covers_the_names_pods_use(live_cluster: LiveCluster) -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((live_cluster.state_dir / "pki" / "apiserver.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local"} <= set(names.get_values_for_type(x509.DNSName))
    assert "10.96.0.1" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
