"""PodmanRuntime against a Podman service that is not there: the request fails with the runtime's
error and leaves no socket for the garbage collector (podman-py's own connection left it unclosed:
a ResourceWarning that surfaced in whichever test ran at the next collection)."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import pytest
import trio

from orchestra.runtime.base import RuntimeFailure
from orchestra.runtime.podman import PodmanRuntime


def test_a_failed_connect_closes_its_socket(tmp_path: Path) -> None:
    runtime = PodmanRuntime(str(tmp_path / "gone.sock"), request_timeout=2)

    async def main() -> None:
        with pytest.raises(RuntimeFailure):
            await runtime.version()
        await runtime.aclose()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        trio.run(main)
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
