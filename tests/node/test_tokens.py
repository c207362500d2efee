"""Projected ServiceAccount tokens on the node (node/tokens.py): asked for through TokenRequest bound to
the pod, written into the volume, refreshed at 80 % of their life (virtual time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest
import trio
import trio.testing

from orchestra.api.serviceaccount.tokens import TokenIssuer, new_signing_key

from .harness import Env, open_env, phase

BUSYBOX = "localhost/busybox:latest"
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def projected(seconds: int, audience: str = "") -> dict[str, Any]:
    token: dict[str, Any] = {
        "path": "token",
        "expirationSeconds": seconds,
        **({"audience": audience} if audience else {}),
    }
    return {"name": "kube-api-access-x", "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": token},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
    ]}}


async def furnish(env: Env) -> None:
    await env.client.create(env.rt("ServiceAccount"), "default", {"metadata": {"name": "default"}})
    await env.client.create(env.rt("ConfigMap"), "default", {"metadata": {"name": "kube-root-ca.crt"},
                                                               "data": {"ca.crt": CA}})


def volume_dir(env: Env, pod: dict[str, Any]) -> Path:
    return env.state_dir / "pods" / pod["metadata"]["uid"] / "volumes" / "projected" / "kube-api-access-x"


async def test_the_token_is_written_bound_to_the_pod_and_refreshed_at_80_percent(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(3600):
        async with open_env(tmp_path, tokens=TokenIssuer(new_signing_key())) as env:
            await furnish(env)
            pod = await env.create_pod("web", [{"name": "c", "image": BUSYBOX}], volumes=[projected(600)])
            await env.wait_pod("web", lambda p: phase(p) == "Running")
            started = trio.current_time()
            files = volume_dir(env, pod)
            assert (files / "ca.crt").read_text() == CA and (files / "namespace").read_text() == "default"
            first = (files / "token").read_text()
            claims = jwt.decode(first, options={"verify_signature": False})
            assert claims["sub"] == "system:serviceaccount:default:default"
            assert claims["kubernetes.io"]["pod"] == {"name": "web", "uid": pod["metadata"]["uid"]}
            assert claims["exp"] - claims["iat"] == 600
            assert oct((files / "token").stat().st_mode & 0o777) == "0o644"
            await trio.sleep(started + 470 - trio.current_time())  # before 80 % of 600 s
            assert (files / "token").read_text() == first
            await trio.sleep(started + 490 - trio.current_time())  # just after
            second = (files / "token").read_text()
            assert second != first
            assert jwt.decode(second, options={"verify_signature": False})["kubernetes.io"]["pod"]["uid"] == (
                pod["metadata"]["uid"])
            tokens = env.agent.ctx.tokens  # type: ignore[union-attr]
            assert tokens.requests == 2
            await env.client.delete(env.rt("Pod"), "default", "web", grace_period_seconds=0)
            await env.wait_pod("web", lambda p: p is None)
            await trio.testing.wait_all_tasks_blocked()
            assert tokens.due(pod["metadata"]["uid"]) == float("inf")  # forgotten with the pod


async def test_the_kubelets_3607_s_token_is_refreshed_within_the_hour(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(7200):
        async with open_env(tmp_path, tokens=TokenIssuer(new_signing_key())) as env:
            await furnish(env)
            pod = await env.create_pod("web", [{"name": "c", "image": BUSYBOX}], volumes=[projected(3607)])
            await env.wait_pod("web", lambda p: phase(p) == "Running")
            first = (volume_dir(env, pod) / "token").read_text()
            assert env.agent.ctx.tokens.due(pod["metadata"]["uid"]) - trio.current_time() <= 0.8 * 3607  # type: ignore[union-attr]
            await trio.sleep(0.8 * 3607 + 61)
            assert (volume_dir(env, pod) / "token").read_text() != first


async def test_a_pod_whose_account_is_missing_waits_with_failed_mount(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with open_env(tmp_path, tokens=TokenIssuer(new_signing_key())) as env:
            await furnish(env)
            await env.create_pod("web", [{"name": "c", "image": BUSYBOX}], volumes=[projected(600)],
                                 serviceAccountName="ghost")
            await trio.sleep(30)
            await env.agent.recorder.flush()  # type: ignore[union-attr]
            mounts = [e["message"] for e in await env.k8s_events() if e["reason"] == "FailedMount"]
            assert mounts == [
                'MountVolume.SetUp failed: failed to fetch token: serviceaccounts "ghost" not found'
            ]
            assert phase(env.pod("web")) == "Pending"
