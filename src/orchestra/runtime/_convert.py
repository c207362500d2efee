"""Pure translations between libpod JSON and the runtime's data types (no I/O).

Owns: timestamp parsing, state mapping, label filters, error mapping by HTTP status, the
container create body, and the stdio configuration a container was created with (what attach
must match).
Must not import: podman, httpx, trio, anything above the runtime layer.
"""

from __future__ import annotations

import secrets
import signal as signal_module
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from orchestra.runtime.base import (
    LABEL_CONTAINER_NAME,
    LABEL_SANDBOX_ID,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    InvalidState,
    NotFound,
    RuntimeFailure,
    SandboxState,
)

_CONTAINER_STATES = {
    "configured": ContainerState.CREATED,
    "created": ContainerState.CREATED,
    "initialized": ContainerState.CREATED,
    "running": ContainerState.RUNNING,
    "paused": ContainerState.RUNNING,
    "stopping": ContainerState.RUNNING,
    "exited": ContainerState.EXITED,
    "stopped": ContainerState.EXITED,
}


def parse_time(value: str | int | float | None) -> datetime | None:
    """libpod times: RFC 3339 with nanoseconds, or unix seconds; zero/negative/year 1 -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC) if value > 0 else None
    if value.startswith("0001-01-01"):
        return None
    text = value.replace("Z", "+00:00")
    head, sep, rest = text.partition(".")
    if sep:  # trim nanoseconds to the microseconds datetime can hold
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    return datetime.fromisoformat(text).astimezone(UTC)


def label_filters(labels: Mapping[str, str]) -> list[str]:
    """The libpod filter list (AND over entries) for exact label matches."""
    return [f"{k}={v}" for k, v in sorted(labels.items())]


def container_state(status: str) -> ContainerState:
    return _CONTAINER_STATES.get(status.lower(), ContainerState.UNKNOWN)


def sandbox_state_from_infra(infra: Mapping[str, Any]) -> SandboxState:
    state = container_state((infra.get("State") or {}).get("Status", ""))
    if state == ContainerState.RUNNING:
        return SandboxState.READY
    if state == ContainerState.CREATED:
        return SandboxState.CREATED
    return SandboxState.NOT_READY


def pod_ip(infra: Mapping[str, Any]) -> str:
    settings = infra.get("NetworkSettings") or {}
    for network in (settings.get("Networks") or {}).values():
        if network.get("IPAddress"):
            return str(network["IPAddress"])
    return str(settings.get("IPAddress") or "")


def container_status_from_inspect(info: Mapping[str, Any]) -> ContainerStatus:
    state = info.get("State") or {}
    labels = dict((info.get("Config") or {}).get("Labels") or {})
    status = container_state(state.get("Status", ""))
    return ContainerStatus(
        id=info["Id"],
        name=labels.get(LABEL_CONTAINER_NAME, info.get("Name", "")),
        sandbox_id=info.get("Pod") or labels.get(LABEL_SANDBOX_ID, ""),
        state=status,
        exit_code=int(state.get("ExitCode", 0)) if status == ContainerState.EXITED else None,
        created_at=parse_time(info.get("Created")),
        started_at=parse_time(state.get("StartedAt")),
        finished_at=parse_time(state.get("FinishedAt")) if status == ContainerState.EXITED else None,
        image=info.get("ImageName", ""),
        image_id=info.get("Image", ""),
        restart_count_hint=int(info.get("RestartCount", 0)),
        oom_killed=bool(state.get("OOMKilled")),
        labels=labels,
    )


def container_status_from_list(entry: Mapping[str, Any]) -> ContainerStatus:
    labels = dict(entry.get("Labels") or {})
    status = container_state(entry.get("State", ""))
    names = entry.get("Names") or [""]
    return ContainerStatus(
        id=entry["Id"],
        name=labels.get(LABEL_CONTAINER_NAME, names[0]),
        sandbox_id=entry.get("Pod") or labels.get(LABEL_SANDBOX_ID, ""),
        state=status,
        exit_code=int(entry.get("ExitCode", 0)) if status == ContainerState.EXITED else None,
        created_at=parse_time(entry.get("Created")),
        started_at=parse_time(entry.get("StartedAt")),
        finished_at=parse_time(entry.get("ExitedAt")) if status == ContainerState.EXITED else None,
        image=entry.get("Image", ""),
        image_id=entry.get("ImageID", ""),
        labels=labels,
    )


# libpod has no StdinOnce (the create body ignores it), so the adapter keeps it in a label.
LABEL_STDIN_ONCE = "orchestra.io/stdin-once"


@attrs.frozen
class StdioConfig:
    """How a container's stdio was set up at create time (from its inspect)."""

    running: bool
    stdin: bool
    stdin_once: bool
    tty: bool


def stdio_config(info: Mapping[str, Any]) -> StdioConfig:
    config = info.get("Config") or {}
    labels = config.get("Labels") or {}
    return StdioConfig(
        running=bool((info.get("State") or {}).get("Running")),
        stdin=bool(config.get("OpenStdin")),
        stdin_once=labels.get(LABEL_STDIN_ONCE) == "true",
        tty=bool(config.get("Tty")),
    )


def error_for(status: int, message: str, path: str) -> RuntimeFailure:
    """One mapping of libpod HTTP errors for both client paths."""
    if status == 404 or "no such pod" in message or "no such container" in message:
        return NotFound(message)  # podman 4.3 answers 500 for objects removed under a request
    if status in (304, 409) or "container state improper" in message:
        return InvalidState(message)
    return RuntimeFailure(f"podman {path}: {message} (HTTP {status})")


def container_body(spec: ContainerSpec, pod: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    """The libpod create body of `spec` in the pod `pod` (its static inspect fields)."""
    body: dict[str, Any] = {
        "name": f"{pod.get('Name', 'pod')}-{spec.name}-{secrets.token_hex(3)}",  # restarts make new ones
        "pod": pod["Id"],
        "image": spec.image,
        "labels": dict(labels),
        "env": dict(spec.env),
        "terminal": spec.tty,
        "stdin": spec.stdin,
        "restart_policy": "no",  # restarts are the agent's job
    }
    if spec.command:
        body["entrypoint"] = list(spec.command)  # also drops the image CMD, as in Kubernetes
    if spec.args:
        body["command"] = list(spec.args)
    if spec.working_dir:
        body["work_dir"] = spec.working_dir
    if spec.stop_signal:
        body["stop_signal"] = int(signal_module.Signals[spec.stop_signal.upper()])
    if spec.pid_namespace_of:  # an ephemeral container's targetContainerName (podman --pid container:ID)
        body["pidns"] = {"nsmode": "container", "value": spec.pid_namespace_of}
    if spec.mounts:
        body["mounts"] = [
            {
                "type": "bind",
                "source": m.host_path,
                "destination": m.container_path,
                "options": ["rbind", "ro" if m.read_only else "rw"],
            }
            for m in spec.mounts
        ]
    limits = resource_limits(spec)
    if limits:
        body["resource_limits"] = limits
    return body


def resource_limits(spec: ContainerSpec) -> dict[str, Any]:
    r = spec.resources
    limits: dict[str, Any] = {}
    if r.memory_limit_bytes is not None:
        limits["memory"] = {"limit": r.memory_limit_bytes}
    cpu: dict[str, int] = {}
    if r.cpu_quota is not None:
        cpu["quota"] = r.cpu_quota
        cpu["period"] = r.cpu_period or 100_000
    if r.cpu_shares is not None:
        cpu["shares"] = r.cpu_shares
    if cpu:
        limits["cpu"] = cpu
    if r.pids_limit is not None:
        limits["pids"] = {"limit": r.pids_limit}
    return limits
