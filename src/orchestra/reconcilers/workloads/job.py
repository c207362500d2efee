"""Job controller (kube's pkg/controller/job) and ttlSecondsAfterFinished (kube's ttlafterfinished).

Owns, per Job:
  * pods from the template (the API core put the job-name / controller-uid labels and the
    selector there on create), up to parallelism and the completions still missing, created in
    slow-start batches after kube's pod-failure backoff (10 s doubling, at most 10 min, counted
    from the last failure since the last success);
  * completionMode Indexed: one pod per missing index, named `<job>-<index>-<suffix>`, with the
    batch.kubernetes.io/job-completion-index annotation and label, hostname `<job>-<index>`, and
    JOB_COMPLETION_INDEX from the annotation (downward API) in every container; status.completedIndexes;
  * success (completions reached; or, without completions, any success and none active):
    SuccessCriteriaMet, then Complete once no pod is active, completionTime;
  * failure: backoffLimit (failed pods; with restartPolicy OnFailure also container restarts)
    -> BackoffLimitExceeded, activeDeadlineSeconds from startTime -> DeadlineExceeded,
    podFailurePolicy FailJob -> PodFailurePolicy; FailureTarget first, active pods deleted, then
    Failed once none is active (1.32's two steps);
  * suspend (active pods deleted, Suspended condition, startTime reset on resume);
  * status: active, ready, succeeded, failed, startTime, completionTime, conditions;
  * ttlSecondsAfterFinished: the finished Job is deleted (propagation Foreground, like kube's TTL
    controller) ttl seconds after completionTime / the Failed condition's time.
Counting: without kube's job-tracking finalizers, succeeded / failed are counted from the pods
present and never decrease (a deleted terminated pod stays counted); uncountedTerminatedPods is
not written.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from orchestra.api.errors import ApiError, NotFound
from orchestra.api.machinery.selectors import from_label_selector_object
from orchestra.client.base import Client
from orchestra.controller import NORMAL, WARNING, Result, split_key
from orchestra.objects import (
    Obj,
    condition_true,
    format_time,
    get_condition,
    is_pod_ready,
    is_terminating,
    meta,
    parse_time,
    set_condition,
    spec,
    status,
)
from orchestra.reconcilers.workloads.base import WorkloadController
from orchestra.reconcilers.workloads.common import int_or, is_pod_active
from orchestra.reconcilers.workloads.pods import claim, deletion_order, pod_from_template, slow_start

INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
BACKOFF_BASE = 10.0  # kube DefaultJobPodFailureBackOff
BACKOFF_MAX = 600.0  # kube MaxJobPodFailureBackOff


def _phase(pod: Obj) -> str:
    return str(status(pod).get("phase") or "Pending")


def _index(pod: Obj) -> int | None:
    raw = (meta(pod).get("annotations") or {}).get(INDEX_ANNOTATION)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _finished_at(pod: Obj) -> datetime | None:
    times = [parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
             for cs in status(pod).get("containerStatuses") or []]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def compress_indexes(indexes: set[int]) -> str:
    """`0-2,4` like kube's completedIndexes."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


class JobController(WorkloadController):
    name = "job-controller"
    kind = "Job"

    def __init__(self, client: Client, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._seen_failed: dict[str, datetime] = {}  # pod uid -> when first seen failed (no finishedAt)

    async def reconcile(self, key: str) -> Result | None:
        await self.expect.settle(key)
        ns, name = split_key(key)
        job = self.owners.get(ns, name)
        if job is None:
            return None
        now = self.clock()
        selector = from_label_selector_object(spec(job).get("selector"))
        pods = await claim(self.client, self.pods.rt, job, selector, self.pods_of(job),
                           on_write=lambda o: self.expect.wrote(key, self.pods, o))
        if condition_true(job, "Complete") or condition_true(job, "Failed"):
            return await self._finished(key, job, pods, now)
        st: Obj = {**status(job)}
        st["conditions"] = [dict(c) for c in st.get("conditions") or []]
        active = [p for p in pods if is_pod_active(p)]
        succeeded = [p for p in pods if _phase(p) == "Succeeded"]
        failed = [p for p in pods if _phase(p) == "Failed"]
        st["succeeded"] = max(int(st.get("succeeded") or 0), len(succeeded))
        st["failed"] = max(int(st.get("failed") or 0), len(failed))
        indexed = spec(job).get("completionMode") == "Indexed"
        done_indexes = {i for p in succeeded if (i := _index(p)) is not None} if indexed else set()
        if indexed:
            st["completedIndexes"] = compress_indexes(done_indexes)
            st["succeeded"] = len(done_indexes)
        requeue: float | None = None
        suspended = bool(spec(job).get("suspend"))
        self._suspend_condition(job, st, suspended, now)
        if not suspended and not st.get("startTime"):
            st["startTime"] = format_time(now)
        finish = None if suspended else self._failure(job, st, pods, active, now)
        if finish is None and not suspended and self._success(job, st, done_indexes, len(active)):
            finish = ("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods")
        if finish is not None:
            await self._terminate(key, job, active, st, finish, now)
        elif suspended:
            await self._delete(key, job, active, len(active))
            active = []
        else:
            requeue = await self._manage(key, job, active, failed, succeeded, done_indexes, now)
            deadline = spec(job).get("activeDeadlineSeconds")
            start = parse_time(st.get("startTime"))
            if deadline is not None and start is not None:
                left = (start + timedelta(seconds=int(deadline)) - now).total_seconds()
                requeue = min(requeue, left + 0.001) if requeue is not None else left + 0.001
        active = [p for p in active if not self.expect.hidden(p)]
        st["active"] = len(active)
        st["ready"] = sum(1 for p in active if is_pod_ready(p))
        if not st["conditions"]:
            st.pop("conditions")
        await self.write_status(key, job, st)
        return Result(requeue_after=max(requeue, 0.001)) if requeue is not None else None

    # --- decisions -----------------------------------------------------------------------------

    def _suspend_condition(self, job: Obj, st: Obj, suspended: bool, now: datetime) -> None:
        cond = get_condition(st, "Suspended")
        if suspended and (cond is None or cond.get("status") != "True"):
            set_condition(
                st,
                {
                    "type": "Suspended",
                    "status": "True",
                    "reason": "JobSuspended",
                    "message": "Job suspended",
                    "lastProbeTime": format_time(now),
                    "lastTransitionTime": format_time(now),
                },
            )
            st.pop("startTime", None)
            self.recorder.event(job, NORMAL, "Suspended", "Job suspended")
        elif not suspended and cond is not None and cond.get("status") == "True":
            set_condition(
                st,
                {
                    "type": "Suspended",
                    "status": "False",
                    "reason": "JobResumed",
                    "message": "Job resumed",
                    "lastProbeTime": format_time(now),
                    "lastTransitionTime": format_time(now),
                },
            )
            st.pop("startTime", None)
            self.recorder.event(job, NORMAL, "Resumed", "Job resumed")

    def _failure(
        self, job: Obj, st: Obj, pods: list[Obj], active: list[Obj], now: datetime
    ) -> tuple[str, str, str] | None:
        if condition_true(job, "FailureTarget"):
            c = get_condition(status(job), "FailureTarget") or {}
            return "FailureTarget", str(c.get("reason", "")), str(c.get("message", ""))
        policy = _pod_failure_policy(job, pods)
        if policy is not None:
            return "FailureTarget", "PodFailurePolicy", policy
        limit = int_or(spec(job).get("backoffLimit"), 6)
        failures = int(st["failed"])
        if ((spec(job).get("template") or {}).get("spec") or {}).get("restartPolicy") == "OnFailure":
            restarts = sum(int(cs.get("restartCount") or 0) for p in active
                           for cs in status(p).get("containerStatuses") or [])
            if (restarts > 0 if limit == 0 else restarts >= limit) and restarts + failures > 0:
                return "FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        if failures > limit:
            return "FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        deadline = spec(job).get("activeDeadlineSeconds")
        start = parse_time(st.get("startTime"))
        if deadline is not None and start is not None and now >= start + timedelta(seconds=int(deadline)):
            return "FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline"
        return None

    def _success(self, job: Obj, st: Obj, done_indexes: set[int], active: int) -> bool:
        if condition_true(job, "SuccessCriteriaMet"):
            return True
        completions = spec(job).get("completions")
        if spec(job).get("completionMode") == "Indexed":
            return completions is not None and all(i in done_indexes for i in range(int(completions)))
        if completions is None:
            return int(st["succeeded"]) > 0 and active == 0
        return int(st["succeeded"]) >= int(completions)

    async def _terminate(self, key: str, job: Obj, active: list[Obj], st: Obj, finish: tuple[str, str, str],
                         now: datetime) -> None:
        """Interim condition now; the final one (Complete / Failed) once no pod is active."""
        interim, reason, message = finish
        t = format_time(now)
        set_condition(st, {"type": interim, "status": "True", "reason": reason, "message": message,
                           "lastProbeTime": t, "lastTransitionTime": t})
        await self._delete(key, job, active, len(active))
        if any(not is_terminating(p) for p in active if not self.expect.hidden(p)):
            return
        final = "Complete" if interim == "SuccessCriteriaMet" else "Failed"
        set_condition(st, {"type": final, "status": "True", "reason": reason, "message": message,
                           "lastProbeTime": t, "lastTransitionTime": t})
        if final == "Complete":
            st["completionTime"] = t
            self.recorder.event(job, NORMAL, "Completed", "Job completed")
        else:
            self.recorder.event(job, WARNING, reason, message)

    async def _manage(self, key: str, job: Obj, active: list[Obj], failed: list[Obj], succeeded: list[Obj],
                      done_indexes: set[int], now: datetime) -> float | None:
        parallelism = int_or(spec(job).get("parallelism"), 1)
        completions = spec(job).get("completions")
        succeeded_n = len(done_indexes) if spec(job).get("completionMode") == "Indexed" else len(succeeded)
        succeeded_n = max(succeeded_n, int(status(job).get("succeeded") or 0))
        if completions is None:
            want = len(active) if succeeded_n > 0 else parallelism
        else:
            want = max(min(int(completions) - succeeded_n, parallelism), 0)
        if len(active) > want:
            await self._delete(key, job, active, len(active) - want)
            return None
        if len(active) == want:
            return None
        wait = self._backoff_remaining(failed, succeeded, now)
        if wait > 0:
            return wait
        if spec(job).get("completionMode") == "Indexed":
            busy = {i for p in active if (i := _index(p)) is not None} | done_indexes
            todo = [i for i in range(int(completions or 0)) if i not in busy][:want - len(active)]
        else:
            todo = [None] * (want - len(active))  # type: ignore[list-item]
        template = spec(job).get("template") or {}

        async def create(n: int) -> None:
            pod = pod_from_template(template, job, generate_name=f"{meta(job)['name']}-")
            if todo[n] is not None:
                _index_pod(pod, job, int(todo[n]))  # type: ignore[arg-type]
            created = await self.pod_control.create(job, pod)
            self.expect.wrote(key, self.pods, created)

        await slow_start(len(todo), create)
        return None

    def _backoff_remaining(self, failed: list[Obj], succeeded: list[Obj], now: datetime) -> float:
        last_success = max((t for p in succeeded if (t := _finished_at(p)) is not None), default=None)
        times = []
        for p in failed:
            t = _finished_at(p) or self._seen_failed.setdefault(meta(p)["uid"], now)
            if last_success is None or t > last_success:
                times.append(t)
        if not times:
            return 0.0
        delay = min(BACKOFF_BASE * 2 ** (len(times) - 1), BACKOFF_MAX)
        return (max(times) + timedelta(seconds=delay) - now).total_seconds()

    async def _delete(self, key: str, job: Obj, active: list[Obj], count: int) -> None:
        for pod in deletion_order(active)[:count]:
            try:
                out = await self.pod_control.delete(job, pod)
            except ApiError:
                continue  # FailedDelete recorded; retried on the next sync
            self.expect.deleted(pod)
            if out is not None:
                self.expect.wrote(key, self.pods, out)

    # --- TTL after finished --------------------------------------------------------------------

    async def _finished(self, key: str, job: Obj, pods: list[Obj], now: datetime) -> Result | None:
        ttl = spec(job).get("ttlSecondsAfterFinished")
        if ttl is None or is_terminating(job):
            return None
        cond = get_condition(status(job), "Complete") or get_condition(status(job), "Failed") or {}
        finished = parse_time(status(job).get("completionTime")) or parse_time(cond.get("lastTransitionTime"))
        if finished is None:
            return None
        left = (finished + timedelta(seconds=int(ttl)) - now).total_seconds()
        if left > 0:
            return Result(requeue_after=left)
        try:
            await self.client.delete(self.owners.rt, meta(job).get("namespace"), meta(job)["name"],
                                     propagation_policy="Foreground", uid=meta(job)["uid"])
        except NotFound:
            pass  # already gone
        return None


def _index_pod(pod: Obj, job: Obj, index: int) -> None:
    m = pod["metadata"]
    m.pop("generateName", None)
    m["generateName"] = f"{meta(job)['name']}-{index}-"
    m["annotations"] = {**(m.get("annotations") or {}), INDEX_ANNOTATION: str(index)}
    m["labels"] = {**(m.get("labels") or {}), INDEX_ANNOTATION: str(index)}
    ps = pod["spec"]
    ps["hostname"] = f"{meta(job)['name']}-{index}"
    env = {
        "name": "JOB_COMPLETION_INDEX",
        "valueFrom": {
            "fieldRef": {"apiVersion": "v1", "fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}
        },
    }
    for c in [*(ps.get("initContainers") or []), *(ps.get("containers") or [])]:
        c["env"] = [e for e in c.get("env") or [] if e.get("name") != "JOB_COMPLETION_INDEX"] + [env]


def _pod_failure_policy(job: Obj, pods: list[Obj]) -> str | None:
    """The message of the first failed pod matching a FailJob rule (kube's podFailurePolicy)."""
    rules = (spec(job).get("podFailurePolicy") or {}).get("rules") or []
    if not rules:
        return None
    for pod in pods:
        if _phase(pod) != "Failed":
            continue
        for i, rule in enumerate(rules):
            matched = _rule_matches(rule, pod)
            if matched is None:
                continue
            if rule.get("action") == "FailJob":
                return (
                    f"{matched} for pod {meta(pod).get('namespace')}/{meta(pod)['name']} "
                    f"matching FailJob rule at index {i}"
                )
            break  # Ignore / Count / FailIndex: first matching rule decides; not FailJob
    return None


def _rule_matches(rule: Obj, pod: Obj) -> str | None:
    codes = rule.get("onExitCodes")
    if codes:
        for cs in status(pod).get("containerStatuses") or []:
            if codes.get("containerName") and cs.get("name") != codes["containerName"]:
                continue
            code = ((cs.get("state") or {}).get("terminated") or {}).get("exitCode")
            if code is None or code == 0:
                continue
            values = set(codes.get("values") or [])
            if (code in values) == (codes.get("operator") == "In"):
                return f"Container {cs.get('name')} failed with exit code {code}"
        return None
    for pattern in rule.get("onPodConditions") or []:
        for c in status(pod).get("conditions") or []:
            if c.get("type") == pattern.get("type") and c.get("status") == pattern.get("status", "True"):
                return f"Pod has condition {c.get('type')}"
    return None
