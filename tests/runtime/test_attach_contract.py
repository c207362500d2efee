"""The attach contract, against the SimulatedRuntime and real Podman (see test_contract.py).

Attach connects to a container's main process: output from the moment of attaching, stdin into
the process, a TTY's echo and size; ending a session never stops the container.
"""

from __future__ import annotations

import pytest
import trio

from orchestra.runtime.base import AttachSession, ContainerState, InvalidState, Runtime

from .test_contract import ctr, ready_sandbox, run_container, wait_exited

# sleep first, so that tick N comes about N * 0.2 s after the start, as in the simulation
TICKER = "i=0; while true; do sleep 0.2; i=$((i+1)); echo tick $i; done"


async def read_until(session: AttachSession, wanted: bytes) -> bytes:
    """Output (stdout and a TTY) until `wanted` has arrived; everything read so far."""
    seen = b""
    async for stream, data in session:
        assert stream == 1, (stream, data)
        seen += data
        if wanted in seen:
            return seen
    raise AssertionError(f"the session ended before {wanted!r}; got {seen!r}")


async def read_lines(session: AttachSession, count: int) -> list[bytes]:
    seen = b""
    async for _, data in session:
        seen += data
        if seen.count(b"\n") >= count:
            break
    return seen.splitlines(keepends=True)[:count]


async def test_attach_receives_the_output_of_a_running_container(runtime: Runtime, clock: object) -> None:
    with trio.fail_after(30):
        sandbox_id = await ready_sandbox(runtime, "attach-out")
        ticker = await run_container(runtime, sandbox_id, ctr("attach-ticker", ["sh", "-c", TICKER]))
        await trio.sleep(1.0)  # what was written before the attach is not replayed
        async with runtime.attach(ticker, stdout=True, stderr=True) as session:
            lines = await read_lines(session, 2)
        first, second = (int(line.split()[1]) for line in lines)
        assert lines[0] == f"tick {first}\n".encode() and first >= 2 and second == first + 1
        # leaving the session leaves the container running, and it can be attached again
        assert (await runtime.container_status(ticker)).state == ContainerState.RUNNING
        async with runtime.attach(ticker, stdout=True, stderr=False) as session:
            (again,) = await read_lines(session, 1)
        assert int(again.split()[1]) > second

        with pytest.raises(InvalidState, match="without stdin"):
            async with runtime.attach(ticker, stdin=True):
                pass
        with pytest.raises(InvalidState, match="TTY"):
            async with runtime.attach(ticker, tty=True):
                pass
        await runtime.kill_container(ticker)
        await wait_exited(runtime, ticker)
        with pytest.raises(InvalidState, match="not running"):
            async with runtime.attach(ticker):
                pass


async def test_attach_stdin_reaches_cat_and_stdin_once_closes_it(runtime: Runtime, clock: object) -> None:
    with trio.fail_after(30):
        sandbox_id = await ready_sandbox(runtime, "attach-in")
        cat = await run_container(
            runtime, sandbox_id, ctr("attach-cat", ["cat"], stdin=True, stdin_once=True)
        )
        async with runtime.attach(cat, stdin=True, stdout=True, stderr=True) as session:
            await session.send_stdin(b"hello ")
            await session.send_stdin(b"cat\n")
            assert await read_until(session, b"hello cat\n") == b"hello cat\n"
            # stdin_once without a TTY: closing stdin closes the container's, and output goes on
            # until the process exits (cat, at its EOF)
            await session.close_stdin()
            assert await session.wait() == 0
        assert (await wait_exited(runtime, cat)).exit_code == 0


async def test_attach_to_a_tty(runtime: Runtime, clock: object) -> None:
    with trio.fail_after(30):
        sandbox_id = await ready_sandbox(runtime, "attach-tty")
        cat = await run_container(runtime, sandbox_id, ctr("attach-cat", ["cat"], stdin=True, tty=True))
        async with runtime.attach(cat, stdin=True, stdout=True, stderr=False, tty=True) as session:
            await session.resize(100, 30)
            await session.send_stdin(b"hi\r")  # Enter on a terminal
            assert (await read_until(session, b"hi\r\nhi\r\n")).endswith(b"hi\r\nhi\r\n")  # echo, then cat
            await session.close_stdin()  # no stdin_once: the session ends, the container does not
            assert await session.wait() is None
        assert (await runtime.container_status(cat)).state == ContainerState.RUNNING
        async with runtime.attach(cat, stdin=True, stdout=True, stderr=False, tty=True) as session:
            await session.send_stdin(b"again\n")  # a TTY's stdin stays open between sessions
            assert (await read_until(session, b"again\r\nagain\r\n")).endswith(b"again\r\nagain\r\n")
        with pytest.raises(InvalidState, match="TTY"):
            async with runtime.attach(cat, stdin=True, tty=False):
                pass


async def test_the_end_of_an_attach_session_closes_a_pipe_stdin(runtime: Runtime, clock: object) -> None:
    """Podman 4.3 runs conmon without --leave-stdin-open, so a non-TTY container's stdin does not
    outlive an attach session even without stdin_once (kube would keep it open); the simulation
    does the same."""
    with trio.fail_after(30):
        sandbox_id = await ready_sandbox(runtime, "attach-pipe")
        cat = await run_container(runtime, sandbox_id, ctr("attach-cat", ["cat"], stdin=True))
        async with runtime.attach(cat, stdin=True) as session:
            await session.send_stdin(b"one\n")
            await read_until(session, b"one\n")
            await session.close_stdin()  # no stdin_once: this ends the session ...
            assert await session.wait() is None
        assert (await wait_exited(runtime, cat)).exit_code == 0  # ... and cat gets its EOF
