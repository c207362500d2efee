"""Pod status from what the runtime shows and what the agent decided: pure functions.

Owns: containerStatuses / initContainerStatuses / ephemeralContainerStatuses (state, lastState,
restartCount, imageID, containerID, ready, started), the pod phase (kubelet's getPhase, sidecars
included), the conditions PodReadyToStartContainers / Initialized / ContainersReady / Ready
(PodScheduled is kept), and the rest of the status document. Every dict built here deserializes
with the official Python client's models (their required fields are always present).
lastTransitionTime only moves when a condition's status changes, so an unchanged pod produces an
equal status and no write.
Must not import: the client, trio, podman.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from orchestra.objects import Obj, format_time
from orchestra.runtime.base import ContainerState, ContainerStatus


@attrs.frozen
class ContainerView:
    """Everything the status needs about one container of the pod."""

    name: str
    image: str  # as written in the pod spec
    current: ContainerStatus | None = None
    previous: ContainerStatus | None = None
    restart_count: int = 0
    waiting: tuple[str, str] | None = None  # (reason, message) the agent decided on
    ready: bool = False
    started: bool = False
    image_id: str = ""  # from ensure_image, for containers not created yet
    sidecar: bool = False  # a restartable init container (restartPolicy: Always)

    @property
    def running(self) -> bool:
        return self.current is not None and self.current.state == ContainerState.RUNNING

    @property
    def exited(self) -> bool:
        return self.current is not None and self.current.state == ContainerState.EXITED

    @property
    def succeeded(self) -> bool:
        return self.exited and self.current is not None and self.current.exit_code == 0


def rfc3339(dt: datetime | None) -> str | None:
    return None if dt is None else format_time(dt)


def image_ref(image: str, image_id: str) -> str:
    """`localhost/busybox@sha256:<id>`: repository of the image plus the runtime's image id."""
    if not image_id:
        return ""
    digest = image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: len(repo) - len(last)] + last.split(":", 1)[0]
    return f"{repo}@{digest}"


def terminated(c: ContainerStatus) -> Obj:
    if c.exit_code == 0:
        reason = "Completed"
    elif c.oom_killed:
        reason = "OOMKilled"
    elif c.started_at is None:
        reason = "StartError"
    else:
        reason = "Error"
    state: Obj = {"exitCode": int(c.exit_code or 0), "reason": reason, "containerID": f"podman://{c.id}"}
    if c.started_at is not None:
        state["startedAt"] = rfc3339(c.started_at)
    finished = c.finished_at or c.started_at
    if finished is not None:
        state["finishedAt"] = rfc3339(finished)
    return state


def container_status(view: ContainerView, *, default_waiting: str = "ContainerCreating") -> Obj:
    cur, prev = view.current, view.previous
    out: Obj = {"name": view.name, "image": view.image, "imageID": "", "ready": False,
                "restartCount": view.restart_count, "started": False}
    last: Obj = {}
    if cur is not None and cur.state in (ContainerState.RUNNING, ContainerState.EXITED):
        out["containerID"] = f"podman://{cur.id}"
        out["imageID"] = image_ref(cur.image or view.image, cur.image_id)
    if cur is not None and cur.state == ContainerState.RUNNING and view.waiting is None:
        out["state"] = {"running": {"startedAt": rfc3339(cur.started_at)}}
        out["ready"] = view.ready
        out["started"] = view.started
        if prev is not None and prev.state == ContainerState.EXITED:
            last = {"terminated": terminated(prev)}
    elif cur is not None and cur.state == ContainerState.EXITED and view.waiting is None:
        out["state"] = {"terminated": terminated(cur)}
        if prev is not None and prev.state == ContainerState.EXITED:
            last = {"terminated": terminated(prev)}
    else:
        reason, message = view.waiting or (default_waiting, "")
        out["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        if cur is not None and cur.state == ContainerState.EXITED:
            last = {"terminated": terminated(cur)}
        elif prev is not None and prev.state == ContainerState.EXITED:
            last = {"terminated": terminated(prev)}
    out["lastState"] = last
    if not out["imageID"]:
        out["imageID"] = image_ref(view.image, view.image_id)
    return out


def pod_phase(restart_policy: str, init_failed: bool, initialized: bool, views: Sequence[ContainerView],
              sidecars: Sequence[ContainerView] = ()) -> str:
    """kubelet's getPhase. A running sidecar counts as running, one never run yet as waiting; an
    exited one (restarting, or stopped because the pod is done) does not count."""
    if init_failed:
        return "Failed"
    if not initialized:
        return "Pending"
    running = sum(1 for v in sidecars if v.running)
    waiting = sum(1 for v in sidecars if v.current is None)
    stopped = succeeded = 0
    for v in views:
        if v.running:
            running += 1
        elif v.exited:
            stopped += 1
            succeeded += v.succeeded
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped and stopped == len(views):
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(
    old: Sequence[Obj], ctype: str, status: bool, now: str, reason: str = "", message: str = ""
) -> Obj:
    value = "True" if status else "False"
    prev = next((c for c in old if c.get("type") == ctype), None)
    since = prev.get("lastTransitionTime") if prev and prev.get("status") == value else None
    cond: Obj = {"type": ctype, "status": value, "lastTransitionTime": since or now}
    if not status and reason:
        cond["reason"] = reason
        if message:
            cond["message"] = message
    return cond


@attrs.frozen
class PodFacts:
    sandbox_ready: bool
    pod_ip: str
    host_ip: str
    start_time: str
    initialized: bool
    init_failed: bool
    reason: str = ""  # e.g. DeadlineExceeded
    message: str = ""
    phase: str = ""  # forced phase (terminal states never go back)


def build_status(pod: Obj, facts: PodFacts, init_views: Sequence[ContainerView],
                 views: Sequence[ContainerView], now: str, ephemeral: Sequence[ContainerView] = ()) -> Obj:
    spec = pod.get("spec") or {}
    old: Obj = pod.get("status") or {}
    old_conditions = [c for c in old.get("conditions") or [] if isinstance(c, dict)]
    sidecars = [v for v in init_views if v.sidecar]
    policy = spec.get("restartPolicy", "Always")
    phase = facts.phase or pod_phase(policy, facts.init_failed, facts.initialized, views, sidecars)
    unready = [v.name for v in [*sidecars, *views] if not (v.running and v.ready and v.waiting is None)]
    completed = phase == "Succeeded"
    incomplete = [v.name for v in init_views if not (v.started and v.running if v.sidecar else v.succeeded)]
    containers_ready = not unready and not completed
    gates_ok = all(
        any(c.get("type") == g.get("conditionType") and c.get("status") == "True" for c in old_conditions)
        for g in spec.get("readinessGates") or []
    )
    not_ready_reason = "PodCompleted" if completed else "ContainersNotReady"
    not_ready_message = "" if completed else f"containers with unready status: [{' '.join(unready)}]"
    conditions = [
        _condition(old_conditions, "PodReadyToStartContainers", facts.sandbox_ready, now),
        _condition(
            old_conditions,
            "Initialized",
            facts.initialized,
            now,
            "PodCompleted" if completed else "ContainersNotInitialized",
            "" if completed else f"containers with incomplete status: [{' '.join(incomplete)}]",
        ),
        _condition(
            old_conditions,
            "Ready",
            containers_ready and gates_ok,
            now,
            not_ready_reason,
            not_ready_message if not containers_ready else "the status of pod readiness gates is not true",
        ),
        _condition(
            old_conditions, "ContainersReady", containers_ready, now, not_ready_reason, not_ready_message
        ),
    ]
    conditions += [c for c in old_conditions if c.get("type") not in {x["type"] for x in conditions}]
    status: Obj = {"phase": phase, "conditions": conditions}
    if facts.host_ip:
        status["hostIP"] = facts.host_ip
        status["hostIPs"] = [{"ip": facts.host_ip}]
    pod_ip = facts.pod_ip or old.get("podIP", "")
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    status["startTime"] = old.get("startTime") or facts.start_time
    default_waiting = "ContainerCreating" if facts.initialized else "PodInitializing"
    if init_views:
        status["initContainerStatuses"] = [container_status(v, default_waiting="PodInitializing")
                                           for v in init_views]
    status["containerStatuses"] = [container_status(v, default_waiting=default_waiting) for v in views]
    if ephemeral:  # kubectl debug waits for its container's state here
        status["ephemeralContainerStatuses"] = [container_status(v) for v in ephemeral]
    for key in ("qosClass", "nominatedNodeName", "resize", "resourceClaimStatuses"):
        if key in old:
            status[key] = old[key]
    reason, message = facts.reason or old.get("reason", ""), facts.message or old.get("message", "")
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    return status
