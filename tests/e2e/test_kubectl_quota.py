"""ResourceQuota and LimitRange through the real kubectl 1.32 (and many concurrent HTTP creates)
against a running orchestra: kube's refusals, `kubectl describe quota`, LimitRange defaults."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import LiveCluster

pytestmark = pytest.mark.kubectl

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
IMAGE = "localhost/busybox:latest"


@pytest.fixture
def kubectl(live_cluster: LiveCluster, kubectl_bin: str) -> Kubectl:
    def run(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [kubectl_bin, *args],
            input=input,
            capture_output=True,
            text=True,
            env=live_cluster.kubectl_env(),
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


@pytest.fixture
def namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> str:
    name = "q-" + request.node.name.removeprefix("test_").replace("_", "-")[:40]
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def wait_quota_synced(kubectl: Kubectl, ns: str, name: str) -> None:
    """The controller fills in status.used; until then a quota limits nothing (as in kube)."""
    deadline = time.monotonic() + 30  # wall clock: waiting on another thread's cluster
    while time.monotonic() < deadline:
        used = kubectl("get", "quota", name, "-n", ns, "-o", "jsonpath={.status.used}").stdout
        if used:
            return
        time.sleep(0.1)
    raise AssertionError(f"quota {ns}/{name} never got a status")


def run_pod(
    kubectl: Kubectl, ns: str, name: str, *extra: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return kubectl(
        "run",
        name,
        f"--image={IMAGE}",
        "--restart=Never",
        "-n",
        ns,
        *extra,
        "--",
        "sleep",
        "3600",
        check=check,
    )


def test_pods_quota_refuses_the_third_pod(kubectl: Kubectl, namespace: str) -> None:
    assert (
        kubectl("create", "quota", "q", "--hard=pods=2", "-n", namespace).stdout.strip()
        == "resourcequota/q created"
    )
    wait_quota_synced(kubectl, namespace, "q")
    run_pod(kubectl, namespace, "p1")
    run_pod(kubectl, namespace, "p2")
    third = run_pod(kubectl, namespace, "p3", check=False)
    assert third.returncode == 1
    assert third.stderr.strip() == (
        'Error from server (Forbidden): pods "p3" is forbidden: exceeded quota: q, '
        "requested: pods=1, used: pods=2, limited: pods=2"
    )
    described = kubectl("describe", "quota", "q", "-n", namespace).stdout.splitlines()
    assert described[:2] == ["Name:       q", f"Namespace:  {namespace}"]
    assert [line.split() for line in described[2:]] == [
        ["Resource", "Used", "Hard"],
        ["--------", "----", "----"],
        ["pods", "2", "2"],
    ]
    ns_text = kubectl("describe", "namespace", namespace).stdout
    section = [line.split() for line in ns_text.split("Resource Quotas\n")[1].splitlines()[:4]]
    assert section == [["Name:", "q"], ["Resource", "Used", "Hard"], ["--------", "---", "---"],
                       ["pods", "2", "2"]]
    assert ns_text.rstrip().endswith("No LimitRange resource.")
    table = kubectl("get", "quota", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert table[1].split()[0] == "q" and table[1].split()[2:] == ["pods:", "2/2"]


def test_compute_quota_needs_limits(kubectl: Kubectl, namespace: str) -> None:
    kubectl(
        "create",
        "quota",
        "compute",
        "--hard=limits.cpu=1,limits.memory=1Gi,requests.cpu=500m",
        "-n",
        namespace,
    )
    wait_quota_synced(kubectl, namespace, "compute")
    bare = run_pod(kubectl, namespace, "bare", check=False)
    assert bare.stderr.strip() == (
        'Error from server (Forbidden): pods "bare" is forbidden: failed quota: compute: must specify '
        "limits.cpu for: bare; limits.memory for: bare; requests.cpu for: bare"
    )
    overrides = {
        "spec": {
            "containers": [
                {
                    "name": "sized",
                    "image": IMAGE,
                    "command": ["sleep", "3600"],
                    "resources": {"limits": {"cpu": "400m", "memory": "256Mi"}},
                }
            ]
        }
    }
    run_pod(kubectl, namespace, "sized", "--overrides", json.dumps(overrides))
    described = kubectl("describe", "quota", "compute", "-n", namespace).stdout
    rows = {line.split()[0]: line.split()[1:] for line in described.splitlines()[4:]}
    assert rows == {
        "limits.cpu": ["400m", "1"],
        "limits.memory": ["256Mi", "1Gi"],
        "requests.cpu": ["400m", "500m"],
    }
    over = {"spec": {"containers": [{**overrides["spec"]["containers"][0], "name": "more"}]}}
    refused = run_pod(kubectl, namespace, "more", "--overrides", json.dumps(over), check=False)
    assert (
        "exceeded quota: compute, requested: requests.cpu=400m, used: requests.cpu=400m, "
        "limited: requests.cpu=500m" in refused.stderr
    )


LIMITS = """apiVersion: v1
kind: LimitRange
metadata:
  name: limits
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 128Mi}
    defaultRequest: {cpu: 100m}
    max: {cpu: "1"}
"""


def test_limit_range_defaults_and_refuses(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=LIMITS)
    run_pod(kubectl, namespace, "defaulted")
    pod = json.loads(kubectl("get", "pod", "defaulted", "-n", namespace, "-o", "json").stdout)
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "128Mi"},
        "requests": {"cpu": "100m", "memory": "128Mi"},
    }
    assert pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container defaulted; "
        "cpu, memory limit for container defaulted"
    )
    assert pod["status"]["qosClass"] == "Burstable"
    yaml_out = kubectl("get", "pod", "defaulted", "-n", namespace, "-o", "yaml").stdout
    assert (
        "kubernetes.io/limit-ranger: 'LimitRanger plugin set: cpu, memory request for container" in yaml_out
    )
    big = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "big"},
        "spec": {"containers": [{"name": "c", "image": IMAGE, "resources": {"limits": {"cpu": "2"}}}]},
    }
    refused = kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(big), check=False)
    assert refused.returncode == 1
    assert 'pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2' in refused.stderr
    assert kubectl("get", "limits", "-n", namespace).stdout.split()[:4] == ["NAME", "CREATED", "AT", "limits"]
    described = kubectl("describe", "limits", "limits", "-n", namespace).stdout
    rows = [line.split() for line in described.splitlines()[2:]]
    assert rows[:2] == [
        ["Type", "Resource", "Min", "Max", "Default", "Request", "Default", "Limit", "Max", "Limit/Request",
         "Ratio"],
        ["----", "--------", "---", "---", "---------------", "-------------", "-----------------------"],
    ]
    assert sorted(rows[2:]) == [  # kubectl walks the resources of an item as a Go map: in no fixed order
        ["Container", "cpu", "-", "1", "100m", "500m", "-"],
        ["Container", "memory", "-", "-", "128Mi", "128Mi", "-"],
    ]


def test_concurrent_creates_against_one_unit(
    live_cluster: LiveCluster, kubectl: Kubectl, namespace: str
) -> None:
    kubectl("create", "quota", "one", "--hard=count/configmaps=1,pods=1", "-n", namespace)
    wait_quota_synced(kubectl, namespace, "one")
    ctx = ssl.create_default_context(cafile=str(live_cluster.ca_cert))
    headers = {"Authorization": f"Bearer {live_cluster.token}"}

    def create(i: int) -> int:
        kind, body = (
            ("configmaps", {"metadata": {"name": f"c{i}"}})
            if i % 2
            else (
                "pods",
                {"metadata": {"name": f"p{i}"}, "spec": {"containers": [{"name": "c", "image": IMAGE}]}},
            )
        )
        url = f"{live_cluster.url}/api/v1/namespaces/{namespace}/{kind}"
        return httpx.post(url, json=body, headers=headers, verify=ctx, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(create, range(40)))
    assert sorted(codes) == [201, 201] + [403] * 38
    assert (
        kubectl("get", "quota", "one", "-n", namespace, "-o", "jsonpath={.status.used}").stdout
        == '{"count/configmaps":"1","pods":"1"}'
    )
