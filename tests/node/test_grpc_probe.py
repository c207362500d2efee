"""gRPC probes: kubelet's outcomes and texts against real grpcio servers on loopback (real time), the
worker thread's bounds, and a gRPC readiness probe on the simulated runtime (virtual time)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import trio
import trio.testing
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from orchestra.node.grpcprobe import GrpcChecker, go_code
from orchestra.node.probes import Prober, ProbeSpec
from orchestra.runtime.simulated import ContainerScript, SimScript

from .harness import condition, open_env, state

Status = health_pb2.HealthCheckResponse
PROBER = Prober(runtime=None)  # type: ignore[arg-type]  # gRPC probes never use the runtime


class ScriptedHealth(health_pb2_grpc.HealthServicer):
    """Answers Check from a table: service -> status; a missing service is NOT_FOUND like grpc's own."""

    def __init__(self, statuses: dict[str, int], delay: float = 0.0) -> None:
        self.statuses = statuses
        self.delay = delay
        self.agents: list[str] = []

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.agents.append(dict(context.invocation_metadata()).get("user-agent", ""))
        time.sleep(self.delay)
        if request.service not in self.statuses:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return Status(status=self.statuses[request.service])


def _serve(servicer: Any | None) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    if servicer is not None:
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    scripted = ScriptedHealth(
        {
            "": Status.SERVING,
            "ok": Status.SERVING,
            "down": Status.NOT_SERVING,
            "unknown": Status.UNKNOWN,
            "gone": Status.SERVICE_UNKNOWN,
        }
    )
    made = {
        "scripted": _serve(scripted),
        "slow": _serve(ScriptedHealth({"": Status.SERVING}, delay=1.5)),
        "bare": _serve(None),
    }
    grpc_own = health.HealthServicer()
    grpc_own.set("", Status.SERVING)
    made["grpc-own"] = _serve(grpc_own)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        yield {
            "ports": {k: port for k, (_, port) in made.items()},
            "closed": closed.getsockname()[1],
            "scripted": scripted,
        }
    finally:
        closed.close()
        for server, _ in made.values():
            server.stop(None)


OUTCOMES = [
    ("scripted", "", True, "service healthy"),
    ("scripted", "ok", True, "service healthy"),
    ("grpc-own", "", True, "service healthy"),
    ("scripted", "down", False, 'service unhealthy (responded with "NOT_SERVING")'),
    ("scripted", "unknown", False, 'service unhealthy (responded with "UNKNOWN")'),
    ("scripted", "gone", False, 'service unhealthy (responded with "SERVICE_UNKNOWN")'),
    (
        "scripted",
        "missing",
        False,
        "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service",
    ),
    ("grpc-own", "missing", False, "error: health rpc probe failed: rpc error: code = NotFound desc = "),
    (
        "bare",
        "",
        False,
        "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): "
        "Method not found!",
    ),
    ("slow", "", False, "timeout: health rpc did not complete within 1s"),
    (
        "closed",
        "",
        False,
        'timeout: failed to connect service "127.0.0.1:{port}" within 1s: context deadline exceeded',
    ),
]


@pytest.mark.parametrize(
    ("server", "service", "ok", "message"),
    OUTCOMES,
    ids=[
        "serving",
        "serving-named",
        "grpc-servicer",
        "not-serving",
        "unknown",
        "service-unknown",
        "not-found",
        "grpc-servicer-not-found",
        "unimplemented",
        "rpc-timeout",
        "refused",
    ],
)
async def test_probe_outcomes(
    servers: dict[str, Any], server: str, service: str, ok: bool, message: str
) -> None:
    port = servers["closed"] if server == "closed" else servers["ports"][server]
    probe = ProbeSpec(handler={"grpc": {"port": port, "service": service}}, timeout=1.0)
    with trio.fail_after(10):
        t0 = time.monotonic()
        result = await PROBER.probe(probe, {"name": "c"}, "cid", "127.0.0.1")
        elapsed = time.monotonic() - t0
    assert result == (ok, message.format(port=port))
    assert elapsed < 2.5  # every outcome within about the probe's timeout


async def test_user_agent_is_kube_probe(servers: dict[str, Any]) -> None:
    with trio.fail_after(10):
        await GrpcChecker().check("127.0.0.1", servers["ports"]["scripted"], "ok", 1.0)
    assert servers["scripted"].agents[-1].startswith("kube-probe/1.32")


async def test_cancelled_probe_abandons_its_bounded_thread(servers: dict[str, Any]) -> None:
    """Cancelling returns at once; the thread ends by its own gRPC deadline and gives its token back."""
    checker = GrpcChecker(threads=1)
    slow = servers["ports"]["slow"]
    with trio.fail_after(10):
        t0 = time.monotonic()
        with trio.move_on_after(0.2):
            await checker.check("127.0.0.1", slow, "", 1.0)
        assert time.monotonic() - t0 < 0.5
        ok, _ = await checker.check("127.0.0.1", servers["ports"]["scripted"], "", 1.0)
        waited = time.monotonic() - t0
    assert ok and 0.8 <= waited < 2.5  # the next probe waited for the abandoned thread's deadline


async def test_bad_port_is_a_failure_not_a_crash() -> None:
    probe = ProbeSpec(handler={"grpc": {"port": 0}}, timeout=1.0)
    ok, message = await PROBER.probe(probe, {"name": "c"}, "cid", "127.0.0.1")
    assert not ok and "invalid grpc probe port" in message


def test_go_code_names() -> None:
    assert [
        go_code(c)
        for c in (
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.CANCELLED,
            grpc.StatusCode.OK,
            grpc.StatusCode.UNAVAILABLE,
        )
    ] == ["NotFound", "Canceled", "OK", "Unavailable"]


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_grpc_readiness_on_the_simulation(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    """The simulated server is SERVING while something serves the port (the simulation has no network)."""
    serving = ContainerScript(serves={9555: b""})
    script = SimScript(containers={"svc": ContainerScript()})
    probe = {"grpc": {"port": 9555, "service": ""}, "periodSeconds": 2, "failureThreshold": 1}
    container = {"name": "svc", "image": "localhost/busybox:latest", "readinessProbe": probe}
    with trio.fail_after(120):
        async with open_env(tmp_path, script) as env:
            await env.create_pod("g", [container])
            await trio.sleep(10)
            assert condition(env.pod("g"), "Ready") == "False" and state(env.pod("g"), "svc")["started"]
            await env.agent.recorder.flush()  # type: ignore[union-attr]
            unhealthy = [e for e in await env.k8s_events() if e["reason"] == "Unhealthy"]
            ip = env.pod("g")["status"]["podIP"]  # type: ignore[index]
            assert unhealthy[0]["message"] == (
                f"Readiness probe failed: timeout: failed to connect service "
                f'"{ip}:9555" within 1s: context deadline exceeded'
            )
            await env.client.delete(env.rt("Pod"), "default", "g", grace_period_seconds=0)
            await env.wait_pod("g", lambda p: p is None)
            script.containers["svc"] = serving
            await env.create_pod("g", [container])
            await env.wait_pod("g", lambda p: condition(p, "Ready") == "True")
