"""kubectl 1.32 with Ingress and IngressClass (no network needed: the API only): discovery, apply,
`get` columns, the default class, kube-worded validation errors."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest

from tests.conftest import LiveCluster

pytestmark = pytest.mark.kubectl

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: ing1}
spec:
  tls: [{hosts: [a.example.com], secretName: web-tls}]
  rules:
  - host: a.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
  - host: b.example.com
    http:
      paths:
      - {path: /api, pathType: Exact, backend: {service: {name: api, port: {name: http}}}}
"""


@pytest.fixture
def kubectl(live_cluster: LiveCluster, kubectl_bin: str) -> Kubectl:
    def run(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([kubectl_bin, *args], input=input, capture_output=True, text=True,
                              env=live_cluster.kubectl_env(), timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


def test_ingress_kinds_are_discovered(kubectl: Kubectl) -> None:
    rows = {line.split()[0]: line.split() for line in kubectl("api-resources").stdout.splitlines()[1:]}
    assert rows["ingresses"] == ["ingresses", "ing", "networking.k8s.io/v1", "true", "Ingress"]
    assert rows["ingressclasses"] == ["ingressclasses", "networking.k8s.io/v1", "false", "IngressClass"]


def test_apply_and_get_ingress(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "ing1")
    assert "ingress.networking.k8s.io/web created" in kubectl("apply", "-f", "-", input=INGRESS).stdout
    assert "unchanged" in kubectl("apply", "-f", "-", input=INGRESS).stdout
    lines = kubectl("get", "ing", "-n", "ing1").stdout.splitlines()
    assert lines[0].split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    name, cls, hosts, *ports_age = lines[1].split()
    assert (name, cls, hosts) == ("web", "orchestra", "a.example.com,b.example.com")
    assert ports_age[:2] == ["80,", "443"]  # no address: nothing serves this API-only cluster
    obj = json.loads(kubectl("get", "ingress", "web", "-n", "ing1", "-o", "json").stdout)
    assert obj["spec"]["ingressClassName"] == "orchestra" and obj["status"] == {"loadBalancer": {}}
    classes = kubectl("get", "ingressclass").stdout.splitlines()
    assert classes[0].split() == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
    assert classes[1].split()[:3] == ["orchestra", "orchestra.io/ingress-controller", "<none>"]


def test_invalid_ingress_is_rejected_with_kube_s_message(kubectl: Kubectl) -> None:
    bad = INGRESS.replace("path: /api", "path: api").replace(
        "name: web, namespace: ing1", "name: bad, namespace: default"
    )
    proc = kubectl("apply", "-f", "-", input=bad, check=False)
    assert proc.returncode == 1
    assert (
        'The Ingress "bad" is invalid: spec.rules[1].http.paths[0].path: Invalid value: "api": must be an '
        "absolute path"
    ) in proc.stderr
    no_type = INGRESS.replace(", pathType: Exact", "").replace("name: web, namespace: ing1", "name: bad2")
    proc = kubectl("apply", "-f", "-", input=no_type, check=False)
    assert "spec.rules[1].http.paths[0].pathType: Required value: pathType must be specified" in proc.stderr


def test_kubectl_create_ingress_sends_protobuf_that_decodes(kubectl: Kubectl) -> None:
    """`kubectl create ingress` posts a protobuf body: its rules and TLS come through whole."""
    kubectl("create", "namespace", "ing2")
    out = kubectl("create", "ingress", "simple", "-n", "ing2", "--class=orchestra",
                  "--rule=foo.example.com/bar*=svc1:8080,tls=my-cert", "--rule=/path=svc2:http",
                  "--default-backend=defsvc:https").stdout
    assert "ingress.networking.k8s.io/simple created" in out
    spec = json.loads(kubectl("get", "ingress", "simple", "-n", "ing2", "-o", "json").stdout)["spec"]
    assert spec == {
        "ingressClassName": "orchestra",
        "defaultBackend": {"service": {"name": "defsvc", "port": {"name": "https"}}},
        "rules": [
            {"host": "foo.example.com", "http": {"paths": [{"path": "/bar", "pathType": "Prefix", "backend": {
                "service": {"name": "svc1", "port": {"number": 8080}}}}]}},
            {"http": {"paths": [{"path": "/path", "pathType": "Exact", "backend": {
                "service": {"name": "svc2", "port": {"name": "http"}}}}]}},
        ],
        "tls": [{"hosts": ["foo.example.com"], "secretName": "my-cert"}],
    }
