"""Node-local results per pod signature, kept current incrementally (the scheduler's hot path).

Owns: for each recent pod signature (podinfo.PodInfo.signature), every node's node-local verdict
(the first rejecting filter, or the fit + balanced score and the raw node-affinity / taint
preferences), in arrays aligned with Cache.node_list(). After a pod is assumed only that node's
generation changes, so the next pod with the same signature re-evaluates just the nodes in the
cache's change log since its last use, instead of every node. The results are exactly what
evaluating every node would give; this is only memoisation keyed on NodeInfo.generation.
Must not import: client, controller.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

from orchestra.reconcilers.scheduler.cache import Cache
from orchestra.reconcilers.scheduler.filters import Status, run_local_filters
from orchestra.reconcilers.scheduler.nodeinfo import NodeInfo
from orchestra.reconcilers.scheduler.podinfo import PodInfo
from orchestra.reconcilers.scheduler.scores import (
    WEIGHT_BALANCED,
    WEIGHT_FIT,
    balanced_allocation,
    least_allocated,
    node_affinity_raw,
    taint_raw,
)

SIGNATURES = 256  # signatures remembered (LRU)
LOG_LIMIT = 50_000  # change-log entries before it is cleared (then signatures rescan generations)

# (node generation, rejection or None, fit+balanced score, node-affinity raw, taint raw)
Entry = tuple[int, Status | None, int, int, int]


def evaluate(pod: PodInfo, node: NodeInfo) -> Entry:
    status = run_local_filters(pod, node)
    if status is not None:
        return (node.generation, status, 0, 0, 0)
    base = WEIGHT_FIT * least_allocated(pod, node) + WEIGHT_BALANCED * balanced_allocation(pod, node)
    return (node.generation, None, base, node_affinity_raw(pod, node), taint_raw(pod, node))


@attrs.define(eq=False)
class SignatureResults:
    entries: list[Entry]
    base: list[int]  # fit + balanced score per node, -1 where a node-local filter rejects the pod
    infeasible: int  # nodes some node-local filter rejects
    preferences: int  # nodes with a non-zero node-affinity or taint preference score
    list_version: int
    epoch: int
    log_pos: int

    def set(self, i: int, e: Entry) -> None:
        old = self.entries[i]
        self.infeasible += (e[1] is not None) - (old[1] is not None)
        self.preferences += bool(e[3] or e[4]) - bool(old[3] or old[4])
        self.entries[i] = e
        self.base[i] = -1 if e[1] is not None else e[2]


class Results:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.epoch = 0
        self._by_signature: OrderedDict[bytes, SignatureResults] = OrderedDict()

    def get(self, pod: PodInfo, nodes: list[NodeInfo]) -> SignatureResults:
        """The signature's results, brought up to date with the cache (`nodes` is its node_list())."""
        cache = self.cache
        r = self._by_signature.get(pod.signature)
        if r is None or r.list_version != cache.list_version:
            r = self._build(pod, nodes)
        else:
            self._by_signature.move_to_end(pod.signature)
            if r.epoch != self.epoch:
                self._rescan(r, pod, nodes)
            else:
                for info in cache.changes[r.log_pos:]:
                    i = info.index
                    if 0 <= i < len(nodes) and nodes[i] is info and r.entries[i][0] != info.generation:
                        r.set(i, evaluate(pod, info))
        if len(cache.changes) > LOG_LIMIT:
            cache.changes.clear()
            self.epoch += 1
            r.epoch = self.epoch
        r.log_pos = len(cache.changes)
        return r

    def _build(self, pod: PodInfo, nodes: list[NodeInfo]) -> SignatureResults:
        entries = [evaluate(pod, n) for n in nodes]
        r = SignatureResults(
            entries,
            [-1 if e[1] is not None else e[2] for e in entries],
            sum(1 for e in entries if e[1] is not None),
            sum(1 for e in entries if e[3] or e[4]),
            self.cache.list_version,
            self.epoch,
            len(self.cache.changes),
        )
        self._by_signature[pod.signature] = r
        self._by_signature.move_to_end(pod.signature)
        if len(self._by_signature) > SIGNATURES:
            self._by_signature.popitem(last=False)
        return r

    def _rescan(self, r: SignatureResults, pod: PodInfo, nodes: list[NodeInfo]) -> None:
        for i, info in enumerate(nodes):
            if r.entries[i][0] != info.generation:
                r.set(i, evaluate(pod, info))
        r.epoch = self.epoch
