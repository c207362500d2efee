"""`orchestra up --nodes N`: the control plane's host node plus N-1 worker nodes on this machine, each
a real node in a Linux network namespace of its own, joined exactly as a node on another machine is.

Owns: the workers' lifetime. At start: their namespaces on one link (net/nodelinks.py: a switch
namespace; the host's end `orchnodes`, 10.243.0.1, which the API server also listens on and advertises),
a bootstrap token (`kube-system/bootstrap-token-<id>`, one hour, made in-process like `orchestra token
create`), and per worker `nsenter --net=/run/netns/orchestra-<name> orchestra join
https://10.243.0.1:PORT --token ... --node-name <name> --state-dir <state>/nodes/<name>` under reaper.py
(it dies with this process, SIGKILL included); `started()` once every worker's Node is Ready (or its wait
ran out: the cluster starts anyway and says which node is late). While the cluster runs, a worker that
exits (a crash, a kill) is started again after a backoff of 1 s doubling to 30 s; it resumes with its
certificate and adopts or removes its pods, as a restarted `orchestra join` does. At stop: the workers
get SIGTERM (their pods keep running for the next start, or with --stop-pods are removed first); with
--stop-pods the namespaces and the link are removed too, else they stay for the next `up` to adopt.
Worker names are `worker-1` ... `worker-<N-1>`; each one's output is `<state>/nodes/<name>.log`, the pid
of its process (the reaper's; its child is the `orchestra join`) is `<state>/nodes/<name>.pid`.
Must not import: cli.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Any

import attrs
import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from orchestra.api.errors import ApiError
from orchestra.api.policy import bootstraptoken as bt
from orchestra.app.config import Cluster
from orchestra.net.nodelinks import NETNS_DIR, NodeLinks, netns_name
from orchestra.net.routes import NetworkSetupError

log = logging.getLogger("orchestra.nodes")

TOKEN_TTL = dt.timedelta(hours=1)
READY_WAIT = 120.0  # seconds `up` waits for its workers' Nodes to be Ready before it goes on
STOP_GRACE = 40.0  # seconds a worker has to stop (its pods too, with --stop-pods) before SIGKILL
RESTART_BACKOFF = (1.0, 30.0)
MAX_SOCKET_PATH = 107  # a Unix socket's path: <state>/nodes/<name>/podman/podman.sock must fit


def worker_names(nodes: int) -> list[str]:
    return [f"worker-{i}" for i in range(1, nodes)]


def check_state_dir(state_dir: Path, nodes: int) -> None:
    """Refuse a state dir whose workers' Podman sockets would not fit a Unix socket path."""
    if nodes < 2:
        return
    longest = state_dir.resolve() / "nodes" / worker_names(nodes)[-1] / "podman" / "podman.sock"
    if len(str(longest)) > MAX_SOCKET_PATH:
        raise NetworkSetupError(
            f"--state-dir {state_dir} is too long for worker nodes: their Podman socket {longest} would "
            f"pass the {MAX_SOCKET_PATH}-character limit of a Unix socket path; give a shorter --state-dir")


@attrs.define
class Worker:
    name: str
    index: int
    address: str
    state_dir: Path
    starts: int = 0
    process: trio.Process | None = None


class WorkerNodes:
    def __init__(self, cluster: Cluster, links: NodeLinks) -> None:
        self.cluster = cluster
        self.links = links
        state = cluster.config.state_dir
        self.workers = [Worker(name, i, "", state / "nodes" / name)
                        for i, name in enumerate(worker_names(cluster.config.nodes), start=1)]
        self.server = f"https://{links.host_address}:{cluster.config.listen_port}"
        self._token = ""

    async def run(self, *, task_status: trio.TaskStatus[WorkerNodes] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            for worker in self.workers:
                worker.state_dir.mkdir(parents=True, exist_ok=True)
                worker.address = await trio.to_thread.run_sync(
                    self.links.ensure_node, worker.name, worker.index)
            self._token = await self._create_token()
            async with trio.open_nursery() as nursery:
                for worker in self.workers:
                    nursery.start_soon(self._keep_running, worker)
                await self._wait_ready()
                task_status.started(self)
        finally:
            if self.cluster.config.stop_pods_on_exit:
                with trio.CancelScope(shield=True):
                    names = [w.name for w in self.workers]
                    await trio.to_thread.run_sync(self.links.remove, names)
                    log.info("removed the worker nodes' network namespaces %s",
                             ", ".join(map(netns_name, names)))

    def _command(self, worker: Worker) -> list[str]:
        config = self.cluster.config
        # nsenter --net, not `ip netns exec`: that also remounts /sys in a mount namespace of its own,
        # which hides the host's cgroup2 mount from Podman (and would keep the node's overlay mounts
        # from the host's Podman tools)
        cmd = ["nsenter", f"--net={NETNS_DIR / netns_name(worker.name)}", sys.executable, "-m", "orchestra",
               "join", self.server, "--token", self._token, "--node-name", worker.name, "--state-dir",
               str(worker.state_dir), "--timings", config.timings]
        return [*cmd, "--stop-pods"] if config.stop_pods_on_exit else cmd

    async def _keep_running(self, worker: Worker) -> None:
        from orchestra.runtime.service import start_reaped

        log_path = worker.state_dir.parent / f"{worker.name}.log"
        pid_path = worker.state_dir.parent / f"{worker.name}.pid"
        backoff = RESTART_BACKOFF[0]
        while True:
            worker.starts += 1
            started = trio.current_time()
            with log_path.open("ab") as out:
                async with trio.open_nursery() as nursery:
                    process = await start_reaped(nursery, self._command(worker), env=None, log=out,
                                                 grace=STOP_GRACE)
                    worker.process = process
                    pid_path.write_text(f"{process.pid}\n")
                    log.info("node %s: started in network namespace %s (%s), log %s", worker.name,
                             netns_name(worker.name), worker.address, log_path)
                    await process.wait()
            log.warning("node %s: its process exited with status %s; starting it again in %g s (see %s)",
                        worker.name, process.returncode, backoff, log_path)
            await trio.sleep(backoff)
            ran = trio.current_time() - started
            backoff = RESTART_BACKOFF[0] if ran > 60 else min(backoff * 2, RESTART_BACKOFF[1])

    async def _create_token(self) -> str:
        core = self.cluster.core
        ca = x509.load_pem_x509_certificate(self.cluster.ca_cert.read_bytes())
        token_id, secret = bt.new_token()
        body = bt.token_secret(token_id, secret, expires=bt.now_utc() + TOKEN_TTL,
                               description="orchestra up --nodes: joins this host's worker nodes")
        rt = core.registry.by_kind("Secret")
        assert rt is not None
        await core.create(rt, bt.NAMESPACE, body)
        return bt.join_token(ca.public_bytes(serialization.Encoding.DER), token_id, secret)

    async def _wait_ready(self) -> None:
        waiting = {w.name for w in self.workers}
        with trio.move_on_after(READY_WAIT):
            while waiting:
                waiting = {name for name in waiting if not self._ready(name)}
                if waiting:
                    await trio.sleep(0.2)
        if waiting:
            log.warning("worker node(s) %s not Ready after %g s; the cluster goes on without waiting "
                        "(see %s)", ", ".join(sorted(waiting)), READY_WAIT,
                        self.cluster.config.state_dir / "nodes")

    def _ready(self, name: str) -> bool:
        rt = self.cluster.core.registry.by_kind("Node")
        assert rt is not None
        try:
            node: dict[str, Any] = self.cluster.core.get(rt, None, name)
        except ApiError:
            return False
        conditions = (node.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def statistics(self) -> dict[str, Any]:
        return {w.name: {"address": w.address, "starts": w.starts,
                         "pid": w.process.pid if w.process else None} for w in self.workers}

