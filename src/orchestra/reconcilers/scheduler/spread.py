"""PodTopologySpread: DoNotSchedule constraints as a filter, ScheduleAnyway ones as a score.

Owns (kube's plugin with its System defaulting):
  * PreFilter — per topology domain, the number of pods matching each hard constraint's selector
    (same namespace, not terminating) over nodes that carry every constraint's topology key and pass
    the node inclusion policies (nodeAffinityPolicy Honor by default, nodeTaintsPolicy Ignore);
    the global minimum per constraint (0 when fewer domains than minDomains);
  * Filter — a node without the topology key is rejected for good; otherwise
    matching + self-match - global minimum must not exceed maxSkew;
  * Score — ScheduleAnyway constraints: per node, sum of count * log(domains + 2) + maxSkew - 1
    over the constraints, normalised so the least crowded node gets 100;
  * the system default constraints (kube's `defaultingType: System`): a pod without constraints of
    its own that belongs to a Service, ReplicaSet or StatefulSet is spread with ScheduleAnyway over
    hostname (maxSkew 3) and zone (maxSkew 5), its selector being those objects' selectors (the
    scheduler computes it, see `default_selector`); nodes missing a key only skip that constraint.
Must not import: client, controller.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import attrs

from orchestra.api.machinery.selectors import LabelSelector
from orchestra.objects import untolerated_taint
from orchestra.reconcilers.scheduler.filters import Status, node_matches_pod
from orchestra.reconcilers.scheduler.nodeinfo import NodeInfo
from orchestra.reconcilers.scheduler.podinfo import HOSTNAME, ZONE, PodInfo, SpreadConstraint

PLUGIN = "PodTopologySpread"
ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_MISSING_LABEL = ERR_CONSTRAINTS + " (missing required label)"

Pair = tuple[str, str]


def _has_keys(node: NodeInfo, constraints: Sequence[SpreadConstraint]) -> bool:
    return all(c.topology_key in node.labels for c in constraints)


def _included(c: SpreadConstraint, pod: PodInfo, node: NodeInfo) -> bool:
    if c.honor_node_affinity and not node_matches_pod(pod, node):
        return False
    return not (
        c.honor_taints and untolerated_taint(node.taints, pod.tolerations, ("NoSchedule", "NoExecute"))
    )


def count_matching(node: NodeInfo, c: SpreadConstraint, namespace: str) -> int:
    return node.count_matching(c.selector, namespace)


SYSTEM_DEFAULTS = ((HOSTNAME, 3), (ZONE, 5))  # kube's systemDefaultConstraints


def system_default_constraints(selector: LabelSelector) -> tuple[SpreadConstraint, ...]:
    """The System defaults with the pod's default selector (an empty selector: no constraints)."""
    if selector.empty:
        return ()
    return tuple(
        SpreadConstraint(max_skew, key, False, selector, None, True, False)
        for key, max_skew in SYSTEM_DEFAULTS
    )


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
    per_node: list[Mapping[str, int]]  # per constraint: node name -> matching pods there
    counts: dict[Pair, int]  # matching pods per (key, value) domain of the non-hostname constraints
    weights: list[float]
    ignored: set[str]


def soft_constraints(
    pod: PodInfo, defaults: tuple[SpreadConstraint, ...]
) -> tuple[tuple[SpreadConstraint, ...], bool]:
    """The ScheduleAnyway constraints to score with, and whether every node must carry all their keys
    (kube's requireAllTopologies: true for the pod's own constraints, false for the system defaults)."""
    if pod.spread:
        return tuple(c for c in pod.spread if not c.hard), True
    return defaults, False


CountsByNode = Callable[[LabelSelector, str], Mapping[str, int]]


def prescore(
    pod: PodInfo,
    soft: tuple[SpreadConstraint, ...],
    require_all: bool,
    feasible: Sequence[NodeInfo],
    nodes: Mapping[str, NodeInfo],
    counts_by_node: CountsByNode,
) -> ScoreState | None:
    """`nodes`: every node by name; `counts_by_node`: the cache's index of matching pods per node."""
    if not soft:
        return None
    ignored = {node.name for node in feasible if not _has_keys(node, soft)} if require_all else set()
    scored = [node for node in feasible if node.name not in ignored] if ignored else feasible
    counts: dict[Pair, int] = {}
    keyed: list[SpreadConstraint] = []  # non-hostname constraints some scored node has the key of
    weights = []
    for c in soft:
        if c.topology_key == HOSTNAME:
            size = len(scored)
        else:  # the constraint's domains among the scored nodes (a missing key counts as "")
            key = c.topology_key
            domains = {(key, node.labels.get(key, "")) for node in scored}
            size = len(domains - counts.keys())
            counts.update(dict.fromkeys(domains, 0))
            if len(domains) > 1 or (key, "") not in domains:
                keyed.append(c)
        weights.append(math.log(size + 2))
    per_node = [counts_by_node(c.selector, pod.namespace) for c in soft]
    for c, matching in zip(soft, per_node, strict=True):
        if c not in keyed:
            continue
        for name, n in matching.items():  # only nodes with matching pods add to a domain
            node = nodes.get(name)
            if node is None or node.node is None or c.topology_key not in node.labels:
                continue
            if (require_all and not _has_keys(node, soft)) or not _included(c, pod, node):
                continue
            pair = (c.topology_key, node.labels[c.topology_key])
            if pair in counts:
                counts[pair] += n
    return ScoreState(soft, per_node, counts, weights, ignored)


def scores(state: ScoreState, infos: Sequence[NodeInfo]) -> list[int]:
    """kube's Score for every node in `infos`: per constraint, count * weight + maxSkew - 1 where the
    node has the key (count: the node's own matching pods for hostname, its domain's otherwise)."""
    totals = [0.0] * len(infos)
    for i, c in enumerate(state.constraints):
        key, weight, base = c.topology_key, state.weights[i], c.max_skew - 1
        if key == HOSTNAME:
            get = state.per_node[i].get
            part = [get(n.name, 0) * weight + base if key in n.labels else 0.0 for n in infos]
        else:
            counts = state.counts
            part = [
                counts.get((key, n.labels[key]), 0) * weight + base if key in n.labels else 0.0 for n in infos
            ]
        totals = [a + b for a, b in zip(totals, part, strict=True)]
    ignored = state.ignored
    # Go's math.Round: halves away from zero
    return [
        0 if ignored and n.name in ignored else math.floor(t + 0.5)
        for n, t in zip(infos, totals, strict=True)
    ]


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
