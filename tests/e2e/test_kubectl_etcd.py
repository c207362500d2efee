"""kubectl 1.32 against `orchestra up --store etcd://...` (CI runs this on every run; the rest of the
kubectl suites run on the memory store unless ORCHESTRA_TEST_STORE=etcd).

One throwaway etcd of the module's own (tests/etcdserver.py: the compaction test compacts it, and
compaction is etcd-wide) and ONE `orchestra up` subprocess over it (tests/e2e/upserver.py: Podman
pods, `--no-network`, its own state directory and port), which the last test stops and starts again
on the same etcd and state directory. The tests run in file order and build on each other: the
first applies the app (Deployment + Service + ConfigMap + Secret from one YAML), the last checks that
everything made since is still there after the restart and that the pods were adopted, not re-made.
Teardown removes the Podman pods labelled with this cluster's id, then etcd.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time  # wall-clock: kubectl, orchestra and etcd are real processes
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from tests.conftest import KUBECTL
from tests.e2e.upserver import UpServer, orchestra_up, remove_cluster_containers
from tests.etcdserver import EtcdServer, etcd_missing

pytestmark = [pytest.mark.podman, pytest.mark.kubectl, pytest.mark.slow,
              pytest.mark.skipif(etcd_missing() is not None, reason=etcd_missing() or "")]

NS = "etcd-e2e"
LABEL_CLUSTER = "orchestra.io/cluster"
Obj = dict[str, Any]

APP = f"""\
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: web-config, namespace: {NS}, labels: {{app: web}}}}
data: {{greeting: hello from etcd}}
---
apiVersion: v1
kind: Secret
metadata: {{name: web-secret, namespace: {NS}}}
stringData: {{password: s3cret}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {NS}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {NS}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: localhost/busybox:latest
        imagePullPolicy: IfNotPresent
        command:
        - sh
        - -c
        - 'echo "started: $GREETING"; mkdir -p /www; echo ok > /www/index.html; exec httpd -f -p 8080 -h /www'
        env:
        - name: GREETING
          valueFrom: {{configMapKeyRef: {{name: web-config, key: greeting}}}}
        ports: [{{containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}
        volumeMounts: [{{name: secret, mountPath: /etc/secret}}]
      volumes:
      - name: secret
        secret: {{secretName: web-secret}}
"""

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.etcd.example.com}
spec:
  group: etcd.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
"""


@attrs.define
class Cluster:
    """The module's etcd and the `orchestra up` over it (replaced by the restart test)."""

    etcd: EtcdServer
    state: Path
    home: Path
    server: UpServer
    stack: ExitStack
    cluster_id: str = ""

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.server.kubeconfig), "HOME": str(self.home)}

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True,
                              env=self.env(), timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def json(self, *args: str) -> Obj:
        return dict(json.loads(self.kubectl(*args, "-o", "json").stdout))

    def names(self, *args: str) -> list[str]:
        out = self.kubectl("get", *args, "-o", "name").stdout
        return sorted(line.split("/", 1)[1] for line in out.split())

    def etcdctl(self, *args: str) -> str:
        return subprocess.run(["etcdctl", "--endpoints", self.etcd.endpoint, *args], check=True,
                              capture_output=True, text=True, env=dict(os.environ, ETCDCTL_API="3")).stdout

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CONTAINERS_CONF": str(self.state / "podman" / "containers.conf")}
        proc = subprocess.run(["podman", *args], capture_output=True, text=True, env=env, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def sandboxes(self) -> dict[str, str]:
        """This cluster's Podman pods: id -> status."""
        out = self.podman("pod", "ps", "--filter", f"label={LABEL_CLUSTER}={self.cluster_id}",
                          "--format", "json").stdout
        return {p["Id"]: p["Status"] for p in json.loads(out or "[]")}

    def start(self) -> None:
        self.server = self.stack.enter_context(
            orchestra_up(self.state, podman=True, store=("--store", self.etcd.url)))
        uid = self.json("get", "namespace", "kube-system")["metadata"]["uid"]
        assert not self.cluster_id or uid == self.cluster_id  # the same cluster, kept in etcd
        self.cluster_id = uid

    def remove_pods(self) -> None:
        remove_cluster_containers(self.state, self.cluster_id)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if os.environ.get("ORCHESTRA_NO_PODMAN") == "1":
        pytest.skip("ORCHESTRA_NO_PODMAN=1")
    if not os.access(KUBECTL, os.X_OK):
        pytest.fail(f"kubectl 1.32 is required for these tests ({KUBECTL})")
    if not shutil.which("etcdctl"):
        pytest.fail("etcdctl is required for these tests (Debian's etcd-client; ./dev installs it)")
    etcd = EtcdServer().start()
    c: Cluster | None = None
    try:
        with ExitStack() as stack:
            c = Cluster(etcd, tmp_path_factory.mktemp("etcd-state"), tmp_path_factory.mktemp("etcd-home"),
                        None, stack)  # type: ignore[arg-type]
            c.start()
            yield c
    finally:
        if c is not None:
            c.remove_pods()
        etcd.remove()


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.2)


def web_pods(c: Cluster) -> dict[str, str]:
    """The web pods that are not terminating: name -> container id."""
    items = c.json("get", "pods", "-n", NS, "-l", "app=web")["items"]
    return {p["metadata"]["name"]: p["status"]["containerStatuses"][0].get("containerID", "")
            for p in items if not p["metadata"].get("deletionTimestamp")}


# ------------------------------------------------------------------------------------------ tests


def test_apply_app_from_yaml_and_rollout(cluster: Cluster) -> None:
    out = cluster.kubectl("apply", "-f", "-", input=APP).stdout
    for line in (f"namespace/{NS} created", "configmap/web-config created", "secret/web-secret created",
                 "service/web created", "deployment.apps/web created"):
        assert line in out, out
    cluster.kubectl("rollout", "status", "deployment/web", "-n", NS, "--timeout=90s", timeout=100)
    assert len(web_pods(cluster)) == 2
    assert list(cluster.sandboxes().values()) == ["Running", "Running"]
    # etcd holds them under kube-apiserver's keys, and the resourceVersion is etcd's mod revision
    key = f"/registry/configmaps/{NS}/web-config"
    [kv] = json.loads(cluster.etcdctl("get", key, "-w", "json"))["kvs"]
    for prefix, names in ((f"/registry/services/specs/{NS}/", ["web"]),
                          (f"/registry/deployments/{NS}/", ["web"]),
                          (f"/registry/pods/{NS}/", list(web_pods(cluster)))):
        keys = cluster.etcdctl("get", "--prefix", "--keys-only", prefix).split()
        assert {prefix + name for name in names} <= set(keys), (prefix, keys)
    assert str(kv["mod_revision"]) == cluster.json("get", "cm", "web-config", "-n", NS)["metadata"][
        "resourceVersion"]
    svc = cluster.json("get", "svc", "web", "-n", NS)
    assert svc["spec"]["clusterIP"] and svc["spec"]["ports"][0]["targetPort"] == 8080


def test_logs_and_exec_in_a_real_pod(cluster: Cluster) -> None:
    logs = cluster.kubectl("logs", "deployment/web", "-n", NS).stdout
    assert logs.startswith("started: hello from etcd\n"), logs
    out = cluster.kubectl("exec", "deployment/web", "-n", NS, "--",
                          "sh", "-c", 'echo "$GREETING"; cat /etc/secret/password').stdout
    assert out == "hello from etcd\ns3cret"
    failed = cluster.kubectl("exec", "deployment/web", "-n", NS, "--", "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3


def test_get_watch_receives_events(cluster: Cluster) -> None:
    proc = subprocess.Popen([KUBECTL, "get", "configmaps", "-n", NS, "-l", "watched=yes", "-w",
                             "--output-watch-events", "-o", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env())
    try:
        time.sleep(1.5)  # the initial (empty) list, then the watch from its resourceVersion
        cluster.kubectl("create", "configmap", "w1", "-n", NS, "--from-literal=v=1")
        cluster.kubectl("label", "configmap", "w1", "-n", NS, "watched=yes")
        cluster.kubectl("patch", "configmap", "w1", "-n", NS, "--type=merge", "-p", '{"data":{"v":"2"}}')
        cluster.kubectl("delete", "configmap", "w1", "-n", NS)
        time.sleep(1.5)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    events, decoder, at = [], json.JSONDecoder(), 0
    while out[at:].strip():  # one JSON WatchEvent after another
        event, at = decoder.raw_decode(out, len(out) - len(out[at:].lstrip()))
        events.append((event["type"], event["object"]["metadata"]["name"], event["object"]["data"]["v"]))
    assert events == [("ADDED", "w1", "1"), ("MODIFIED", "w1", "2"), ("DELETED", "w1", "2")], out + err


def test_label_and_field_selectors_and_chunked_lists(cluster: Cluster) -> None:
    items = [{"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": f"page-{i}", "namespace": NS, "labels": {"tier": "a" if i % 2 else "b"}},
              "data": {"i": str(i)}} for i in range(7)]
    cluster.kubectl("apply", "-f", "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    assert cluster.names("cm", "-n", NS, "-l", "tier=a") == ["page-1", "page-3", "page-5"]
    assert cluster.names("cm", "-n", NS, "-l", "tier in (a,b),tier!=a") == [f"page-{i}" for i in (0, 2, 4, 6)]
    assert cluster.names("cm", "-n", NS, "--field-selector", "metadata.name=page-4") == ["page-4"]
    running = cluster.names("pods", "-n", NS, "-l", "app=web", "--field-selector", "status.phase=Running")
    assert running == sorted(web_pods(cluster))
    assert cluster.names("pods", "-n", NS, "--field-selector", "status.phase=Failed") == []
    bad = cluster.kubectl("get", "pods", "-n", NS, "--field-selector", "spec.bogus=x", check=False)
    assert bad.returncode == 1 and "field label not supported: spec.bogus" in bad.stderr, bad.stderr
    # --chunk-size: LIST pages of 2 chained by continue tokens (a page at etcd's revision of the first)
    chunked = cluster.kubectl("get", "cm", "-n", NS, "-l", "tier", "--chunk-size=2", "-o", "name", "-v=6")
    assert sorted(chunked.stdout.split()) == [f"configmap/page-{i}" for i in range(7)]
    requests = [line for line in chunked.stderr.splitlines() if "/configmaps?" in line and " 200 " in line]
    assert len(requests) == 4 and all("limit=2" in r for r in requests), chunked.stderr
    assert sum("continue=" in r for r in requests) == 3, chunked.stderr


def test_scale_set_image_and_rollout_undo(cluster: Cluster) -> None:
    assert "deployment.apps/web scaled" in cluster.kubectl("scale", "deployment/web", "-n", NS,
                                                            "--replicas=3").stdout
    cluster.kubectl("rollout", "status", "deployment/web", "-n", NS, "--timeout=60s", timeout=70)
    assert len(web_pods(cluster)) == 3
    before = web_pods(cluster)
    cluster.kubectl("set", "image", "deployment/web", "-n", NS, "web=localhost/busybox:no-such-tag")

    def stuck() -> bool:  # the new ReplicaSet's pod cannot pull its image; the old pods stay
        pods = cluster.json("get", "pods", "-n", NS, "-l", "app=web")["items"]
        return any(p["spec"]["containers"][0]["image"].endswith("no-such-tag") and
                   (p["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("waiting", {}).get(
                       "reason") in ("ErrImagePull", "ImagePullBackOff") for p in pods)

    wait_for(stuck, 30, "a pod of the new revision failing to pull its image")
    history = cluster.kubectl("rollout", "history", "deployment/web", "-n", NS).stdout
    assert "1 " in history and "2 " in history, history
    assert "deployment.apps/web rolled back" in cluster.kubectl("rollout", "undo", "deployment/web",
                                                                "-n", NS).stdout
    cluster.kubectl("rollout", "status", "deployment/web", "-n", NS, "--timeout=60s", timeout=70)
    deploy = cluster.json("get", "deployment", "web", "-n", NS)
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "localhost/busybox:latest"
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    wait_for(lambda: web_pods(cluster) == before, 30, "only the first revision's pods left")


def test_server_side_apply_conflict(cluster: Cluster) -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: ssa, namespace: {ns}}}\ndata: {{owner: {v}}}\n"
    cluster.kubectl("apply", "--server-side", "--field-manager=alice", "-f", "-",
                    input=doc.format(ns=NS, v="a"))
    clash = cluster.kubectl("apply", "--server-side", "--field-manager=bob", "-f", "-",
                            input=doc.format(ns=NS, v="b"), check=False)
    assert clash.returncode == 1
    assert "Apply failed with 1 conflict" in clash.stderr, clash.stderr
    assert 'conflict with "alice"' in clash.stderr and ".data.owner" in clash.stderr, clash.stderr
    cluster.kubectl("apply", "--server-side", "--field-manager=bob", "--force-conflicts", "-f", "-",
                    input=doc.format(ns=NS, v="b"))
    cm = cluster.json("get", "cm", "ssa", "-n", NS, "--show-managed-fields")
    assert cm["data"] == {"owner": "b"}
    assert [m["manager"] for m in cm["metadata"]["managedFields"]] == ["bob"]


def test_patch_strategic_merge_and_json(cluster: Cluster) -> None:
    extra_port = '{"spec":{"ports":[{"name":"admin","port":9090,"targetPort":8080}]}}'
    cluster.kubectl("patch", "service", "web", "-n", NS, "-p", extra_port)  # strategic: merged by port
    svc = cluster.json("get", "svc", "web", "-n", NS)
    assert sorted(p["port"] for p in svc["spec"]["ports"]) == [80, 9090]
    cluster.kubectl("patch", "service", "web", "-n", NS, "--type=merge",
                    "-p", '{"spec":{"ports":[{"name":"http","port":80,"targetPort":8080}]}}')  # whole list
    assert [p["port"] for p in cluster.json("get", "svc", "web", "-n", NS)["spec"]["ports"]] == [80]
    cluster.kubectl("patch", "configmap", "web-config", "-n", NS, "--type=json", "-p",
                    '[{"op":"add","path":"/data/extra","value":"x"},{"op":"test","path":"/data/greeting",'
                    '"value":"hello from etcd"}]')
    assert cluster.json("get", "cm", "web-config", "-n", NS)["data"] == {"greeting": "hello from etcd",
                                                                         "extra": "x"}
    failed = cluster.kubectl("patch", "configmap", "web-config", "-n", NS, "--type=json", "-p",
                             '[{"op":"test","path":"/data/extra","value":"y"}]', check=False)
    assert failed.returncode == 1 and "test operation" in failed.stderr.lower(), failed.stderr


def test_crd_and_custom_resource(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=CRD)
    cluster.kubectl("wait", "--for=condition=Established", "crd/widgets.etcd.example.com", "--timeout=30s")
    widget = f"apiVersion: etcd.example.com/v1\nkind: Widget\nmetadata: {{name: w1, namespace: {NS}}}\n"
    cluster.kubectl("apply", "-f", "-", input=widget + "spec: {size: 3}\n")
    table = cluster.kubectl("get", "widgets", "-n", NS).stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE"] and table[1].split()[:2] == ["w1", "3"], table
    bad = cluster.kubectl("apply", "-f", "-", input=widget.replace("w1", "w2") + "spec: {size: 0}\n",
                          check=False)
    assert bad.returncode == 1 and "spec.size" in bad.stderr, bad.stderr
    assert cluster.etcdctl("get", "/registry/etcd.example.com/widgets/" + NS + "/w1", "--keys-only").strip()


def test_delete_cascade_foreground_and_orphan(cluster: Cluster) -> None:
    for name in ("fg", "orphan"):
        cluster.kubectl("create", "deployment", name, "-n", NS, "--image=localhost/busybox:latest",
                        "--replicas=0")
    owned = {name: wait_for(lambda name=name: cluster.names("rs", "-n", NS, "-l", f"app={name}"), 20,
                            f"the ReplicaSet of {name}") for name in ("fg", "orphan")}
    cluster.kubectl("delete", "deployment", "fg", "-n", NS, "--cascade=foreground", "--timeout=30s")
    assert cluster.names("deploy", "-n", NS, "-l", "app=fg") == []
    assert cluster.names("rs", "-n", NS, "-l", "app=fg") == []  # gone before its owner was
    cluster.kubectl("delete", "deployment", "orphan", "-n", NS, "--cascade=orphan")
    assert cluster.names("rs", "-n", NS, "-l", "app=orphan") == owned["orphan"]
    rs = cluster.json("get", "rs", owned["orphan"][0], "-n", NS)
    assert not rs["metadata"].get("ownerReferences")  # orphaned: no owner left on it
    cluster.kubectl("delete", "rs", owned["orphan"][0], "-n", NS)


def test_update_with_a_stale_resource_version_is_409(cluster: Cluster) -> None:
    stale = cluster.json("get", "cm", "web-config", "-n", NS)
    cluster.kubectl("patch", "configmap", "web-config", "-n", NS, "--type=merge", "-p", '{"data":{"n":"1"}}')
    stale["data"]["n"] = "2"
    proc = cluster.kubectl("replace", "-f", "-", input=json.dumps(stale), check=False)
    assert proc.returncode == 1
    assert "Error from server (Conflict)" in proc.stderr and "the object has been modified" in proc.stderr
    with cluster.server.http() as http:
        r = http.put(f"/api/v1/namespaces/{NS}/configmaps/web-config", json=stale)
    assert r.status_code == 409 and r.json()["reason"] == "Conflict", r.text
    assert cluster.json("get", "cm", "web-config", "-n", NS)["data"]["n"] == "1"


def test_watch_from_a_revision_etcd_compacted_is_410(cluster: Cluster) -> None:
    path = f"/api/v1/namespaces/{NS}/configmaps"
    old = cluster.json("get", "cm", "web-config", "-n", NS)["metadata"]["resourceVersion"]
    for i in range(3):
        cluster.kubectl("patch", "configmap", "web-config", "-n", NS, "--type=merge",
                        "-p", json.dumps({"data": {"n": str(10 + i)}}))
    with cluster.server.http() as http:
        watch = {"watch": "1", "resourceVersion": old, "timeoutSeconds": "1"}
        replayed = http.get(path, params=watch)  # before etcd is compacted: the history since `old`
        assert replayed.status_code == 200 and replayed.text.count('"MODIFIED"') >= 3, replayed.text
        now = http.get(path).json()["metadata"]["resourceVersion"]
        assert "compacted revision" in cluster.etcdctl("compact", now)

        def gone() -> httpx.Response | None:
            r = http.get(path, params=watch)
            return r if '"ERROR"' in r.text or r.status_code == 410 else None

        r = wait_for(gone, 20, "a watch from a compacted revision answered 410")
        if r.status_code == 200:  # kube's watch cache: the 410 is the stream's one ERROR event
            [line] = r.text.splitlines()
            event = json.loads(line)
            assert event["type"] == "ERROR", r.text
            status = event["object"]
        else:
            status = r.json()
        assert status["code"] == 410 and status["reason"] in ("Expired", "Gone"), status
        listed = http.get(path, params={"resourceVersion": old, "resourceVersionMatch": "Exact"})
        assert listed.status_code == 410, listed.text
        fresh = http.get(path, params={"watch": "1", "resourceVersion": now, "timeoutSeconds": "1"})
        assert fresh.status_code == 200 and '"ERROR"' not in fresh.text  # from etcd's compaction on: fine


def test_restart_keeps_objects_and_adopts_pods(cluster: Cluster) -> None:
    pods = web_pods(cluster)
    sandboxes = cluster.sandboxes()
    assert len(pods) == 3 and set(sandboxes.values()) == {"Running"}, sandboxes
    before = {kind: cluster.names(kind, "-n", NS) for kind in ("cm", "secret", "svc", "deploy", "widgets")}
    cm_rv = cluster.json("get", "cm", "web-config", "-n", NS)["metadata"]["resourceVersion"]
    cluster.stack.close()  # Ctrl-C: orchestra stops, etcd and the Podman pods keep running
    assert set(cluster.sandboxes().values()) == {"Running"}
    cluster.start()
    cluster.kubectl("rollout", "status", "deployment/web", "-n", NS, "--timeout=60s", timeout=70)
    assert {kind: cluster.names(kind, "-n", NS) for kind in before} == before
    assert cluster.json("get", "cm", "web-config", "-n", NS)["metadata"]["resourceVersion"] == cm_rv
    time.sleep(2)  # time for a wrong agent to replace or duplicate something
    assert web_pods(cluster) == pods  # the same pods with the same containers: adopted
    assert cluster.sandboxes() == sandboxes
    secret = cluster.kubectl("exec", "deployment/web", "-n", NS, "--", "cat", "/etc/secret/password").stdout
    assert secret == "s3cret"
    logs = cluster.server.log_text()
    assert "Traceback" not in logs, logs[-3000:]

