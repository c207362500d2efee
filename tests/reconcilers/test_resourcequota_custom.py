"""Object-count quotas on custom resources (`count/<plural>.<group>`), as kube's quota admission and
resourcequota controller count any resource: the controller starts counting a kind when its CRD is
established, admission charges and refuses creates, deletes are given back."""

from __future__ import annotations

import pytest
import trio

from orchestra.api.errors import Forbidden
from orchestra.reconcilers.crd import CRDController
from orchestra.reconcilers.resourcequota import RESYNC
from tests.api.test_custom_resources import widget, widget_crd
from tests.controller.harness import make_api, wait_for
from tests.reconcilers.test_resourcequota import controller, quota, used

COUNT = "count/widgets.example.com"


async def test_custom_resources_count_against_object_count_quotas(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        api = await make_api()
        async with trio.open_nursery() as nursery:
            await nursery.start(CRDController(api.client).run)
            async with controller(api):
                # the quota names the kind before any CRD serves it: nothing measures it yet
                await api.create("ResourceQuota", quota("q", {COUNT: "2", "configmaps": "5"}))
                await wait_for(api, lambda: used(api) == {"configmaps": "0"})
                start = trio.current_time()
                await api.create("CustomResourceDefinition", widget_crd(), None)
                # counted as soon as the kind is served, not at the next resync
                at = await wait_for(api, lambda: used(api) == {COUNT: "0", "configmaps": "0"})
                assert at - start < RESYNC
                await api.create("Widget", widget("a"))
                await api.create("Widget", widget("b"))
                assert used(api) == {COUNT: "2", "configmaps": "0"}  # charged at admission
                with pytest.raises(Forbidden) as exc:
                    await api.create("Widget", widget("c"))
                assert exc.value.message == (
                    'widgets.example.com "c" is forbidden: exceeded quota: q, requested: '
                    f"{COUNT}=1, used: {COUNT}=2, limited: {COUNT}=2"
                )
                start = trio.current_time()
                await api.client.delete(api.rt("Widget"), "default", "a")
                at = await wait_for(api, lambda: used(api) == {COUNT: "1", "configmaps": "0"})
                assert at - start < RESYNC  # given back on the delete event (replenishment)
                await api.create("Widget", widget("c"))
                assert used(api) == {COUNT: "2", "configmaps": "0"}
            nursery.cancel_scope.cancel()
