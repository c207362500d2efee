"""Node-local score plugins of the default profile, their normalisation and weights.

Owns: NodeResourcesFit (LeastAllocated over cpu and memory, weight 1 each, on the non-zero
requests), NodeResourcesBalancedAllocation (1 - std of the cpu/memory fractions, on the exact
requests), NodeAffinity (sum of matching preferred terms' weights) and TaintToleration (count of
intolerable PreferNoSchedule taints), and kube's normalisers: DefaultNormalizeScore (optionally
reversed) and the min-max normaliser InterPodAffinity uses. Scores are integers 0-100 like kube's.
Not built: ImageLocality (simulated nodes report no images), VolumeBinding (no volumes scheduled).
Must not import: client, controller.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestra.objects import tolerations_tolerate
from orchestra.reconcilers.scheduler.filters import term_matches
from orchestra.reconcilers.scheduler.nodeinfo import NodeInfo
from orchestra.reconcilers.scheduler.podinfo import CPU, MEMORY, PodInfo

MAX_SCORE = 100
WEIGHT_TAINT = 3
WEIGHT_NODE_AFFINITY = 2
WEIGHT_FIT = 1
WEIGHT_BALANCED = 1
WEIGHT_INTERPOD = 2
WEIGHT_SPREAD = 2


def least_allocated(pod: PodInfo, node: NodeInfo) -> int:
    total = 0
    for capacity, requested in ((node.alloc_cpu, node.nz_cpu + pod.non_zero_cpu),
                                (node.alloc_memory, node.nz_memory + pod.non_zero_memory)):
        if capacity and requested <= capacity:
            total += (capacity - requested) * MAX_SCORE // capacity
    return total // 2


def balanced_allocation(pod: PodInfo, node: NodeInfo) -> int:
    fractions = []
    for capacity, requested in (
        (node.alloc_cpu, node.requested.get(CPU, 0) + pod.requests.get(CPU, 0)),
        (node.alloc_memory, node.requested.get(MEMORY, 0) + pod.requests.get(MEMORY, 0)),
    ):
        if capacity:
            fractions.append(min(requested / capacity, 1.0))
    std = abs(fractions[0] - fractions[1]) / 2 if len(fractions) == 2 else 0.0
    return int((1 - std) * MAX_SCORE)


def node_affinity_raw(pod: PodInfo, node: NodeInfo) -> int:
    total = 0
    for pref in pod.preferred_node_terms:
        weight = int(pref.get("weight") or 0)
        if weight and term_matches(pref.get("preference") or {}, node.labels, node.name):
            total += weight
    return total


def taint_raw(pod: PodInfo, node: NodeInfo) -> int:
    if not node.taints:
        return 0
    tolerations = [
        t for t in pod.tolerations if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"
    ]
    return sum(1 for taint in node.taints
               if taint.get("effect") == "PreferNoSchedule" and not tolerations_tolerate(tolerations, taint))


def default_normalize(scores: Sequence[int], *, reverse: bool) -> list[int]:
    """kube's helper.DefaultNormalizeScore."""
    top = max(scores, default=0)
    if top == 0:
        return [MAX_SCORE if reverse else 0 for _ in scores]
    out = [MAX_SCORE * s // top for s in scores]
    return [MAX_SCORE - s for s in out] if reverse else out


def min_max_normalize(scores: Sequence[int]) -> list[int]:
    """InterPodAffinity's NormalizeScore."""
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    if hi - lo <= 0:
        return [0 for _ in scores]
    return [int(MAX_SCORE * ((s - lo) / (hi - lo))) for s in scores]
