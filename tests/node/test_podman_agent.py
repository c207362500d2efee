"""The agent against real Podman (pytest.mark.podman): busybox pods, probes, restarts, deletion,
adoption. Each test's agent labels its pods with a cluster id of its own (as every cluster's agent
does): the host's Podman also runs other tests' clusters, whose node is named node-1 too, and
neither the agent's adoption nor the test's clean-up may touch those. Each test removes its pods."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from orchestra.node.agent import find_container
from orchestra.node.sandbox import LABEL_CLUSTER, LABEL_NODE
from orchestra.runtime.base import ContainerState
from orchestra.runtime.podman import PodmanRuntime

from .harness import NODE, Env, condition, open_env, phase, state, waiting_reason

pytestmark = pytest.mark.podman
IMAGE = "localhost/busybox:latest"
HTTPD = {"name": "web", "image": IMAGE, "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
         "ports": [{"containerPort": 8080}],
         "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


def mine(env: Env) -> dict[str, str]:
    """The labels of this test's pods and containers."""
    return {LABEL_CLUSTER: env.config["cluster_id"], LABEL_NODE: NODE}


async def _cleanup(runtime: PodmanRuntime, labels: dict[str, str]) -> None:
    async with trio.open_nursery() as nursery:
        for sandbox in await runtime.list_sandboxes(labels):
            nursery.start_soon(runtime.remove_sandbox, sandbox.id)


@asynccontextmanager
async def podman_env(tmp_path: Path, socket: str) -> AsyncIterator[Env]:
    runtime = PodmanRuntime(socket)
    # the state dir label: should the test process die, a later `orchestra up` removes the pods once
    # the directory is gone (app/leftovers.py)
    cluster_id = f"agent-test-{uuid.uuid4().hex[:12]}"
    try:
        async with open_env(tmp_path, runtime=runtime, probe_mode="network", host=None, cluster_id=cluster_id,
                            cluster_state_dir=str(tmp_path)) as env:
            yield env
    finally:
        with trio.CancelScope(shield=True):
            await _cleanup(runtime, {LABEL_CLUSTER: cluster_id, LABEL_NODE: NODE})
            await runtime.aclose()


async def test_httpd_pod_running_ready_and_healed(tmp_path: Path, podman_socket: str) -> None:
    with trio.fail_after(60):
        async with podman_env(tmp_path, podman_socket) as env:
            t0 = time.perf_counter()
            await env.create_pod("web", [HTTPD])
            await env.wait_pod("web", lambda p: phase(p) == "Running")
            running = time.perf_counter() - t0
            pod = await env.wait_pod("web", lambda p: condition(p, "Ready") == "True")
            ready = time.perf_counter() - t0
            print(f"pod start latency: Running {running * 1000:.0f} ms, Ready {ready * 1000:.0f} ms")
            cs = state(pod, "web")
            assert cs["imageID"].startswith("localhost/busybox@sha256:")
            ip = pod["status"]["podIP"]  # type: ignore[index]
            stream = await trio.open_tcp_stream(ip, 8080)
            async with stream:
                await stream.send_all(b"GET / HTTP/1.0\r\n\r\n")
                assert b"200" in await stream.receive_some(100)
            sandboxes = await env.runtime.list_sandboxes(mine(env))
            assert len(sandboxes) == 1 and sandboxes[0].ip == ip
            # `podman kill` is healed at once
            await env.runtime.kill_container(cs["containerID"].removeprefix("podman://"))
            pod = await env.wait_pod("web", lambda p: state(p, "web").get("restartCount") == 1
                                     and condition(p, "Ready") == "True", limit=15)
            assert state(pod, "web")["lastState"]["terminated"]["exitCode"] == 137


async def test_exiting_container_crashloops(tmp_path: Path, podman_socket: str) -> None:
    with trio.fail_after(60):
        async with podman_env(tmp_path, podman_socket) as env:
            await env.create_pod("crash", [{"name": "c", "image": IMAGE, "command": ["sh", "-c", "exit 3"]}])
            pod = await env.wait_pod("crash", lambda p: waiting_reason(p) == "CrashLoopBackOff", limit=20)
            assert state(pod)["lastState"]["terminated"]["exitCode"] == 3
            t0 = time.perf_counter()
            pod = await env.wait_pod("crash", lambda p: state(p).get("restartCount", 0) >= 2, limit=20)
            assert 7 <= time.perf_counter() - t0 <= 12  # the 10 s back-off


async def test_delete_within_grace_period(tmp_path: Path, podman_socket: str) -> None:
    with trio.fail_after(60):
        async with podman_env(tmp_path, podman_socket) as env:
            await env.create_pod("polite", [{"name": "c", "image": IMAGE, "command": SLEEPER}])
            await env.create_pod("stubborn", [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"]}],
                                 terminationGracePeriodSeconds=3)
            await env.wait_pod("polite", lambda p: phase(p) == "Running")
            await env.wait_pod("stubborn", lambda p: phase(p) == "Running")
            t0 = time.perf_counter()
            await env.client.delete(env.rt("Pod"), "default", "polite")
            await env.client.delete(env.rt("Pod"), "default", "stubborn")
            await env.wait_pod("polite", lambda p: p is None, limit=20)
            polite = time.perf_counter() - t0
            await env.wait_pod("stubborn", lambda p: p is None, limit=20)
            stubborn = time.perf_counter() - t0
            assert polite < 2.5 and 2.5 <= stubborn <= 7  # SIGKILL after the 3 s grace period
            assert await env.runtime.list_sandboxes(mine(env)) == []
            assert await env.runtime.list_containers(mine(env)) == []


async def test_agent_restart_adopts_running_pods(tmp_path: Path, podman_socket: str) -> None:
    with trio.fail_after(60):
        async with podman_env(tmp_path, podman_socket) as env:
            await env.create_pod("keep", [{"name": "c", "image": IMAGE, "command": SLEEPER}])
            pod = await env.wait_pod("keep", lambda p: phase(p) == "Running")
            cid = state(pod)["containerID"]
            await env.stop_agent()
            agent = await env.start_agent(probe_mode="network", host=None)
            assert agent.statistics().adopted_sandboxes == 1
            await trio.sleep(2)
            assert state(env.pod("keep"))["containerID"] == cid
            running = [c for c in await env.runtime.list_containers(mine(env))
                       if c.state == ContainerState.RUNNING]
            assert len(running) == 1 and len(await env.runtime.list_sandboxes(mine(env))) == 1
            ref = await find_container(env.runtime, env.pod("keep"), "c")  # type: ignore[arg-type]
            assert f"podman://{ref.container_id}" == cid
