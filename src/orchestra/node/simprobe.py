"""Probes on simulated nodes: every probe passes, as on kwok's nodes, unless the pod's script says no.

Owns: `SimulatedProber`, the Prober of `--simulate-nodes`. A simulated pod IP routes nowhere, so
httpGet, tcpSocket and grpc probes (and httpGet lifecycle hooks) of a simulated container succeed
without a network; an exec probe runs its command through the simulated runtime's exec rule (so
`cat /tmp/healthy` fails once the container's command removed the file); a named port the
container does not declare fails as in kube. A probe that the pod's `sim.orchestra.io/probe-failure`
annotation covers at this moment fails, with the message the kubelet gives for its handler.
Must not import: the client, podman.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from orchestra.node.probes import Prober, ProbeSpec, named_port
from orchestra.runtime.base import Runtime as RuntimeProtocol

Obj = dict[str, Any]


@runtime_checkable
class ProbeScript(Protocol):
    """What the simulated runtime tells about scripted probe failures (SimulatedRuntime.probe_fails)."""

    def probe_fails(self, container_id: str, kind: str) -> bool: ...


class SimulatedProber(Prober):
    def __init__(self, runtime: RuntimeProtocol, script: ProbeScript) -> None:
        super().__init__(runtime, mode="exec")
        self.script = script

    async def probe(
        self, probe: ProbeSpec, container: Obj, container_id: str, pod_ip: str
    ) -> tuple[bool, str]:
        h = probe.handler
        if probe.kind and self.script.probe_fails(container_id, probe.kind):
            return False, scripted_failure(h, container, pod_ip)
        if h.get("exec"):
            return await super().probe(probe, container, container_id, pod_ip)
        action = h.get("httpGet") or h.get("tcpSocket")
        if action:
            try:
                named_port(container, action.get("port"))
            except ValueError as exc:
                return False, str(exc)
        return True, ""


def scripted_failure(handler: Obj, container: Obj, pod_ip: str) -> str:
    """The kubelet's message for a failing probe of this handler."""
    if handler.get("exec"):
        return f"command {list(handler['exec'].get('command') or [])!r} exited with 1"
    if handler.get("httpGet"):
        return "HTTP probe failed with statuscode: 500"
    if handler.get("tcpSocket"):
        try:
            port: Any = named_port(container, handler["tcpSocket"].get("port"))
        except ValueError:
            port = handler["tcpSocket"].get("port")
        return f"dial tcp {handler['tcpSocket'].get('host') or pod_ip}:{port}: connect: connection refused"
    if handler.get("grpc"):
        return 'service unhealthy (responded with "NOT_SERVING")'
    return "probe failed"
