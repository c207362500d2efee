"""What dead clusters left on this host: found and removed when a cluster starts, and reported.

Owns: the rule for "dead", and the clean-up.
* A cluster is known by its id (kube-system's uid), written to `<state-dir>/cluster-id` at every
  start; its Podman pods carry the id and the state directory as labels (node/sandbox.py). It is
  dead when its state directory is gone, or now names another cluster (a later `--memory` run, or a
  wiped directory): nothing can adopt its pods any more, so they are removed. A cluster that is only
  stopped keeps its pods — the next `orchestra up` on its state directory adopts them.
* A `podman system service` that orchestra started (its socket sits in a state directory's
  `podman/`, beside the containers.conf and log orchestra writes there) and whose parent is gone
  was left by a killed orchestra of an older version (today the service runs under runtime/reaper.py
  and ends with its cluster): it is stopped.
Must not import: cli.
"""

from __future__ import annotations

import logging
import os
import signal
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import trio

from orchestra.app.state import why_dead
from orchestra.node.sandbox import LABEL_CLUSTER, LABEL_STATE_DIR
from orchestra.runtime.base import RuntimeFailure

log = logging.getLogger("orchestra")

@attrs.frozen
class Removed:
    cluster_id: str
    reason: str
    pods: tuple[str, ...]


async def remove_dead_clusters_pods(runtime: Any, own_cluster_id: str) -> list[Removed]:
    """Remove the Podman pods of every other cluster that is dead (see the module docstring)."""
    by_cluster: dict[str, list[Any]] = defaultdict(list)
    for sandbox in await runtime.list_sandboxes():
        cluster_id = sandbox.labels.get(LABEL_CLUSTER, "")
        if cluster_id and cluster_id != own_cluster_id:
            by_cluster[cluster_id].append(sandbox)
    removed = []
    for cluster_id, sandboxes in by_cluster.items():
        state_dir = next(
            (s.labels[LABEL_STATE_DIR] for s in sandboxes if s.labels.get(LABEL_STATE_DIR)), None
        )
        reason = why_dead(cluster_id, state_dir) if state_dir else None
        if reason is None:
            continue
        names = []
        for sandbox in sandboxes:
            try:
                await runtime.remove_sandbox(sandbox.id)
            except RuntimeFailure as exc:  # best effort: the next start tries again
                log.warning("could not remove pod %s of dead cluster %s: %s", sandbox.name, cluster_id, exc)
                continue
            names.append(sandbox.name)
        removed.append(Removed(cluster_id, reason, tuple(names)))
        log.warning(
            "removed %d pods of cluster %s (%s): %s", len(names), cluster_id, reason, ", ".join(names)
        )
    return removed


@attrs.frozen
class OrphanService:
    pid: int
    socket: str


def processes(proc: Path = Path("/proc")) -> Iterator[tuple[int, int, list[bytes]]]:
    """(pid, parent pid, argv) of every process this one may read."""
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile, or not ours to read
            continue
        yield int(entry.name), int(stat.rsplit(")", 1)[1].split()[1]), argv


def orphaned_podman_services(proc: Path = Path("/proc")) -> list[OrphanService]:
    """`podman system service` processes orchestra started whose parent is gone (see the docstring)."""
    found = []
    for pid, ppid, argv in processes(proc):
        socket = _service_socket([a.decode(errors="replace") for a in argv])
        if socket and ppid == 1 and _made_by_orchestra(Path(socket).parent):
            found.append(OrphanService(pid, socket))
    return found


def _service_socket(argv: list[str]) -> str | None:
    if len(argv) < 3 or not argv[0].endswith("podman") or argv[1:3] != ["system", "service"]:
        return None
    return next((a[len("unix://"):] for a in argv[3:] if a.startswith("unix://")), None)


def _made_by_orchestra(directory: Path) -> bool:
    return all(
        (directory / name).exists() for name in ("containers.conf", "podman-service.log", "podman.sock")
    )


def stop_orphaned_podman_services(proc: Path = Path("/proc")) -> list[OrphanService]:
    stopped = []
    for orphan in orphaned_podman_services(proc):
        try:
            os.kill(orphan.pid, signal.SIGTERM)
        except ProcessLookupError:  # ended by itself meanwhile
            continue
        stopped.append(orphan)
        log.warning("stopped podman system service %d left by a killed orchestra (socket %s)", orphan.pid,
                    orphan.socket)
    return stopped


async def clean_up_host(runtime: Any, own_cluster_id: str) -> None:
    """Start-up's background sweep: orphaned services, then dead clusters' pods."""
    await trio.to_thread.run_sync(stop_orphaned_podman_services)
    await remove_dead_clusters_pods(runtime, own_cluster_id)
