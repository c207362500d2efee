"""kubectl 1.32 with NetworkPolicy (no network needed: the API only): discovery, apply of the docs'
example, `get` columns, `describe` (kubectl's own describer reads the stored object), `explain` (the
OpenAPI v3 document), kube-worded validation errors."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest

from tests.conftest import LiveCluster

pytestmark = pytest.mark.kubectl

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

# the example of https://kubernetes.io/docs/concepts/services-networking/network-policies/
DOCS_EXAMPLE = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: np1
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 5978
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


def test_networkpolicies_are_discovered(kubectl: Kubectl) -> None:
    rows = {line.split()[0]: line.split() for line in kubectl("api-resources").stdout.splitlines()[1:]}
    assert rows["networkpolicies"] == ["networkpolicies", "netpol", "networking.k8s.io/v1", "true",
                                       "NetworkPolicy"]


def test_apply_get_and_describe_the_docs_example(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "np1")
    out = kubectl("apply", "-f", "-", input=DOCS_EXAMPLE).stdout
    assert "networkpolicy.networking.k8s.io/test-network-policy created" in out
    assert "unchanged" in kubectl("apply", "-f", "-", input=DOCS_EXAMPLE).stdout
    lines = kubectl("get", "netpol", "-n", "np1").stdout.splitlines()
    assert lines[0].split() == ["NAME", "POD-SELECTOR", "AGE"]
    assert lines[1].split()[:2] == ["test-network-policy", "role=db"]
    obj = json.loads(kubectl("get", "networkpolicy", "test-network-policy", "-n", "np1", "-o", "json").stdout)
    assert obj["metadata"]["generation"] == 1 and "status" not in obj
    described = kubectl("describe", "networkpolicy", "test-network-policy", "-n", "np1").stdout
    for line in ("PodSelector:     role=db", "To Port: 6379/TCP", "CIDR: 172.17.0.0/16",
                 "Except: 172.17.1.0/24", "NamespaceSelector: project=myproject",
                 "PodSelector: role=frontend", "To Port: 5978/TCP", "Policy Types: Ingress, Egress"):
        assert line in described, described


def test_explain_reads_the_openapi_document(kubectl: Kubectl) -> None:
    out = kubectl("explain", "networkpolicy.spec.ingress.from.ipBlock").stdout
    assert "GROUP:      networking.k8s.io" in out and "cidr\t<string> -required-" in out


def test_invalid_policy_is_rejected_with_kube_s_message(kubectl: Kubectl) -> None:
    bad = DOCS_EXAMPLE.replace("172.17.1.0/24", "172.18.0.0/24")
    bad = bad.replace("namespace: np1", "namespace: default")
    proc = kubectl("apply", "-f", "-", input=bad, check=False)
    assert proc.returncode == 1
    assert ('The NetworkPolicy "test-network-policy" is invalid: spec.ingress[0].from[0].ipBlock.except[0]: '
            'Invalid value: "172.18.0.0/24": must be a strict subset of `cidr`') in proc.stderr
