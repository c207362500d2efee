"""The cgroup filesystems for a node started with `ip netns exec NAME orchestra join ...`.

`ip netns exec` runs its command in a mount namespace of its own with a fresh sysfs at /sys (so
/sys/class/net shows the namespace's links), and whatever the host mounted below /sys is gone from
it, the cgroup filesystems at /sys/fs/cgroup first: Podman then cannot make a pod's cgroups ("mkdir
/sys/fs/cgroup/cpu: no such file or directory").
Owns: `restore_cgroup_mounts()`: when /sys is such a fresh sysfs (its source is the name of a
namespace under /run/netns, as `ip netns exec` mounts it) and /sys/fs/cgroup is empty, mount the
process's cgroup hierarchies there again — in this mount namespace only (`ip netns exec` made its
mounts slaves: nothing propagates back to the host) — in the layout /proc/self/cgroup implies
(`cgroup_layout`): cgroup v2 alone at /sys/fs/cgroup; or a tmpfs with one directory per v1
hierarchy (`cpu,cpuacct`, with `cpu` and `cpuacct` links to it; `systemd` for name=systemd) and v2
at `unified`, systemd's layout. A v1 hierarchy mounted again with its controllers is the same
hierarchy, so Podman's cgroups are the host's. Anywhere else it does nothing.
Must not import: anything above the runtime layer.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import attrs

log = logging.getLogger(__name__)
CGROUP_ROOT = "/sys/fs/cgroup"
NETNS_DIR = "/run/netns"


@attrs.frozen
class Mount:
    point: str
    fstype: str
    options: str  # as `mount -o` takes them


def cgroup_layout(proc_cgroup: str, root: str = CGROUP_ROOT) -> tuple[list[Mount], list[tuple[str, str]]]:
    """(mounts, parents first; symbolic links (path, target)) for the hierarchies of a
    /proc/PID/cgroup text."""
    v1, v2 = [], False
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers = rest.partition(":")[0]
        if hierarchy == "0" and not controllers:
            v2 = True
        elif controllers:
            v1.append(controllers)
    if not v1:
        return ([Mount(root, "cgroup2", "rw,nosuid,nodev,noexec")] if v2 else []), []
    mounts, links = [Mount(root, "tmpfs", "rw,nosuid,nodev,noexec,mode=755")], []
    for controllers in v1:
        name = controllers.removeprefix("name=")
        options = f"none,{controllers}" if controllers.startswith("name=") else controllers
        mounts.append(Mount(f"{root}/{name}", "cgroup", f"rw,nosuid,nodev,noexec,{options}"))
        if "," in controllers:
            links += [(f"{root}/{one}", name) for one in controllers.split(",")]
    if v2:
        mounts.append(Mount(f"{root}/unified", "cgroup2", "rw,nosuid,nodev,noexec"))
    return mounts, links


def sysfs_source(mountinfo: str) -> str | None:
    """The source of the sysfs mounted at /sys in a /proc/PID/mountinfo text (the last one: on top)."""
    found = None
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) >= 5 and len(tail) >= 2 and fields[4] == "/sys" and tail[0] == "sysfs":
            found = tail[1]
    return found


def restore_cgroup_mounts() -> int:
    """Mount the cgroup filesystems `ip netns exec` hid; how many were mounted (0: none was missing,
    or this is not such a namespace)."""
    root = Path(CGROUP_ROOT)
    try:
        if os.path.ismount(root) or not root.is_dir() or any(root.iterdir()):
            return 0
        source = sysfs_source(Path("/proc/self/mountinfo").read_text())
        if not source or "/" in source or not (Path(NETNS_DIR) / source).exists():
            return 0  # not `ip netns exec`'s /sys: an empty /sys/fs/cgroup is the administrator's
        mounts, links = cgroup_layout(Path("/proc/self/cgroup").read_text())
    except OSError as exc:  # unreadable: leave it (Podman says what fails)
        log.warning("cannot read this process's mounts or cgroups: %s", exc)
        return 0
    mount = shutil.which("mount") or "/usr/bin/mount"
    for m in mounts:
        os.makedirs(m.point, exist_ok=True)
        done = subprocess.run([mount, "-t", m.fstype, "-o", m.options, m.fstype, m.point],
                              capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            log.warning("cannot mount %s at %s: %s", m.fstype, m.point, done.stderr.strip())
            return 0
    for path, target in links:
        if not os.path.lexists(path):
            os.symlink(target, path)
    log.info("mounted %d cgroup filesystems under %s (`ip netns exec %s` hides the host's)",
             len(mounts), CGROUP_ROOT, source)
    return len(mounts)
