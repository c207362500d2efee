"""runtime/cgroupmounts.py: the cgroup layout a process's /proc/self/cgroup implies (what a node started
with `ip netns exec` mounts again), and how it tells `ip netns exec`'s fresh /sys. The mounting
itself runs in tests/e2e/test_join_network_e2e.py, in a real namespace."""

from __future__ import annotations

import pytest

from orchestra.runtime.cgroupmounts import Mount, cgroup_layout, sysfs_source

OPTS = "rw,nosuid,nodev,noexec"
HYBRID = "12:pids:/\n4:memory:/a/b\n3:cpu,cpuacct:/\n2:name=systemd:/\n0::/\n"
V1_SPLIT = "2:cpuacct:/\n1:cpu:/\n"


@pytest.mark.parametrize(("proc_cgroup", "mounts", "links"), [
    pytest.param("0::/user.slice\n", [Mount("/sys/fs/cgroup", "cgroup2", OPTS)], [], id="v2"),
    pytest.param(HYBRID, [
        Mount("/sys/fs/cgroup", "tmpfs", f"{OPTS},mode=755"),
        Mount("/sys/fs/cgroup/pids", "cgroup", f"{OPTS},pids"),
        Mount("/sys/fs/cgroup/memory", "cgroup", f"{OPTS},memory"),
        Mount("/sys/fs/cgroup/cpu,cpuacct", "cgroup", f"{OPTS},cpu,cpuacct"),
        Mount("/sys/fs/cgroup/systemd", "cgroup", f"{OPTS},none,name=systemd"),
        Mount("/sys/fs/cgroup/unified", "cgroup2", OPTS),
    ], [("/sys/fs/cgroup/cpu", "cpu,cpuacct"), ("/sys/fs/cgroup/cpuacct", "cpu,cpuacct")], id="hybrid"),
    pytest.param(V1_SPLIT, [
        Mount("/sys/fs/cgroup", "tmpfs", f"{OPTS},mode=755"),
        Mount("/sys/fs/cgroup/cpuacct", "cgroup", f"{OPTS},cpuacct"),
        Mount("/sys/fs/cgroup/cpu", "cgroup", f"{OPTS},cpu"),
    ], [], id="v1-only"),
    pytest.param("", [], [], id="none"),
])
def test_cgroup_layout(proc_cgroup: str, mounts: list[Mount], links: list[tuple[str, str]]) -> None:
    assert cgroup_layout(proc_cgroup) == (mounts, links)


HOST = ("23 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n")
NETNS_EXEC = HOST + "119 118 0:40 / /sys rw,relatime - sysfs orpb-x rw\n"


@pytest.mark.parametrize(("mountinfo", "source"), [
    pytest.param(HOST, "sysfs", id="host"),
    pytest.param(NETNS_EXEC, "orpb-x", id="ip-netns-exec"),
    pytest.param("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n", None, id="no-sysfs"),
])
def test_sysfs_source(mountinfo: str, source: str | None) -> None:
    assert sysfs_source(mountinfo) == source
