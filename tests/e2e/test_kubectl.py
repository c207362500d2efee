"""The real kubectl 1.32 against a real orchestra API server (no controllers needed)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.conftest import LiveCluster

pytestmark = pytest.mark.kubectl

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl(live_cluster: LiveCluster, kubectl_bin: str) -> Kubectl:
    def run(
        *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([kubectl_bin, *args], input=input, capture_output=True, text=True,
                              env=live_cluster.kubectl_env(), timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


def namespace(name: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"


def deployment(
    ns: str,
    *,
    image: str = "localhost/busybox:latest",
    env: bool | str = True,
    sidecar: bool = True,
    replicas: int = 2,
    extra_spec: dict | None = None,
    drop_image: bool = False,
) -> str:
    web: dict = {
        "name": "web",
        "image": image,
        "command": ["httpd", "-f", "-p", "8080"],
        "ports": [{"containerPort": 8080}],
    }
    if env:
        web["env"] = [{"name": "GREETING", "value": "hello"}, {"name": "MODE", "value": "web"}][
            : 1 if env == "one" else 2
        ]
    if drop_image:
        del web["image"]
    containers = [web]
    if sidecar:
        containers.append(
            {"name": "sidecar", "image": "localhost/busybox:latest", "command": ["sleep", "3600"]}
        )
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}},
            **(extra_spec or {}),
        },
    }
    return json.dumps(doc)


def test_api_resources(kubectl: Kubectl) -> None:
    out = kubectl("api-resources").stdout
    for line in (
        "pods",
        "po",
        "deployments",
        "deploy",
        "apps/v1",
        "services",
        "svc",
        "nodes",
        "namespaces",
        "configmaps",
        "secrets",
        "events",
        "serviceaccounts",
        "replicasets",
        "daemonsets",
        "statefulsets",
        "jobs",
        "cronjobs",
        "leases",
        "endpointslices",
        "endpoints",
    ):
        assert line in out, line
    assert "batch/v1" in out and "coordination.k8s.io/v1" in out and "discovery.k8s.io/v1" in out


def test_version_reports_minor_32(kubectl: Kubectl) -> None:
    out = kubectl("version", "-o", "json").stdout
    assert json.loads(out)["serverVersion"]["minor"] == "32"


def test_apply_create_then_update(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=namespace("apply1"))
    out = kubectl("apply", "-f", "-", input=deployment("apply1")).stdout
    assert "deployment.apps/web created" in out
    again = kubectl("apply", "-f", "-", input=deployment("apply1")).stdout
    assert "deployment.apps/web unchanged" in again
    # changed image, one env var removed, one container removed
    out = kubectl(
        "apply", "-f", "-", input=deployment("apply1", image="localhost/busybox:v2", env="one", sidecar=False)
    ).stdout
    assert "deployment.apps/web configured" in out
    obj = json.loads(kubectl("get", "deploy", "web", "-n", "apply1", "-o", "json").stdout)
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web"]
    assert containers[0]["image"] == "localhost/busybox:v2"
    assert containers[0]["env"] == [{"name": "GREETING", "value": "hello"}]
    assert obj["metadata"]["generation"] == 2
    # server defaults are present and did not cause diffs
    assert obj["spec"]["strategy"]["type"] == "RollingUpdate"
    assert containers[0]["ports"][0]["protocol"] == "TCP"


def test_apply_server_side_and_field_removal(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=namespace("ssa1"))
    out = kubectl("apply", "--server-side", "-f", "-", input=deployment("ssa1")).stdout
    assert "deployment.apps/web serverside-applied" in out
    kubectl("apply", "--server-side", "-f", "-", input=deployment("ssa1", env=False, sidecar=False))
    obj = json.loads(kubectl("get", "deploy", "web", "-n", "ssa1", "-o", "json").stdout)
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web"]
    assert "env" not in containers[0]


def test_get_tables(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=namespace("get1"))
    kubectl("apply", "-f", "-", input=deployment("get1"))
    kubectl("run", "solo", "-n", "get1", "--image=localhost/busybox:latest", "--", "sleep", "3600")
    kubectl(
        "apply",
        "-f",
        "-",
        input="apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: get1}\n"
        "spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n",
    )
    pods = kubectl("get", "pods", "-n", "get1").stdout
    assert pods.split("\n")[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert "solo" in pods and "0/1" in pods and "Pending" in pods
    wide = kubectl("get", "pods", "-n", "get1", "-o", "wide").stdout
    assert "NOMINATED NODE" in wide and "READINESS GATES" in wide
    deploy = kubectl("get", "deploy", "-n", "get1").stdout
    assert deploy.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert "0/2" in deploy
    svc = kubectl("get", "svc", "-n", "get1").stdout
    assert "ClusterIP" in svc and "80/TCP" in svc
    every = kubectl("get", "pods", "-A").stdout
    assert every.split("\n")[0].split()[0] == "NAMESPACE" and "get1" in every
    nodes = kubectl("get", "nodes")
    assert nodes.returncode == 0
    events = kubectl("get", "events", "-A")
    assert events.returncode == 0


def test_get_watch_streams_changes(kubectl: Kubectl, live_cluster: LiveCluster, kubectl_bin: str) -> None:
    kubectl("apply", "-f", "-", input=namespace("watch1"))
    proc = subprocess.Popen([kubectl_bin, "get", "configmaps", "-n", "watch1", "-w"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=live_cluster.kubectl_env())
    try:
        time.sleep(1.0)
        for name in ("c1", "c2"):
            kubectl(
                "apply",
                "-f",
                "-",
                input=f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: watch1}}\n",
            )
        time.sleep(1.0)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    lines = [line.split() for line in out.strip().split("\n") if line.strip()]
    names = [line[0] for line in lines]
    assert "c1" in names and "c2" in names
    assert names.count("NAME") <= 1


def test_describe_and_events(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=namespace("desc1"))
    kubectl("run", "solo", "-n", "desc1", "--image=localhost/busybox:latest", "--", "sleep", "3600")
    out = kubectl("describe", "pod", "solo", "-n", "desc1").stdout
    assert "Name:" in out and "solo" in out and "Namespace:" in out and "desc1" in out
    assert "Containers:" in out and "localhost/busybox:latest" in out
    assert "QoS Class:" in out and "BestEffort" in out


def test_scale_and_delete(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=namespace("scale1"))
    kubectl("apply", "-f", "-", input=deployment("scale1"))
    out = kubectl("scale", "deploy", "web", "-n", "scale1", "--replicas=5").stdout
    assert "deployment.apps/web scaled" in out
    obj = json.loads(kubectl("get", "deploy", "web", "-n", "scale1", "-o", "json").stdout)
    assert obj["spec"]["replicas"] == 5
    assert obj["metadata"]["generation"] == 2
    out = kubectl("delete", "deploy", "web", "-n", "scale1").stdout
    assert 'deployment.apps "web" deleted' in out
    missing = kubectl("get", "deploy", "web", "-n", "scale1", check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): deployments.apps "web" not found' in missing.stderr


def test_errors_are_kubernetes_errors(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=namespace("err1"))
    bad_field = deployment("err1", extra_spec={"replicaz": 3})
    proc = kubectl("apply", "-f", "-", input=bad_field, check=False)
    assert proc.returncode == 1
    assert 'unknown field "spec.replicaz"' in proc.stderr
    no_image = deployment("err1", drop_image=True)
    proc = kubectl("apply", "-f", "-", input=no_image, check=False)
    assert proc.returncode == 1
    assert "spec.template.spec.containers[0].image: Required value" in proc.stderr
    proc = kubectl("get", "pods", "nope", "-n", "err1", check=False)
    assert 'pods "nope" not found' in proc.stderr


def test_patch_cannot_change_a_pod_s_kind(kubectl: Kubectl) -> None:
    """`kubectl patch --type=merge` with another apiVersion/kind is refused as kube refuses it, and
    the pod stays a pod."""
    kubectl("create", "namespace", "kp1")
    kubectl("run", "kp", "-n", "kp1", "--image=localhost/busybox:latest", "--restart=Never")
    proc = kubectl("patch", "pod", "kp", "-n", "kp1", "--type=merge", "-p",
                   '{"apiVersion":"v9","kind":"Secret"}', check=False)
    assert proc.returncode == 1
    assert 'no kind \\"Secret\\" is registered for version \\"v9\\"' in proc.stderr or \
        'no kind "Secret" is registered for version "v9"' in proc.stderr, proc.stderr
    assert json.loads(kubectl("get", "pod", "kp", "-n", "kp1", "-o", "json").stdout)["kind"] == "Pod"
    proc = kubectl("patch", "pod", "kp", "-n", "kp1", "--type=json", "-p",
                   '[{"op":"replace","path":"","value":[]}]', check=False)
    assert proc.returncode == 1 and "is invalid" in proc.stderr, proc.stderr
