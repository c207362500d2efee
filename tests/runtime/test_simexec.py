"""Exec in simulated containers (simexec.py through SimulatedRuntime): the exec rule, output in time,
files, mounted volumes, the interactive shell, scripted answers and scripted probe failures."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from orchestra.runtime.base import ContainerSpec, Mount, PodSandboxSpec
from orchestra.runtime.simrules import pod_script
from orchestra.runtime.simulated import SimulatedRuntime, open_simulated_runtime


async def running(rt: SimulatedRuntime, *command: str, uid: str = "u", **kw: object) -> str:
    sandbox = await rt.create_sandbox(PodSandboxSpec(name=f"p-{uid}", uid=uid, hostname="web-0"))
    await rt.start_sandbox(sandbox)
    cid = await rt.create_container(sandbox, ContainerSpec(name="c", image="busybox", command=command,
                                                           env={"GREETING": "hello"}, **kw))  # type: ignore[arg-type]
    await rt.start_container(cid)
    return cid


async def test_unknown_commands_exit_0_and_recognised_ones_do_what_they_say(
        autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with open_simulated_runtime() as rt:
            cid = await running(rt, "nginx")
            for cmd, code, out in [(["pg_isready"], 0, b""), (["sh", "-c", "exit 3"], 3, b""),
                                   (["sh", "-c", "echo $GREETING from $(hostname) `echo x`"], 0,
                                    b"hello from web-0 x\n"),
                                   (["printenv", "GREETING"], 0, b"hello\n"), (["hostname"], 0, b"web-0\n"),
                                   (["wget", "-qO-", "http://localhost:80/"], 0, b"")]:
                result = await rt.exec_run(cid, cmd, timeout=10)
                assert (result.exit_code, result.stdout) == (code, out), cmd
            start = trio.current_time()
            chunks = []
            async with rt.exec(cid, ["sh", "-c", "echo a; sleep 2; echo b >&2; sleep 1"]) as session:
                async for stream, data in session:
                    chunks.append((trio.current_time() - start, stream, data))
                assert await session.wait() == 0
            assert chunks == [(0, 1, b"a\n"), (2, 2, b"b\n")] and trio.current_time() - start == 3


async def test_wget_reaches_a_server_in_the_pod_only(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with open_simulated_runtime() as rt:
            sleeper = await running(rt, "sleep", "3600")
            result = await rt.exec_run(sleeper, ["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"],
                                       timeout=5)
            assert result.exit_code == 1 and b"Connection refused" in result.stderr
            server = await running(rt, "httpd", "-f", uid="v")
            assert (await rt.exec_run(server, ["wget", "-qO-", "http://127.0.0.1:8080/"],
                                      timeout=5)).exit_code == 0


async def test_files_follow_the_command_and_execs(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        async with open_simulated_runtime() as rt:
            cid = await running(rt, "sh", "-c", "touch /tmp/healthy; sleep 30; rm -f /tmp/healthy; sleep 600")

            async def cat(path: str) -> int:
                return (await rt.exec_run(cid, ["cat", path], timeout=5)).exit_code

            assert await cat("/tmp/healthy") == 0
            await trio.sleep(31)
            result = await rt.exec_run(cid, ["cat", "/tmp/healthy"], timeout=5)
            missing = b"cat: can't open '/tmp/healthy': No such file or directory\n"
            assert (result.exit_code, result.stderr) == (1, missing)
            await rt.exec_run(cid, ["sh", "-c", "echo ok > /tmp/healthy"], timeout=5)
            assert (await rt.exec_run(cid, ["cat", "/tmp/healthy"], timeout=5)).stdout == b"ok\n"
            unknown = await rt.exec_run(cid, ["test", "-e", "/tmp/other"], timeout=5)
            assert unknown.exit_code == 0  # an unknown path exists


async def test_mounted_files_are_read(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("from a configmap\n")
    with trio.fail_after(30):
        async with open_simulated_runtime() as rt:
            cid = await running(rt, "sleep", "3600",
                                mounts=[Mount(str(tmp_path), "/etc/config", read_only=True)])
            result = await rt.exec_run(cid, ["sh", "-c", "cat /etc/config/key"], timeout=5)
            assert result.stdout == b"from a configmap\n"
            missing = await rt.exec_run(cid, ["cat", "/etc/config/nope"], timeout=5)
            assert missing.exit_code == 1 and b"No such file" in missing.stderr


async def test_an_interactive_shell_on_a_tty(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with open_simulated_runtime() as rt:
            cid = await running(rt, "nginx")
            async with rt.exec(cid, ["sh"], stdin=True, tty=True) as session:
                await session.send_stdin(b"echo $GREETING\r")
                await session.send_stdin(b"exit 4\r")
                output = b"".join([data async for _, data in session])
                assert await session.wait() == 4
            assert output == b"/ # echo $GREETING\r\nhello\n/ # exit 4\r\n"
            async with rt.exec(cid, ["/bin/bash"], stdin=True) as session:
                await session.send_stdin(b"false\n")
                await session.close_stdin()
                assert await session.wait() == 1  # EOF: the last status


async def test_scripted_exec_answers_and_probe_failures(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        async with open_simulated_runtime() as rt:
            cid = await running(rt, "nginx")
            rt.script_pod("u", pod_script({
                "sim.orchestra.io/exec": '{"pg_isready": {"exitCode": 2, "stdout": "no"}}',
                "sim.orchestra.io/probe-failure": "c/readiness after=10s for=5s"}))
            result = await rt.exec_run(cid, ["pg_isready"], timeout=5)
            assert (result.exit_code, result.stdout) == (2, b"no")
            seen = []
            for _ in range(20):
                seen.append(rt.probe_fails(cid, "readiness"))
                await trio.sleep(1)
            assert seen == [False] * 10 + [True] * 5 + [False] * 5
            assert not rt.probe_fails(cid, "liveness")
            rt.script_pod("u", None)
            assert (await rt.exec_run(cid, ["pg_isready"], timeout=5)).exit_code == 0


@pytest.mark.parametrize("command", [["sh", "-c", "echo 'unterminated"], ["sh", "-c"]],
                         ids=["quote", "no-script"])
async def test_shell_errors_exit_2(command: list[str], autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(30):
        async with open_simulated_runtime() as rt:
            cid = await running(rt, "nginx")
            result = await rt.exec_run(cid, command, timeout=5)
            assert result.exit_code == 2 and result.stderr.startswith(b"sh: ")
