"""Restarting keeps every object and the revision counter; kill -9 mid-burst loses no acknowledged write."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

pytestmark = pytest.mark.slow

SERVER = """
import sys, trio
from pathlib import Path
from orchestra.app import ClusterConfig, run_cluster
trio.run(run_cluster, ClusterConfig(state_dir=Path(sys.argv[1]), listen_port=0, store="durable", \
podman=False, network=False))
"""


def start(state: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """Start a durable server on `state`; returns (process, url, token). Clients verify with pki/ca.crt."""
    kubeconfig = state / "kubeconfig"
    if kubeconfig.exists():
        kubeconfig.unlink()
    log = state.parent / f"{state.name}-server.log"
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(state)], stdout=subprocess.DEVNULL, stderr=err
        )
    deadline = time.monotonic() + 30  # wall-clock: waiting on another process
    while time.monotonic() < deadline:
        if kubeconfig.exists():
            cfg = orjson.loads(kubeconfig.read_bytes())
            url, token = cfg["clusters"][0]["cluster"]["server"], cfg["users"][0]["user"]["token"]
            try:
                if (
                    httpx.get(
                        f"{url}/readyz",
                        timeout=1,
                        verify=ssl.create_default_context(cafile=str(state / "pki" / "ca.crt")),
                    ).status_code
                    == 200
                ):
                    return proc, url, token
            except httpx.HTTPError:
                pass
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("server did not become ready")


def test_restart_keeps_objects_and_revision(tmp_path: Path) -> None:
    proc, url, token = start(tmp_path)
    httpx_kw = {"verify": ssl.create_default_context(cafile=str(tmp_path / "pki" / "ca.crt"))}
    h = {"Authorization": f"Bearer {token}"}
    try:
        for i in range(20):
            r = httpx.post(
                f"{url}/api/v1/namespaces/default/configmaps",
                headers=h,
                json={"metadata": {"name": f"c{i}"}, "data": {"i": str(i)}},
                **httpx_kw,
            )
            assert r.status_code == 201
        rv_before = int(
            httpx.get(f"{url}/api/v1/configmaps", headers=h, **httpx_kw).json()["metadata"]["resourceVersion"]
        )
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    proc, url, token2 = start(tmp_path)
    try:
        assert token2 == token  # the token survives restarts too
        listed = httpx.get(f"{url}/api/v1/namespaces/default/configmaps", headers=h, **httpx_kw).json()
        assert sorted(i["metadata"]["name"] for i in listed["items"]) == sorted(f"c{i}" for i in range(20))
        assert int(listed["metadata"]["resourceVersion"]) >= rv_before
        r = httpx.post(
            f"{url}/api/v1/namespaces/default/configmaps",
            headers=h,
            json={"metadata": {"name": "after"}},
            **httpx_kw,
        )
        assert int(r.json()["metadata"]["resourceVersion"]) > rv_before
    finally:
        proc.kill()
        proc.wait(10)


def test_kill_9_during_write_burst_loses_no_acknowledged_write(tmp_path: Path) -> None:
    proc, url, token = start(tmp_path)
    h = {"Authorization": f"Bearer {token}"}
    acked: list[str] = []
    stop = threading.Event()

    def writer(wid: int) -> None:
        with httpx.Client(
            base_url=url,
            headers=h,
            timeout=5,
            verify=ssl.create_default_context(cafile=str(tmp_path / "pki" / "ca.crt")),
        ) as c:
            i = 0
            while not stop.is_set():
                name = f"w{wid}-{i}"
                try:
                    r = c.post(
                        "/api/v1/namespaces/default/configmaps",
                        json={"metadata": {"name": name}, "data": {"n": name}},
                    )
                except httpx.HTTPError:
                    return  # the server died under us: this write was never acknowledged
                if r.status_code == 201:
                    acked.append(name)
                i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) > 50, "the burst should have written something"
    proc, url, token = start(tmp_path)
    try:
        listed = httpx.get(
            f"{url}/api/v1/namespaces/default/configmaps",
            headers=h,
            verify=ssl.create_default_context(cafile=str(tmp_path / "pki" / "ca.crt")),
        ).json()
        present = {i["metadata"]["name"] for i in listed["items"]}
        lost = [n for n in acked if n not in present]
        assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:5]}"
    finally:
        proc.kill()
        proc.wait(10)
