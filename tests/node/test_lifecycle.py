"""Pod lifecycle on the simulated runtime under the autojump clock: timings are virtual seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from orchestra.node.sandbox import LABEL_NODE
from orchestra.runtime.base import ContainerState
from orchestra.runtime.simulated import ContainerScript, ExecScript, SimScript

from .harness import (
    NODE,
    condition,
    deserialize,
    gaps,
    open_env,
    phase,
    state,
    waiting_reason,
)

BUSYBOX = "localhost/busybox:latest"


def ctr(name: str = "c", **extra: object) -> dict[str, object]:
    return {"name": name, "image": BUSYBOX, **extra}


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_pod_runs_with_full_status(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(60):
        async with open_env(tmp_path) as env:
            await env.create_pod("web", [ctr(ports=[{"containerPort": 8080}])])
            pod = await env.wait_pod("web", lambda p: condition(p, "Ready") == "True")
            assert pod is not None
            status = pod["status"]
            assert status["phase"] == "Running"
            assert status["podIP"].startswith("10.244.") and status["podIPs"] == [{"ip": status["podIP"]}]
            assert status["hostIP"] == env.agent.host.internal_ip  # type: ignore[union-attr]
            assert status["qosClass"] == "BestEffort" and status["startTime"]
            cs = state(pod)
            assert cs["containerID"].startswith("podman://") and cs["ready"] and cs["started"]
            assert cs["imageID"].startswith("localhost/busybox@sha256:")
            assert cs["restartCount"] == 0 and "running" in cs["state"]
            types = {c["type"]: c["status"] for c in status["conditions"]}
            assert types == {
                "PodReadyToStartContainers": "True",
                "Initialized": "True",
                "Ready": "True",
                "ContainersReady": "True",
                "PodScheduled": types.get("PodScheduled", "True"),
            } or set(types) >= {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"}
            model = deserialize(pod, "V1Pod")
            assert model.status.container_statuses[0].state.running is not None
            reasons = [e["reason"] for e in await env.k8s_events()]
            await env.agent.recorder.flush()  # type: ignore[union-attr]
            reasons = [e["reason"] for e in await env.k8s_events()]
            assert {"Pulled", "Created", "Started"} <= set(reasons)
            ev = next(e for e in await env.k8s_events() if e["reason"] == "Pulled")
            assert ev["message"] == f'Container image "{BUSYBOX}" already present on machine'
            assert ev["source"] == {"component": "kubelet", "host": NODE}


async def test_crashloop_backoff_doubles_and_resets(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    script = SimScript(containers={"c": ContainerScript(exit_after=1, exit_code=1)})
    with trio.fail_after(3000):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("crash", [ctr()])
            pod = await env.wait_pod("crash", lambda p: state(p).get("restartCount", 0) >= 2
                                     and waiting_reason(p) == "CrashLoopBackOff")
            cs = state(pod)
            uid = pod["metadata"]["uid"]  # type: ignore[index]
            assert cs["state"]["waiting"]["message"] == (
                f"back-off 20s restarting failed container=c pod=crash_default({uid})")
            assert cs["lastState"]["terminated"]["exitCode"] == 1
            assert cs["lastState"]["terminated"]["reason"] == "Error"
            assert phase(pod) == "Running"
            await env.wait_pod("crash", lambda p: state(p).get("restartCount", 0) >= 5, limit=2000)
            # kubelet: first restart at once, then 10 s, 20 s, 40 s, 80 s
            assert gaps(env.started_times("c"), env.died_times("c"))[:5] == [0.0, 10.0, 20.0, 40.0, 80.0]
            await env.agent.recorder.flush()  # type: ignore[union-attr]
            backoff = [e for e in await env.k8s_events() if e["reason"] == "BackOff"]
            assert (
                backoff
                and backoff[0]["message"]
                == f"Back-off restarting failed container c in pod crash_default({uid})"
            )
            assert backoff[0]["type"] == "Warning"


async def test_crashloop_backoff_caps_at_five_minutes(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    script = SimScript(containers={"c": ContainerScript(exit_after=0.5, exit_code=2)})
    with trio.fail_after(5000):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("cap", [ctr()])
            await env.wait_pod("cap", lambda p: state(p).get("restartCount", 0) >= 8, limit=4000, step=1)
            assert gaps(env.started_times("c"), env.died_times("c"))[:8] == [0, 10, 20, 40, 80, 160, 300, 300]


async def test_backoff_resets_after_ten_minutes_running(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    script = SimScript(containers={"c": ContainerScript(exit_after=1, exit_code=1)})
    with trio.fail_after(3000):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("reset", [ctr()])
            await env.wait_pod("reset", lambda p: waiting_reason(p) == "CrashLoopBackOff")  # after 2 crashes
            script.containers["c"] = ContainerScript(exit_after=700, exit_code=1)  # the 3rd run lasts 700 s
            await env.wait_pod("reset", lambda p: state(p).get("restartCount", 0) >= 2, step=1)
            script.containers["c"] = ContainerScript(exit_after=1, exit_code=1)
            await env.wait_pod("reset", lambda p: state(p).get("restartCount", 0) >= 4, limit=2000, step=0.5)
            # 0, 10, then the 700 s run expired the back-off: restart at once, then 10 s again
            assert gaps(env.started_times("c"), env.died_times("c"))[:4] == [0.0, 10.0, 0.0, 10.0]


async def test_liveness_failure_restarts_container(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    healthy = {"ok": True}

    def handler(cmd: tuple[str, ...]) -> ExecScript | None:
        if cmd == ("cat", "/tmp/healthy"):
            return ExecScript(
                exit_code=0 if healthy["ok"] else 1, stderr=b"" if healthy["ok"] else b"no such file\n"
            )
        return None

    script = SimScript(containers={"c": ContainerScript(exec_handler=handler)})
    probe = {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 5, "failureThreshold": 3}
    with trio.fail_after(300):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("live", [ctr(livenessProbe=probe)])
            await env.wait_pod("live", lambda p: condition(p, "Ready") == "True")
            await trio.sleep(20)
            assert state(env.pod("live"))["restartCount"] == 0
            healthy["ok"] = False
            broke = trio.current_time()
            pod = await env.wait_pod("live", lambda p: state(p).get("restartCount", 0) == 1)
            killed = env.died_times("c")[0]
            assert 10 <= killed - broke <= 15  # 3 failures, 5 s apart
            assert state(pod)["lastState"]["terminated"]["exitCode"] == 143
            await env.agent.recorder.flush()  # type: ignore[union-attr]
            events = {e["reason"]: e for e in await env.k8s_events()}
            assert events["Killing"]["message"] == "Container c failed liveness probe, will be restarted"
            assert events["Unhealthy"]["message"].startswith("Liveness probe failed: no such file")
            assert events["Unhealthy"]["count"] >= 3


async def test_readiness_flips_ready(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    ready = {"ok": False}
    script = SimScript(containers={"c": ContainerScript(exec_handler=lambda cmd: ExecScript(
        exit_code=0 if ready["ok"] else 1) if cmd == ("cat", "/ready") else None)})
    probe = {"exec": {"command": ["cat", "/ready"]}, "periodSeconds": 2, "failureThreshold": 2,
             "successThreshold": 2}
    with trio.fail_after(300):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("ready", [ctr(readinessProbe=probe)])
            pod = await env.wait_pod("ready", lambda p: phase(p) == "Running")
            await trio.sleep(10)
            pod = env.pod("ready")
            assert condition(pod, "Ready") == "False" and condition(pod, "ContainersReady") == "False"
            assert state(pod)["ready"] is False and state(pod)["started"] is True
            ready["ok"] = True
            t0 = trio.current_time()
            await env.wait_pod("ready", lambda p: condition(p, "Ready") == "True")
            assert trio.current_time() - t0 <= 4.5  # two successes, 2 s apart
            ready["ok"] = False
            t0 = trio.current_time()
            pod = await env.wait_pod("ready", lambda p: condition(p, "Ready") == "False")
            assert trio.current_time() - t0 <= 4.5
            assert state(pod)["restartCount"] == 0  # readiness never restarts


async def test_http_readiness_probe(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    script = SimScript(containers={"web": ContainerScript(serves={8080: b"hello"})})
    probe = {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}
    with trio.fail_after(60):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("h", [ctr("web", readinessProbe=probe,
                                           ports=[{"name": "http", "containerPort": 8080}])])
            pod = await env.wait_pod("h", lambda p: condition(p, "Ready") == "True")
            assert state(pod, "web")["ready"] is True


async def test_startup_probe_gates_liveness(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    started = {"ok": False}
    script = SimScript(containers={"c": ContainerScript(exec_handler=lambda cmd: ExecScript(
        exit_code=0 if started["ok"] else 1) if cmd == ("check",) else None)})
    startup = {"exec": {"command": ["check"]}, "periodSeconds": 1, "failureThreshold": 100}
    liveness = {"exec": {"command": ["check"]}, "periodSeconds": 1, "failureThreshold": 1}
    with trio.fail_after(120):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("s", [ctr(startupProbe=startup, livenessProbe=liveness)])
            await trio.sleep(30)
            pod = env.pod("s")
            assert state(pod)["started"] is False and state(pod)["restartCount"] == 0
            started["ok"] = True
            pod = await env.wait_pod("s", lambda p: state(p).get("started") is True)
            assert state(pod)["restartCount"] == 0


async def test_init_containers_run_in_order(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    script = SimScript(
        containers={"init1": ContainerScript(exit_after=3), "init2": ContainerScript(exit_after=5)}
    )
    with trio.fail_after(60):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("i", [ctr()], initContainers=[ctr("init1"), ctr("init2")])
            pod = await env.wait_pod("i", lambda p: waiting_reason(p) == "PodInitializing" and
                                     condition(p, "Initialized") == "False")
            pod = await env.wait_pod("i", lambda p: condition(p, "Ready") == "True")
            s1, s2, s3 = (
                env.started_times("init1")[0],
                env.started_times("init2")[0],
                env.started_times("c")[0],
            )
            assert s2 - s1 == pytest.approx(3, abs=0.2) and s3 - s2 == pytest.approx(5, abs=0.2)
            init = state(pod, "init2", "initContainerStatuses")
            assert init["state"]["terminated"]["reason"] == "Completed" and init["ready"] is False
            deserialize(pod, "V1Pod")  # type: ignore[arg-type]


async def test_failing_init_container_with_never_fails_pod(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    script = SimScript(containers={"init": ContainerScript(exit_after=1, exit_code=3)})
    with trio.fail_after(60):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("i", [ctr()], initContainers=[ctr("init")], restartPolicy="Never")
            pod = await env.wait_pod("i", lambda p: phase(p) == "Failed")
            assert env.started_times("c") == []
            assert state(pod, "init", "initContainerStatuses")["state"]["terminated"]["exitCode"] == 3


@pytest.mark.parametrize(("policy", "code", "want", "runs"), [
    ("Never", 0, "Succeeded", 1), ("Never", 1, "Failed", 1), ("OnFailure", 0, "Succeeded", 1),
    ("OnFailure", 1, "Running", 2)], ids=["never-ok", "never-fail", "onfailure-ok", "onfailure-retry"])
async def test_job_like_phases(tmp_path: Path, autojump_clock: trio.abc.Clock, policy: str, code: int,
                               want: str, runs: int) -> None:
    script = SimScript(containers={"c": ContainerScript(exit_after=2, exit_code=code)})
    with trio.fail_after(120):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("job", [ctr()], restartPolicy=policy)
            await trio.sleep(7)
            pod = env.pod("job")
            assert phase(pod) == want
            assert len(env.started_times("c")) == runs
            if want in ("Succeeded", "Failed"):
                cs = state(pod)
                assert cs["state"]["terminated"]["exitCode"] == code
                assert cs["state"]["terminated"]["reason"] == ("Completed" if code == 0 else "Error")
                assert condition(pod, "Ready") == "False"
                sandboxes = await env.runtime.list_sandboxes({LABEL_NODE: NODE})
                assert [s.state for s in sandboxes] == ["notready"]  # stopped, kept for logs
                # a finished pod is deleted at once and nothing is left behind
                await env.client.delete(env.rt("Pod"), "default", "job")
                await trio.sleep(1)
                assert await env.runtime.list_sandboxes({LABEL_NODE: NODE}) == []


async def test_active_deadline_kills_pod(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(120):
        async with open_env(tmp_path) as env:
            await env.create_pod("dl", [ctr()], activeDeadlineSeconds=30, restartPolicy="Never")
            pod = await env.wait_pod("dl", lambda p: phase(p) == "Failed")
            assert trio.current_time() == pytest.approx(30, abs=0.5)
            assert pod["status"]["reason"] == "DeadlineExceeded"  # type: ignore[index]


@pytest.mark.parametrize(("sigterm", "grace", "pre_stop", "expect"), [
    (None, 30, None, 30.0), (143, 30, None, 0.0), (None, 5, None, 5.0), (143, 30, ["sleep", "4"], 4.0)],
    ids=["ignores-sigterm", "polite", "short-grace", "prestop"])
async def test_graceful_deletion(tmp_path: Path, autojump_clock: trio.abc.Clock, sigterm: int | None,
                                 grace: int, pre_stop: list[str] | None, expect: float) -> None:
    script = SimScript(containers={"c": ContainerScript(on_sigterm=sigterm)})
    extra = {"lifecycle": {"preStop": {"exec": {"command": pre_stop}}}} if pre_stop else {}
    with trio.fail_after(120):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("g", [ctr(**extra)], terminationGracePeriodSeconds=grace)
            await env.wait_pod("g", lambda p: condition(p, "Ready") == "True")
            t0 = trio.current_time()
            obj = await env.client.delete(env.rt("Pod"), "default", "g")
            assert obj is not None and obj["metadata"]["deletionGracePeriodSeconds"] == grace
            await env.wait_pod("g", lambda p: p is None, step=0.1)
            assert trio.current_time() - t0 == pytest.approx(expect, abs=0.5)
            assert await env.runtime.list_sandboxes({LABEL_NODE: NODE}) == []
            assert await env.runtime.list_containers({LABEL_NODE: NODE}) == []
            await env.agent.recorder.flush()  # type: ignore[union-attr]
            assert any(e["reason"] == "Killing" and e["message"] == "Stopping container c"
                       for e in await env.k8s_events())


async def test_image_pull_backoff(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    script = SimScript()
    image = "registry.example.com/app:1"
    with trio.fail_after(300):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("img", [{"name": "c", "image": image}])
            pod = await env.wait_pod("img", lambda p: waiting_reason(p) == "ErrImagePull")
            assert "registry unreachable" in state(pod)["state"]["waiting"]["message"]
            pod = await env.wait_pod("img", lambda p: waiting_reason(p) == "ImagePullBackOff")
            assert state(pod)["state"]["waiting"]["message"] == f'Back-off pulling image "{image}"'
            assert phase(pod) == "Pending"
            deserialize(pod, "V1Pod")  # type: ignore[arg-type]
            # retries after 10 s, then 20 s: ErrImagePull again at ~10 and ~30
            await env.wait_pod("img", lambda p: waiting_reason(p) == "ErrImagePull")
            assert trio.current_time() == pytest.approx(10, abs=0.5)
            await env.wait_pod("img", lambda p: waiting_reason(p) == "ImagePullBackOff")
            await env.wait_pod("img", lambda p: waiting_reason(p) == "ErrImagePull")
            assert trio.current_time() == pytest.approx(30, abs=0.5)
            script.pullable_images.add(image)
            await env.wait_pod("img", lambda p: phase(p) == "Running")
            assert trio.current_time() == pytest.approx(70, abs=0.5)
            await env.agent.recorder.flush()  # type: ignore[union-attr]
            messages = {(e["reason"], e["message"]) for e in await env.k8s_events()}
            assert ("Failed", "Error: ErrImagePull") in messages
            assert ("BackOff", f'Back-off pulling image "{image}"') in messages


async def test_killed_container_is_healed(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    with trio.fail_after(60):
        async with open_env(tmp_path) as env:
            await env.create_pod("k", [ctr()])
            pod = await env.wait_pod("k", lambda p: condition(p, "Ready") == "True")
            cid = state(pod)["containerID"].removeprefix("podman://")
            t0 = trio.current_time()
            await env.runtime.kill_container(cid)
            pod = await env.wait_pod("k", lambda p: state(p).get("restartCount") == 1 and
                                     condition(p, "Ready") == "True")
            assert trio.current_time() - t0 < 1  # first restart is immediate (woken by the runtime event)
            assert state(pod)["lastState"]["terminated"]["exitCode"] == 137


async def test_adoption_after_agent_restart(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    script = SimScript(containers={"crash": ContainerScript(exit_after=1, exit_code=1)})
    with trio.fail_after(300):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("a", [ctr()])
            await env.create_pod("b", [ctr("crash")])
            await env.create_pod("doomed", [ctr()])
            await env.wait_pod("a", lambda p: condition(p, "Ready") == "True")
            await env.wait_pod("b", lambda p: state(p, "crash").get("restartCount", 0) >= 2)
            await env.wait_pod("doomed", lambda p: condition(p, "Ready") == "True")
            before = {s.uid: s.id for s in await env.runtime.list_sandboxes({LABEL_NODE: NODE})}
            a_cid = state(env.pod("a"))["containerID"]
            restarts = state(env.pod("b"), "crash")["restartCount"]
            await env.stop_agent()
            # while the agent is down, "doomed" is force-deleted
            await env.client.delete(env.rt("Pod"), "default", "doomed", grace_period_seconds=0)
            agent = await env.start_agent()
            stats = agent.statistics()
            assert stats.adopted_sandboxes == 2 and stats.removed_orphans == 1
            after = {s.uid: s.id for s in await env.runtime.list_sandboxes({LABEL_NODE: NODE})}
            assert len(after) == 2 and all(before[uid] == sid for uid, sid in after.items())
            await trio.sleep(5)
            assert state(env.pod("a"))["containerID"] == a_cid  # not restarted
            assert state(env.pod("b"), "crash")["restartCount"] >= restarts  # counts preserved
            running = [c for c in await env.runtime.list_containers({LABEL_NODE: NODE})
                       if c.state == ContainerState.RUNNING and c.name == "c"]
            assert len(running) == 1  # no duplicates
