"""The durable backend only (the contract it shares with memory is in test_mvcc/test_watch/test_machine):
reopen, torn tails, kill -9, segments, snapshots, fsync policies, group commit."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

from orchestra.store import CompactedError, Delete, KeyValue, Put, Store, StoreError
from orchestra.store.log import OP_PUT, encode_record


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("wal-*.log"))


def stat(store: Store, name: str) -> int:
    value = store.statistics()[name]
    assert isinstance(value, int)
    return value


def snapshot_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("snap-*"))


def fill(store: Store) -> dict[str, KeyValue]:
    store.put("a", b"1")
    store.put("b", b"2")
    store.put("a", b"3")
    store.delete("b")
    store.txn([], [Put("c", b"4"), Put("d", b"5")])
    store.txn([], [Delete("d"), Put("e", b"x" * 10_000)])
    return {kv.key: kv for kv in store.range("")[0]}


def test_reopen_keeps_every_key_and_the_revision(tmp_path: Path) -> None:
    store = Store.open_durable(tmp_path)
    before = fill(store)
    store.close()
    store = Store.open_durable(tmp_path)
    assert {kv.key: kv for kv in store.range("")[0]} == before
    assert store.revision == 6
    assert store.compact_revision == 6
    assert store.get("a") == KeyValue("a", b"3", 1, 3, 2)
    with pytest.raises(CompactedError):
        store.watch("", start_revision=6)
    store.put("a", b"after")
    assert store.get("a") == KeyValue("a", b"after", 1, 7, 3)
    assert [e.revision for e in store.watch("", start_revision=7).receive_nowait()] == [7]
    store.close()
    assert Store.open_durable(tmp_path).revision == 7


def test_reopen_of_an_empty_directory(tmp_path: Path) -> None:
    Store.open_durable(tmp_path / "new").close()
    store = Store.open_durable(tmp_path / "new")
    assert (store.revision, store.range("")) == (0, ([], 0))


def test_second_open_of_a_directory_is_refused(tmp_path: Path) -> None:
    store = Store.open_durable(tmp_path)
    with pytest.raises(StoreError, match="in use"):
        Store.open_durable(tmp_path)
    store.close()
    Store.open_durable(tmp_path).close()


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-3],  # the last record's payload was cut short
        lambda data: data[: -(len(data) // 7)],  # cut somewhere in the middle of a record
        lambda data: data + b"\x10\x00",  # a half-written header
        lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]),  # bad crc
    ],
    ids=["short-payload", "mid-record", "short-header", "bad-crc"],
)
def test_torn_tail_is_truncated_and_writing_continues(tmp_path: Path, damage: object) -> None:
    store = Store.open_durable(tmp_path, fsync="never")
    for i in range(50):
        store.put(f"k{i:02d}", str(i).encode())
    store.close()
    (log,) = segments(tmp_path)
    data = log.read_bytes()
    log.write_bytes(damage(data))  # type: ignore[operator]
    store = Store.open_durable(tmp_path, fsync="never")
    survivors = store.revision
    assert survivors in range(40, 51)
    assert [kv.key for kv in store.range("")[0]] == [f"k{i:02d}" for i in range(survivors)]
    truncated = len(damage(data)) - log.stat().st_size  # type: ignore[operator]
    assert store.statistics()["truncated_bytes"] == truncated
    store.put("next", b"v")
    store.close()
    store = Store.open_durable(tmp_path)
    assert store.revision == survivors + 1
    assert store.get("next") is not None
    store.close()


async def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    writer = (
        "import sys\n"
        "from orchestra.store import Store\n"
        "store = Store.open_durable(sys.argv[1], fsync='never')\n"
        "for i in range(1, 10**9):\n"
        "    kv = store.put(f'key/{i}', str(i).encode() * 20)\n"
        "    sys.stdout.write(f'{kv.mod_revision}\\n')\n"
        "    sys.stdout.flush()\n"
    )
    with trio.fail_after(30):
        acknowledged = await _run_and_kill([sys.executable, "-c", writer, str(tmp_path)])
    assert len(acknowledged) > 100, "the writer barely ran"
    store = Store.open_durable(tmp_path)
    assert store.revision >= acknowledged[-1]
    for revision in acknowledged:
        assert store.get(f"key/{revision}") == KeyValue(
            f"key/{revision}", str(revision).encode() * 20, revision, revision, 1
        )
    store.close()


async def _run_and_kill(command: list[str]) -> list[int]:
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    output = bytearray()
    going = trio.Event()
    async with trio.open_nursery() as nursery:

        async def read() -> None:
            assert process.stdout is not None
            async for chunk in process.stdout:
                output.extend(chunk)
                if output.count(b"\n") > 50:
                    going.set()

        nursery.start_soon(read)
        await going.wait()
        await trio.sleep(0.5)
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL
    lines = bytes(output).split(b"\n")
    return [int(line) for line in lines[:-1]]  # the last piece may be a half-printed line


def two_segments(directory: Path) -> None:
    """wal-1 with revisions 1-2 and wal-3 with revision 3: what a crash between rotation and the
    snapshot write leaves behind."""
    store = Store.open_durable(directory, fsync="never")
    store.put("a", b"1")
    store.put("b", b"2")
    store.close()
    (directory / f"wal-{3:020d}.log").write_bytes(encode_record(3, [(OP_PUT, "c", b"3")]))


def test_replay_spans_segments(tmp_path: Path) -> None:
    two_segments(tmp_path)
    store = Store.open_durable(tmp_path)
    assert (store.revision, store.count("")) == (3, 3)
    store.close()


def test_damage_before_the_last_segment_is_an_error(tmp_path: Path) -> None:
    two_segments(tmp_path)
    first = segments(tmp_path)[0]
    first.write_bytes(first.read_bytes()[:-2])
    with pytest.raises(StoreError, match="damaged"):
        Store.open_durable(tmp_path)


def test_a_gap_between_segments_is_an_error(tmp_path: Path) -> None:
    two_segments(tmp_path)
    segments(tmp_path)[1].rename(tmp_path / f"wal-{4:020d}.log")
    with pytest.raises(StoreError, match="gap"):
        Store.open_durable(tmp_path)


async def test_snapshot_rotates_the_log_and_bounds_replay(tmp_path: Path) -> None:
    with trio.fail_after(10):
        store = Store.open_durable(tmp_path, fsync="batch", snapshot_every=100)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            for i in range(250):
                store.put(f"k{i % 30}", str(i).encode())
                if i % 50 == 0:
                    await trio.sleep(0.06)  # let run() notice
            # polling: run() is the thing under test and exposes no event for "snapshot written"
            while store.statistics()["snapshot_revision"] < 200:  # type: ignore[operator]  # noqa: ASYNC110
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        state = store.range("")
        store.close()
        assert snapshot_names(tmp_path) == [f"snap-{store.statistics()['snapshot_revision']:020d}.snap"]
        assert len(segments(tmp_path)) == 1
        reopened = Store.open_durable(tmp_path)
        assert reopened.range("") == state
        assert reopened.get("k0") == KeyValue("k0", b"240", 1, 241, 9)
        reopened.close()


async def test_snapshot_then_torn_tail(tmp_path: Path) -> None:
    with trio.fail_after(10):
        store = Store.open_durable(tmp_path, fsync="never")
        for i in range(10):
            store.put(f"k{i}", b"v")
        await store.snapshot()
        await store.snapshot()  # nothing new: a no-op
        store.put("k10", b"v")
        store.put("k11", b"v")
        store.close()
        (log,) = segments(tmp_path)
        assert log.name == f"wal-{11:020d}.log"
        log.write_bytes(log.read_bytes()[:-1])
        store = Store.open_durable(tmp_path)
        assert store.revision == 11
        assert store.count("") == 11
        store.close()


async def test_always_group_commit(tmp_path: Path) -> None:
    with trio.fail_after(10):
        store = Store.open_durable(tmp_path, fsync="always")
        fsyncs_before = store.statistics()["fsyncs"]
        done: list[int] = []

        async def writer(n: int) -> None:
            for i in range(10):
                kv = store.put(f"w{n}/{i}", b"v")
                await store.wait_durable(kv.mod_revision)
                assert store.statistics()["durable_revision"] >= kv.mod_revision  # type: ignore[operator]
                done.append(kv.mod_revision)

        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(writer, n)
        assert len(done) == 200
        fsyncs = store.statistics()["fsyncs"] - fsyncs_before  # type: ignore[operator]
        assert 1 <= fsyncs < 100, "concurrent writers should share fsyncs"
        store.close()


async def test_batch_fsyncs_in_run(tmp_path: Path) -> None:
    with trio.fail_after(10):
        store = Store.open_durable(tmp_path, fsync="batch")
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            kv = store.put("k", b"v")
            await store.wait_durable(kv.mod_revision)  # batch: does not wait
            # polling: the batch fsync in run() is what is under test and it has no event
            while stat(store, "durable_revision") < kv.mod_revision:  # noqa: ASYNC110
                await trio.sleep(0.01)
            assert store.statistics()["fsyncs"] >= 1  # type: ignore[operator]
            nursery.cancel_scope.cancel()
        store.close()


async def test_never_does_not_fsync(tmp_path: Path) -> None:
    with trio.fail_after(10):
        store = Store.open_durable(tmp_path, fsync="never")
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            kv = store.put("k", b"v")
            await store.wait_durable(kv.mod_revision)
            await trio.sleep(0.2)
            nursery.cancel_scope.cancel()
        stats = store.statistics()
        assert stats["fsyncs"] == 0
        assert stats["bytes_on_disk"] == segments(tmp_path)[0].stat().st_size
        store.close()


def test_open_durable_rejects_unknown_policy(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Store.open_durable(tmp_path, fsync="sometimes")  # type: ignore[arg-type]
