"""pods/attach driven by the real kubectl, over WebSocket (1.32) and raw SPDY (1.29).

Uses the in-process harness of test_streams_kubectl (store, API server with TLS and the h11
server, `PodStreamsHandler` over a `SimulatedRuntime`). The pods here carry the container fields
attach depends on (`stdin`, `stdinOnce`, `tty`), and their runtime containers are made with them.
The same commands against real Podman pods: tests/e2e/test_kubectl_attach.py.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
import trio.testing

from orchestra.apiserver.routes import Route
from orchestra.apiserver.streams import PodStreamsHandler
from orchestra.runtime.base import ContainerSpec, PodSandboxSpec, RuntimeUnavailable
from orchestra.runtime.simulated import ContainerScript, SimScript, open_simulated_runtime
from tests.apiserver.test_streams_unit import FakeClient, Locator
from tests.e2e.test_streams_kubectl import Harness, _client, open_harness

VERSIONS = ["1.32", "1.29"]  # WebSocket v5, raw SPDY/3.1
TICKS = 25  # 5 s of output: time enough for kubectl to attach on a loaded machine

SCRIPT = SimScript(containers={
    "ticker": ContainerScript(output=tuple((0.2 * i, 1, f"tick {i}".encode()) for i in range(1, TICKS + 1)),
                              exit_after=0.2 * TICKS + 0.1),
    "echo": ContainerScript(echo_stdin=True),  # `cat`
    "quiet": ContainerScript(exit_after=1.5),
})


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_simulated_runtime(SCRIPT) as sim, open_harness(tmp_path, sim) as h:
        yield h


async def attach_pod(h: Harness, name: str, container: dict[str, Any], *, start: bool = True) -> None:
    """A Running pod with one container (its spec as given) and, with `start`, its runtime container."""
    rt = h.core.registry.by_kind("Pod")
    assert rt is not None
    body = {"metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"image": "localhost/busybox:latest", **container}]}}
    pod = (await h.core.create(rt, "default", body)).obj
    pod["status"] = {"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1"}
    pod = (await h.core.update(rt, "default", name, pod, subresource="status")).obj
    if not start:
        return
    uid = pod["metadata"]["uid"]
    sandbox = await h.runtime.create_sandbox(PodSandboxSpec(name=f"default_{name}_{uid[:8]}", uid=uid))
    await h.runtime.start_sandbox(sandbox)
    spec = ContainerSpec(
        name=container["name"],
        image="localhost/busybox:latest",
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
    )
    cid = await h.runtime.create_container(sandbox, spec)
    await h.runtime.start_container(cid)
    h.locator.current[("default", name, container["name"])] = cid


@pytest.mark.kubectl
@pytest.mark.parametrize("version", VERSIONS)
async def test_kubectl_attach_receives_output_until_the_container_exits(
    harness: Harness, version: str
) -> None:
    with trio.fail_after(30):
        await attach_pod(harness, "ticking", {"name": "ticker"})
        out = await harness.kubectl("attach", "ticking", "-c", "ticker", version=version)
        lines = out.stdout.decode().splitlines()
        # output from the moment of attaching, every line, until the container exits (then exit 0)
        first = int(lines[0].split()[1])
        assert lines == [f"tick {i}" for i in range(first, TICKS + 1)]
        assert len(lines) >= 3


@pytest.mark.kubectl
@pytest.mark.parametrize("version", VERSIONS)
async def test_kubectl_attach_stdin_with_stdin_once(harness: Harness, version: str) -> None:
    with trio.fail_after(30):
        await attach_pod(harness, "cat", {"name": "echo", "stdin": True, "stdinOnce": True})
        out = await harness.kubectl("attach", "-i", "cat", stdin=b"hello\nworld\n", version=version)
        # the input's end closed cat's stdin, cat exited, and the session ended with Success
        assert out.stdout == b"hello\nworld\n"
        assert b"If you don't see a command prompt, try pressing enter." in out.stderr


@pytest.mark.kubectl
async def test_kubectl_attach_stdin_to_a_container_without_stdin_is_dropped(harness: Harness) -> None:
    # kubelet and containerd do not refuse it: the input goes nowhere, output flows until the exit
    with trio.fail_after(30):
        await attach_pod(harness, "deaf", {"name": "quiet"})
        out = await harness.kubectl("attach", "-i", "deaf", stdin=b"ignored\n")
        assert out.stdout == b""


@pytest.mark.kubectl
async def test_kubectl_attach_errors(harness: Harness) -> None:
    with trio.fail_after(30):
        await attach_pod(harness, "waiting", {"name": "ticker"}, start=False)
        out = await harness.kubectl("attach", "waiting", check=False)
        assert out.returncode == 1
        assert b'container "ticker" in pod "waiting" is waiting to start: ContainerCreating' in out.stderr
        await attach_pod(harness, "done", {"name": "quiet"})
        await trio.sleep(2)  # the container exits after 1.5 s; the pod in the store still says Running
        out = await harness.kubectl("attach", "done", check=False)
        assert out.returncode == 1
        assert b"unable to attach to container quiet of pod default/done" in out.stderr
        assert b"is not running" in out.stderr
        raw = "/api/v1/namespaces/default/pods/done/attach"
        out = await harness.kubectl("get", "--raw", raw, check=False)
        assert b"you must specify at least 1 of stdin, stdout, stderr" in out.stderr
        out = await harness.kubectl("get", "--raw", raw + "?stdout=true", check=False)
        assert b"Upgrade request required" in out.stderr


async def test_python_client_attach(harness: Harness) -> None:
    with trio.fail_after(30):
        await attach_pod(harness, "ticking", {"name": "ticker"})

        def run() -> str:
            from kubernetes.stream import stream

            with _client(harness) as core, warnings.catch_warnings():
                # websocket-client leaks its socket once the server has closed: not ours
                warnings.simplefilter("ignore", ResourceWarning)
                out = stream(core.connect_get_namespaced_pod_attach, "ticking", "default", container="ticker",
                             stderr=True, stdin=False, stdout=True, tty=False)
                gc.collect()
                return str(out)

        lines = (await trio.to_thread.run_sync(run)).splitlines()
        assert lines[-1] == f"tick {TICKS}" and len(lines) >= 3


# ----------------------------------------------------------------------- the wire, over ASGI


async def _attach_over_asgi(client: FakeClient, container: dict[str, Any], script: ContainerScript) -> None:
    async with open_simulated_runtime(SimScript(containers={container["name"]: script})) as sim:
        sandbox = await sim.create_sandbox(PodSandboxSpec(name="p", uid="u1"))
        await sim.start_sandbox(sandbox)
        spec = ContainerSpec(name=container["name"], image="localhost/busybox:latest",
                             stdin=bool(container.get("stdin")), stdin_once=bool(container.get("stdinOnce")),
                             tty=bool(container.get("tty")))
        cid = await sim.create_container(sandbox, spec)
        await sim.start_container(cid)
        pod = {
            "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [container]},
        }
        route = Route(rt=None, namespace="default", name="p", subresource="attach")  # type: ignore[arg-type]
        await PodStreamsHandler(Locator(sim, cid)).handle(client.request(), route, pod)


async def test_v5_stdin_close_on_a_stdin_once_container(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        client = FakeClient("websocket", b"stdin=true&stdout=true&stderr=true", ["v5.channel.k8s.io"])
        client.to_server.send_nowait({"type": "websocket.receive", "bytes": b"\x00hi\n"})
        client.to_server.send_nowait({"type": "websocket.receive", "bytes": b"\xff\x00"})  # close stdin
        await _attach_over_asgi(client, {"name": "c", "stdin": True, "stdinOnce": True},
                                ContainerScript(echo_stdin=True))
        assert client.sent[0] == {"type": "websocket.accept", "subprotocol": "v5.channel.k8s.io"}
        # kube's empty "connection established" message, cat's output, then (its stdin closed, it
        # exited) Success, then a clean close
        assert client.binary() == [b"\x01", b"\x01hi\n", b'\x03{"metadata":{},"status":"Success"}']
        assert client.sent[-1] == {"type": "websocket.close", "code": 1000, "reason": ""}


async def test_a_tty_container_gets_no_stderr_channel(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        # the client asks for no TTY and for stderr; the container has a TTY, which wins (kubelet)
        client = FakeClient("websocket", b"stdin=true&stdout=true&stderr=true", ["v4.channel.k8s.io"])
        client.to_server.send_nowait({"type": "websocket.receive", "bytes": b"\x00hi\r"})
        client.to_server.send_nowait({"type": "websocket.receive", "bytes": b"\x00exit\r"})
        script = ContainerScript(output=((0.5, 2, b"to the terminal"),), exit_after=1.0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_attach_over_asgi, client, {"name": "c", "stdin": True, "tty": True}, script)
            await trio.sleep(2)  # the container exited after 1 s: the session ended with Success
        output = b"".join(m[1:] for m in client.binary() if m[:1] == b"\x01")
        assert output == b"hi\r\nexit\r\nto the terminal\r\n"  # the TTY's echo, then the process's stderr
        assert all(m[:1] in (b"\x01", b"\x03") for m in client.binary())
        assert client.binary()[-1] == b'\x03{"metadata":{},"status":"Success"}'


class _BrokenSession:
    """An attach whose runtime goes away after the first output."""

    async def send_stdin(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...
    async def resize(self, width: int, height: int) -> None: ...

    def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]:
        return self._output()

    async def _output(self) -> AsyncIterator[tuple[int, bytes]]:
        yield 1, b"partial\n"
        raise RuntimeUnavailable("the Podman service went away")

    async def wait(self) -> int | None:
        return None


class _BrokenRuntime:
    @asynccontextmanager
    async def attach(self, container_id: str, **flags: bool) -> AsyncIterator[_BrokenSession]:
        yield _BrokenSession()


async def test_a_runtime_failure_midway_is_an_internal_error_status(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(10):
        client = FakeClient("websocket", b"stdout=true", ["v5.channel.k8s.io"])
        pod = {
            "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [{"name": "c"}]},
        }
        route = Route(rt=None, namespace="default", name="p", subresource="attach")  # type: ignore[arg-type]
        await PodStreamsHandler(Locator(_BrokenRuntime(), "cid")).handle(client.request(), route, pod)  # type: ignore[arg-type]
        established, first, status = client.binary()
        assert (established, first) == (b"\x01", b"\x01partial\n")
        assert (
            orjson.loads(status[1:])["message"]
            == "error attaching to container: the Podman service went away"
        )
