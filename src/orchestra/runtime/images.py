"""The offline test image: `localhost/busybox:latest` built from Debian's busybox-static.

Owns: the Python twin of scripts/build-image.sh (keep them in step), so `orchestra up` and the
tests can make the image with no registry: a rootfs tarball with /bin/busybox and a symlink per
applet, /etc/passwd, /etc/group, /tmp and /www/index.html, fed to `podman import`.
Must not import: podman (podman-py), anything above the runtime layer.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import trio

from orchestra.runtime.base import RuntimeUnavailable
from orchestra.runtime.service import podman_env, write_containers_conf

BUSYBOX_IMAGE = "localhost/busybox:latest"
INDEX_HTML = b"<html><body><h1>hello from orchestra busybox</h1></body></html>\n"
_FILES = {
    "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "etc/group": b"root:x:0:\nnobody:x:65534:\n",
    "www/index.html": INDEX_HTML,
}
_DIRS = {
    "bin": 0o755,
    "etc": 0o755,
    "tmp": 0o1777,
    "www": 0o755,
    "root": 0o700,
    "proc": 0o755,
    "sys": 0o755,
    "dev": 0o755,
    "var": 0o755,
    "var/www": 0o755,
}


def build_rootfs_tar(busybox: str, target: Path) -> None:
    """Write the image's rootfs tarball (uid/gid 0) to `target`."""
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout.split()
    now = time.time()  # wall-clock: file timestamps in the image tarball
    with tarfile.open(target, "w") as tar:
        for name, mode in _DIRS.items():
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, now
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox", filter=_root_owned)
        for applet in applets:
            if applet != "busybox":
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, "busybox", 0o777, now
                tar.addfile(info)
        for name, data in _FILES.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, now
            tar.addfile(info, io.BytesIO(data))


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o755
    return info


async def ensure_busybox_image(
    state_dir: Path | str | None = None,
    *,
    image: str = BUSYBOX_IMAGE,
    busybox: str = "/bin/busybox",
    force: bool = False,
) -> bool:
    """Build `image` with `podman import` unless it exists; True if it was built.

    Uses the packaged containers.conf (written into `state_dir`, or a temporary directory)."""
    podman = shutil.which("podman")
    if podman is None:
        raise RuntimeUnavailable("podman not found on PATH; install it (`apt-get install podman runc`)")
    with tempfile.TemporaryDirectory(prefix="orchestra-image-") as tmp:
        env = podman_env(write_containers_conf(Path(state_dir or tmp)))
        if not force:
            exists = await trio.run_process([podman, "image", "exists", image], env=env, check=False)
            if exists.returncode == 0:
                return False
        if not os.access(busybox, os.X_OK):
            raise RuntimeUnavailable(f"{busybox} missing: install busybox-static to build {image}")
        tarball = Path(tmp) / "rootfs.tar"
        await trio.to_thread.run_sync(build_rootfs_tar, busybox, tarball)
        cmd = [
            podman,
            "import",
            "--quiet",
            "--change",
            'CMD ["/bin/sh"]',
            "--change",
            "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            str(tarball),
            image,
        ]
        result = await trio.run_process(cmd, env=env, check=False, capture_stdout=True, capture_stderr=True)
        if result.returncode != 0:
            raise RuntimeUnavailable(
                f"`podman import` of {image} failed: {result.stderr.decode(errors='replace')}"
            )
    return True
