"""Job controller: completions/parallelism, backoff, backoffLimit, deadline, ttl, Indexed, suspend."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from orchestra.reconcilers.workloads.job import JobController, compress_indexes
from tests.controller.harness import Api
from tests.reconcilers.test_workloads_support import CLOCK, active, events, pods, running, set_pod, until

Obj = dict[str, Any]


def job_factory(api: Api) -> JobController:
    return JobController(api.client, clock=CLOCK)


def job(name: str = "pi", **spec: Any) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
            },
            **spec,
        },
    }


def jstatus(api: Api, name: str = "pi") -> Obj:
    j = api.get("Job", name)
    return j.get("status", {}) if j else {}


def cond(api: Api, type_: str, name: str = "pi") -> Obj | None:
    return next((c for c in jstatus(api, name).get("conditions", []) if c["type"] == type_), None)


async def finish_all(api: Api, phase: str = "Succeeded") -> int:
    n = 0
    for p in active(api, "job-name=pi"):
        await set_pod(api, p["metadata"]["name"], phase=phase, ready=False)
        n += 1
    return n


@pytest.mark.parametrize(("completions", "parallelism"), [(3, 1), (5, 2), (4, 4)],
                         ids=["serial", "par2", "all-at-once"])
async def test_completions_and_parallelism(
    completions: int, parallelism: int, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(120):
        async with running(job_factory) as api:
            await api.create("Job", job(completions=completions, parallelism=parallelism))
            done = 0
            while done < completions:
                want = min(parallelism, completions - done)
                await until(api, lambda want=want: len(active(api, "job-name=pi")) == want)
                assert jstatus(api).get("active", 0) in (0, min(parallelism, completions - done))
                for p in active(api, "job-name=pi"):
                    assert p["metadata"]["labels"]["batch.kubernetes.io/controller-uid"]
                    assert p["metadata"]["ownerReferences"][0]["kind"] == "Job"
                done += await finish_all(api)
            await until(api, lambda: cond(api, "Complete") is not None)
            st = jstatus(api)
            assert st["succeeded"] == completions and st["active"] == 0 and st["completionTime"]
            assert cond(api, "SuccessCriteriaMet")["reason"] == "CompletionsReached"  # type: ignore[index]
            assert len(pods(api, "job-name=pi")) == completions


async def test_backoff_limit_and_failure_backoff_times(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(job_factory) as api:
            await api.create("Job", job(backoffLimit=2))
            created_at = []
            for _ in range(3):
                await until(api, lambda: len(active(api, "job-name=pi")) == 1)
                created_at.append(trio.current_time())
                await finish_all(api, "Failed")
            t = await until(api, lambda: cond(api, "Failed") is not None)
            # replacement pods after 10 s then 20 s of failure backoff
            assert created_at[1] - created_at[0] == pytest.approx(10, abs=1)
            assert created_at[2] - created_at[1] == pytest.approx(20, abs=1)
            assert t == pytest.approx(created_at[2], abs=0.01)
            c = cond(api, "Failed")
            assert c is not None and c["reason"] == "BackoffLimitExceeded"
            assert cond(api, "FailureTarget")["reason"] == "BackoffLimitExceeded"  # type: ignore[index]
            assert jstatus(api)["failed"] == 3 and "completionTime" not in jstatus(api)
            await until(api, lambda: bool(events(api, "BackoffLimitExceeded")))


async def test_active_deadline(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(job_factory) as api:
            await api.create("Job", job(activeDeadlineSeconds=30, parallelism=2, completions=4))
            t0 = trio.current_time()
            t = await until(api, lambda: cond(api, "Failed") is not None)
            assert t - t0 == pytest.approx(30, abs=1.01)
            assert cond(api, "Failed")["reason"] == "DeadlineExceeded"  # type: ignore[index]
            assert active(api, "job-name=pi") == []


async def test_ttl_after_finished_deletes_job(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with running(job_factory) as api:
            await api.create("Job", job(ttlSecondsAfterFinished=100))
            await until(api, lambda: len(active(api, "job-name=pi")) == 1)
            await finish_all(api)
            t_done = await until(api, lambda: cond(api, "Complete") is not None)
            t = await until(api, lambda: api.get("Job", "pi") is None
                            or bool(api.get("Job", "pi")["metadata"].get("deletionTimestamp")))  # type: ignore[index]
            assert t - t_done == pytest.approx(100, abs=1.01)


async def test_indexed_completion(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        async with running(job_factory) as api:
            await api.create("Job", job(completions=3, parallelism=3, completionMode="Indexed"))
            await until(api, lambda: len(active(api, "job-name=pi")) == 3)
            idx = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                         for p in active(api, "job-name=pi"))
            assert idx == ["0", "1", "2"]
            p0 = next(
                p
                for p in active(api)
                if p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "1"
            )
            assert p0["metadata"]["name"].startswith("pi-1-") and p0["spec"]["hostname"] == "pi-1"
            env = p0["spec"]["containers"][0]["env"]
            assert env[-1]["name"] == "JOB_COMPLETION_INDEX"
            await set_pod(api, p0["metadata"]["name"], phase="Succeeded", ready=False)
            await until(api, lambda: jstatus(api).get("completedIndexes") == "1")
            await finish_all(api)
            await until(api, lambda: cond(api, "Complete") is not None)
            assert jstatus(api)["completedIndexes"] == "0-2"


async def test_suspend_and_resume(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        async with running(job_factory) as api:
            await api.create("Job", job(suspend=True))
            await until(api, lambda: cond(api, "Suspended") is not None)
            assert active(api, "job-name=pi") == [] and "startTime" not in jstatus(api)
            j = api.get("Job", "pi")
            j["spec"]["suspend"] = False  # type: ignore[index]
            await api.client.update(api.rt("Job"), j)  # type: ignore[arg-type]
            await until(api, lambda: len(active(api, "job-name=pi")) == 1)
            await until(api, lambda: cond(api, "Suspended")["status"] == "False")  # type: ignore[index]


def test_compress_indexes() -> None:
    assert compress_indexes({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7"
    assert compress_indexes(set()) == ""
