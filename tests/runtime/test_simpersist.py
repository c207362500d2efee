"""The simulated runtime's state on disk: a restart (a new SimulatedRuntime on the same state dir)
finds every sandbox and container as it was, and a container's process goes on from its start time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import trio
import trio.testing

from orchestra.runtime.base import ContainerSpec, ContainerState, PodSandboxSpec, SandboxState
from orchestra.runtime.simclock import EPOCH, SimClock
from orchestra.runtime.simjournal import Journal
from orchestra.runtime.simtables import COMPACT_MIN
from orchestra.runtime.simulated import SimulatedRuntime

NODE = {"orchestra.io/node": "n1"}


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def patient_clock() -> trio.testing.MockClock:
    """Virtual time that waits a moment for a thread (the journal's compaction) before jumping."""
    return trio.testing.MockClock(autojump_threshold=0.25)


class Running:
    """A runtime running in a task of its own, until `stop()` (an orchestra process that ends)."""

    def __init__(self, runtime: SimulatedRuntime) -> None:
        self.runtime = runtime
        self.scope = trio.CancelScope()
        self.done = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with self.scope:
                await self.runtime.run(task_status=task_status)
        finally:
            self.done.set()

    async def stop(self) -> None:
        self.scope.cancel()
        await self.done.wait()


async def start(runtime: SimulatedRuntime, nursery: trio.Nursery) -> Running:
    running = Running(runtime)
    await nursery.start(running.run)
    return running


async def pod(rt: SimulatedRuntime, name: str, *commands: tuple[str, ...]) -> tuple[str, list[str]]:
    sandbox = await rt.create_sandbox(PodSandboxSpec(name=name, uid=f"uid-{name}", labels=NODE))
    await rt.start_sandbox(sandbox)
    ids = []
    for i, command in enumerate(commands):
        cid = await rt.create_container(sandbox,
                                        ContainerSpec(name=f"c{i}", image="busybox", command=command))
        await rt.start_container(cid)
        ids.append(cid)
    return sandbox, ids


async def test_restart_keeps_sandboxes_containers_and_times(tmp_path: Path,
                                                            clock: trio.testing.MockClock) -> None:
    with trio.fail_after(3600):
        async with trio.open_nursery() as nursery:
            first = SimulatedRuntime(state_dir=tmp_path)
            scope = await start(first, nursery)
            sandbox, (long, short, chatty) = await pod(
                first, "p", ("sleep", "3600"), ("sleep", "600"),
                ("sh", "-c", "echo one; sleep 700; echo two"))
            await trio.sleep(5)
            before = await first.sandbox_status(sandbox)
            statuses = {cid: await first.container_status(cid) for cid in (long, short, chatty)}
            await scope.stop()

            # the process restarts 1000 s later (wall clock); its trio clock is elsewhere
            now = trio.current_time()
            later = SimClock(epoch=EPOCH + timedelta(seconds=now + 1000), origin=now)
            second = SimulatedRuntime(state_dir=tmp_path, clock=later)
            scope = await start(second, nursery)
            after = await second.sandbox_status(sandbox)
            assert (after.id, after.ip, after.state, after.created_at) == (
                before.id, before.ip, SandboxState.READY, before.created_at)
            assert after.ip.startswith("10.244.")
            running = await second.container_status(long)
            assert running.state == ContainerState.RUNNING
            assert (running.started_at, running.created_at) == (
                statuses[long].started_at, statuses[long].created_at)
            exited = await second.container_status(short)  # its 600 s were over while the process was down
            assert (exited.state, exited.exit_code) == (ContainerState.EXITED, 0)
            started = statuses[short].started_at
            assert started is not None and exited.finished_at == started + timedelta(seconds=600)
            async with second.logs(chatty, timestamps=True) as lines:
                logged = [line async for line in lines]
            start_at = statuses[chatty].started_at
            assert start_at is not None
            stamp = "%Y-%m-%dT%H:%M:%S.%f"
            assert logged == [f"{(start_at + timedelta(seconds=s)).strftime(stamp)}000Z {w}\n".encode()
                              for s, w in ((0, "one"), (700, "two"))]
            await trio.sleep(3600 - 1005 - 1)
            assert (await second.container_status(long)).state == ContainerState.RUNNING
            await trio.sleep(2)
            assert (await second.container_status(long)).state == ContainerState.EXITED
            # new objects never take an id of the old ones
            other, _ = await pod(second, "q", ("sleep", "1"))
            assert other != sandbox and len({s.id for s in await second.list_sandboxes()}) == 2
            await scope.stop()


def journal_lines(directory: Path) -> list[bytes]:
    return (directory / "journal.jsonl").read_bytes().splitlines()


def tear(journal: Path) -> None:
    """The process died in the middle of a write."""
    with open(journal, "ab") as f:
        f.write(b'{"k": "rmsb", "id": "')


async def test_removed_objects_stay_removed_and_a_torn_tail_is_ignored(
        tmp_path: Path, clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            first = SimulatedRuntime(state_dir=tmp_path)
            scope = await start(first, nursery)
            gone, _ = await pod(first, "gone", ("sleep", "60"))
            kept, (cid,) = await pod(first, "kept", ("sleep", "60"))
            await first.remove_sandbox(gone)
            await scope.stop()
            tear(tmp_path / "journal.jsonl")
            second = SimulatedRuntime(state_dir=tmp_path)
            scope = await start(second, nursery)
            assert [s.id for s in await second.list_sandboxes()] == [kept]
            assert [c.id for c in await second.list_containers()] == [cid]
            await scope.stop()


async def test_two_runtimes_never_share_a_state_dir(tmp_path: Path, clock: trio.testing.MockClock) -> None:
    from orchestra.runtime.base import RuntimeUnavailable

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            scope = await start(SimulatedRuntime(state_dir=tmp_path), nursery)
            with pytest.raises(RuntimeUnavailable, match="in use by another orchestra"):
                await start(SimulatedRuntime(state_dir=tmp_path), nursery)
            await scope.stop()


async def test_journal_is_compacted(tmp_path: Path, patient_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            rt = SimulatedRuntime(state_dir=tmp_path)
            scope = await start(rt, nursery)
            # 6 records each (created, started, removed), just past the mark
            for i in range(COMPACT_MIN // 6 + 20):
                sandbox, _ = await pod(rt, f"p{i}", ("sleep", "1"))
                await rt.remove_sandbox(sandbox)
            await pod(rt, "last", ("sleep", "60"))
            with trio.fail_after(30):  # the compaction writes in a thread
                while len(journal_lines(tmp_path)) >= COMPACT_MIN // 2:  # noqa: ASYNC110 (a file, not an event)
                    await trio.sleep(0.1)
            await scope.stop()
        second = SimulatedRuntime(state_dir=tmp_path)
        async with trio.open_nursery() as nursery:
            scope = await start(second, nursery)
            assert [s.name for s in await second.list_sandboxes()] == ["last"]
            await scope.stop()


def test_discarded_state_is_gone(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    assert journal.open() == []
    journal.close()
    (tmp_path / "journal.jsonl").write_bytes(b'{"k": "gen", "n": 1}\n')
    journal.discard()
    assert Journal(tmp_path).open() == []


@pytest.mark.parametrize("tail", [
    pytest.param(b'{"k": "rm", "i', id="torn-last-record"),
    pytest.param(b"\x00" * 512, id="zeros-without-newline"),
    pytest.param(b"\x00" * 100 + b"\n" + b'{"k": "gen", "n": 9}\n', id="zeros-then-records"),
    pytest.param(b'[1, 2]\n{"k": "gen", "n": 9}\n', id="not-an-object"),
    pytest.param(b'"gen"\n', id="a-json-string"),
    pytest.param(b'{"k": "gen", "n": 9\n', id="cut-json-with-newline"),
])
def test_a_damaged_tail_is_cut_off_so_appends_follow_the_last_whole_record(tmp_path: Path,
                                                                           tail: bytes) -> None:
    (tmp_path / "journal.jsonl").write_bytes(b'{"k": "gen", "n": 1}\n' + tail)
    journal = Journal(tmp_path)
    assert journal.open() == [{"k": "gen", "n": 1}]
    journal.append({"k": "gen", "n": 2})
    journal.close()
    assert Journal(tmp_path).open() == [{"k": "gen", "n": 1}, {"k": "gen", "n": 2}]


async def test_a_malformed_record_is_skipped_and_the_rest_restored(
        tmp_path: Path, clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            first = SimulatedRuntime(state_dir=tmp_path)
            scope = await start(first, nursery)
            kept, (cid,) = await pod(first, "kept", ("sleep", "600"))
            await scope.stop()
            lines = journal_lines(tmp_path)
            bad = [b'{"k": "sb", "id": "x"}',
                   b'{"k": "c", "id": "y", "sb": "' + kept.encode() + b'", "spec": 1}',
                   b'{"k": "run", "id": "' + cid.encode() + b'", "at": "soon"}', b'{"k": "log", "id": "'
                   + cid.encode() + b'", "at": 1, "s": 1, "d": "%%%"}', b'{"k": "future-kind"}']
            (tmp_path / "journal.jsonl").write_bytes(b"\n".join([*lines[:1], *bad, *lines[1:]]) + b"\n")
            second = SimulatedRuntime(state_dir=tmp_path)
            scope = await start(second, nursery)
            assert [s.id for s in await second.list_sandboxes()] == [kept]
            (status,) = await second.list_containers()
            assert (status.id, status.state) == (cid, ContainerState.RUNNING)
            await scope.stop()


async def test_changes_reach_the_file_without_a_close(tmp_path: Path, clock: trio.testing.MockClock) -> None:
    """A killed process never closes its journal: what it wrote is there for the next one."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            first = SimulatedRuntime(state_dir=tmp_path / "a")
            scope = await start(first, nursery)
            sandbox, (cid,) = await pod(first, "p", ("sleep", "600"))
            ip = (await first.sandbox_status(sandbox)).ip
            await trio.testing.wait_all_tasks_blocked()
            (tmp_path / "b").mkdir()  # the file as a SIGKILL now would leave it
            (tmp_path / "b" / "journal.jsonl").write_bytes((tmp_path / "a" / "journal.jsonl").read_bytes())
            second = SimulatedRuntime(state_dir=tmp_path / "b")
            other = await start(second, nursery)
            status = await second.sandbox_status(sandbox)
            assert (status.state, status.ip) == (SandboxState.READY, ip)
            assert (await second.container_status(cid)).state == ContainerState.RUNNING
            await other.stop()
            await scope.stop()


async def test_run_again_in_memory_resumes_the_processes(clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            rt = SimulatedRuntime()
            running = await start(rt, nursery)
            _, (cid,) = await pod(rt, "p", ("sleep", "60"))
            await running.stop()
            await trio.sleep(30)
            running = await start(rt, nursery)
            assert (await rt.container_status(cid)).state == ContainerState.RUNNING
            await trio.sleep(31)
            status = await rt.container_status(cid)
            assert (status.state, status.exit_code) == (ContainerState.EXITED, 0)
            assert status.finished_at == status.started_at + timedelta(seconds=60)  # type: ignore[operator]
            await running.stop()
