"""The local etcd of `orchestra up --store etcd`: started, watched and restarted by orchestra (k3s's
`--cluster-init` is the model), so one command gives a cluster whose state is in etcd.

Owns `<state-dir>/etcd/`: `data/` (etcd's data directory), `etcd.log` (its output), `ports.json` (its
client and peer ports: free ones picked at the first start and kept, so `etcdctl --endpoints
http://127.0.0.1:<client>` stays valid across restarts; new ones only when another process took them),
`bootstrapped` (written once etcd was first healthy: a data directory without it is an interrupted
first start, which etcd cannot resume, and is removed).
It listens on 127.0.0.1 only (clients and peer), one member named `orchestra`.
Owns too: the etcd command line (`etcd_command`, which tests/etcdserver.py uses as well), the health
check (etcd's `GET /health`), and the process's life: it runs under runtime.service.start_reaped (it
never outlives orchestra, SIGKILL included), `run()` reports its `etcd://` URL once it is healthy, and
when it exits while orchestra runs it is started again (backoff 0.5 s doubling to 10 s) while the store
answers 503 and its watch reconnects. Cancelling `run()` stops it (SIGTERM, SIGKILL 5 s later).
At start, an etcd already on the data directory is stopped when it is an orphan (init's child: its
reaper was killed too) and refused (EtcdStartError) when a live process runs it (another orchestra).
Must not import: cli.

    url = await nursery.start(LocalEtcd(state_dir / "etcd").run)   # "etcd://127.0.0.1:PORT"
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import signal
import socket
from pathlib import Path

import httpx
import orjson
import trio

from orchestra.runtime.service import start_reaped

log = logging.getLogger("orchestra.etcd")

LOCAL = "etcd"  # `--store etcd`: this module's etcd, rather than an etcd://HOST:PORT given
ETCD = "/usr/bin/etcd"  # Debian's etcd-server (./dev installs it); $PATH's etcd first
MEMBER = "orchestra"
START_TIMEOUT = 30.0  # first start: etcd elects itself in about a second
RESTART_BACKOFF = (0.5, 10.0)  # first delay, cap (doubling), after etcd exited while orchestra runs
STOP_GRACE = 5.0  # SIGTERM to SIGKILL when orchestra stops
BOOTSTRAPPED = "bootstrapped"  # in the directory once etcd was healthy on its data directory


class EtcdStartError(RuntimeError):
    """The local etcd could not be started (missing binary, exited at once, never healthy)."""


def etcd_binary() -> str | None:
    """The etcd executable, or None when it is not installed."""
    found = shutil.which("etcd")
    if found:
        return found
    return ETCD if Path(ETCD).exists() else None


def etcd_command(etcd: str, data_dir: Path, client_port: int, peer_port: int, *, name: str = MEMBER,
                 host: str = "127.0.0.1") -> list[str]:
    """A one-member etcd cluster on `host`: clients on `client_port`, the (unused) peer on `peer_port`.
    On a restart with an existing data directory etcd ignores the --initial-* flags; a single member
    starts even when its ports changed."""
    client, peer = f"http://{host}:{client_port}", f"http://{host}:{peer_port}"
    return [etcd, "--name", name, "--data-dir", str(data_dir),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"{name}={peer}", "--initial-cluster-state", "new",
            "--logger", "zap", "--log-outputs", "stderr"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Nobody listens on `port` (connections of a killed etcd in TIME_WAIT do not count: etcd, like any
    Go server, binds with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:  # in use (by another process: ours is stopped when this is asked)
            return False
    return True


class LocalEtcd:
    """See the module docstring. `restarts` counts the starts after the first."""

    def __init__(self, directory: Path, *, etcd: str | None = None, start_timeout: float = START_TIMEOUT,
                 host: str = "127.0.0.1") -> None:
        self.directory = Path(directory)
        self.etcd = etcd
        self.start_timeout = start_timeout
        self.host = host
        self.log_path = self.directory / "etcd.log"
        self.client_port = 0
        self.peer_port = 0
        self.restarts = 0
        self.process: trio.Process | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.client_port}"

    @property
    def url(self) -> str:
        """What the store opens (`--store etcd://...`)."""
        return f"etcd://{self.host}:{self.client_port}"

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:  # never written: nothing to add to a message
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Start etcd, report its URL once healthy, and keep it running until cancelled."""
        executable = self.etcd or etcd_binary()
        if executable is None:
            raise EtcdStartError("--store etcd needs the etcd binary: install Debian's etcd-server "
                                 "(`apt-get install etcd-server`), or give --store etcd://HOST:PORT")
        self._prepare()
        await self._stop_orphans()
        self._drop_unfinished_bootstrap()
        backoff = RESTART_BACKOFF[0]
        first = True
        while True:
            started = trio.current_time()
            code = await self._run_once(executable, task_status, first=first)
            first = False
            log.warning("the local etcd exited with status %s; starting it again in %g s; last lines of "
                        "%s:\n%s", code, backoff, self.log_path, self.log_tail(5))
            await trio.sleep(backoff)
            healthy_for = trio.current_time() - started
            backoff = RESTART_BACKOFF[0] if healthy_for > 60 else min(backoff * 2, RESTART_BACKOFF[1])
            self.restarts += 1

    async def _run_once(self, executable: str, task_status: trio.TaskStatus[str], *,
                        first: bool) -> int | None:
        """One etcd process, from start to exit; its status. The first start failing is an error (the
        first healthy start reports the URL; later ones have nobody to tell)."""
        self._choose_ports()
        cmd = etcd_command(executable, self.directory / "data", self.client_port, self.peer_port,
                           host=self.host)
        failed: EtcdStartError | None = None
        with self.log_path.open("ab") as out:
            async with trio.open_nursery() as nursery:
                self.process = process = await start_reaped(nursery, cmd, env=None, log=out, grace=STOP_GRACE)
                if await self._wait_healthy(process):
                    log.info("local etcd %s healthy (data %s, log %s)", self.endpoint,
                             self.directory / "data", self.log_path)
                    self._mark_bootstrapped()
                    if first:
                        task_status.started(self.url)
                elif first:
                    failed = self._start_error(process)
                    nursery.cancel_scope.cancel()  # stops it (the reaper's SIGTERM) if it still runs
                await process.wait()
        self.process = None
        if failed is not None:
            raise failed
        return process.returncode

    def _start_error(self, process: trio.Process) -> EtcdStartError:
        how = (f"exited with status {process.returncode}" if process.returncode is not None
               else f"did not answer on {self.endpoint}/health within {self.start_timeout:g} s")
        return EtcdStartError(f"the local etcd {how}; last lines of {self.log_path}:\n{self.log_tail()}")

    async def _wait_healthy(self, process: trio.Process) -> bool:
        """True once etcd answers healthy; False if it exited first or did not within start_timeout."""
        async with httpx.AsyncClient(timeout=1.0) as client:
            with trio.move_on_after(self.start_timeout):
                while process.returncode is None:
                    if await healthy(client, self.endpoint):
                        return True
                    await trio.sleep(0.05)
        return False

    async def _stop_orphans(self) -> None:
        """An etcd on our data directory is either another orchestra's (an error: one state directory
        serves one orchestra) or an orphan (its parent is init: the reaper was killed with orchestra,
        e.g. by a kill of the whole process group), which is stopped so this start can take over."""
        data = self.directory / "data"
        for pid, ppid in etcds_on(data):
            if ppid != 1:
                raise EtcdStartError(f"an etcd (pid {pid}) already runs on {data}: is another orchestra "
                                     f"running on {self.directory.parent}?")
            log.warning("stopping etcd %d left running on %s by a killed orchestra", pid, data)
            with contextlib.suppress(ProcessLookupError):  # gone by itself meanwhile
                os.kill(pid, signal.SIGTERM)
            with trio.move_on_after(STOP_GRACE) as waited:
                await _gone(data, pid)
            if waited.cancelled_caught:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)  # etcd wants its data private; the log names keys

    def _drop_unfinished_bootstrap(self) -> None:
        """A data directory without the `bootstrapped` mark is from a first start stopped before etcd
        was healthy (before orchestra wrote anything): etcd stopped mid-bootstrap keeps a member with
        no voters, which never elects itself; so it goes, and etcd bootstraps afresh."""
        data = self.directory / "data"
        if data.is_dir() and not (self.directory / BOOTSTRAPPED).exists():
            log.warning("removing %s: the first start of the local etcd there did not finish", data)
            shutil.rmtree(data)

    def _mark_bootstrapped(self) -> None:
        mark = self.directory / BOOTSTRAPPED
        if not mark.exists():
            mark.write_text("etcd was healthy on this data directory; orchestra keeps it\n")

    def _choose_ports(self) -> None:
        """The recorded ports when they are free, else new ones (recorded)."""
        path = self.directory / "ports.json"
        try:
            recorded = orjson.loads(path.read_bytes())
            client, peer = int(recorded["client"]), int(recorded["peer"])
        except (OSError, ValueError, KeyError, TypeError):  # first start, or a damaged file: pick anew
            client = peer = 0
        if not (client and peer and port_free(client, self.host) and port_free(peer, self.host)):
            if client:
                log.warning("the local etcd's ports %s/%s are taken; it moves to new ones", client, peer)
            client = free_port(self.host)
            while (peer := free_port(self.host)) == client:
                pass
            path.write_bytes(orjson.dumps({"client": client, "peer": peer}))
        self.client_port, self.peer_port = client, peer


def etcds_on(data_dir: Path, proc: Path = Path("/proc")) -> list[tuple[int, int]]:
    """(pid, parent pid) of every etcd process whose --data-dir is `data_dir`."""
    from orchestra.app.leftovers import processes

    wanted = str(data_dir).encode()
    return [(pid, ppid) for pid, ppid, argv in processes(proc)
            if Path(argv[0].decode(errors="replace")).name == "etcd"
            and any(a == b"--data-dir" and b == wanted for a, b in itertools.pairwise(argv))]


async def _gone(data_dir: Path, pid: int) -> None:
    """Returns once etcd `pid` no longer runs on `data_dir`."""
    while True:  # not our child: nothing to wait on but /proc
        if all(p != pid for p, _ in etcds_on(data_dir)):
            return
        await trio.sleep(0.05)


async def healthy(client: httpx.AsyncClient, endpoint: str) -> bool:
    """etcd's own health check: it has a leader and serves reads (`{"health":"true"}`)."""
    try:
        response = await client.get(f"{endpoint}/health")
    except httpx.HTTPError:  # not listening yet, or stopped
        return False
    return response.status_code == 200 and b'"true"' in response.content
