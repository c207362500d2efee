"""spec.schedulingGates: kube's validation (create and update), the SchedulingGated condition set on
create, the scheduler leaving gated pods alone until the last gate is removed, and the printer."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.api.errors import Invalid
from orchestra.api.policy.defaults import default
from orchestra.api.policy.validation import validate
from orchestra.api.tables.pods import pod_status_reason
from tests.controller.harness import make_api
from tests.reconcilers.test_scheduler_helpers import (
    add_nodes,
    events,
    node,
    node_of,
    running,
    scheduled_condition,
    spod,
    wait_bound,
)

Obj = dict[str, Any]
ONLY_DELETION = "only deletion is allowed, but found new scheduling gate"
GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"


def pod(**spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}], **spec},
    }


def errors(obj: Obj, old: Obj | None = None) -> list[str]:
    new = default("Pod", copy.deepcopy(obj))
    return [
        f"{c.field}: {c.message}"
        for c in validate("Pod", new, default("Pod", copy.deepcopy(old)) if old else None)
    ]


def gates(*names: str) -> list[Obj]:
    return [{"name": n} for n in names]


QNAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


@pytest.mark.parametrize(
    ("obj", "old", "want"),
    [
        (pod(schedulingGates=gates("example.com/foo", "bar")), None, []),
        (pod(schedulingGates=gates("a", "a")), None, ['spec.schedulingGates[1]: Duplicate value: "a"']),
        (
            pod(schedulingGates=gates("-x")),
            None,
            [f'spec.schedulingGates[0]: Invalid value: "-x": {QNAME_MSG}'],
        ),
        (
            pod(schedulingGates=gates("a"), nodeName="n1"),
            None,
            ["spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared"],
        ),
        (pod(schedulingGates=gates("a")), pod(schedulingGates=gates("a", "b")), []),
        (pod(), pod(schedulingGates=gates("a", "b")), []),
        (
            pod(schedulingGates=gates("a", "c")),
            pod(schedulingGates=gates("a", "b")),
            [f"spec.schedulingGates[1].name: Forbidden: {ONLY_DELETION} 'c'"],
        ),
        (
            pod(schedulingGates=gates("a")),
            pod(),
            [f"spec.schedulingGates[0].name: Forbidden: {ONLY_DELETION} 'a'"],
        ),
    ],
    ids=[
        "valid",
        "duplicate",
        "not-qualified",
        "with-node-name",
        "remove-one",
        "remove-all",
        "replace",
        "add",
    ],
)
def test_gate_validation(obj: Obj, old: Obj | None, want: list[str]) -> None:
    assert errors(obj, old) == want


async def test_update_adding_a_gate_is_422() -> None:
    api = await make_api()
    await api.create("Pod", spod("p", schedulingGates=gates("a")))
    with pytest.raises(Invalid) as info:
        await api.client.patch(api.rt("Pod"), "default", "p", {"spec": {"schedulingGates": gates("a", "b")}})
    status = info.value.status()
    assert status["code"] == 422
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "field": "spec.schedulingGates[1].name",
            "message": "Forbidden: only deletion is allowed, but found new scheduling gate 'b'",
        }
    ]


async def test_create_sets_scheduling_gated_condition() -> None:
    api = await make_api()
    created = await api.create("Pod", spod("p", schedulingGates=gates("a")))
    assert created["status"]["conditions"] == [
        {
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": None,
            "lastTransitionTime": None,
            "reason": "SchedulingGated",
            "message": GATED_MESSAGE,
        }
    ]
    assert pod_status_reason(created)[0] == "SchedulingGated"
    plain = await api.create("Pod", spod("q"))
    assert "conditions" not in plain["status"]


async def test_scheduler_waits_for_the_last_gate(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        api = await make_api()
        await add_nodes(api, node("a"))
        async with running(api) as scheduler:
            await api.create(
                "Pod", spod("gated", schedulingGates=gates("example.com/one", "example.com/two"))
            )
            await api.create("Pod", spod("free"))
            await wait_bound(api, "free")
            await trio.sleep(30)
            assert node_of(api, "gated") is None and not events(api, "FailedScheduling", "gated")
            assert (scheduled_condition(api, "gated") or {}).get("reason") == "SchedulingGated"
            await api.client.patch(
                api.rt("Pod"), "default", "gated", {"spec": {"schedulingGates": gates("example.com/two")}}
            )
            await trio.sleep(30)
            assert node_of(api, "gated") is None and scheduler.statistics().attempts == 1
            removed = trio.current_time()
            await api.client.patch(api.rt("Pod"), "default", "gated", {"spec": {"schedulingGates": None}})
            bound_at = await wait_bound(api, "gated")
            assert bound_at - removed < 0.01  # scheduled at once
            assert (scheduled_condition(api, "gated") or {}).get("status") == "True"
