"""Per-kind create/update strategies (kube-apiserver's `PrepareForCreate`/`PrepareForUpdate`).

Owns: what the server resets, derives or keeps for each kind on create and update (status reset to
the zero status kube serializes, pod QoS class and SchedulingGated condition, job selectors,
namespace phase, a Local APIService's Available condition), what a write through a subresource may
change (status, namespaces/finalize, pods/ephemeralcontainers: `for_subresource`), and which kinds
bump `metadata.generation`.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.policy.crd import strategy as crd_strategy
from orchestra.api.registry import ResourceType
from orchestra.objects import Obj, deep_copy, meta, now_rfc3339

# subresources besides status that the update/patch verbs write, each with a strategy of its own
# (for_subresource); scale, binding, eviction and the streams have verbs of their own
_OWN_SUBRESOURCES = {("Namespace", "finalize"), ("Pod", "ephemeralcontainers"),
                     ("CertificateSigningRequest", "approval")}
# Kinds whose create keeps a client-supplied status (kubelets create Nodes with status; events and
# leases have no status; everything else starts with an empty status like kube-apiserver).
_KEEP_STATUS_ON_CREATE = {
    "Node",
    "Event",
    "Lease",
    "Endpoints",
    "EndpointSlice",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
}
# Kinds without a spec generation (kube-apiserver leaves generation unset for them).
_NO_GENERATION = {
    "Event",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "EndpointSlice",
    "Lease",
    "ServiceAccount",
    "Namespace",
    "Node",
    "PriorityClass",
    "ControllerRevision",
    "APIService",
    "HorizontalPodAutoscaler",
    "ResourceQuota",
    "LimitRange",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
}

# The status each kind starts with, as kube-apiserver returns it from a create: its Go status struct
# at its zero value, encoded (fields without omitempty and non-pointer structs are always written, so
# a Deployment answers `"status":{}` and a ReplicaSet `"status":{"replicas":0}`), after defaulting
# (SetDefaults_PersistentVolume[Claim] set phase Pending). Pods and namespaces: their hooks below.
_ZERO_STATUS: dict[str, Obj] = {
    "Service": {"loadBalancer": {}},
    "Deployment": {},
    "ReplicaSet": {"replicas": 0},
    "ReplicationController": {"replicas": 0},
    "DaemonSet": {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                  "numberReady": 0},
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "Job": {},
    "CronJob": {},
    "PodDisruptionBudget": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                            "expectedPods": 0},
    "PersistentVolumeClaim": {"phase": "Pending"},
    "PersistentVolume": {"phase": "Pending"},
    "Ingress": {"loadBalancer": {}},
    "ResourceQuota": {},  # hard and used are omitempty; the resourcequota controller fills them in
    # autoscaling/v2, the stored version (desiredReplicas and currentMetrics are not omitempty);
    # autoscaling/v1 shows it as {"currentReplicas": 0, "desiredReplicas": 0} (api/conversion/hpa.py).
    "HorizontalPodAutoscaler": {"desiredReplicas": 0, "currentMetrics": None},
    "CertificateSigningRequest": {},  # conditions and certificate are omitempty
}
# A Node keeps the status its kubelet creates it with; its non-pointer structs are written anyway.
_NODE_STATUS_STRUCTS: dict[str, Obj] = {
    "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
    "nodeInfo": {field: "" for field in (
        "machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
        "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture")},
}


def zero_status(kind: str) -> Obj | None:
    """The status a new object of `kind` starts with (a fresh copy), or None if it keeps its own."""
    zero = _ZERO_STATUS.get(kind)
    return None if zero is None else {k: (dict(v) if isinstance(v, dict) else v) for k, v in zero.items()}


def tracks_generation(rt: ResourceType) -> bool:
    return rt.kind not in _NO_GENERATION


def prepare_for_create(rt: ResourceType, obj: Obj) -> None:
    if rt.has_subresource("status") and rt.kind not in _KEEP_STATUS_ON_CREATE:
        obj.pop("status", None)
        zero = zero_status(rt.kind)
        if zero is not None:
            obj["status"] = zero
    hook = _CREATE_HOOKS.get(rt.kind)
    if hook:
        hook(obj)


def prepare_for_update(rt: ResourceType, new: Obj, old: Obj) -> None:
    if rt.kind == "Service":
        _service_keep_allocations(new, old)
    if rt.kind == "Pod":  # the Priority admission plugin keeps what it computed on create
        nspec, ospec = _spec(new), old.get("spec") or {}
        for field in ("priority", "preemptionPolicy"):
            if nspec.get(field) is None and ospec.get(field) is not None:
                nspec[field] = ospec[field]
    if rt.kind == "CertificateSigningRequest":  # kube's csrStrategy: the request never changes
        new["spec"] = old.get("spec") or {}
    if rt.kind == "CustomResourceDefinition":
        crd_strategy.prepare_update(new, old)
    if rt.kind == "Namespace":
        new["status"] = old.get("status") or {"phase": "Active"}
        if (old.get("metadata") or {}).get("deletionTimestamp"):
            new["status"] = {**new["status"], "phase": "Terminating"}


def takes_write(rt: ResourceType, subresource: str, verb: str) -> bool:
    """Whether `verb` (update, patch) may write through `subresource` of `rt` ("": the object itself).
    Only a subresource the type has, with that verb: an events.k8s.io Event has no status, and
    namespaces/finalize takes only update."""
    if not subresource:
        return True
    sub = next((s for s in rt.subresources if s.name == subresource), None)
    return (sub is not None and verb in sub.verbs
            and (subresource == "status" or (rt.kind, subresource) in _OWN_SUBRESOURCES))


def for_subresource(old: Obj, new: Obj, subresource: str) -> Obj | None:
    """What a write through `subresource` stores: the stored object with only the part that
    subresource may change taken from the write (kube's statusStrategy, namespaceFinalizeStrategy and
    podEphemeralContainersStrategy PrepareForUpdate); None for a write of the object itself."""
    if subresource == "status":
        merged = deep_copy(old)
        merged["status"] = new.get("status", {})
        return merged
    if subresource == "finalize":  # namespaces/finalize: only spec.finalizers changes
        merged = deep_copy(old)
        spec = new.get("spec")
        finalizers = list((spec if isinstance(spec, dict) else {}).get("finalizers") or [])
        merged["spec"] = {**(merged.get("spec") or {}), "finalizers": finalizers}
        return merged
    if subresource == "ephemeralcontainers":
        return _with_ephemeral_containers(old, new)
    return None


def _with_ephemeral_containers(old: Obj, new: Obj) -> Obj:
    """dropNonEphemeralContainerUpdates: the stored pod with only its spec.ephemeralContainers taken
    from the write."""
    merged = deep_copy(old)
    spec = new.get("spec")
    ephemeral = spec.get("ephemeralContainers") if isinstance(spec, dict) else None
    merged_spec = merged.setdefault("spec", {})
    if ephemeral is None:
        merged_spec.pop("ephemeralContainers", None)
    else:
        merged_spec["ephemeralContainers"] = ephemeral
    return merged


def _spec(obj: Obj) -> Obj:
    """`obj`'s spec to fill in. `"spec": null` is Go's zero struct, an empty spec (validation then
    names what it lacks); a spec of another type is left for validation and gets nothing."""
    spec = obj.get("spec")
    if spec is None:
        spec = obj["spec"] = {}
    return spec if isinstance(spec, dict) else {}


def _service_keep_allocations(new: Obj, old: Obj) -> None:
    """Like kube's patchAllocatedValues: an update that leaves out clusterIP/nodePort keeps them."""
    nspec, ospec = _spec(new), old.get("spec") or {}
    if (
        not nspec.get("clusterIP")
        and ospec.get("clusterIP")
        and nspec.get("type", "ClusterIP") != "ExternalName"
    ):
        nspec["clusterIP"] = ospec["clusterIP"]
        nspec["clusterIPs"] = ospec.get("clusterIPs") or [ospec["clusterIP"]]
    if nspec.get("type") in ("NodePort", "LoadBalancer"):
        old_ports = {
            (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in ospec.get("ports") or []
        }
        for p in nspec.get("ports") or []:
            if not p.get("nodePort") and old_ports.get((p.get("port"), p.get("protocol", "TCP"))):
                p["nodePort"] = old_ports[(p.get("port"), p.get("protocol", "TCP"))]


def _pod_create(pod: Obj) -> None:
    spec = pod.get("spec") or {}
    status: dict[str, Any] = {"phase": "Pending", "qosClass": qos_class(spec)}
    if spec.get("schedulingGates"):  # kube's applySchedulingGatedCondition; the scheduler skips the pod
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                                 "lastTransitionTime": None, "reason": "SchedulingGated",
                                 "message": "Scheduling is blocked due to non-empty scheduling gates"}]
    pod["status"] = status


def _node_create(node: Obj) -> None:
    status = node.get("status")
    status = node["status"] = status if isinstance(status, dict) else {}
    for field, zero in _NODE_STATUS_STRUCTS.items():
        given = status.get(field)
        status[field] = {**zero, **given} if isinstance(given, dict) else dict(zero)


def _namespace_create(ns: Obj) -> None:
    ns["status"] = {"phase": "Active"}


def _job_create(job: Obj) -> None:
    """Like the Job strategy: a generated selector on controller-uid unless manualSelector."""
    spec = job.setdefault("spec", {})
    if spec.get("manualSelector"):
        return
    uid = meta(job).get("uid", "")  # read-only: the core has set metadata (name, uid) by now
    name = meta(job).get("name", "")
    labels = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    }
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    tmeta = spec.setdefault("template", {}).setdefault("metadata", {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}


def _apiservice_create(service: Obj) -> None:
    """The APIService strategy: status reset; a Local one (no spec.service) is available at once."""
    status: Obj = {}
    if not (service.get("spec") or {}).get("service"):
        status["conditions"] = [{"type": "Available", "status": "True", "lastTransitionTime": now_rfc3339(),
                                 "reason": "Local", "message": "Local APIServices are always available"}]
    service["status"] = status


_CREATE_HOOKS = {"Pod": _pod_create, "Namespace": _namespace_create, "Job": _job_create,
                 "Node": _node_create, "CustomResourceDefinition": crd_strategy.prepare_create,
                 "APIService": _apiservice_create}


def qos_class(spec: Obj) -> str:
    """Kubernetes QoS class from requests/limits of all containers."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        limits = res.get("limits") or {}
        requests = {**limits, **(res.get("requests") or {})}
        if limits or requests:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in limits or str(requests.get(r)) != str(limits.get(r)):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
