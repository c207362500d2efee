"""Host set-up the service proxy needs: the service range routed to the loopback device.

`ip route add local <cidr> dev lo` makes every address of the range bindable on this host (AnyIP),
so a listener can sit on any ClusterIP and pods reach it through their default route. It needs root
(CAP_NET_ADMIN); orchestra adds the route at start and removes it at exit, unless it was already
there (another instance, or the administrator, owns it then). The adding process's pid is kept in
/run/orchestra, so a route left by a killed orchestra is taken over (and removed at exit) by the next.
/run is shared by every network namespace of the host while routes are not, so that record is kept
per network namespace (named by the inode of /proc/self/ns/net): a joined node in a namespace of its
own and `orchestra up` on the host never take over or remove each other's route.
Must not import: apiserver, cli, runtime, node.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

import attrs

log = logging.getLogger("orchestra")


class NetworkSetupError(Exception):
    """The host cannot be prepared for service networking; the message says what to do."""


@attrs.define
class ServiceRoute:
    cidr: str
    added: bool = False

    def _ip(self, *args: str) -> subprocess.CompletedProcess[str]:
        ip = shutil.which("ip") or "/usr/sbin/ip"
        return subprocess.run([ip, *args], capture_output=True, text=True, timeout=10, check=False)

    def present(self) -> bool:
        out = self._ip("route", "show", "table", "local", self.cidr).stdout
        return f"local {self.cidr}" in out

    marker_dir: Path = Path("/run/orchestra")  # host-wide: which process added the route
    netns: int = attrs.field(factory=lambda: network_namespace())  # whose route it is

    @property
    def marker(self) -> Path:
        return self.marker_dir / f"route-netns{self.netns}-{self.cidr.replace('/', '_')}"

    def ensure(self) -> None:
        if self.present():
            if self._owner_is_dead():  # a killed orchestra left it: ours now, removed at exit
                log.warning("took over the route 'local %s dev lo' left by a stopped orchestra", self.cidr)
                self._claim()
            return
        if os.geteuid() != 0:
            raise NetworkSetupError(
                "service networking needs root (CAP_NET_ADMIN) to route the service range "
                f"{self.cidr} to lo; run orchestra as root, or start it with --no-network"
            )
        res = self._ip("route", "add", "local", self.cidr, "dev", "lo")
        if res.returncode != 0 and not self.present():
            raise NetworkSetupError(f"could not add route 'local {self.cidr} dev lo': {res.stderr.strip()}")
        self._claim()

    def remove(self) -> None:
        if self.added:
            self._ip("route", "del", "local", self.cidr, "dev", "lo")
            self.added = False
            with contextlib.suppress(OSError):  # already gone: nothing to release
                self.marker.unlink()

    def _claim(self) -> None:
        self.added = True
        try:
            self.marker_dir.mkdir(parents=True, exist_ok=True)
            self.marker.write_text(f"{os.getpid()}\n")
        except OSError as exc:  # without the marker a later start only cannot take the route over
            log.info("cannot record the route's owner in %s: %s", self.marker, exc)

    def _owner_is_dead(self) -> bool:
        """True when the route was added by an orchestra process that no longer runs. No marker: an
        administrator (or an older orchestra) added it, and it is left alone."""
        try:
            pid = int(self.marker.read_text().strip())
        except (OSError, ValueError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, someone else's
            return False
        return False


def network_namespace() -> int:
    """This process's network namespace: the inode of /proc/self/ns/net (what `ip netns identify` and
    `lsns` compare)."""
    return os.stat("/proc/self/ns/net").st_ino


def host_addresses() -> list[str]:
    """The host's non-loopback IPv4 addresses (LoadBalancer Services answer on the first)."""
    ip = shutil.which("ip") or "/usr/sbin/ip"
    try:
        out = subprocess.run(
            [ip, "-4", "-o", "addr", "show", "scope", "global"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
    except OSError:
        return []
    addrs = []
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            addr = parts[parts.index("inet") + 1].split("/")[0]
            if not addr.startswith("10.88."):  # podman's bridge is not the host's address
                addrs.append(addr)
    return addrs
