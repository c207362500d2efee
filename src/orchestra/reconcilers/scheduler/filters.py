"""Node-local filter plugins of the default profile, in kube's order, with kube's failure reasons.

Owns: NodeUnschedulable, NodeName, TaintToleration, NodeAffinity (nodeSelector + required node
affinity), NodePorts and NodeResourcesFit — the filters whose verdict depends only on the pod and
the one node's NodeInfo. A node fails at the first filter that rejects it (kube stops there too),
with that filter's reasons (NodeResourcesFit may give several: "Insufficient cpu", "Insufficient
memory"). `resolvable=False` is kube's UnschedulableAndUnresolvable: preemption cannot help.
The cluster-wide filters (InterPodAffinity, PodTopologySpread) live in interpod.py / spread.py.
Must not import: client, controller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from orchestra.objects import labels_match, tolerations_tolerate, untolerated_taint
from orchestra.reconcilers.scheduler.nodeinfo import NodeInfo
from orchestra.reconcilers.scheduler.podinfo import CPU, EPHEMERAL, MEMORY, PODS, PodInfo

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
ERR_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_NODE_NAME = "node(s) didn't match the requested node name"
ERR_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
ERR_NODE_PORTS = "node(s) didn't have free ports for the requested pod ports"
ERR_TOO_MANY_PODS = "Too many pods"


class Status(NamedTuple):
    """A node's rejection: the plugin, whether preemption could help, and the reasons."""

    plugin: str
    resolvable: bool
    reasons: tuple[str, ...]


# --- node affinity ------------------------------------------------------------------------------

def _int(text: Any) -> int | None:
    try:
        return int(str(text))
    except ValueError:
        return None


def _expression(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(values) == 1:
        have, want = _int(labels[key]), _int(values[0])
        if have is None or want is None:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _field(expr: Mapping[str, Any], node_name: str) -> bool:
    if expr.get("key") != "metadata.name":
        return False
    values = expr.get("values") or []
    if expr.get("operator") == "In":
        return node_name in values
    if expr.get("operator") == "NotIn":
        return node_name not in values
    return False


def term_matches(term: Mapping[str, Any], labels: Mapping[str, str], node_name: str) -> bool:
    """One NodeSelectorTerm: all its expressions and fields; an empty term matches nothing."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    return all(_expression(e, labels) for e in exprs) and all(_field(f, node_name) for f in fields)


def node_matches_pod(pod: PodInfo, node: NodeInfo) -> bool:
    """nodeSelector and required node affinity (what NodeAffinity's filter and spread's policy use)."""
    labels = node.labels
    if not labels_match(pod.node_selector, labels):
        return False
    terms = pod.required_node_terms
    if terms is None:
        return True
    return any(term_matches(t, labels, node.name) for t in terms)


# --- the filters --------------------------------------------------------------------------------

def node_unschedulable(pod: PodInfo, node: NodeInfo) -> Status | None:
    if not node.unschedulable:
        return None
    taint = {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
    if tolerations_tolerate(pod.tolerations, taint):
        return None
    return Status("NodeUnschedulable", False, (ERR_UNSCHEDULABLE,))


def node_name(pod: PodInfo, node: NodeInfo) -> Status | None:
    if pod.node_name and pod.node_name != node.name:
        return Status("NodeName", False, (ERR_NODE_NAME,))
    return None


def taint_toleration(pod: PodInfo, node: NodeInfo) -> Status | None:
    if not node.taints:
        return None
    taint = untolerated_taint(node.taints, pod.tolerations, ("NoSchedule", "NoExecute"))
    if taint is None:
        return None
    reason = f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"
    return Status("TaintToleration", False, (reason,))


def node_affinity(pod: PodInfo, node: NodeInfo) -> Status | None:
    if not pod.node_selector and pod.required_node_terms is None:
        return None
    return None if node_matches_pod(pod, node) else Status("NodeAffinity", False, (ERR_NODE_AFFINITY,))


def node_ports(pod: PodInfo, node: NodeInfo) -> Status | None:
    if pod.host_ports and node.ports_conflict(pod.host_ports):
        return Status("NodePorts", True, (ERR_NODE_PORTS,))
    return None


def resources_fit(pod: PodInfo, node: NodeInfo) -> Status | None:
    reasons: list[str] = []
    unresolvable = False
    if len(node.pods) + 1 > node.alloc_pods:
        reasons.append(ERR_TOO_MANY_PODS)
    for name, want in pod.requests.items():
        if want <= 0 or name == PODS:
            continue
        alloc = node.allocatable.get(name, 0)
        if want > alloc - node.requested.get(name, 0):
            reasons.append(f"Insufficient {name}")
            unresolvable = unresolvable or (want > alloc and name in (CPU, MEMORY, EPHEMERAL))
    if not reasons:
        return None
    return Status("NodeResourcesFit", not unresolvable, tuple(_kube_order(reasons)))


def _kube_order(reasons: list[str]) -> list[str]:
    """fitsRequest reports pods, cpu, memory, ephemeral-storage, then extended resources."""
    rank = {ERR_TOO_MANY_PODS: 0, f"Insufficient {CPU}": 1, f"Insufficient {MEMORY}": 2,
            f"Insufficient {EPHEMERAL}": 3}
    return sorted(reasons, key=lambda r: (rank.get(r, 4), r))


LOCAL_FILTERS = (node_unschedulable, node_name, taint_toleration, node_affinity, node_ports, resources_fit)


def run_local_filters(pod: PodInfo, node: NodeInfo) -> Status | None:
    for f in LOCAL_FILTERS:
        status = f(pod, node)
        if status is not None:
            return status
    return None
