"""pods/log and pods/exec through the API server against a real Podman container, with kubectl 1.32.

Starts orchestra's own `podman system service` (PodmanService) in the test's trio loop, builds
localhost/busybox if needed, makes a sandbox and a container directly through PodmanRuntime, and
points the harness's locator at it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from orchestra.runtime.images import ensure_busybox_image
from orchestra.runtime.podman import PodmanRuntime
from orchestra.runtime.service import PodmanService
from tests.e2e.test_streams_kubectl import Harness, open_harness

pytestmark = [pytest.mark.podman, pytest.mark.kubectl, pytest.mark.slow]


@pytest.fixture
async def podman_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    if os.environ.get("ORCHESTRA_NO_PODMAN") == "1":
        pytest.skip("ORCHESTRA_NO_PODMAN=1")
    async with trio.open_nursery() as nursery:
        with trio.fail_after(120):
            socket_path = await nursery.start(PodmanService(tmp_path / "podman").run)
            await ensure_busybox_image(tmp_path / "podman")
        runtime = PodmanRuntime(socket_path)
        try:
            async with open_harness(tmp_path, runtime) as harness:
                yield harness
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(60):
                for sandbox in await runtime.list_sandboxes({"orchestra.test": "streams"}):
                    await runtime.remove_sandbox(sandbox.id)
                await runtime.aclose()
            nursery.cancel_scope.cancel()


async def test_logs_and_exec_against_podman(podman_harness: Harness) -> None:
    h = podman_harness
    with trio.fail_after(120):
        await h.make_pod("real", command=["sh", "-c", "echo hello; echo world >&2; exec sleep 3600"])
        with trio.fail_after(10):
            while (await h.kubectl("logs", "real")).stdout.count(b"\n") < 2:  # noqa: ASYNC110 (a real process: nothing to wait on)
                await trio.sleep(0.1)
        out = await h.kubectl("logs", "real", "--tail=1")
        assert out.stdout == b"world\n"
        out = await h.kubectl("exec", "real", "--", "echo", "hi")
        assert out.stdout == b"hi\n"
        out = await h.kubectl("exec", "real", "--", "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
        assert (out.returncode, out.stdout) == (7, b"out\n")
        assert b"err\n" in out.stderr
        assert b"command terminated with exit code 7" in out.stderr
        out = await h.kubectl("exec", "-i", "real", "--", "cat", stdin=b"piped\nthrough\n")
        assert out.stdout == b"piped\nthrough\n"
        out = await h.kubectl("exec", "real", "--", "false", check=False)
        assert out.returncode == 1
