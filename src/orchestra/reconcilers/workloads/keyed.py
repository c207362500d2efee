"""The first steps of a workload controller's reconcile(key): settle, read the owner, claim.

Owns: `settled` (wait until the cache shows the controller's own writes for `key`, then read the
object `key` names) and `claim_keyed` / `claim_pods` (pods.claim for the owner `key` names, each
adoption or release recorded as a write `key` expects to see in the informer of the claimed kind).
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestra.api.machinery.selectors import LabelSelector, from_label_selector_object
from orchestra.client.base import Client
from orchestra.controller import Informer, split_key
from orchestra.objects import Obj, spec
from orchestra.reconcilers.workloads.base import WorkloadController
from orchestra.reconcilers.workloads.common import Expectations
from orchestra.reconcilers.workloads.pods import claim


async def settled(expect: Expectations, informer: Informer, key: str) -> Obj | None:
    """The cached object `key` names once `expect` has seen its writes come back (None: it is gone).
    It is the cache's own: deep-copy it before changing it."""
    await expect.settle(key)
    ns, name = split_key(key)
    return informer.get(ns, name)


async def claim_keyed(
    client: Client,
    expect: Expectations,
    key: str,
    informer: Informer,
    owner: Obj,
    selector: LabelSelector,
    candidates: Sequence[Obj],
) -> list[Obj]:
    """claim() of `informer`'s kind for `owner` (the object `key` names)."""
    return await claim(
        client, informer.rt, owner, selector, candidates, on_write=lambda o: expect.wrote(key, informer, o)
    )


async def claim_pods(
    ctl: WorkloadController, key: str, owner: Obj, candidates: Sequence[Obj] | None = None
) -> list[Obj]:
    """The pods `owner` controls after claiming by its spec.selector among `candidates` (default:
    ctl.pods_of(owner))."""
    selector = from_label_selector_object(spec(owner).get("selector"))
    objs = ctl.pods_of(owner) if candidates is None else candidates
    return await claim_keyed(ctl.client, ctl.expect, key, ctl.pods, owner, selector, objs)
