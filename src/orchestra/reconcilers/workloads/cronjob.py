"""CronJob controller (kube's cronjob controllerv2).

Owns, per CronJob:
  * status.active (references to owned unfinished Jobs), lastScheduleTime, lastSuccessfulTime;
  * the most recent missed schedule time after lastScheduleTime (or creationTimestamp), within
    startingDeadlineSeconds (MissSchedule event when too late; TooManyMissedTimes after 100);
  * concurrencyPolicy: Allow; Forbid (skip while a Job is active); Replace (delete active Jobs);
  * the Job `<cronjob>-<scheduled time in minutes since the epoch>` from jobTemplate, with the
    batch.kubernetes.io/cronjob-scheduled-timestamp annotation and a controller ownerReference;
  * suspend; successfulJobsHistoryLimit / failedJobsHistoryLimit (oldest finished Jobs deleted);
  * spec.timeZone (IANA name; UnknownTimeZone event when invalid);
  * events SuccessfulCreate "Created job x", SawCompletedJob, SuccessfulDelete, MissSchedule,
    UnparseableSchedule, UnknownTimeZone, JobAlreadyActive.
Time: `clock()` (injected; a virtual clock in tests); requeues at the next schedule time.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from orchestra.api.errors import AlreadyExists, NotFound
from orchestra.client.base import Client
from orchestra.controller import NORMAL, WARNING, Controller, Result
from orchestra.controller.clock import Clock, wall_clock
from orchestra.objects import (
    Obj,
    condition_true,
    controller_ref,
    deep_copy,
    format_time,
    meta,
    new_controller_ref,
    parse_time,
    spec,
    status,
)
from orchestra.reconcilers.workloads import cron
from orchestra.reconcilers.workloads.common import Expectations, owner_keys
from orchestra.reconcilers.workloads.keyed import settled

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100
NEXT_SCHEDULE_DELTA = 0.1  # kube adds 100 ms to the requeue at the next schedule time


def _finished(job: Obj) -> str | None:
    for type_ in ("Complete", "Failed"):
        if condition_true(job, type_):
            return type_
    return None


def job_name(cronjob: Obj, scheduled: datetime) -> str:
    return f"{meta(cronjob)['name']}-{int(scheduled.timestamp()) // 60}"


class CronJobController(Controller):
    name = "cronjob-controller"

    def __init__(self, client: Client, *, clock: Clock = wall_clock, workers: int = 1, **kwargs: Any) -> None:
        super().__init__(client, workers=workers, **kwargs)
        self.clock = clock
        self.expect = Expectations()
        self.cronjobs = self.informer("CronJob")
        self.jobs = self.informer("Job")
        self.enqueue_on(self.cronjobs)
        self.enqueue_on(
            self.jobs, lambda _t, old, new: {*owner_keys(old, "CronJob"), *owner_keys(new, "CronJob")}
        )

    async def reconcile(self, key: str) -> Result | None:
        cached = await settled(self.expect, self.cronjobs, key)
        if cached is None:
            return None
        cj = deep_copy(cached)
        now = self.clock()
        uid = meta(cj)["uid"]
        jobs = [j for j in self.jobs.by_index("namespace", meta(cj).get("namespace") or "")
                if (ref := controller_ref(j)) is not None and ref.get("uid") == uid]
        st = self._sync_active(cj, jobs)
        requeue: float | None = None
        if not meta(cj).get("deletionTimestamp"):
            requeue = await self._schedule(key, cj, jobs, st, now)
            await self._cleanup_history(cj, jobs)
        await self._write_status(key, cj, st)
        return Result(requeue_after=requeue) if requeue is not None else None

    # --- status.active -------------------------------------------------------------------------

    def _sync_active(self, cj: Obj, jobs: list[Obj]) -> Obj:
        st: Obj = {k: v for k, v in status(cj).items()}
        by_uid = {meta(j)["uid"]: j for j in jobs}
        active: list[Obj] = []
        for ref in st.get("active") or []:
            job = by_uid.get(ref.get("uid"))
            if job is None:
                continue  # deleted: drop it
            done = _finished(job)
            if done is None:
                active.append(ref)
                continue
            self.recorder.event(
                cj, NORMAL, "SawCompletedJob", f"Saw completed job: {meta(job)['name']}, status: {done}"
            )
            if done == "Complete":
                completed = parse_time(status(job).get("completionTime"))
                last = parse_time(st.get("lastSuccessfulTime"))
                if completed is not None and (last is None or completed > last):
                    st["lastSuccessfulTime"] = format_time(completed)
        known = {ref.get("uid") for ref in active}
        for job in jobs:
            if (
                _finished(job) is None
                and meta(job)["uid"] not in known
                and not meta(job).get("deletionTimestamp")
            ):
                active.append(_job_ref(job))
        if active:
            st["active"] = active
        else:
            st.pop("active", None)
        return st

    # --- scheduling ----------------------------------------------------------------------------

    async def _schedule(self, key: str, cj: Obj, jobs: list[Obj], st: Obj, now: datetime) -> float | None:
        s = spec(cj)
        try:
            tz = cron.load_zone(s["timeZone"]) if s.get("timeZone") else None
        except cron.CronError:
            self.recorder.event(cj, WARNING, "UnknownTimeZone", f"invalid timeZone: {s['timeZone']!r}")
            return None
        try:
            schedule = cron.parse(str(s.get("schedule") or ""), tz)
        except cron.CronError as exc:
            self.recorder.event(
                cj, WARNING, "UnparseableSchedule", f"unparseable schedule: {s.get('schedule')!r} : {exc}"
            )
            return None
        if s.get("suspend"):
            return None
        scheduled = self._most_recent(cj, schedule, st, now)
        nxt = schedule.next(now)
        wait = (nxt - now).total_seconds() + NEXT_SCHEDULE_DELTA if nxt else None
        if scheduled is None:
            return wait
        deadline = s.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + timedelta(seconds=int(deadline)) < now:
            self.recorder.event(
                cj, WARNING, "MissSchedule", f"Missed scheduled time to start a job: {format_time(scheduled)}"
            )
            return wait
        name = job_name(cj, scheduled)
        if any(meta(j)["name"] == name for j in jobs):
            return wait  # already ran for this time
        active = st.get("active") or []
        policy = s.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active:
            self.recorder.event(
                cj,
                NORMAL,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            )
            return wait
        if policy == "Replace":
            for ref in active:
                await self._delete_job(cj, ref.get("name", ""))
            st.pop("active", None)
        job = await self._create_job(key, cj, scheduled, tz)
        if job is not None:
            st["active"] = [*(st.get("active") or []), _job_ref(job)]
        st["lastScheduleTime"] = format_time(scheduled)
        return wait

    def _most_recent(self, cj: Obj, schedule: cron.Schedule, st: Obj, now: datetime) -> datetime | None:
        earliest = (
            parse_time(st.get("lastScheduleTime")) or parse_time(meta(cj).get("creationTimestamp")) or now
        )
        deadline = spec(cj).get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - timedelta(seconds=int(deadline)))
        latest: datetime | None = None
        missed = 0
        t = schedule.next(earliest)
        while t is not None and t <= now:
            latest = t
            missed += 1
            if missed > MAX_MISSED:
                self.recorder.event(
                    cj,
                    WARNING,
                    "TooManyMissedTimes",
                    "too many missed start times. Set or decrease "
                    ".spec.startingDeadlineSeconds or check clock skew",
                )
                break
            t = schedule.next(t)
        if missed > MAX_MISSED:
            # jump ahead like kube: the most recent time is the last one before now
            while t is not None and t <= now:
                latest, t = t, schedule.next(t)
        return latest

    async def _create_job(self, key: str, cj: Obj, scheduled: datetime, tz: Any) -> Obj | None:
        template = deep_copy(spec(cj).get("jobTemplate") or {})
        tm = template.get("metadata") or {}
        local = scheduled.astimezone(tz) if tz else scheduled
        job: Obj = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": job_name(cj, scheduled),
                "namespace": meta(cj)["namespace"],
                "labels": dict(tm.get("labels") or {}),
                "annotations": {**(tm.get("annotations") or {}), SCHEDULED_TIMESTAMP: local.isoformat()},
                "ownerReferences": [new_controller_ref(cj)],
            },
            "spec": template.get("spec") or {},
        }
        if not job["metadata"]["labels"]:
            job["metadata"].pop("labels")
        try:
            created = await self.client.create(self.jobs.rt, meta(cj)["namespace"], job)
        except AlreadyExists:
            return None  # created by an earlier sync whose write we had not seen yet
        self.expect.wrote(key, self.jobs, created)
        self.recorder.event(cj, NORMAL, "SuccessfulCreate", f"Created job {meta(created)['name']}")
        return created

    async def _delete_job(self, cj: Obj, name: str) -> None:
        try:
            await self.client.delete(
                self.jobs.rt, meta(cj)["namespace"], name, propagation_policy="Background"
            )
        except NotFound:
            return  # already gone
        self.recorder.event(cj, NORMAL, "SuccessfulDelete", f"Deleted job {name}")

    async def _cleanup_history(self, cj: Obj, jobs: list[Obj]) -> None:
        for kind, field, default in (
            ("Complete", "successfulJobsHistoryLimit", 3),
            ("Failed", "failedJobsHistoryLimit", 1),
        ):
            limit = spec(cj).get(field, default)
            if limit is None:
                continue
            done = [j for j in jobs if _finished(j) == kind and not meta(j).get("deletionTimestamp")]
            done.sort(
                key=lambda j: (
                    status(j).get("startTime") or meta(j).get("creationTimestamp") or "",
                    meta(j)["name"],
                )
            )
            for job in done[:max(len(done) - int(limit), 0)]:
                await self._delete_job(cj, meta(job)["name"])

    async def _write_status(self, key: str, cj: Obj, st: Obj) -> None:
        if status(cj) == st:
            return
        copy = deep_copy(cj)
        copy["status"] = st
        try:
            out = await self.client.update_status(self.cronjobs.rt, copy)
        except NotFound:
            return  # deleted meanwhile
        self.expect.wrote(key, self.cronjobs, out)


def _job_ref(job: Obj) -> Obj:
    m = meta(job)
    return {"apiVersion": "batch/v1", "kind": "Job", "name": m["name"], "namespace": m.get("namespace"),
            "uid": m["uid"], "resourceVersion": m.get("resourceVersion")}

