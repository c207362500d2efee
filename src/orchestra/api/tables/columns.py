"""The Table column definitions per kind (pkg/printers/internalversion's TableColumnDefinitions).

Owns: names, types, formats, descriptions and priorities of every column orchestra prints.
Must not import: the row printers or the Table envelope (rows must match these, not the reverse).
"""

from __future__ import annotations

from typing import Any

from orchestra.api.registry import ResourceType
from orchestra.api.tables.certificates import CSR_COLUMNS

# --- column definitions ------------------------------------------------------------------------------

NAME_DESC = (
    "Name must be unique within a namespace. Is required when creating resources, although some resources "
    "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
    "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
AGE_DESC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not "
    "guaranteed to be set in happens-before order across separate operations. Clients may not set this "
    "value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for "
    "lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
CONTAINERS_DESC = "Names of each container in the template."
IMAGES_DESC = "Images referenced by each container in the template."
SELECTOR_DESC = "A label query over pods that should match the replica count."


def _col(
    name: str, type_: str = "string", desc: str = "", *, priority: int = 0, fmt: str = ""
) -> dict[str, Any]:
    return {"name": name, "type": type_, "format": fmt, "description": desc, "priority": priority}


def _name_col(priority: int = 0) -> dict[str, Any]:
    return _col("Name", "string", NAME_DESC, priority=priority, fmt="name")


def _age_col() -> dict[str, Any]:
    return _col("Age", "string", AGE_DESC)


def _wide_template_cols(*, selector: bool = True) -> list[dict[str, Any]]:
    cols = [
        _col("Containers", desc=CONTAINERS_DESC, priority=1),
        _col("Images", desc=IMAGES_DESC, priority=1),
    ]
    if selector:
        cols.append(_col("Selector", desc=SELECTOR_DESC, priority=1))
    return cols


_COLUMNS: dict[str, list[dict[str, Any]]] = {
    "Pod": [
        _name_col(),
        _col("Ready", desc="The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", desc="The aggregate status of the containers in this pod."),
        _col("Restarts", desc="The number of times the containers in this pod have been "
                              "restarted and when the last container in this pod has restarted."),
        _age_col(),
        _col("IP", desc="podIP address allocated to the pod. Routable at least within "
                        "the cluster. Empty if not yet allocated.", priority=1),
        _col("Node", desc="NodeName indicates in which node this pod is scheduled.", priority=1),
        _col("Nominated Node", desc="nominatedNodeName is set only when this pod preempts other pods "
                                    "on the node, but it cannot be scheduled right away as preemption "
                                    "victims receive their graceful termination periods.", priority=1),
        _col("Readiness Gates", desc="If specified, all readiness gates will be "
                                     "evaluated for pod readiness.", priority=1),
    ],
    "Deployment": [
        _name_col(),
        _col("Ready", desc="Number of the pod with ready state"),
        _col("Up-to-date", desc="Total number of non-terminated pods targeted by this "
                                "deployment that have the desired template spec."),
        _col("Available", desc="Total number of available pods (ready for at least "
                               "minReadySeconds) targeted by this deployment."),
        _age_col(),
        *_wide_template_cols(),
    ],
    "ReplicaSet": [
        _name_col(),
        _col("Desired", "integer", "Replicas is the number of desired replicas."),
        _col("Current", "integer", "Replicas is the most recently observed number of replicas."),
        _col("Ready", "integer", "The number of ready replicas for this replica set."),
        _age_col(),
        *_wide_template_cols(),
    ],
    "DaemonSet": [
        _name_col(),
        _col("Desired", "integer", "The total number of nodes that should be running the daemon "
                                   "pod (including nodes correctly running the daemon pod)."),
        _col("Current", "integer", "The number of nodes that are running at least 1 "
                                   "daemon pod and are supposed to run the daemon pod."),
        _col("Ready", "integer", "The number of nodes that should be running the daemon pod "
                                 "and have one or more of the daemon pod running and ready."),
        _col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
        _col("Available", "integer", "The number of nodes that should be running the daemon "
                                     "pod and have one or more of the daemon pod running and "
                                     "available (ready for at least spec.minReadySeconds)"),
        _col("Node Selector", desc="NodeSelector is a selector which must "
                                   "be true for the pod to fit on a node."),
        _age_col(),
        *_wide_template_cols(),
    ],
    "StatefulSet": [
        _name_col(),
        _col("Ready", desc="Number of the pod with ready state"),
        _age_col(),
        *_wide_template_cols(selector=False),
    ],
    "Job": [
        _name_col(),
        _col("Status", desc="Status of the job."),
        _col("Completions", desc="The number of pods which reached phase Succeeded."),
        _col("Duration", desc="Time required to complete the job."),
        _age_col(),
        *_wide_template_cols(),
    ],
    "CronJob": [
        _name_col(),
        _col("Schedule", desc="The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
        _col("Timezone", desc="The time zone name for the given schedule, see "
                              "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
        _col("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it "
                                   "does not apply to already started executions.  Defaults to false."),
        _col("Active", "integer", "A list of pointers to currently running jobs."),
        _col("Last Schedule", desc="Information when was the last time the job was successfully scheduled."),
        _age_col(),
        *_wide_template_cols(),
    ],
    "Service": [
        _name_col(),
        _col("Type", desc="type determines how the Service is exposed."),
        _col("Cluster-IP", desc="clusterIP is the IP address of the service "
                                "and is usually assigned randomly."),
        _col("External-IP", desc="externalIPs is a list of IP addresses for which nodes in "
                                 "the cluster will also accept traffic for this service."),
        _col("Port(s)", desc="The list of ports that are exposed by this service."),
        _age_col(),
        _col("Selector", desc="Route service traffic to pods with label keys "
                              "and values matching this selector.", priority=1),
    ],
    "Endpoints": [
        _name_col(),
        _col("Endpoints", desc="The set of all endpoints is the union of all subsets."),
        _age_col(),
    ],
    "EndpointSlice": [
        _name_col(),
        _col("AddressType", desc="addressType specifies the type of address carried by this EndpointSlice."),
        _col("Ports", desc="ports specifies the list of network ports "
                           "exposed by each endpoint in this slice."),
        _col("Endpoints", desc="endpoints is a list of unique endpoints in this slice."),
        _age_col(),
    ],
    "Node": [
        _name_col(),
        _col("Status", desc="The status of the node"),
        _col("Roles", desc="The roles of the node"),
        _age_col(),
        _col("Version", desc="Kubelet Version reported by the node."),
        _col("Internal-IP", desc="List of addresses reachable to the node.", priority=1),
        _col("External-IP", desc="List of addresses reachable to the node.", priority=1),
        _col("OS-Image", desc="OS Image reported by the node from /etc/os-release "
                              "(e.g. Debian GNU/Linux 7 (wheezy)).", priority=1),
        _col("Kernel-Version", desc="Kernel Version reported by the node from 'uname "
                                    "-r' (e.g. 3.16.0-0.bpo.4-amd64).", priority=1),
        _col("Container-Runtime", desc="ContainerRuntime Version reported by the node through "
                                       "runtime remote API (e.g. containerd://1.4.2).", priority=1),
    ],
    "Namespace": [_name_col(), _col("Status", desc="The status of the namespace"), _age_col()],
    "Event": [
        _col("Last Seen", desc="The time at which the most recent occurrence of this event was recorded."),
        _col("Type", desc="Type of this event (Normal, Warning), new types could be added in the future"),
        _col("Reason", desc="This should be a short, machine understandable string that gives "
                            "the reason for the transition into the object's current status."),
        _col("Object", desc="The object that this event is about."),
        _col("Subobject", desc="If referring to a piece of an object instead of an entire object, "
                               "this string should contain a valid JSON/Go field access statement, "
                               "such as desiredState.manifest.containers[2].", priority=1),
        _col("Source", desc="The component reporting this event. Should be a "
                            "short machine understandable string.", priority=1),
        _col("Message", desc="A human-readable description of the status of this operation."),
        _col("First Seen", desc="The time at which the event was first recorded. (Time "
                                "of server receipt is in TypeMeta.)", priority=1),
        _col("Count", desc="The number of times this event has occurred.", priority=1),
        _name_col(priority=1),
    ],
    "ConfigMap": [_name_col(), _col("Data", desc="Data contains the configuration data."), _age_col()],
    "Secret": [
        _name_col(),
        _col("Type", desc="Used to facilitate programmatic handling of secret data."),
        _col("Data", desc="Data contains the secret data."),
        _age_col(),
    ],
    "ServiceAccount": [
        _name_col(),
        _col("Secrets", desc="Secrets is a list of the secrets in the same namespace that "
                             "pods running using this ServiceAccount are allowed to use."),
        _age_col(),
    ],
    "ControllerRevision": [
        _name_col(),
        _col("Controller", "string", "Controller of the object"),
        _col("Revision", "string", "Revision indicates the revision of the state represented by Data."),
        _age_col(),
    ],
    "PriorityClass": [
        _name_col(),
        _col("Value", "integer", "value represents the integer value of this priority "
                                 "class. This is the actual priority that pods receive when "
                                 "they have the name of this class in their pod spec."),
        _col("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should "
                                          "be considered as the default priority for pods that do "
                                          "not have any priority class. Only one PriorityClass can "
                                          "be marked as `globalDefault`. However, if more than one "
                                          "PriorityClasses exists with their `globalDefault` field "
                                          "set to true, the smallest value of such global default "
                                          "PriorityClasses will be used as the default priority."),
        _age_col(),
        _col("PreemptionPolicy", "string", "preemptionPolicy is the Policy for preempting pods with "
                                           "lower priority. One of Never, PreemptLowerPriority. "
                                           "Defaults to PreemptLowerPriority if unset."),
    ],
    "PodDisruptionBudget": [
        _name_col(),
        _col("Min Available", desc="The minimum number of pods that must be available."),
        _col("Max Unavailable", desc="The maximum number of pods that may be unavailable."),
        _col("Allowed Disruptions", "integer", "Calculated number of pods that "
                                               "may be disrupted at this time."),
        _age_col(),
    ],
    "PersistentVolume": [
        _name_col(),
        _col("Capacity", desc=(
            "capacity is the description of the persistent volume's resources and capacity. More info: "
            "https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"
        )),
        _col("Access Modes", desc=(
            "accessModes contains all ways the volume can be mounted. More info: "
            "https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes"
        )),
        _col("Reclaim Policy", desc=(
            "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from "
            "its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete "
            "(default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must "
            "be supported by the volume plugin underlying this PersistentVolume. More info: "
            "https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming"
        )),
        _col("Status", desc=(
            "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: "
            "https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase"
        )),
        _col("Claim", desc=(
            "claimRef is part of a bi-directional binding between PersistentVolume and "
            "PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative "
            "bind between PV and PVC. More info: "
            "https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding"
        )),
        _col("StorageClass", desc="StorageClass of the pv"),
        _col("VolumeAttributesClass", desc="VolumeAttributesClass of the pv"),
        _col("Reason", desc="reason is a brief CamelCase string that describes any failure "
                            "and is meant for machine parsing and tidy display in the CLI."),
        _age_col(),
        _col("VolumeMode", desc="volumeMode defines if a volume is intended to be used with a "
                                "formatted filesystem or to remain in raw block state. Value of "
                                "Filesystem is implied when not included in spec.", priority=1),
    ],
    "PersistentVolumeClaim": [
        _name_col(),
        _col("Status", desc="phase represents the current phase of PersistentVolumeClaim."),
        _col("Volume", desc="volumeName is the binding reference to "
                            "the PersistentVolume backing this claim."),
        _col("Capacity", desc="capacity represents the actual resources of the underlying volume."),
        _col("Access Modes", desc=(
            "accessModes contains the actual access modes the volume backing the PVC has. More info: "
            "https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1"
        )),
        _col("StorageClass", desc="StorageClass of the pvc"),
        _col("VolumeAttributesClass", desc="VolumeAttributesClass of the pvc"),
        _age_col(),
        _col("VolumeMode", desc="volumeMode defines what type of volume is required by the claim. Value "
                                "of Filesystem is implied when not included in claim spec.", priority=1),
    ],
    "StorageClass": [
        _name_col(),
        _col("Provisioner", desc="provisioner indicates the type of the provisioner."),
        _col("ReclaimPolicy", desc="reclaimPolicy controls the reclaimPolicy for dynamically provisioned "
                                   "PersistentVolumes of this storage class. Defaults to Delete."),
        _col("VolumeBindingMode", desc="volumeBindingMode indicates how PersistentVolumeClaims "
                                       "should be provisioned and bound.  When unset, "
                                       "VolumeBindingImmediate is used. This field is only honored "
                                       "by servers that enable the VolumeScheduling feature."),
        _col("AllowVolumeExpansion", desc="allowVolumeExpansion shows whether the "
                                          "storage class allow volume expand."),
        _age_col(),
    ],
    "ResourceQuota": [
        _name_col(),
        _age_col(),
        _col("Request", desc="Request represents a minimum amount of cpu/memory that a "
                             "container may consume."),
        _col("Limit", desc="Limits control the maximum amount of cpu/memory that a container may use "
                           "independent of contention on the node."),
    ],
    "LimitRange": [_name_col(), _col("Created At", "date", AGE_DESC)],
    "Lease": [
        _name_col(),
        _col("Holder", desc="holderIdentity contains the identity of the holder of a current lease."),
        _age_col(),
    ],
    "ReplicationController": [
        _name_col(),
        _col("Desired", "integer", (
            "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit "
            "zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/"
            "controllers/replicationcontroller#what-is-a-replicationcontroller"
        )),
        _col("Current", "integer", (
            "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/"
            "docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"
        )),
        _col("Ready", "integer", "The number of ready replicas for this replication controller."),
        _age_col(),
        *_wide_template_cols(selector=False),
        _col("Selector", desc=(
            "Selector is a label query over pods that should match the Replicas count. If Selector is empty, "
            "it is defaulted to the labels present on the Pod template. Label keys and values that must "
            "match in order to be controlled by this replication controller, if empty defaulted to labels on "
            "Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/"
            "labels/#label-selectors"
        ), priority=1),
    ],
    "PodTemplate": [
        _name_col(),
        _col("Containers", desc=CONTAINERS_DESC),
        _col("Images", desc=IMAGES_DESC),
        _col("Pod Labels", desc="The labels for the pod template."),
    ],
    "ComponentStatus": [
        _name_col(),
        _col("Status", desc="Status of the component conditions"),
        _col("Message", desc="Message of the component conditions"),
        _col("Error", desc="Error of the component conditions"),
    ],
    "APIService": [
        _name_col(),
        _col("Service", desc="The reference to the service that hosts this API endpoint."),
        _col("Available", desc="Whether this service is available."),
        _age_col(),
    ],
    "Ingress": [
        _name_col(),
        _col("Class", desc=(
            "The name of the IngressClass resource that should be used for additional configuration"
        )),
        _col("Hosts", desc="Hosts that incoming requests are matched against before the ingress rule"),
        _col("Address", desc="Address is a list containing ingress points for the load-balancer"),
        _col("Ports", desc="Ports of TLS configurations that open"),
        _age_col(),
    ],
    "IngressClass": [
        _name_col(),
        _col("Controller", desc="Controller that is responsible for handling this class"),
        _col("Parameters", desc="A reference to a resource with additional parameters"),
        _age_col(),
    ],
    "NetworkPolicy": [
        _name_col(),
        # kube 1.32 takes this from extensions/v1beta1's NetworkPolicySpec, double spaces included
        _col("Pod-Selector", desc=(
            "Selects the pods to which this NetworkPolicy object applies.  The array of ingress rules is "
            "applied to any pods selected by this field. Multiple network policies can select the same set "
            "of pods.  In this case, the ingress rules for each are combined additively. This field is NOT "
            "optional and follows standard label selector semantics. An empty podSelector matches all pods "
            "in this namespace."
        )),
        _age_col(),
    ],
    "HorizontalPodAutoscaler": [
        _name_col(),
        _col("Reference", desc=(
            "scaleTargetRef points to the target resource to scale, and is used to the pods for which "
            "metrics should be collected, as well as to actually change the replica count."
        )),
        _col("Targets", desc=(
            "metrics contains the specifications for which to use to calculate the desired replica count "
            "(the maximum replica count across all metrics will be used).  The desired replica count is "
            "calculated multiplying the ratio between the target value and the current value by the current "
            "number of pods.  Ergo, metrics used must decrease as the pod count is increased, and "
            "vice-versa.  See the individual metric source types for more information about how each type of "
            "metric must respond. If not set, the default metric will be set to 80% average CPU utilization."
        )),
        _col("MinPods", desc=(
            "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale "
            "down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate "
            "HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is "
            "active as long as at least one metric value is available."
        )),
        _col("MaxPods", desc=(
            "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. "
            "It cannot be less that minReplicas."
        )),
        _col("Replicas", desc=(
            "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen "
            "by the autoscaler."
        )),
        _age_col(),
    ],
    **{kind: [
        _name_col(),
        _col("Role", desc=(
            f"RoleRef can {ref}. If the RoleRef cannot be resolved, the Authorizer must return an error. "
            "This field is immutable."
        )),
        _age_col(),
        *(_col(c, desc=f"{c} in the {kind[0].lower()}{kind[1:]}", priority=1)
          for c in ("Users", "Groups", "ServiceAccounts")),
    ] for kind, ref in (
        ("RoleBinding", "reference a Role in the current namespace or a ClusterRole in the global namespace"),
        ("ClusterRoleBinding", "only reference a ClusterRole in the global namespace"),
    )},
}  # fmt: skip

_GENERIC_COLUMNS = [
    _name_col(),
    _col(
        "Created At",
        "date",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    ),
]


def column_definitions(rt: ResourceType) -> list[dict[str, Any]]:
    """The Table columns for `rt` (priority 1 = shown only with `-o wide`)."""
    if rt.kind == "CertificateSigningRequest":
        return [dict(c) for c in CSR_COLUMNS]
    return [dict(c) for c in _COLUMNS.get(rt.kind, _GENERIC_COLUMNS)]
