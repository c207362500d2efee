"""Server-side `Table` output (`kubectl get`), cell for cell like kube-apiserver 1.32's printers.

Owns: the column definitions and row printers of pkg/printers/internalversion for the kinds orchestra
serves, kube's HumanDuration, and the Table / PartialObjectMetadata envelope (also for watch events).
The apiserver always prints with Wide=true: every row carries the priority-1 cells too.
Must not import: the store, the HTTP server, or anything above the api layer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from orchestra.api.registry import ResourceType

Obj = dict[str, Any]
Cell = str | int | bool

# --- durations and timestamps ------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)  # Go's int(d.Seconds()) truncates toward zero
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60 * 2:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if rest == 0 else f"{hours // 24 // 365}y{rest}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (`2024-05-01T10:00:00Z`, optionally with fractions) or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def since(value: Any, now: datetime) -> str:
    """translateTimestampSince: `<unknown>` for a missing timestamp."""
    t = parse_time(value)
    if t is None:
        return "<unknown>"
    return human_duration((now - t).total_seconds())


# --- formatting helpers (labels, selectors, containers) --------------------------------------------------


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _ld(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted `k=v` joined by commas, `<none>` when empty."""
    labels = _d(labels)
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(sel: Any) -> str:
    """LabelSelectorAsSelector(sel).String(): requirements sorted by key; "" for nil or empty."""
    sel = _d(sel)
    reqs: list[tuple[str, str]] = [(k, f"{k}={v}") for k, v in _d(sel.get("matchLabels")).items()]
    for e in _ld(sel.get("matchExpressions")):
        key, op = str(e.get("key", "")), e.get("operator")
        values = ",".join(sorted(str(v) for v in e.get("values") or []))
        text = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(str(op), "")
        if not text:
            return "<invalid>"
        reqs.append((key, text))
    return ",".join(text for _, text in sorted(reqs, key=lambda r: r[0]))


def format_label_selector(sel: Any) -> str:
    """metav1.FormatLabelSelector: like selector_string but `<none>` when it is empty."""
    return selector_string(sel) or "<none>"


def layout_containers(template_spec: Any) -> tuple[str, str]:
    containers = _ld(_d(template_spec).get("containers"))
    return ",".join(str(c.get("name", "")) for c in containers), ",".join(
        str(c.get("image", "")) for c in containers
    )


def _template_spec(obj: Obj) -> Obj:
    return _d(_d(_d(obj.get("spec")).get("template")).get("spec"))


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
    "lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
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
        _col("Restarts", desc="The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
        _age_col(),
        _col("IP", desc="podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", priority=1),
        _col("Node", desc="NodeName indicates in which node this pod is scheduled.", priority=1),
        _col("Nominated Node", desc="nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.", priority=1),
        _col("Readiness Gates", desc="If specified, all readiness gates will be evaluated for pod readiness.", priority=1),
    ],
    "Deployment": [
        _name_col(),
        _col("Ready", desc="Number of the pod with ready state"),
        _col("Up-to-date", desc="Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
        _col("Available", desc="Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
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
        _col("Desired", "integer", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod)."),
        _col("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
        _col("Ready", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
        _col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
        _col("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
        _col("Node Selector", desc="NodeSelector is a selector which must be true for the pod to fit on a node."),
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
        _col("Timezone", desc="The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
        _col("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false."),
        _col("Active", "integer", "A list of pointers to currently running jobs."),
        _col("Last Schedule", desc="Information when was the last time the job was successfully scheduled."),
        _age_col(),
        *_wide_template_cols(),
    ],
    "Service": [
        _name_col(),
        _col("Type", desc="type determines how the Service is exposed."),
        _col("Cluster-IP", desc="clusterIP is the IP address of the service and is usually assigned randomly."),
        _col("External-IP", desc="externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
        _col("Port(s)", desc="The list of ports that are exposed by this service."),
        _age_col(),
        _col("Selector", desc="Route service traffic to pods with label keys and values matching this selector.", priority=1),
    ],
    "Endpoints": [
        _name_col(),
        _col("Endpoints", desc="The set of all endpoints is the union of all subsets."),
        _age_col(),
    ],
    "EndpointSlice": [
        _name_col(),
        _col("AddressType", desc="addressType specifies the type of address carried by this EndpointSlice."),
        _col("Ports", desc="ports specifies the list of network ports exposed by each endpoint in this slice."),
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
        _col("OS-Image", desc="OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", priority=1),
        _col("Kernel-Version", desc="Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", priority=1),
        _col("Container-Runtime", desc="ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).", priority=1),
    ],
    "Namespace": [_name_col(), _col("Status", desc="The status of the namespace"), _age_col()],
    "Event": [
        _col("Last Seen", desc="The time at which the most recent occurrence of this event was recorded."),
        _col("Type", desc="Type of this event (Normal, Warning), new types could be added in the future"),
        _col("Reason", desc="This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
        _col("Object", desc="The object that this event is about."),
        _col("Subobject", desc="If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].", priority=1),
        _col("Source", desc="The component reporting this event. Should be a short machine understandable string.", priority=1),
        _col("Message", desc="A human-readable description of the status of this operation."),
        _col("First Seen", desc="The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", priority=1),
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
        _col("Secrets", desc="Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."),
        _age_col(),
    ],
    "Lease": [
        _name_col(),
        _col("Holder", desc="holderIdentity contains the identity of the holder of a current lease."),
        _age_col(),
    ],
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
    return [dict(c) for c in _COLUMNS.get(rt.kind, _GENERIC_COLUMNS)]


# --- row printers ------------------------------------------------------------------------------------


def _restartable_init(container: Obj | None) -> bool:
    return bool(container) and _d(container).get("restartPolicy") == "Always"


def _cond_true(conditions: Any, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in _ld(conditions))


def _later(current: datetime | None, state: Any) -> datetime | None:
    finished = parse_time(_d(_d(state).get("terminated")).get("finishedAt"))
    if finished is not None and (current is None or finished > current):
        return finished
    return current


def pod_status_reason(pod: Obj) -> tuple[str, int, int, int, datetime | None]:
    """printPod's core: (status reason, ready containers, total containers, restarts, last restart)."""
    spec, status = _d(pod.get("spec")), _d(pod.get("status"))
    init_specs = {str(c.get("name")): c for c in _ld(spec.get("initContainers"))}
    total = len(_ld(spec.get("containers"))) + sum(1 for c in init_specs.values() if _restartable_init(c))
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    sidecar_last: datetime | None = None
    phase = str(status.get("phase") or "")
    reason = str(status.get("reason") or phase)
    if any(
        c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
        for c in _ld(status.get("conditions"))
    ):
        reason = "SchedulingGated"

    initializing = False
    init_statuses = _ld(status.get("initContainerStatuses"))
    for i, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount") or 0)
        last_restart = _later(last_restart, cs.get("lastState"))
        sidecar = _restartable_init(init_specs.get(str(cs.get("name"))))
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            sidecar_last = _later(sidecar_last, cs.get("lastState"))
        state = _d(cs.get("state"))
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if isinstance(terminated, dict) and terminated.get("exitCode", 0) == 0:
            continue
        if sidecar and cs.get("started") is True:
            ready += 1 if cs.get("ready") else 0
            continue
        if isinstance(terminated, dict):
            if not terminated.get("reason"):
                signal = terminated.get("signal") or 0
                reason = (
                    f"Init:Signal:{signal}" if signal else f"Init:ExitCode:{terminated.get('exitCode', 0)}"
                )
            else:
                reason = "Init:" + str(terminated["reason"])
        elif (
            isinstance(waiting, dict) and waiting.get("reason") and waiting.get("reason") != "PodInitializing"
        ):
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{i}/{len(_ld(spec.get('initContainers')))}"
        initializing = True
        break

    if not initializing or _cond_true(status.get("conditions"), "Initialized"):
        restarts, last_restart = sidecar_restarts, sidecar_last
        has_running = False
        for cs in reversed(_ld(status.get("containerStatuses"))):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = _later(last_restart, cs.get("lastState"))
            state = _d(cs.get("state"))
            waiting, terminated = _d(state.get("waiting")), state.get("terminated")
            if waiting.get("reason"):
                reason = str(waiting["reason"])
            elif isinstance(terminated, dict) and terminated.get("reason"):
                reason = str(terminated["reason"])
            elif isinstance(terminated, dict):
                signal = terminated.get("signal") or 0
                reason = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _cond_true(status.get("conditions"), "Ready") else "NotReady"

    deleting = bool(_d(pod.get("metadata")).get("deletionTimestamp"))
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return reason, ready, total, restarts, last_restart


def _print_pod(pod: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(pod.get("metadata")), _d(pod.get("spec")), _d(pod.get("status"))
    reason, ready, total, restarts, last_restart = pod_status_reason(pod)
    restarts_cell = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"
    pod_ips = _ld(status.get("podIPs"))
    pod_ip = str(pod_ips[0].get("ip") or "") if pod_ips else str(status.get("podIP") or "")
    gates = _ld(spec.get("readinessGates"))
    gates_cell = "<none>"
    if gates:
        conditions = {c.get("type"): c for c in _ld(status.get("conditions"))}
        true_count = sum(
            1 for g in gates if _d(conditions.get(g.get("conditionType"))).get("status") == "True"
        )
        gates_cell = f"{true_count}/{len(gates)}"
    return [
        str(meta.get("name", "")),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        since(meta.get("creationTimestamp"), now),
        pod_ip or "<none>",
        str(spec.get("nodeName") or "<none>"),
        str(status.get("nominatedNodeName") or "<none>"),
        gates_cell,
    ]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _print_deployment(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    names, images = layout_containers(_template_spec(obj))
    return [
        str(meta.get("name", "")),
        f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'))}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        since(meta.get("creationTimestamp"), now),
        names,
        images,
        selector_string(spec.get("selector")),
    ]


def _print_replicaset(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    names, images = layout_containers(_template_spec(obj))
    return [
        str(meta.get("name", "")),
        _int(spec.get("replicas")),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        since(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _print_daemonset(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    names, images = layout_containers(_template_spec(obj))
    return [
        str(meta.get("name", "")),
        _int(status.get("desiredNumberScheduled")),
        _int(status.get("currentNumberScheduled")),
        _int(status.get("numberReady")),
        _int(status.get("updatedNumberScheduled")),
        _int(status.get("numberAvailable")),
        format_labels(_template_spec(obj).get("nodeSelector")),
        since(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _print_statefulset(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    names, images = layout_containers(_template_spec(obj))
    ready = f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'))}"
    return [str(meta.get("name", "")), ready, since(meta.get("creationTimestamp"), now), names, images]


def _job_status(obj: Obj) -> str:
    conditions = _d(obj.get("status")).get("conditions")
    if _first_condition_true(conditions, "Complete"):
        return "Complete"
    if _first_condition_true(conditions, "Failed"):
        return "Failed"
    if _d(obj.get("metadata")).get("deletionTimestamp"):
        return "Terminating"
    if _first_condition_true(conditions, "Suspended"):
        return "Suspended"
    if _first_condition_true(conditions, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _first_condition_true(conditions: Any, ctype: str) -> bool:
    """hasJobCondition: the first condition of that type decides."""
    for c in _ld(conditions):
        if c.get("type") == ctype:
            return c.get("status") == "True"
    return False


def _print_job(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    succeeded = _int(status.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_int(spec.get('completions'))}"
    elif _int(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {_int(spec.get('parallelism'))}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = ""
    if start is not None:
        duration = human_duration(((end or now) - start).total_seconds())
    names, images = layout_containers(_template_spec(obj))
    return [
        str(meta.get("name", "")),
        _job_status(obj),
        completions,
        duration,
        since(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _print_cronjob(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    last = "<none>" if not status.get("lastScheduleTime") else since(status.get("lastScheduleTime"), now)
    suspend = spec.get("suspend")
    suspend_cell = "<unset>" if suspend is None else ("True" if suspend else "False")
    job_spec = _d(_d(spec.get("jobTemplate")).get("spec"))
    names, images = layout_containers(_d(_d(job_spec.get("template")).get("spec")))
    return [
        str(meta.get("name", "")),
        str(spec.get("schedule", "")),
        str(spec.get("timeZone") if spec.get("timeZone") is not None else "<none>"),
        suspend_cell,
        len(_ld(status.get("active"))),
        last,
        since(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(job_spec.get("selector")),
    ]


def _external_ip(spec: Obj, status: Obj) -> str:
    external_ips = [str(ip) for ip in spec.get("externalIPs") or []]
    stype = spec.get("type")
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) if external_ips else "<none>"
    if stype == "LoadBalancer":
        ingress = _ld(_d(status.get("loadBalancer")).get("ingress"))
        lb = sorted(
            {str(i.get("ip") or i.get("hostname")) for i in ingress if i.get("ip") or i.get("hostname")}
        )
        if external_ips:
            return ",".join([*lb, *external_ips])
        return ",".join(lb) if lb else "<pending>"
    if stype == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


def format_service_ports(ports: Any) -> str:
    pieces = []
    for p in _ld(ports):
        protocol = p.get("protocol") or "TCP"
        if _int(p.get("nodePort")) > 0:
            pieces.append(f"{p.get('port')}:{p.get('nodePort')}/{protocol}")
        else:
            pieces.append(f"{p.get('port')}/{protocol}")
    return ",".join(pieces) or "<none>"


def _print_service(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [
        str(meta.get("name", "")),
        str(spec.get("type", "")),
        str(cluster_ips[0]) if cluster_ips else "<none>",
        _external_ip(spec, status),
        format_service_ports(spec.get("ports")),
        since(meta.get("creationTimestamp"), now),
        format_labels(spec.get("selector")),
    ]


def _join_host_port(host: str, port: Any) -> str:
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            return f"[{host}]:{port}"
    except ValueError:
        pass  # a hostname, not an IP: printed as is
    return f"{host}:{port}"


def _list_with_more(items: list[str], count: int, limit: int = 3, *, empty: str = "<unset>") -> str:
    text = ",".join(items[:limit])
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text or empty


def format_endpoints(obj: Obj) -> str:
    subsets = _ld(obj.get("subsets"))
    if not subsets:
        return "<none>"
    out: list[str] = []
    count = 0
    for ss in subsets:
        addresses = [str(a.get("ip", "")) for a in _ld(ss.get("addresses"))]
        ports = _ld(ss.get("ports"))
        if not ports:
            count += len(addresses)
            out += addresses
            continue
        for port in ports:
            count += len(addresses)
            out += [_join_host_port(a, port.get("port")) for a in addresses]
    return _list_with_more(out, count, empty="")


def _print_endpoints(obj: Obj, now: datetime) -> list[Cell]:
    meta = _d(obj.get("metadata"))
    return [str(meta.get("name", "")), format_endpoints(obj), since(meta.get("creationTimestamp"), now)]


def _print_endpointslice(obj: Obj, now: datetime) -> list[Cell]:
    meta = _d(obj.get("metadata"))
    ports = []
    for p in _ld(obj.get("ports")):
        if p.get("port") is not None:
            ports.append(str(p["port"]))
        elif p.get("name") is not None:
            ports.append(str(p["name"]))
        else:
            ports.append("*")
    addresses = [str(a) for e in _ld(obj.get("endpoints")) for a in e.get("addresses") or []]
    return [
        str(meta.get("name", "")),
        str(obj.get("addressType", "")),
        _list_with_more(ports, len(ports)),
        _list_with_more(addresses, len(addresses)),
        since(meta.get("creationTimestamp"), now),
    ]


def node_roles(labels: Any) -> str:
    roles = set()
    for key, value in _d(labels).items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/") :]:
            roles.add(key[len("node-role.kubernetes.io/") :])
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or "<none>"


def _node_address(status: Obj, kind: str) -> str:
    for a in _ld(status.get("addresses")):
        if a.get("type") == kind:
            return str(a.get("address", ""))
    return "<none>"


def _print_node(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = _d(obj.get("metadata")), _d(obj.get("spec")), _d(obj.get("status"))
    states = [
        ("Ready" if c.get("status") == "True" else "NotReady")
        for c in _ld(status.get("conditions"))
        if c.get("type") == "Ready"
    ][-1:] or ["Unknown"]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    info = _d(status.get("nodeInfo"))
    return [
        str(meta.get("name", "")),
        ",".join(states),
        node_roles(meta.get("labels")),
        since(meta.get("creationTimestamp"), now),
        str(info.get("kubeletVersion", "")),
        _node_address(status, "InternalIP"),
        _node_address(status, "ExternalIP"),
        str(info.get("osImage") or "<unknown>"),
        str(info.get("kernelVersion") or "<unknown>"),
        str(info.get("containerRuntimeVersion") or "<unknown>"),
    ]


def _print_namespace(obj: Obj, now: datetime) -> list[Cell]:
    meta = _d(obj.get("metadata"))
    return [
        str(meta.get("name", "")),
        str(_d(obj.get("status")).get("phase", "")),
        since(meta.get("creationTimestamp"), now),
    ]


def _print_event(obj: Obj, now: datetime) -> list[Cell]:
    meta, involved = _d(obj.get("metadata")), _d(obj.get("involvedObject"))
    first = (
        since(obj.get("firstTimestamp"), now)
        if obj.get("firstTimestamp")
        else since(obj.get("eventTime"), now)
    )
    last = since(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    count = _int(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, dict):
        last = since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = _d(obj.get("source"))
    component = source.get("component") or obj.get("reportingComponent") or ""
    host = source.get("host") or obj.get("reportingInstance") or ""
    return [
        last,
        str(obj.get("type", "")),
        str(obj.get("reason", "")),
        target,
        str(involved.get("fieldPath", "")),
        f"{component}, {host}" if host else str(component),
        str(obj.get("message", "")).strip(),
        first,
        count,
        str(meta.get("name", "")),
    ]


def _print_configmap(obj: Obj, now: datetime) -> list[Cell]:
    meta = _d(obj.get("metadata"))
    data = len(_d(obj.get("data"))) + len(_d(obj.get("binaryData")))
    return [str(meta.get("name", "")), data, since(meta.get("creationTimestamp"), now)]


def _print_secret(obj: Obj, now: datetime) -> list[Cell]:
    meta = _d(obj.get("metadata"))
    return [
        str(meta.get("name", "")),
        str(obj.get("type", "")),
        len(_d(obj.get("data"))),
        since(meta.get("creationTimestamp"), now),
    ]


def _print_serviceaccount(obj: Obj, now: datetime) -> list[Cell]:
    meta = _d(obj.get("metadata"))
    return [
        str(meta.get("name", "")),
        len(_ld(obj.get("secrets"))),
        since(meta.get("creationTimestamp"), now),
    ]


def _print_lease(obj: Obj, now: datetime) -> list[Cell]:
    meta = _d(obj.get("metadata"))
    holder = _d(obj.get("spec")).get("holderIdentity")
    return [str(meta.get("name", "")), str(holder or ""), since(meta.get("creationTimestamp"), now)]


def _print_generic(obj: Obj, now: datetime) -> list[Cell]:
    meta = _d(obj.get("metadata"))
    return [str(meta.get("name", "")), str(meta.get("creationTimestamp") or "")]


_PRINTERS: dict[str, Callable[[Obj, datetime], list[Cell]]] = {
    "Pod": _print_pod,
    "Deployment": _print_deployment,
    "ReplicaSet": _print_replicaset,
    "DaemonSet": _print_daemonset,
    "StatefulSet": _print_statefulset,
    "Job": _print_job,
    "CronJob": _print_cronjob,
    "Service": _print_service,
    "Endpoints": _print_endpoints,
    "EndpointSlice": _print_endpointslice,
    "Node": _print_node,
    "Namespace": _print_namespace,
    "Event": _print_event,
    "ConfigMap": _print_configmap,
    "Secret": _print_secret,
    "ServiceAccount": _print_serviceaccount,
    "Lease": _print_lease,
}

_POD_CONDITIONS = {
    "Succeeded": [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ],
    "Failed": [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}],
}


# --- the Table envelope ------------------------------------------------------------------------------


def _row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    metadata = {k: v for k, v in _d(obj.get("metadata")).items() if k != "managedFields"}
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}


def table_row(rt: ResourceType, obj: Obj, *, now: datetime, include_object: str = "Metadata") -> Obj:
    """One `rows[]` entry: cells (all columns, wide ones included), object, and pod conditions."""
    row: Obj = {"cells": _PRINTERS.get(rt.kind, _print_generic)(obj, now)}
    if rt.kind == "Pod":
        conditions = _POD_CONDITIONS.get(str(_d(obj.get("status")).get("phase")))
        if conditions:
            row["conditions"] = [dict(c) for c in conditions]
    row_object = _row_object(obj, include_object)
    if row_object is not None:
        row["object"] = row_object
    return row


def table(
    rt: ResourceType,
    objs: list[dict[str, Any]],
    *,
    now: datetime,
    include_object: str = "Metadata",
    resource_version: str = "",
) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table for `objs` (a list, or a single object as a one-element list)."""
    if not resource_version and len(objs) == 1:
        resource_version = str(_d(objs[0].get("metadata")).get("resourceVersion") or "")
    metadata = {"resourceVersion": resource_version} if resource_version else {}
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(rt),
        "rows": [table_row(rt, o, now=now, include_object=include_object) for o in objs],
    }


def table_row_event(
    rt: ResourceType,
    obj: dict[str, Any],
    *,
    now: datetime,
    include_object: str = "Metadata",
    resource_version: str = "",
) -> dict[str, Any]:
    """The object of a watch event under the Table Accept: a Table with exactly one row."""
    return table(rt, [obj], now=now, include_object=include_object, resource_version=resource_version)
