"""The runtime contract: every test runs against the SimulatedRuntime and against real Podman.

If one of these fails only for "simulated", the fake has drifted from Podman: fix the fake.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import trio

from orchestra.runtime.base import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_UID,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    EventType,
    ImageNotFound,
    InvalidState,
    NotFound,
    PodSandboxSpec,
    PullPolicy,
    Runtime,
    RuntimeEvent,
    SandboxState,
)

from .conftest import IMAGE, RUN_ID, RUN_LABEL

LABELS = {RUN_LABEL: RUN_ID}
SLEEP = ("sleep", "3600")  # PID 1 without a handler: ignores SIGTERM


def sandbox_spec(name: str, uid: str | None = None) -> PodSandboxSpec:
    return PodSandboxSpec(name=f"{RUN_ID}-{name}", uid=uid or f"uid-{name}", namespace="test", labels=LABELS)


def ctr(name: str, command: Sequence[str] = SLEEP, **kwargs: object) -> ContainerSpec:
    return ContainerSpec(name=name, image=IMAGE, command=tuple(command), labels=LABELS, **kwargs)  # type: ignore[arg-type]


async def ready_sandbox(rt: Runtime, name: str) -> str:
    sandbox_id = await rt.create_sandbox(sandbox_spec(name))
    await rt.start_sandbox(sandbox_id)
    return sandbox_id


async def run_container(rt: Runtime, sandbox_id: str, spec: ContainerSpec) -> str:
    container_id = await rt.create_container(sandbox_id, spec)
    await rt.start_container(container_id)
    return container_id


async def wait_exited(rt: Runtime, container_id: str) -> ContainerStatus:
    with trio.fail_after(15):
        # polling on purpose: this is how a level-based agent reads state
        while (status := await rt.container_status(container_id)).state != ContainerState.EXITED:  # noqa: ASYNC110
            await trio.sleep(0.05)
    return status


async def test_sandbox_create_start_ip(runtime: Runtime, clock: object) -> None:
    with trio.fail_after(20):
        sandbox_id = await runtime.create_sandbox(sandbox_spec("basic", uid="u-basic"))
        created = await runtime.sandbox_status(sandbox_id)
        assert (created.state, created.ip, created.uid, created.namespace) == (
            SandboxState.CREATED,
            "",
            "u-basic",
            "test",
        )
        assert created.labels[RUN_LABEL] == RUN_ID
        await runtime.start_sandbox(sandbox_id)
        ready = await runtime.sandbox_status(sandbox_id)
        assert ready.state == SandboxState.READY
        assert ready.ip.count(".") == 3
        listed = await runtime.list_sandboxes({**LABELS, LABEL_POD_UID: "u-basic"})
        assert [s.id for s in listed] == [sandbox_id]
        with pytest.raises(InvalidState):
            await runtime.create_sandbox(sandbox_spec("basic"))
        await runtime.stop_sandbox(sandbox_id, 5)
        assert (await runtime.sandbox_status(sandbox_id)).state == SandboxState.NOT_READY


async def test_containers_in_a_sandbox_share_localhost(runtime: Runtime, clock: object) -> None:
    with trio.fail_after(30):
        sandbox_id = await ready_sandbox(runtime, "share")
        await run_container(runtime, sandbox_id, ctr("web", ["httpd", "-f", "-p", "8080", "-h", "/www"]))
        side = await run_container(runtime, sandbox_id, ctr("side"))
        while True:  # httpd needs a moment to listen
            result = await runtime.exec_run(side, ["wget", "-q", "-O-", "http://127.0.0.1:8080/"], timeout=10)
            if result.exit_code == 0:
                break
            await trio.sleep(0.1)
        assert b"hello from orchestra busybox" in result.stdout


async def test_env_command_args_working_dir(runtime: Runtime, clock: object) -> None:
    with trio.fail_after(20):
        sandbox_id = await ready_sandbox(runtime, "env")
        spec = ctr(
            "envtest",
            ["sh", "-c", 'echo "$GREETING $0 $1 $(pwd)"'],
            args=("a", "b"),
            env={"GREETING": "hello"},
            working_dir="/tmp",
        )
        container_id = await run_container(runtime, sandbox_id, spec)
        status = await wait_exited(runtime, container_id)
        assert status.exit_code == 0
        assert status.name == "envtest" and status.sandbox_id == sandbox_id
        assert status.labels[LABEL_CONTAINER_NAME] == "envtest"
        async with runtime.logs(container_id) as lines:
            assert [line async for line in lines] == [b"hello a b /tmp\n"]


async def test_exit_code_of_an_exiting_container(runtime: Runtime, clock: object) -> None:
    with trio.fail_after(20):
        sandbox_id = await ready_sandbox(runtime, "exit")
        container_id = await runtime.create_container(sandbox_id, ctr("exit3", ["sh", "-c", "exit 3"]))
        created = await runtime.container_status(container_id)
        assert (created.state, created.exit_code, created.started_at) == (ContainerState.CREATED, None, None)
        await runtime.start_container(container_id)
        status = await wait_exited(runtime, container_id)
        assert status.exit_code == 3
        assert status.started_at is not None and status.finished_at is not None
        # Podman records StartedAt after runc start returns, so a process that exits at once can
        # show FinishedAt a few ms *before* StartedAt: only require them to be close.
        assert abs((status.finished_at - status.started_at).total_seconds()) < 5
        assert status.image_id and status.image.endswith("busybox:latest")


async def test_logs_tail_and_follow(runtime: Runtime, clock: object) -> None:
    with trio.fail_after(20):
        sandbox_id = await ready_sandbox(runtime, "logs")
        printer = await run_container(
            runtime,
            sandbox_id,
            ctr("printer", ["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2"]),
        )
        await wait_exited(runtime, printer)
        async with runtime.logs(printer) as lines:
            everything = [line async for line in lines]
        assert everything == [b"line1\n", b"line2\n", b"line3\n", b"line4\n", b"line5\n", b"oops\n"]
        async with runtime.logs(printer, tail=2) as lines:
            assert [line async for line in lines] == [b"line5\n", b"oops\n"]
        async with runtime.logs(printer, timestamps=True, tail=1) as lines:
            (stamped,) = [line async for line in lines]
            assert stamped.endswith(b" oops\n") and stamped[:2] == b"20"

        ticker = await run_container(
            runtime,
            sandbox_id,
            ctr("ticker", ["sh", "-c", "for i in 1 2 3; do sleep 0.3; echo tick$i; done; sleep 0.1"]),
        )
        async with runtime.logs(ticker, follow=True) as lines:
            followed = [line async for line in lines]  # ends when the container exits
        assert followed == [b"tick1\n", b"tick2\n", b"tick3\n"]
        assert (await runtime.container_status(ticker)).state == ContainerState.EXITED


async def test_exec_exit_codes_and_stdin(runtime: Runtime, clock: object) -> None:
    with trio.fail_after(30):
        sandbox_id = await ready_sandbox(runtime, "exec")
        shell = await run_container(runtime, sandbox_id, ctr("shell"))
        assert (await runtime.exec_run(shell, ["false"], timeout=10)).exit_code == 1
        assert (await runtime.exec_run(shell, ["true"], timeout=10)).exit_code == 0
        result = await runtime.exec_run(shell, ["sh", "-c", "echo out; echo err >&2; exit 7"], timeout=10)
        assert (result.exit_code, result.stdout, result.stderr) == (7, b"out\n", b"err\n")

        async with runtime.exec(shell, ["cat"], stdin=True) as session:
            await session.send_stdin(b"hello ")
            await session.send_stdin(b"stdin\n")
            await session.close_stdin()
            output = b"".join([data async for stream, data in session if stream == 1])
            assert await session.wait() == 0
        assert output == b"hello stdin\n"


async def test_stop_kills_a_sigterm_ignoring_container_after_the_grace_period(
    runtime: Runtime, clock: object
) -> None:
    with trio.fail_after(30):
        sandbox_id = await ready_sandbox(runtime, "stop")
        sleeper = await run_container(runtime, sandbox_id, ctr("sleeper"))
        polite = await run_container(
            runtime, sandbox_id, ctr("polite", ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"])
        )
        await trio.sleep(0.2)  # let the shell install its trap

        start = trio.current_time()
        await runtime.stop_container(sleeper, 1)
        elapsed = trio.current_time() - start
        assert (
            1.0 <= elapsed < 6
        )  # the grace period, not the default 10 s (Podman adds ~0.2 s; more when loaded)
        assert (await runtime.container_status(sleeper)).exit_code == 137

        start = trio.current_time()
        await runtime.stop_container(polite, 10)
        assert trio.current_time() - start < 2.0
        assert (await runtime.container_status(polite)).exit_code == 0

        await runtime.stop_container(sleeper, 1)  # stopping a stopped container is fine


async def test_kill(runtime: Runtime, clock: object) -> None:
    with trio.fail_after(20):
        sandbox_id = await ready_sandbox(runtime, "kill")
        sleeper = await run_container(runtime, sandbox_id, ctr("sleeper"))
        await runtime.kill_container(sleeper, "SIGKILL")
        status = await wait_exited(runtime, sleeper)
        assert status.exit_code == 137
        with pytest.raises(InvalidState):
            await runtime.kill_container(sleeper, "SIGKILL")


async def test_remove_leaves_nothing(runtime: Runtime, clock: object) -> None:
    with trio.fail_after(30):
        sandbox_id = await ready_sandbox(runtime, "remove")
        lone = await run_container(runtime, sandbox_id, ctr("sleeper"))
        await runtime.remove_container(lone)  # running: killed, then removed
        with pytest.raises(NotFound):
            await runtime.container_status(lone)
        await runtime.remove_container(lone)  # idempotent

        await run_container(runtime, sandbox_id, ctr("sleeper"))
        await runtime.create_container(sandbox_id, ctr("side"))
        uid_labels = {**LABELS, LABEL_POD_UID: "uid-remove"}
        assert len(await runtime.list_containers(uid_labels)) == 2
        assert len(await runtime.list_containers(sandbox_id=sandbox_id)) == 2
        await runtime.remove_sandbox(sandbox_id)
        assert await runtime.list_sandboxes(uid_labels) == []
        assert await runtime.list_containers(uid_labels) == []
        with pytest.raises(NotFound):
            await runtime.sandbox_status(sandbox_id)
        await runtime.remove_sandbox(sandbox_id)  # idempotent
        await runtime.stop_sandbox(sandbox_id, 1)


async def test_unknown_ids_raise_not_found(runtime: Runtime, clock: object) -> None:
    missing = "0" * 64
    with trio.fail_after(10):
        for call in (
            runtime.container_status(missing),
            runtime.start_container(missing),
            runtime.stop_container(missing, 1),
            runtime.kill_container(missing),
            runtime.sandbox_status(missing),
            runtime.create_container(missing, ctr("x")),
        ):
            with pytest.raises(NotFound):
                await call


async def test_events_report_a_died_container_with_its_exit_code(runtime: Runtime, clock: object) -> None:
    with trio.fail_after(20):
        async with runtime.events(LABELS) as events:
            sandbox_id = await ready_sandbox(runtime, "events")
            container_id = await run_container(
                runtime, sandbox_id, ctr("exit5", ["sh", "-c", "sleep 0.3; exit 5"])
            )
            seen: list[RuntimeEvent] = []
            async for event in events:
                seen.append(event)
                if event.type == EventType.DIED and event.container_id == container_id:
                    break
        died = seen[-1]
        assert (died.exit_code, died.sandbox_id, died.infra) == (5, sandbox_id, False)
        assert died.labels[LABEL_CONTAINER_NAME] == "exit5"
        kinds = [(e.type, e.infra) for e in seen if e.sandbox_id == sandbox_id]
        assert (EventType.STARTED, True) in kinds and (EventType.STARTED, False) in kinds


async def test_images(runtime: Runtime, clock: object) -> None:
    with trio.fail_after(10):  # no registry is reachable: a missing image fails fast
        image_id = await runtime.ensure_image(IMAGE)
        assert image_id and await runtime.ensure_image("busybox", PullPolicy.NEVER) == image_id
        with pytest.raises(ImageNotFound, match="nosuch"):
            await runtime.ensure_image("docker.io/library/nosuch:1")
        with pytest.raises(ImageNotFound):
            await runtime.ensure_image("localhost/nosuch:1", PullPolicy.NEVER)
        sandbox_id = await runtime.create_sandbox(sandbox_spec("images"))
        with pytest.raises(ImageNotFound):
            await runtime.create_container(
                sandbox_id, ContainerSpec(name="x", image="localhost/nosuch:1", labels=LABELS)
            )


async def test_adoption_after_restart(runtime: Runtime, clock: object, reopen: Callable[[], Runtime]) -> None:
    with trio.fail_after(20):
        sandbox_id = await ready_sandbox(runtime, "adopt")
        container_id = await run_container(runtime, sandbox_id, ctr("sleeper"))
        again = reopen()
        try:
            (sandbox,) = await again.list_sandboxes({**LABELS, LABEL_POD_UID: "uid-adopt"})
            assert (sandbox.id, sandbox.state, sandbox.name) == (
                sandbox_id,
                SandboxState.READY,
                f"{RUN_ID}-adopt",
            )
            (container,) = await again.list_containers({**LABELS, LABEL_POD_UID: "uid-adopt"})
            assert (container.id, container.name, container.state) == (
                container_id,
                "sleeper",
                ContainerState.RUNNING,
            )
            assert container.sandbox_id == sandbox_id
        finally:
            if again is not runtime:
                await again.aclose()


async def test_stats_of_running_containers(runtime: Runtime, clock: object) -> None:
    """Usage is reported for running containers only: CPU time that never goes down, a working set."""
    with trio.fail_after(30):
        sandbox_id = await ready_sandbox(runtime, "stats")
        busy = await run_container(runtime, sandbox_id, ctr("busy", ["sh", "-c", "while :; do :; done"]))
        idle = await run_container(runtime, sandbox_id, ctr("idle"))
        await trio.sleep(0.5)
        first = {s.id: s for s in await runtime.stats([busy, idle, "0" * 64])}
        assert set(first) == {busy, idle}  # an unknown id is left out, not an error
        assert all(s.memory_working_set_bytes > 0 for s in first.values())
        await trio.sleep(0.5)
        later = {s.id: s for s in await runtime.stats([busy])}
        assert later[busy].cpu_usage_nanoseconds > first[busy].cpu_usage_nanoseconds
        await runtime.stop_container(busy, 0)
        assert [s.id for s in await runtime.stats([busy, idle])] == [idle]
        assert await runtime.stats([]) == []


async def test_a_container_can_join_anothers_process_namespace(runtime: Runtime, clock: object) -> None:
    """An ephemeral container's targetContainerName: created in the target's process namespace
    (Podman: pidns container:ID); a target that is not in the sandbox is NotFound."""
    with trio.fail_after(30):
        sandbox_id = await ready_sandbox(runtime, "pidns")
        target = await run_container(runtime, sandbox_id, ctr("target"))
        joined = await run_container(runtime, sandbox_id, ctr("joined", pid_namespace_of=target))
        assert (await runtime.container_status(joined)).state == ContainerState.RUNNING
        other = await ready_sandbox(runtime, "pidns-other")
        with pytest.raises(NotFound):
            await runtime.create_container(other, ctr("stranger", pid_namespace_of="0" * 64))
