"""Native sidecars (restartable init containers) on the simulated runtime under the autojump clock:
start order, restarts whatever the pod's policy, probes, Job-style completion, termination order,
the status and the `kubectl get pods` row; and kube's validation of sidecar fields."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.api.policy.defaults import default
from orchestra.api.policy.validation import validate
from orchestra.api.tables.pods import pod_status_reason
from orchestra.runtime.base import EventType
from orchestra.runtime.simulated import ContainerScript, ExecScript, SimScript

from .harness import condition, deserialize, gaps, open_env, phase, state

BUSYBOX = "localhost/busybox:latest"
Obj = dict[str, Any]


def ctr(name: str, **extra: object) -> Obj:
    return {"name": name, "image": BUSYBOX, **extra}


def sidecar(name: str = "sc", **extra: object) -> Obj:
    return ctr(name, restartPolicy="Always", **extra)


def flag_handler(flags: dict[str, bool]) -> Any:
    """`check <flag>` exits 0 while flags[flag] is set."""

    def handler(cmd: tuple[str, ...]) -> ExecScript | None:
        if len(cmd) == 2 and cmd[0] == "check":
            return ExecScript(exit_code=0 if flags.get(cmd[1]) else 1)
        return None

    return handler


def row(pod: Obj | None) -> tuple[str, str, int]:
    """(STATUS, READY, RESTARTS) as `kubectl get pods` prints them."""
    reason, ready, total, restarts, _ = pod_status_reason(pod or {})
    return reason, f"{ready}/{total}", restarts


def init_state(pod: Obj | None, name: str = "sc") -> Obj:
    return state(pod, name, "initContainerStatuses")


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_sidecar_starts_in_order_and_gates_the_next_init(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    flags: dict[str, bool] = {}
    script = SimScript(
        containers={
            "init1": ContainerScript(exit_after=2),
            "init2": ContainerScript(exit_after=1),
            "sc": ContainerScript(exec_handler=flag_handler(flags)),
        }
    )
    startup = {"exec": {"command": ["check", "started"]}, "periodSeconds": 1, "failureThreshold": 100}
    with trio.fail_after(120):
        async with open_env(tmp_path, script) as env:
            await env.create_pod(
                "p", [ctr("c")], initContainers=[ctr("init1"), sidecar(startupProbe=startup), ctr("init2")]
            )
            await trio.sleep(10)
            pod = env.pod("p")
            assert env.started_times("sc") and env.started_times("init2") == []
            assert env.started_times("sc")[0] - env.started_times("init1")[0] == pytest.approx(2, abs=0.2)
            assert init_state(pod)["started"] is False and "running" in init_state(pod)["state"]
            assert row(pod) == ("Init:1/3", "0/2", 0) and phase(pod) == "Pending"
            assert condition(pod, "Initialized") == "False"
            flags["started"] = True
            unblocked = trio.current_time()
            pod = await env.wait_pod("p", lambda p: condition(p, "Ready") == "True")
            assert env.started_times("init2")[0] - unblocked <= 1.2  # the next init waited for `started`
            assert env.started_times("c")[0] - env.started_times("init2")[0] == pytest.approx(1, abs=0.2)
            assert row(pod) == ("Running", "2/2", 0) and phase(pod) == "Running"
            sc = init_state(pod)
            assert sc["started"] is True and sc["ready"] is True and "running" in sc["state"]
            assert init_state(pod, "init2")["state"]["terminated"]["reason"] == "Completed"
            deserialize(pod, "V1Pod")  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", ["Never", "OnFailure", "Always"])
async def test_sidecar_restarts_with_backoff_whatever_the_pod_policy(
    tmp_path: Path, autojump_clock: trio.abc.Clock, policy: str
) -> None:
    script = SimScript(containers={"sc": ContainerScript(exit_after=5, exit_code=1)})
    with trio.fail_after(600):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("p", [ctr("c")], initContainers=[sidecar()], restartPolicy=policy)
            pod = await env.wait_pod("p", lambda p: init_state(p).get("restartCount", 0) >= 3, limit=300)
            assert gaps(env.started_times("sc"), env.died_times("sc"))[:3] == [0.0, 10.0, 20.0]
            assert len(env.started_times("c")) == 1 and phase(pod) == "Running"
            assert condition(pod, "Initialized") == "True"  # a restarting sidecar does not un-initialize
            pod = await env.wait_pod(
                "p",
                lambda p: init_state(p)["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff",
                limit=300,
            )
            assert init_state(pod)["lastState"]["terminated"]["exitCode"] == 1
            _, ready, restarts = row(pod)
            assert ready == "1/2" and restarts == init_state(pod)["restartCount"]  # sidecar restarts count


async def test_sidecar_probes(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    flags = {"ready": False, "alive": True}
    script = SimScript(containers={"sc": ContainerScript(exec_handler=flag_handler(flags))})
    readiness = {"exec": {"command": ["check", "ready"]}, "periodSeconds": 1}
    liveness = {"exec": {"command": ["check", "alive"]}, "periodSeconds": 1, "failureThreshold": 2}
    with trio.fail_after(300):
        async with open_env(tmp_path, script) as env:
            await env.create_pod(
                "p", [ctr("c")], initContainers=[sidecar(readinessProbe=readiness, livenessProbe=liveness)]
            )
            pod = await env.wait_pod("p", lambda p: phase(p) == "Running")
            await trio.sleep(5)
            pod = env.pod("p")
            assert condition(pod, "Ready") == "False" and row(pod)[1] == "1/2"
            conditions = pod["status"]["conditions"]  # type: ignore[index]
            ready_cond = next(c for c in conditions if c["type"] == "Ready")
            assert ready_cond["message"] == "containers with unready status: [sc]"
            flags["ready"] = True
            pod = await env.wait_pod("p", lambda p: condition(p, "Ready") == "True")
            assert row(pod) == ("Running", "2/2", 0)
            flags["alive"] = False
            pod = await env.wait_pod("p", lambda p: init_state(p).get("restartCount") == 1)
            flags["alive"] = True
            await env.agent.recorder.flush()  # type: ignore[union-attr]
            killing = [e["message"] for e in await env.k8s_events() if e["reason"] == "Killing"]
            assert "Init container sc failed liveness probe" in killing
            assert len(env.started_times("c")) == 1  # the app container is left alone


@pytest.mark.parametrize(
    ("policy", "code", "want"),
    [("Never", 0, "Succeeded"), ("Never", 1, "Failed"), ("OnFailure", 0, "Succeeded")],
)
async def test_job_pod_completes_and_stops_its_sidecar(
    tmp_path: Path, autojump_clock: trio.abc.Clock, policy: str, code: int, want: str
) -> None:
    script = SimScript(containers={"main": ContainerScript(exit_after=5, exit_code=code)})
    with trio.fail_after(120):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("job", [ctr("main")], initContainers=[sidecar()], restartPolicy=policy)
            pod = await env.wait_pod("job", lambda p: phase(p) in ("Succeeded", "Failed"))
            assert phase(pod) == want
            (main_died,), (sc_died,) = env.died_times("main"), env.died_times("sc")
            assert 0 <= sc_died - main_died < 1  # SIGTERM right after the job container finished
            await trio.sleep(60)
            assert len(env.started_times("sc")) == 1  # and never restarted
            sc = init_state(env.pod("job"))
            assert sc["state"]["terminated"]["exitCode"] == 143 and sc["started"] is False
            assert row(env.pod("job")) == ("Completed" if code == 0 else "Error", "0/2", 0)


async def test_termination_stops_app_containers_then_sidecars_in_reverse(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    pre_stop = {"preStop": {"sleep": {"seconds": 3}}}  # every container exits on SIGTERM
    with trio.fail_after(120):
        async with open_env(tmp_path) as env:
            await env.create_pod(
                "p",
                [ctr("c", lifecycle=pre_stop)],
                initContainers=[sidecar("sc1"), sidecar("sc2")],
                terminationGracePeriodSeconds=10,
            )
            await env.wait_pod("p", lambda p: condition(p, "Ready") == "True")
            t0 = trio.current_time()
            await env.client.delete(env.rt("Pod"), "default", "p")
            await env.wait_pod("p", lambda p: p is None)
            deaths = [
                (e.labels.get("orchestra.io/container-name"), round(t - t0, 1))
                for t, e in env.events
                if e.type == EventType.DIED and not e.infra and t >= t0
            ]
            # c stops after its 3 s preStop hook; the sidecars get their SIGTERM only then, the last first
            assert deaths == [("c", 3.0), ("sc2", 3.0), ("sc1", 3.0)]


def pod_doc(**spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "web", "image": "nginx"}], **spec},
    }


PROBE = {"exec": {"command": ["true"]}}
HOOK = {"preStop": {"exec": {"command": ["true"]}}}
NOT_SIDECAR = "may not be set for init containers without restartPolicy=Always"


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        (
            {
                "initContainers": [
                    sidecar(
                        "s",
                        image="x",
                        readinessProbe=PROBE,
                        livenessProbe=PROBE,
                        startupProbe=PROBE,
                        lifecycle=HOOK,
                    )
                ]
            },
            [],
        ),
        (
            {"initContainers": [ctr("s", image="x", restartPolicy="Never")]},
            ['spec.initContainers[0].restartPolicy: Unsupported value: "Never": supported values: "Always"'],
        ),
        (
            {"containers": [ctr("web", image="x", restartPolicy="Always")]},
            ["spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"],
        ),
        (
            {"initContainers": [ctr("s", image="x", readinessProbe=PROBE)]},
            [f"spec.initContainers[0].readinessProbe: Forbidden: {NOT_SIDECAR}"],
        ),
        (
            {"initContainers": [ctr("s", image="x", lifecycle=HOOK)]},
            [f"spec.initContainers[0].lifecycle: Forbidden: {NOT_SIDECAR}"],
        ),
        (
            {"initContainers": [sidecar("s", image="x", livenessProbe={**PROBE, "successThreshold": 2})]},
            ["spec.initContainers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"],
        ),
    ],
    ids=[
        "sidecar-ok",
        "init-never",
        "app-restart-policy",
        "init-probe",
        "init-lifecycle",
        "liveness-threshold",
    ],
)
def test_sidecar_validation(spec: Obj, want: list[str]) -> None:
    obj = default("Pod", copy.deepcopy(pod_doc(**spec)))
    assert [f"{c.field}: {c.message}" for c in validate("Pod", obj, None)] == want
