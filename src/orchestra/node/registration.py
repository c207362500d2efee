"""The agent's Node object and its Lease heartbeat.

Owns: what the host looks like to Kubernetes (`HostInfo`: capacity and allocatable from the CPU
count, /proc/meminfo and statvfs of the state dir; addresses; nodeInfo with all ten fields),
creating or updating the Node, the kubelet's conditions (Ready, MemoryPressure, DiskPressure,
PIDPressure with heartbeat times), the Lease in kube-node-lease renewed every 10 s
(leaseDurationSeconds 40), and node status posts every `status_update_seconds` when something
changed or `status_report_seconds` passed (kubelet's nodeStatusUpdateFrequency / ReportFrequency).
One task per node, sleeping between beats with a per-node phase offset (jitter) so a thousand
simulated nodes spread their writes instead of beating in lockstep.
Must not import: the runtime (the agent passes the runtime version in), podman.
"""

from __future__ import annotations

import logging
import os
import platform
import random
import socket
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import trio

from orchestra.api.errors import AlreadyExists, ApiError, Conflict, NotFound
from orchestra.client.base import Client
from orchestra.objects import Obj, now_rfc3339

log = logging.getLogger("orchestra.node.registration")

LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.32.0"
MAX_PODS = 110
RESERVED_MEMORY = 100 * 1024 * 1024  # kubelet's default eviction threshold memory.available<100Mi


@attrs.frozen
class HostInfo:
    hostname: str
    internal_ip: str
    capacity: Mapping[str, str]
    allocatable: Mapping[str, str]
    node_info: Mapping[str, str]


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def _mem_total_kib() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 1024 * 1024


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def host_ip() -> str:
    """The address of the interface holding the default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def probe_host(state_dir: Path, runtime_version: str, *, hostname: str | None = None,
               node_ip: str | None = None) -> HostInfo:
    """Read the real host (blocking reads of /proc and statvfs; a few microseconds); `node_ip` is
    kubelet's --node-ip (default: the address of the interface holding the default route)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    cpus = os.cpu_count() or 1
    mem_kib = _mem_total_kib()
    fs = os.statvfs(state_dir)
    disk = fs.f_blocks * fs.f_frsize
    capacity = {"cpu": str(cpus), "memory": f"{mem_kib}Ki", "pods": str(MAX_PODS),
                "ephemeral-storage": f"{disk // 1024}Ki"}
    allocatable = {**capacity, "memory": f"{max(mem_kib - RESERVED_MEMORY // 1024, 0)}Ki",
                   "ephemeral-storage": str(int(disk * 0.9))}  # kubelet's nodefs.available<10%
    machine_id = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id")
    node_info = {
        "machineID": machine_id,
        "systemUUID": _read("/sys/class/dmi/id/product_uuid") or machine_id,
        "bootID": _read("/proc/sys/kernel/random/boot_id"),
        "kernelVersion": platform.release(),
        "osImage": _os_image(),
        "containerRuntimeVersion": runtime_version,
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": KUBELET_VERSION,
        "operatingSystem": platform.system().lower(),
        "architecture": _arch(),
    }
    return HostInfo(hostname or socket.gethostname(), node_ip or host_ip(), capacity, allocatable, node_info)


def simulated_host(name: str, index: int, runtime_version: str) -> HostInfo:
    """A made-up machine for `--simulate-nodes` (distinct IPs, ids derived from the name)."""
    capacity = {"cpu": "8", "memory": "32Gi", "pods": str(MAX_PODS), "ephemeral-storage": "100Gi"}
    node_id = f"{index:032x}"
    node_info = {
        "machineID": node_id, "systemUUID": node_id, "bootID": node_id,
        "kernelVersion": platform.release(), "osImage": "orchestra simulated node",
        "containerRuntimeVersion": runtime_version, "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": KUBELET_VERSION, "operatingSystem": "linux", "architecture": _arch(),
    }
    ip = f"10.240.{index // 250}.{index % 250 + 1}"
    return HostInfo(name, ip, capacity, capacity, node_info)


_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)


def micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@attrs.define
class RegistrationStatistics:
    lease_renewals: int = 0
    status_updates: int = 0
    errors: int = 0
    last_renew: float | None = None  # trio time
    last_status: float | None = None


class NodeRegistration:
    """Registers the Node, then beats: Lease every `lease_renew_seconds`, status when due."""

    def __init__(
        self,
        client: Client,
        node_name: str,
        host: HostInfo,
        *,
        labels: Mapping[str, str] | None = None,
        lease_duration_seconds: int = 40,
        lease_renew_seconds: float = 10.0,
        status_update_seconds: float = 10.0,
        status_report_seconds: float = 10.0,
        jitter: float = 0.0,
        ready: Callable[[], tuple[bool, str]] | None = None,
        kubelet_port: int = 10250,
    ) -> None:
        self.client = client
        self.node_name = node_name
        self.host = host
        self.labels = dict(labels or {})
        self.lease_duration_seconds = lease_duration_seconds
        self.lease_renew_seconds = lease_renew_seconds
        self.status_update_seconds = status_update_seconds
        self.status_report_seconds = status_report_seconds
        self.jitter = jitter
        self.ready = ready or (lambda: (True, ""))
        self.kubelet_port = kubelet_port
        self.node_uid = ""
        self.stats = RegistrationStatistics()
        self._last_posted: tuple[Any, ...] | None = None
        self._last_post_time = -float("inf")
        self._nudge = trio.Event()
        registry = getattr(client, "registry", None)
        self._node_rt = registry.by_kind("Node") if registry else None
        self._lease_rt = registry.by_kind("Lease") if registry else None

    def _rts(self) -> tuple[Any, Any]:
        if self._node_rt is None or self._lease_rt is None:
            from orchestra.api.registry import DEFAULT_REGISTRY

            self._node_rt, self._lease_rt = (
                DEFAULT_REGISTRY.by_kind("Node"),
                DEFAULT_REGISTRY.by_kind("Lease"),
            )
        return self._node_rt, self._lease_rt

    def node_labels(self) -> dict[str, str]:
        return {
            "kubernetes.io/hostname": self.node_name,
            "kubernetes.io/os": self.host.node_info["operatingSystem"],
            "kubernetes.io/arch": self.host.node_info["architecture"],
            "beta.kubernetes.io/os": self.host.node_info["operatingSystem"],
            "beta.kubernetes.io/arch": self.host.node_info["architecture"],
            **self.labels,
        }

    def nudge(self) -> None:
        """Something changed (e.g. readiness): post status at the next beat."""
        self._nudge.set()

    # --- the Node -----------------------------------------------------------------------------

    def _status(self, old: Obj | None) -> Obj:
        now = now_rfc3339()
        ready, message = self.ready()
        wanted = [
            *_CONDITIONS,
            (
                "Ready",
                "True" if ready else "False",
                "KubeletReady" if ready else "KubeletNotReady",
                "kubelet is posting ready status" if ready else message,
            ),
        ]
        old_conds = {c.get("type"): c for c in ((old or {}).get("status") or {}).get("conditions") or []}
        conditions = []
        for ctype, status, reason, msg in wanted:
            prev = old_conds.get(ctype) or {}
            since = prev.get("lastTransitionTime") if prev.get("status") == status else None
            conditions.append({"type": ctype, "status": status, "reason": reason, "message": msg,
                               "lastHeartbeatTime": now, "lastTransitionTime": since or now})
        addresses = [{"type": "InternalIP", "address": self.host.internal_ip},
                     {"type": "Hostname", "address": self.host.hostname}]
        return {"capacity": dict(self.host.capacity), "allocatable": dict(self.host.allocatable),
                "conditions": conditions, "addresses": addresses,
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
                "nodeInfo": dict(self.host.node_info), "phase": "Running"}

    async def register(self) -> Obj:
        """Create the Node, or update the labels and status of an existing one."""
        node_rt, _ = self._rts()
        node: Obj = {"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": self.node_name, "labels": self.node_labels(),
                                  "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
                     "spec": {}, "status": self._status(None)}  # spec.podCIDR: the node IPAM controller's
        try:
            created = await self.client.create(node_rt, None, node)
        except AlreadyExists:
            created = await self._update_existing()
        self.node_uid = created["metadata"]["uid"]
        await self.post_status(force=True)
        return created

    async def _update_existing(self) -> Obj:
        """Our labels onto the Node (its spec.podCIDR is the node IPAM controller's)."""
        node_rt, _ = self._rts()
        for _ in range(5):
            current = await self.client.get(node_rt, None, self.node_name)
            labels = {**(current["metadata"].get("labels") or {}), **self.node_labels()}
            if labels == current["metadata"].get("labels"):
                return current
            updated = {**current, "metadata": {**current["metadata"], "labels": labels}}
            try:
                return await self.client.update(node_rt, updated)
            except Conflict:
                continue
        raise Conflict(f"could not update node {self.node_name}")

    async def post_status(self, *, force: bool = False) -> bool:
        """Write the node status if it changed or the report interval passed; True if written."""
        node_rt, _ = self._rts()
        now = trio.current_time()
        current = await self.client.get(node_rt, None, self.node_name)
        status = self._status(current)
        fingerprint = (self.ready(), tuple(sorted(self.host.capacity.items())), self.host.internal_ip)
        due = now - self._last_post_time >= self.status_report_seconds
        if not force and not due and fingerprint == self._last_posted:
            return False
        await self.client.update_status(
            node_rt, {**current, "status": {**(current.get("status") or {}), **status}}
        )
        self._last_posted = fingerprint
        self._last_post_time = now
        self.stats.status_updates += 1
        self.stats.last_status = now
        return True

    # --- the Lease ----------------------------------------------------------------------------

    def _lease(self) -> Obj:
        owner = (
            [{"apiVersion": "v1", "kind": "Node", "name": self.node_name, "uid": self.node_uid}]
            if self.node_uid
            else []
        )
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.node_name,
                "namespace": LEASE_NAMESPACE,
                **({"ownerReferences": owner} if owner else {}),
            },
            "spec": {
                "holderIdentity": self.node_name,
                "leaseDurationSeconds": self.lease_duration_seconds,
                "renewTime": micro_time(),
            },
        }

    async def renew_lease(self) -> None:
        _, lease_rt = self._rts()
        try:
            current = await self.client.get(lease_rt, LEASE_NAMESPACE, self.node_name)
        except NotFound:
            try:
                await self.client.create(lease_rt, LEASE_NAMESPACE, self._lease())
            except AlreadyExists:  # another writer raced us; renew next beat
                return
        else:
            spec = {**(current.get("spec") or {}), "holderIdentity": self.node_name,
                    "leaseDurationSeconds": self.lease_duration_seconds, "renewTime": micro_time()}
            await self.client.update(lease_rt, {**current, "spec": spec})
        self.stats.lease_renewals += 1
        self.stats.last_renew = trio.current_time()

    # --- the loop -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self._retrying(self.register)
        await self._retrying(self.renew_lease)
        task_status.started()
        offset = random.uniform(0, self.jitter) if self.jitter else 0.0
        next_lease = trio.current_time() + offset + self.lease_renew_seconds
        next_status = trio.current_time() + offset + self.status_update_seconds
        while True:
            with trio.move_on_at(min(next_lease, next_status)):
                await self._nudge.wait()
            now = trio.current_time()
            nudged = self._nudge.is_set()
            self._nudge = trio.Event()
            if now >= next_lease:
                await self._beat(self.renew_lease)
                next_lease = now + self.lease_renew_seconds
            if now >= next_status or nudged:
                await self._beat(self.post_status)
                if now >= next_status:
                    next_status = now + self.status_update_seconds

    async def _beat(self, fn: Callable[[], Any]) -> None:
        try:
            await fn()
        except (ApiError, OSError) as exc:  # the API is unreachable or raced us: the next beat retries
            self.stats.errors += 1
            log.warning("node %s heartbeat failed: %s", self.node_name, exc)

    async def _retrying(self, fn: Callable[[], Any]) -> None:
        delay = 0.5
        while True:
            try:
                await fn()
                return
            except (ApiError, OSError) as exc:  # API not up yet: keep trying
                self.stats.errors += 1
                log.warning("node %s registration failed: %s; retrying in %.1fs", self.node_name, exc, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, 10.0)
