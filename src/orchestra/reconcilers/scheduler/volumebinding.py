"""kube-scheduler's VolumeBinding plugin, reduced to what orchestra's storage needs.

Owns, for a pod with `persistentVolumeClaim` volumes (pods without any never get here):
  * PreFilter: a missing claim is `persistentvolumeclaim "x" not found`, a claim being deleted is
    `persistentvolumeclaim "x" is being deleted`, an unbound claim whose class binds Immediately (or
    that has no class) is "pod has unbound immediate PersistentVolumeClaims" — all unresolvable;
  * Filter: a bound claim's PV node affinity (and a delayed claim's selected node) must match the
    node, else "node(s) had volume node affinity conflict";
  * PreBind: unbound WaitForFirstConsumer claims get volume.kubernetes.io/selected-node (the
    persistent volume controller then provisions on that node), and the pod is bound only once
    every such claim is Bound (the scheduler's binding task waits, up to BIND_TIMEOUT like kube's
    bindTimeoutSeconds).
Must not import: client, controller.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from orchestra.api.policy.storageclass import claim_class
from orchestra.objects import Obj, namespace_of
from orchestra.reconcilers.scheduler.filters import Status, term_matches
from orchestra.reconcilers.scheduler.nodeinfo import NodeInfo

Getter = Callable[[str | None, str], Obj | None]
PLUGIN = "VolumeBinding"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
BIND_TIMEOUT = 600.0  # kube-scheduler's VolumeBinding bindTimeoutSeconds
ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
ERR_NODE_CONFLICT = "node(s) had volume node affinity conflict"
_CONFLICT = Status(PLUGIN, False, (ERR_NODE_CONFLICT,))


def claim_names(pod: Obj) -> list[str]:
    volumes = (pod.get("spec") or {}).get("volumes")
    if not volumes:
        return []
    return [str(v["persistentVolumeClaim"].get("claimName") or "") for v in volumes
            if isinstance(v.get("persistentVolumeClaim"), dict)]


@attrs.frozen
class PodVolumes:
    """What PreFilter found for one pod."""

    prefilter_msg: str = ""
    node_terms: tuple[list[Obj], ...] = ()  # each bound PV's required nodeSelectorTerms
    selected_nodes: frozenset[str] = frozenset()
    delayed: tuple[str, ...] = ()  # unbound WaitForFirstConsumer claims (names) to annotate
    unbound: tuple[str, ...] = ()  # every unbound WaitForFirstConsumer claim: PreBind waits for them

    def filter(self, node: NodeInfo) -> Status | None:
        if self.selected_nodes and node.name not in self.selected_nodes:
            return _CONFLICT
        for terms in self.node_terms:
            if not any(term_matches(t, node.labels, node.name) for t in terms):
                return _CONFLICT
        return None


def pod_volumes(pod: Obj, names: list[str], claims: Getter, volumes: Getter, classes: Getter) -> PodVolumes:
    """PreFilter over the pod's claims (kube's podVolumeClaims + GetEligibleNodes, reduced)."""
    ns = namespace_of(pod)
    terms: list[list[Obj]] = []
    selected: set[str] = set()
    delayed: list[str] = []
    unbound: list[str] = []
    for name in names:
        pvc = claims(ns, name)
        if pvc is None:
            return PodVolumes(prefilter_msg=f'persistentvolumeclaim "{name}" not found')
        if (pvc.get("metadata") or {}).get("deletionTimestamp"):
            return PodVolumes(prefilter_msg=f'persistentvolumeclaim "{name}" is being deleted')
        volume_name = (pvc.get("spec") or {}).get("volumeName")
        if volume_name:
            pv = volumes(None, str(volume_name))
            required = (((pv or {}).get("spec") or {}).get("nodeAffinity") or {}).get("required")
            if required:
                terms.append(list(required.get("nodeSelectorTerms") or []))
            continue
        class_name = claim_class(pvc)
        sc = classes(None, class_name) if class_name else None
        if sc is None or sc.get("volumeBindingMode") != "WaitForFirstConsumer":
            return PodVolumes(prefilter_msg=ERR_UNBOUND_IMMEDIATE)
        unbound.append(name)
        node = ((pvc.get("metadata") or {}).get("annotations") or {}).get(SELECTED_NODE)
        if node:
            selected.add(str(node))
        else:
            delayed.append(name)
    if len(selected) > 1:
        return PodVolumes(node_terms=tuple(terms), selected_nodes=frozenset({""}))  # no node has them all
    return PodVolumes(node_terms=tuple(terms), selected_nodes=frozenset(selected), delayed=tuple(delayed),
                      unbound=tuple(unbound))


def claim_bound(pvc: Obj | None) -> bool:
    if pvc is None:
        return False
    return (
        bool((pvc.get("spec") or {}).get("volumeName")) and (pvc.get("status") or {}).get("phase") == "Bound"
    )
