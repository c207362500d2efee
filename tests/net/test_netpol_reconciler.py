"""The NetworkPolicy enforcer (net/netpol/reconciler.py) over the real API core: pod, namespace-label
and policy changes each become one nft transaction; changes that cannot move a rule make none; a
refused transaction is retried with backoff; the table goes when the enforcer stops. The kernel is
faked (what leaves the process); tests/e2e/test_netpol_podman.py runs the real one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.net.common import kind
from orchestra.net.netpol import HostSettings, NetworkPolicyEnforcer, NftError
from orchestra.net.netpol.compile import Command, removal
from orchestra.store import Store

NODE = "node-a"
Obj = dict[str, Any]


class FakeNft:
    """Records transactions; `refuse` makes the next ones fail like nft does (nothing applied)."""

    def __init__(self) -> None:
        self.applied: list[list[Command]] = []
        self.refuse = 0
        self.broken = False  # a bug, not a refusal: the enforcer crashes
        self.transactions = 0

    async def apply(self, commands: list[Command]) -> None:
        await trio.lowlevel.checkpoint()
        if self.broken and commands != removal():  # a removal would still work
            raise RuntimeError("bug")
        if self.refuse:
            self.refuse -= 1
            raise NftError("Error: Could not process rule: No such file or directory")
        self.applied.append(commands)
        self.transactions += 1

    def chains(self) -> list[str]:
        last = self.applied[-1]
        return [c["add"]["chain"]["name"] for c in last if "chain" in c.get("add", {})]


@attrs.define
class Env:
    client: LocalClient
    nft: FakeNft
    enforcer: NetworkPolicyEnforcer

    async def pod(
        self, name: str, ip: str | None, ns: str = "default", node: str = NODE, **labels: str
    ) -> Obj:
        pod = await self.client.create(
            kind("Pod"),
            ns,
            {
                "metadata": {"name": name, "labels": labels},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
            },
        )
        if ip is not None:
            status = {"status": {"podIP": ip, "phase": "Running"}}
            pod = await self.client.patch(kind("Pod"), ns, name, status, subresource="status")
        return pod

    async def settle(self) -> None:
        await trio.testing.wait_all_tasks_blocked()


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    client = LocalClient(core)
    nft = FakeNft()
    enforcer = NetworkPolicyEnforcer(
        client,
        node=NODE,
        nft=nft,  # type: ignore[arg-type]
        host=HostSettings(service_cidr="10.96.0.0/12", dns_ip="10.96.0.10"),
    )
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(enforcer.run)
            yield Env(client, nft, enforcer)
            nursery.cancel_scope.cancel()
    store.close()


DENY_ALL = {"metadata": {"name": "deny"}, "spec": {"podSelector": {}}}


async def test_changes_become_one_transaction_each(env: Env, autojump_clock: trio.testing.MockClock) -> None:
    assert len(env.nft.applied) == 1 and env.nft.chains() == ["forward", "input", "output"]
    await env.pod("a", "10.88.0.2", app="web")
    await env.settle()
    assert len(env.nft.applied) == 1  # no policy: the ruleset is the same
    await env.client.create(kind("NetworkPolicy"), "default", DENY_ALL)
    await env.settle()
    assert len(env.nft.applied) == 2
    assert env.nft.chains() == ["forward", "input", "output", "ingress-10.88.0.2", "proxied-10.88.0.2"]
    await env.pod("b", "10.88.0.3", app="web")
    await env.settle()
    assert len(env.nft.applied) == 3 and "ingress-10.88.0.3" in env.nft.chains()
    await env.client.delete(kind("NetworkPolicy"), "default", "deny")
    await env.settle()
    assert len(env.nft.applied) == 4 and env.nft.chains() == ["forward", "input", "output"]


async def test_only_what_can_move_a_rule_makes_a_transaction(
    env: Env, autojump_clock: trio.testing.MockClock
) -> None:
    await env.pod("a", "10.88.0.2", app="web")
    await env.client.create(kind("NetworkPolicy"), "default", DENY_ALL)
    await env.settle()
    before = len(env.nft.applied)
    # a condition, an annotation and a pod of another node with no address change no rule
    await env.client.patch(
        kind("Pod"),
        "default",
        "a",
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        subresource="status",
    )
    await env.client.patch(kind("Pod"), "default", "a", {"metadata": {"annotations": {"x": "y"}}})
    await env.pod("elsewhere", None, node="node-b")
    await env.settle()
    assert len(env.nft.applied) == before
    # a label the policy's selector reads does: the pod leaves the policy
    await env.client.create(
        kind("NetworkPolicy"),
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]},
        },
    )
    await env.settle()
    assert len(env.nft.applied) == before + 1
    await env.client.patch(kind("Pod"), "default", "a", {"metadata": {"labels": {"app": "db"}}})
    await env.settle()
    assert len(env.nft.applied) == before + 2


async def test_namespace_labels_follow(env: Env, autojump_clock: trio.testing.MockClock) -> None:
    await env.client.create(kind("Namespace"), None, {"metadata": {"name": "team"}})
    await env.pod("db", "10.88.0.2", role="db")
    await env.pod("client", "10.88.1.2", ns="team")
    await env.client.create(
        kind("NetworkPolicy"),
        "default",
        {
            "metadata": {"name": "from-team"},
            "spec": {
                "podSelector": {"matchLabels": {"role": "db"}},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "yes"}}}]}],
            },
        },
    )
    await env.settle()
    assert allowed_sources(env, "ingress-10.88.0.2") == []
    await env.client.patch(kind("Namespace"), None, "team", {"metadata": {"labels": {"team": "yes"}}})
    await env.settle()
    assert allowed_sources(env, "ingress-10.88.0.2") == [["10.88.1.2"]]


def allowed_sources(env: Env, chain: str) -> list[Any]:
    rules = [
        c["add"]["rule"]
        for c in env.nft.applied[-1]
        if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain
    ]
    return [r["expr"][0]["match"]["right"]["set"] for r in rules if "match" in r["expr"][0]]


async def test_a_refused_transaction_is_retried_with_backoff(
    env: Env, autojump_clock: trio.testing.MockClock
) -> None:
    await env.pod("a", "10.88.0.2")
    await env.settle()
    env.nft.refuse = 2
    t0 = trio.current_time()
    await env.client.create(kind("NetworkPolicy"), "default", DENY_ALL)
    with trio.fail_after(10):
        while env.nft.transactions < 2:  # noqa: ASYNC110 (the fake has no event: poll on the virtual clock)
            await trio.sleep(0.01)
    assert env.enforcer.errors == 2 and "No such file" in env.enforcer.statistics()["last_error"]
    assert trio.current_time() - t0 >= 0.5 + 1.0  # two retries: 0.5 s, then 1 s
    assert "ingress-10.88.0.2" in env.nft.chains()


async def test_source_mark_knows_the_pods(env: Env, autojump_clock: trio.testing.MockClock) -> None:
    assert env.enforcer.source_mark("10.88.0.2") is None
    await env.pod("a", "10.88.0.2")
    await env.settle()
    assert env.enforcer.source_mark("10.88.0.2") == 0x0A580002
    assert env.enforcer.source_mark("10.88.0.1") is None  # the bridge's address is the node's
    assert env.enforcer.source_mark("127.0.0.1") is None


async def test_the_table_is_removed_when_the_enforcer_stops(autojump_clock: trio.testing.MockClock) -> None:
    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    nft = FakeNft()
    enforcer = NetworkPolicyEnforcer(
        LocalClient(core),
        node=NODE,
        nft=nft,  # type: ignore[arg-type]
        host=HostSettings(),
    )
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(enforcer.run)
            nursery.cancel_scope.cancel()
        assert nft.applied[-1] == removal()
        async with trio.open_nursery() as nursery:  # a restart puts the table back
            await nursery.start(enforcer.run)
            assert nft.chains() == ["forward", "input", "output"]
            nursery.cancel_scope.cancel()
    store.close()


async def test_a_host_that_refuses_the_first_ruleset_fails_the_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    nft = FakeNft()
    nft.refuse = 1
    enforcer = NetworkPolicyEnforcer(
        LocalClient(core),
        node=NODE,
        nft=nft,  # type: ignore[arg-type]
        host=HostSettings(),
    )
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            with pytest.raises(NftError):  # itself, not in a group: the app tells the user
                await nursery.start(enforcer.run)
    store.close()


async def test_a_crash_leaves_the_last_rules_in_force(autojump_clock: trio.testing.MockClock) -> None:
    """Policies must not fail open while the supervisor restarts the enforcer."""
    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    nft = FakeNft()
    env = Env(
        LocalClient(core),
        nft,
        NetworkPolicyEnforcer(
            LocalClient(core),
            node=NODE,
            nft=nft,  # type: ignore[arg-type]
            host=HostSettings(),
        ),
    )
    with trio.fail_after(10), pytest.raises(BaseExceptionGroup) as info:
        async with trio.open_nursery() as nursery:
            await nursery.start(env.enforcer.run)
            await env.pod("a", "10.88.0.2")
            await env.client.create(kind("NetworkPolicy"), "default", DENY_ALL)
            await env.settle()
            applied = len(nft.applied)
            nft.broken = True
            await env.client.create(
                kind("NetworkPolicy"),
                "default",
                {"metadata": {"name": "allow"}, "spec": {"podSelector": {}, "ingress": [{}]}},
            )
            await trio.sleep_forever()  # the crash ends this nursery
    assert info.group_contains(RuntimeError)
    assert len(nft.applied) == applied and "ingress-10.88.0.2" in nft.chains()  # no removal
    store.close()
