"""A pod the node agent cannot digest, or a pod worker that crashes, stays with its pod: the agent
and its other pods carry on, and the pod is tried again with backoff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
import trio.testing

from orchestra.node import pod_worker

from .harness import Env, open_env, phase

C = [{"name": "c", "image": "busybox"}]


def store_raw(env: Env, name: str, change: Any) -> None:
    """Rewrite a stored pod behind the API's back: what an older version (or an edited etcd) left."""
    key = env.rt("Pod").key("default", name)
    kv = env.store.get(key)
    assert kv is not None
    obj = orjson.loads(kv.value)
    change(obj)
    env.store.put(key, orjson.dumps(obj))


async def test_a_stored_pod_its_sync_cannot_digest_is_retried(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        async with open_env(tmp_path, start=False) as env:
            await env.create_pod("bad", [{**C[0], "ports": [{"containerPort": 80, "hostPort": 18080}]}])
            store_raw(env, "bad", lambda p: p["spec"]["containers"][0]["ports"][0].update(
                containerPort="http"))
            agent = await env.start_agent()
            await env.create_pod("good", C)
            await env.wait_pod("good", lambda p: phase(p) == "Running")
            await trio.sleep(20)
            crashes = agent.statistics().counters["sync_crashes"]
            assert 3 <= crashes <= 6  # retried after 1, 2, 4, 8 s
            assert phase(env.pod("bad")) != "Running"
            store_raw(env, "bad", lambda p: p["spec"]["containers"][0]["ports"][0].update(containerPort=80))
            await env.wait_pod("bad", lambda p: phase(p) == "Running")
            assert agent.statistics().counters["sync_crashes"] == crashes


async def test_a_crashed_pod_worker_starts_again(tmp_path: Path, autojump_clock: trio.testing.MockClock,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real = pod_worker.ProbeManager
    failures = {"flaky": 2}

    def probe_manager(*args: Any) -> Any:  # a bug outside the sync loop: the worker task itself fails
        worker_wake = args[2]
        name = worker_wake.__self__.name
        if failures.get(name, 0) > 0:
            failures[name] -= 1
            raise RuntimeError("probe manager bug")
        return real(*args)

    monkeypatch.setattr(pod_worker, "ProbeManager", probe_manager)
    with trio.fail_after(120):
        async with open_env(tmp_path) as env:
            assert env.agent is not None
            created = trio.current_time()
            await env.create_pod("flaky", C)
            await env.create_pod("steady", C)
            await env.wait_pod("steady", lambda p: phase(p) == "Running")
            await env.wait_pod("flaky", lambda p: phase(p) == "Running")
            assert trio.current_time() - created >= 3.0  # restarted after 1 s, then after 2 s
            assert env.agent.statistics().counters["sync_crashes"] == 2
