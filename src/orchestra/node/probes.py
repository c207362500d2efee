"""Liveness, readiness and startup probes, run by the agent itself (never by Podman healthchecks).

Owns: executing one probe (exec via `runtime.exec_run`; httpGet, tcpSocket and grpc (grpcprobe.py)
over the network to the pod IP, or — `mode="exec"`, for the simulated runtime that has no network —
as `wget` inside the container; a simulated gRPC server is SERVING while something serves its port),
and the per-container-instance probe loops with initialDelaySeconds, periodSeconds, timeoutSeconds,
successThreshold and failureThreshold. Results land in a `ContainerHealth` the pod worker reads;
every change wakes the worker through `on_change`, failures are reported through `on_failure` (the
worker records the Unhealthy event). The startup probe gates the other two.
Must not import: the client, podman.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from typing import Any

import attrs
import trio

from orchestra.node.grpcprobe import GrpcChecker, join_host_port
from orchestra.objects import Obj, go_duration_seconds
from orchestra.runtime.base import ExecTimeout, RuntimeFailure
from orchestra.runtime.base import Runtime as RuntimeProtocol

KINDS = ("startup", "liveness", "readiness")


@attrs.frozen
class ProbeSpec:
    handler: Obj
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    kind: str = ""  # startup | liveness | readiness ("" for a lifecycle hook)

    @classmethod
    def from_obj(cls, probe: Obj, kind: str = "") -> ProbeSpec:
        return cls(
            handler=probe,
            kind=kind,
            initial_delay=float(probe.get("initialDelaySeconds") or 0),
            period=float(probe.get("periodSeconds") or 10),
            timeout=float(probe.get("timeoutSeconds") or 1),
            success_threshold=int(probe.get("successThreshold") or 1),
            failure_threshold=int(probe.get("failureThreshold") or 3),
        )


@attrs.define(eq=False)
class ContainerHealth:
    """Probe results for one container instance (a restart gets a fresh one)."""

    name: str
    container_id: str
    started: bool = False
    ready: bool = False
    kill_reason: str = ""  # "liveness" | "startup": the worker must restart the container
    started_event: trio.Event = attrs.field(factory=trio.Event)
    scopes: list[trio.CancelScope] = attrs.field(factory=list)  # one per probe loop
    cancelled: bool = False
    runs: int = 0
    failures: int = 0


def named_port(container: Obj, port: Any) -> int:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p.get("containerPort", 0))
    raise ValueError(f"port {port!r} not found in container {container.get('name')!r}")


class Prober:
    def __init__(self, runtime: RuntimeProtocol, *, mode: str = "network") -> None:
        if mode not in ("network", "exec"):
            raise ValueError("probe mode must be 'network' or 'exec'")
        self.runtime = runtime
        self.mode = mode
        self.grpc = GrpcChecker()

    async def probe(
        self, probe: ProbeSpec, container: Obj, container_id: str, pod_ip: str
    ) -> tuple[bool, str]:
        """(success, failure message) for one run of `probe`."""
        h = probe.handler
        try:
            if h.get("exec"):
                return await self._exec(list(h["exec"].get("command") or []), container_id, probe.timeout)
            if h.get("httpGet"):
                return await self._http(h["httpGet"], container, container_id, pod_ip, probe.timeout)
            if h.get("tcpSocket"):
                return await self._tcp(h["tcpSocket"], container, container_id, pod_ip, probe.timeout)
            if h.get("grpc"):
                return await self._grpc(h["grpc"], container_id, pod_ip, probe.timeout)
        except ValueError as exc:
            return False, str(exc)
        return True, ""

    async def _exec(self, cmd: list[str], container_id: str, timeout: float) -> tuple[bool, str]:  # noqa: ASYNC109
        try:
            result = await self.runtime.exec_run(container_id, cmd, timeout)
        except ExecTimeout:
            return False, f"command {cmd!r} timed out"
        except RuntimeFailure as exc:
            return False, str(exc)
        if result.exit_code == 0:
            return True, ""
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        return False, output or f"command {cmd!r} exited with {result.exit_code}"

    async def _http(self, spec: Obj, container: Obj, container_id: str, pod_ip: str,
                    timeout: float) -> tuple[bool, str]:  # noqa: ASYNC109
        host = spec.get("host") or pod_ip or "127.0.0.1"
        port = named_port(container, spec.get("port"))
        scheme = (spec.get("scheme") or "HTTP").lower()
        path = spec.get("path") or "/"
        url = f"{scheme}://{host}:{port}{path if path.startswith('/') else '/' + path}"
        if self.mode == "exec":
            ok, message = await self._exec(["wget", "-q", "-O", "-", url], container_id, timeout)
            return ok, "" if ok else f'Get "{url}": {message}'
        headers = {"Host": f"{host}:{port}", "User-Agent": "kube-probe/1.32", "Accept": "*/*"}
        for h in spec.get("httpHeaders") or []:
            headers[h.get("name", "")] = h.get("value", "")
        request = f"GET {path or '/'} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request += "Connection: close\r\n\r\n"
        with trio.move_on_after(timeout) as scope:
            try:
                status = await self._http_status(host, port, scheme == "https", request.encode())
            except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
                return False, f'Get "{url}": dial tcp {host}:{port}: {_reason(exc)}'
            except ValueError:
                return False, f'Get "{url}": malformed HTTP response'
        if scope.cancelled_caught:
            return (
                False,
                f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
            )
        if 200 <= status < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {status}"

    async def _http_status(self, host: str, port: int, tls: bool, request: bytes) -> int:
        stream: trio.abc.Stream
        if tls:
            stream = await trio.open_ssl_over_tcp_stream(host, port, ssl_context=_insecure_context())
        else:
            stream = await trio.open_tcp_stream(host, port)
        async with stream:
            await stream.send_all(request)
            data = b""
            while b"\r\n" not in data and len(data) < 65536:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                data += chunk
        parts = data.split(b"\r\n", 1)[0].split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise ValueError("malformed status line")
        return int(parts[1])

    async def _tcp(self, spec: Obj, container: Obj, container_id: str, pod_ip: str,
                   timeout: float) -> tuple[bool, str]:  # noqa: ASYNC109
        host = spec.get("host") or pod_ip or "127.0.0.1"
        port = named_port(container, spec.get("port"))
        if self.mode == "exec":  # the simulation's "open port" is a port something serves on
            ok, _ = await self._exec(
                ["wget", "-q", "-O", "-", f"http://{host}:{port}/"], container_id, timeout
            )
            return ok, "" if ok else f"dial tcp {host}:{port}: connect: connection refused"
        with trio.move_on_after(timeout) as scope:
            try:
                stream = await trio.open_tcp_stream(host, port)
            except OSError as exc:
                return False, f"dial tcp {host}:{port}: {_reason(exc)}"
            await stream.aclose()
        if scope.cancelled_caught:
            return False, f"dial tcp {host}:{port}: i/o timeout"
        return True, ""


    async def _grpc(self, spec: Obj, container_id: str, pod_ip: str,
                    timeout: float) -> tuple[bool, str]:  # noqa: ASYNC109
        """kubelet probes gRPC at the pod IP (a grpc probe has no host field); service "" = the server."""
        host = pod_ip or "127.0.0.1"
        port = int(spec.get("port") or 0)
        if not 0 < port < 65536:
            raise ValueError(f"invalid grpc probe port {spec.get('port')!r}")
        service = str(spec.get("service") or "")
        if self.mode == "exec":  # the simulation: a server is SERVING while something serves its port
            wget = ["wget", "-q", "-O", "-", f"http://{host}:{port}/"]
            ok, _ = await self._exec(wget, container_id, timeout)
            addr = join_host_port(host, port)
            return (True, "service healthy") if ok else (
                False, f'timeout: failed to connect service "{addr}" within {go_duration_seconds(timeout)}: '
                       "context deadline exceeded")
        return await self.grpc.check(host, port, service, timeout)


@functools.cache
def _insecure_context() -> ssl.SSLContext:
    """Made on first use (loading CA paths costs ~50 ms; a thousand simulated nodes never need it)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the kubelet skips TLS verification for probes
    return context


def _reason(exc: BaseException) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connect: connection refused"
    return f"connect: {exc}"


Change = Callable[[], None]
Failure = Callable[[str, str, str], None]  # (kind, container name, message)


class ProbeManager:
    """The probe loops of one pod's containers, run in the pod worker's nursery."""

    def __init__(self, prober: Prober, nursery: trio.Nursery, on_change: Change, on_failure: Failure) -> None:
        self.prober = prober
        self.nursery = nursery
        self.on_change = on_change
        self.on_failure = on_failure
        self._health: dict[str, ContainerHealth] = {}
        self.runs = 0
        self.failures = 0

    def get(self, name: str, container_id: str) -> ContainerHealth | None:
        health = self._health.get(name)
        return health if health is not None and health.container_id == container_id else None

    def track(self, container: Obj, container_id: str, pod_ip: str) -> ContainerHealth:
        """Start (once per instance) the probe loops of a running container instance."""
        name = container.get("name", "")
        health = self.get(name, container_id)
        if health is not None:
            return health
        self.forget(name)
        health = self._health[name] = ContainerHealth(name, container_id)
        probes = {kind: container.get(f"{kind}Probe") for kind in KINDS}
        if not probes["startup"]:
            health.started = True
            health.started_event.set()
        if not probes["readiness"]:
            health.ready = True
        for kind, probe in probes.items():
            if probe:
                spec = ProbeSpec.from_obj(probe, kind)
                self.nursery.start_soon(self._run, health, kind, spec, container, pod_ip)
        return health

    def forget(self, name: str) -> None:
        health = self._health.pop(name, None)
        if health is not None:
            health.cancelled = True
            for scope in health.scopes:
                scope.cancel()

    def stop_all(self) -> None:
        for name in list(self._health):
            self.forget(name)

    async def _run(
        self, health: ContainerHealth, kind: str, probe: ProbeSpec, container: Obj, pod_ip: str
    ) -> None:
        if health.cancelled:  # forgotten before this task began
            return
        with trio.CancelScope() as scope:
            health.scopes.append(scope)
            await trio.sleep(probe.initial_delay)
            successes = failures = 0
            while True:
                if kind != "startup":
                    await health.started_event.wait()
                ok, message = await self.prober.probe(probe, container, health.container_id, pod_ip)
                self.runs += 1
                health.runs += 1
                successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
                if not ok:
                    self.failures += 1
                    health.failures += 1
                    self.on_failure(kind, health.name, message)
                if self._apply(health, kind, ok, successes, failures, probe):
                    return
                await trio.sleep(probe.period)

    def _apply(self, health: ContainerHealth, kind: str, ok: bool, successes: int, failures: int,
               probe: ProbeSpec) -> bool:
        """Update `health`; True when this probe's loop is finished."""
        if kind == "readiness":
            if ok and successes >= probe.success_threshold and not health.ready:
                health.ready = True
                self.on_change()
            elif not ok and failures >= probe.failure_threshold and health.ready:
                health.ready = False
                self.on_change()
            return False
        if kind == "startup" and ok:
            health.started = True
            health.started_event.set()
            self.on_change()
            return True
        if not ok and failures >= probe.failure_threshold:
            health.kill_reason = kind
            self.on_change()
            return True
        return False
