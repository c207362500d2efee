"""pods/log, pods/exec and pods/portforward driven by the real kubectl and the Python client.

The API server runs in the test's own trio loop (store, ApiCore, ApiServer with a token, TLS,
hypercorn) with `PodStreamsHandler` over a `SimulatedRuntime`; kubectl runs as a subprocess with
a throw-away HOME. Port-forward reaches a trio TCP echo server on 127.0.0.1 (the locator's pod IP).
The harness here is shared with test_streams_podman.py.
"""

from __future__ import annotations

import fcntl
import functools
import gc
import math
import os
import pty
import shutil
import socket
import struct
import subprocess
import termios
import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from orchestra.api.errors import BadRequest
from orchestra.api.request.core import ApiCore
from orchestra.apiserver.serve import serve_api
from orchestra.apiserver.server import ApiServer
from orchestra.apiserver.streams import PodStreamsHandler
from orchestra.apiserver.tls import ensure_serving_cert
from orchestra.app import write_kubeconfig
from orchestra.app.bootstrap import bootstrap
from orchestra.runtime.base import ContainerSpec, PodSandboxSpec, Runtime
from orchestra.runtime.simulated import ContainerScript, SimScript, SimulatedRuntime, open_simulated_runtime
from orchestra.store import Store

KUBECTL_DIR = "/usr/lib/google-cloud-sdk/bin"
KUBECTL = f"{KUBECTL_DIR}/kubectl.1.32"
TOKEN = "streams-test-token"
MiB = 1024 * 1024

pytestmark = pytest.mark.kubectl


def kubectl_path(version: str = "1.32") -> str:
    path = f"{KUBECTL_DIR}/kubectl.{version}"
    if not os.access(path, os.X_OK):
        pytest.fail(f"kubectl {version} is required for these tests ({path})")
    return path


# ------------------------------------------------------------------------------------- locator


class TableLocator:
    """A ContainerLocator over a table the test fills: (namespace, pod, container) -> container id."""

    def __init__(self, runtime: Runtime, pod_ip: str | None = "127.0.0.1") -> None:
        self.runtime = runtime
        self.ip = pod_ip
        self.current: dict[tuple[str, str, str], str] = {}
        self.previous: dict[tuple[str, str, str], str] = {}

    async def locate(
        self, pod: dict[str, Any], container: str, *, previous: bool = False
    ) -> tuple[Runtime, str]:
        meta = pod["metadata"]
        cid = (self.previous if previous else self.current).get((meta["namespace"], meta["name"], container))
        if cid is None:
            if previous:
                raise BadRequest(
                    f'previous terminated container "{container}" in pod "{meta["name"]}" not found'
                )
            raise BadRequest(
                f'container "{container}" in pod "{meta["name"]}" is waiting to start: ContainerCreating'
            )
        return self.runtime, cid

    def pod_ip(self, pod: dict[str, Any]) -> str | None:
        return self.ip

    async def connector(self, pod: dict[str, Any]) -> None:
        return None  # port-forward connects to pod_ip directly


# ------------------------------------------------------------------------------------- harness


@attrs.define
class Harness:
    core: ApiCore
    runtime: Runtime
    locator: TableLocator
    url: str
    kubeconfig: Path
    home: Path
    ca_cert: Path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"KUBECONFIG": str(self.kubeconfig), "HOME": str(self.home)})
        return env

    async def kubectl(self, *args: str, stdin: bytes | None = None, version: str = "1.32",
                      check: bool = True) -> subprocess.CompletedProcess[bytes]:
        result = await trio.run_process([kubectl_path(version), *args], stdin=stdin, capture_stdout=True,
                                        capture_stderr=True, env=self.env(), check=False)
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}: {result.stderr.decode()}"
            )
        return result

    async def make_pod(
        self,
        name: str,
        containers: Sequence[str] = ("main",),
        *,
        image: str = "localhost/busybox:latest",
        command: Sequence[str] = (),
        phase: str = "Running",
        start: bool = True,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A Pod in the store (with status) and, when `start`, its containers in the runtime."""
        rt = self.core.registry.by_kind("Pod")
        assert rt is not None
        meta: dict[str, Any] = {"name": name, "namespace": "default"}
        if annotations:
            meta["annotations"] = annotations
        body = {"metadata": meta, "spec": {"containers": [{"name": c, "image": image} for c in containers]}}
        pod = (await self.core.create(rt, "default", body)).obj
        pod["status"] = {"phase": phase, "podIP": "127.0.0.1", "hostIP": "127.0.0.1"}
        pod = (await self.core.update(rt, "default", name, pod, subresource="status")).obj
        if start:
            uid = pod["metadata"]["uid"]
            sandbox = await self.runtime.create_sandbox(
                PodSandboxSpec(
                    name=f"default_{name}_{uid[:8]}", uid=uid, labels={"orchestra.test": "streams"}
                )
            )
            await self.runtime.start_sandbox(sandbox)
            for c in containers:
                spec = ContainerSpec(
                    name=c, image=image, command=tuple(command), labels={"orchestra.test": "streams"}
                )
                cid = await self.runtime.create_container(sandbox, spec)
                await self.runtime.start_container(cid)
                self.locator.current[("default", name, c)] = cid
        return pod


@asynccontextmanager
async def open_harness(tmp_path: Path, runtime: Runtime, **handler_kwargs: Any) -> AsyncIterator[Harness]:
    store = Store.open_memory()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            core = ApiCore(store)
            await bootstrap(core)
            locator = TableLocator(runtime)
            server = ApiServer(core, token=TOKEN, pod_streams=PodStreamsHandler(locator, **handler_kwargs))
            tls = ensure_serving_cert(tmp_path / "state", ["127.0.0.1"])
            bound = await nursery.start(serve_api, server, "127.0.0.1", 0, tls)
            url = next(b for b in bound if b.startswith("https://"))
            kubeconfig = tmp_path / "kubeconfig"
            write_kubeconfig(kubeconfig, url, TOKEN, tls.ca_cert)
            server.ready = True
            home = tmp_path / "home"
            home.mkdir()
            yield Harness(core, runtime, locator, url, kubeconfig, home, tls.ca_cert)
            nursery.cancel_scope.cancel()
    finally:
        store.close()


# ----------------------------------------------------------------------------- fake processes


class FakeShell:
    """An ExecSession that behaves like an interactive `sh` on a TTY: echoes what is typed, runs
    `echo ...` and `exit [n]`. (SimulatedRuntime only scripts non-interactive commands.)"""

    def __init__(self) -> None:
        self._out_send, self._out = trio.open_memory_channel[tuple[int, bytes]](math.inf)
        self._line = b""
        self._code: int | None = None
        self._done = trio.Event()
        self.resizes: list[tuple[int, int]] = []
        self._out_send.send_nowait((1, b"/ # "))

    async def send_stdin(self, data: bytes) -> None:
        for byte in data:
            ch = bytes((byte,))
            if ch in (b"\r", b"\n"):
                self._out_send.send_nowait((1, b"\r\n"))
                self._run(self._line.decode())
                self._line = b""
            else:
                self._line += ch
                self._out_send.send_nowait((1, ch))

    def _run(self, line: str) -> None:
        for command in line.split(";"):
            words = command.split()
            if words[:1] == ["echo"]:
                self._out_send.send_nowait((1, " ".join(words[1:]).encode() + b"\r\n"))
            elif words[:1] == ["exit"]:
                self._finish(int(words[1]) if len(words) > 1 else 0)
                return
        self._out_send.send_nowait((1, b"/ # "))

    def _finish(self, code: int) -> None:
        self._code = code
        self._out_send.close()
        self._done.set()

    async def close_stdin(self) -> None:
        if self._code is None:
            self._finish(0)

    async def resize(self, width: int, height: int) -> None:
        self.resizes.append((width, height))

    def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[tuple[int, bytes]]:
        async for item in self._out:
            yield item

    async def wait(self) -> int:
        await self._done.wait()
        assert self._code is not None
        return self._code


class ShellRuntime:
    """SimulatedRuntime, except that `sh` with a TTY is a FakeShell."""

    def __init__(self, sim: SimulatedRuntime) -> None:
        self._sim = sim
        self.shells: list[FakeShell] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim, name)

    @asynccontextmanager
    async def exec(self, container_id: str, cmd: Sequence[str], *, stdin: bool = False,
                   tty: bool = False) -> AsyncIterator[Any]:
        if tuple(cmd) == ("sh",) and tty:
            shell = FakeShell()
            self.shells.append(shell)
            yield shell
            return
        async with self._sim.exec(container_id, cmd, stdin=stdin, tty=tty) as session:
            yield session


SCRIPT = SimScript(containers={
    "main": ContainerScript(output=((0, 1, b"line one"), (0, 2, b"line two"), (0, 1, b"line three"))),
    "ticker": ContainerScript(output=tuple((0.2 * i, 1, f"tick {i}".encode()) for i in range(1, 6)),
                              exit_after=1.2),
    "side": ContainerScript(output=((0, 1, b"from the side"),)),
})


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_simulated_runtime(SCRIPT) as sim, open_harness(tmp_path, ShellRuntime(sim)) as h:  # type: ignore[arg-type]
        yield h


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(stream: trio.SocketStream) -> None:
        async with stream:
            try:
                while data := await stream.receive_some(65536):
                    await stream.send_all(data)
            except trio.BrokenResourceError:
                return  # the forwarder reset the connection

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, echo, 0, host="127.0.0.1"))
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------------------------- logs


async def test_kubectl_logs(harness: Harness) -> None:
    with trio.fail_after(30):
        await harness.make_pod("solo")
        await trio.sleep(0.05)
        out = await harness.kubectl("logs", "solo")
        assert out.stdout == b"line one\nline two\nline three\n"
        out = await harness.kubectl("logs", "solo", "--tail=1")
        assert out.stdout == b"line three\n"
        out = await harness.kubectl("logs", "solo", "--timestamps")
        assert out.stdout.splitlines()[0].endswith(b"Z line one")
        out = await harness.kubectl("logs", "solo", "--limit-bytes=6")
        assert out.stdout == b"line o"


async def test_kubectl_logs_follow_ends_when_the_container_exits(harness: Harness) -> None:
    with trio.fail_after(30):
        await harness.make_pod("ticking", ["ticker"])
        out = await harness.kubectl("logs", "-f", "ticking")
        assert out.stdout == b"".join(f"tick {i}\n".encode() for i in range(1, 6))


async def test_kubectl_logs_errors(harness: Harness) -> None:
    with trio.fail_after(30):
        await harness.make_pod("pending", start=False, phase="Pending")
        out = await harness.kubectl("logs", "pending", check=False)
        assert out.returncode == 1
        assert b'container "main" in pod "pending" is waiting to start: ContainerCreating' in out.stderr
        out = await harness.kubectl("logs", "solo-missing", check=False)
        assert b'pods "solo-missing" not found' in out.stderr
        await harness.make_pod("prev")
        out = await harness.kubectl("logs", "prev", "--previous", check=False)
        assert b'previous terminated container "main" in pod "prev" not found' in out.stderr


async def test_logs_container_choice(harness: Harness) -> None:
    with trio.fail_after(30):
        await harness.make_pod("duo", ["main", "side"])
        out = await harness.kubectl("logs", "duo", "-c", "side")
        assert out.stdout == b"from the side\n"
        out = await harness.kubectl("get", "--raw", "/api/v1/namespaces/default/pods/duo/log", check=False)
        assert b"a container name must be specified for pod duo, choose one of: [main side]" in out.stderr
        await harness.make_pod("annotated", ["main", "side"],
                               annotations={"kubectl.kubernetes.io/default-container": "side"})
        out = await harness.kubectl("get", "--raw", "/api/v1/namespaces/default/pods/annotated/log")
        assert out.stdout == b"from the side\n"
        out = await harness.kubectl("logs", "duo", "-c", "nope", check=False)
        assert b"container nope is not valid for pod duo" in out.stderr


# ---------------------------------------------------------------------------------------- exec


@pytest.mark.parametrize("version", ["1.30", "1.31", "1.32", "1.33"])
async def test_kubectl_exec(harness: Harness, version: str) -> None:
    with trio.fail_after(30):
        await harness.make_pod("p")
        out = await harness.kubectl("exec", "p", "--", "echo", "hi", version=version)
        assert out.stdout == b"hi\n"
        out = await harness.kubectl("exec", "p", "--", "false", check=False, version=version)
        assert out.returncode == 1
        assert b"command terminated with exit code 1" in out.stderr
        out = await harness.kubectl("exec", "p", "--", "sh", "-c", "exit 3", check=False, version=version)
        assert out.returncode == 3


async def test_kubectl_exec_stdin(harness: Harness) -> None:
    with trio.fail_after(30):
        await harness.make_pod("p")
        data = b"hello\nworld\n" + bytes(range(256)) * 400
        out = await harness.kubectl("exec", "-i", "p", "--", "cat", stdin=data)
        assert out.stdout == data


async def test_kubectl_exec_errors(harness: Harness) -> None:
    with trio.fail_after(30):
        await harness.make_pod("waiting", start=False, phase="Pending")
        out = await harness.kubectl("exec", "waiting", "--", "true", check=False)
        assert out.returncode == 1
        assert b'container "main" in pod "waiting" is waiting to start: ContainerCreating' in out.stderr
        out = await harness.kubectl("exec", "waiting", "-c", "nope", "--", "true", check=False)
        assert b"container nope is not valid for pod waiting" in out.stderr
        out = await harness.kubectl("exec", "p-missing", "--", "true", check=False)
        assert b'pods "p-missing" not found' in out.stderr


@pytest.fixture
async def hypercorn_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    """Served by hypercorn, which has no raw upgrade: old kubectl's SPDY gets a clear 400 there."""
    monkeypatch.setenv("ORCHESTRA_HTTP_SERVER", "hypercorn")
    async with open_simulated_runtime(SCRIPT) as sim, open_harness(tmp_path, ShellRuntime(sim)) as h:  # type: ignore[arg-type]
        yield h


async def test_kubectl_before_1_30_gets_a_clear_error(hypercorn_harness: Harness) -> None:
    # with orchestra's h11 server it works: tests/apiserver/test_streams_spdy.py
    harness = hypercorn_harness
    with trio.fail_after(30):
        await harness.make_pod("p")
        out = await harness.kubectl("exec", "p", "--", "true", check=False, version="1.29")
        assert out.returncode == 1
        assert b"orchestra serves pods/exec over WebSocket only" in out.stderr


async def test_kubectl_exec_it_under_a_pty(harness: Harness) -> None:
    with trio.fail_after(30):
        await harness.make_pod("p")
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 132, 0, 0))  # rows, cols
        os.set_blocking(master, False)
        proc = await trio.lowlevel.open_process([kubectl_path(), "exec", "-it", "p", "--", "sh"],
                                                stdin=slave, stdout=slave, stderr=slave, env=harness.env())
        os.close(slave)
        output = bytearray()
        async with trio.lowlevel.FdStream(master) as term:

            async def read_until(marker: bytes) -> None:
                while marker not in output:
                    try:
                        output.extend(await term.receive_some(4096))
                    except OSError:  # EIO: the pty's other side closed
                        return

            await read_until(b"/ # ")
            await term.send_all(b"echo hi; exit\r")
            await read_until(b"hi\r\n")
            assert await proc.wait() == 0
        assert b"echo hi; exit" in output  # the remote side echoes what was typed (raw mode)
        assert b"\r\nhi\r\n" in output
        shell = harness.runtime.shells[-1]  # type: ignore[attr-defined]
        assert shell.resizes[0] == (132, 40)  # kubectl's first frame: channel 4 {"Width":132,"Height":40}


# -------------------------------------------------------------------------------- port-forward


async def _start_port_forward(
    harness: Harness, remote: int, version: str = "1.32"
) -> tuple[trio.Process, int]:
    """`kubectl port-forward pod/p :REMOTE`; returns the process and the local port it picked."""
    proc = await trio.lowlevel.open_process([kubectl_path(version), "port-forward", "pod/p", f":{remote}"],
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=harness.env())
    assert proc.stdout is not None
    marker, seen = b"Forwarding from 127.0.0.1:", b""
    while marker not in seen or b"\n" not in seen.split(marker, 1)[1]:
        chunk = await proc.stdout.receive_some(4096)
        assert chunk, f"kubectl port-forward exited early: {seen!r}"
        seen += chunk
    return proc, int(seen.split(marker, 1)[1].split(b" ")[0])


async def _roundtrip(port: int, payload: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    received = bytearray()
    async with stream, trio.open_nursery() as nursery:

        async def send() -> None:
            for i in range(0, len(payload), 256 * 1024):
                await stream.send_all(payload[i : i + 256 * 1024])

        nursery.start_soon(send)
        while len(received) < len(payload):
            chunk = await stream.receive_some(65536)
            assert chunk, f"connection closed after {len(received)} bytes"
            received += chunk
    return bytes(received)


async def port_forward_scenario(
    harness: Harness, echo_port: int, version: str, *, size: int, conns: int
) -> None:
    """Round trips through `kubectl port-forward`: small, `size` bytes, `conns` at once, small again."""
    with trio.fail_after(60):
        await harness.make_pod("p")
        proc, local = await _start_port_forward(harness, echo_port, version)
        try:
            assert await _roundtrip(local, b"ping\n") == b"ping\n"
            payload = os.urandom(size)
            assert await _roundtrip(local, payload) == payload
            # several connections at once, each its own SPDY stream pair
            async with trio.open_nursery() as nursery:
                for i in range(conns):
                    nursery.start_soon(_roundtrip, local, f"conn {i}\n".encode() * 1000)
            assert await _roundtrip(local, b"still alive") == b"still alive"
        finally:
            proc.terminate()
            await proc.wait()


@pytest.mark.parametrize("version", ["1.31", "1.32", "1.33"])
async def test_kubectl_port_forward(harness: Harness, echo_port: int, version: str) -> None:
    await port_forward_scenario(harness, echo_port, version, size=5 * MiB, conns=4)


# ------------------------------------------------------------------------------- python client


@contextmanager
def _client(harness: Harness) -> Iterator[Any]:
    from kubernetes import client

    config = client.Configuration()
    config.host = harness.url
    config.api_key = {"authorization": f"Bearer {TOKEN}"}
    config.ssl_ca_cert = str(harness.ca_cert)
    with client.ApiClient(config) as api_client:
        yield client.CoreV1Api(api_client)


async def test_python_client_exec(harness: Harness) -> None:

    with trio.fail_after(30):
        await harness.make_pod("p")

        def run() -> tuple[str, int | None]:
            with _client(harness) as core:
                return _exec_twice(core)

        out, code = await trio.to_thread.run_sync(run)
        assert out == "from python\n"
        assert code == 1


def _exec_twice(core: Any) -> tuple[str, int | None]:
    from kubernetes.stream import stream

    with warnings.catch_warnings():
        # websocket-client leaks its socket once the server has closed (see _close): not ours
        warnings.simplefilter("ignore", ResourceWarning)
        out = stream(core.connect_get_namespaced_pod_exec, "p", "default", command=["echo", "from python"],
                     stderr=True, stdin=False, stdout=True, tty=False)
        gc.collect()
    resp = stream(core.connect_get_namespaced_pod_exec, "p", "default", command=["false"],
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=10)
    _close(resp)
    return out, resp.returncode


def _close(resp: Any) -> None:
    # websocket-client answers the server's close frame and then skips closing its socket
    # (close() returns early once `connected` is False), which leaks it: shut it down ourselves.
    resp.close()
    resp.sock.shutdown()


async def test_python_client_exec_stdin(harness: Harness) -> None:
    from kubernetes.stream import stream

    with trio.fail_after(30):
        await harness.make_pod("p")

        def run() -> tuple[str, int | None]:
            with _client(harness) as core:
                resp = stream(core.connect_get_namespaced_pod_exec, "p", "default", command=["cat"],
                              stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
                resp.write_stdin("typed\n")
                resp.close_channel(0)  # v5: closes the process's stdin
                resp.run_forever(timeout=10)
                _close(resp)
                return resp.read_stdout(), resp.returncode

        out, code = await trio.to_thread.run_sync(run)
        assert out == "typed\n"
        assert code == 0


async def test_python_client_log(harness: Harness) -> None:
    with trio.fail_after(30):
        await harness.make_pod("solo")
        await trio.sleep(0.05)

        def run() -> str:
            with _client(harness) as core:
                return str(core.read_namespaced_pod_log("solo", "default", tail_lines=2))

        text = await trio.to_thread.run_sync(run)
        assert text == "line two\nline three\n"


async def test_python_client_port_forward(harness: Harness, echo_port: int) -> None:

    with trio.fail_after(30):
        await harness.make_pod("p")

        def run() -> bytes:
            with _client(harness) as core:
                return _forward_once(core, echo_port)

        assert await trio.to_thread.run_sync(run) == b"over the v4 channels"


def _forward_once(core: Any, echo_port: int) -> bytes:
    from kubernetes.stream import portforward

    pf = portforward(core.connect_get_namespaced_pod_portforward, "p", "default", ports=str(echo_port))
    sock = pf.socket(echo_port)
    sock.sendall(b"over the v4 channels")
    got = b""
    while len(got) < 20:
        got += sock.recv(1024)
    sock.close()
    pf.close()
    assert pf.error(echo_port) is None
    return bytes(got)


def test_kubectl_binaries_present() -> None:
    assert shutil.which(KUBECTL) or os.path.exists(KUBECTL)


async def test_kubectl_port_forward_before_1_31_gets_a_clear_error(
    hypercorn_harness: Harness, echo_port: int
) -> None:
    harness = hypercorn_harness
    with trio.fail_after(30):
        await harness.make_pod("p")
        out = await harness.kubectl("port-forward", "pod/p", f":{echo_port}", check=False, version="1.30")
        assert out.returncode == 1
        assert b"orchestra serves pods/portforward over WebSocket only" in out.stderr


async def test_kubectl_port_forward_to_a_closed_port(harness: Harness) -> None:
    with trio.fail_after(30):
        await harness.make_pod("p")
        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
        proc, local = await _start_port_forward(harness, closed)
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", local)
            async with stream:
                assert await stream.receive_some(100) == b""  # kubectl closes the local connection
            assert await proc.wait() != 0  # and, since 1.31, gives up on the whole forward
            assert proc.stderr is not None
            err = await proc.stderr.receive_some(65536)
            assert f"error forwarding port {closed} to pod default/p".encode() in err
        finally:
            proc.kill()
            await proc.wait()
