"""Namespace lifecycle: deleting a namespace deletes its contents, waits for them, then finalizes."""

from __future__ import annotations

import pytest
import trio

from orchestra.reconcilers.namespace import NamespaceController
from tests.controller.harness import Api, make_api, pod, wait_for


def _gone(api: Api, name: str) -> bool:
    return api.get("Namespace", name, None) is None


@pytest.mark.parametrize(
    "contents",
    [
        [],
        [("ConfigMap", {"metadata": {"name": "cm"}})],
        [("ConfigMap", {"metadata": {"name": "cm"}}), ("Pod", pod("unbound")),
         ("Service", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
         ("Deployment", {"metadata": {"name": "d"}, "spec": {
             "selector": {"matchLabels": {"a": "b"}},
             "template": {"metadata": {"labels": {"a": "b"}},
                          "spec": {"containers": [{"name": "c", "image": "x"}]}},
         }})],
    ],
    ids=["empty", "configmap", "mixed-kinds"],
)
async def test_contents_deleted_then_namespace_removed(
    autojump_clock: trio.testing.MockClock, contents: list
) -> None:  # type: ignore[type-arg]
    with trio.fail_after(60):
        api = await make_api("team")
        for kind, body in contents:
            await api.create(kind, body, "team")
        await api.create("ConfigMap", {"metadata": {"name": "elsewhere"}}, "default")
        ctl = NamespaceController(api.client)
        async with trio.open_nursery() as nursery:
            await nursery.start(ctl.run)
            start = trio.current_time()
            await api.client.delete(api.rt("Namespace"), None, "team")
            ns = api.get("Namespace", "team", None)
            assert ns is not None and ns["status"]["phase"] == "Terminating"
            done = await wait_for(api, lambda: _gone(api, "team"), limit=10)
            assert done == start  # nothing waits: removed at once
            nursery.cancel_scope.cancel()
        for kind, _ in contents:
            assert api.list(kind, "team") == []
        assert api.get("ConfigMap", "elsewhere") is not None


async def test_waits_for_graceful_pods_and_finalizers(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(300):
        api = await make_api("team")
        await api.create("Pod", pod("bound", node="n1", terminationGracePeriodSeconds=30), "team")
        await api.create(
            "ConfigMap", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}, "team"
        )
        ctl = NamespaceController(api.client)
        async with trio.open_nursery() as nursery:
            await nursery.start(ctl.run)
            start = trio.current_time()
            await api.client.delete(api.rt("Namespace"), None, "team")
            await trio.sleep(5)
            bound = api.get("Pod", "bound", "team")
            assert bound is not None and bound["metadata"]["deletionTimestamp"]  # terminating, not gone
            assert not _gone(api, "team")
            # the node agent finishes the pod's termination
            await api.client.delete(api.rt("Pod"), "team", "bound", grace_period_seconds=0)
            await trio.sleep(60)
            assert not _gone(api, "team"), "a finalizer still holds a ConfigMap"
            held = api.get("ConfigMap", "held", "team")
            assert held is not None and held["metadata"]["deletionTimestamp"]
            ns = api.get("Namespace", "team", None)
            assert ns is not None
            conds = {c["type"]: c for c in ns["status"]["conditions"]}
            assert conds["NamespaceContentRemaining"]["status"] == "True"
            assert (
                conds["NamespaceContentRemaining"]["message"]
                == "Some resources are remaining: configmaps has 1 resource instances"
            )
            assert conds["NamespaceFinalizersRemaining"]["reason"] == "SomeFinalizersRemain"
            assert (
                "example.com/hold in 1 resource instances" in conds["NamespaceFinalizersRemaining"]["message"]
            )
            assert conds["NamespaceDeletionContentFailure"]["status"] == "False"
            await api.client.patch(api.rt("ConfigMap"), "team", "held", {"metadata": {"finalizers": None}})
            done = await wait_for(api, lambda: _gone(api, "team"), limit=100)
            assert done - start <= 65 + 60  # re-checked with backoff capped at 60 s
            nursery.cancel_scope.cancel()
