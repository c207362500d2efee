"""Node agent test harness: the real store, API core and LocalClient, a runtime, and an agent
that can be stopped and started again (an orchestra restart) while the runtime keeps running."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio
from kubernetes.client import ApiClient

from orchestra.api.policy.tolerationseconds import DefaultTolerationSeconds
from orchestra.api.request.core import ApiCore
from orchestra.client.local import LocalClient
from orchestra.node.agent import AgentConfig, NodeAgent
from orchestra.node.registration import simulated_host
from orchestra.runtime.base import EventType, Runtime, RuntimeEvent
from orchestra.runtime.simulated import SimScript, SimulatedRuntime
from orchestra.store import Store

Obj = dict[str, Any]
NODE = "node-1"


@attrs.define
class Env:
    store: Store
    core: ApiCore
    client: LocalClient
    runtime: Runtime
    state_dir: Path
    nursery: trio.Nursery
    agent: NodeAgent | None = None
    agent_scope: trio.CancelScope | None = None
    config: dict[str, Any] = attrs.field(factory=dict)
    events: list[tuple[float, RuntimeEvent]] = attrs.field(factory=list)

    def rt(self, kind: str) -> Any:
        return self.client.kind(kind)

    async def start_agent(self, **overrides: Any) -> NodeAgent:
        extra_env = overrides.pop("extra_env", self.config.get("extra_env"))
        cfg = {"node_name": NODE, "state_dir": self.state_dir, "probe_mode": "exec", "resolv_conf": None,
               "host": simulated_host(NODE, 1, "simulated://4.3.1-sim"), **self.config, **overrides}
        cfg.pop("extra_env", None)
        agent = NodeAgent(self.client, self.runtime, AgentConfig(**cfg), extra_env=extra_env)

        async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with trio.CancelScope() as scope:
                self.agent_scope = scope
                await agent.run(task_status=task_status)

        await self.nursery.start(run)
        self.agent = agent
        return agent

    async def stop_agent(self) -> None:
        assert self.agent_scope is not None
        self.agent_scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        self.agent = None

    async def create_pod(self, name: str, containers: list[Obj], **spec: Any) -> Obj:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default",
                                                                "labels": spec.pop("labels", {"app": name})},
               "spec": {"nodeName": NODE, "containers": containers, **spec}}
        return await self.client.create(self.rt("Pod"), "default", pod)

    def pod(self, name: str, namespace: str = "default") -> Obj | None:
        rt = self.rt("Pod")
        if self.store.get(rt.key(namespace, name)) is None:
            return None
        return self.core.get(rt, namespace, name)

    async def wait_pod(self, name: str, pred: Callable[[Obj | None], bool], *, limit: float = 600.0,
                       step: float = 0.05) -> Obj | None:
        """Poll the API until pred(pod) holds (virtual time under the autojump clock)."""
        with trio.fail_after(limit):
            while True:
                pod = self.pod(name)
                if pred(pod):
                    return pod
                await trio.sleep(step)

    def started_times(self, container: str) -> list[float]:
        return [t for t, e in self.events if e.type == EventType.STARTED and not e.infra
                and e.labels.get("orchestra.io/container-name") == container]

    def died_times(self, container: str) -> list[float]:
        return [t for t, e in self.events if e.type == EventType.DIED and not e.infra
                and e.labels.get("orchestra.io/container-name") == container]

    async def k8s_events(self) -> list[Obj]:
        items, _ = await self.client.list(self.rt("Event"), "default")
        return items


async def _record(env: Env, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    async with env.runtime.events() as events:
        task_status.started()
        async for event in events:
            env.events.append((trio.current_time(), event))


@asynccontextmanager
async def open_env(tmp_path: Path, script: SimScript | None = None, *, runtime: Runtime | None = None,
                   start: bool = True, tokens: Any = None, **config: Any) -> AsyncIterator[Env]:
    """`tokens`: the API core's TokenIssuer (serviceaccounts/token), when the test needs one."""
    store = Store.open_memory()
    core = ApiCore(store, tokens=tokens, admission=(DefaultTolerationSeconds(),))
    client = LocalClient(core, field_manager="kubelet")
    for ns in ("default", "kube-node-lease", "kube-system"):
        await client.create(client.kind("Namespace"), None, {"metadata": {"name": ns}})
    async with trio.open_nursery() as nursery:
        if runtime is None:
            sim = SimulatedRuntime(script or SimScript())
            await nursery.start(sim.run)
            runtime = sim
        env = Env(store, core, client, runtime, tmp_path, nursery, config=config)
        await nursery.start(_record, env)
        if start:
            await env.start_agent()
        try:
            yield env
        finally:
            nursery.cancel_scope.cancel()


def state(pod: Obj | None, container: str = "c", key: str = "containerStatuses") -> Obj:
    for cs in ((pod or {}).get("status") or {}).get(key) or []:
        if cs.get("name") == container:
            return dict(cs)
    return {}


def waiting_reason(pod: Obj | None, container: str = "c") -> str:
    return str(((state(pod, container).get("state") or {}).get("waiting") or {}).get("reason", ""))


def condition(pod: Obj | None, ctype: str) -> str:
    for c in ((pod or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return str(c.get("status"))
    return ""


def phase(pod: Obj | None) -> str:
    return str(((pod or {}).get("status") or {}).get("phase", ""))


def deserialize(obj: Obj, model: str) -> Any:
    """Fails like the official client would on a missing required field."""
    return ApiClient()._ApiClient__deserialize(obj, model)  # type: ignore[attr-defined]


def gaps(starts: list[float], deaths: list[float]) -> list[float]:
    """Delay between each death and the next start."""
    out = []
    for died in deaths:
        later = [s for s in starts if s >= died]
        if later:
            out.append(round(min(later) - died, 1))
    return out


INF = math.inf
