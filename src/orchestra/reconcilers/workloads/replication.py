"""ReplicationController controller (kube's pkg/controller/replication: the ReplicaSet controller run
on ReplicationControllers through a conversion adapter).

Owns: only what differs from replicaset.py — the kind, the controller's name in events
("replication-controller") and the selector, a plain label map matched by equality
(labels.SelectorFromSet). Claiming, slow-start creates, victim order, status (replicas,
fullyLabeledReplicas, readyReplicas, availableReplicas, observedGeneration, ReplicaFailure) and the
events are the ReplicaSet controller's.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

from orchestra.api.machinery.selectors import LabelSelector, selector_from_set
from orchestra.objects import Obj, spec
from orchestra.reconcilers.workloads.replicaset import ReplicaSetController


class ReplicationControllerController(ReplicaSetController):
    name = "replication-controller"
    kind = "ReplicationController"

    def selector_of(self, owner: Obj) -> LabelSelector:
        return selector_from_set(spec(owner).get("selector"))
