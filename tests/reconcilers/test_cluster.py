"""All cluster controllers together on one API: a namespace with a Service and pods goes away whole."""

from __future__ import annotations

import functools

import trio

from orchestra.controller import Controller
from orchestra.reconcilers.cluster import run_cluster_controllers
from orchestra.reconcilers.node_lifecycle import FAST_TIMINGS
from tests.controller.harness import make_api, owner_ref, pod, set_pod_status, wait_for


async def test_namespace_with_service_and_owned_pods_is_removed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(120):
        api = await make_api("shop", "kube-node-lease")
        owner = await api.create("ConfigMap", {"metadata": {"name": "owner"}}, "shop")
        await api.create(
            "Service",
            {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
            "shop",
        )
        for i in range(3):
            await api.create("Pod", pod(f"p{i}", labels={"app": "web"}, owner=owner_ref(owner)), "shop")
            await set_pod_status(api, f"p{i}", ip=f"10.2.0.{i + 1}", ready=True, namespace="shop")
        async with trio.open_nursery() as nursery:
            controllers: list[Controller] = await nursery.start(
                functools.partial(run_cluster_controllers, api.client, timings=FAST_TIMINGS))
            assert {c.name for c in controllers} == {
                "garbage-collector-controller",
                "namespace-controller",
                "node-controller",
                "endpoint-controller",
                "disruption-controller",
                "persistentvolume-controller",
                "storage-protection-controller",
                "resourcequota-controller",
            }
            await wait_for(
                api,
                lambda: (
                    bool(api.list("EndpointSlice", "shop"))
                    and api.get("Endpoints", "web", "shop") is not None
                ),
            )
            assert len(api.get("Endpoints", "web", "shop")["subsets"][0]["addresses"]) == 3  # type: ignore[index]
            await api.client.delete(
                api.rt("ConfigMap"), "shop", "owner"
            )  # background: the GC removes the pods
            await wait_for(api, lambda: not api.list("Pod", "shop"))
            await wait_for(api, lambda: not api.get("Endpoints", "web", "shop")["subsets"])  # type: ignore[index]
            await api.client.delete(api.rt("Namespace"), None, "shop")
            await wait_for(api, lambda: api.get("Namespace", "shop", None) is None)
            for kind in ("Service", "Endpoints", "EndpointSlice", "Event"):
                assert api.list(kind, "shop") == []
            nursery.cancel_scope.cancel()
