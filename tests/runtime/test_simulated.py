"""SimulatedRuntime behaviour that only a script can produce, on trio's virtual clock."""

from __future__ import annotations

import pytest
import trio

from orchestra.runtime.base import (
    ContainerSpec,
    ContainerState,
    EventType,
    ExecTimeout,
    ImageNotFound,
    ImagePullError,
    PodSandboxSpec,
    PullPolicy,
    RuntimeUnavailable,
)
from orchestra.runtime.simulated import (
    ContainerScript,
    SimScript,
    SimulatedRuntime,
    normalize_image,
    open_simulated_runtime,
)


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("busybox", "localhost/busybox:latest"),
        ("quay.io/x/y:1", "quay.io/x/y:1"),
        ("a/b", "localhost/a/b:latest"),
    ],
)
def test_normalize_image(ref: str, name: str) -> None:
    assert normalize_image(ref) == name


async def test_crash_loop_timing_is_virtual(autojump_clock: trio.abc.Clock) -> None:
    script = SimScript(
        images={"localhost/crasher:1": ContainerScript(start_delay=0.5, exit_after=2, exit_code=1)}
    )
    script.present_images.add("localhost/crasher:1")
    async with open_simulated_runtime(script) as rt, rt.events() as events:
        sandbox = await rt.create_sandbox(PodSandboxSpec(name="p", uid="u"))
        cid = await rt.create_container(sandbox, ContainerSpec(name="c", image="localhost/crasher:1"))
        start = trio.current_time()
        for _ in range(3):  # the agent restarts it; each run dies after 2 s with code 1
            await rt.start_container(cid)
            async for event in events:
                if event.type == EventType.DIED and event.container_id == cid:
                    assert event.exit_code == 1
                    break
        assert trio.current_time() - start == pytest.approx(3 * 2.5)
        assert (await rt.container_status(cid)).state == ContainerState.EXITED


async def test_scripted_pulls(autojump_clock: trio.abc.Clock) -> None:
    script = SimScript(
        pullable_images={"docker.io/library/nginx:1"}, pull_errors={"quay.io/x:1": "unauthorized"}
    )
    script.pull_delay = 3
    async with open_simulated_runtime(script) as rt:
        start = trio.current_time()
        assert await rt.ensure_image("docker.io/library/nginx:1")
        assert trio.current_time() - start == 3
        assert await rt.ensure_image("docker.io/library/nginx:1", PullPolicy.NEVER)  # now present
        with pytest.raises(ImagePullError, match="unauthorized"):
            await rt.ensure_image("quay.io/x:1")
        with pytest.raises(ImageNotFound):
            await rt.ensure_image("docker.io/library/other:1")


async def test_exec_timeout_and_not_running(autojump_clock: trio.abc.Clock) -> None:
    async with open_simulated_runtime() as rt:
        sandbox = await rt.create_sandbox(PodSandboxSpec(name="p", uid="u"))
        cid = await rt.create_container(sandbox, ContainerSpec(name="c", image="busybox"))
        await rt.start_container(cid)
        with pytest.raises(ExecTimeout):
            await rt.exec_run(cid, ["sleep", "10"], timeout=1)
        assert (await rt.exec_run(cid, ["echo", "hi"], timeout=1)).stdout == b"hi\n"


async def test_not_running_runtime_says_so() -> None:
    with pytest.raises(RuntimeUnavailable, match="not running"):
        await SimulatedRuntime().list_sandboxes()
