"""APIService auto-registration: kube-aggregator's sync-on-start table (checkAPIService)."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from orchestra.reconcilers.apiservices import MANAGED_LABEL, AutoRegisterController, api_services
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
