"""Server-side defaulting, as kube-apiserver 1.32 does it on create and update.

Owns: the `SetDefaults_*` functions of the built-in kinds (core/v1, apps/v1, batch/v1, discovery/v1,
coordination/v1, storage/v1, networking/v1, autoscaling/v2) plus the ServiceAccount name a real
cluster always gives pods (its admission plugin, serviceaccount.py, may not be configured). One entry
point: `default(kind, obj)`.
Never overwrites a field the user set. Does not allocate anything (clusterIP, nodePort, Job selector
and controller-uid labels belong to the core).
Must not import: the store, the HTTP server, or anything above the api layer.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from orchestra.api.policy.crd.strategy import default_crd
from orchestra.objects import Obj, deep_copy, only_dicts
from orchestra.objects.quantity import QuantityError, parse_quantity

DEFAULT_FILE_MODE = 420  # 0644


def default(kind: str, obj: Obj) -> Obj:
    """Fill in kube's defaults for `kind` in place and return `obj` (an owned copy)."""
    fn = _BY_KIND.get(kind)
    if fn is not None:
        fn(obj)
    return obj


# --- helpers ---------------------------------------------------------------------------------------


def _map(parent: Obj, key: str) -> Obj:
    """parent[key] as a dict, creating it (or replacing a null) when absent."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = {}
        parent[key] = value
    return value


# --- pod spec --------------------------------------------------------------------------------------


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged image, else IfNotPresent (digest-only refs included)."""
    ref, _, digest = (image or "").partition("@")
    last = ref.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else ""
    if not tag and not digest:
        tag = "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_http_get(action: Obj) -> None:
    action.setdefault("path", "/")
    action.setdefault("scheme", "HTTP")


def _default_probe(probe: Obj) -> None:
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    if isinstance(probe.get("httpGet"), dict):
        _default_http_get(probe["httpGet"])
    if isinstance(probe.get("grpc"), dict):
        probe["grpc"].setdefault("service", "")


def _default_field_refs(env: list[Obj]) -> None:
    for var in env:
        ref = var.get("valueFrom", {}).get("fieldRef") if isinstance(var.get("valueFrom"), dict) else None
        if isinstance(ref, dict):
            ref.setdefault("apiVersion", "v1")


def _default_container(c: Obj, *, host_network: bool) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = image_pull_policy(str(c.get("image") or ""))
    if not isinstance(c.get("resources"), dict):
        c["resources"] = {}
    for port in only_dicts(c.get("ports")):
        port.setdefault("protocol", "TCP")
        if host_network and "containerPort" in port:
            port.setdefault("hostPort", port["containerPort"])
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        if isinstance(c.get(name), dict):
            _default_probe(c[name])
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict) and isinstance(lifecycle[hook].get("httpGet"), dict):
                _default_http_get(lifecycle[hook]["httpGet"])
    _default_field_refs(only_dicts(c.get("env")))


VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
    "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
    "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
    "image",
)  # fmt: skip


def _default_volume(v: Obj) -> None:
    if not any(k in v for k in VOLUME_SOURCES):
        v["emptyDir"] = {}
    for key in ("configMap", "secret", "downwardAPI", "projected"):
        if isinstance(v.get(key), dict):
            v[key].setdefault("defaultMode", DEFAULT_FILE_MODE)
    if isinstance(v.get("hostPath"), dict):
        v["hostPath"].setdefault("type", "")
    downward = [v.get("downwardAPI")]
    if isinstance(v.get("projected"), dict):
        downward += [source.get("downwardAPI") for source in only_dicts(v["projected"].get("sources"))]
    for source in downward:
        for item in only_dicts(source.get("items")) if isinstance(source, dict) else []:
            if isinstance(item.get("fieldRef"), dict):
                item["fieldRef"].setdefault("apiVersion", "v1")
    if isinstance(v.get("ephemeral"), dict):
        template = v["ephemeral"].get("volumeClaimTemplate")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            template["spec"].setdefault("volumeMode", "Filesystem")


def default_pod_spec(spec: Obj) -> Obj:
    """SetDefaults_PodSpec plus the container/volume/probe defaults (pods and pod templates)."""
    host_network = bool(spec.get("hostNetwork"))
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("restartPolicy", "Always")
    if not isinstance(spec.get("securityContext"), dict):
        spec["securityContext"] = {}
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    if not isinstance(spec.get("containers"), list):
        spec["containers"] = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in only_dicts(spec.get(key)):
            _default_container(c, host_network=host_network)
    for v in only_dicts(spec.get("volumes")):
        _default_volume(v)
    return spec


def _requests_from_limits(spec: Obj) -> None:
    """SetDefaults_Pod: a container with limits but no request for a resource requests its limit."""
    for key in ("initContainers", "containers"):
        for c in only_dicts(spec.get(key)):
            res = c.get("resources")
            if isinstance(res, dict) and isinstance(res.get("limits"), dict) and res["limits"]:
                requests = _map(res, "requests")
                for name, qty in res["limits"].items():
                    requests.setdefault(name, qty)


def _has_any(res: Any, kind: str) -> bool:
    return isinstance(res, dict) and isinstance(res.get(kind), dict) and bool(res[kind])


def qos_class(spec: Obj) -> str:
    """kube's GetPodQOS for cpu and memory: BestEffort, Guaranteed or Burstable."""
    containers = only_dicts(spec.get("initContainers")) + only_dicts(spec.get("containers"))
    if not any(_has_any(c.get("resources"), k) for c in containers for k in ("requests", "limits")):
        return "BestEffort"
    for c in containers:
        res = c.get("resources") or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        for name in ("cpu", "memory"):
            if name not in limits:
                return "Burstable"
            try:
                if parse_quantity(requests.get(name, limits[name])) != parse_quantity(limits[name]):
                    return "Burstable"
            except QuantityError:
                return "Burstable"
    return "Guaranteed"


def _default_pod(pod: Obj) -> None:
    spec = default_pod_spec(_map(pod, "spec"))
    _requests_from_limits(spec)
    spec.setdefault("enableServiceLinks", True)
    # The ServiceAccount admission plugin's name, for cores without it; priority and preemptionPolicy
    # come from the Priority admission plugin (admission.py) on create, the NoExecute tolerations from
    # the DefaultTolerationSeconds plugin (tolerationseconds.py) the core is given.
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    status = _map(pod, "status")
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", qos_class(spec))


def _default_template(template: Any) -> None:
    if isinstance(template, dict):
        default_pod_spec(_map(template, "spec"))


# --- workloads -------------------------------------------------------------------------------------


def _unset_to(d: Obj, key: str, value: Any) -> None:
    """Default a pointer field: JSON null decodes to a nil pointer in Go, which defaulting fills like a
    missing one (a PUT with `"replicas": null` gets 1, as in kube)."""
    if d.get(key) is None:
        d[key] = value


def _default_deployment(obj: Obj) -> None:
    spec = _map(obj, "spec")
    _unset_to(spec, "replicas", 1)
    strategy = _map(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _map(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec.get("template"))


def _default_replicaset(obj: Obj) -> None:
    spec = _map(obj, "spec")
    _unset_to(spec, "replicas", 1)
    _default_template(spec.get("template"))


def _default_replication_controller(obj: Obj) -> None:
    """SetDefaults_ReplicationController: selector and labels from the template's labels, 1 replica."""
    spec = _map(obj, "spec")
    template = spec.get("template")
    template_meta = template.get("metadata") if isinstance(template, dict) else None
    labels = template_meta.get("labels") if isinstance(template_meta, dict) else None
    if isinstance(labels, dict):
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        metadata = _map(obj, "metadata")
        if not metadata.get("labels"):
            metadata["labels"] = dict(labels)
    _unset_to(spec, "replicas", 1)
    _default_template(template)


def _default_daemonset(obj: Obj) -> None:
    spec = _map(obj, "spec")
    strategy = _map(spec, "updateStrategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _map(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec.get("template"))


def _default_statefulset(obj: Obj) -> None:
    spec = _map(obj, "spec")
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = _map(spec, "updateStrategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _map(strategy, "rollingUpdate").setdefault("partition", 0)
    _unset_to(spec, "replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    retention = _map(spec, "persistentVolumeClaimRetentionPolicy")
    retention.setdefault("whenDeleted", "Retain")
    retention.setdefault("whenScaled", "Retain")
    for claim in only_dicts(spec.get("volumeClaimTemplates")):
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        _map(claim, "spec").setdefault("volumeMode", "Filesystem")
        _map(claim, "status").setdefault("phase", "Pending")
    _default_template(spec.get("template"))


def _default_job(obj: Obj) -> None:
    spec = _map(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    template = spec.get("template")
    template_meta = template.get("metadata") if isinstance(template, dict) else None
    labels = template_meta.get("labels") if isinstance(template_meta, dict) else None
    metadata = _map(obj, "metadata")
    if isinstance(labels, dict) and not metadata.get("labels"):
        metadata["labels"] = dict(labels)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    policy = spec.get("podFailurePolicy")
    if isinstance(policy, dict):
        for rule in only_dicts(policy.get("rules")):
            for pattern in only_dicts(rule.get("onPodConditions")):
                pattern.setdefault("status", "True")
    spec.setdefault("podReplacementPolicy", "Failed" if isinstance(policy, dict) else "TerminatingOrFailed")
    _default_template(template)


def _default_cronjob(obj: Obj) -> None:
    spec = _map(obj, "spec")
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    # SetDefaults_Job is on Job, not JobSpec: only the pod template inside is defaulted.
    job_template = spec.get("jobTemplate")
    if isinstance(job_template, dict) and isinstance(job_template.get("spec"), dict):
        _default_template(job_template["spec"].get("template"))


# --- core ------------------------------------------------------------------------------------------


def _default_service(obj: Obj) -> None:
    spec = _map(obj, "spec")
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = _map(_map(spec, "sessionAffinityConfig"), "clientIP")
        client_ip.setdefault("timeoutSeconds", 10800)
    spec.setdefault("type", "ClusterIP")
    svc_type = spec["type"]
    for port in only_dicts(spec.get("ports")):
        port.setdefault("protocol", "TCP")
        if port.get("targetPort") in (None, 0, "") and "port" in port:
            port["targetPort"] = port["port"]
    if svc_type in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if svc_type in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if svc_type == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    if svc_type != "ExternalName":
        # Set by the service REST storage on create (single-stack IPv4 cluster).
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("ipFamilies", ["IPv4"])
    _map(_map(obj, "status"), "loadBalancer")


def _default_namespace(obj: Obj) -> None:
    metadata = _map(obj, "metadata")
    name = metadata.get("name")
    if name:  # kube sets it whatever the client wrote, so selectors may rely on it
        _map(metadata, "labels")["kubernetes.io/metadata.name"] = name
    spec = _map(obj, "spec")
    spec.setdefault("finalizers", ["kubernetes"])
    _map(obj, "status").setdefault("phase", "Active")


def _default_secret(obj: Obj) -> None:
    obj.setdefault("type", "Opaque")
    # v1 -> internal conversion: stringData is write-only and merged into data (base64) on write.
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _map(obj, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _default_node(obj: Obj) -> None:
    status = obj.get("status")
    if isinstance(status, dict) and isinstance(status.get("capacity"), dict) and "allocatable" not in status:
        status["allocatable"] = dict(status["capacity"])


def _default_endpoints(obj: Obj) -> None:
    for subset in only_dicts(obj.get("subsets")):
        for port in only_dicts(subset.get("ports")):
            port.setdefault("protocol", "TCP")


def _default_endpointslice(obj: Obj) -> None:
    for port in only_dicts(obj.get("ports")):
        port.setdefault("name", "")
        port.setdefault("protocol", "TCP")


def _default_event(obj: Obj) -> None:
    obj.setdefault("involvedObject", {})
    _map(obj, "metadata")


def _noop(obj: Obj) -> None:
    _map(obj, "metadata")


def _default_api_service(obj: Obj) -> None:
    service = _map(obj, "spec").get("service")
    if isinstance(service, dict) and service.get("port") is None:  # SetDefaults_ServiceReference
        service["port"] = 443


def _default_priority_class(pc: Obj) -> None:
    pc.setdefault("preemptionPolicy", "PreemptLowerPriority")


def _default_pvc(obj: Obj) -> None:
    _map(obj, "spec").setdefault("volumeMode", "Filesystem")
    _map(obj, "status").setdefault("phase", "Pending")


def _default_pv(obj: Obj) -> None:
    spec = _map(obj, "spec")
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")  # the provisioner sets Delete explicitly
    spec.setdefault("volumeMode", "Filesystem")
    if isinstance(spec.get("hostPath"), dict):
        spec["hostPath"].setdefault("type", "")
    _map(obj, "status").setdefault("phase", "Pending")


def _default_storage_class(obj: Obj) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


def _default_ingress(obj: Obj) -> None:
    _map(_map(obj, "status"), "loadBalancer")  # IngressStatus is a struct: always serialized


def _default_ingress_class(obj: Obj) -> None:
    params = _map(obj, "spec").get("parameters")
    if isinstance(params, dict) and params.get("scope") is None:
        params["scope"] = "Cluster"


def _default_network_policy(obj: Obj) -> None:
    """SetDefaults_NetworkPolicy and SetDefaults_NetworkPolicyPort; spec and spec.podSelector are
    structs, so kube always serializes them (a policy sent without a podSelector selects every pod)."""
    spec = _map(obj, "spec")
    _map(spec, "podSelector")
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for direction in ("ingress", "egress"):
        for rule in only_dicts(spec.get(direction)):
            for port in only_dicts(rule.get("ports")):
                if port.get("protocol") is None:
                    port["protocol"] = "TCP"


# autoscaling/v2 SetDefaults_HorizontalPodAutoscaler: rules for what a given behavior leaves out. The
# scale-down window stays unset: the controller applies its --horizontal-pod-autoscaler-downscale-
# stabilization (300 s) then, as kube does.
_HPA_SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
    {"type": "Pods", "value": 4, "periodSeconds": 15},
    {"type": "Percent", "value": 100, "periodSeconds": 15}]}
_HPA_SCALE_DOWN = {"selectPolicy": "Max",
                   "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
_HPA_DEFAULT_METRIC = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                "averageUtilization": 80}}}


def _default_hpa(obj: Obj) -> None:
    spec = _map(obj, "spec")
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [deep_copy(_HPA_DEFAULT_METRIC)]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):  # GenerateHPAScale{Up,Down}Rules: fill in what each direction leaves unset
        for key, rules in (("scaleUp", _HPA_SCALE_UP), ("scaleDown", _HPA_SCALE_DOWN)):
            given = behavior.get(key)
            given = given if isinstance(given, dict) else {}
            behavior[key] = {**deep_copy(rules), **{k: v for k, v in given.items() if v is not None}}


def _default_limit_range(obj: Obj) -> None:
    """SetDefaults_LimitRangeItem for Container items: default from max, defaultRequest from default,
    then from min (an empty map stays out, as Go omits it)."""
    for item in only_dicts(_map(obj, "spec").get("limits")):
        if item.get("type") != "Container":
            continue
        for target, sources in (("default", ("max",)), ("defaultRequest", ("default", "min"))):
            values = dict(item.get(target) or {})
            for source in sources:
                for name, value in (item.get(source) or {}).items():
                    values.setdefault(name, value)
            if values:
                item[target] = values
def _default_binding(obj: Obj) -> None:
    """rbac/v1 SetDefaults_(Cluster)RoleBinding and SetDefaults_Subject."""
    group = "rbac.authorization.k8s.io"
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = group
    for subject in only_dicts(obj.get("subjects")):
        if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = group


_BY_KIND: dict[str, Callable[[Obj], None]] = {
    "Pod": _default_pod,
    "Deployment": _default_deployment,
    "ReplicaSet": _default_replicaset,
    "ReplicationController": _default_replication_controller,
    "PodTemplate": lambda obj: _default_template(_map(obj, "template")),
    "DaemonSet": _default_daemonset,
    "StatefulSet": _default_statefulset,
    "Job": _default_job,
    "CronJob": _default_cronjob,
    "Service": _default_service,
    "Namespace": _default_namespace,
    "Secret": _default_secret,
    "Node": _default_node,
    "Endpoints": _default_endpoints,
    "EndpointSlice": _default_endpointslice,
    "Event": _default_event,
    "ConfigMap": _noop,
    "ServiceAccount": _noop,
    "Lease": _noop,
    "PriorityClass": _default_priority_class,
    "PersistentVolumeClaim": _default_pvc,
    "PersistentVolume": _default_pv,
    "StorageClass": _default_storage_class,
    "APIService": _default_api_service,
    "LimitRange": _default_limit_range,
    "ResourceQuota": _noop,
    "Ingress": _default_ingress,
    "IngressClass": _default_ingress_class,
    "NetworkPolicy": _default_network_policy,
    "RoleBinding": _default_binding,
    "ClusterRoleBinding": _default_binding,
    "PodDisruptionBudget": _noop,  # policy/v1 defaults nothing (unhealthyPodEvictionPolicy stays unset)
    "HorizontalPodAutoscaler": _default_hpa,
    "CustomResourceDefinition": default_crd,
}
