"""kubectl 1.32 against simulated nodes that behave like kwok's, with nothing scripted by the test.

Public-style manifests (a microservices-demo-like shop: Deployments and Services with gRPC, httpGet
and tcpSocket probes, real registry image names, an init container waiting in a shell loop), a
Deployment with an httpGet readiness probe rolling out, back and off a drained node, an init
container and the classic `pi` Job completing, `kubectl get pods` ages and restarts in seconds,
and — with `orchestra up` as a subprocess on a durable state dir — a restart (SIGTERM, then
SIGKILL) that keeps every simulated pod's uid, IP, container and restart count.
The in-process cluster is `run_cluster` with 3 simulated nodes, the fast node-lifecycle timings,
no Podman and no network, in a thread (tests/conftest.py's ClusterThread).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time  # wall-clock: kubectl and orchestra up are real processes
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ClusterThread, LiveCluster
from tests.etcdserver import session_store

pytestmark = pytest.mark.kubectl

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
Obj = dict[str, Any]
REGISTRY = "us-central1-docker.pkg.dev/google-samples/microservices-demo"


def service(name: str, port: int, target: int) -> str:
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: tcp, port: {port}, targetPort: {target}}}]
"""


def deployment(name: str, image: str, port: int, probes: str, extra: str = "", replicas: int = 1) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 5
{extra}
      containers:
      - name: server
        image: {image}
        ports: [{{name: http, containerPort: {port}}}]
        resources: {{requests: {{cpu: 100m, memory: 64Mi}}, limits: {{cpu: 200m, memory: 128Mi}}}}
{probes}
"""


HTTP_PROBES = """        readinessProbe:
          httpGet: {path: /_healthz, port: 8080, httpHeaders: [{name: Cookie, value: x}]}
        livenessProbe: {httpGet: {path: /_healthz, port: http}, initialDelaySeconds: 10}"""
GRPC_PROBES = """        readinessProbe: {grpc: {port: %d}, initialDelaySeconds: 2}
        livenessProbe: {grpc: {port: %d}, initialDelaySeconds: 2, periodSeconds: 10}"""
TCP_PROBES = """        readinessProbe: {tcpSocket: {port: %d}, periodSeconds: 5}
        livenessProbe: {tcpSocket: {port: %d}, periodSeconds: 5}"""
WAIT_FOR_FRONTEND = """      initContainers:
      - name: frontend-check
        image: busybox:latest
        command:
        - /bin/sh
        - -exc
        - until wget --spider -q http://frontend:80/_healthz; do sleep 2; done"""

SHOP = "---".join([
    deployment("frontend", f"{REGISTRY}/frontend:v0.10.1", 8080, HTTP_PROBES, replicas=2),
    service("frontend", 80, 8080),
    deployment("cartservice", f"{REGISTRY}/cartservice:v0.10.1", 7070, GRPC_PROBES % (7070, 7070)),
    service("cartservice", 7070, 7070),
    deployment("productcatalogservice", f"{REGISTRY}/productcatalogservice:v0.10.1", 3550,
               GRPC_PROBES % (3550, 3550)),
    service("productcatalogservice", 3550, 3550),
    deployment("redis-cart", "redis:alpine", 6379, TCP_PROBES % (6379, 6379)),
    service("redis-cart", 6379, 6379),
    deployment("loadgenerator", f"{REGISTRY}/loadgenerator:v0.10.1", 8089, "", WAIT_FOR_FRONTEND),
])

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: IMAGE
        ports: [{containerPort: 80}]
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
"""

INIT_AND_JOB = """
apiVersion: v1
kind: Pod
metadata: {name: with-init}
spec:
  initContainers:
  - name: wait-db
    image: busybox
    command: ["sh", "-c", "until nslookup db; do echo waiting; sleep 2; done"]
  - {name: migrate, image: busybox, command: ["sh", "-c", "echo migrating; sleep 1"]}
  containers:
  - {name: app, image: nginx:1.27}
---
apiVersion: batch/v1
kind: Job
metadata: {name: pi}
spec:
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: pi, image: perl:5.34.0, command: ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]}
  backoffLimit: 4
---
apiVersion: batch/v1
kind: Job
metadata: {name: with-sidecar}
spec:
  template:
    spec:
      restartPolicy: Never
      initContainers:
      - {name: log-shipper, image: fluent/fluent-bit:3.1, restartPolicy: Always}
      containers:
      - {name: report, image: busybox, command: ["sh", "-c", "echo report > /var/log/report; sleep 3"]}
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    from orchestra.app import ClusterConfig

    state = tmp_path_factory.mktemp("sim-state")
    home = tmp_path_factory.mktemp("sim-home")
    config = ClusterConfig(state_dir=state, listen_port=0, store=session_store(), podman=False,
                           network=False, simulate_nodes=3, timings="fast")
    runner = ClusterThread(config)
    cluster: Any = runner.start()
    yield LiveCluster(cluster.url, cluster.token, cluster.kubeconfig, state, home, cluster.ca_cert)
    runner.stop()


def make_kubectl(kubectl_bin: str, env: dict[str, str]) -> Kubectl:
    def run(*args: str, input: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([kubectl_bin, *args], input=input, capture_output=True, text=True, env=env,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="module")
def kubectl(sim: LiveCluster, kubectl_bin: str) -> Kubectl:
    return make_kubectl(kubectl_bin, sim.kubectl_env())


def get_json(kubectl: Kubectl, *args: str) -> Obj:
    out: Obj = json.loads(kubectl("get", *args, "-o", "json").stdout)
    return out


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)
    return result


def ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def live(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def test_a_microservices_shop_becomes_available(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "shop")
    kubectl("apply", "-n", "shop", "-f", "-", input=SHOP)
    out = kubectl("wait", "-n", "shop", "--for=condition=Available", "deployment", "--all",
                  "--timeout=90s").stdout
    assert out.count("condition met") == 5, out
    pods = get_json(kubectl, "pods", "-n", "shop")["items"]
    assert len(pods) == 6 and all(ready(p) for p in pods)
    nodes = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in get_json(kubectl, "nodes")["items"]}
    for pod in pods:  # each pod's IP is in its node's own pod CIDR, none in Podman's 10.88.0.0/16
        ip = ipaddress.ip_address(pod["status"]["podIP"])
        own = ipaddress.ip_network(nodes[pod["spec"]["nodeName"]])
        assert ip in own, (pod["metadata"]["name"], ip, nodes)
    assert len({p["status"]["podIP"] for p in pods}) == 6
    loadgen = next(p for p in pods if p["metadata"]["name"].startswith("loadgenerator"))
    (init,) = loadgen["status"]["initContainerStatuses"]
    assert init["state"]["terminated"]["reason"] == "Completed"
    endpoints = get_json(kubectl, "endpointslices", "-n", "shop", "-l", "kubernetes.io/service-name=frontend")
    addresses = [a for s in endpoints["items"] for e in s["endpoints"] if e["conditions"]["ready"]
                 for a in e["addresses"]]
    assert len(addresses) == 2


def test_http_readiness_rollout_undo_and_drain(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "web")
    kubectl("apply", "-n", "web", "-f", "-", input=WEB.replace("IMAGE", "nginx:1.26"))
    kubectl("rollout", "status", "deploy/web", "-n", "web", "--timeout=60s")
    kubectl("set", "image", "deploy/web", "nginx=nginx:1.27", "-n", "web")
    kubectl("rollout", "status", "deploy/web", "-n", "web", "--timeout=60s")
    assert "rolled back" in kubectl("rollout", "undo", "deploy/web", "-n", "web").stdout
    kubectl("rollout", "status", "deploy/web", "-n", "web", "--timeout=60s")

    def images() -> set[str]:
        pods = live(get_json(kubectl, "pods", "-n", "web")["items"])
        return {p["spec"]["containers"][0]["image"] for p in pods}

    wait_for("only nginx:1.26 pods", lambda: images() == {"nginx:1.26"})
    pods = live(get_json(kubectl, "pods", "-n", "web")["items"])
    node = pods[0]["spec"]["nodeName"]
    try:
        out = kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=60s").stdout
        assert f"node/{node} drained" in out
        kubectl("rollout", "status", "deploy/web", "-n", "web", "--timeout=60s")

        def moved() -> bool:
            now = live(get_json(kubectl, "pods", "-n", "web")["items"])
            return len(now) == 6 and all(ready(p) and p["spec"]["nodeName"] != node for p in now)

        wait_for(f"6 ready pods off {node}", moved)
    finally:
        kubectl("uncordon", node)


def test_init_containers_and_a_job_complete(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "batch")
    kubectl("apply", "-n", "batch", "-f", "-", input=INIT_AND_JOB)
    kubectl("wait", "-n", "batch", "--for=condition=Ready", "pod/with-init", "--timeout=60s")
    kubectl("wait", "-n", "batch", "--for=condition=complete", "job/pi", "job/with-sidecar", "--timeout=60s")
    pod = get_json(kubectl, "pod/with-init", "-n", "batch")
    reasons = [s["state"]["terminated"]["reason"] for s in pod["status"]["initContainerStatuses"]]
    assert reasons == ["Completed"] * 2
    assert "migrating" in kubectl("logs", "with-init", "-c", "migrate", "-n", "batch").stdout
    job = get_json(kubectl, "job/pi", "-n", "batch")
    assert job["status"]["succeeded"] == 2
    assert "2/2" in kubectl("get", "job", "pi", "-n", "batch").stdout
    (pod,) = get_json(kubectl, "pods", "-n", "batch", "-l", "job-name=with-sidecar")["items"]
    (sidecar,) = pod["status"]["initContainerStatuses"]
    assert sidecar["state"]["terminated"]["exitCode"] == 143  # stopped once the Job's container finished


def test_ages_and_restarts_are_in_seconds(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "ages")
    kubectl("run", "crasher", "-n", "ages", "--image=busybox", "--", "sh", "-c", "sleep 2; exit 1")
    kubectl("run", "steady", "-n", "ages", "--image=busybox", "--", "sleep", "3600")
    def restarts() -> int:
        statuses = get_json(kubectl, "pod/crasher", "-n", "ages")["status"].get("containerStatuses") or [{}]
        return int(statuses[0].get("restartCount", 0))

    wait_for("a restart", lambda: restarts() >= 1, timeout=60)
    lines = kubectl("get", "pods", "-n", "ages").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    crasher = re.fullmatch(r"crasher\s+\S+\s+\S+\s+(\d+) \((\d+)s ago\)\s+(\d+)s", rows["crasher"])
    assert crasher is not None, rows["crasher"]
    assert int(crasher.group(2)) < 30 and int(crasher.group(3)) < 60
    assert re.fullmatch(r"steady\s+1/1\s+Running\s+0\s+\d{1,2}s", rows["steady"]), rows["steady"]
    pod = get_json(kubectl, "pod/steady", "-n", "ages")
    started = pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    assert started >= pod["metadata"]["creationTimestamp"]  # wall-clock times, as the API server's


def test_exec_answers_by_the_rules(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "exec")
    kubectl("run", "db", "-n", "exec", "--image=postgres:16", "--env=PGDATA=/data",
            "--annotations=sim.orchestra.io/exec="
            "{\"pg_isready\": {\"exitCode\": 2, \"stdout\": \"no response\\n\"}}")
    kubectl("wait", "-n", "exec", "--for=condition=Ready", "pod/db", "--timeout=60s")
    out = kubectl("exec", "db", "-n", "exec", "--", "sh", "-c", "echo $PGDATA; exit 3", check=False)
    assert (out.returncode, out.stdout) == (3, "/data\n")
    out = kubectl("exec", "db", "-n", "exec", "--", "psql", "-c", "select 1", check=False)
    assert (out.returncode, out.stdout) == (0, "")  # an unknown program exits 0 with no output
    out = kubectl("exec", "db", "-n", "exec", "--", "pg_isready", check=False)
    assert (out.returncode, out.stdout) == (2, "no response\n")  # scripted by the annotation
    out = kubectl("exec", "-i", "db", "-n", "exec", "--", "sh", input="hostname\nexit 4\n", check=False)
    assert (out.returncode, out.stdout) == (4, "db\n")  # a shell reading stdin


# --- a restart of `orchestra up` ------------------------------------------------------------------------


def _up(state: Path) -> subprocess.Popen[bytes]:
    with (state.parent / "up.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "orchestra", "up", "--state-dir", str(state),
                                 "--listen", "127.0.0.1:0", "--no-dashboard", "--no-podman", "--no-network",
                                 "--simulate-nodes", "3", "--timings", "fast"], stdout=log, stderr=log)


def _log(state: Path) -> str:
    return (state.parent / "up.log").read_text(errors="replace")


def _stop(proc: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    proc.send_signal(signum)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"orchestra up did not exit within 30 s of {signum.name}") from None


RESTARTING = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: once-crashed}
spec:
  containers:
  - {name: c, image: busybox, command: ["sh", "-c", "sleep 1; exit 3"]}
  restartPolicy: OnFailure
"""


@pytest.mark.slow
def test_a_restart_of_up_keeps_every_simulated_pod(tmp_path: Path, kubectl_bin: str) -> None:
    state = tmp_path / "state"
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "KUBECONFIG": str(state / "kubeconfig"), "HOME": str(home)}
    kubectl = make_kubectl(kubectl_bin, env)

    def ready_up() -> None:
        wait_for("orchestra up to be ready", lambda: _log(state).count("orchestra is ready") == starts,
                 timeout=90)

    def snapshot() -> dict[str, tuple[Any, ...]]:
        pods = get_json(kubectl, "pods")["items"]
        return {p["metadata"]["name"]: (p["metadata"]["uid"], p["status"].get("podIP"), p["spec"]["nodeName"],
                                        p["status"]["containerStatuses"][0].get("containerID"),
                                        p["status"]["containerStatuses"][0]["restartCount"]) for p in pods}

    starts = 1
    proc = _up(state)
    try:
        ready_up()
        kubectl("apply", "-f", "-", input=RESTARTING)
        kubectl("rollout", "status", "deploy/web", "--timeout=60s")
        wait_for("the crasher restarted twice", lambda: snapshot()["once-crashed"][4] >= 2, timeout=60)
        for signum in (signal.SIGTERM, signal.SIGKILL):
            before = snapshot()
            cluster_cidr = ipaddress.ip_network("10.244.0.0/16")
            assert len(before) == 5 and all(ip and ipaddress.ip_address(ip) in cluster_cidr
                                            for _, ip, *_ in before.values())
            _stop(proc, signum)
            starts += 1
            proc = _up(state)
            ready_up()
            kubectl("rollout", "status", "deploy/web", "--timeout=60s")
            after = snapshot()
            for name, (uid, ip, node, container, restarts) in before.items():
                assert after[name][:3] == (uid, ip, node), (signum.name, name, before, after, _log(state))
                if name != "once-crashed":  # the crasher may have crashed again meanwhile
                    assert after[name][3:] == (container, restarts), (signum.name, name, before, after)
                else:
                    assert after[name][4] >= restarts
            assert "Traceback" not in _log(state), _log(state)
    finally:
        if proc.poll() is None:
            _stop(proc, signal.SIGTERM)
