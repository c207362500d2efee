"""ReplicationController controller: the ReplicaSet controller's logic with an equality selector."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from orchestra.reconcilers.workloads.replication import ReplicationControllerController
from tests.controller.harness import Api
from tests.reconcilers.test_workloads_support import CLOCK, events, pods, running, set_pod, until

Obj = dict[str, Any]


def rc_factory(api: Api) -> ReplicationControllerController:
    return ReplicationControllerController(api.client, clock=CLOCK)


def rc(name: str = "web", replicas: int = 3, selector: dict[str, str] | None = None) -> Obj:
    spec: Obj = {
        "replicas": replicas,
        "template": {
            "metadata": {"labels": {"app": name, "tier": "fe"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        },
    }
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name}, "spec": spec}


def status(api: Api, name: str = "web") -> Obj:
    return api.get("ReplicationController", name).get("status") or {}  # type: ignore[union-attr]


async def test_creates_owned_pods_from_the_defaulted_selector(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with running(rc_factory) as api:
            created = await api.create("ReplicationController", rc(replicas=3))
            assert created["spec"]["selector"] == {"app": "web", "tier": "fe"}  # from the template's labels
            await until(api, lambda: len(pods(api, "app=web")) == 3)
            for p in pods(api, "app=web"):
                assert p["metadata"]["ownerReferences"] == [
                    {
                        "apiVersion": "v1",
                        "kind": "ReplicationController",
                        "name": "web",
                        "uid": created["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ]
                assert p["metadata"]["generateName"] == "web-"
            await until(api, lambda: len(events(api, "SuccessfulCreate")) == 3)
            for p in pods(api, "app=web"):
                await set_pod(api, p["metadata"]["name"])
            await until(api, lambda: status(api).get("readyReplicas") == 3)
            assert status(api) == {
                "replicas": 3,
                "fullyLabeledReplicas": 3,
                "readyReplicas": 3,
                "availableReplicas": 3,
                "observedGeneration": 1,
            }


async def test_scale_down_and_equality_selector_adoption(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with running(rc_factory) as api:
            stray = {
                "metadata": {"name": "stray", "labels": {"app": "web", "tier": "fe", "extra": "x"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            }
            other = {
                "metadata": {"name": "other", "labels": {"app": "web"}},  # lacks tier=fe: not selected
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            }
            await api.create("Pod", stray)
            await api.create("Pod", other)
            owner = await api.create("ReplicationController", rc(replicas=2))
            await until(api, lambda: len(pods(api, "app=web,tier=fe")) == 2)
            adopted = api.get("Pod", "stray")
            assert adopted["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]  # type: ignore[index]
            assert not api.get("Pod", "other")["metadata"].get("ownerReferences")  # type: ignore[index]
            current = api.get("ReplicationController", "web")
            current["spec"]["replicas"] = 0  # type: ignore[index]
            await api.client.update(api.rt("ReplicationController"), current)  # type: ignore[arg-type]
            await until(api, lambda: not pods(api, "app=web,tier=fe"))
            await until(
                api, lambda: status(api).get("replicas") == 0 and status(api).get("observedGeneration") == 2
            )
            assert api.get("Pod", "other") is not None
