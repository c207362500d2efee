"""Cron expressions and the CronJob controller under the virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.objects import format_time
from orchestra.reconcilers.workloads import cron
from orchestra.reconcilers.workloads.cronjob import CronJobController
from tests.controller.harness import Api
from tests.reconcilers.test_workloads_support import CLOCK, events, running, until

Obj = dict[str, Any]
T0 = datetime(2025, 1, 1, 0, 0, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(("expr", "after", "expected"), [
    ("*/5 * * * *", T0, T0 + timedelta(minutes=5)),
    ("@hourly", T0, T0 + timedelta(hours=1)),
    ("@daily", T0, T0 + timedelta(days=1)),
    ("@weekly", T0, datetime(2025, 1, 5, tzinfo=UTC)),
    ("@monthly", T0, datetime(2025, 2, 1, tzinfo=UTC)),
    ("@yearly", T0, datetime(2026, 1, 1, tzinfo=UTC)),
    ("30 9-17/4 * * mon-fri", T0, datetime(2025, 1, 1, 9, 30, tzinfo=UTC)),
    ("0 0 * feb sun", T0, datetime(2025, 2, 2, tzinfo=UTC)),
    ("0 12 13 * 5", T0, datetime(2025, 1, 3, 12, tzinfo=UTC)),  # dom OR dow when both restricted
    ("15,45 * * * *", T0, T0 + timedelta(minutes=15)),
    ("0 0 29 2 *", T0, datetime(2028, 2, 29, tzinfo=UTC)),
    ("0 9 * * *", T0, datetime(2025, 1, 1, 9, tzinfo=UTC)),
], ids=lambda v: str(v) if isinstance(v, str) else None)
def test_cron_next(expr: str, after: datetime, expected: datetime) -> None:
    assert cron.parse(expr).next(after) == expected


def test_cron_time_zone() -> None:
    s = cron.parse("0 9 * * *", cron.load_zone("Europe/Paris"))
    assert s.next(T0) == datetime(2025, 1, 1, 8, tzinfo=UTC)
    assert cron.parse("CRON_TZ=Asia/Tokyo 0 9 * * *").next(T0) == datetime(2025, 1, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("expr", ["* * * *", "61 * * * *", "5-1 * * * *", "*/0 * * * *", "* * * foo *"])
def test_cron_errors(expr: str) -> None:
    with pytest.raises(cron.CronError):
        cron.parse(expr)


def cj_factory(api: Api) -> CronJobController:
    return CronJobController(api.client, clock=CLOCK)


def cronjob(schedule: str = "*/5 * * * *", **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}


async def create_anchored(api: Api, body: Obj) -> datetime:
    """Create the CronJob and anchor lastScheduleTime at the current virtual minute (the API's
    creationTimestamp is wall-clock time, unrelated to the virtual clock)."""
    created = await api.create("CronJob", body)
    base = CLOCK().replace(second=0, microsecond=0)
    created["status"] = {"lastScheduleTime": format_time(base)}
    await api.client.update_status(api.rt("CronJob"), created)
    return base


def jobs(api: Api) -> list[Obj]:
    return sorted(api.list("Job", "default"), key=lambda j: j["metadata"]["name"])


def names(api: Api) -> list[str]:
    return [j["metadata"]["name"] for j in jobs(api) if not j["metadata"].get("deletionTimestamp")]


def vt(when: datetime) -> float:
    """The trio time at which the virtual clock reads `when`."""
    return (when - CLOCK()).total_seconds() + trio.current_time()


async def complete(api: Api, name: str, type_: str = "Complete") -> None:
    j = api.get("Job", name)
    assert j is not None
    t = format_time(CLOCK())
    j["status"] = {"conditions": [{"type": type_, "status": "True", "lastTransitionTime": t}],
                   **({"completionTime": t, "startTime": t} if type_ == "Complete" else {"startTime": t})}
    await api.client.update_status(api.rt("Job"), j)


async def test_schedule_creates_jobs_at_virtual_times(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(3600):
        async with running(cj_factory) as api:
            base = await create_anchored(api, cronjob())
            first = base + timedelta(minutes=5)
            expect_t = vt(first)
            t = await until(api, lambda: len(jobs(api)) == 1)
            assert t == pytest.approx(expect_t, abs=0.2)
            job = jobs(api)[0]
            assert job["metadata"]["name"] == f"tick-{int(first.timestamp()) // 60}"
            assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
            assert job["metadata"]["annotations"][
                "batch.kubernetes.io/cronjob-scheduled-timestamp"
            ].startswith("2025-01-01")
            cj = api.get("CronJob", "tick")
            assert cj["status"]["lastScheduleTime"] == format_time(first)  # type: ignore[index]
            assert cj["status"]["active"][0]["name"] == job["metadata"]["name"]  # type: ignore[index]
            await complete(api, job["metadata"]["name"])
            await until(api, lambda: "active" not in api.get("CronJob", "tick").get("status", {}))  # type: ignore[union-attr]
            assert api.get("CronJob", "tick")["status"]["lastSuccessfulTime"]  # type: ignore[index]
            t2 = await until(api, lambda: len(jobs(api)) == 2)
            assert t2 == pytest.approx(vt(first + timedelta(minutes=5)), abs=0.2)
            await until(api, lambda: bool(events(api, "SawCompletedJob")))


@pytest.mark.parametrize(("policy", "expected_jobs_at_12min"), [("Allow", 2), ("Forbid", 1), ("Replace", 1)])
async def test_concurrency_policy(
    policy: str, expected_jobs_at_12min: int, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(3600):
        async with running(cj_factory) as api:
            base = await create_anchored(api, cronjob(concurrencyPolicy=policy))
            await until(api, lambda: len(jobs(api)) == 1)
            first = names(api)[0]
            await trio.sleep(vt(base + timedelta(minutes=12)) - trio.current_time())
            live = names(api)
            assert len(live) == expected_jobs_at_12min, live
            if policy == "Replace":
                assert first not in live
                assert any(m == f"Deleted job {first}" for m in events(api, "SuccessfulDelete"))
            if policy == "Forbid":
                assert live == [first]


async def test_suspend_and_history_limits(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(7200):
        async with running(cj_factory) as api:
            base = await create_anchored(
                api, cronjob("* * * * *", successfulJobsHistoryLimit=1, failedJobsHistoryLimit=1)
            )
            for i in range(3):
                await until(api, lambda i=i: len(jobs(api)) >= i + 1 and all(
                    not j.get("status", {}).get("conditions") for j in jobs(api)[-1:]))
                await complete(api, jobs(api)[-1]["metadata"]["name"], "Complete" if i < 2 else "Failed")
            await trio.sleep(90)
            done = [j for j in jobs(api) if j.get("status", {}).get("conditions")]
            kinds = sorted(j["status"]["conditions"][0]["type"] for j in done)
            assert kinds == ["Complete", "Failed"]
            cj = api.get("CronJob", "tick")
            cj["spec"]["suspend"] = True  # type: ignore[index]
            await api.client.update(api.rt("CronJob"), cj)  # type: ignore[arg-type]
            await trio.sleep(1)
            count = len(jobs(api))
            await trio.sleep(600)
            assert len(jobs(api)) == count
            assert base < CLOCK()


async def test_starting_deadline_skips_old_schedules(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(7200):
        async with running(cj_factory) as api:
            await trio.sleep(30 - trio.current_time())  # virtual 00:00:30: the 00:00 run is 30 s old
            body = cronjob("0 * * * *", startingDeadlineSeconds=10)
            created = await api.create("CronJob", body)
            created["status"] = {"lastScheduleTime": format_time(CLOCK() - timedelta(hours=2))}
            await api.client.update_status(api.rt("CronJob"), created)
            await trio.sleep(30)
            assert jobs(api) == []  # 22:00 .. 00:00 are all beyond the 10 s starting deadline
            t = await until(api, lambda: len(jobs(api)) == 1)
            assert t == pytest.approx(vt(datetime(2025, 1, 1, 1, tzinfo=UTC)), abs=0.2)
