"""What an earlier, dead run of `orchestra join` on the same state directory left: found and removed
when the node starts, as `orchestra up` does for dead clusters (app/leftovers.py).

Owns: the run marker <state-dir>/node/run.json (the cluster the run joined, by its CA's sha256, and
whether it was to remove its pods on exit), written when a run starts and removed once it stopped
cleanly; and the rule for what a dead run left: a marker still there means the run ended without its
clean stop (SIGKILL, a crash, a power loss). Its pods are removed when that run asked for
`--stop-pods` (it would have removed them itself), and pods of another cluster (labelled with another
CA's hash, e.g. after the state dir joined a new cluster) are always removed; the others are adopted,
as a restarted kubelet adopts its pods. Removing a node's last pod lets netavark remove its bridge; a
bridge left without pods is deleted here too.
Must not import: cli.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import trio

from orchestra.node.sandbox import LABEL_CLUSTER
from orchestra.runtime.base import RuntimeFailure

log = logging.getLogger("orchestra.join")
MARKER = "run.json"


def cluster_id_of(ca_pem: bytes) -> str:
    """A joined node's name for its cluster: the CA it pinned (the pin of the join token)."""
    return hashlib.sha256(ca_pem).hexdigest()[:32]


def read_marker(node_dir: Path) -> dict[str, Any] | None:
    """The marker of an earlier run that did not stop cleanly, or None."""
    try:
        found = json.loads((node_dir / MARKER).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # torn by a crash: still a run that did not stop cleanly
        log.warning("unreadable run marker %s (%s): treating the earlier run as dead", node_dir / MARKER, exc)
        return {}
    return found if isinstance(found, dict) else {}


def write_marker(node_dir: Path, cluster_id: str, stop_pods: bool) -> None:
    node_dir.mkdir(parents=True, exist_ok=True)
    tmp = node_dir / (MARKER + ".tmp")
    tmp.write_text(json.dumps({"cluster": cluster_id, "stopPods": stop_pods}))
    tmp.replace(node_dir / MARKER)


def clear_marker(node_dir: Path) -> None:
    (node_dir / MARKER).unlink(missing_ok=True)


async def remove_leftovers(runtime: Any, cluster_id: str, earlier: dict[str, Any] | None) -> list[str]:
    """Remove the pods a dead earlier run left (see the module docstring); their names."""
    stop_all = earlier is not None and bool(earlier.get("stopPods", True))
    removed = []
    for sandbox in await runtime.list_sandboxes({}):
        other_cluster = sandbox.labels.get(LABEL_CLUSTER, cluster_id) != cluster_id
        if not (stop_all or other_cluster):
            continue
        try:
            await runtime.stop_sandbox(sandbox.id, 0)
            await runtime.remove_sandbox(sandbox.id)
        except RuntimeFailure as exc:  # best effort: the agent's adoption removes what it does not keep
            log.warning("could not remove pod %s left by an earlier run: %s", sandbox.name, exc)
            continue
        removed.append(sandbox.name)
    if removed:
        why = "asked for --stop-pods" if stop_all else "joined another cluster"
        log.warning("removed %d pods of an earlier run of this node that %s and did not stop cleanly: %s",
                    len(removed), why, ", ".join(removed))
    return removed


async def remove_idle_bridge(interface: str) -> None:
    """Delete the node's bridge if no pod uses it any more (netavark normally does this itself)."""
    shown = await trio.run_process(["ip", "-j", "link", "show", "master", interface], check=False,
                                   capture_stdout=True, capture_stderr=True)
    if shown.returncode != 0 or json.loads(shown.stdout or b"[]"):
        return  # no such bridge, or pods' veths still on it
    deleted = await trio.run_process(["ip", "link", "delete", interface], check=False,
                                     capture_stderr=True)
    if deleted.returncode == 0:
        log.info("removed the idle pod bridge %s", interface)
