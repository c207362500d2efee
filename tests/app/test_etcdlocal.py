"""LocalEtcd (app/etcdlocal.py) in process, on Debian's real etcd: the URL once healthy, the ports kept
across starts (new ones when another process holds them), a failed first start as a clear error with
etcd's own words, a killed etcd started again, an orphaned etcd on its directory replaced and a live
one refused."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import orjson
import pytest
import trio

from orchestra.app.etcdlocal import (
    EtcdStartError,
    LocalEtcd,
    etcd_binary,
    etcd_command,
    etcds_on,
    free_port,
    healthy,
)
from orchestra.store.etcdclient import EtcdClient
from tests.etcdserver import etcd_missing

pytestmark = pytest.mark.skipif(etcd_missing() is not None, reason=etcd_missing() or "")


def etcd_child(reaper_pid: int) -> int:
    """The etcd process under its reaper."""
    children = Path(f"/proc/{reaper_pid}/task/{reaper_pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


async def until_healthy(endpoint: str) -> None:
    async with httpx.AsyncClient(timeout=1) as http:
        while True:  # polling another process: nothing in this one to wait on
            if await healthy(http, endpoint):
                return
            await trio.sleep(0.05)


async def test_reports_its_url_once_healthy_and_keeps_its_ports(tmp_path: Path) -> None:
    etcd = LocalEtcd(tmp_path / "etcd")
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(etcd.run)
            assert url == f"etcd://127.0.0.1:{etcd.client_port}"
            client = EtcdClient([etcd.endpoint])
            revision, _ = await client.put("/k", b"v")
            await client.aclose()
            nursery.cancel_scope.cancel()
        assert etcd.process is None or etcd.process.returncode is not None
        recorded = orjson.loads((tmp_path / "etcd" / "ports.json").read_bytes())
        assert recorded == {"client": etcd.client_port, "peer": etcd.peer_port}
        assert oct((tmp_path / "etcd").stat().st_mode & 0o777) == "0o700"
        again = LocalEtcd(tmp_path / "etcd")
        async with trio.open_nursery() as nursery:
            assert await nursery.start(again.run) == url  # same data, same endpoint
            client = EtcdClient([again.endpoint])
            kv, _ = await client.get("/k")
            await client.aclose()
            assert kv is not None and kv.value == b"v" and kv.mod_revision == revision
            nursery.cancel_scope.cancel()


async def test_moves_to_new_ports_when_its_own_are_taken(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        (tmp_path / "etcd").mkdir()
        (tmp_path / "etcd" / "ports.json").write_bytes(orjson.dumps({"client": taken, "peer": taken + 1}))
        etcd = LocalEtcd(tmp_path / "etcd")
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                url = await nursery.start(etcd.run)
                nursery.cancel_scope.cancel()
    assert etcd.client_port != taken and url == f"etcd://127.0.0.1:{etcd.client_port}"
    assert orjson.loads((tmp_path / "etcd" / "ports.json").read_bytes())["client"] == etcd.client_port


async def test_a_first_start_that_fails_is_an_error_with_etcds_words(tmp_path: Path) -> None:
    (tmp_path / "etcd").mkdir()
    (tmp_path / "etcd" / "data").write_text("not a directory")  # etcd cannot use it
    (tmp_path / "etcd" / "bootstrapped").write_text("")  # (so it is not dropped as an unfinished start)
    etcd = LocalEtcd(tmp_path / "etcd")
    with trio.fail_after(60), pytest.raises(EtcdStartError) as failed:
        await etcd.run()
    message = str(failed.value)
    assert message.startswith("the local etcd exited with status ")
    assert str(tmp_path / "etcd" / "etcd.log") in message and "data" in message.split(":", 1)[1]


async def test_a_killed_etcd_is_started_again(tmp_path: Path) -> None:
    etcd = LocalEtcd(tmp_path / "etcd")
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=1) as http:
            await nursery.start(etcd.run)
            assert etcd.process is not None
            first = etcd_child(etcd.process.pid)
            os.kill(first, signal.SIGKILL)
            while True:  # polling another process: nothing in this one to wait on
                if etcd.restarts == 1 and etcd.process is not None and await healthy(http, etcd.endpoint):
                    break
                await trio.sleep(0.05)
            assert etcd_child(etcd.process.pid) != first
            nursery.cancel_scope.cancel()


def etcd_on(directory: Path) -> list[str]:
    """The command of an etcd on LocalEtcd's data directory in `directory`."""
    etcd = etcd_binary()
    assert etcd is not None
    directory.mkdir(mode=0o700, exist_ok=True)
    return etcd_command(etcd, directory / "data", free_port(), free_port())


async def test_an_etcd_left_by_a_killed_orchestra_is_stopped_and_replaced(tmp_path: Path) -> None:
    cmd = etcd_on(tmp_path / "etcd")  # started in the background of a shell that exits: init's child
    shell = await trio.run_process(["sh", "-c", f"{shlex.join(cmd)} </dev/null >/dev/null 2>&1 & echo $!"],
                                   capture_stdout=True)
    left = int(shell.stdout)
    data = tmp_path / "etcd" / "data"
    try:
        assert etcds_on(data) == [(left, 1)]
        # up, as an etcd left running would be (one stopped mid-bootstrap never elects a leader)
        with trio.fail_after(30):
            await until_healthy(cmd[cmd.index("--listen-client-urls") + 1])
        etcd = LocalEtcd(tmp_path / "etcd")
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                await nursery.start(etcd.run)
                assert etcd.process is not None
                assert etcds_on(data) == [(etcd_child(etcd.process.pid), etcd.process.pid)]
                nursery.cancel_scope.cancel()
    finally:
        with contextlib.suppress(ProcessLookupError):  # stopped by LocalEtcd, as it should be
            os.kill(left, signal.SIGKILL)


async def test_an_etcd_of_a_live_process_on_the_same_directory_is_an_error(tmp_path: Path) -> None:
    other = await trio.lowlevel.open_process(etcd_on(tmp_path / "etcd"), stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL)
    try:
        with trio.fail_after(30), pytest.raises(EtcdStartError) as refused:
            await LocalEtcd(tmp_path / "etcd").run()
        data = tmp_path / "etcd" / "data"
        assert str(refused.value).startswith(f"an etcd (pid {other.pid}) already runs on {data}")
        assert [pid for pid, _ in etcds_on(data)] == [other.pid]  # left alone
    finally:
        other.kill()
        await other.wait()


async def test_the_data_of_an_unfinished_first_start_is_dropped_and_kept_once_bootstrapped(
    tmp_path: Path,
) -> None:
    wal = tmp_path / "etcd" / "data" / "member" / "wal"
    wal.mkdir(parents=True)
    (wal / "0000000000000000-0000000000000000.wal").write_bytes(b"\0" * 64)  # what etcd cannot read
    etcd = LocalEtcd(tmp_path / "etcd")
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(etcd.run)
            client = EtcdClient([etcd.endpoint])
            await client.put("/k", b"v")
            await client.aclose()
            nursery.cancel_scope.cancel()
        assert (tmp_path / "etcd" / "bootstrapped").exists()
        async with trio.open_nursery() as nursery:
            again = LocalEtcd(tmp_path / "etcd")
            await nursery.start(again.run)
            client = EtcdClient([again.endpoint])
            kv, _ = await client.get("/k")
            await client.aclose()
            assert kv is not None and kv.value == b"v"
            nursery.cancel_scope.cancel()
