"""Test support for the workload controllers: the real store + API core + LocalClient, a virtual
wall clock derived from trio's, and a fake kubelet that drives pod status through update_status."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
import trio.testing

from orchestra.api.errors import Conflict, NotFound
from orchestra.api.machinery.selectors import parse_label_selector
from orchestra.controller import Controller, Informer
from orchestra.controller.clock import Clock, virtual_clock
from orchestra.objects import format_time
from tests.controller.harness import Api, make_api, wait_for

Obj = dict[str, Any]
CLOCK: Clock = virtual_clock()


@asynccontextmanager
async def running(
    *controllers: Callable[[Api], Controller], namespaces: tuple[str, ...] = ()
) -> AsyncIterator[Api]:
    """An API with the given controllers (factories taking the Api) running; cancelled on exit."""
    api = await make_api(*namespaces)
    async with trio.open_nursery() as nursery:
        for factory in controllers:
            await nursery.start(factory(api).run)
        yield api
        nursery.cancel_scope.cancel()


def pods(api: Api, selector: str = "", namespace: str = "default") -> list[Obj]:
    sel = parse_label_selector(selector)
    return sorted((p for p in api.list("Pod", namespace) if sel.matches(p["metadata"].get("labels"))),
                  key=lambda p: p["metadata"]["name"])


def active(api: Api, selector: str = "") -> list[Obj]:
    return [p for p in pods(api, selector) if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")]


async def set_pod(api: Api, name: str, *, phase: str = "Running", ready: bool = True, restarts: int = 0,
                  exit_code: int | None = None, namespace: str = "default") -> Obj | None:
    """The fake kubelet: one status write for pod `name` (virtual-clock timestamps)."""
    for _ in range(10):
        cur = api.get("Pod", name, namespace)
        if cur is None:
            return None
        st = cur.setdefault("status", {})
        now = format_time(CLOCK())
        old = {c["type"]: c for c in st.get("conditions") or []}
        want = "True" if ready and phase == "Running" else "False"
        ready_cond = old.get("Ready") or {"type": "Ready"}
        if ready_cond.get("status") != want:
            ready_cond = {"type": "Ready", "status": want, "lastTransitionTime": now}
        st["phase"] = phase
        st["conditions"] = [ready_cond]
        cs: Obj = {
            "name": "c",
            "restartCount": restarts,
            "ready": want == "True",
            "image": "busybox",
            "imageID": "",
            "started": phase == "Running",
        }
        if phase in ("Succeeded", "Failed"):
            code = exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1)
            cs["state"] = {
                "terminated": {
                    "exitCode": code,
                    "finishedAt": now,
                    "reason": "Completed" if code == 0 else "Error",
                }
            }
        else:
            cs["state"] = {"running": {"startedAt": now}}
        st["containerStatuses"] = [cs]
        try:
            return await api.client.update_status(api.rt("Pod"), cur)
        except Conflict:
            continue
        except NotFound:
            return None
    raise AssertionError(f"could not update pod {name}")


@attrs.define
class FakeKubelet:
    """Marks every new pod matching `selector` Running (and Ready) `delay` seconds after creation;
    pods with a deletionTimestamp are removed (their grace period is not simulated)."""

    api: Api
    delay: float = 1.0
    ready: bool = True
    seen: set[str] = attrs.field(factory=set)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        informer = Informer(self.api.client, self.api.rt("Pod"))
        send, receive = trio.open_memory_channel[tuple[str, Obj]](10_000)

        def handler(event_type: str, old: Obj | None, new: Obj | None) -> None:
            if new is not None:
                send.send_nowait((event_type, new))

        informer.add_handler(handler)
        async with trio.open_nursery() as nursery:
            await nursery.start(informer.run)
            task_status.started()
            async for _, pod in receive:
                m = pod["metadata"]
                if m.get("deletionTimestamp"):
                    nursery.start_soon(self._remove, m["name"], m["uid"])
                elif m["uid"] not in self.seen and pod.get("status", {}).get("phase") == "Pending":
                    self.seen.add(m["uid"])
                    nursery.start_soon(self._start, m["name"])

    async def _start(self, name: str) -> None:
        await trio.sleep(self.delay)
        await set_pod(self.api, name, ready=self.ready)

    async def _remove(self, name: str, uid: str) -> None:
        try:
            await self.api.client.delete(self.api.rt("Pod"), "default", name, grace_period_seconds=0, uid=uid)
        except (NotFound, Conflict):
            pass  # already gone


async def settle(api: Api) -> None:
    """Let every task run until the system is idle (no store change pending)."""
    for _ in range(3):
        await trio.testing.wait_all_tasks_blocked()


async def until(api: Api, pred: Callable[[], bool], limit: float = 10_000.0) -> float:
    return await wait_for(api, pred, limit=limit)


def events(api: Api, reason: str | None = None, name: str | None = None) -> list[str]:
    out = []
    for e in api.list("Event", "default"):
        if (reason is None or e["reason"] == reason) and (
            name is None or e["involvedObject"]["name"] == name
        ):
            out.append(e["message"])
    return out
