"""Secrets are encrypted at rest in a durable state directory: no file under it holds a Secret's
value (raw or base64) — after kubectl writes them, after a restart, after a snapshot — and a Secret
an older orchestra stored in the clear is encrypted at the next start, its old log segments gone."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
from pathlib import Path

import pytest
import trio

from orchestra.api.request.core import ApiCore
from orchestra.app import ClusterConfig
from orchestra.store import Store
from tests.conftest import ClusterThread

pytestmark = pytest.mark.kubectl

VALUE = "s3cr3t-kubectl-value-4b1d"
LEGACY = "legacy-plaintext-value-9c2e"
NEEDLES = [v.encode() for v in (VALUE, LEGACY)] + [base64.b64encode(v.encode()) for v in (VALUE, LEGACY)]


def holders(state: Path, needles: list[bytes]) -> list[str]:
    """The files under `state` that contain any of `needles`."""
    found = []
    for path in sorted(p for p in state.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if any(n in data for n in needles):
            found.append(str(path.relative_to(state)))
    return found


def write_plain_secret(state: Path) -> None:
    """What an orchestra without encryption at rest left behind: a Secret in the clear."""

    async def main() -> None:
        store = Store.open_durable(state / "store")
        try:
            core = ApiCore(store)
            await core.create(core.registry.by_kind("Namespace"), None, {"metadata": {"name": "default"}})
            body = {"metadata": {"name": "legacy"}, "stringData": {"password": LEGACY}}
            await core.create(core.registry.by_kind("Secret"), "default", body)
            await store.wait_durable(store.revision)
        finally:
            store.close()

    trio.run(main)


class Cluster:
    def __init__(self, state: Path, home: Path, kubectl_bin: str) -> None:
        config = ClusterConfig(state_dir=state, listen_port=0, store="durable", podman=False, network=False)
        self.runner = ClusterThread(config)
        self.cluster = self.runner.start()
        self.env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), "HOME": str(home)}  # type: ignore[attr-defined]
        self.kubectl_bin = kubectl_bin

    def kubectl(self, *args: str) -> str:
        proc = subprocess.run(
            [self.kubectl_bin, *args], capture_output=True, text=True, env=self.env, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def secret_value(self, name: str) -> str:
        return base64.b64decode(
            self.kubectl("get", "secret", name, "-o", "jsonpath={.data.password}")
        ).decode()

    def snapshot(self) -> None:
        token = self.runner._token
        assert token is not None
        trio.from_thread.run(self.cluster.store.snapshot, trio_token=token)  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.runner.stop()


def test_no_secret_value_in_the_state_dir(tmp_path: Path, kubectl_bin: str) -> None:
    state, home = tmp_path / "state", tmp_path / "home"
    home.mkdir()
    write_plain_secret(state)
    assert holders(state, NEEDLES) != []  # the old store did hold it in the clear
    cluster = Cluster(state, home, kubectl_bin)
    try:
        config = state / "encryption-config.json"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        cluster.kubectl("create", "secret", "generic", "app", f"--from-literal=password={VALUE}")
        assert cluster.secret_value("app") == VALUE
        assert cluster.secret_value("legacy") == LEGACY  # migrated, still readable
        assert holders(state, NEEDLES) == []
        assert any(b"k8s:enc:aesgcm:v1:key1:" in p.read_bytes() for p in (state / "store").iterdir())
    finally:
        cluster.stop()
    assert holders(state, NEEDLES) == []
    cluster = Cluster(state, home, kubectl_bin)
    try:
        assert (cluster.secret_value("app"), cluster.secret_value("legacy")) == (VALUE, LEGACY)
        cluster.kubectl("label", "secret", "app", "rotated=yes")
        cluster.snapshot()
        assert any(p.name.startswith("snap-") for p in (state / "store").iterdir())
        assert holders(state, NEEDLES) == []
        assert cluster.secret_value("app") == VALUE
    finally:
        cluster.stop()
    assert holders(state, NEEDLES) == []
