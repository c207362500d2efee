"""The kinds and subresources real clients probe, on the API core (no HTTP): ReplicationController's
scale, events.k8s.io/v1 Events served from the stored core/v1 Events, pods/ephemeralcontainers,
APIService's strategy and validation."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
import trio

from orchestra.api.errors import BadRequest, Conflict, Invalid, MethodNotAllowed, NotFound
from orchestra.api.machinery.selectors import parse_field_selector
from orchestra.api.policy.strategy import takes_write
from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.api.request.core import ApiCore
from orchestra.api.request.types import WriteOptions
from orchestra.api.request.watch import watch
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store

Obj = dict[str, Any]
EVENTS_V1 = ("events.k8s.io", "events")
EVENTS_V1_PATH = ("events.k8s.io", "v1", "events")


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store)
    await bootstrap(c)
    yield c
    store.close()


def rt(core: ApiCore, group: str, plural: str) -> Any:
    t = core.registry.by_path(group, "v1", plural)  # a type served over another's objects too
    assert t is not None
    return t


def rc_body(name: str = "web") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"labels": {"app": name, "tier": "fe"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


async def test_replication_controller_scale_uses_its_equality_selector(core: ApiCore) -> None:
    rcs = rt(core, "", "replicationcontrollers")
    await core.create(rcs, "default", rc_body())
    scale = core.get_scale(rcs, "default", "web")
    assert scale["spec"] == {"replicas": 2} and scale["status"] == {
        "replicas": 0,
        "selector": "app=web,tier=fe",
    }
    patched = await core.update_scale(
        rcs, "default", "web", b'{"spec":{"replicas":5}}', "application/merge-patch+json"
    )
    assert patched["spec"]["replicas"] == 5
    assert core.get(rcs, "default", "web")["spec"]["replicas"] == 5
    listed = core.list(
        rcs, "default", field_selector=parse_field_selector("status.replicas=0", "ReplicationController")
    )
    assert [o["metadata"]["name"] for o in listed.items] == ["web"]


def event_v1(name: str = "e1", **fields: Any) -> Obj:
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name},
        "eventTime": "2024-05-01T10:00:00.000000Z",
        "reportingController": "example.com/ctl",
        "reportingInstance": "ctl-1",
        "action": "Sync",
        "reason": "Synced",
        "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
        "note": "synced",
        **fields,
    }


async def test_events_v1_are_core_events_in_another_version(core: ApiCore) -> None:
    v1, legacy = rt(core, *EVENTS_V1), rt(core, "", "events")
    created = (await core.create(v1, "default", event_v1())).obj
    assert created["apiVersion"] == "events.k8s.io/v1" and created["note"] == "synced"
    stored = core.get(legacy, "default", "e1")  # one object, served in both versions
    assert stored["message"] == "synced" and stored["involvedObject"]["name"] == "p"
    assert stored["reportingComponent"] == "example.com/ctl" and "note" not in stored
    assert stored["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    core_made = {
        "metadata": {"name": "old"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started",
        "message": "hi",
        "source": {"component": "kubelet"},
        "count": 2,
        "firstTimestamp": "2024-05-01T10:00:00Z",
        "lastTimestamp": "2024-05-01T10:00:05Z",
    }
    await core.create(legacy, "default", core_made)
    old = core.get(v1, "default", "old")
    assert old["eventTime"] is None and old["deprecatedCount"] == 2 and old["note"] == "hi"
    assert old["deprecatedSource"] == {"component": "kubelet"} and old["regarding"]["name"] == "p"
    names = sorted(o["metadata"]["name"] for o in core.list(v1, "default").items)
    assert names == ["e1", "old"]


def test_events_v1_is_a_type_served_over_the_stored_core_events() -> None:
    """The same mechanism as autoscaling/v1: `stored_as` names the stored type; only that is walked."""
    v1, legacy = DEFAULT_REGISTRY.by_path(*EVENTS_V1_PATH), DEFAULT_REGISTRY.by_kind("Event")
    assert v1 is not None and legacy is not None and (legacy.group, legacy.stored_as) == ("", "")
    assert (v1.stored_as, v1.storage_group, v1.definition) == ("v1", "", "io.k8s.api.events.v1.Event")
    assert v1.key("default", "e") == legacy.key("default", "e") == "/registry/core/events/default/e"
    assert v1.key_prefix() == legacy.key_prefix()
    # the garbage collector, namespace deletion and the quota controller see each Event once
    assert [t.group for t in DEFAULT_REGISTRY.types if t.kind == "Event"] == [""]
    assert DEFAULT_REGISTRY.resolve("events.events.k8s.io") is v1 and DEFAULT_REGISTRY.resolve("ev") is legacy
    # discovery and the APIServices: every served group/version, autoscaling at both
    served = DEFAULT_REGISTRY.group_versions()
    assert {("events.k8s.io", "v1"), ("autoscaling", "v2"), ("autoscaling", "v1")} <= set(served)
    assert served.index(("autoscaling", "v2")) < served.index(("autoscaling", "v1"))


TAKES_WRITE = [
    ("object", "", "", "pods", "update", True),
    ("pod-status", "", "status", "pods", "patch", True),
    ("ephemeral-patch", "", "ephemeralcontainers", "pods", "patch", True),
    ("finalize-update", "", "finalize", "namespaces", "update", True),
    ("finalize-patch", "", "finalize", "namespaces", "patch", False),
    ("scale-has-its-own-verb", "apps", "scale", "deployments", "update", False),
    ("no-status-on-events-v1", "events.k8s.io", "status", "events", "update", False),
    ("no-status-on-core-events", "", "status", "events", "patch", False),
    ("ephemeral-only-on-pods", "apps", "ephemeralcontainers", "deployments", "patch", False),
]


@pytest.mark.parametrize(("group", "sub", "plural", "verb", "takes"), [c[1:] for c in TAKES_WRITE],
                         ids=[c[0] for c in TAKES_WRITE])
def test_which_subresources_update_and_patch_write(group: str, sub: str, plural: str, verb: str,
                                                   takes: bool) -> None:
    t = DEFAULT_REGISTRY.by_path(group, "v1", plural)
    assert t is not None
    assert takes_write(t, sub, verb) is takes


async def test_events_v1_server_side_apply(core: ApiCore) -> None:
    v1, legacy = rt(core, *EVENTS_V1), rt(core, "", "events")
    opts = WriteOptions(field_manager="tool")
    apply = "application/apply-patch+yaml"
    made = (await core.patch(v1, "default", "e1", apply, json.dumps(event_v1()).encode(), opts)).obj
    assert made["apiVersion"] == "events.k8s.io/v1" and made["note"] == "synced"
    assert [m["manager"] for m in made["metadata"]["managedFields"]] == ["tool"]
    series = {"series": {"count": 2, "lastObservedTime": "2024-05-01T10:01:00.000000Z"}}
    again = (await core.patch(v1, "default", "e1", apply, json.dumps(event_v1(**series)).encode(), opts)).obj
    assert again["series"]["count"] == 2 and again["note"] == "synced"
    stored = core.get(legacy, "default", "e1")
    assert stored["message"] == "synced" and stored["series"]["count"] == 2 and "note" not in stored
    with pytest.raises(Invalid, match=re.escape('Event.events.k8s.io "e1" is invalid')):
        await core.patch(v1, "default", "e1", apply, json.dumps(event_v1(note="changed")).encode(), opts)


FIELD_SELECTORS = [
    ("regarding.name=p", ["e1", "e2"]),
    ("regarding.kind=Node", ["n1"]),
    ("reportingController=example.com/other", ["e2"]),
    ("type=Warning", ["n1"]),
    ("metadata.name=e1", ["e1"]),
]


@pytest.mark.parametrize(("selector", "expected"), FIELD_SELECTORS, ids=[s for s, _ in FIELD_SELECTORS])
async def test_events_v1_field_selectors_use_the_new_names(
    core: ApiCore, selector: str, expected: list[str]
) -> None:
    v1 = rt(core, *EVENTS_V1)
    await core.create(v1, "default", event_v1("e1"))
    await core.create(v1, "default", event_v1("e2", reportingController="example.com/other"))
    await core.create(v1, "default", event_v1("n1", type="Warning", regarding={"kind": "Node", "name": "n"}))
    field = parse_field_selector(selector, "Event", "events.k8s.io")
    assert (
        sorted(o["metadata"]["name"] for o in core.list(v1, "default", field_selector=field).items)
        == expected
    )


def test_events_v1_refuse_core_field_labels() -> None:
    with pytest.raises(BadRequest, match=re.escape("field label not supported: involvedObject.name")):
        parse_field_selector("involvedObject.name=p", "Event", "events.k8s.io")


async def test_events_v1_errors_name_the_version(core: ApiCore) -> None:
    v1 = rt(core, *EVENTS_V1)
    with pytest.raises(NotFound) as nf:
        core.get(v1, "default", "nope")
    assert nf.value.status()["message"] == 'events.events.k8s.io "nope" not found'
    assert nf.value.status()["details"] == {"name": "nope", "group": "events.k8s.io", "kind": "events"}
    with pytest.raises(Invalid) as inv:
        await core.create(v1, "default", event_v1(action=""))
    assert inv.value.message == 'Event.events.k8s.io "e1" is invalid: action: Required value'
    await core.create(v1, "default", event_v1())
    with pytest.raises(Invalid, match=re.escape('message: Invalid value: "other": field is immutable')):
        await core.patch(v1, "default", "e1", "application/merge-patch+json", b'{"note":"other"}')
    with pytest.raises(Conflict, match=re.escape('on events.events.k8s.io "e1"')):
        await core.update(
            v1, "default", "e1", {**event_v1(), "metadata": {"name": "e1", "resourceVersion": "1"}}
        )
    with pytest.raises(MethodNotAllowed):
        await core.update(v1, "default", "e1", event_v1(), subresource="status")


async def test_events_v1_patch_update_delete(core: ApiCore) -> None:
    v1 = rt(core, *EVENTS_V1)
    await core.create(v1, "default", event_v1())
    series = {"series": {"count": 2, "lastObservedTime": "2024-05-01T10:01:00.000000Z"}}
    patched = (
        await core.patch(v1, "default", "e1", "application/merge-patch+json", json.dumps(series).encode())
    ).obj
    assert patched["series"]["count"] == 2 and patched["apiVersion"] == "events.k8s.io/v1"
    labelled = (
        await core.patch(
            v1,
            "default",
            "e1",
            "application/strategic-merge-patch+json",
            b'{"metadata":{"labels":{"a":"b"}}}',
        )
    ).obj
    assert labelled["metadata"]["labels"] == {"a": "b"} and labelled["series"]["count"] == 2
    deleted, gone = await core.delete(v1, "default", "e1")
    assert gone and deleted["apiVersion"] == "events.k8s.io/v1"
    with pytest.raises(NotFound):
        core.get(rt(core, "", "events"), "default", "e1")


async def test_events_v1_watch_converts_every_event(core: ApiCore) -> None:
    v1, legacy = rt(core, *EVENTS_V1), rt(core, "", "events")
    await core.create(v1, "default", event_v1("before"))
    seen: list[tuple[str, str, str]] = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def follow() -> None:
                stream = watch(core, v1, "default", resource_version="0", bookmark_interval=0.01)
                async with aclosing(stream) as events:  # type: ignore[type-var]
                    async for kind, obj in events:
                        seen.append((kind, obj.get("apiVersion"), obj.get("metadata", {}).get("name", "")))
                        if kind == "DELETED":
                            return

            nursery.start_soon(follow)
            await trio.testing.wait_all_tasks_blocked()
            await core.create(
                legacy,
                "default",
                {
                    "metadata": {"name": "core"},
                    "reason": "X",
                    "message": "m",
                    "involvedObject": {"kind": "Node", "name": "n"},
                },
            )
            await core.delete(v1, "default", "before")
    added = [s for s in seen if s[0] != "BOOKMARK"]
    assert added == [
        ("ADDED", "events.k8s.io/v1", "before"),
        ("ADDED", "events.k8s.io/v1", "core"),
        ("DELETED", "events.k8s.io/v1", "before"),
    ]
    assert all(s[1] == "events.k8s.io/v1" for s in seen)


# --- pods/ephemeralcontainers ------------------------------------------------------------------------------

POD = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app", "image": "busybox"}]}}
DEBUGGER = {"name": "debugger", "image": "busybox", "stdin": True, "tty": True, "targetContainerName": "app"}


async def test_ephemeral_containers_subresource(core: ApiCore) -> None:
    pods = rt(core, "", "pods")
    await core.create(pods, "default", POD)
    body = json.dumps(
        {
            "spec": {"ephemeralContainers": [DEBUGGER]},
            "metadata": {"labels": {"ignored": "x"}},
            "status": {"phase": "Failed"},
        }
    ).encode()
    out = (
        await core.patch(
            pods,
            "default",
            "p",
            "application/strategic-merge-patch+json",
            body,
            subresource="ephemeralcontainers",
        )
    ).obj
    ec = out["spec"]["ephemeralContainers"][0]
    assert ec["targetContainerName"] == "app" and ec["terminationMessagePolicy"] == "File"
    assert ec["imagePullPolicy"] == "Always" and ec["resources"] == {}  # defaulted like any container
    assert "ignored" not in (out["metadata"].get("labels") or {})  # only ephemeral containers change
    assert out["status"]["phase"] == "Pending"
    second = {"spec": {"ephemeralContainers": [DEBUGGER, {"name": "two", "image": "busybox"}]}}
    out = (
        await core.patch(
            pods,
            "default",
            "p",
            "application/merge-patch+json",
            json.dumps(second).encode(),
            subresource="ephemeralcontainers",
        )
    ).obj
    assert [c["name"] for c in out["spec"]["ephemeralContainers"]] == ["debugger", "two"]
    current = core.get(pods, "default", "p")
    current["spec"]["ephemeralContainers"] = current["spec"]["ephemeralContainers"][1:]
    with pytest.raises(
        Invalid, match=re.escape('existing ephemeral containers "debugger" may not be removed')
    ):
        await core.update(pods, "default", "p", current, subresource="ephemeralcontainers")
    bad = {
        "spec": {
            "ephemeralContainers": [
                *out["spec"]["ephemeralContainers"],
                {"name": "p3", "image": "busybox", "ports": [{"containerPort": 80}]},
            ]
        }
    }
    with pytest.raises(
        Invalid,
        match=re.escape(
            "spec.ephemeralContainers[2].ports: Forbidden: cannot be set for an Ephemeral Container"
        ),
    ):
        await core.patch(
            pods,
            "default",
            "p",
            "application/merge-patch+json",
            json.dumps(bad).encode(),
            subresource="ephemeralcontainers",
        )
    with pytest.raises(NotFound):
        await core.patch(
            pods, "default", "nope", "application/merge-patch+json", b"{}", subresource="ephemeralcontainers"
        )
    with pytest.raises(MethodNotAllowed):
        await core.patch(
            rt(core, "apps", "deployments"),
            "default",
            "p",
            "application/merge-patch+json",
            b"{}",
            subresource="ephemeralcontainers",
        )


# --- APIService -----------------------------------------------------------------------------------------


async def test_api_service_strategy_and_validation(core: ApiCore) -> None:
    services = rt(core, "apiregistration.k8s.io", "apiservices")
    local = {
        "metadata": {"name": "v1.example.com"},
        "spec": {
            "group": "example.com",
            "version": "v1",
            "groupPriorityMinimum": 1000,
            "versionPriority": 15,
        },
    }
    made = (await core.create(services, None, local)).obj
    assert made["status"]["conditions"][0] | {"lastTransitionTime": ""} == {
        "type": "Available",
        "status": "True",
        "reason": "Local",
        "message": "Local APIServices are always available",
        "lastTransitionTime": "",
    }
    assert "generation" not in made["metadata"]
    remote = {
        "metadata": {"name": "v1.remote.example.com"},
        "spec": {
            "group": "remote.example.com",
            "version": "v1",
            "groupPriorityMinimum": 1000,
            "versionPriority": 15,
            "service": {"namespace": "ns", "name": "svc"},
        },
    }
    made = (await core.create(services, None, remote)).obj
    assert made["spec"]["service"]["port"] == 443 and made["status"] == {}
    wrong = {**local, "metadata": {"name": "v2.example.com"}}
    with pytest.raises(
        Invalid,
        match=re.escape(
            'metadata.name: Invalid value: "v2.example.com": must be `spec.version+"."+spec.group`: '
            '"v1.example.com"'
        ),
    ):
        await core.create(services, None, wrong)
    low = {
        "metadata": {"name": "v1.x.io"},
        "spec": {"group": "x.io", "version": "v1", "groupPriorityMinimum": 0, "versionPriority": 15},
    }
    with pytest.raises(
        Invalid,
        match=re.escape("spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000"),
    ):
        await core.create(services, None, low)
