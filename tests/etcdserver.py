"""A throwaway etcd for tests: Debian's etcd-server (`./dev` installs it) on free local ports, its
data in a temporary directory, stopped (and its directory removed) afterwards.

`etcd_server` (tests/conftest.py) is one per test session; tests that need their own keys use a
fresh prefix (unique_prefix()), tests that restart or compact etcd start their own with EtcdServer;
EtcdCluster is three members (an initial cluster on free local ports) whose members stop, are killed
and start again one by one."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from orchestra.app.etcdlocal import etcd_binary, etcd_command, free_port

_prefixes = itertools.count()


def etcd_missing() -> str | None:
    """Why etcd cannot be started here (None when it can)."""
    if etcd_binary() is None:
        return "the etcd binary is missing (./dev installs Debian's etcd-server)"
    return None


def unique_prefix(name: str = "t") -> str:
    """A key prefix no other test of this session uses (ending in "/": no prefix is another's)."""
    return f"/orchestra-test/{name}-{next(_prefixes)}/"


class EtcdServer:
    """One etcd member listening on 127.0.0.1; start() blocks until it answers. Alone, or a member
    `name` of `initial_cluster` (name=http://127.0.0.1:PEER,...; EtcdCluster makes them)."""

    def __init__(self, directory: Path | None = None, *, name: str = "t", peer_port: int | None = None,
                 initial_cluster: str | None = None) -> None:
        self._own_dir = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="orchestra-etcd-")) if directory is None else directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.client_port = free_port()
        self.peer_port = peer_port or free_port()
        self.initial_cluster = initial_cluster
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def url(self) -> str:
        """What `orchestra up --store` takes."""
        return f"etcd://127.0.0.1:{self.client_port}"

    def start(self, timeout: float = 20.0) -> EtcdServer:
        self.launch()
        return self.wait_healthy(timeout)

    def launch(self) -> None:
        """Start the process without waiting (members of a cluster answer once a quorum runs)."""
        etcd = etcd_binary()
        assert etcd is not None, etcd_missing()
        # the command orchestra's own local etcd runs (app/etcdlocal.py), in a cluster of several
        command = etcd_command(etcd, self.directory / "data", self.client_port, self.peer_port,
                               name=self.name)
        if self.initial_cluster:
            command[command.index("--initial-cluster") + 1] = self.initial_cluster
            command += ["--initial-cluster-token", "orchestra-test"]
        log = open(self.directory / "etcd.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()

    def wait_healthy(self, timeout: float = 20.0) -> EtcdServer:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.proc.returncode}: {self.log_tail()}")
            if self.healthy():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"etcd did not answer within {timeout} s: {self.log_tail()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/health", timeout=1) as resp:
                return bool(resp.status == 200 and b'"true"' in resp.read())
        except (OSError, urllib.error.URLError):
            return False

    def log_tail(self) -> str:
        path = self.directory / "etcd.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop etcd (SIGTERM, then SIGKILL); the data stays until remove()."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """kill -9: what losing the etcd machine looks like to its clients."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def remove(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)


class EtcdCluster:
    """Three (or `size`) etcd members on 127.0.0.1, each with its own directory under one temporary
    directory; `url` names every member's client address, as `orchestra up --store` takes them."""

    def __init__(self, size: int = 3) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="orchestra-etcd-cluster-"))
        peers = [(f"m{i + 1}", free_port()) for i in range(size)]
        initial = ",".join(f"{name}=http://127.0.0.1:{port}" for name, port in peers)
        self.members = [EtcdServer(self.directory / name, name=name, peer_port=port, initial_cluster=initial)
                        for name, port in peers]

    @property
    def url(self) -> str:
        return "etcd://" + ",".join(f"127.0.0.1:{m.client_port}" for m in self.members)

    def start(self, timeout: float = 30.0) -> EtcdCluster:
        """Start every member together (each waits for a quorum) until all answer."""
        for member in self.members:
            member.launch()
        try:
            for member in self.members:
                member.wait_healthy(timeout)
        except BaseException:
            self.remove()
            raise
        return self

    def restart(self, *members: EtcdServer, timeout: float = 30.0) -> None:
        """Start these stopped members again (together: two of three restore the quorum only together)."""
        for member in members:
            member.launch()
        for member in members:
            member.wait_healthy(timeout)

    def wait_quorum(self, timeout: float = 30.0) -> None:
        """Until every running member answers /health (true only while the cluster has a leader)."""
        for member in self.members:
            if member.proc is not None:
                member.wait_healthy(timeout)

    def remove(self) -> None:
        for member in self.members:
            member.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def cluster_or_skip(size: int = 3) -> EtcdCluster:
    why = etcd_missing()
    if why:
        pytest.skip(why)
    return EtcdCluster(size).start()


def start_or_skip() -> EtcdServer:
    why = etcd_missing()
    if why:
        pytest.skip(why)
    return EtcdServer().start()


_shared: list[EtcdServer] = []


def shared_server() -> EtcdServer:
    """The session's etcd (started at first use, removed when the interpreter exits); skips the
    calling test when etcd is missing."""
    if not _shared:
        _shared.append(start_or_skip())
        atexit.register(_shared[0].remove)
    return _shared[0]


def session_store() -> str:
    """The store of the shared test clusters: "memory", or with ORCHESTRA_TEST_STORE=etcd the
    session's etcd (to run the kubectl and client suites against etcd)."""
    if os.environ.get("ORCHESTRA_TEST_STORE") == "etcd":
        return shared_server().url
    return "memory"
