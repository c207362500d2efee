"""PodTopologySpread: DoNotSchedule constraints as a filter, ScheduleAnyway ones as a score.

Owns (kube's plugin, without the system default constraints):
  * PreFilter — per topology domain, the number of pods matching each hard constraint's selector
    (same namespace, not terminating) over nodes that carry every constraint's topology key and pass
    the node inclusion policies (nodeAffinityPolicy Honor by default, nodeTaintsPolicy Ignore);
    the global minimum per constraint (0 when fewer domains than minDomains);
  * Filter — a node without the topology key is rejected for good; otherwise
    matching + self-match - global minimum must not exceed maxSkew;
  * Score — ScheduleAnyway constraints: per node, sum of count * log(domains + 2) + maxSkew - 1
    over the constraints, normalised so the least crowded node gets 100.
Must not import: client, controller.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import attrs

from orchestra.reconcilers.scheduler.filters import Status, node_matches_pod, untolerated_taint
from orchestra.reconcilers.scheduler.nodeinfo import NodeInfo
from orchestra.reconcilers.scheduler.podinfo import HOSTNAME, PodInfo, SpreadConstraint

PLUGIN = "PodTopologySpread"
ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_MISSING_LABEL = ERR_CONSTRAINTS + " (missing required label)"

Pair = tuple[str, str]


def _has_keys(node: NodeInfo, constraints: Sequence[SpreadConstraint]) -> bool:
    return all(c.topology_key in node.labels for c in constraints)


def _included(c: SpreadConstraint, pod: PodInfo, node: NodeInfo) -> bool:
    if c.honor_node_affinity and not node_matches_pod(pod, node):
        return False
    return not (c.honor_taints and untolerated_taint(node.taints, pod.tolerations, ("NoSchedule", "NoExecute")))


def count_matching(node: NodeInfo, c: SpreadConstraint, namespace: str) -> int:
    return sum(1 for p in node.pods.values()
               if not p.terminating and p.namespace == namespace and c.selector.matches(p.labels))


@attrs.define
class FilterState:
    constraints: tuple[SpreadConstraint, ...]
    counts: Counter[Pair]
    minimum: list[int]


def prefilter(pod: PodInfo, nodes: Sequence[NodeInfo]) -> FilterState | None:
    hard = tuple(c for c in pod.spread if c.hard)
    if not hard:
        return None
    counts: Counter[Pair] = Counter()
    domains: list[set[str]] = [set() for _ in hard]
    for node in nodes:
        if not _has_keys(node, hard):
            continue
        for i, c in enumerate(hard):
            if not _included(c, pod, node):
                continue
            value = node.labels[c.topology_key]
            domains[i].add(value)
            counts[(c.topology_key, value)] += count_matching(node, c, pod.namespace)
    minimum = []
    for i, c in enumerate(hard):
        if c.min_domains is not None and len(domains[i]) < c.min_domains:
            minimum.append(0)
        else:
            minimum.append(min((counts[(c.topology_key, v)] for v in domains[i]), default=0))
    return FilterState(hard, counts, minimum)


def filter_node(state: FilterState, pod: PodInfo, node: NodeInfo) -> Status | None:
    for i, c in enumerate(state.constraints):
        value = node.labels.get(c.topology_key)
        if value is None:
            return Status(PLUGIN, False, (ERR_MISSING_LABEL,))
        self_match = 1 if c.selector.matches(pod.labels) else 0
        if state.counts.get((c.topology_key, value), 0) + self_match - state.minimum[i] > c.max_skew:
            return Status(PLUGIN, True, (ERR_CONSTRAINTS,))
    return None


# --- scoring -------------------------------------------------------------------------------------

@attrs.define
class ScoreState:
    constraints: tuple[SpreadConstraint, ...]
    counts: dict[Pair, int]
    weights: list[float]
    ignored: set[str]


def prescore(pod: PodInfo, feasible: Sequence[NodeInfo], nodes: Sequence[NodeInfo]) -> ScoreState | None:
    soft = tuple(c for c in pod.spread if not c.hard)
    if not soft:
        return None
    counts: dict[Pair, int] = {}
    ignored: set[str] = set()
    sizes = [0] * len(soft)
    for node in feasible:
        if not _has_keys(node, soft):
            ignored.add(node.name)
            continue
        for i, c in enumerate(soft):
            pair = (c.topology_key, node.labels[c.topology_key])
            if c.topology_key != HOSTNAME and pair not in counts:
                counts[pair] = 0
                sizes[i] += 1
    weights = []
    for i, c in enumerate(soft):
        size = len(feasible) - len(ignored) if c.topology_key == HOSTNAME else sizes[i]
        weights.append(math.log(size + 2))
    for node in nodes:
        if not _has_keys(node, soft):
            continue
        for c in soft:
            if c.topology_key == HOSTNAME or not _included(c, pod, node):
                continue
            pair = (c.topology_key, node.labels[c.topology_key])
            if pair in counts:
                counts[pair] += count_matching(node, c, pod.namespace)
    return ScoreState(soft, counts, weights, ignored)


def score_node(state: ScoreState, pod: PodInfo, node: NodeInfo) -> int:
    if node.name in state.ignored:
        return 0
    score = 0.0
    for i, c in enumerate(state.constraints):
        value = node.labels.get(c.topology_key)
        if value is None:
            continue
        if c.topology_key == HOSTNAME:
            cnt = count_matching(node, c, pod.namespace)
        else:
            cnt = state.counts.get((c.topology_key, value), 0)
        score += cnt * state.weights[i] + (c.max_skew - 1)
    return math.floor(score + 0.5)  # Go's math.Round: halves away from zero


def normalize(state: ScoreState, nodes: Sequence[NodeInfo], scores: list[int]) -> list[int]:
    valid = [s for n, s in zip(nodes, scores, strict=True) if n.name not in state.ignored]
    lo, hi = min(valid, default=0), max(valid, default=0)
    out = []
    for n, s in zip(nodes, scores, strict=True):
        if n.name in state.ignored:
            out.append(0)
        elif hi == 0:
            out.append(100)
        else:
            out.append(100 * (hi + lo - s) // hi)
    return out
