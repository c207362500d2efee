"""kr8s and lightkube, the two other popular Python clients, against a real `orchestra up`: create
(the answer carries `status`, which kr8s' wait reads), wait for a condition, scale, patch, watch, logs
and delete. Simulated nodes for the flows; the host's Podman node for logs with real output."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import kr8s
import lightkube
import lightkube.models.apps_v1 as apps_models
import lightkube.models.core_v1 as core_models
import pytest
from kr8s._async_utils import Portal
from kr8s.objects import Deployment as Kr8sDeployment
from kr8s.objects import Pod as Kr8sPod
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.resources.apps_v1 import Deployment as LkDeployment
from lightkube.resources.core_v1 import Pod as LkPod

from tests.e2e.upserver import UpServer, orchestra_up

pytestmark = pytest.mark.slow

NS = "default"
IMAGE = "localhost/busybox:latest"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpServer]:
    with orchestra_up(tmp_path_factory.mktemp("clients") / "state") as up:
        yield up


@contextmanager
def kr8s_api(server: UpServer) -> Iterator[Any]:
    """kr8s' synchronous API; closed at the end. kr8s has no public close: its httpx session lives
    on the event loop of kr8s' own thread (its Portal), where it must be closed, or its sockets are
    left to the garbage collector (an unraisable ResourceWarning, an error under pytest)."""
    api = kr8s.api(kubeconfig=str(server.kubeconfig))
    try:
        yield api
    finally:
        if api._session is not None:
            Portal().call(api._session.aclose)


def _until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _deployment_doc(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "c", "image": IMAGE,
                                                       "command": ["sleep", "3600"]}]}}},
    }


def _gone(server: UpServer, path: str) -> bool:
    with server.http() as http:
        return http.get(path).status_code == 404


def test_kr8s_flow(server: UpServer) -> None:
    with kr8s_api(server) as api:
        _kr8s_flow(server, api)


def _kr8s_flow(server: UpServer, api: Any) -> None:
    deploy = Kr8sDeployment(_deployment_doc("kr"), api=api)
    deploy.create()
    assert deploy.raw["status"] == {}  # what kube answers; kr8s' wait reads .status at once
    deploy.wait("condition=Available", timeout=30)

    deploy.scale(3)

    def three_ready() -> bool:
        deploy.refresh()
        return bool(deploy.raw["status"].get("readyReplicas") == 3)

    _until(three_ready, "3 ready replicas")
    deploy.patch({"metadata": {"labels": {"tier": "web"}}})
    assert deploy.labels == {"tier": "web"}

    seen = set()
    with closing(api.watch("pods", namespace=NS, label_selector={"app": "kr"})) as events:
        for event, pod in events:
            assert event == "ADDED"
            seen.add(pod.name)
            if len(seen) == 3:
                break
    pods = list(api.get("pods", namespace=NS, label_selector={"app": "kr"}))
    assert {p.name for p in pods} == seen
    assert list(pods[0].logs()) == []  # a simulated container writes nothing (Podman: see below)

    deploy.delete()
    _until(lambda: _gone(server, f"/apis/apps/v1/namespaces/{NS}/deployments/kr"), "the deletion")


def test_lightkube_flow(server: UpServer) -> None:
    with closing(lightkube.Client(config=lightkube.KubeConfig.from_file(str(server.kubeconfig)))) as client:
        _lightkube_flow(server, client)


def _lightkube_flow(server: UpServer, client: lightkube.Client) -> None:
    labels = {"app": "lk"}
    created = client.create(LkDeployment(
        metadata=ObjectMeta(name="lk", namespace=NS),
        spec=apps_models.DeploymentSpec(
            replicas=1, selector=LabelSelector(matchLabels=labels),
            template=core_models.PodTemplateSpec(
                metadata=ObjectMeta(labels=labels),
                spec=core_models.PodSpec(containers=[core_models.Container(name="c", image=IMAGE)])))))
    assert created.status is not None
    client.wait(LkDeployment, "lk", namespace=NS, for_conditions=["Available"])

    scale = client.get(LkDeployment.Scale, "lk", namespace=NS)
    assert scale.spec.replicas == 1 and scale.status.selector == "app=lk"
    client.patch(LkDeployment.Scale, "lk", {"spec": {"replicas": 2}}, namespace=NS)
    client.patch(LkDeployment, "lk", {"metadata": {"labels": {"tier": "web"}}}, namespace=NS)
    assert client.get(LkDeployment, "lk", namespace=NS).metadata.labels == {"tier": "web"}

    seen = set()
    with closing(client.watch(LkPod, namespace=NS, labels=labels)) as events:
        for event, pod in events:
            assert event in ("ADDED", "MODIFIED")
            seen.add(pod.metadata.name)
            if len(seen) == 2:
                break
    pods = list(client.list(LkPod, namespace=NS, labels=labels))
    assert {p.metadata.name for p in pods} == seen
    assert list(client.log(pods[0].metadata.name, namespace=NS)) == []

    client.delete(LkDeployment, "lk", namespace=NS)
    _until(lambda: _gone(server, f"/apis/apps/v1/namespaces/{NS}/deployments/lk"), "the deletion")


@pytest.mark.podman
def test_logs_of_a_podman_pod(tmp_path: Path) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "talker", "namespace": NS},
           "spec": {"terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "c", "image": IMAGE,
                                    "command": ["sh", "-c", "echo hello from talker; sleep 3600"]}]}}
    with orchestra_up(tmp_path / "state", podman=True) as server, kr8s_api(server) as api:
        talker = Kr8sPod(pod, api=api)
        talker.create()
        talker.wait("condition=Ready", timeout=60)
        _until(lambda: list(talker.logs()) == ["hello from talker"], "the kr8s log line")
        config = lightkube.KubeConfig.from_file(str(server.kubeconfig))
        with closing(lightkube.Client(config=config)) as client:
            assert list(client.log("talker", namespace=NS)) == ["hello from talker\n"]
        talker.delete()
        _until(lambda: _gone(server, f"/api/v1/namespaces/{NS}/pods/talker"), "the pod's deletion")
