"""Ephemeral containers on the simulated runtime (virtual time): added through
pods/ephemeralcontainers, started once in the pod's sandbox in the target's process namespace,
reported in ephemeralContainerStatuses, never restarted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.node.ephemeral import LABEL_EPHEMERAL
from orchestra.runtime.base import LABEL_CONTAINER_NAME, LABEL_POD_UID
from orchestra.runtime.simulated import ContainerScript, SimScript

from .harness import Env, condition, deserialize, open_env, state

BUSYBOX = "localhost/busybox:latest"
Obj = dict[str, Any]


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def add_ephemeral(env: Env, pod: str, *containers: Obj) -> Obj:
    current = env.pod(pod)
    assert current is not None
    body = {
        "spec": {"ephemeralContainers": [*(current["spec"].get("ephemeralContainers") or []), *containers]}
    }
    return await env.client.patch(
        env.rt("Pod"),
        "default",
        pod,
        json.dumps(body).encode(),
        patch_type="application/strategic-merge-patch+json",
        subresource="ephemeralcontainers",
    )


def ephemeral(pod: Obj | None, name: str) -> Obj:
    return state(pod, name, "ephemeralContainerStatuses")


async def instances(env: Env, pod: Obj, name: str) -> list[Any]:
    return await env.runtime.list_containers(
        {LABEL_POD_UID: pod["metadata"]["uid"], LABEL_CONTAINER_NAME: name}
    )


async def test_an_ephemeral_container_runs_once_in_the_targets_process_namespace(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    script = SimScript(containers={"once": ContainerScript(exit_after=5.0, exit_code=3)})
    with trio.fail_after(120):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("web", [{"name": "app", "image": BUSYBOX}])
            pod = await env.wait_pod("web", lambda p: condition(p, "Ready") == "True")
            assert pod is not None
            target = state(pod, "app")["containerID"].removeprefix("podman://")
            await add_ephemeral(
                env,
                "web",
                {
                    "name": "debugger",
                    "image": BUSYBOX,
                    "stdin": True,
                    "tty": True,
                    "targetContainerName": "app",
                },
            )
            pod = await env.wait_pod("web", lambda p: "running" in ephemeral(p, "debugger").get("state", {}))
            assert pod is not None
            status = ephemeral(pod, "debugger")
            assert status["ready"] is False and status["restartCount"] == 0
            assert status["containerID"].startswith("podman://") and status["imageID"]
            [debugger] = await instances(env, pod, "debugger")
            assert debugger.labels[LABEL_EPHEMERAL] == "true"
            assert env.runtime._t.containers[debugger.id].spec.pid_namespace_of == target  # type: ignore[attr-defined]
            assert condition(pod, "Ready") == "True"  # an ephemeral container never makes a pod unready
            deserialize(pod, "V1Pod")

            await add_ephemeral(env, "web", {"name": "once", "image": BUSYBOX})
            pod = await env.wait_pod("web", lambda p: "terminated" in ephemeral(p, "once").get("state", {}))
            assert ephemeral(pod, "once")["state"]["terminated"]["exitCode"] == 3
            await trio.sleep(60)  # kubelet never restarts an ephemeral container
            pod = env.pod("web")
            assert len(await instances(env, pod, "once")) == 1  # type: ignore[arg-type]
            assert ephemeral(pod, "once")["restartCount"] == 0 and pod["status"]["phase"] == "Running"  # type: ignore[index]


async def test_a_missing_image_and_a_target_that_is_not_running(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    script = SimScript(containers={"setup": ContainerScript(exit_after=30.0)})
    with trio.fail_after(120):
        async with open_env(tmp_path, script) as env:
            await env.create_pod(
                "slow",
                [{"name": "app", "image": BUSYBOX}],
                initContainers=[{"name": "setup", "image": BUSYBOX}],
            )
            await env.wait_pod(
                "slow", lambda p: "running" in state(p, "setup", "initContainerStatuses").get("state", {})
            )
            await add_ephemeral(
                env,
                "slow",
                {"name": "dbg", "image": BUSYBOX, "targetContainerName": "app"},
                {"name": "nope", "image": "example.com/missing:1"},
            )
            pod = await env.wait_pod(
                "slow",
                lambda p: (
                    ephemeral(p, "nope").get("state", {}).get("waiting", {}).get("reason")
                    in ("ErrImagePull", "ImagePullBackOff")
                ),
            )
            assert ephemeral(pod, "dbg")["state"]["waiting"]["reason"] == "ContainerCreating"
            pod = await env.wait_pod("slow", lambda p: "running" in ephemeral(p, "dbg").get("state", {}))
            assert "running" in state(pod, "app")["state"]  # started once its target runs
            await env.client.delete(env.rt("Pod"), "default", "slow")
            await env.wait_pod("slow", lambda p: p is None)
            assert await env.runtime.list_containers({LABEL_POD_UID: pod["metadata"]["uid"]}) == []  # type: ignore[index]
