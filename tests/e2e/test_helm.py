"""Helm 4 (its Go SDK, through helm-python-sdk's ctypes binding: no helm binary) against a real
`orchestra up`: install, upgrade, rollback, history and uninstall of the chart in charts/web (a
Deployment whose pods turn ready two seconds after they start, a Service and a ConfigMap), each
waiting with Helm 4's default strategy (`watcher`: kstatus over client-go watches, watch-list streams
included). Every release ends `deployed` (the older ones `superseded`, the last `uninstalled`), none
`failed`, and the objects are what the values say."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from tests.e2e.upserver import UpServer, orchestra_up

pytestmark = pytest.mark.slow

CHART = Path(__file__).parent / "charts" / "web"
NS = "default"
TIMEOUT = 60  # seconds Helm may wait for the release's resources


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpServer]:
    with orchestra_up(tmp_path_factory.mktemp("helm") / "state") as up:
        yield up


@pytest.fixture
def config(server: UpServer) -> Iterator[Any]:
    with helm.Config(kubeconfig_path=str(server.kubeconfig), namespace=NS) as cfg:
        yield cfg


def _get(server: UpServer, path: str) -> dict[str, Any]:
    with server.http() as http:
        resp = http.get(path)
        resp.raise_for_status()
        return dict(resp.json())


def _deployment(server: UpServer, name: str) -> dict[str, Any]:
    return _get(server, f"/apis/apps/v1/namespaces/{NS}/deployments/{name}")


def _greeting(server: UpServer, name: str) -> str:
    return str(_get(server, f"/api/v1/namespaces/{NS}/configmaps/{name}-config")["data"]["greeting"])


def _statuses(config: Any, name: str) -> list[tuple[int, str]]:
    return [(r["revision"], r["status"]) for r in config.history(name)]


def _assert_available(server: UpServer, name: str, replicas: int) -> None:
    """What Helm's wait promised: the Deployment has its replicas, all of them ready."""
    status = _deployment(server, name)["status"]
    assert status.get("readyReplicas") == replicas and status.get("availableReplicas") == replicas, status


def test_release_lifecycle(server: UpServer, config: Any) -> None:
    name = "web"
    started = time.monotonic()
    release = config.install(str(CHART), name, wait="watcher", timeout=TIMEOUT)
    assert release["status"] == "deployed"
    assert time.monotonic() - started >= 2  # it waited for the pods' readiness
    _assert_available(server, name, 2)
    assert _greeting(server, name) == "hello"

    upgraded = config.upgrade(str(CHART), name, {"replicaCount": 3, "greeting": "hi"}, wait="watcher",
                              timeout=TIMEOUT)
    assert (upgraded["revision"], upgraded["status"]) == (2, "deployed")
    _assert_available(server, name, 3)
    assert _greeting(server, name) == "hi"

    config.rollback(name, version=1, wait="watcher", timeout=TIMEOUT)
    assert _statuses(config, name) == [(1, "superseded"), (2, "superseded"), (3, "deployed")]
    assert config.status(name)["status"] == "deployed"
    _assert_available(server, name, 2)
    assert _greeting(server, name) == "hello"

    gone = config.uninstall(name, keep_history=True, wait="watcher", timeout=TIMEOUT)
    assert gone["release"]["status"] == "uninstalled"
    assert _statuses(config, name)[-1] == (3, "uninstalled")
    assert all(status != "failed" for _, status in _statuses(config, name))
    with server.http() as http:
        assert http.get(f"/apis/apps/v1/namespaces/{NS}/deployments/{name}").status_code == 404
        assert http.get(f"/api/v1/namespaces/{NS}/services/{name}").status_code == 404


def test_install_with_the_legacy_wait_and_purge(server: UpServer, config: Any) -> None:
    name = "legacy"
    release = config.install(str(CHART), name, {"replicaCount": 1}, wait="legacy", timeout=TIMEOUT)
    assert release["status"] == "deployed"
    _assert_available(server, name, 1)
    config.uninstall(name, wait="legacy", timeout=TIMEOUT)
    assert [r["name"] for r in config.list(all_states=True)].count(name) == 0
