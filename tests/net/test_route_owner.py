"""net/routes.py: a route a killed orchestra left is taken over (and removed at exit) by the next one;
a route someone else added is left alone; the owner records are per network namespace, so an
orchestra in a namespace of its own (a joined node) and one on the host never take over or remove
each other's route (real routes in a real network namespace)."""

from __future__ import annotations

import os
import subprocess
import sys
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
    route = ServiceRoute(CIDR, marker_dir=tmp_path)
    if marker == "live":
        route.marker.write_text(f"{os.getppid()}\n")
    route.ensure()
    assert not route.added
    route.remove()
    assert route.present()


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"orpb-rt{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def _in_netns(netns: str, marker_dir: Path, *, remove: bool) -> str:
    """An orchestra in the namespace: it routes the range and exits (its pid is dead after), removing
    the route first when `remove`; prints its owner record's path."""
    script = (f"from pathlib import Path\nfrom orchestra.net.routes import ServiceRoute\n"
              f"r = ServiceRoute({CIDR!r}, marker_dir=Path({str(marker_dir)!r}))\nr.ensure()\n"
              f"print(r.marker, r.added)\n" + ("r.remove()\n" if remove else ""))
    done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _routed(netns: str | None) -> bool:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    out = subprocess.run([*prefix, "ip", "route", "show", "table", "local", CIDR], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    return f"local {CIDR}" in out


def test_route_owners_are_recorded_per_network_namespace(tmp_path: Path, no_route: None, netns: str) -> None:
    host = ServiceRoute(CIDR, marker_dir=tmp_path)
    assert host.netns == os.stat("/proc/self/ns/net").st_ino
    # a joined node in its own namespace routes the range there, then is killed (its record stays)
    record, added = _in_netns(netns, tmp_path, remove=False).split()
    assert added == "True" and _routed(netns) and not _routed(None)
    assert Path(record).exists() and Path(record) != host.marker
    # on the host the range is routed by the administrator: the dead node's record is not about it
    subprocess.run(["ip", "route", "add", "local", CIDR, "dev", "lo"], check=True)
    host.ensure()
    assert not host.added
    host.remove()
    assert _routed(None) and _routed(netns)
    # the next orchestra in the namespace takes the killed one's route over and removes it at exit
    record_again, added = _in_netns(netns, tmp_path, remove=True).split()
    assert record_again == record and added == "True"
    assert not _routed(netns) and _routed(None)
    assert not Path(record).exists()
