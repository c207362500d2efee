"""APIService auto-registration: kube-aggregator's table (checkAPIService) for the built-in groups
(sync on start) and for the CRDs' group/versions (sync always, as kube's crdregistration controller
registers them)."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from orchestra.reconcilers.apiservices import (
    MANAGED_LABEL,
    AutoRegisterController,
    api_services,
    crd_api_service,
)
from tests.controller.harness import Api, make_api, wait_for

Obj = dict[str, Any]
SERVED = [
    ("", "v1"),
    ("apps", "v1"),
    ("events.k8s.io", "v1"),
    ("metrics.k8s.io", "v1beta1"),
    ("example.com", "v1"),
]


def names(api: Api) -> list[str]:
    return sorted(s["metadata"]["name"] for s in api.list("APIService"))


async def run_once(api: Api, desired: list[Obj], nursery: trio.Nursery) -> trio.CancelScope:
    """Start an autoregister controller (a server start) and wait until it has synced everything."""
    scope = trio.CancelScope()
    controller = AutoRegisterController(api.client, desired)

    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await controller.run(task_status=task_status)

    await nursery.start(run)
    await wait_for(
        api, lambda: (controller.queue.statistics().depth, controller.queue.statistics().processing) == (0, 0)
    )
    await trio.testing.wait_all_tasks_blocked()
    return scope


def test_the_served_groups_become_local_api_services() -> None:
    made = {s["metadata"]["name"]: s for s in api_services(SERVED)}
    assert sorted(made) == ["v1.", "v1.apps", "v1.events.k8s.io", "v1beta1.metrics.k8s.io"]  # no example.com
    assert made["v1."]["spec"] == {
        "group": "",
        "version": "v1",
        "groupPriorityMinimum": 18000,
        "versionPriority": 1,
    }
    assert made["v1.apps"]["spec"]["groupPriorityMinimum"] == 17800
    assert all(
        s["metadata"]["labels"] == {MANAGED_LABEL: "onstart"} and "service" not in s["spec"]
        for s in made.values()
    )


async def test_created_once_per_start_and_put_back_at_the_next(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        api = await make_api()
        async with trio.open_nursery() as nursery:
            desired = api_services(SERVED)
            first = await run_once(api, desired, nursery)
            assert names(api) == ["v1.", "v1.apps", "v1.events.k8s.io", "v1beta1.metrics.k8s.io"]
            apps = api.get("APIService", "v1.apps", None)
            assert apps["status"]["conditions"][0]["reason"] == "Local"  # type: ignore[index]
            # after the start, a delete or an edit stays (sync on start: "create once", "update once")
            await api.client.delete(api.rt("APIService"), None, "v1.apps")
            edited = api.get("APIService", "v1.events.k8s.io", None)
            edited["spec"]["versionPriority"] = 99  # type: ignore[index]
            await api.client.update(api.rt("APIService"), edited)  # type: ignore[arg-type]
            await trio.sleep(10)
            assert "v1.apps" not in names(api)
            first.cancel()
            # the next start (an orchestra restart) puts both back
            await run_once(api, desired, nursery)
            assert "v1.apps" in names(api)
            assert api.get("APIService", "v1.events.k8s.io", None)["spec"]["versionPriority"] == 15  # type: ignore[index]
            nursery.cancel_scope.cancel()


async def test_a_group_no_longer_served_is_removed_and_user_services_are_left(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        api = await make_api()
        users = {
            "metadata": {"name": "v1.user.example.com"},
            "spec": {
                "group": "user.example.com",
                "version": "v1",
                "groupPriorityMinimum": 100,
                "versionPriority": 10,
            },
        }
        await api.create("APIService", users, None)
        async with trio.open_nursery() as nursery:
            first = await run_once(api, api_services(SERVED), nursery)
            first.cancel()
            await run_once(api, api_services([("", "v1")]), nursery)  # a start that serves less
            assert names(api) == ["v1.", "v1.user.example.com"]
            nursery.cancel_scope.cancel()


# --- the CRDs' group/versions (kube's crdregistration controller feeding autoregister) -----------

SCHEMA = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}


def crd(plural: str, kind: str, versions: dict[str, bool], group: str = "example.com") -> Obj:
    """A CRD serving `versions` (name -> served; the first is the storage version)."""
    return {
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "kind": kind},
            "versions": [
                {"name": name, "served": served, "storage": i == 0, "schema": SCHEMA}
                for i, (name, served) in enumerate(versions.items())
            ],
        },
    }


async def set_versions(api: Api, name: str, versions: dict[str, bool]) -> None:
    current: Any = api.get("CustomResourceDefinition", name, None)
    current["spec"]["versions"] = [
        {"name": n, "served": served, "storage": i == 0, "schema": SCHEMA}
        for i, (n, served) in enumerate(versions.items())
    ]
    await api.client.update(api.rt("CustomResourceDefinition"), current)


async def delete_crd(api: Api, name: str) -> None:
    """Delete a CRD and let it go (the CRD controller would remove its cleanup finalizer once its
    objects are gone; there are none here)."""
    await api.client.delete(api.rt("CustomResourceDefinition"), None, name)
    current: Any = api.get("CustomResourceDefinition", name, None)
    if current is not None:
        current["metadata"]["finalizers"] = []
        await api.client.update(api.rt("CustomResourceDefinition"), current)


async def test_a_crd_group_version_has_a_local_api_service_while_a_crd_serves_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        api = await make_api()
        async with trio.open_nursery() as nursery:
            await run_once(api, api_services(SERVED), nursery)
            assert "v1.example.com" not in names(api)  # example.com is served, but no CRD names it
            await api.create("CustomResourceDefinition", crd("widgets", "Widget", {"v1": True, "v2": False}),
                             None)
            await wait_for(api, lambda: "v1.example.com" in names(api))
            made: Any = api.get("APIService", "v1.example.com", None)
            assert made["metadata"]["labels"] == {MANAGED_LABEL: "true"}
            assert made["spec"] == {"group": "example.com", "version": "v1", "groupPriorityMinimum": 1000,
                                    "versionPriority": 100}  # no spec.service: Local
            assert [(c["type"], c["status"], c["reason"]) for c in made["status"]["conditions"]] == [
                ("Available", "True", "Local")]
            assert "v2.example.com" not in names(api)  # v2 is not served

            # kept in line for as long as it is wanted: a delete or an edit is put back at once
            await api.client.delete(api.rt("APIService"), None, "v1.example.com")
            await wait_for(api, lambda: "v1.example.com" in names(api))
            made = api.get("APIService", "v1.example.com", None)
            made["spec"]["versionPriority"] = 7
            await api.client.update(api.rt("APIService"), made)
            await wait_for(api, lambda: api.get("APIService", "v1.example.com", None)["spec"][  # type: ignore[index]
                "versionPriority"] == 100)

            # serving another version adds its APIService; another CRD of the group keeps v1's alive
            await set_versions(api, "widgets.example.com", {"v1": True, "v2": True})
            await wait_for(api, lambda: "v2.example.com" in names(api))
            await api.create("CustomResourceDefinition", crd("gadgets", "Gadget", {"v1": True}), None)
            await delete_crd(api, "widgets.example.com")
            await wait_for(api, lambda: "v2.example.com" not in names(api))
            assert "v1.example.com" in names(api)
            await set_versions(api, "gadgets.example.com", {"v1": False})  # no CRD serves v1 now
            await wait_for(api, lambda: "v1.example.com" not in names(api))
            await set_versions(api, "gadgets.example.com", {"v1": True})
            await wait_for(api, lambda: "v1.example.com" in names(api))
            await delete_crd(api, "gadgets.example.com")
            await wait_for(api, lambda: "v1.example.com" not in names(api))
            assert names(api) == ["v1.", "v1.apps", "v1.events.k8s.io", "v1beta1.metrics.k8s.io"]
            nursery.cancel_scope.cancel()


async def test_at_a_start_crd_api_services_follow_the_crds_stored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        api = await make_api()
        await api.create("CustomResourceDefinition", crd("widgets", "Widget", {"v1": True}), None)
        for group in ("example.com", "gone.example.com"):  # left by an earlier run of the server
            await api.create("APIService", crd_api_service(group, "v1"), None)
        kept: Any = api.get("APIService", "v1.example.com", None)
        async with trio.open_nursery() as nursery:
            await run_once(api, api_services(SERVED), nursery)
            assert "v1.gone.example.com" not in names(api)  # no CRD serves it any more
            assert api.get("APIService", "v1.example.com", None)["metadata"]["uid"] == (  # type: ignore[index]
                kept["metadata"]["uid"])  # the CRDs were read before anything was synced: never deleted
            nursery.cancel_scope.cancel()
