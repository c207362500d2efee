"""app/leftovers.py and app/state.py: which clusters are dead, and orphaned Podman services."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from orchestra.app.leftovers import orphaned_podman_services, remove_dead_clusters_pods
from orchestra.app.state import why_dead, write_cluster_id
from orchestra.node.sandbox import LABEL_CLUSTER, LABEL_STATE_DIR
from orchestra.runtime.base import PodSandboxSpec
from orchestra.runtime.simulated import SimulatedRuntime


@pytest.mark.parametrize(("setup", "expected"), [
    ("missing", "its state directory {d} is gone"),
    ("other", "its state directory {d} now holds another cluster"),
    ("same", None),
    ("unrecorded", None),
], ids=["directory-gone", "directory-reused", "stopped-cluster", "older-orchestra"])
def test_why_dead(tmp_path: Path, setup: str, expected: str | None) -> None:
    state = tmp_path / "state"
    if setup != "missing":
        state.mkdir()
    if setup in ("other", "same"):
        write_cluster_id(state, "uid-a" if setup == "same" else "uid-b")
    reason = why_dead("uid-a", str(state))
    assert reason == (expected.format(d=state) if expected else None)


def _fake_proc(root: Path, pid: int, ppid: int, argv: list[str]) -> None:
    entry = root / str(pid)
    entry.mkdir(parents=True)
    (entry / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (entry / "stat").write_text(f"{pid} (podman) S {ppid} {pid} {pid} 0 -1\n")


def _orchestra_podman_dir(state: Path) -> Path:
    d = state / "podman"
    d.mkdir(parents=True)
    for name in ("containers.conf", "podman-service.log", "podman.sock"):
        (d / name).write_text("")
    return d


def test_only_orphaned_services_orchestra_started_are_found(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    ours = _orchestra_podman_dir(tmp_path / "dead-cluster")
    live = _orchestra_podman_dir(tmp_path / "live-cluster")
    service = ["/usr/bin/podman", "system", "service", "--time=0"]
    _fake_proc(proc, 100, 1, [*service, f"unix://{ours}/podman.sock"])  # orphaned: found
    _fake_proc(proc, 101, 4242, [*service, f"unix://{live}/podman.sock"])  # its reaper still runs
    _fake_proc(proc, 102, 1, [*service, "unix:///run/podman/podman.sock"])  # the administrator's
    _fake_proc(proc, 103, 1, ["/usr/bin/podman", "ps"])
    (proc / "self").mkdir()
    found = orphaned_podman_services(proc)
    assert [(o.pid, o.socket) for o in found] == [(100, f"{ours}/podman.sock")]


async def test_pods_of_dead_clusters_are_removed_and_others_kept(tmp_path: Path) -> None:
    runtime = SimulatedRuntime()
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        await _check_dead_clusters_pods(tmp_path, runtime)
        nursery.cancel_scope.cancel()


async def _check_dead_clusters_pods(tmp_path: Path, runtime: SimulatedRuntime) -> None:
    gone, reused, stopped = tmp_path / "gone", tmp_path / "reused", tmp_path / "stopped"
    reused.mkdir()
    stopped.mkdir()
    write_cluster_id(reused, "uid-new")
    write_cluster_id(stopped, "uid-stopped")

    async def sandbox(name: str, cluster: str, state: Path | None) -> None:
        labels = {LABEL_CLUSTER: cluster, **({LABEL_STATE_DIR: str(state)} if state else {})}
        await runtime.create_sandbox(PodSandboxSpec(name=name, namespace="default", uid=name, labels=labels))

    await sandbox("p-gone", "uid-gone", gone)
    await sandbox("p-reused", "uid-old", reused)
    await sandbox("p-stopped", "uid-stopped", stopped)
    await sandbox("p-unlabelled", "uid-older", None)
    await sandbox("p-own", "uid-own", gone)  # this cluster's own pods are never touched here
    removed = await remove_dead_clusters_pods(runtime, "uid-own")
    assert {(r.cluster_id, r.pods) for r in removed} == {
        ("uid-gone", ("p-gone",)),
        ("uid-old", ("p-reused",)),
    }
    left = {s.name for s in await runtime.list_sandboxes()}
    assert left == {"p-stopped", "p-unlabelled", "p-own"}
