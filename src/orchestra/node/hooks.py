"""Lifecycle hooks and stopping one container, as kubelet's killContainer does it.

Owns: running a postStart/preStop handler (exec in the container, httpGet through the prober, sleep),
the grace period that applies (a liveness/startup probe's terminationGracePeriodSeconds, else the
pod's), and the stop sequence of one container: preStop within the grace period, then — for a
sidecar, once its turn has come (the app containers and the sidecars after it have stopped, or the
grace period ran out) — SIGTERM, and SIGKILL after what is left of the grace period (never less than
MIN_STOP_GRACE once something ran before the signal).
Must not import: the client, podman.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import trio

from orchestra.node.probes import Prober, ProbeSpec, named_port
from orchestra.objects import Obj
from orchestra.runtime.base import NotFound as RuntimeNotFound
from orchestra.runtime.base import Runtime as RuntimeProtocol
from orchestra.runtime.base import RuntimeFailure

MIN_STOP_GRACE = 2.0  # kubelet's minimumGracePeriodInSeconds


async def run_hook(runtime: RuntimeProtocol, prober: Prober, hook: Obj, c: Obj, container_id: str,
                   pod_ip: str, timeout: float) -> tuple[bool, str]:  # noqa: ASYNC109 (the hook's limit)
    """(success, failure message) of one lifecycle handler."""
    if hook.get("sleep"):
        await trio.sleep(float(hook["sleep"].get("seconds") or 0))
        return True, ""
    if hook.get("exec"):
        try:
            result = await runtime.exec_run(container_id, list(hook["exec"].get("command") or []), timeout)
        except RuntimeFailure as exc:
            return False, str(exc)
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        return result.exit_code == 0, f"command exited with {result.exit_code}: {output}"
    if hook.get("httpGet"):
        try:
            named_port(c, hook["httpGet"].get("port"))
        except ValueError as exc:
            return False, str(exc)
        return await prober.probe(ProbeSpec(handler=hook, timeout=timeout), c, container_id, pod_ip)
    return True, ""


def grace_for(spec: Obj, c: Obj, probe_kind: str) -> float:
    """The grace period for stopping `c`: a failed probe's own terminationGracePeriodSeconds first."""
    probe = c.get(f"{probe_kind}Probe") or {} if probe_kind else {}
    if probe.get("terminationGracePeriodSeconds") is not None:
        return float(probe["terminationGracePeriodSeconds"])
    return float(spec.get("terminationGracePeriodSeconds", 30))


async def stop_container(runtime: RuntimeProtocol, prober: Prober, c: Obj | None, container_id: str,
                         pod_ip: str, grace: float, on_hook_failure: Callable[[str], None],
                         after: Sequence[trio.Event] = ()) -> None:
    """preStop, then (after the `after` events, within the grace period) SIGTERM and SIGKILL."""
    deadline = trio.current_time() + grace
    pre_stop = ((c or {}).get("lifecycle") or {}).get("preStop")
    waited = False
    if pre_stop and c is not None:
        with trio.move_on_at(deadline):
            ok, message = await run_hook(runtime, prober, pre_stop, c, container_id, pod_ip, max(grace, 1.0))
            if not ok:
                on_hook_failure(message)
        waited = True
    if after:
        with trio.move_on_at(deadline):
            for event in after:
                await event.wait()
        waited = True
    remaining = max(deadline - trio.current_time(), MIN_STOP_GRACE) if waited else grace
    try:
        await runtime.stop_container(container_id, remaining)
    except RuntimeNotFound:  # already gone: stopped enough
        pass
