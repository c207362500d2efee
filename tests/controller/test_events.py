"""EventRecorder: Kubernetes-shaped Events, aggregation of repeats, spam filter, never blocking."""

from __future__ import annotations

import pytest
import trio

from orchestra.client.http import TransportError
from orchestra.controller import NORMAL, WARNING, EventRecorder
from tests.controller.harness import make_api


async def _pod(api):  # type: ignore[no-untyped-def]
    return await api.create(
        "Pod", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    )


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([("Warning", "FailedScheduling", "m1")] * 3, [("FailedScheduling", "m1", 3)]),
        ([("Normal", "Pulled", "a"), ("Normal", "Pulled", "b")], [("Pulled", "a", 1), ("Pulled", "b", 1)]),
        ([("Normal", "X", "m"), ("Warning", "X", "m")], [("X", "m", 1), ("X", "m", 1)]),
        ([("Normal", "A", "m"), ("Normal", "B", "m"), ("Normal", "A", "m")], [("A", "m", 2), ("B", "m", 1)]),
    ],
    ids=["repeat-aggregates", "new-message-new-event", "type-distinguishes", "interleaved"],
)
async def test_aggregation(autojump_clock: trio.testing.MockClock, records: list[tuple[str, str, str]],
                           expected: list[tuple[str, str, int]]) -> None:
    with trio.fail_after(60):
        api = await make_api()
        pod = await _pod(api)
        rec = EventRecorder(api.client, "default-scheduler")
        async with trio.open_nursery() as nursery:
            await nursery.start(rec.run)
            for type_, reason, message in records:
                rec.event(pod, type_, reason, message)
                await trio.sleep(1)
            nursery.cancel_scope.cancel()
        events = api.list("Event", "default")
        assert sorted((e["reason"], e["message"], e["count"]) for e in events) == sorted(expected)
        for e in events:
            assert e["involvedObject"] == {
                "kind": "Pod",
                "name": "p",
                "namespace": "default",
                "uid": pod["metadata"]["uid"],
                "resourceVersion": pod["metadata"]["resourceVersion"],
                "apiVersion": "v1",
            }
            assert e["source"] == {"component": "default-scheduler"}
            assert e["reportingComponent"] == "default-scheduler"
            assert e["type"] in (NORMAL, WARNING)
            assert e["metadata"]["name"].startswith("p.")
            assert e["firstTimestamp"] <= e["lastTimestamp"]


async def test_cluster_scoped_object_events_go_to_default(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        node = await api.create("Node", {"metadata": {"name": "n1"}}, None)
        rec = EventRecorder(api.client, "node-controller")
        rec.event(node, NORMAL, "NodeNotReady", "Node n1 status is now: NodeNotReady")
        await rec.flush()
        (event,) = api.list("Event", "default")
        assert event["involvedObject"]["kind"] == "Node" and "namespace" not in event["involvedObject"]


async def test_spam_filter_and_refill(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        api = await make_api()
        pod = await _pod(api)
        rec = EventRecorder(api.client, "c")
        for i in range(30):
            rec.event(pod, NORMAL, "R", f"message {i}")
        assert rec.statistics().dropped_spam == 5  # burst of 25
        await trio.sleep(300)  # one token back after 5 minutes
        rec.event(pod, NORMAL, "R", "after refill")
        rec.event(pod, NORMAL, "R", "dropped again")
        await rec.flush()
        stats = rec.statistics()
        assert (stats.created, stats.dropped_spam) == (26, 6)
        assert len(api.list("Event", "default")) == 26


async def test_never_blocks_and_drops_when_full() -> None:
    with trio.fail_after(5):
        api = await make_api()
        pod = await _pod(api)
        rec = EventRecorder(api.client, "c", buffer=2, spam_burst=100)
        for i in range(5):
            rec.event(pod, NORMAL, "R", str(i))  # no writer task running: must not block
        assert rec.statistics().dropped_full == 3
        await rec.flush()
        assert rec.statistics().created == 2


async def test_expired_aggregate_starts_a_new_event(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        pod = await _pod(api)
        rec = EventRecorder(api.client, "c")
        rec.event(pod, NORMAL, "R", "m")
        await rec.flush()
        (first,) = api.list("Event", "default")
        await api.client.delete(api.rt("Event"), "default", first["metadata"]["name"])
        rec.event(pod, NORMAL, "R", "m")
        await rec.flush()
        (second,) = api.list("Event", "default")
        assert second["count"] == 1 and second["metadata"]["name"] != first["metadata"]["name"]


class _Unreachable:
    """A client whose server went away mid-write (HttpClient raises TransportError, an OSError)."""

    def __init__(self, client: object) -> None:
        self.client, self.calls = client, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.client, name)

    async def create(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        if self.calls == 1:
            raise TransportError("POST events at https://127.0.0.1:1: connection reset")
        return await self.client.create(*args, **kwargs)  # type: ignore[attr-defined]


async def test_an_event_lost_with_the_server_is_dropped_and_the_writer_goes_on(
        autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        api = await make_api()
        pod = await _pod(api)
        rec = EventRecorder(_Unreachable(api.client), "kubelet")  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            await nursery.start(rec.run)
            rec.event(pod, NORMAL, "Lost", "written while the server died")
            await trio.sleep(1)
            rec.event(pod, NORMAL, "Kept", "written through the next server")
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
        assert [e["reason"] for e in api.list("Event", "default")] == ["Kept"]
        assert rec.statistics().failed == 1
