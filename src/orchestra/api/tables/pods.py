"""The Pod row printer: printPod's status reason, readiness, restarts and readiness gates.

Owns: pod_status_reason (also used by `orchestra explain` and the dashboard) and the Pod row.
Must not import: the other printers, the column definitions, or the Table envelope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestra.api.tables.format import Cell, since
from orchestra.objects import Obj, as_dict, human_duration, only_dicts, parse_time

# --- row printers ------------------------------------------------------------------------------------


def _restartable_init(container: Obj | None) -> bool:
    return bool(container) and as_dict(container).get("restartPolicy") == "Always"


def _cond_true(conditions: Any, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in only_dicts(conditions))


def _later(current: datetime | None, state: Any) -> datetime | None:
    finished = parse_time(as_dict(as_dict(state).get("terminated")).get("finishedAt"))
    if finished is not None and (current is None or finished > current):
        return finished
    return current


def pod_status_reason(pod: Obj) -> tuple[str, int, int, int, datetime | None]:
    """printPod's core: (status reason, ready containers, total containers, restarts, last restart)."""
    spec, status = as_dict(pod.get("spec")), as_dict(pod.get("status"))
    init_specs = {str(c.get("name")): c for c in only_dicts(spec.get("initContainers"))}
    sidecars = sum(1 for c in init_specs.values() if _restartable_init(c))
    total = len(only_dicts(spec.get("containers"))) + sidecars
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    sidecar_last: datetime | None = None
    phase = str(status.get("phase") or "")
    reason = str(status.get("reason") or phase)
    if any(
        c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
        for c in only_dicts(status.get("conditions"))
    ):
        reason = "SchedulingGated"

    initializing = False
    init_statuses = only_dicts(status.get("initContainerStatuses"))
    for i, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount") or 0)
        last_restart = _later(last_restart, cs.get("lastState"))
        sidecar = _restartable_init(init_specs.get(str(cs.get("name"))))
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            sidecar_last = _later(sidecar_last, cs.get("lastState"))
        state = as_dict(cs.get("state"))
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if isinstance(terminated, dict) and terminated.get("exitCode", 0) == 0:
            continue
        if sidecar and cs.get("started") is True:
            ready += 1 if cs.get("ready") else 0
            continue
        if isinstance(terminated, dict):
            if not terminated.get("reason"):
                signal = terminated.get("signal") or 0
                reason = (
                    f"Init:Signal:{signal}" if signal else f"Init:ExitCode:{terminated.get('exitCode', 0)}"
                )
            else:
                reason = "Init:" + str(terminated["reason"])
        elif (
            isinstance(waiting, dict) and waiting.get("reason") and waiting.get("reason") != "PodInitializing"
        ):
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{i}/{len(only_dicts(spec.get('initContainers')))}"
        initializing = True
        break

    if not initializing or _cond_true(status.get("conditions"), "Initialized"):
        restarts, last_restart = sidecar_restarts, sidecar_last
        has_running = False
        for cs in reversed(only_dicts(status.get("containerStatuses"))):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = _later(last_restart, cs.get("lastState"))
            state = as_dict(cs.get("state"))
            waiting, terminated = as_dict(state.get("waiting")), state.get("terminated")
            if waiting.get("reason"):
                reason = str(waiting["reason"])
            elif isinstance(terminated, dict) and terminated.get("reason"):
                reason = str(terminated["reason"])
            elif isinstance(terminated, dict):
                signal = terminated.get("signal") or 0
                reason = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _cond_true(status.get("conditions"), "Ready") else "NotReady"

    deleting = bool(as_dict(pod.get("metadata")).get("deletionTimestamp"))
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return reason, ready, total, restarts, last_restart


def print_pod(pod: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = as_dict(pod.get("metadata")), as_dict(pod.get("spec")), as_dict(pod.get("status"))
    reason, ready, total, restarts, last_restart = pod_status_reason(pod)
    restarts_cell = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"
    pod_ips = only_dicts(status.get("podIPs"))
    pod_ip = str(pod_ips[0].get("ip") or "") if pod_ips else str(status.get("podIP") or "")
    gates = only_dicts(spec.get("readinessGates"))
    gates_cell = "<none>"
    if gates:
        conditions = {c.get("type"): c for c in only_dicts(status.get("conditions"))}
        true_count = sum(
            1 for g in gates if as_dict(conditions.get(g.get("conditionType"))).get("status") == "True"
        )
        gates_cell = f"{true_count}/{len(gates)}"
    return [
        str(meta.get("name", "")),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        since(meta.get("creationTimestamp"), now),
        pod_ip or "<none>",
        str(spec.get("nodeName") or "<none>"),
        str(status.get("nominatedNodeName") or "<none>"),
        gates_cell,
    ]
