"""What every pod worker of one node agent shares: `AgentContext` (client, runtime, recorder,
volume manager, prober, resource types, DNS and env settings, back-off policies) and its counters,
plus the small helpers workers and the agent both use (`attempt_of`, `pod_ref`) and
`resource_version`, `wake_view`, `should_restart`, and
`fetch_sources`: the ConfigMaps, Secrets, PersistentVolumeClaims and bound PersistentVolumes a pod
refers to, read from the API.
Must not import: podman, reconcilers, apiserver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from orchestra.api.errors import ApiError, NotFound
from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.client.base import Client
from orchestra.controller.events import EventRecorder
from orchestra.node.backoff import Backoff
from orchestra.node.env import Sources, referenced_sources
from orchestra.node.probes import Prober
from orchestra.node.sandbox import LABEL_ATTEMPT
from orchestra.node.volumes import VolumeManager, claim_names
from orchestra.objects import Obj, namespace_of
from orchestra.runtime.base import ContainerStatus, RuntimeFailure
from orchestra.runtime.base import Runtime as RuntimeProtocol


@attrs.define
class AgentCounters:
    syncs: int = 0
    sync_errors: int = 0
    sync_crashes: int = 0  # unexpected exceptions in a pod's sync or worker (contained, retried)
    containers_started: int = 0
    containers_restarted: int = 0
    liveness_kills: int = 0
    status_writes: int = 0
    status_conflicts: int = 0
    sandboxes_created: int = 0
    pods_terminated: int = 0


@attrs.define(eq=False)
class AgentContext:
    """What every worker of one agent shares."""

    node_name: str
    host_ip: str
    client: Client
    runtime: RuntimeProtocol
    recorder: EventRecorder
    volumes: VolumeManager
    prober: Prober
    pod_rt: Any
    config_map_rt: Any
    secret_rt: Any
    pvc_rt: Any = attrs.field(factory=lambda: DEFAULT_REGISTRY.by_kind("PersistentVolumeClaim"))
    pv_rt: Any = attrs.field(factory=lambda: DEFAULT_REGISTRY.by_kind("PersistentVolume"))
    cluster_dns: str | None = None
    cluster_domain: str = "cluster.local"
    resolv_conf: Path | None = Path("/etc/resolv.conf")
    extra_env: Callable[[Obj], Mapping[str, str]] | None = None
    allocatable: Mapping[str, str] = attrs.field(factory=dict)
    resync_seconds: float = 60.0
    pod_pids_limit: int | None = None
    owner_labels: Mapping[str, str] = attrs.field(factory=dict)  # e.g. the cluster id label
    crash_backoff: Backoff = attrs.field(factory=Backoff)
    pull_backoff: Backoff = attrs.field(factory=Backoff)
    counters: AgentCounters = attrs.field(factory=AgentCounters)


def expected_failure(exc: BaseException) -> bool:
    """Whether a sync failure is an ordinary one (the runtime or the API refused or went away), also when
    it arrives wrapped by a nursery's ExceptionGroup (as at teardown, when several calls fail at once)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(expected_failure(e) for e in exc.exceptions)
    return isinstance(exc, RuntimeFailure | ApiError | OSError)


def attempt_of(c: ContainerStatus) -> int:
    try:
        return int(c.labels.get(LABEL_ATTEMPT, "0"))
    except ValueError:
        return 0


def pod_ref(pod: Obj) -> str:
    """kubelet's format.Pod: name_namespace(uid)."""
    m = pod.get("metadata") or {}
    return f"{m.get('name', '')}_{m.get('namespace', '')}({m.get('uid', '')})"


async def fetch_sources(ctx: AgentContext, pod: Obj) -> Sources:
    namespace = namespace_of(pod)

    async def get(rt: Any, name: str, ns: str | None = namespace) -> Obj | None:
        try:
            return await ctx.client.get(rt, ns, name)
        except NotFound:
            return None

    cm_names, secret_names = referenced_sources(pod)
    cms = {n: o for n in sorted(cm_names) if (o := await get(ctx.config_map_rt, n)) is not None}
    secrets = {n: o for n in sorted(secret_names) if (o := await get(ctx.secret_rt, n)) is not None}
    claims: dict[str, Obj] = {}
    volumes: dict[str, Obj] = {}  # for the bound claims, their PersistentVolumes
    for name in claim_names(pod):
        pvc = await get(ctx.pvc_rt, name)
        if pvc is None:
            continue
        claims[name] = pvc
        volume_name = (pvc.get("spec") or {}).get("volumeName")
        if volume_name and (pv := await get(ctx.pv_rt, volume_name, None)) is not None:
            volumes[name] = pv  # (a missing PV leaves the claim Lost: prepare() reports it unbound)
    return Sources(config_maps=cms, secrets=secrets, claims=claims, claim_volumes=volumes)


def resource_version(obj: Obj | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def wake_view(pod: Obj) -> tuple[Any, ...]:
    """What a pod change must differ in to wake its worker (the worker's own status writes do not)."""
    m = pod.get("metadata") or {}
    return (pod.get("spec"), m.get("labels"), m.get("annotations"), m.get("deletionTimestamp"),
            m.get("deletionGracePeriodSeconds"))


def should_restart(policy: str, exit_code: int | None) -> bool:
    """Whether restartPolicy restarts a container that exited with `exit_code`."""
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False
