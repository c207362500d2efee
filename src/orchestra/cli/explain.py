"""`orchestra explain pod NAME` (alias `why`): why a pod is Pending, crash-looping or not Ready, in plain
words.

Owns: reading the scheduler's and the node agent's records about one pod (the PodScheduled and
Ready conditions, container states, FailedScheduling / Failed / BackOff / Unhealthy events, the last
log lines) into a short diagnosis. `explain_pod()` is a pure function of those records (the
dashboard's detail pane uses it too); the command only fetches them over HTTP.
Must not import: the server side.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import attrs
import click
import trio

from orchestra.api.errors import ApiError, BadRequest
from orchestra.api.tables import pod_status_reason
from orchestra.cli.errors import ApiStatusError, CliError
from orchestra.cli.session import Session, client_options
from orchestra.objects import Obj, as_dict, get_condition, human_duration, parse_time

IMAGE_REASONS = (
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "RegistryUnavailable",
)


@attrs.frozen
class Explanation:
    """`headline` is one sentence; `details` are indented lines under it; `wants_logs` asks for log lines."""

    # Pending | Unschedulable | ImagePull | CrashLoop | NotReady | Failed | Succeeded | Terminating | OK
    state: str
    headline: str
    details: tuple[str, ...] = ()
    wants_logs: bool = False
    previous_logs: bool = False  # the crashed instance's log is the interesting one
    container: str | None = None

    def lines(self, logs: str | None = None, logs_error: str | None = None) -> list[str]:
        out = [self.headline, *(f"  {d}" for d in self.details)]
        if self.wants_logs:
            which = "previous instance of " if self.previous_logs else ""
            out.append(f"  Last log lines ({which}container {self.container}):")
            if logs_error:
                out.append(f"    (no logs: {logs_error})")
            elif logs is not None and logs.strip():
                out.extend(f"    {line}" for line in logs.rstrip("\n").splitlines()[-20:])
            else:
                out.append("    (the log is empty)")
        return out


def _ago(stamp: Any, now: datetime) -> str:
    t = parse_time(stamp)
    return f"{human_duration((now - t).total_seconds())} ago" if t else "at an unknown time"


def _event_line(ev: Obj, now: datetime) -> str:
    count = int(ev.get("count") or 1)
    times = f", {count} times" if count > 1 else ""
    when = ev.get("lastTimestamp") or ev.get("eventTime") or ev.get("firstTimestamp")
    return (
        f"{' '.join(str(ev.get('message') or '').split())} "
        f"({ev.get('reason')}{times}, last {_ago(when, now)})"
    )


def _latest(events: Iterable[Obj], reasons: tuple[str, ...], *, contains: str = "") -> Obj | None:
    found = [e for e in events if e.get("reason") in reasons and contains in str(e.get("message") or "")]
    found.sort(
        key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or "")
    )
    return found[-1] if found else None


def _statuses(pod: Obj) -> list[Obj]:
    st = as_dict(pod.get("status"))
    return [*(st.get("initContainerStatuses") or []), *(st.get("containerStatuses") or [])]


def explain_pod(pod: Obj, events: list[Obj], *, now: datetime | None = None) -> Explanation:
    """Diagnose one pod from its object and the events about it (oldest first or any order)."""
    now = now or datetime.now(UTC)
    meta, spec, status = as_dict(pod.get("metadata")), as_dict(pod.get("spec")), as_dict(pod.get("status"))
    who = f"Pod {meta.get('namespace')}/{meta.get('name')}"
    reason, ready, total, restarts, _ = pod_status_reason(pod)
    phase = status.get("phase") or "Pending"
    if meta.get("deletionTimestamp"):
        return Explanation(
            "Terminating",
            f"{who} is being deleted (since {_ago(meta['deletionTimestamp'], now)}); "
            f"it waits for its containers to stop (grace period "
            f"{meta.get('deletionGracePeriodSeconds', spec.get('terminationGracePeriodSeconds', 30))}s).",
        )
    if phase == "Succeeded":
        return Explanation("Succeeded", f"{who} has completed: every container exited successfully.")
    if phase == "Failed":
        return _failed(who, pod, events, now)
    if not spec.get("nodeName"):
        return _unscheduled(who, pod, events, now)
    for explain in (_image_problem, _crash_loop, _waiting):
        found = explain(who, pod, events, now)
        if found is not None:
            return found
    if ready < total or reason != "Running":
        return _not_ready(who, pod, events, now, reason)
    extra = (f"Its containers restarted {restarts} times in total.",) if restarts else ()
    return Explanation(
        "OK",
        f"{who} is Running and Ready ({ready}/{total} containers) on node {spec['nodeName']}: "
        "nothing is wrong.",
        extra,
    )


def _unscheduled(who: str, pod: Obj, events: list[Obj], now: datetime) -> Explanation:
    cond = get_condition(as_dict(pod.get("status")), "PodScheduled") or {}
    spec = as_dict(pod.get("spec"))
    event = _latest(events, ("FailedScheduling",))
    if cond.get("reason") == "SchedulingGated":
        gates = ", ".join(str(g.get("name")) for g in spec.get("schedulingGates") or [])
        return Explanation(
            "Pending",
            f"{who} is Pending: it is held by scheduling gates ({gates}); the scheduler "
            "ignores it until something removes them.",
        )
    if (cond.get("status") == "False" and cond.get("reason") == "Unschedulable") or event is not None:
        details = []
        if cond.get("message"):
            details.append(f"The scheduler says: {cond['message']}")
        if event is not None and event.get("message") != cond.get("message"):
            details.append(f"Latest scheduling attempt: {_event_line(event, now)}")
        elif event is not None and int(event.get("count") or 1) > 1:
            details.append(
                f"It has tried {event.get('count')} times, last {_ago(event.get('lastTimestamp'), now)}."
            )
        details.extend(_hints(" ".join(details)))
        return Explanation("Unschedulable", f"{who} is Pending: no node can run it.", tuple(details))
    scheduler = spec.get("schedulerName") or "default-scheduler"
    since = _ago(as_dict(pod.get("metadata")).get("creationTimestamp"), now)
    return Explanation("Pending", f"{who} is Pending: it has not been scheduled yet (created {since}).", (
        f"No scheduler has recorded an attempt for it. Is {scheduler!r} running?",))


def _hints(text: str) -> list[str]:
    hints = []
    if "Insufficient" in text:
        hints.append(
            "Hint: lower the pod's resource requests, or add capacity (a node, or free up running pods)."
        )
    if "untolerated taint" in text:
        hints.append("Hint: the pod needs a toleration for the node's taints, or remove the taint.")
    if "didn't match Pod's node affinity/selector" in text or "node affinity" in text:
        hints.append("Hint: check spec.nodeSelector / affinity against the nodes' labels.")
    return hints


def _image_problem(who: str, pod: Obj, events: list[Obj], now: datetime) -> Explanation | None:
    for cs in _statuses(pod):
        waiting = as_dict(as_dict(cs.get("state")).get("waiting"))
        if waiting.get("reason") in IMAGE_REASONS:
            details = [
                f"Container {cs.get('name')}: {waiting['reason']}"
                + (f": {waiting['message']}" if waiting.get("message") else "")
            ]
            event = _latest(events, ("Failed",), contains=str(cs.get("image") or ""))
            if event is not None and event.get("message") != waiting.get("message"):
                details.append(f"The node agent says: {_event_line(event, now)}")
            if waiting["reason"] == "ImagePullBackOff":
                details.append("It retries the pull with a growing back-off (up to 5 minutes).")
            details.append(
                "Hint: check the image name and tag; with no registry reachable, the image must be "
                "present in the local image store."
            )
            return Explanation(
                "ImagePull",
                f"{who} cannot start: the image {cs.get('image')!r} cannot be pulled.",
                tuple(details),
            )
    return None


def _termination(last: Obj) -> str:
    code = last.get("exitCode")
    reason = last.get("reason") or "Error"
    text = f"exit code {code} ({reason})" if code is not None else str(reason)
    if reason == "OOMKilled":
        text += ": it was killed for using more memory than its limit"
    elif last.get("signal"):
        text += f", signal {last['signal']}"
    if last.get("message"):
        text += f": {' '.join(str(last['message']).split())}"
    return text


def _crash_loop(who: str, pod: Obj, events: list[Obj], now: datetime) -> Explanation | None:
    for cs in _statuses(pod):
        state = as_dict(cs.get("state"))
        waiting = as_dict(state.get("waiting"))
        last = as_dict(as_dict(cs.get("lastState")).get("terminated")) or as_dict(state.get("terminated"))
        restarts = int(cs.get("restartCount") or 0)
        if waiting.get("reason") != "CrashLoopBackOff" and not (restarts and last and not cs.get("ready")):
            continue
        name = str(cs.get("name"))
        details = [
            f"Container {name} has restarted {restarts} times; it last exited with {_termination(last)}"
            + (f", {_ago(last.get('finishedAt'), now)}." if last.get("finishedAt") else ".")
        ]
        if waiting.get("reason") == "CrashLoopBackOff":
            details.append(
                "The node agent waits before restarting it again (back-off doubles from 10s up to 5m)"
                + (f": {waiting['message']}" if waiting.get("message") else ".")
            )
        probe = _latest(events, ("Unhealthy",), contains="Liveness")
        if probe is not None:
            details.append(f"Its liveness probe fails, so it is being restarted: {_event_line(probe, now)}")
        return Explanation(
            "CrashLoop",
            f"{who} is crash-looping: container {name} keeps exiting.",
            tuple(details),
            wants_logs=True,
            previous_logs=True,
            container=name,
        )
    return None


def _waiting(who: str, pod: Obj, events: list[Obj], now: datetime) -> Explanation | None:
    for cs in _statuses(pod):
        waiting = as_dict(as_dict(cs.get("state")).get("waiting"))
        if waiting.get("reason") and waiting["reason"] not in ("ContainerCreating", "PodInitializing"):
            details = [f"Container {cs.get('name')} is waiting: {waiting['reason']}"
                       + (f": {waiting['message']}" if waiting.get("message") else "")]
            warning = _latest(
                [e for e in events if e.get("type") == "Warning"],
                ("Failed", "FailedMount", "FailedCreatePodSandBox"),
            )
            if warning is not None:
                details.append(f"The node agent says: {_event_line(warning, now)}")
            return Explanation("Pending", f"{who} cannot start its containers.", tuple(details))
    if as_dict(pod.get("status")).get("phase") == "Pending":
        node = as_dict(pod.get("spec")).get("nodeName")
        details = []
        warning = _latest(
            [e for e in events if e.get("type") == "Warning"], tuple({str(e.get("reason")) for e in events})
        )
        if warning is not None:
            details.append(f"Latest warning: {_event_line(warning, now)}")
        if not _statuses(pod):
            details.append("The node agent has not reported any container yet. Is it running on that node?")
        return Explanation(
            "Pending",
            f"{who} is Pending: it is scheduled to node {node}, whose agent is still "
            "starting its containers.",
            tuple(details),
        )
    return None


def _not_ready(who: str, pod: Obj, events: list[Obj], now: datetime, reason: str) -> Explanation:
    spec = as_dict(pod.get("spec"))
    probes = {str(c.get("name")): c for c in spec.get("containers") or []}
    details: list[str] = []
    for cs in as_dict(pod.get("status")).get("containerStatuses") or []:
        if cs.get("ready"):
            continue
        name = str(cs.get("name"))
        state = as_dict(cs.get("state"))
        if state.get("running") is None:
            details.append(f"Container {name} is not running ({', '.join(state) or 'no state reported'}).")
        elif cs.get("started") is False and probes.get(name, {}).get("startupProbe"):
            details.append(f"Container {name} has not passed its startup probe yet.")
        elif probes.get(name, {}).get("readinessProbe"):
            details.append(f"Container {name} is running but its readiness probe fails.")
        else:
            details.append(f"Container {name} is running but not ready.")
    unhealthy = _latest(events, ("Unhealthy",), contains="Readiness") or _latest(events, ("Unhealthy",))
    if unhealthy is not None:
        details.append(f"The node agent says: {_event_line(unhealthy, now)}")
    conditions = {c.get("type"): c for c in as_dict(pod.get("status")).get("conditions") or []}
    for gate in spec.get("readinessGates") or []:
        ctype = gate.get("conditionType")
        if as_dict(conditions.get(ctype)).get("status") != "True":
            details.append(f"Readiness gate {ctype} is not True.")
    if not details:
        ready_cond = conditions.get("Ready") or {}
        details.append(
            f"Ready condition: {ready_cond.get('status', 'unknown')}"
            + (
                f" ({ready_cond.get('reason')}: {ready_cond.get('message', '')})"
                if ready_cond.get("reason")
                else ""
            )
        )
    return Explanation(
        "NotReady", f"{who} is {reason} but not Ready, so Services do not send it traffic.", tuple(details)
    )


def _failed(who: str, pod: Obj, events: list[Obj], now: datetime) -> Explanation:
    status = as_dict(pod.get("status"))
    details = []
    if status.get("reason") or status.get("message"):
        details.append(f"{status.get('reason') or 'Failed'}: {status.get('message') or ''}".rstrip(": "))
    for cs in _statuses(pod):
        term = as_dict(as_dict(cs.get("state")).get("terminated"))
        if term and term.get("exitCode") not in (0, None):
            details.append(f"Container {cs.get('name')} exited with {_termination(term)}.")
    failed = [
        cs
        for cs in _statuses(pod)
        if as_dict(as_dict(cs.get("state")).get("terminated")).get("exitCode") not in (0, None)
    ]
    name = str(failed[0].get("name")) if failed else None
    return Explanation("Failed", f"{who} has Failed and will not be restarted (restartPolicy "
                       f"{as_dict(pod.get('spec')).get('restartPolicy', 'Always')}).", tuple(details),
                       wants_logs=name is not None, container=name)


# --- fetching --------------------------------------------------------------------------------------


async def pod_events(client: Any, pod: Obj) -> list[Obj]:
    """Events about `pod` (by name and uid), through any Client."""
    meta = pod.get("metadata") or {}
    rt = client.registry.by_kind("Event")
    ns, name, uid = meta.get("namespace"), meta.get("name"), meta.get("uid")
    try:
        items, _ = await client.list(rt, ns, field_selector=f"involvedObject.name={name}")
    except BadRequest:  # a server without that field selector: filter here
        items, _ = await client.list(rt, ns)

    def ref_ok(r: Obj) -> bool:
        return (r.get("kind", "Pod") == "Pod" and r.get("name") == name
                and (not uid or not r.get("uid") or r.get("uid") == uid))

    return [e for e in items if ref_ok(e.get("involvedObject") or {})]


async def explain(client: Any, namespace: str, name: str) -> list[str]:
    """Fetch the pod, its events and (when useful) its log, and explain it."""
    pod = await client.get(client.registry.by_kind("Pod"), namespace, name)
    found = explain_pod(pod, await pod_events(client, pod))
    logs = error = None
    if found.wants_logs and hasattr(client, "pod_logs"):
        try:
            logs = await client.pod_logs(namespace, name, container=found.container, tail_lines=20,
                                         previous=found.previous_logs)
        except ApiError as exc:
            error = exc.message
            if found.previous_logs:  # no previous instance kept: the current one may tell enough
                try:
                    logs, error = (
                        await client.pod_logs(namespace, name, container=found.container, tail_lines=20),
                        None,
                    )
                except ApiError:
                    pass  # keep the first error: it names the real reason
    return found.lines(logs, error)


EXPLAIN_HELP = """Say in plain words why a pod is Pending, crash-looping or not Ready.

Reads the pod's conditions and container states, the scheduler's and node agent's events, and the
last log lines of a crashing container.

\b
Examples:
  orchestra explain pod web-7c9d-x2x4z
  orchestra why web-7c9d-x2x4z -n shop
  orchestra explain pod/web-7c9d-x2x4z
"""


def _target(args: tuple[str, ...]) -> str:
    if len(args) == 2 and args[0].lower() in ("pod", "pods", "po"):
        return args[1]
    if len(args) == 1:
        kind, sep, name = args[0].partition("/")
        if not sep:
            return args[0]
        if kind.lower() in ("pod", "pods", "po"):
            return name
    raise click.UsageError("usage: orchestra explain pod NAME (only pods can be explained)")


def _run(session: Session, args: tuple[str, ...]) -> None:
    from orchestra.client.http import HttpClient, KubeconfigError

    name = _target(args)
    namespace = session.namespace
    source = session.config.source
    if source is None:
        raise CliError("no kubeconfig to read the server from")

    async def main() -> list[str]:
        async with HttpClient.from_kubeconfig(source, field_manager="orchestra-explain") as client:
            return await explain(client, namespace, name)

    try:
        lines = trio.run(main)
    except ApiError as exc:  # e.g. NotFound: kubectl's wording, exit 1
        raise ApiStatusError(exc.status(), http_code=exc.code) from None
    except (KubeconfigError, OSError) as exc:
        raise CliError(f"cannot explain pod {name}: {exc}") from None
    click.echo("\n".join(lines))


@click.command("explain", help=EXPLAIN_HELP)
@click.argument("args", nargs=-1, required=True, metavar="pod NAME")
@client_options
def explain_command(args: tuple[str, ...], session: Session) -> None:
    _run(session, args)


@click.command("why", help=EXPLAIN_HELP.replace("orchestra explain", "orchestra why"))
@click.argument("args", nargs=-1, required=True, metavar="pod NAME")
@client_options
def why_command(args: tuple[str, ...], session: Session) -> None:
    _run(session, args)
