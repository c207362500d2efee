"""Volumes written by the agent: files, modes, items, updates, cleanup."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
import trio
import trio.testing

from orchestra.runtime.simulated import SimulatedRuntime

from .harness import open_env, phase


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_volume_files_mounts_and_updates(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    host_dir = tmp_path / "host-data"
    volumes = [
        {
            "name": "cfg",
            "configMap": {
                "name": "cfg",
                "items": [{"key": "app.conf", "path": "conf/app.conf", "mode": 0o600}],
            },
        },
        {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
        {
            "name": "info",
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                ]
            },
        },
        {
            "name": "proj",
            "projected": {
                "sources": [
                    {"configMap": {"name": "cfg"}},
                    {"secret": {"name": "sec", "items": [{"key": "token", "path": "t"}]}},
                ]
            },
        },
        {"name": "scratch", "emptyDir": {}},
        {"name": "mem", "emptyDir": {"medium": "Memory"}},
        {"name": "host", "hostPath": {"path": str(host_dir), "type": "DirectoryOrCreate"}},
    ]
    mounts = [{"name": v["name"], "mountPath": f"/mnt/{v['name']}"} for v in volumes]
    with trio.fail_after(300):
        async with open_env(tmp_path, resync_seconds=10) as env:
            await env.client.create(
                env.rt("ConfigMap"),
                "default",
                {"metadata": {"name": "cfg"}, "data": {"app.conf": "color=blue\n", "other": "x"}},
            )
            await env.client.create(
                env.rt("Secret"),
                "default",
                {"metadata": {"name": "sec"}, "data": {"token": base64.b64encode(b"t0k").decode()}},
            )
            pod = await env.create_pod("v", [{"name": "c", "image": "busybox", "volumeMounts": mounts}],
                                       volumes=volumes, labels={"app": "v", "tier": "web"})
            await env.wait_pod("v", lambda p: phase(p) == "Running")
            root = tmp_path / "pods" / pod["metadata"]["uid"] / "volumes"
            conf = root / "configMap" / "cfg" / "conf" / "app.conf"
            assert conf.read_text() == "color=blue\n" and stat.S_IMODE(conf.stat().st_mode) == 0o600
            assert not (root / "configMap" / "cfg" / "other").exists()  # only the listed items
            token = root / "secret" / "sec" / "token"
            assert token.read_bytes() == b"t0k" and stat.S_IMODE(token.stat().st_mode) == 0o400
            assert (root / "downwardAPI" / "info" / "labels").read_text() == 'app="v"\ntier="web"'
            assert (root / "downwardAPI" / "info" / "name").read_text() == "v"
            assert sorted(p.name for p in (root / "projected" / "proj").iterdir()) == [
                "app.conf",
                "other",
                "t",
            ]
            assert (root / "emptyDir" / "scratch").is_dir() and (root / "emptyDir" / "mem").is_dir()
            assert host_dir.is_dir()
            sim = env.runtime
            assert isinstance(sim, SimulatedRuntime)
            spec = next(c.spec for c in sim._t.containers.values() if c.name == "c")
            by_path = {m.container_path: m for m in spec.mounts}
            assert by_path["/mnt/cfg"].read_only and by_path["/mnt/sec"].read_only
            assert not by_path["/mnt/scratch"].read_only and by_path["/mnt/host"].host_path == str(host_dir)
            # a changed ConfigMap reaches the files within a sync period
            cm = await env.client.get(env.rt("ConfigMap"), "default", "cfg")
            await env.client.update(env.rt("ConfigMap"), {**cm, "data": {"app.conf": "color=red\n"}})
            await trio.sleep(12)
            assert conf.read_text() == "color=red\n"
            assert sorted(p.name for p in (root / "projected" / "proj").iterdir()) == ["app.conf", "t"]
            await env.client.delete(env.rt("Pod"), "default", "v")
            await env.wait_pod("v", lambda p: p is None)
            assert not (tmp_path / "pods" / pod["metadata"]["uid"]).exists()


async def test_missing_volume_source_keeps_pod_pending(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    with trio.fail_after(120):
        async with open_env(tmp_path) as env:
            await env.create_pod("m", [{"name": "c", "image": "busybox",
                                        "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}],
                                 volumes=[{"name": "cfg", "configMap": {"name": "absent"}}])
            await trio.sleep(5)
            pod = env.pod("m")
            assert phase(pod) == "Pending"
            await env.agent.recorder.flush()  # type: ignore[union-attr]
            assert any(e["reason"] == "FailedMount" and 'configmap "absent" not found' in e["message"]
                       for e in await env.k8s_events())
            await env.client.create(
                env.rt("ConfigMap"), "default", {"metadata": {"name": "absent"}, "data": {}}
            )
            await env.wait_pod("m", lambda p: phase(p) == "Running", limit=30)
