"""Resource usage for the metrics API: metrics-server and the kubelet's summary API, in process.

Owns: `UsageCollector`, sampling what pods' containers use (the runtimes' `stats`: CPU time and
working set) and what the host uses (/proc/stat, /proc/meminfo), and turning two samples into CPU
rates. A request with a
recent enough previous sample (kept at most STALE seconds) measures from it; otherwise it takes a
sample, waits MIN_WINDOW and takes another, so the first `kubectl top` answers in about a second
(metrics-server needs a scrape or two first). Samples closer than MIN_WINDOW are not re-taken: the
previous answer is reused. A node whose runtime is the host's reports the host's usage, like the
kubelet's root cgroup; a simulated node reports the sum of its pods (api/metrics.py reads them out).
Scripted usage: a pod on a simulated node (a runtime that is not this host's) reports what its
annotations say instead of what its simulated containers burn, read at every measurement, so a
test or a demo changes the load by annotating pods (or their template):
    orchestra.io/simulated-cpu: "250m"                  every container uses 250m
    orchestra.io/simulated-cpu: "web=900m, sidecar=5m"  per container (others keep what was measured)
    orchestra.io/simulated-memory: "64Mi"               the same for the working set
A value that is not a quantity is ignored (the container keeps its measured usage).
Time: trio time for rates; `timestamp` fields come from the injected clock (wall clock by default).
Must not import: apiserver, app, cli.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs
import trio

from orchestra.api.metrics import Usage
from orchestra.controller.clock import Clock, wall_clock
from orchestra.objects import Obj, annotations_of, format_time, meta
from orchestra.objects.quantity import Quantity, QuantityError
from orchestra.runtime.base import (
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    ContainerState,
    Runtime,
    RuntimeFailure,
)

MIN_WINDOW = 1.0
STALE = 60.0
SIMULATED_CPU = "orchestra.io/simulated-cpu"
SIMULATED_MEMORY = "orchestra.io/simulated-memory"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

PodLister = Callable[[str], list[Obj]]  # namespace -> its pods
Script = dict[str, Quantity]  # container name ("" for all) -> usage


@attrs.frozen
class _Sample:
    at: float
    cpu: Mapping[str, int]  # container id -> cpu ns
    memory: Mapping[str, int]
    owner: Mapping[str, tuple[str, str]]  # container id -> (pod uid, container name)
    simulated: Mapping[str, str]  # container id -> its pod's namespace, for containers on simulated nodes
    host_cpu: float  # seconds of busy CPU since boot
    host_memory: int


def host_usage(proc: Path = Path("/proc")) -> tuple[float, int]:
    """(busy CPU seconds since boot, memory in use) of this machine, as the kubelet sees its root."""
    try:
        fields = (proc / "stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(v) for v in fields]
        busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # all but idle and iowait
        info = dict(line.split(":", 1) for line in (proc / "meminfo").read_text().splitlines() if ":" in line)
        total = int(info["MemTotal"].split()[0]) * 1024
        available = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, ValueError, KeyError, IndexError):
        return 0.0, 0
    return busy / _CLOCK_TICKS, total - available


class UsageCollector:
    """`runtimes()`: node name -> runtime of the nodes this process runs (a shared runtime may serve
    many, e.g. every simulated node); `host_nodes()`: the names of the nodes that are this host;
    `pods(namespace)`: the namespace's pods, for the scripted usage of simulated pods."""

    def __init__(self, runtimes: Callable[[], Mapping[str, Runtime]], host_nodes: Callable[[], set[str]], *,
                 host: Callable[[], tuple[float, int]] = host_usage, pods: PodLister | None = None,
                 clock: Clock = wall_clock) -> None:
        self._runtimes = runtimes
        self._host_nodes = host_nodes
        self._host = host
        self._pods = pods
        self._clock = clock
        self._lock = trio.Lock()
        self._previous: _Sample | None = None
        self._answer: Usage | None = None

    async def usage(self) -> Usage:
        async with self._lock:
            now = trio.current_time()
            if (
                self._answer is not None
                and self._previous is not None
                and now - self._previous.at < MIN_WINDOW
            ):
                return self._answer
            before = self._previous
            if before is None or now - before.at > STALE:
                before = await self._sample()
                await trio.sleep(MIN_WINDOW)
            after = await self._sample()
            self._previous = after
            self._answer = self._rates(before, after)
            return self._answer

    async def _sample(self) -> _Sample:
        cpu: dict[str, int] = {}
        memory: dict[str, int] = {}
        owner: dict[str, tuple[str, str]] = {}
        simulated: dict[str, str] = {}
        seen: set[int] = set()
        hosts = self._host_nodes()
        for node, runtime in self._runtimes().items():
            if id(runtime) in seen:
                continue
            seen.add(id(runtime))
            try:
                running = [c for c in await runtime.list_containers() if c.state == ContainerState.RUNNING]
                for c in running:
                    owner[c.id] = (str(c.labels.get(LABEL_POD_UID) or ""), c.name)
                    if node not in hosts:
                        simulated[c.id] = str(c.labels.get(LABEL_POD_NAMESPACE) or "")
                for st in await runtime.stats([c.id for c in running]):
                    cpu[st.id] = st.cpu_usage_nanoseconds
                    memory[st.id] = st.memory_working_set_bytes
            except RuntimeFailure:
                continue  # that runtime is down: its pods have no metrics, like an unreachable kubelet
        host_cpu, host_memory = self._host()
        return _Sample(trio.current_time(), cpu, memory, owner, simulated, host_cpu, host_memory)

    def _rates(self, before: _Sample, after: _Sample) -> Usage:
        window = max(after.at - before.at, 1e-9)
        containers: dict[str, dict[str, tuple[float, int]]] = {}
        scripts: dict[str, dict[str, tuple[Script, Script]]] = {}  # namespace -> pod uid -> (cpu, memory)
        for cid, total in after.cpu.items():
            uid, name = after.owner.get(cid, ("", ""))
            if not uid:
                continue
            used = max(0, total - before.cpu.get(cid, 0))  # a container new since `before` started from 0
            rates = (used / 1e9 / window, after.memory.get(cid, 0))
            if cid in after.simulated:
                rates = self._scripted(after.simulated[cid], uid, name, rates, scripts)
            containers.setdefault(uid, {})[name] = rates
        host = (max(0.0, after.host_cpu - before.host_cpu) / window, after.host_memory)
        nodes = {name: host for name in self._host_nodes()}
        return Usage(format_time(self._clock()), window, containers, nodes)

    def _scripted(self, namespace: str, uid: str, container: str, rates: tuple[float, int],
                  scripts: dict[str, dict[str, tuple[Script, Script]]]) -> tuple[float, int]:
        """A simulated container's usage as its pod's annotations script it (else as measured)."""
        if self._pods is None:
            return rates
        if namespace not in scripts:  # one read of each namespace's pods per measurement
            scripts[namespace] = {
                str(meta(p).get("uid") or ""): (_script(annotations_of(p).get(SIMULATED_CPU)),
                                                _script(annotations_of(p).get(SIMULATED_MEMORY)))
                for p in self._pods(namespace)}
        cpu, memory = scripts[namespace].get(uid, ({}, {}))
        scripted_cpu, scripted_memory = cpu.get(container, cpu.get("")), memory.get(container, memory.get(""))
        return (rates[0] if scripted_cpu is None else float(scripted_cpu.value),
                rates[1] if scripted_memory is None else scripted_memory.int_value())


def _script(text: object) -> Script:
    """`250m` -> {"": 250m}; `web=250m, db=1` -> {"web": 250m, "db": 1}; {} when it does not parse."""
    if not isinstance(text, str) or not text.strip():
        return {}
    out: Script = {}
    try:
        for part in text.split(","):
            name, _, value = part.rpartition("=")
            out[name.strip()] = Quantity.parse(value.strip())
    except QuantityError:
        return {}  # a script that does not parse scripts nothing: the container keeps its measured usage
    return out
