"""The resourcequota controller and the quota admission on one API core: status.hard/used kept from
the objects of the namespace, charges made at admission, usage given back on deletes and terminal
pods, periodic recalculation, and concurrent creates against the last unit of a quota."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from orchestra.api.errors import Conflict, Forbidden
from orchestra.api.request.core import ApiCore
from orchestra.client.local import LocalClient
from orchestra.controller.clock import virtual_clock
from orchestra.reconcilers.resourcequota import RESYNC, ResourceQuotaController
from orchestra.store import Store
from tests.controller.harness import Api, make_api, pod, set_pod_status, wait_for

Obj = dict[str, Any]


def quota(name: str, hard: dict[str, str], **spec: Any) -> Obj:
    return {"metadata": {"name": name}, "spec": {"hard": hard, **spec}}


def used(api: Api, name: str = "q", namespace: str = "default") -> dict[str, str] | None:
    q = api.get("ResourceQuota", name, namespace)
    return None if q is None else (q.get("status") or {}).get("used")


@asynccontextmanager
async def controller(api: Api) -> AsyncIterator[ResourceQuotaController]:
    ctl = ResourceQuotaController(api.client, clock=virtual_clock())
    async with trio.open_nursery() as nursery:
        await nursery.start(ctl.run)
        yield ctl
        nursery.cancel_scope.cancel()


async def synced(api: Api, name: str, hard: dict[str, str], namespace: str = "default", **spec: Any) -> None:
    await api.create("ResourceQuota", quota(name, hard, **spec), namespace)
    await wait_for(api, lambda: used(api, name, namespace) is not None)


def cpu_pod(name: str, cpu: str) -> Obj:
    obj = pod(name)
    obj["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}
    return obj


async def test_status_counts_what_was_there_before_the_quota(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        await api.create("Pod", cpu_pod("a", "500m"))
        await api.create("Pod", pod("b"))
        await api.create("Pod", cpu_pod("done", "2"))
        await set_pod_status(api, "done", phase="Succeeded")
        await api.create("ConfigMap", {"metadata": {"name": "cm"}})
        async with controller(api):
            await synced(api, "q", {"pods": "10", "count/pods": "10", "configmaps": "5", "cpu": "1Gi"})
            q = api.get("ResourceQuota", "q")
            assert q is not None
            assert q["status"] == {
                "hard": {"configmaps": "5", "count/pods": "10", "cpu": "1Gi", "pods": "10"},
                "used": {"configmaps": "1", "count/pods": "3", "cpu": "500m", "pods": "2"},
            }


async def test_admission_charges_and_controller_gives_back(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        async with controller(api):
            await synced(api, "q", {"pods": "2"})
            await api.create("Pod", pod("a"))
            await api.create("Pod", pod("b"))
            assert used(api) == {"pods": "2"}  # charged at admission, before the pods were stored
            with pytest.raises(Forbidden) as exc:
                await api.create("Pod", pod("c"))
            assert exc.value.message == (
                'pods "c" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2'
            )
            assert exc.value.status()["details"] == {"name": "c", "kind": "pods"}
            assert api.get("Pod", "c") is None
            await set_pod_status(api, "a", phase="Failed")  # a terminal pod stops counting
            await wait_for(api, lambda: used(api) == {"pods": "1"})
            await api.create("Pod", pod("c"))
            await api.client.delete(api.rt("Pod"), "default", "b")
            await wait_for(api, lambda: used(api) == {"pods": "1"})


async def test_scoped_quotas_charge_only_their_pods(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        async with controller(api):
            await synced(api, "besteffort", {"pods": "1"}, scopes=["BestEffort"])
            await synced(api, "burstable", {"pods": "5", "requests.cpu": "1"}, scopes=["NotBestEffort"])
            await api.create("Pod", pod("free"))
            await api.create("Pod", cpu_pod("paid", "250m"))
            assert used(api, "besteffort") == {"pods": "1"}
            assert used(api, "burstable") == {"pods": "1", "requests.cpu": "250m"}
            with pytest.raises(Forbidden, match="exceeded quota: besteffort"):
                await api.create("Pod", pod("free2"))
            await api.create("Pod", cpu_pod("paid2", "750m"))


async def test_hard_changes_and_resync_repair_status(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(RESYNC * 3):
        api = await make_api()
        async with controller(api):
            await synced(api, "q", {"pods": "1"})
            await api.create("Pod", pod("a"))
            q = api.get("ResourceQuota", "q")
            assert q is not None
            q["spec"]["hard"] = {"pods": "3", "services": "1"}
            await api.client.update(api.rt("ResourceQuota"), q)
            await wait_for(api, lambda: used(api) == {"pods": "1", "services": "0"})
            q = api.get("ResourceQuota", "q")
            assert q is not None and q["status"]["hard"] == {"pods": "3", "services": "1"}
            q["status"]["used"] = {"pods": "3", "services": "0"}  # a lost charge: wrong until the resync
            await api.client.update_status(api.rt("ResourceQuota"), q)
            start = trio.current_time()
            fixed = await wait_for(api, lambda: used(api) == {"pods": "1", "services": "0"})
            assert 0 < fixed - start <= RESYNC


async def test_concurrent_creates_take_the_last_unit_once(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        async with controller(api):
            await synced(api, "q", {"pods": "1", "count/configmaps": "1"})
            outcomes: list[str] = []

            async def create(kind: str, body: Obj) -> None:
                try:
                    await api.create(kind, body)
                    outcomes.append(f"{kind} created")
                except Forbidden:
                    outcomes.append(f"{kind} refused")

            async with trio.open_nursery() as nursery:
                for i in range(20):
                    nursery.start_soon(create, "Pod", pod(f"p{i}"))
                    nursery.start_soon(create, "ConfigMap", {"metadata": {"name": f"c{i}"}})
            assert sorted(outcomes).count("Pod created") == 1
            assert sorted(outcomes).count("ConfigMap created") == 1
            assert len(api.list("Pod", "default")) == 1 and len(api.list("ConfigMap", "default")) == 1
            assert used(api) == {"count/configmaps": "1", "pods": "1"}


class InterferingStore:
    """The real store, except that a write to `key` is first preceded by `value` written there (as if
    another API server charged the quota between our read and our compare-and-swap), `times` times."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.key = ""
        self.value = b""
        self.times = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def put(self, key: str, value: bytes, *, expect_mod_revision: int | None = None) -> Any:
        if key == self.key and self.times:
            self.times -= 1
            self.store.put(key, self.value)
        return self.store.put(key, value, expect_mod_revision=expect_mod_revision)

    async def aput(self, key: str, value: bytes, *, expect_mod_revision: int | None = None) -> Any:
        return self.put(key, value, expect_mod_revision=expect_mod_revision)  # (the API core's write)


async def interfering_api() -> tuple[Api, InterferingStore]:
    store = InterferingStore(Store.open_memory())
    core = ApiCore(store)  # type: ignore[arg-type]
    api = Api(store, core, LocalClient(core))  # type: ignore[arg-type]
    await api.create("Namespace", {"metadata": {"name": "default"}}, None)
    q = await api.create("ResourceQuota", quota("q", {"pods": "1"}))
    q["status"] = {"hard": {"pods": "1"}, "used": {"pods": "0"}}
    await api.client.update_status(api.rt("ResourceQuota"), q)
    return api, store


async def test_a_quota_charged_meanwhile_is_read_again() -> None:
    with trio.fail_after(10):
        api, store = await interfering_api()
        charged = api.get("ResourceQuota", "q")
        assert charged is not None
        charged["status"]["used"] = {"pods": "1"}
        del charged["metadata"]["resourceVersion"]
        store.key = api.rt("ResourceQuota").key("default", "q")
        store.value, store.times = api.core.codec.encode(store.key, charged), 1
        with pytest.raises(Forbidden, match="exceeded quota: q, requested: pods=1, used: pods=1"):
            await api.create("Pod", pod("late"))
        assert api.get("Pod", "late") is None


async def test_a_quota_that_keeps_changing_ends_in_conflict() -> None:
    with trio.fail_after(10):
        api, store = await interfering_api()
        unchanged = api.get("ResourceQuota", "q")
        assert unchanged is not None
        del unchanged["metadata"]["resourceVersion"]
        store.key = api.rt("ResourceQuota").key("default", "q")
        store.value, store.times = api.core.codec.encode(store.key, unchanged), 10
        with pytest.raises(Conflict) as exc:
            await api.create("Pod", pod("p"))
        assert exc.value.message.startswith('Operation cannot be fulfilled on resourcequotas "q"')
        assert api.get("Pod", "p") is None and store.times == 6  # one try and kube's three retries


async def test_dry_run_is_checked_but_not_charged(autojump_clock: trio.testing.MockClock) -> None:
    from orchestra.api.request.types import WriteOptions

    with trio.fail_after(60):
        api = await make_api()
        async with controller(api):
            await synced(api, "q", {"pods": "1"})
            await api.core.create(api.rt("Pod"), "default", pod("a"), WriteOptions(dry_run=True))
            assert used(api) == {"pods": "0"}
            await api.create("Pod", pod("a"))
            with pytest.raises(Forbidden):
                await api.core.create(api.rt("Pod"), "default", pod("b"), WriteOptions(dry_run=True))


async def test_a_replicaset_over_quota_reports_kubes_failure(autojump_clock: trio.testing.MockClock) -> None:
    from orchestra.reconcilers.workloads.replicaset import ReplicaSetController

    with trio.fail_after(120):
        api = await make_api()
        async with controller(api):
            await synced(api, "q", {"pods": "2"})
            rs = ReplicaSetController(api.client)
            async with trio.open_nursery() as nursery:
                await nursery.start(rs.run)
                labels = {"app": "web"}
                await api.create(
                    "ReplicaSet",
                    {
                        "metadata": {"name": "web"},
                        "spec": {
                            "replicas": 3,
                            "selector": {"matchLabels": labels},
                            "template": {"metadata": {"labels": labels}, "spec": pod("x")["spec"]},
                        },
                    },
                )

                def failure() -> Obj | None:
                    got = api.get("ReplicaSet", "web")
                    conditions = ((got or {}).get("status") or {}).get("conditions") or []
                    return next((c for c in conditions if c["type"] == "ReplicaFailure"), None)

                await wait_for(api, lambda: failure() is not None)
                assert len(api.list("Pod", "default")) == 2
                condition = failure()
                assert condition is not None and condition["reason"] == "FailedCreate"
                assert (
                    "is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
                    in condition["message"]
                )
                events = [e for e in api.list("Event", "default") if e["reason"] == "FailedCreate"]
                assert events and events[0]["message"].startswith('Error creating: pods "web-')
                nursery.cancel_scope.cancel()


async def test_replication_controllers_and_pod_templates_count(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """kube's object-count quota: `replicationcontrollers` (its legacy name) and `count/...` of the
    kinds served beside ReplicaSets, charged at admission and recounted by the controller."""
    template = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    rc = {"spec": {"replicas": 0, "selector": {"app": "a"}, "template": template}}
    with trio.fail_after(60):
        api = await make_api()
        await api.create("ReplicationController", {"metadata": {"name": "old"}, **rc})
        async with controller(api):
            await synced(api, "q", {"replicationcontrollers": "2", "count/replicationcontrollers": "2",
                                    "count/podtemplates": "1"})
            assert used(api) == {"replicationcontrollers": "1", "count/replicationcontrollers": "1",
                                 "count/podtemplates": "0"}
            await api.create("ReplicationController", {"metadata": {"name": "new"}, **rc})
            with pytest.raises(Forbidden, match="exceeded quota: q"):
                await api.create("ReplicationController", {"metadata": {"name": "third"}, **rc})
            await api.create("PodTemplate", {"metadata": {"name": "t1"}, "template": template})
            with pytest.raises(Forbidden, match="exceeded quota: q, requested: count/podtemplates=1"):
                await api.create("PodTemplate", {"metadata": {"name": "t2"}, "template": template})
            await api.client.delete(api.rt("ReplicationController"), "default", "old")
            await wait_for(api, lambda: (used(api) or {}).get("replicationcontrollers") == "1")
            assert used(api) == {"replicationcontrollers": "1", "count/replicationcontrollers": "1",
                                 "count/podtemplates": "1"}
