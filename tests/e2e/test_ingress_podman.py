"""Ingress end to end (pytest.mark.podman): real Podman pods behind Services, the built-in ingress
controller on 127.0.0.1 (free high ports for HTTP and HTTPS), reached from the host like a browser.

The cluster is tests/e2e/test_network_podman.py's (run_cluster with service networking in a background
thread; only one such cluster can run on a machine: the fixture refuses to start while 10.96.0.10:53
is taken). Backends: busybox httpd pods serving their own page, and a pod of the Python image
tests/e2e/grpcimage.py builds, running a stdlib http.server that answers its request headers as JSON
and, for an `Upgrade` request, 101 then an echo of raw bytes.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTL, ClusterThread
from tests.e2e.grpcimage import ensure_grpc_image
from tests.e2e.test_network_podman import IMAGE, NS, NetCluster, preflight, service_routed
from tests.net.certutil import CertAuthority, tls_secret

pytestmark = [pytest.mark.podman, pytest.mark.slow]

Obj = dict[str, Any]
CA = CertAuthority("e2e-ca")
HOSTS = ("a.example.test", "b.example.test", "ws.example.test")
ECHO_PORT = 9000
ECHO = f"""
import http.server, json

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.headers.get("Upgrade"):
            self.send_response(101)
            self.send_header("Upgrade", self.headers["Upgrade"])
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            while data := self.rfile.read1(65536):
                self.wfile.write(data)
            self.close_connection = True
            return
        headers = {{k.lower(): v for k, v in self.headers.items()}}
        body = json.dumps({{"path": self.path, "headers": headers}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("0.0.0.0", {ECHO_PORT}), Handler).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def httpd(page: str) -> list[str]:
    return [
        "sh",
        "-c",
        f"mkdir -p /www/two && echo {page}:$(hostname) | tee /www/index.html /www/two/index.html "
        "&& exec httpd -f -p 8080 -h /www",
    ]


def deployment(name: str, container: Obj, probe: Obj) -> Obj:
    return {"metadata": {"name": name}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": name, **container, "readinessProbe": {**probe, "periodSeconds": 1}}]}}}}


def backend(service: str, port: Any) -> Obj:
    return {"service": {"name": service, "port": port}}


INGRESS: Obj = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "site"},
    "spec": {
        "tls": [
            {"hosts": ["a.example.test"], "secretName": "a-tls"},
            {"hosts": ["b.example.test"], "secretName": "b-tls"},
        ],
        "rules": [
            {
                "host": "a.example.test",
                "http": {
                    "paths": [
                        {"path": "/", "pathType": "Prefix", "backend": backend("one", {"number": 80})},
                        {"path": "/two", "pathType": "Prefix", "backend": backend("two", {"name": "web"})},
                    ]
                },
            },
            {
                "host": "b.example.test",
                "http": {
                    "paths": [{"path": "/", "pathType": "Prefix", "backend": backend("two", {"name": "web"})}]
                },
            },
            {
                "host": "ws.example.test",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "ImplementationSpecific",
                            "backend": backend("echo", {"number": 80}),
                        }
                    ]
                },
            },
        ],
    },
}


class IngressCluster(NetCluster):
    def __init__(self, runner: ClusterThread, http_port: int, https_port: int, home: Path) -> None:
        super().__init__(runner)
        self.http_port, self.https_port, self.home = http_port, https_port, home

    def get_page(self, host: str, path: str = "/") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": host})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def get_tls(self, host: str, path: str = "/") -> tuple[int, bytes]:
        ctx = ssl.create_default_context(cadata=CA.pem.decode())
        conn = http.client.HTTPSConnection(host, self.https_port, timeout=10, context=ctx)
        conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.https_port), timeout=10),
                                    server_hostname=host)  # the name resolves nowhere: connect by address
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def kubectl(self, *args: str) -> str:
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), "HOME": str(self.home)}
        return subprocess.run(
            [KUBECTL, *args], capture_output=True, text=True, env=env, timeout=60, check=True
        ).stdout

    def ready_count(self, service: str) -> int:
        return len(self.ready_ips(service))

    def cleanup_ingress(self) -> None:
        async def go() -> None:
            for kind, name in (("Ingress", "site"), ("Deployment", "one"), ("Deployment", "two"),
                               ("Deployment", "echo")):
                try:
                    await self.client.delete(self.rt(kind), NS, name, propagation_policy="Background")
                except Exception:  # best effort: the module may have failed before creating it
                    pass
        self.run(go)
        self.cleanup()


@pytest.fixture(scope="module")
def ing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngressCluster]:
    from orchestra.app import ClusterConfig

    if not os.access(KUBECTL, os.X_OK):
        pytest.fail(f"kubectl 1.32 is required for these tests ({KUBECTL})")
    routed_before = preflight()
    image = ensure_grpc_image()
    http_port, https_port = free_port(), free_port()
    runner = ClusterThread(
        ClusterConfig(
            state_dir=tmp_path_factory.mktemp("ingress-state"),
            listen_port=0,
            store="memory",
            podman=True,
            network=True,
            timings="fast",
            ingress_listen=("127.0.0.1", http_port),
            ingress_tls_listen=("127.0.0.1", https_port),
        )
    )
    try:
        runner.start()
        if runner.cluster is None:
            pytest.fail("the network cluster did not start within 60 s")
        nc = IngressCluster(runner, http_port, https_port, tmp_path_factory.mktemp("home"))
        assert not nc.cluster.ingress.errors, nc.cluster.ingress.errors
        try:
            _deploy(nc, image)
            yield nc
        finally:
            nc.cleanup_ingress()
    finally:
        runner.stop()
    if not routed_before:
        assert not service_routed()


def _deploy(nc: IngressCluster, image: str) -> None:
    t0 = time.monotonic()
    http_probe = {"httpGet": {"path": "/", "port": 8080}}
    nc.create("Deployment", deployment("one", {"image": IMAGE, "command": httpd("one")}, http_probe))
    nc.create("Deployment", deployment("two", {"image": IMAGE, "command": httpd("two")}, http_probe))
    python = os.path.realpath(sys.executable)  # the image holds this interpreter at the same path
    nc.create("Deployment", deployment("echo", {"image": image, "imagePullPolicy": "IfNotPresent",
                                                "command": [python, "-u", "-c", ECHO]},
                                       {"tcpSocket": {"port": ECHO_PORT}}))
    nc.create("Service", {"metadata": {"name": "one"}, "spec": {"selector": {"app": "one"},
                                                              "ports": [{"port": 80, "targetPort": 8080}]}})
    nc.create(
        "Service",
        {
            "metadata": {"name": "two"},
            "spec": {
                "selector": {"app": "two"},
                "ports": [{"name": "web", "port": 8000, "targetPort": 8080}],
            },
        },
    )
    nc.create(
        "Service",
        {
            "metadata": {"name": "echo"},
            "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": ECHO_PORT}]},
        },
    )
    nc.create("Secret", tls_secret("a-tls", CA.issue("a.example.test")))
    nc.create("Secret", tls_secret("b-tls", CA.issue("b.example.test")))
    nc.create("Ingress", INGRESS)
    for name in ("one", "two", "echo"):
        nc.wait(f"a ready endpoint of {name}", lambda name=name: nc.ready_count(name) == 1, limit=90)
    print(f"deployed the backends in {time.monotonic() - t0:.1f} s")


def test_hosts_and_paths_route_to_their_services(ing: IngressCluster) -> None:
    status, body = ing.get_page("a.example.test")
    assert status == 200 and body.startswith(b"one:"), body
    status, body = ing.get_page("a.example.test", "/two/")
    assert status == 200 and body.startswith(b"two:"), body
    status, body = ing.get_page("b.example.test")
    assert status == 200 and body.startswith(b"two:"), body
    status, body = ing.get_page("c.example.test")
    assert status == 404 and body == b"404 Not Found: no Ingress rule matches this host and path\n"
    got = ing.get("Ingress", "site")
    assert got["status"] == {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}


def test_https_certificates_by_sni(ing: IngressCluster) -> None:
    assert ing.get_tls("a.example.test")[1].startswith(b"one:")
    assert ing.get_tls("b.example.test")[1].startswith(b"two:")
    with pytest.raises(ssl.SSLCertVerificationError):  # no certificate for it: the cluster CA's default
        ing.get_tls("ws.example.test")


def test_backends_see_forwarded_headers(ing: IngressCluster) -> None:
    status, body = ing.get_page("ws.example.test", "/headers?x=1")
    assert status == 200, body
    seen = json.loads(body)
    assert seen["path"] == "/headers?x=1"
    headers = seen["headers"]
    assert headers["host"] == "ws.example.test" and headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http" and headers["x-forwarded-host"] == "ws.example.test"
    assert headers["x-forwarded-port"] == str(ing.http_port) and headers["x-real-ip"] == "127.0.0.1"


def test_upgrade_passes_raw_bytes_both_ways(ing: IngressCluster) -> None:
    with socket.create_connection(("127.0.0.1", ing.http_port), timeout=10) as s:
        s.sendall(
            b"GET /chat HTTP/1.1\r\nHost: ws.example.test\r\n"
            b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101 "), head
        for message in (b"\x81\x05hello", b"x" * 200_000):
            s.sendall(message)
            echoed = b""
            while len(echoed) < len(message):
                echoed += s.recv(65536)
            assert echoed == message


def test_a_backend_scaled_to_zero_is_503_until_it_is_back(ing: IngressCluster) -> None:
    scale = ing.rt("Deployment")
    ing.run(lambda: ing.client.patch(scale, NS, "two", {"spec": {"replicas": 0}}))
    ing.wait("no endpoint of two", lambda: ing.ready_count("two") == 0, limit=60)
    status, body = ing.get_page("b.example.test")
    assert status == 503 and body == b"503 Service Unavailable: no ready endpoint for default/two:web\n"
    assert ing.get_page("a.example.test")[0] == 200  # the other backend is unaffected
    ing.run(lambda: ing.client.patch(scale, NS, "two", {"spec": {"replicas": 1}}))
    ing.wait("two ready again", lambda: ing.ready_count("two") == 1, limit=90)
    status, body = ing.get_page("b.example.test")
    assert status == 200 and body.startswith(b"two:")


def test_kubectl_get_ingress(ing: IngressCluster) -> None:
    lines = ing.kubectl("get", "ingress").splitlines()
    assert lines[0].split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert lines[1].split()[:6] == ["site", "orchestra", ",".join(HOSTS), "127.0.0.1", "80,", "443"]
    wide = ing.kubectl("get", "ingressclass", "orchestra").splitlines()
    assert wide[1].split()[:3] == ["orchestra", "orchestra.io/ingress-controller", "<none>"]


def test_the_controller_counted_no_failure(ing: IngressCluster) -> None:
    """What the tests above did shows in the controller's statistics, and nothing failed inside it."""
    async def statistics() -> dict[str, Any]:
        return dict(ing.cluster.ingress.statistics())

    stats = ing.run(statistics)
    assert stats["connection_errors"] == 0 and stats["sync_errors"] == 0, stats
    assert stats["upgrades"] >= 1 and stats["not_found"] >= 1 and stats["unavailable"] >= 1, stats
