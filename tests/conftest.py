"""Shared fixtures: a real orchestra control plane running in a background thread."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from hypothesis import settings

from tests.etcdserver import EtcdServer, session_store, shared_server
from tests.parallel import pytest_collection_modifyitems, pytest_xdist_make_scheduler  # noqa: F401 (hooks)

# CI runs the property tests with a fixed seed per test (a failure there is repeatable, and a clean
# run means the same examples pass); locally every run explores new examples.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"


def pytest_configure(config: pytest.Config) -> None:
    """Tests stop servers they start with SIGINT (Ctrl-C). A suite launched as a background job of a
    non-interactive shell inherits SIGINT ignored, and so would every Python it starts (Python keeps
    an inherited SIG_IGN): handle it here, so children start with the default again."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@attrs.define
class LiveCluster:
    url: str
    token: str
    kubeconfig: Path
    state_dir: Path
    home: Path
    ca_cert: Path  # a throw-away HOME so kubectl's discovery cache never leaks between runs

    def kubectl_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"KUBECONFIG": str(self.kubeconfig), "HOME": str(self.home)})
        return env


class ClusterThread:
    """Runs `run_cluster` under trio in a thread so sync tests (kubectl, the Python client) can use it."""

    def __init__(self, config: object) -> None:
        self.config = config
        self.cluster: object = None
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel: trio.CancelScope | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        from orchestra.app import run_cluster

        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            with trio.CancelScope() as scope:
                self._cancel = scope
                async with trio.open_nursery() as nursery:
                    self.cluster = await nursery.start(run_cluster, self.config)
                    self._ready.set()

        try:
            trio.run(main)
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    def start(self) -> object:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise RuntimeError("cluster failed to start") from self._error
        return self.cluster

    def stop(self) -> None:
        if self._token is not None and self._cancel is not None:
            try:
                trio.from_thread.run_sync(self._cancel.cancel, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._thread.join(30)


@pytest.fixture(scope="session")
def live_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    """The session's cluster, on the memory store; ORCHESTRA_TEST_STORE=etcd puts it on the session's
    etcd instead (so the kubectl and client suites can be run against etcd)."""
    from orchestra.app import ClusterConfig

    state = tmp_path_factory.mktemp("state")
    home = tmp_path_factory.mktemp("home")
    config = ClusterConfig(state_dir=state, listen_port=0, store=session_store(), podman=False, network=False)
    runner = ClusterThread(config)
    cluster = runner.start()
    yield LiveCluster(cluster.url, cluster.token, cluster.kubeconfig, state, home, cluster.ca_cert)  # type: ignore[attr-defined]
    runner.stop()


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    if not os.path.exists(KUBECTL):
        found = shutil.which("kubectl")
        if not found:
            pytest.fail(
                "kubectl 1.32 is required for these tests (/usr/lib/google-cloud-sdk/bin/kubectl.1.32)"
            )
        return found
    return KUBECTL


@pytest.fixture
async def memory_client() -> AsyncIterator[Any]:
    """A LocalClient on an in-memory API core holding every cluster's bootstrap objects."""
    from orchestra.api.request.core import ApiCore
    from orchestra.app.bootstrap import bootstrap
    from orchestra.client.local import LocalClient
    from orchestra.store import Store

    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    yield LocalClient(core)
    store.close()


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EtcdServer]:
    """One throwaway etcd for the session (tests/etcdserver.py; the one the store contract suite
    uses too); skipped only when the binary is missing. Tests keep to their own key prefix
    (tests.etcdserver.unique_prefix())."""
    server = shared_server()
    yield server
    server.remove()
