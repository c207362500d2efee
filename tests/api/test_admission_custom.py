"""The configurable admission plugins on custom resources: they see every create and update of a
custom kind with its group (as kube's admission chain does), and a custom kind named like a built-in
one (`Pod` in example.com) is not mistaken for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from orchestra.api.policy.admission import Attributes
from orchestra.api.policy.serviceaccount import ServiceAccountAdmission
from orchestra.api.registry import ResourceType
from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.reconcilers.crd import CRDController
from orchestra.store import Store

Obj = dict[str, Any]


class Recorder:
    name = "Recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, str]] = []

    async def admit(self, a: Attributes) -> None:
        self.seen.append((a.operation, a.group, a.kind, a.name))


def crd(kind: str, plural: str) -> Obj:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": plural, "kind": kind},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": schema}}]},
    }


@pytest.fixture
async def setup() -> AsyncIterator[tuple[ApiCore, Recorder]]:
    store = Store.open_memory()
    recorder = Recorder()
    core = ApiCore(store, admission=(ServiceAccountAdmission(suffix=lambda: "abcde"), recorder))
    await bootstrap(core)
    async with trio.open_nursery() as nursery:
        await nursery.start(CRDController(LocalClient(core)).run)
        yield core, recorder
        nursery.cancel_scope.cancel()
    store.close()


async def custom_kind(core: ApiCore, kind: str, plural: str) -> ResourceType:
    crd_rt = core.registry.by_kind("CustomResourceDefinition")
    assert crd_rt is not None
    await core.create(crd_rt, None, crd(kind, plural))
    with trio.fail_after(5):
        await trio.testing.wait_all_tasks_blocked()  # the CRD controller established it
    rt = core.registry.by_path("example.com", "v1", plural)
    assert rt is not None
    return rt


async def test_plugins_see_custom_resource_writes_with_their_group(setup: tuple[ApiCore, Recorder]) -> None:
    core, recorder = setup
    rt = await custom_kind(core, "Widget", "widgets")
    recorder.seen.clear()
    obj = (await core.create(rt, "default", {"apiVersion": "example.com/v1", "kind": "Widget",
                                              "metadata": {"name": "w"}, "spec": {"a": 1}})).obj
    obj["spec"]["a"] = 2
    await core.update(rt, "default", "w", obj)
    assert recorder.seen == [("CREATE", "example.com", "Widget", "w"),
                             ("UPDATE", "example.com", "Widget", "w")]


async def test_a_custom_kind_named_pod_is_not_a_pod(setup: tuple[ApiCore, Recorder]) -> None:
    core, _ = setup
    rt = await custom_kind(core, "Pod", "pods")
    assert rt.group == "example.com"
    created = (await core.create(rt, "default", {"apiVersion": "example.com/v1", "kind": "Pod",
                                                  "metadata": {"name": "p"}, "spec": {"x": 1}})).obj
    assert created["spec"] == {"x": 1}  # no serviceAccountName, no kube-api-access volume
