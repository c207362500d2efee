"""Starting and supervising orchestra's own `podman system service`, or checking a given socket.

Owns: the packaged containers.conf (written into the state directory and exported as
CONTAINERS_CONF, see ../shared/reference/PODMAN.md §1), the service process, and the clear
`RuntimeUnavailable` messages when Podman is missing or does not come up.
Must not import: podman (podman-py), anything above the runtime layer.

    socket_path = await nursery.start(PodmanService(state_dir).run)
    runtime = PodmanRuntime(socket_path)

Containers keep running when the service stops (conmon is independent), so cancelling `run`
only stops the API service; a restarted orchestra adopts its containers by label.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import BinaryIO

import httpx
import trio

from orchestra.runtime.base import RuntimeUnavailable

CONF_NAME = "containers.conf"
# stdlib-only script, so no site-packages: it starts in milliseconds
REAPER = (sys.executable, "-I", "-S", str(Path(__file__).with_name("reaper.py")))
REAPER_GRACE = 5.0  # seconds between SIGTERM and SIGKILL (reaper.py's default)
SOCKET_ENV = "ORCHESTRA_PODMAN_SOCKET"


def packaged_containers_conf() -> str:
    """The text of the containers.conf that works on these hosts (runc, ulimits, exit delay)."""
    return (resources.files("orchestra") / "data" / CONF_NAME).read_text()


def write_containers_conf(state_dir: Path) -> Path:
    """Write the packaged containers.conf into `state_dir` (only if changed) and return its path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / CONF_NAME
    text = packaged_containers_conf()
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def podman_env(conf_path: Path) -> dict[str, str]:
    """Environment for any podman process (service and CLI must share the same config)."""
    return {**os.environ, "CONTAINERS_CONF": str(conf_path)}


def socket_from_url(url: str) -> str:
    """`unix:///run/x.sock` or a plain path -> the filesystem path."""
    for prefix in ("unix://", "http+unix://"):
        if url.startswith(prefix):
            return url[len(prefix) :]
    return url


def given_socket(explicit: str | None = None) -> str | None:
    """The socket the user asked for (argument, then $ORCHESTRA_PODMAN_SOCKET), if any."""
    url = explicit or os.environ.get(SOCKET_ENV)
    return socket_from_url(url) if url else None


async def ping(socket_path: str) -> bool:
    """True if a Podman service answers `_ping` on the socket (within 2 s)."""
    transport = httpx.AsyncHTTPTransport(uds=socket_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://d", timeout=2.0) as client:
        try:
            response = await client.get("/v4.0.0/libpod/_ping")
        except httpx.TransportError:  # not listening (yet), or a stale socket file
            return False
    return response.status_code == 200 and response.text == "OK"


async def check_socket(socket_path: str) -> str:
    """Return the socket path if a Podman service answers there, else RuntimeUnavailable."""
    if not await ping(socket_path):
        raise RuntimeUnavailable(
            f"no Podman service answers on {socket_path}: start one with "
            f"`CONTAINERS_CONF=<orchestra>/data/containers.conf podman system service --time=0 "
            f"unix://{socket_path}`, or let orchestra start its own (omit the socket option)"
        )
    return socket_path


class PodmanService:
    """Runs `podman system service --time=0 unix://<state_dir>/podman.sock` for as long as `run`
    runs; `run` reports the socket path through `task_status.started()` once `_ping` answers."""

    def __init__(self, state_dir: Path | str, *, podman: str = "podman", start_timeout: float = 30.0,
                 env: dict[str, str] | None = None):
        """`env`: the environment of a node with its own Podman (nodepodman.py: its containers.conf,
        storage and networks); None: the packaged containers.conf and the host's storage."""
        self.state_dir = Path(state_dir)
        self.env = env
        self.podman = podman
        self.start_timeout = start_timeout
        self.socket_path = str(self.state_dir / "podman.sock")
        self.log_path = self.state_dir / "podman-service.log"

    def _executable(self) -> str:
        found = shutil.which(self.podman)
        if found is None:
            raise RuntimeUnavailable(
                f"podman not found on PATH ({self.podman!r}); install it (`apt-get install podman runc`) "
                "or run orchestra with the simulated runtime"
            )
        return found

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:  # never written: nothing to add to the message
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        cmd, env = self._prepare()
        with self.log_path.open("ab") as log:
            async with trio.open_nursery() as nursery:
                process = await start_reaped(nursery, cmd, env=env, log=log)
                await self._wait_ready(process)
                task_status.started(self.socket_path)
                await process.wait()
        raise RuntimeUnavailable(
            f"podman system service exited with status {process.returncode}; "
            f"last lines of {self.log_path}:\n{self._log_tail()}"
        )

    def _prepare(self) -> tuple[list[str], dict[str, str]]:
        executable = self._executable()
        env = self.env if self.env is not None else podman_env(write_containers_conf(self.state_dir))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)  # stale from a previous run
        return [executable, "system", "service", "--time=0", f"unix://{self.socket_path}"], env

    async def _wait_ready(self, process: trio.Process) -> None:
        with trio.move_on_after(self.start_timeout):
            while process.returncode is None:
                if await ping(self.socket_path):
                    return
                await trio.sleep(0.05)
            raise RuntimeUnavailable(
                f"podman system service failed to start (status {process.returncode}); "
                f"check the config {self.state_dir / CONF_NAME}; last lines of {self.log_path}:\n"
                f"{self._log_tail()}"
            )
        process.terminate()
        raise RuntimeUnavailable(
            f"podman system service did not answer on {self.socket_path} within {self.start_timeout} s; "
            f"see {self.log_path}"
        )


async def start_reaped(nursery: trio.Nursery, cmd: list[str], *, env: dict[str, str] | None, log: BinaryIO,
                       grace: float = REAPER_GRACE) -> trio.Process:
    """Start `cmd` in `nursery` under reaper.py, in a session of its own, output to `log`: it never
    outlives this process (the reaper's stdin is a pipe only this process writes to; when this process
    ends, even by SIGKILL, the pipe closes and the reaper stops the command: SIGTERM, SIGKILL `grace`
    seconds later). Cancelling the task does the same. The Process is returned once started; its exit
    is for the caller to read (no CalledProcessError)."""
    lifeline_r, lifeline_w = os.pipe()
    try:
        process: trio.Process = await nursery.start(
            _run_reaped, [*REAPER, "--grace", f"{grace:g}", "--", *cmd], env, log, lifeline_r, lifeline_w,
            grace)
    finally:
        os.close(lifeline_r)
    return process


async def _run_reaped(cmd: list[str], env: dict[str, str] | None, log: BinaryIO, stdin: int, lifeline: int,
                      grace: float, *, task_status: trio.TaskStatus[trio.Process]) -> None:
    async def deliver_cancel(process: trio.Process) -> None:
        process.terminate()  # the reaper passes it on and kills the command `grace` s later
        with trio.move_on_after(grace + 2):
            await process.wait()
            return
        process.kill()

    # A session of its own: a Ctrl-C on the terminal goes to orchestra, which decides when the command
    # stops (the Podman service: after --stop-pods has removed pods through it).
    try:
        await trio.run_process(cmd, env=env, stdin=stdin, stdout=log, stderr=log, check=False,
                               start_new_session=True, deliver_cancel=deliver_cancel, task_status=task_status)
    finally:
        os.close(lifeline)
