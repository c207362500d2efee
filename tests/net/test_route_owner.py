"""net/routes.py: a route a killed orchestra left is taken over (and removed at exit) by the next one;
a route someone else added is left alone."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestra.net.routes import ServiceRoute

CIDR = "10.254.77.0/24"  # a range no test or cluster routes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="adding a route needs root")


@pytest.fixture
def no_route() -> Iterator[None]:
    yield
    subprocess.run(["ip", "route", "del", "local", CIDR, "dev", "lo"], capture_output=True, check=False)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_route_left_by_a_dead_orchestra_is_taken_over(tmp_path: Path, no_route: None) -> None:
    first = ServiceRoute(CIDR, marker_dir=tmp_path)
    first.ensure()
    assert first.added and first.present()
    first.marker.write_text(f"{_dead_pid()}\n")  # as if the first process had been killed
    second = ServiceRoute(CIDR, marker_dir=tmp_path)
    second.ensure()
    assert second.added
    assert second.marker.read_text().strip() == str(os.getpid())
    second.remove()
    assert not second.present()
    assert not second.marker.exists()


@pytest.mark.parametrize("marker", ["none", "live"], ids=["administrators-route", "running-orchestra"])
def test_a_route_someone_else_holds_is_left_alone(tmp_path: Path, no_route: None, marker: str) -> None:
    subprocess.run(["ip", "route", "add", "local", CIDR, "dev", "lo"], check=True)
    if marker == "live":
        (tmp_path / f"route-{CIDR.replace('/', '_')}").write_text(f"{os.getppid()}\n")
    route = ServiceRoute(CIDR, marker_dir=tmp_path)
    route.ensure()
    assert not route.added
    route.remove()
    assert route.present()
