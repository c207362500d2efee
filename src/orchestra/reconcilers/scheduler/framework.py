"""The scheduling algorithm for one pod: PreFilter → Filter (a sample of nodes) → Score → select host.

Owns (kube's schedulePod / findNodesThatFitPod / prioritizeNodes / selectHost):
  * the nominated node first: if the pod has status.nominatedNodeName and it fits there, it goes there;
  * filtering from a rotating start index until `num_feasible_to_find` nodes fit (kube's adaptive
    percentageOfNodesToScore: 50% minus 1% per 125 nodes, at least 5% and at least 100 nodes);
  * pods nominated to a node with priority >= the pod's count against it while filtering;
  * scoring with the default weights, normalised per plugin, the highest total winning and ties
    broken uniformly at random (reservoir sampling with a seedable RNG);
  * the FitError message kube puts in FailedScheduling ("0/3 nodes are available: ...").
Speed: node-local filter and score results come from results.py (per pod signature, refreshed only
for nodes that changed), and when every node passes and only fit + balanced scores differ, the
sample's best node is found with list builtins (same choice, no per-node Python loop).
Must not import: client, controller.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import attrs

from orchestra.api.machinery.selectors import LabelSelector
from orchestra.reconcilers.scheduler import interpod, spread
from orchestra.reconcilers.scheduler.cache import Cache
from orchestra.reconcilers.scheduler.filters import Status, run_local_filters
from orchestra.reconcilers.scheduler.nodeinfo import NodeInfo
from orchestra.reconcilers.scheduler.podinfo import PodInfo, SpreadConstraint
from orchestra.reconcilers.scheduler.results import Entry, Results, SignatureResults
from orchestra.reconcilers.scheduler.scores import (
    WEIGHT_INTERPOD,
    WEIGHT_NODE_AFFINITY,
    WEIGHT_SPREAD,
    WEIGHT_TAINT,
    default_normalize,
    min_max_normalize,
)

MIN_FEASIBLE_NODES = 100  # minFeasibleNodesToFind
MIN_FEASIBLE_PERCENTAGE = 5  # minFeasibleNodesPercentageToFind
NO_NODES = "no nodes available to schedule pods"

NsLabels = Mapping[str, Mapping[str, str]]
DefaultSelector = Callable[[PodInfo], LabelSelector]
ExtraFilter = Callable[
    [NodeInfo], "Status | None"
]  # a per-pod filter the results cache cannot hold (volumes)


@attrs.define
class Diagnosis:
    """Why a pod fits nowhere: each node's rejection, and the messages of PreFilter / PostFilter."""

    num_all: int
    statuses: dict[str, Status] = attrs.Factory(dict)
    absent_reason: str = ""  # the reason for nodes without an explicit status
    prefilter_msg: str = ""
    postfilter_msg: str = ""

    @property
    def plugins(self) -> frozenset[str]:
        return frozenset(s.plugin for s in self.statuses.values())

    def message(self) -> str:
        """kube's FitError.Error()."""
        msg = f"0/{self.num_all} nodes are available:"
        if self.prefilter_msg:
            msg += f" {self.prefilter_msg}."
        else:
            counts: Counter[str] = Counter(r for s in self.statuses.values() for r in s.reasons)
            if self.absent_reason and len(self.statuses) < self.num_all:
                counts[self.absent_reason] += self.num_all - len(self.statuses)
            reasons = sorted(f"{n} {r}" for r, n in counts.items())
            if reasons:
                msg += f" {', '.join(reasons)}."
        if self.postfilter_msg:  # kube appends it as is (it ends with its own period)
            msg += f" {self.postfilter_msg}"
        return msg


class FitError(Exception):
    def __init__(self, pod: PodInfo, diagnosis: Diagnosis) -> None:
        super().__init__(diagnosis.message())
        self.pod = pod
        self.diagnosis = diagnosis


class NoNodesError(Exception):
    def __init__(self) -> None:
        super().__init__(NO_NODES)


@attrs.frozen
class ScheduleResult:
    node: str
    evaluated: int
    feasible: int


def num_feasible_to_find(num_all: int, percentage: int = 0) -> int:
    """kube's numFeasibleNodesToFind."""
    if num_all < MIN_FEASIBLE_NODES:
        return num_all
    if percentage <= 0:
        percentage = max(50 - num_all // 125, MIN_FEASIBLE_PERCENTAGE)
    return max(num_all * percentage // 100, MIN_FEASIBLE_NODES)


@attrs.define
class CycleState:
    """What PreFilter computed for one pod (the cluster-wide plugins' state)."""

    interpod: interpod.FilterState | None
    spread: spread.FilterState | None


class Framework:
    def __init__(
        self,
        cache: Cache,
        *,
        ns_labels: Callable[[], NsLabels],
        rng: random.Random | None = None,
        percentage_of_nodes_to_score: int = 0,
        default_selector: DefaultSelector | None = None,
    ) -> None:
        """`default_selector`: the selector of the Services / ReplicaSets / StatefulSets a pod belongs
        to (kube's helper.DefaultSelector), for the system default spreading; None turns it off."""
        self.cache = cache
        self.ns_labels = ns_labels
        self.default_selector = default_selector
        self.rng = rng or random.Random()
        self.percentage = percentage_of_nodes_to_score
        self.next_start = 0
        self.nominated: dict[str, dict[str, PodInfo]] = {}  # node -> pods nominated to it
        self.results = Results(cache)

    # --- nominations ---------------------------------------------------------------------------

    def nominate(self, pod: PodInfo, node: str | None) -> None:
        for name, pods in list(self.nominated.items()):
            if pods.pop(pod.key, None) is not None and not pods:
                del self.nominated[name]
        if node:
            self.nominated.setdefault(node, {})[pod.key] = pod

    # --- filtering -----------------------------------------------------------------------------

    def prefilter(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> CycleState:
        return CycleState(
            interpod.prefilter(pod, nodes, self.ns_labels(), self.cache.anti_affinity_pods),
            spread.prefilter(pod, nodes),
        )

    def filter_node(self, pod: PodInfo, node: NodeInfo, state: CycleState,
                    results: SignatureResults | None = None) -> tuple[Status | None, Entry | None]:
        """All filters on one node, with higher-or-equal-priority nominated pods counted in."""
        nominated = self.nominated.get(node.name)
        if nominated and any(p.key != pod.key and p.priority >= pod.priority for p in nominated.values()):
            with_nominated = node.clone()
            for p in nominated.values():
                if p.key != pod.key and p.priority >= pod.priority and p.key not in with_nominated.pods:
                    with_nominated.add_pod(p)
            status = self._filter_uncached(pod, with_nominated, state)
            if status is not None:
                return status, None
        if results is None:
            return self._filter_uncached(pod, node, state), None
        e = results.entries[node.index]
        status = e[1]
        if status is None and state.interpod is not None:
            status = interpod.filter_node(state.interpod, pod, node)
        if status is None and state.spread is not None:
            status = spread.filter_node(state.spread, pod, node)
        return status, e

    def _filter_uncached(self, pod: PodInfo, node: NodeInfo, state: CycleState) -> Status | None:
        status = run_local_filters(pod, node)
        if status is None and state.interpod is not None:
            status = interpod.filter_node(state.interpod, pod, node)
        if status is None and state.spread is not None:
            status = spread.filter_node(state.spread, pod, node)
        return status

    # --- the algorithm -------------------------------------------------------------------------

    def schedule(self, pod: PodInfo, extra: ExtraFilter | None = None) -> ScheduleResult:
        """`extra`: one more filter, run after the others (the VolumeBinding plugin's)."""
        nodes = self.cache.node_list()
        if not nodes:
            raise NoNodesError
        state = self.prefilter(pod, nodes)
        results = self.results.get(pod, nodes)
        nominated = str((pod.obj.get("status") or {}).get("nominatedNodeName") or "")
        if nominated and (info := self.cache.nodes.get(nominated)) is not None and info.node is not None:
            status, _ = self.filter_node(pod, info, state, results)
            if status is None and extra is not None:
                status = extra(info)
            if status is None:
                return ScheduleResult(nominated, 1, 1)
        soft, require_all = spread.soft_constraints(pod, self._default_constraints(pod))
        if not soft and extra is None and self._uniform(pod, state, results):
            return self._schedule_uniform(results, nodes)
        feasible, statuses = self._find_feasible(pod, nodes, state, results, extra)
        if not feasible:
            raise FitError(pod, Diagnosis(len(nodes), statuses))
        if len(feasible) == 1:
            return ScheduleResult(feasible[0][0].name, len(feasible) + len(statuses), 1)
        totals = self._prioritize(pod, feasible, nodes, soft, require_all)
        return ScheduleResult(self._select(feasible, totals), len(feasible) + len(statuses), len(feasible))

    def _default_constraints(self, pod: PodInfo) -> tuple[SpreadConstraint, ...]:
        if pod.spread or self.default_selector is None:
            return ()
        return spread.system_default_constraints(self.default_selector(pod))

    def _uniform(self, pod: PodInfo, state: CycleState, results: SignatureResults) -> bool:
        """Whether only fit + balanced can differ between nodes (and every node passes)."""
        return (
            state.interpod is None
            and state.spread is None
            and not self.nominated
            and not results.infeasible
            and not results.preferences
            and not pod.spread
            and not pod.preferred_affinity
            and not pod.preferred_anti_affinity
            and self.cache.affinity_pods == 0
        )

    def _schedule_uniform(self, results: SignatureResults, nodes: list[NodeInfo]) -> ScheduleResult:
        """Every node passes every filter and only fit + balanced differ between nodes (the other
        plugins give each node the same score): the same choice as the general path — the best of
        the next `num_feasible_to_find` nodes from the rotating start, ties uniformly at random —
        computed with list builtins instead of a Python loop per node."""
        n = len(nodes)
        want = num_feasible_to_find(n, self.percentage)
        start = self.next_start % n
        window = results.base[start:start + want]
        if len(window) < want:
            window += results.base[:want - len(window)]
        best = max(window)
        ties = window.count(best)
        if ties == 1:
            i = window.index(best)
        else:  # the pick-th tied position, found without a Python-level loop
            tied = itertools.compress(itertools.count(), map(best.__eq__, window))
            i = next(itertools.islice(tied, self.rng.randrange(ties), None))
        self.next_start = (start + want) % n
        return ScheduleResult(nodes[(start + i) % n].name, want, want)

    def _find_feasible(self, pod: PodInfo, nodes: list[NodeInfo], state: CycleState,
                       results: SignatureResults, extra: ExtraFilter | None = None,
                       ) -> tuple[list[tuple[NodeInfo, Entry]], dict[str, Status]]:
        n = len(nodes)
        want = num_feasible_to_find(n, self.percentage)
        start = self.next_start % n
        feasible: list[tuple[NodeInfo, Entry]] = []
        statuses: dict[str, Status] = {}
        simple = state.interpod is None and state.spread is None and not self.nominated and extra is None
        entries = results.entries
        processed = 0
        for node in nodes[start:] + nodes[:start]:
            processed += 1
            if simple:
                e = entries[node.index]
                status: Status | None = e[1]
            else:
                status, _ = self.filter_node(pod, node, state, results)
                if status is None and extra is not None:
                    status = extra(node)
                e = entries[node.index]
            if status is None:
                feasible.append((node, e))
                if len(feasible) >= want:
                    break
            else:
                statuses[node.name] = status
        self.next_start = (start + processed) % n
        return feasible, statuses

    def _prioritize(self, pod: PodInfo, feasible: list[tuple[NodeInfo, Entry]], nodes: list[NodeInfo],
                    soft: tuple[SpreadConstraint, ...], require_all: bool) -> list[int]:
        totals = [e[2] for _, e in feasible]
        affinity = [e[3] for _, e in feasible]
        taints = [e[4] for _, e in feasible]
        if any(affinity):
            for i, s in enumerate(default_normalize(affinity, reverse=False)):
                totals[i] += WEIGHT_NODE_AFFINITY * s
        taint_scores = default_normalize(taints, reverse=True) if any(taints) else None
        for i in range(len(totals)):
            totals[i] += WEIGHT_TAINT * (taint_scores[i] if taint_scores is not None else 100)
        infos = [node for node, _ in feasible]
        scores = interpod.prescore(pod, nodes, self.ns_labels(), self.cache.affinity_pods)
        if scores is not None:
            raw = [interpod.score_node(scores, node) for node in infos]
            for i, s in enumerate(min_max_normalize(raw)):
                totals[i] += WEIGHT_INTERPOD * s
        spread_state = spread.prescore(
            pod, soft, require_all, infos, self.cache.nodes, self.cache.counts_by_node
        )
        if spread_state is not None:
            raw = spread.scores(spread_state, infos)
            for i, s in enumerate(spread.normalize(spread_state, infos, raw)):
                totals[i] += WEIGHT_SPREAD * s
        return totals

    def _select(self, feasible: list[tuple[NodeInfo, Entry]], totals: list[int]) -> str:
        """kube's selectHost: the highest score, ties broken uniformly at random (kube samples a
        reservoir; one draw among the tied nodes has the same distribution)."""
        best_score = max(totals)
        ties = [i for i, s in enumerate(totals) if s == best_score]
        best = ties[0] if len(ties) == 1 else ties[self.rng.randrange(len(ties))]
        return feasible[best][0].name
