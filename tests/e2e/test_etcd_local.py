"""`orchestra up --store etcd`: a real `orchestra up` process that starts and supervises Debian's etcd
under <state-dir>/etcd (app/etcdlocal.py). The API serves from it, objects are etcd's keys and survive
a restart of orchestra, a killed etcd is started again and the API recovers, and neither a clean stop
nor a SIGKILL of orchestra leaves an etcd behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time  # wall-clock: waiting on other processes
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.upserver import UpServer, orchestra_up, processes_naming
from tests.etcdserver import etcd_missing

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(etcd_missing() is not None, reason=etcd_missing() or "")]

CM = "/api/v1/namespaces/default/configmaps"
LOCAL_ETCD = ("--store", "etcd")


def etcd_pids(state: Path) -> list[int]:
    """The etcd processes (not their reapers) whose data directory is under `state`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # exited meanwhile
            continue
        if Path(argv[0].decode(errors="replace")).name == "etcd" and \
                str(state / "etcd" / "data").encode() in argv:
            found.append(int(entry.name))
    return found



def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def etcdctl_get(state: Path, key: str) -> list[dict[str, Any]]:
    """etcdctl against the local etcd (its client port from <state-dir>/etcd/ports.json)."""
    port = orjson.loads((state / "etcd" / "ports.json").read_bytes())["client"]
    out = subprocess.run(["etcdctl", "--endpoints", f"http://127.0.0.1:{port}", "get", key, "-w", "json"],
                         check=True, capture_output=True, env=dict(os.environ, ETCDCTL_API="3")).stdout
    return list(orjson.loads(out).get("kvs", []))


def create_configmap(server: UpServer, name: str) -> dict[str, Any]:
    with server.http() as http:
        created = http.post(CM, json={"metadata": {"name": name}, "data": {"a": name}})
    assert created.status_code == 201, created.text
    return dict(created.json())


def test_the_api_serves_from_the_local_etcd_and_objects_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with orchestra_up(state, store=LOCAL_ETCD) as server:
        assert len(etcd_pids(state)) == 1
        rv = create_configmap(server, "kept")["metadata"]["resourceVersion"]
        stored = etcdctl_get(state, "/registry/configmaps/default/kept")
        assert [str(kv["mod_revision"]) for kv in stored] == [rv]  # etcd holds it; its revision is the RV

        def nodes() -> list[str]:
            with server.http() as http:
                return [n["metadata"]["name"] for n in http.get("/api/v1/nodes").json()["items"]]

        assert wait_for(nodes, 30, "the simulated node registered") == ["sim-node-1"]
        ports = (state / "etcd" / "ports.json").read_bytes()
    assert "local etcd http://127.0.0.1:" in server.log_text()
    assert etcd_pids(state) == []  # a clean stop stops etcd too,
    assert "etcd unreachable" not in server.log_text()  # after everything that uses it
    assert (state / "etcd" / "data" / "member").is_dir()
    assert not (state / "store").exists()  # nothing in the durable log: the state is etcd's
    with orchestra_up(state, store=LOCAL_ETCD) as server:
        with server.http() as http:
            again = http.get(f"{CM}/kept")
        assert again.status_code == 200 and again.json()["data"] == {"a": "kept"}
        assert again.json()["metadata"]["resourceVersion"] == rv
        assert (state / "etcd" / "ports.json").read_bytes() == ports  # the same endpoint as before
    assert etcd_pids(state) == []


def test_a_killed_etcd_is_started_again_and_the_api_recovers(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with orchestra_up(state, store=LOCAL_ETCD) as server:
        # once every component has started (one whose start fails on a 503 ends the start-up)
        wait_for(lambda: "orchestra is ready in" in server.log_text(), 30, "orchestra's start-up")
        create_configmap(server, "before")
        [first] = etcd_pids(state)
        os.kill(first, signal.SIGKILL)
        [second] = wait_for(lambda: [p for p in etcd_pids(state) if p != first], 20, "a new etcd process")

        def written() -> bool:  # the first writes after the kill may be refused (503) until it is back
            with server.http() as http:
                return http.post(CM, json={"metadata": {"name": "after"}}).status_code == 201

        wait_for(written, 30, "a write through the API after etcd's restart")
        with server.http() as http:
            names = {i["metadata"]["name"] for i in http.get(CM).json()["items"]}
            assert {"before", "after"} <= names
            watch = http.get(CM, params={"watch": "1", "resourceVersion": "0", "timeoutSeconds": "1"})
        assert b'"after"' in watch.content  # the watch cache followed etcd's new process
        assert etcd_pids(state) == [second]
        assert "the local etcd exited with status" in server.log_text()
    assert etcd_pids(state) == []


def test_sigkill_of_orchestra_leaves_no_etcd(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with orchestra_up(state, store=LOCAL_ETCD) as server:
        assert len(etcd_pids(state)) == 1
        server.proc.kill()  # kill -9: no clean-up runs in orchestra; the reaper stops etcd
        server.proc.wait()
        wait_for(lambda: not processes_naming(state), 15, "no etcd (nor its reaper) left")
