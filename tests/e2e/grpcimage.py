"""An offline image with a small gRPC health server, for the Podman tests of gRPC probes.

No registry is reachable, so the image is made from what this machine already has: the busybox rootfs
(orchestra.runtime.images), the Python interpreter running the tests with its standard library (less
tests, GUI and build files), the grpcio / grpcio-health-checking / protobuf packages orchestra depends
on, and every shared library `ldd` finds for the interpreter and the extension modules — each at the
same absolute path as on the host, so the interpreter finds its prefix unchanged. `podman import`
makes the image; its tag is a hash of what went in, so a change rebuilds it and a rerun reuses it.

The server (SERVER below) answers grpc.health.v1.Health/Check on port 9555 for the services "" and
"demo": SERVING, or NOT_SERVING while /tmp/not-serving exists (`touch` / `rm` it by exec), NOT_FOUND
for any other service; it exits 0 on SIGTERM.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import google.protobuf
import grpc
import grpc_health
import typing_extensions

from orchestra.runtime.images import build_rootfs_tar
from orchestra.runtime.service import podman_env, write_containers_conf

PORT = 9555
FLAG = "/tmp/not-serving"
SITE = "/opt/grpc-site"
SERVER = f'''\
import os, signal, threading
from concurrent import futures

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

Response = health_pb2.HealthCheckResponse


class Health(health_pb2_grpc.HealthServicer):
    def Check(self, request, context):
        if request.service not in ("", "demo"):
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return Response(status=Response.NOT_SERVING if os.path.exists("{FLAG}") else Response.SERVING)


stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
server.add_insecure_port("0.0.0.0:{PORT}")
server.start()
print("serving grpc.health.v1 on {PORT}", flush=True)
stop.wait()
server.stop(0)
'''
_SKIP_DIRS = {
    "test",
    "tests",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "site-packages",
    "__pycache__",
    "pydoc_data",
    "dist-packages",
}
_LDD_PATH = re.compile(r"(/\S+)")


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("config-")]
        for name in filenames:
            if not name.endswith((".pyc", ".exe")):
                yield Path(dirpath) / name


def _shared_libraries(binaries: list[Path]) -> set[str]:
    libs: set[str] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if "not found" in line:
                continue  # an optional stdlib module whose library is absent: it stays unusable
            match = _LDD_PATH.search(line.split("=>")[-1])
            if match:
                libs.add(match.group(1))
    return libs


def _contents() -> tuple[Path, list[tuple[Path, str]]]:
    """(interpreter, [(host file, path in the image)])."""
    python = Path(os.path.realpath(sys.executable))
    stdlib = Path(sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})["stdlib"])
    files = [(python, str(python)), *((p, str(p)) for p in _walk(stdlib))]
    site = Path(grpc.__file__).parent.parent
    for package in (
        Path(grpc.__file__).parent,
        Path(grpc_health.__file__).parent,
        Path(google.protobuf.__file__).parent.parent,
    ):
        files += [(p, f"{SITE}/{p.relative_to(site)}") for p in _walk(package)]
    files.append((Path(typing_extensions.__file__), f"{SITE}/typing_extensions.py"))
    binaries = [python] + [p for p, _ in files if p.suffix == ".so" or ".so." in p.name]
    files += [(Path(lib), lib) for lib in sorted(_shared_libraries(binaries))]
    return python, files


def image_tag() -> tuple[str, Path, list[tuple[Path, str]]]:
    python, files = _contents()
    digest = hashlib.sha256(SERVER.encode())
    for host, inside in files:
        digest.update(f"{inside}:{host.stat().st_size}:{host.stat().st_mtime_ns}\n".encode())
    return f"localhost/orchestra-grpc-health:{digest.hexdigest()[:12]}", python, files


def _add(tar: tarfile.TarFile, host: Path, inside: str, dirs: set[str]) -> None:
    parts = inside.strip("/").split("/")
    for i in range(1, len(parts)):
        d = "/".join(parts[:i])
        if d not in dirs:
            dirs.add(d)
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
    info = tar.gettarinfo(str(host), arcname=inside.strip("/"))
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    with open(host, "rb") as data:  # a symlinked library is stored as the file it points to
        info.type, info.size, info.linkname = tarfile.REGTYPE, os.stat(host).st_size, ""
        tar.addfile(info, data)


def ensure_grpc_image(busybox: str = "/bin/busybox") -> str:
    """Build the image unless this exact one exists; returns its name."""
    tag, python, files = image_tag()
    with tempfile.TemporaryDirectory(prefix="orchestra-grpc-image-") as tmp:
        env = podman_env(write_containers_conf(Path(tmp)))
        if subprocess.run(["podman", "image", "exists", tag], env=env, check=False).returncode == 0:
            return tag
        tarball = Path(tmp) / "rootfs.tar"
        build_rootfs_tar(busybox, tarball)
        server = Path(tmp) / "server.py"
        server.write_text(SERVER)
        with tarfile.open(tarball, "a") as tar:
            dirs = {"bin", "etc", "tmp", "www", "root", "proc", "sys", "dev", "var", "var/www"}
            for host, inside in [*files, (server, "/server.py")]:
                _add(tar, host, inside, dirs)
        subprocess.run(
            [
                "podman",
                "import",
                "--quiet",
                "--change",
                f'CMD ["{python}", "-u", "/server.py"]',
                "--change",
                f"ENV PYTHONPATH={SITE}",
                "--change",
                "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                str(tarball),
                tag,
            ],
            env=env,
            check=True,
            capture_output=True,
        )
    return tag
