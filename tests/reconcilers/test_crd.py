"""Custom kinds and the cluster controllers: the garbage collector follows owner references between
custom resources and built-in objects in both directions (it learns custom kinds as CRDs come), and
deleting a namespace deletes the custom resources in it."""

from __future__ import annotations

from typing import Any

import trio

from orchestra.reconcilers.crd import CRDController
from orchestra.reconcilers.garbage_collector import GarbageCollector
from orchestra.reconcilers.namespace import NamespaceController
from tests.api.test_custom_resources import widget, widget_crd
from tests.controller.harness import Api, make_api, owner_ref, wait_for


async def _established(api: Api) -> None:
    await api.create("CustomResourceDefinition", widget_crd(), namespace=None)
    await wait_for(api, lambda: api.client.registry.by_kind("Widget") is not None, limit=10)


async def test_owner_references_between_custom_and_builtin(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        async with trio.open_nursery() as nursery:
            await nursery.start(CRDController(api.client).run)
            await nursery.start(GarbageCollector(api.client).run)  # started before the CRD exists
            await _established(api)
            owner: Any = await api.create("Widget", widget("owner"))
            cm = await api.create(
                "ConfigMap", {"metadata": {"name": "made", "ownerReferences": [owner_ref(owner)]}}
            )
            await api.create("Widget", {**widget("kid"), "metadata": {"name": "kid",
                                                                      "ownerReferences": [owner_ref(cm)]}})
            await api.client.delete(api.rt("Widget"), "default", "owner")
            await wait_for(api, lambda: api.get("ConfigMap", "made") is None, limit=20)
            await wait_for(api, lambda: api.get("Widget", "kid") is None, limit=20)
            nursery.cancel_scope.cancel()


async def test_namespace_deletion_removes_custom_resources(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api("shop")
        async with trio.open_nursery() as nursery:
            await nursery.start(CRDController(api.client).run)
            await nursery.start(NamespaceController(api.client).run)
            await _established(api)
            await api.create("Widget", widget("w"), namespace="shop")
            await api.client.delete(api.rt("Namespace"), None, "shop")
            await wait_for(api, lambda: api.get("Namespace", "shop", namespace=None) is None, limit=60)
            assert api.list("Widget", "shop") == []
            nursery.cancel_scope.cancel()
