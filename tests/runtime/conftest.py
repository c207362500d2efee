"""Fixtures for the runtime contract suite: one `runtime` per kind (simulated, podman).

The podman kind starts its own `podman system service` (via orchestra.runtime.service) once per
session, in a thread with its own trio loop, on a socket in a temporary state directory, builds
localhost/busybox if missing, and removes every object the tests labelled when each test ends.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.runtime.base import Runtime
from orchestra.runtime.images import INDEX_HTML, ensure_busybox_image
from orchestra.runtime.podman import PodmanRuntime
from orchestra.runtime.service import PodmanService
from orchestra.runtime.simulated import ContainerScript, ExecScript, SimScript, open_simulated_runtime

RUN_LABEL = "orchestra.test"
RUN_ID = f"rt-{uuid.uuid4().hex[:8]}"  # labels every object this session creates
IMAGE = "localhost/busybox:latest"

# What each contract-test container does in the simulation (the podman side runs the real command).
SIM_SCRIPT = SimScript(
    containers={
        "web": ContainerScript(serves={8080: INDEX_HTML}, on_sigterm=None),
        "side": ContainerScript(on_sigterm=None),
        "sleeper": ContainerScript(on_sigterm=None),
        "polite": ContainerScript(on_sigterm=0),
        "envtest": ContainerScript(output=((0, 1, b"hello a b /tmp"),), exit_after=0.05),
        "exit3": ContainerScript(exit_after=0.05, exit_code=3),
        "exit5": ContainerScript(exit_after=0.3, exit_code=5),
        "printer": ContainerScript(
            output=(*((0.0, 1, f"line{i}".encode()) for i in range(1, 6)), (0.0, 2, b"oops")),
            exit_after=0.05,
        ),
        "ticker": ContainerScript(
            output=tuple((0.3 * i, 1, f"tick{i}".encode()) for i in range(1, 4)), exit_after=1.0
        ),
        "attach-ticker": ContainerScript(
            output=tuple((0.2 * i, 1, f"tick {i}".encode()) for i in range(1, 1000)), on_sigterm=None
        ),
        "attach-cat": ContainerScript(echo_stdin=True),  # `cat`, with stdin (and stdin_once or a TTY)
        "shell": ContainerScript(
            on_sigterm=None,
            exec={
                ("sh", "-c", "echo out; echo err >&2; exit 7"): ExecScript(
                    exit_code=7, stdout=b"out\n", stderr=b"err\n"
                )
            },
        ),
    }
)


@pytest.fixture(params=["simulated", pytest.param("podman", marks=pytest.mark.podman)])
def runtime_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock(runtime_kind: str) -> trio.abc.Clock | None:
    """Virtual time for the simulation (pytest-trio picks up a Clock argument); real for podman."""
    return trio.testing.MockClock(autojump_threshold=0) if runtime_kind == "simulated" else None


@pytest.fixture(scope="session")
def podman_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("ORCHESTRA_NO_PODMAN") == "1":
        pytest.skip("ORCHESTRA_NO_PODMAN=1")
    state_dir = tmp_path_factory.mktemp("podman")
    box: dict[str, Any] = {}
    ready = threading.Event()

    async def serve() -> None:
        box["token"] = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            box["scope"] = nursery.cancel_scope
            box["socket"] = await nursery.start(PodmanService(state_dir).run)
            await ensure_busybox_image(state_dir)
            ready.set()

    def thread_main() -> None:
        try:
            trio.run(serve)
        except BaseException as exc:  # reported to the fixture below
            box["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=thread_main, name="podman-service", daemon=True)
    thread.start()
    ready.wait(90)
    try:
        if "error" in box or "socket" not in box:
            raise RuntimeError(f"podman service did not start: {box.get('error')!r}")
        yield box["socket"]
    finally:  # always stop the service (a daemon thread would orphan it at exit)
        if "scope" in box and thread.is_alive():
            trio.from_thread.run_sync(box["scope"].cancel, trio_token=box["token"])
        thread.join(20)


@pytest.fixture
async def runtime(runtime_kind: str, request: pytest.FixtureRequest) -> AsyncIterator[Runtime]:
    if runtime_kind == "simulated":
        async with open_simulated_runtime(SIM_SCRIPT) as sim:
            yield sim
        return
    socket_path = request.getfixturevalue("podman_socket")
    podman_runtime = PodmanRuntime(socket_path)
    try:
        yield podman_runtime
    finally:
        with trio.CancelScope(shield=True):
            await remove_everything(podman_runtime)
            await podman_runtime.aclose()


@pytest.fixture
def reopen(runtime_kind: str, runtime: Runtime, request: pytest.FixtureRequest) -> Callable[[], Runtime]:
    """A second Runtime instance on the same machine (an orchestra restart). The simulated machine
    *is* its instance, so the simulation hands back the same object."""
    if runtime_kind == "simulated":
        return lambda: runtime
    return lambda: PodmanRuntime(request.getfixturevalue("podman_socket"))


async def remove_everything(rt: Runtime) -> None:
    labels = {RUN_LABEL: RUN_ID}
    async with trio.open_nursery() as nursery:  # pod rm can take ~3 s after an exec; do them together
        for sandbox in await rt.list_sandboxes(labels):
            nursery.start_soon(rt.remove_sandbox, sandbox.id)
    for container in await rt.list_containers(labels):
        await rt.remove_container(container.id)
