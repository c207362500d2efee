"""gRPC probes: one grpc.health.v1.Health/Check call, as kubelet's pkg/probe/grpc makes it.

Owns: dialling `host:port` (plaintext, user agent kube-probe/1.32, blocking until connected or the
probe's timeout), the Check request for `service` ("" = the server's overall health) and kube's
outcome texts: SERVING is a success ("service healthy"); any other status is
`service unhealthy (responded with "NOT_SERVING")`; a dial that does not connect within the timeout
(refused, unreachable, silent) is `timeout: failed to connect service "10.88.0.5:9555" within 1s:
context deadline exceeded`; an RPC error is Unimplemented / DeadlineExceeded / `rpc error: ...`.

grpcio's client is blocking: `GrpcChecker.check` runs it in a worker thread behind a
CapacityLimiter (at most `threads` probes at once per node agent). Every blocking step inside the
thread carries a gRPC deadline of the probe's timeout, so a thread always ends within about that
time; a cancelled probe abandons its thread (it still holds its limiter token until it ends), so
cancelling a pod worker never waits for the network.
Must not import: the client, podman, the rest of node/ but backoff (probes.py imports this module).
"""

from __future__ import annotations

import time

import grpc
import trio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orchestra.objects import go_duration_seconds

USER_AGENT = "kube-probe/1.32"
DEFAULT_THREADS = 8
_GO_CODE_NAMES = {"OK": "OK", "CANCELLED": "Canceled"}  # Go spells the rest in CamelCase


def join_host_port(host: str, port: int) -> str:
    """Go's net.JoinHostPort: IPv6 literals in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def go_code(code: grpc.StatusCode) -> str:
    """grpc-go's codes.Code.String(): NotFound, Unavailable, DeadlineExceeded ..."""
    name = code.name
    return _GO_CODE_NAMES.get(name) or "".join(part.capitalize() for part in name.split("_"))


def status_name(status: int) -> str:
    """The HealthCheckResponse.ServingStatus name kube prints (SERVING, NOT_SERVING, UNKNOWN ...)."""
    try:
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(status))
    except ValueError:  # a status this client's proto does not know: Go prints the number
        return str(status)


def check_blocking(host: str, port: int, service: str, timeout: float) -> tuple[bool, str]:
    """One probe; blocks the calling thread for at most about `timeout` seconds."""
    addr = join_host_port(host, port)
    within = go_duration_seconds(timeout)
    deadline = time.monotonic() + timeout  # wall-clock: in a worker thread; grpcio deadlines are real time
    options = [("grpc.primary_user_agent", USER_AGENT), ("grpc.enable_retries", 0)]
    channel = grpc.insecure_channel(addr, options=options)
    try:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            return False, (f'timeout: failed to connect service "{addr}" within {within}: '
                           "context deadline exceeded")
        stub = health_pb2_grpc.HealthStub(channel)
        remaining = max(deadline - time.monotonic(), 0.001)  # wall-clock: as above
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=remaining)
        except grpc.RpcError as exc:
            return False, _rpc_failure(exc, within)
    finally:
        channel.close()
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        return False, f'service unhealthy (responded with "{status_name(response.status)}")'
    return True, "service healthy"


def _rpc_failure(exc: grpc.RpcError, within: str) -> str:
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (exc.details() if isinstance(exc, grpc.Call) else str(exc)) or ""
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return ("error: this server does not implement the grpc health protocol (grpc.health.v1.Health): "
                f"{details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"timeout: health rpc did not complete within {within}"
    return f"error: health rpc probe failed: rpc error: code = {go_code(code)} desc = {details}"


class GrpcChecker:
    """Runs `check_blocking` off the trio thread, at most `threads` at a time."""

    def __init__(self, threads: int = DEFAULT_THREADS) -> None:
        self.threads = threads
        self._limiter: trio.CapacityLimiter | None = None  # made in the trio run that first uses it

    async def check(self, host: str, port: int, service: str,
                    timeout: float) -> tuple[bool, str]:  # noqa: ASYNC109 (the probe's timeoutSeconds)
        if self._limiter is None:
            self._limiter = trio.CapacityLimiter(self.threads)
        return await trio.to_thread.run_sync(check_blocking, host, port, service, timeout,
                                             limiter=self._limiter, abandon_on_cancel=True)
