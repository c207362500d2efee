"""Endpoints + EndpointSlice controller, as tables of pod states -> published endpoints."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from orchestra.reconcilers.endpoints import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    EndpointsController,
)
from tests.controller.harness import Api, make_api, pod, set_pod_status, wait_for

HTTP = [{"name": "http", "containerPort": 8080}]


async def _service(api: Api, **spec: Any) -> dict[str, Any]:
    body = {"selector": {"app": "web"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}], **spec}
    return await api.create("Service", {"metadata": {"name": "web", "labels": {"team": "a"}}, "spec": body})


def _slices(api: Api) -> list[dict[str, Any]]:
    return [
        s
        for s in api.list("EndpointSlice", "default")
        if s["metadata"]["labels"].get(SERVICE_NAME_LABEL) == "web"
    ]


async def _settle(api: Api) -> None:
    await trio.sleep(1)


# (pod state, expected Endpoints bucket, expected slice conditions or None when not in the slice)
CASES = [
    ("ready", "addresses", {"ready": True, "serving": True, "terminating": False}),
    ("not-ready", "notReadyAddresses", {"ready": False, "serving": False, "terminating": False}),
    ("no-ip", None, None),
    ("succeeded", None, None),
    ("terminating-ready", None, {"ready": False, "serving": True, "terminating": True}),
    ("other-labels", None, None),
]


async def _make_pod(api: Api, state: str) -> None:
    labels = {"app": "other"} if state == "other-labels" else {"app": "web"}
    await api.create("Pod", pod("p1", labels=labels, node="n1", ports=HTTP))
    if state == "no-ip":
        await set_pod_status(api, "p1", ready=False)
        return
    await set_pod_status(
        api,
        "p1",
        ip="10.1.0.7",
        ready=state in ("ready", "terminating-ready", "other-labels"),
        phase="Succeeded" if state == "succeeded" else "Running",
    )
    if state == "terminating-ready":
        await api.client.delete(api.rt("Pod"), "default", "p1")  # bound: graceful, stays Terminating


@pytest.mark.parametrize(("state", "bucket", "conditions"), CASES, ids=[c[0] for c in CASES])
async def test_pod_states(autojump_clock: trio.testing.MockClock, state: str, bucket: str | None,
                          conditions: dict[str, bool] | None) -> None:
    with trio.fail_after(60):
        api = await make_api()
        ctl = EndpointsController(api.client)
        async with trio.open_nursery() as nursery:
            await nursery.start(ctl.run)
            svc = await _service(api)
            await _make_pod(api, state)
            await _settle(api)
            nursery.cancel_scope.cancel()
        ep = api.get("Endpoints", "web")
        assert ep is not None and ep["metadata"]["labels"] == {"team": "a"}
        p1 = api.get("Pod", "p1")
        assert p1 is not None
        if bucket is None:
            assert ep.get("subsets", []) == []
        else:
            (subset,) = ep["subsets"]
            assert subset[bucket] == [{"ip": "10.1.0.7", "nodeName": "n1", "targetRef": {
                "kind": "Pod", "namespace": "default", "name": "p1", "uid": p1["metadata"]["uid"]}}]
            assert set(subset) == {bucket, "ports"}
            assert subset["ports"] == [
                {"name": "web", "port": 8080, "protocol": "TCP"}
            ]  # named targetPort resolved
        (slc,) = _slices(api)
        assert slc["metadata"]["labels"] == {
            "team": "a",
            SERVICE_NAME_LABEL: "web",
            MANAGED_BY_LABEL: MANAGED_BY,
        }
        assert slc["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]
        assert slc["metadata"]["name"].startswith("web-")
        if conditions is None:
            assert slc["endpoints"] == []
        else:
            (endpoint,) = slc["endpoints"]
            assert endpoint["conditions"] == conditions
            assert endpoint["addresses"] == ["10.1.0.7"] and endpoint["nodeName"] == "n1"
            assert endpoint["targetRef"]["name"] == "p1"
            assert slc["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
            assert slc["addressType"] == "IPv4"


async def test_follows_pods_and_cleans_up(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        ctl = EndpointsController(api.client, workers=2)
        async with trio.open_nursery() as nursery:
            await nursery.start(ctl.run)
            await _service(api, ports=[{"name": "web", "port": 80, "targetPort": 9000}])
            for i in range(3):
                await api.create("Pod", pod(f"p{i}", labels={"app": "web"}))
                await set_pod_status(api, f"p{i}", ip=f"10.1.0.{10 - i}", ready=i != 2)
            await _settle(api)
            (subset,) = api.get("Endpoints", "web")["subsets"]  # type: ignore[index]
            assert [a["ip"] for a in subset["addresses"]] == ["10.1.0.10", "10.1.0.9"]
            assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.1.0.8"]
            assert subset["ports"] == [{"name": "web", "port": 9000, "protocol": "TCP"}]
            (slc,) = _slices(api)
            assert len(slc["endpoints"]) == 3

            await set_pod_status(api, "p2", ip="10.1.0.8", ready=True)
            await api.client.delete(api.rt("Pod"), "default", "p0")  # unbound: gone at once
            await _settle(api)
            (subset,) = api.get("Endpoints", "web")["subsets"]  # type: ignore[index]
            assert [a["ip"] for a in subset["addresses"]] == ["10.1.0.8", "10.1.0.9"]
            assert "notReadyAddresses" not in subset
            assert len(_slices(api)) == 1

            await api.client.delete(api.rt("Service"), "default", "web")
            await wait_for(api, lambda: api.get("Endpoints", "web") is None and not _slices(api), limit=10)
            nursery.cancel_scope.cancel()


async def test_selectorless_service_is_left_alone(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        ctl = EndpointsController(api.client)
        async with trio.open_nursery() as nursery:
            await nursery.start(ctl.run)
            await api.create("Service", {"metadata": {"name": "ext"}, "spec": {"ports": [{"port": 80}]}})
            await api.create(
                "Endpoints",
                {
                    "metadata": {"name": "ext"},
                    "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}],
                },
            )
            await _settle(api)
            nursery.cancel_scope.cancel()
        assert api.get("Endpoints", "ext")["subsets"][0]["addresses"] == [{"ip": "192.0.2.1"}]  # type: ignore[index]
        assert [
            s
            for s in api.list("EndpointSlice", "default")
            if s["metadata"]["labels"].get(SERVICE_NAME_LABEL) == "ext"
        ] == []


async def test_publish_not_ready_addresses(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        ctl = EndpointsController(api.client)
        async with trio.open_nursery() as nursery:
            await nursery.start(ctl.run)
            await _service(api, publishNotReadyAddresses=True, clusterIP="None")
            await api.create("Pod", pod("p1", labels={"app": "web"}, ports=HTTP))
            await set_pod_status(api, "p1", ip="10.1.0.7", ready=False)
            await _settle(api)
            nursery.cancel_scope.cancel()
        ep = api.get("Endpoints", "web")
        assert ep is not None and [a["ip"] for a in ep["subsets"][0]["addresses"]] == ["10.1.0.7"]
        assert ep["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
        (slc,) = _slices(api)
        assert slc["endpoints"][0]["conditions"] == {"ready": True, "serving": False, "terminating": False}
