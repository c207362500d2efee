"""`orchestra explain pod` / `why`: the diagnosis as a pure function of scripted records, then the
command end to end against the live in-process server."""

from __future__ import annotations

import ssl
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from orchestra.cli.explain import explain_command, explain_pod, why_command
from tests.conftest import LiveCluster

Obj = dict[str, Any]
NOW = datetime(2025, 1, 1, 0, 10, tzinfo=UTC)


def make_pod(
    *, node: str | None = "node-1", status: Obj | None = None, probe: bool = False, **meta: Any
) -> Obj:
    container: Obj = {"name": "app", "image": "example/app:1"}
    if probe:
        container["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}}
    spec: Obj = {"containers": [container]}
    if node:
        spec["nodeName"] = node
    return {
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "u1",
            "creationTimestamp": "2025-01-01T00:00:00Z",
            **meta,
        },
        "spec": spec,
        "status": status or {"phase": "Pending"},
    }


def event(
    reason: str, message: str, *, type_: str = "Warning", count: int = 1, at: str = "2025-01-01T00:09:00Z"
) -> Obj:
    return {
        "reason": reason,
        "message": message,
        "type": type_,
        "count": count,
        "lastTimestamp": at,
        "firstTimestamp": "2025-01-01T00:00:00Z",
        "involvedObject": {"kind": "Pod", "name": "web", "uid": "u1"},
    }


def cs(state: Obj, *, ready: bool = False, restarts: int = 0, last: Obj | None = None) -> Obj:
    out = {
        "name": "app",
        "image": "example/app:1",
        "imageID": "",
        "ready": ready,
        "restartCount": restarts,
        "state": state,
    }
    if last:
        out["lastState"] = {"terminated": last}
    return out


UNSCHEDULABLE = {
    "phase": "Pending",
    "conditions": [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
            "3 No preemption victims found for incoming pod.",
        }
    ],
}
CRASH = {
    "phase": "Running",
    "containerStatuses": [
        cs(
            {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": "back-off 1m20s restarting failed container=app pod=web_shop(u1)",
                }
            },
            restarts=5,
            last={"exitCode": 1, "reason": "Error", "finishedAt": "2025-01-01T00:09:30Z"},
        )
    ],
}


@pytest.mark.parametrize(("pod", "events", "state", "must"), [
    (make_pod(node=None, status=UNSCHEDULABLE),
     [event("FailedScheduling", "0/3 nodes are available: 3 Insufficient cpu.", count=4)],
     "Unschedulable", ["no node can run it",
                       "The scheduler says: 0/3 nodes are available: 3 Insufficient cpu.",
                       "FailedScheduling, 4 times, last 60s ago", "Hint: lower the pod's resource requests"]),
    (make_pod(node=None),
     [event("FailedScheduling", "0/1 nodes are available: 1 node(s) had untolerated taint {a: b}.")],
     "Unschedulable", ["untolerated taint", "needs a toleration"]),
    (make_pod(node=None), [],
     "Pending", ["has not been scheduled yet (created 10m ago)", "Is 'default-scheduler' running?"]),
    (make_pod(node=None, status={"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
     [], "Pending", ["held by scheduling gates"]),
    (make_pod(status={"phase": "Pending", "containerStatuses": [cs({"waiting": {
        "reason": "ImagePullBackOff", "message": 'Back-off pulling image "example/app:1"'}})]}),
     [event("Failed", 'Failed to pull image "example/app:1": image not known')],
     "ImagePull", ["image 'example/app:1' cannot be pulled", "ImagePullBackOff", "image not known",
                   "growing back-off"]),
    (make_pod(status=CRASH), [event("BackOff", "Back-off restarting failed container app", count=9)],
     "CrashLoop", ["crash-looping", "restarted 5 times", "exit code 1 (Error)", "30s ago", "back-off 1m20s"]),
    (make_pod(status={"phase": "Running", "containerStatuses": [
        cs({"running": {}}, restarts=2, last={"exitCode": 137, "reason": "OOMKilled"})]}),
     [], "CrashLoop", ["exit code 137 (OOMKilled): it was killed for using more memory than its limit"]),
    (make_pod(probe=True, status={
        "phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [cs({"running": {"startedAt": "2025-01-01T00:00:00Z"}})]}),
     [event("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", count=12)],
     "NotReady", ["Running but not Ready", "readiness probe fails", "statuscode: 503", "12 times"]),
    (make_pod(status={"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                      "containerStatuses": [cs({"running": {}}, ready=True)]}),
     [], "OK", ["Running and Ready (1/1 containers) on node node-1: nothing is wrong"]),
    (make_pod(status={"phase": "Succeeded"}), [], "Succeeded", ["completed"]),
    (make_pod(status={"phase": "Failed", "reason": "Evicted",
                      "message": "The node was low on resource: memory.",
                      "containerStatuses": [cs({"terminated": {"exitCode": 137, "reason": "Error"}})]}),
     [], "Failed", ["has Failed", "Evicted: The node was low on resource: memory.", "exit code 137"]),
    (make_pod(deletionTimestamp="2025-01-01T00:09:50Z", deletionGracePeriodSeconds=30), [], "Terminating",
     ["being deleted (since 10s ago)", "grace period 30s"]),
], ids=["unschedulable", "taint-event-only", "not-scheduled-yet", "gated", "image-pull", "crash-loop",
        "oom-restarts", "readiness", "healthy", "succeeded", "failed", "terminating"])
def test_explain_pod(pod: Obj, events: list[Obj], state: str, must: list[str]) -> None:
    found = explain_pod(pod, events, now=NOW)
    text = "\n".join(found.lines())
    assert found.state == state, text
    for phrase in must:
        assert phrase in text, f"{phrase!r} missing from:\n{text}"


def test_crash_loop_asks_for_the_previous_log() -> None:
    found = explain_pod(make_pod(status=CRASH), [], now=NOW)
    assert found.wants_logs and found.previous_logs and found.container == "app"
    lines = found.lines("line 1\npanic: boom\n")
    assert lines[-2:] == ["    line 1", "    panic: boom"]
    assert "Last log lines (previous instance of container app):" in "\n".join(lines)
    assert "(no logs: pods/log needs a node agent)" in "\n".join(
        found.lines(None, "pods/log needs a node agent")
    )


# --- the command, against a live server ------------------------------------------------------------


def _api(live: LiveCluster) -> httpx.Client:
    return httpx.Client(
        base_url=live.url,
        headers={"Authorization": f"Bearer {live.token}"},
        verify=ssl.create_default_context(cafile=str(live.ca_cert)),
    )


@pytest.fixture
def crashing_pod(live_cluster: LiveCluster) -> tuple[str, str]:
    ns = f"explain-{uuid.uuid4().hex[:6]}"
    with _api(live_cluster) as api:
        api.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).raise_for_status()
        api.post(
            f"/api/v1/namespaces/{ns}/pods",
            json={
                "metadata": {"name": "web"},
                "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "example/app:1"}]},
            },
        ).raise_for_status()
        pod = api.get(f"/api/v1/namespaces/{ns}/pods/web").json()
        pod["status"] = CRASH
        api.put(f"/api/v1/namespaces/{ns}/pods/web/status", json=pod).raise_for_status()
        api.post(
            f"/api/v1/namespaces/{ns}/events",
            json={
                "metadata": {"name": "web.1"},
                "reason": "BackOff",
                "type": "Warning",
                "count": 3,
                "message": "Back-off restarting failed container app",
                "involvedObject": {
                    "kind": "Pod",
                    "namespace": ns,
                    "name": "web",
                    "uid": pod["metadata"]["uid"],
                },
            },
        ).raise_for_status()
    return ns, "web"


@pytest.mark.parametrize("command", [explain_command, why_command], ids=["explain", "why"])
def test_explain_command_against_a_live_server(
    live_cluster: LiveCluster, crashing_pod: tuple[str, str], command: Any
) -> None:
    ns, name = crashing_pod
    result = CliRunner().invoke(
        command, ["pod", name, "-n", ns, "--kubeconfig", str(live_cluster.kubeconfig)]
    )
    assert result.exit_code == 0, result.output
    assert f"Pod {ns}/{name} is crash-looping: container app keeps exiting." in result.output
    assert "restarted 5 times; it last exited with exit code 1 (Error)" in result.output
    assert "Last log lines (previous instance of container app):" in result.output
    assert "(no logs:" in result.output or "    " in result.output.splitlines()[-1]  # no node agent here


def test_explain_command_errors(live_cluster: LiveCluster) -> None:
    kc = str(live_cluster.kubeconfig)
    missing = CliRunner().invoke(explain_command, [f"pod/nope-{uuid.uuid4().hex[:6]}", "--kubeconfig", kc])
    assert missing.exit_code == 1 and "NotFound" in missing.output
    wrong_kind = CliRunner().invoke(explain_command, ["deploy", "web", "--kubeconfig", kc])
    assert wrong_kind.exit_code != 0 and "only pods" in wrong_kind.output
