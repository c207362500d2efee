"""InterPodAffinity: required (anti-)affinity as a filter, preferred terms as a score (kube's plugin).

Owns: the per-pod pre-computation over every node (PreFilter / PreScore) and the per-node checks —
  * the incoming pod's required affinity: every term's topology domain must already hold a pod
    matching all terms (or, if no pod anywhere does, the pod must match its own terms);
  * its required anti-affinity: no matching pod in the term's domain;
  * existing pods' required anti-affinity that the incoming pod matches;
  * scoring: preferred terms both ways plus existing pods' required affinity (hardPodAffinityWeight 1),
    summed per topology domain, min-max normalised.
Must not import: client, controller.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import attrs

from orchestra.reconcilers.scheduler.filters import Status
from orchestra.reconcilers.scheduler.nodeinfo import NodeInfo
from orchestra.reconcilers.scheduler.podinfo import AffinityTerm, PodInfo

PLUGIN = "InterPodAffinity"
ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1

NsLabels = Mapping[str, Mapping[str, str]]
Pair = tuple[str, str]


@attrs.define
class FilterState:
    existing_anti: Counter[Pair]
    affinity: Counter[Pair]
    anti: Counter[Pair]
    self_match: bool


def _matches_all(terms: Sequence[AffinityTerm], pod: PodInfo, ns_labels: NsLabels) -> bool:
    return all(t.matches(pod, ns_labels) for t in terms)


def prefilter(
    pod: PodInfo, nodes: Sequence[NodeInfo], ns_labels: NsLabels, cluster_anti: int
) -> FilterState | None:
    """None when the plugin has nothing to check for this pod (kube's PreFilter Skip)."""
    if not pod.affinity and not pod.anti_affinity and cluster_anti == 0:
        return None
    state = FilterState(Counter(), Counter(), Counter(), _matches_all(pod.affinity, pod, ns_labels))
    for node in nodes:
        labels = node.labels
        for existing in node.anti_affinity_pods.values():
            for term in existing.anti_affinity:
                value = labels.get(term.topology_key)
                if value is not None and term.matches(pod, ns_labels):
                    state.existing_anti[(term.topology_key, value)] += 1
        if not pod.affinity and not pod.anti_affinity:
            continue
        for existing in node.pods.values():
            if pod.affinity and _matches_all(pod.affinity, existing, ns_labels):
                for term in pod.affinity:
                    value = labels.get(term.topology_key)
                    if value is not None:
                        state.affinity[(term.topology_key, value)] += 1
            for term in pod.anti_affinity:
                value = labels.get(term.topology_key)
                if value is not None and term.matches(existing, ns_labels):
                    state.anti[(term.topology_key, value)] += 1
    return state


def filter_node(state: FilterState, pod: PodInfo, node: NodeInfo) -> Status | None:
    labels = node.labels
    if pod.affinity:
        pods_exist = True
        for term in pod.affinity:
            value = labels.get(term.topology_key)
            if value is None:
                return Status(PLUGIN, False, (ERR_AFFINITY,))
            if state.affinity.get((term.topology_key, value), 0) <= 0:
                pods_exist = False
        if not pods_exist and not (not state.affinity and state.self_match):
            return Status(PLUGIN, False, (ERR_AFFINITY,))
    for term in pod.anti_affinity:
        value = labels.get(term.topology_key)
        if value is not None and state.anti.get((term.topology_key, value), 0) > 0:
            return Status(PLUGIN, True, (ERR_ANTI_AFFINITY,))
    if state.existing_anti:
        for pair in labels.items():
            if state.existing_anti.get(pair, 0) > 0:
                return Status(PLUGIN, True, (ERR_EXISTING_ANTI_AFFINITY,))
    return None


# --- scoring -------------------------------------------------------------------------------------

ScoreMap = dict[str, Counter[str]]  # topologyKey -> value -> score


def _process(terms: Sequence[AffinityTerm], target: PodInfo, node: NodeInfo, ns_labels: NsLabels,
             sign: int, scores: ScoreMap, weight: int | None = None) -> None:
    for term in terms:
        value = node.labels.get(term.topology_key)
        if value is not None and term.matches(target, ns_labels):
            w = term.weight if weight is None else weight
            scores.setdefault(term.topology_key, Counter())[value] += sign * w


def prescore(
    pod: PodInfo, nodes: Sequence[NodeInfo], ns_labels: NsLabels, cluster_affinity: int
) -> ScoreMap | None:
    has_constraints = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
    if not has_constraints and cluster_affinity == 0:
        return None
    scores: ScoreMap = {}
    for node in nodes:
        if not node.labels:
            continue
        existing_pods = node.pods if has_constraints else node.affinity_pods
        for existing in existing_pods.values():
            _process(pod.preferred_affinity, existing, node, ns_labels, 1, scores)
            _process(pod.preferred_anti_affinity, existing, node, ns_labels, -1, scores)
            _process(existing.affinity, pod, node, ns_labels, 1, scores, HARD_POD_AFFINITY_WEIGHT)
            _process(existing.preferred_affinity, pod, node, ns_labels, 1, scores)
            _process(existing.preferred_anti_affinity, pod, node, ns_labels, -1, scores)
    return scores or None


def score_node(scores: ScoreMap, node: NodeInfo) -> int:
    total = 0
    for key, values in scores.items():
        value = node.labels.get(key)
        if value is not None:
            total += values.get(value, 0)
    return total
