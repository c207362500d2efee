"""Keep the MAC address of Podman's bridge fixed while pods come and go.

A Linux bridge whose address was never set takes the lowest MAC of its ports. netavark before 1.9
(Debian 12 ships 1.4) leaves it so: when the pod whose veth holds the lowest MAC is removed (or a
pod with a lower one arrives) the bridge changes address, and every other pod's ARP entry for its
gateway goes stale. Their packets to the host (ClusterIPs, the cluster DNS, NodePorts) then vanish
until the entry is re-resolved, seconds to minutes later. Setting the address explicitly, to the
one it already has, makes the kernel keep it (`addr_assign_type` becomes NET_ADDR_SET) without
disturbing anyone's cache; newer netavark does the same when it creates the bridge.

Owns: reading and pinning a host interface's MAC through sysfs and SIOCSIFHWADDR. A node in a network
namespace of its own (`orchestra up --nodes`: entered with `nsenter --net`, so the host's cgroup and
overlay mounts stay as they are) sees the host's sysfs, which does not list its interfaces: then the
MAC is read with SIOCGIFHWADDR and set every time (setting a bridge's own address again changes
nothing but marks it set).
Must not import: anything above the runtime layer.
"""

from __future__ import annotations

import fcntl
import logging
import socket
import struct
from pathlib import Path

log = logging.getLogger(__name__)

SYSFS_NET = Path("/sys/class/net")
NET_ADDR_SET = 3  # include/linux/netdevice.h: the address was set from user space
SIOCSIFHWADDR = 0x8924
SIOCGIFHWADDR = 0x8927
ARPHRD_ETHER = 1


def mac_pinned(iface: str, sysfs: Path = SYSFS_NET) -> bool | None:
    """Whether `iface` keeps its address; None when there is no such interface here."""
    try:
        return int((sysfs / iface / "addr_assign_type").read_text()) == NET_ADDR_SET
    except (OSError, ValueError):
        return None


def pin_mac(iface: str, sysfs: Path = SYSFS_NET) -> bool:
    """Set `iface`'s MAC to its current value, so it stays. True when this call pinned it; False when
    it was pinned already, does not exist, or cannot be changed (not root: logged once per call)."""
    pinned = mac_pinned(iface, sysfs)
    if pinned:
        return False
    if pinned is None:  # not in this sysfs: maybe an interface of this network namespace, not the mount's
        found = _kernel_mac(iface)
        if found is None:
            return False
        mac = found
    else:
        try:
            mac = bytes.fromhex((sysfs / iface / "address").read_text().strip().replace(":", ""))
        except (OSError, ValueError):
            return False
    request = struct.pack("16sH6s8x", iface.encode(), ARPHRD_ETHER, mac)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            fcntl.ioctl(sock, SIOCSIFHWADDR, request)
    except OSError as exc:
        log.warning("could not fix the MAC address of bridge %s (%s): deleting a pod may cut the other pods "
                    "off the host until their ARP entries expire", iface, exc)
        return False
    # (set again at every call when sysfs cannot tell: not worth a line each time)
    say = log.debug if pinned is None else log.info
    say("fixed the MAC address of bridge %s at %s", iface, mac.hex(":"))
    return True


def _kernel_mac(iface: str) -> bytes | None:
    """`iface`'s MAC in this network namespace (SIOCGIFHWADDR), or None when there is no such interface."""
    request = struct.pack("16sH6s8x", iface.encode()[:15], 0, b"\0" * 6)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            answer = fcntl.ioctl(sock, SIOCGIFHWADDR, request)
    except OSError:
        return None
    family, mac = struct.unpack_from("16xH6s", answer)
    return mac if family == ARPHRD_ETHER else None
