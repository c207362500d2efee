"""DefaultPreemption's decision (PostFilter): which node to free, and which pods to evict there.

Owns (kube's preemption.Evaluator, without PodDisruptionBudgets and extenders):
  * eligibility — preemptionPolicy Never, or a lower-priority pod already terminating by preemption
    on the pod's nominated node, make it wait;
  * candidates — nodes whose rejection preemption might resolve; on each, remove every pod of
    lower priority, check the pod fits, then reprieve victims most important first while it still
    fits (minimal victims, lowest priority evicted first);
  * the choice — fewest high-priority victims: the lowest highest-victim priority, then the lowest
    sum of priorities, then the fewest victims, then the first;
  * the message kube appends after "preemption: " when nothing helps.
The API side (DisruptionTarget condition, graceful delete, events, nominatedNodeName) is the
scheduler's; this module only decides. Must not import: client, controller.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from orchestra.reconcilers.scheduler.filters import Status
from orchestra.reconcilers.scheduler.framework import Diagnosis, Framework
from orchestra.reconcilers.scheduler.nodeinfo import NodeInfo
from orchestra.reconcilers.scheduler.podinfo import PodInfo

PLUGIN = "DefaultPreemption"
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NOT_ELIGIBLE_POLICY = "not eligible due to preemptionPolicy=Never."
NOT_ELIGIBLE_TERMINATING = "not eligible due to a terminating pod on the nominated node."
MIN_CANDIDATES_PERCENTAGE = 10  # minCandidateNodesPercentage
MIN_CANDIDATES_ABSOLUTE = 100  # minCandidateNodesAbsolute
INT32_OFFSET = 2**31  # kube adds MaxInt32 + 1 so negative priorities sum sensibly


@attrs.frozen
class Candidate:
    node: str
    victims: tuple[PodInfo, ...]


@attrs.frozen
class Outcome:
    candidate: Candidate | None
    message: str  # the PostFilter message ("" when a candidate was found)


def terminating_by_preemption(pod: PodInfo) -> bool:
    if not pod.terminating:
        return False
    return any(c.get("type") == "DisruptionTarget" and c.get("reason") == "PreemptionByScheduler"
               for c in (pod.obj.get("status") or {}).get("conditions") or [])


def eligible(fw: Framework, pod: PodInfo, diagnosis: Diagnosis) -> str:
    """"" when the pod may preempt, else kube's reason why not."""
    if (pod.obj.get("spec") or {}).get("preemptionPolicy") == "Never":
        return NOT_ELIGIBLE_POLICY
    nominated = str((pod.obj.get("status") or {}).get("nominatedNodeName") or "")
    if nominated:
        status = diagnosis.statuses.get(nominated)
        if status is not None and not status.resolvable:
            return ""
        info = fw.cache.nodes.get(nominated)
        if info is not None and any(p.priority < pod.priority and terminating_by_preemption(p)
                                    for p in info.pods.values()):
            return NOT_ELIGIBLE_TERMINATING
    return ""


def _importance(p: PodInfo) -> tuple[int, str]:
    """MoreImportantPod: higher priority, then earlier start (creation time here)."""
    return (-p.priority, p.created)


def select_victims(fw: Framework, pod: PodInfo, node: NodeInfo) -> tuple[list[PodInfo] | None, Status | None]:
    lower = [p for p in node.pods.values() if p.priority < pod.priority]
    if not lower:
        return None, Status(PLUGIN, False, (NO_VICTIMS,))
    trial = node.clone()
    for p in lower:
        trial.remove_pod(p.key)
    nodes = [trial if n.name == node.name else n for n in fw.cache.node_list()]
    state = fw.prefilter(pod, nodes)
    status, _ = fw.filter_node(pod, trial, state)
    if status is not None:
        return None, status
    victims = []
    for p in sorted(lower, key=_importance):
        trial.add_pod(p)
        state = fw.prefilter(pod, nodes)
        if fw.filter_node(pod, trial, state)[0] is not None:
            trial.remove_pod(p.key)
            victims.append(p)
    return victims, None


def _pick(candidates: Sequence[Candidate]) -> Candidate:
    def rank(c: Candidate) -> tuple[int, int, int]:
        highest = max(v.priority for v in c.victims) if c.victims else -INT32_OFFSET
        total = sum(v.priority + INT32_OFFSET for v in c.victims)
        return (highest, total, len(c.victims))

    return min(candidates, key=rank)  # min keeps the first of equals


def preempt(fw: Framework, pod: PodInfo, diagnosis: Diagnosis) -> Outcome:
    reason = eligible(fw, pod, diagnosis)
    if reason:
        return Outcome(None, "preemption: " + reason)
    all_nodes = fw.cache.node_list()
    potential = [n for n in all_nodes if (s := diagnosis.statuses.get(n.name)) is not None and s.resolvable]
    result = Diagnosis(len(all_nodes), absent_reason=NOT_HELPFUL)
    candidates: list[Candidate] = []
    if potential:
        wanted = min(
            len(potential), max(len(potential) * MIN_CANDIDATES_PERCENTAGE // 100, MIN_CANDIDATES_ABSOLUTE)
        )
        offset = fw.rng.randrange(len(potential))
        for i in range(len(potential)):
            node = potential[(offset + i) % len(potential)]
            victims, status = select_victims(fw, pod, node)
            if victims is None:
                assert status is not None
                result.statuses[node.name] = status
                continue
            candidates.append(Candidate(node.name, tuple(victims)))
            if len(candidates) >= wanted:
                break
    if not candidates:
        return Outcome(None, "preemption: " + result.message())
    return Outcome(_pick(candidates), "")
