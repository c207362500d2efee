"""The host side of NetworkPolicy enforcement: nftables through `nft -j` (JSON in and out, never its
text output) and the bridge setting that shows pod-to-pod traffic to it.

Owns: `Nft` (`apply(commands)`: one `nft -j -f -` run, one transaction; `list_table()`: the table
as nft's JSON objects, None when absent), `NftError`, `unavailable()` (why this host cannot enforce
policies, or None) and `bridge_filtering()` (pods on one Podman bridge talk at layer 2: only with
br_netfilter's `net.bridge.bridge-nf-call-iptables=1` do their packets pass the inet forward hook;
it loads the module and sets the switch when it can, as kube's bridge-based network plugins
require).
Must not import: the rest of net but compile.py's names (it runs commands it is handed).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import trio

from orchestra.net.netpol.compile import FAMILY, TABLE, Command

log = logging.getLogger("orchestra.net.netpol")

NFT_TIMEOUT = 10.0
BRIDGE_SWITCH = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


class NftError(Exception):
    """nft refused a transaction (nothing of it was applied) or could not be run."""


class Nft:
    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or shutil.which("nft") or "/usr/sbin/nft"
        self.transactions = 0

    async def _run(self, args: list[str], stdin: bytes | None = None) -> bytes:
        try:
            with trio.fail_after(NFT_TIMEOUT):
                proc = await trio.run_process([self.binary, "-j", *args], stdin=stdin, capture_stdout=True,
                                              capture_stderr=True, check=False)
        except (OSError, trio.TooSlowError) as exc:
            raise NftError(f"cannot run {self.binary}: {exc}") from None
        if proc.returncode != 0:
            raise NftError(proc.stderr.decode(errors="replace").strip() or f"nft exited {proc.returncode}")
        return proc.stdout

    async def apply(self, commands: list[Command]) -> None:
        """Run `commands` as one transaction: all of them take effect, or none."""
        await self._run(["-f", "-"], json.dumps({"nftables": commands}).encode())
        self.transactions += 1

    async def list_table(self, family: str = FAMILY, name: str = TABLE) -> list[dict[str, Any]] | None:
        """The table's objects (chains, rules) as nft's JSON; None when there is no such table."""
        try:
            out = await self._run(["list", "table", family, name])
        except NftError as exc:
            if "No such file or directory" in str(exc):
                return None
            raise
        items = json.loads(out).get("nftables", [])
        return [item for item in items if "metainfo" not in item]


def unavailable() -> str | None:
    """Why NetworkPolicies cannot be enforced here, in words that say what to do; None if they can."""
    if shutil.which("nft") is None and not os.path.exists("/usr/sbin/nft"):
        return "the nft command is missing (install Debian's nftables package: apt-get install nftables)"
    if os.geteuid() != 0:
        return "changing the host's nftables needs root (CAP_NET_ADMIN)"
    return None


def bridge_filtering() -> str | None:
    """Make bridged pod-to-pod packets pass netfilter's IPv4 hooks; returns a warning when it cannot
    (then policies still apply to traffic with the host and outside, not between pods on the bridge)."""
    if not BRIDGE_SWITCH.exists():
        modprobe = shutil.which("modprobe") or "/usr/sbin/modprobe"
        try:
            subprocess.run([modprobe, "br_netfilter"], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:  # reported below: the switch is still missing
            log.debug("modprobe br_netfilter: %s", exc)
    try:
        if BRIDGE_SWITCH.read_text().strip() != "1":
            BRIDGE_SWITCH.write_text("1\n")
    except OSError as exc:
        return (f"cannot turn on {BRIDGE_SWITCH} ({exc.strerror or exc}): NetworkPolicies will not see "
                "traffic between pods on the same bridge; load br_netfilter and set "
                "net.bridge.bridge-nf-call-iptables=1")
    return None
