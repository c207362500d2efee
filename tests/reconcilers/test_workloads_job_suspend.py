"""The Job's Suspended condition and events as kube words them: JobSuspended / "Job suspended" and a
Suspended event, then JobResumed / "Job resumed" and a Resumed event."""

from __future__ import annotations

import trio
import trio.testing

from tests.reconcilers.test_workloads_job import cond, job, job_factory
from tests.reconcilers.test_workloads_support import events, running, until


async def test_suspend_then_resume_words(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        async with running(job_factory) as api:
            await api.create("Job", job(suspend=True))
            await until(api, lambda: cond(api, "Suspended") is not None)
            suspended = cond(api, "Suspended") or {}
            assert (suspended["status"], suspended["reason"], suspended["message"]) == (
                "True",
                "JobSuspended",
                "Job suspended",
            )
            assert events(api, "Suspended", "pi") == ["Job suspended"]
            j = api.get("Job", "pi")
            j["spec"]["suspend"] = False  # type: ignore[index]
            await api.client.update(api.rt("Job"), j)  # type: ignore[arg-type]
            await until(api, lambda: (cond(api, "Suspended") or {}).get("status") == "False")
            resumed = cond(api, "Suspended") or {}
            assert (resumed["reason"], resumed["message"]) == ("JobResumed", "Job resumed")
            assert events(api, "Resumed", "pi") == ["Job resumed"]
