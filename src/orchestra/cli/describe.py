"""`orchestra describe`: kubectl-style descriptions of pods, workloads, services, nodes, namespaces.

Owns: the text layout of each describer (sections written with tabs, aligned by `tabwrite`, like
kubectl's PrefixWriter + tabwriter) and the Events section. Describers are pure functions of the
object (plus related objects the caller fetched); `describe_object` does the fetching.
Must not import: the server side.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from orchestra.api.registry import DEFAULT_REGISTRY, ResourceType
from orchestra.cli.describe_quota import describe_limit_range, describe_resource_quota, namespace_sections
from orchestra.cli.errors import ApiStatusError
from orchestra.cli.render import age, to_yaml
from orchestra.cli.rest import RestClient, resource_path
from orchestra.cli.tabwriter import tabwrite
from orchestra.objects import Obj, controller_ref, parse_time


class Writer:
    """kubectl's PrefixWriter: each level indents two spaces; `\\t` separates aligned cells."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def line(self, level: int, text: str = "") -> None:
        self.parts.append("  " * level + text + "\n")

    def field(self, level: int, key: str, value: Any) -> None:
        self.line(level, f"{key}:\t{_show(value)}")

    def mapping(self, level: int, title: str, values: dict[str, Any] | None) -> None:
        """`Labels:  a=1` with further pairs under the first, `<none>` when empty."""
        if not values:
            self.field(level, title, "<none>")
            return
        for i, key in enumerate(sorted(values)):
            head = f"{title}:" if i == 0 else ""
            self.line(level, f"{head}\t{key}={values[key]}")

    def text(self) -> str:
        return tabwrite("".join(self.parts).rstrip("\n"), minwidth=0, padding=2) + "\n"


def _show(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "<none>"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def timestamp(value: Any) -> str:
    """RFC 1123 with numeric zone in local time: `Mon, 02 Jan 2006 15:04:05 +0000`."""
    when = parse_time(value)
    return when.astimezone().strftime("%a, %d %b %Y %H:%M:%S %z") if when else "<unknown>"


def _meta(w: Writer, obj: Obj, *, namespace: bool = True) -> None:
    meta = obj.get("metadata") or {}
    w.field(0, "Name", meta.get("name"))
    if namespace:
        w.field(0, "Namespace", meta.get("namespace"))
    w.mapping(0, "Labels", meta.get("labels"))
    w.mapping(0, "Annotations", meta.get("annotations"))


def _controlled_by(obj: Obj) -> str | None:
    ref = controller_ref(obj)
    return f"{ref.get('kind')}/{ref.get('name')}" if ref is not None else None


def _selector_text(selector: Obj | None) -> str:
    if not selector:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        values = ",".join(expr.get("values") or [])
        op = expr.get("operator", "")
        key = expr.get("key", "")
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": key, "DoesNotExist": f"!{key}"}.get(op, f"{key} {op} ({values})"))
    return ",".join(parts) or "<none>"


# -- pods -----------------------------------------------------------------------------------------


def _ports(ports: list[Obj] | None) -> str:
    return ", ".join(f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}" for p in ports or []) or "<none>"


def _state(w: Writer, level: int, title: str, state: Obj | None) -> None:
    if not state:
        w.field(level, title, "Waiting")
        return
    if "running" in state:
        w.field(level, title, "Running")
        w.field(level + 1, "Started", timestamp(state["running"].get("startedAt")))
    elif "waiting" in state:
        w.field(level, title, "Waiting")
        if state["waiting"].get("reason"):
            w.field(level + 1, "Reason", state["waiting"]["reason"])
    elif "terminated" in state:
        t = state["terminated"]
        w.field(level, title, "Terminated")
        w.field(level + 1, "Reason", t.get("reason"))
        w.field(level + 1, "Exit Code", t.get("exitCode"))
        w.field(level + 1, "Started", timestamp(t.get("startedAt")))
        w.field(level + 1, "Finished", timestamp(t.get("finishedAt")))


def _container(w: Writer, level: int, c: Obj, status: Obj | None) -> None:
    w.line(level, f"{c.get('name')}:")
    lv = level + 1
    if status is not None:
        w.field(lv, "Container ID", status.get("containerID"))
    w.field(lv, "Image", c.get("image"))
    if status is not None:
        w.field(lv, "Image ID", status.get("imageID"))
    ports = c.get("ports") or []
    w.field(lv, "Port" if len(ports) <= 1 else "Ports", _ports(ports))
    host_ports = ", ".join(f"{p.get('hostPort', 0)}/{p.get('protocol', 'TCP')}" for p in ports)
    w.field(lv, "Host Port" if len(ports) <= 1 else "Host Ports", host_ports or "<none>")
    for title, key in (("Command", "command"), ("Args", "args")):
        if c.get(key):
            w.line(lv, f"{title}:")
            for arg in c[key]:
                w.line(lv + 1, str(arg))
    if status is not None:
        _state(w, lv, "State", status.get("state"))
        if status.get("lastState"):
            _state(w, lv, "Last State", status.get("lastState"))
        w.field(lv, "Ready", "True" if status.get("ready") else "False")
        w.field(lv, "Restart Count", status.get("restartCount", 0))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if c.get(probe):
            w.field(lv, probe[: -len("Probe")].capitalize(), _probe(c[probe]))
    env = c.get("env") or []
    if env:
        w.line(lv, "Environment:")
        for e in env:
            w.line(lv + 1,
                   f"{e.get('name')}:\t{e.get('value', '') if 'valueFrom' not in e else '<set from source>'}")
    else:
        w.field(lv, "Environment", "<none>")
    mounts = c.get("volumeMounts") or []
    if mounts:
        w.line(lv, "Mounts:")
        for m in mounts:
            ro = "ro" if m.get("readOnly") else "rw"
            w.line(lv + 1, f"{m.get('mountPath')} from {m.get('name')} ({ro})")
    else:
        w.field(lv, "Mounts", "<none>")


def _probe(p: Obj) -> str:
    if "httpGet" in p:
        h = p["httpGet"]
        how = (f"http-get {h.get('scheme', 'HTTP').lower()}://"
               f"{h.get('host', '')}:{h.get('port')}{h.get('path', '')}")
    elif "tcpSocket" in p:
        how = f"tcp-socket :{p['tcpSocket'].get('port')}"
    elif "exec" in p:
        how = "exec " + str(p["exec"].get("command") or [])
    else:
        how = "unknown"
    return (f"{how} delay={p.get('initialDelaySeconds', 0)}s timeout={p.get('timeoutSeconds', 1)}s "
            f"period={p.get('periodSeconds', 10)}s #success={p.get('successThreshold', 1)} "
            f"#failure={p.get('failureThreshold', 3)}")


def describe_pod(pod: Obj) -> str:
    w = Writer()
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    w.field(0, "Name", meta.get("name"))
    w.field(0, "Namespace", meta.get("namespace"))
    w.field(0, "Priority", spec.get("priority", 0))
    w.field(0, "Service Account", spec.get("serviceAccountName"))
    node = spec.get("nodeName")
    w.field(0, "Node", f"{node}/{status['hostIP']}" if node and status.get("hostIP") else node)
    if status.get("startTime"):
        w.field(0, "Start Time", timestamp(status["startTime"]))
    w.mapping(0, "Labels", meta.get("labels"))
    w.mapping(0, "Annotations", meta.get("annotations"))
    if meta.get("deletionTimestamp"):
        w.field(0, "Status", f"Terminating (lasts {age(meta['deletionTimestamp'])})")
    else:
        w.field(0, "Status", status.get("phase"))
    if status.get("reason"):
        w.field(0, "Reason", status["reason"])
    if status.get("message"):
        w.field(0, "Message", status["message"])
    w.field(0, "IP", status.get("podIP"))
    ips = status.get("podIPs") or []
    if ips:
        w.line(0, "IPs:")
        for ip in ips:
            w.field(1, "IP", ip.get("ip"))
    else:
        w.field(0, "IPs", "<none>")
    if _controlled_by(pod):
        w.field(0, "Controlled By", _controlled_by(pod))
    for title, key, skey in (("Init Containers", "initContainers", "initContainerStatuses"),
                             ("Containers", "containers", "containerStatuses")):
        containers = spec.get(key) or []
        if not containers:
            continue
        statuses = {s.get("name"): s for s in status.get(skey) or []}
        w.line(0, f"{title}:")
        for c in containers:
            _container(w, 1, c, statuses.get(c.get("name"), {} if statuses else None))
    conditions = status.get("conditions") or []
    if conditions:
        w.line(0, "Conditions:")
        w.line(1, "Type\tStatus")
        for c in conditions:
            w.line(1, f"{c.get('type')}\t{c.get('status')} ")
    volumes = spec.get("volumes") or []
    if volumes:
        w.line(0, "Volumes:")
        for v in volumes:
            w.line(1, f"{v.get('name')}:")
            kinds = [k for k in v if k != "name"]
            w.field(2, "Type", kinds[0] if kinds else "<unknown>")
    else:
        w.field(0, "Volumes", "<none>")
    w.field(0, "QoS Class", status.get("qosClass"))
    w.mapping(0, "Node-Selectors", spec.get("nodeSelector"))
    tolerations = [_toleration(t) for t in spec.get("tolerations") or []]
    w.field(0, "Tolerations", tolerations[0] if tolerations else "<none>")
    for t in tolerations[1:]:
        w.line(0, f"\t{t}")
    return w.text()


def _toleration(t: Obj) -> str:
    text = t.get("key", "")
    if t.get("operator") == "Exists" and not text:
        text = ""
    elif t.get("value"):
        text += f"={t['value']}"
    if t.get("effect"):
        text += f":{t['effect']}"
    if t.get("operator") == "Exists" and t.get("key"):
        text += " op=Exists"
    if t.get("tolerationSeconds") is not None:
        text += f" for {t['tolerationSeconds']}s"
    return text or "op=Exists"


# -- workloads ------------------------------------------------------------------------------------


def _pod_template(w: Writer, template: Obj) -> None:
    meta, spec = template.get("metadata") or {}, template.get("spec") or {}
    w.line(0, "Pod Template:")
    w.mapping(1, "Labels", meta.get("labels"))
    if meta.get("annotations"):
        w.mapping(1, "Annotations", meta.get("annotations"))
    if spec.get("serviceAccountName"):
        w.field(1, "Service Account", spec["serviceAccountName"])
    for title, key in (("Init Containers", "initContainers"), ("Containers", "containers")):
        if spec.get(key):
            w.line(1, f"{title}:")
            for c in spec[key]:
                _container(w, 2, c, None)
    volumes = spec.get("volumes") or []
    w.field(1, "Volumes", ", ".join(v.get("name", "") for v in volumes) or "<none>")
    w.mapping(1, "Node-Selectors", spec.get("nodeSelector"))
    w.field(1, "Tolerations", ", ".join(_toleration(t) for t in spec.get("tolerations") or []) or "<none>")


def _conditions(w: Writer, conditions: list[Obj]) -> None:
    if not conditions:
        return
    w.line(0, "Conditions:")
    w.line(1, "Type\tStatus\tReason")
    w.line(1, "----\t------\t------")
    for c in conditions:
        w.line(1, f"{c.get('type')}\t{c.get('status')}\t{c.get('reason', '')}")


def describe_deployment(dep: Obj, replicasets: list[Obj]) -> str:
    w = Writer()
    meta, spec, status = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
    w.field(0, "Name", meta.get("name"))
    w.field(0, "Namespace", meta.get("namespace"))
    w.field(0, "CreationTimestamp", timestamp(meta.get("creationTimestamp")))
    w.mapping(0, "Labels", meta.get("labels"))
    w.mapping(0, "Annotations", meta.get("annotations"))
    w.field(0, "Selector", _selector_text(spec.get("selector")))
    w.field(0, "Replicas",
            f"{spec.get('replicas', 1)} desired | {status.get('updatedReplicas', 0)} updated | "
            f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
            f"{status.get('unavailableReplicas', 0)} unavailable")
    strategy = spec.get("strategy") or {}
    w.field(0, "StrategyType", strategy.get("type", "RollingUpdate"))
    w.field(0, "MinReadySeconds", spec.get("minReadySeconds", 0))
    rolling = strategy.get("rollingUpdate")
    if rolling:
        w.field(0, "RollingUpdateStrategy",
                f"{rolling.get('maxUnavailable', '25%')} max unavailable, "
                f"{rolling.get('maxSurge', '25%')} max surge")
    _pod_template(w, spec.get("template") or {})
    _conditions(w, status.get("conditions") or [])
    uid = meta.get("uid")
    owned = [rs for rs in replicasets if any(r.get("uid") == uid for r in
                                             (rs.get("metadata") or {}).get("ownerReferences") or [])]
    new = [rs for rs in owned if (rs.get("spec") or {}).get("template") == _template_without_hash(dep, rs)]
    old = [rs for rs in owned if rs not in new]
    w.field(0, "OldReplicaSets", ", ".join(_rs_summary(rs) for rs in old) or "<none>")
    w.field(0, "NewReplicaSet", ", ".join(_rs_summary(rs) for rs in new) or "<none>")
    return w.text()


def _template_without_hash(dep: Obj, rs: Obj) -> Obj:
    """The deployment's template as the ReplicaSet would carry it (plus its pod-template-hash)."""
    template = dict((dep.get("spec") or {}).get("template") or {})
    rs_labels = (((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    if "pod-template-hash" in rs_labels:
        meta = dict(template.get("metadata") or {})
        meta["labels"] = {**(meta.get("labels") or {}), "pod-template-hash": rs_labels["pod-template-hash"]}
        template["metadata"] = meta
    return template


def _rs_summary(rs: Obj) -> str:
    status = rs.get("status") or {}
    return (f"{(rs.get('metadata') or {}).get('name')} ({status.get('replicas', 0)}/"
            f"{(rs.get('spec') or {}).get('replicas', 0)} replicas created)")


def describe_replicaset(rs: Obj, pods: list[Obj]) -> str:
    w = Writer()
    meta, spec, status = rs.get("metadata") or {}, rs.get("spec") or {}, rs.get("status") or {}
    w.field(0, "Name", meta.get("name"))
    w.field(0, "Namespace", meta.get("namespace"))
    w.field(0, "Selector", _selector_text(spec.get("selector")))
    w.mapping(0, "Labels", meta.get("labels"))
    w.mapping(0, "Annotations", meta.get("annotations"))
    if _controlled_by(rs):
        w.field(0, "Controlled By", _controlled_by(rs))
    w.field(0, "Replicas", f"{status.get('replicas', 0)} current / {spec.get('replicas', 1)} desired")
    phases = {p: 0 for p in ("Running", "Pending", "Succeeded", "Failed")}
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase", "Pending")
        phases[phase] = phases.get(phase, 0) + 1
    w.field(0, "Pods Status", f"{phases['Running']} Running / {phases['Pending']} Waiting / "
            f"{phases['Succeeded']} Succeeded / {phases['Failed']} Failed")
    _pod_template(w, spec.get("template") or {})
    _conditions(w, status.get("conditions") or [])
    return w.text()


# -- services, nodes, namespaces ------------------------------------------------------------------


def describe_service(svc: Obj, endpoints: Obj | None) -> str:
    w = Writer()
    spec = svc.get("spec") or {}
    _meta(w, svc)
    selector = spec.get("selector") or {}
    w.field(0, "Selector", ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>")
    w.field(0, "Type", spec.get("type", "ClusterIP"))
    w.field(0, "IP Family Policy", spec.get("ipFamilyPolicy"))
    w.field(0, "IP Families", ",".join(spec.get("ipFamilies") or []) or "<none>")
    w.field(0, "IP", spec.get("clusterIP"))
    w.field(0, "IPs", ",".join(spec.get("clusterIPs") or []) or spec.get("clusterIP"))
    addresses = _endpoint_addresses(endpoints)
    for port in spec.get("ports") or []:
        name = port.get("name") or "<unset>"
        proto = port.get("protocol", "TCP")
        w.field(0, "Port", f"{name}\t{port.get('port')}/{proto}")
        target = port.get("targetPort", port.get("port"))
        w.field(0, "TargetPort", f"{target}/{proto}")
        if port.get("nodePort"):
            w.field(0, "NodePort", f"{name}\t{port['nodePort']}/{proto}")
        w.field(0, "Endpoints", ",".join(f"{a}:{target}" for a in addresses) if addresses else "")
    w.field(0, "Session Affinity", spec.get("sessionAffinity", "None"))
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        w.field(0, "External Traffic Policy", spec.get("externalTrafficPolicy", "Cluster"))
    w.field(0, "Internal Traffic Policy", spec.get("internalTrafficPolicy", "Cluster"))
    return w.text()


def _endpoint_addresses(endpoints: Obj | None) -> list[str]:
    out: list[str] = []
    for subset in (endpoints or {}).get("subsets") or []:
        out.extend(a.get("ip", "") for a in subset.get("addresses") or [])
    return out


def describe_node(node: Obj, pods: list[Obj]) -> str:
    w = Writer()
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    labels = meta.get("labels") or {}
    w.field(0, "Name", meta.get("name"))
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    w.field(0, "Roles", ",".join(roles) or "<none>")
    w.mapping(0, "Labels", labels)
    w.mapping(0, "Annotations", meta.get("annotations"))
    w.field(0, "CreationTimestamp", timestamp(meta.get("creationTimestamp")))
    taints = [_toleration(t) for t in spec.get("taints") or []]
    w.field(0, "Taints", taints[0] if taints else "<none>")
    for t in taints[1:]:
        w.line(0, f"\t{t}")
    w.field(0, "Unschedulable", bool(spec.get("unschedulable", False)))
    conditions = status.get("conditions") or []
    w.line(0, "Conditions:")
    w.line(1, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage")
    w.line(1, "----\t------\t-----------------\t------------------\t------\t-------")
    for c in conditions:
        w.line(1, f"{c.get('type')}\t{c.get('status')}\t{timestamp(c.get('lastHeartbeatTime'))}\t"
               f"{timestamp(c.get('lastTransitionTime'))}\t{c.get('reason', '')}\t{c.get('message', '')}")
    w.line(0, "Addresses:")
    for a in status.get("addresses") or []:
        w.field(1, a.get("type"), a.get("address"))
    for title, key in (("Capacity", "capacity"), ("Allocatable", "allocatable")):
        w.line(0, f"{title}:")
        for k, v in sorted((status.get(key) or {}).items()):
            w.field(1, k, v)
    info = status.get("nodeInfo") or {}
    w.line(0, "System Info:")
    for title, key in (("Machine ID", "machineID"), ("System UUID", "systemUUID"), ("Boot ID", "bootID"),
                       ("Kernel Version", "kernelVersion"), ("OS Image", "osImage"),
                       ("Operating System", "operatingSystem"), ("Architecture", "architecture"),
                       ("Container Runtime Version", "containerRuntimeVersion"),
                       ("Kubelet Version", "kubeletVersion"), ("Kube-Proxy Version", "kubeProxyVersion")):
        w.field(1, title, info.get(key, ""))
    if spec.get("podCIDR"):
        w.field(0, "PodCIDR", spec["podCIDR"])
    running = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    w.line(0, f"Non-terminated Pods:\t({len(running)} in total)")
    w.line(1, "Namespace\tName\tAge")
    w.line(1, "---------\t----\t---")
    for p in running:
        pm = p.get("metadata") or {}
        w.line(1, f"{pm.get('namespace')}\t{pm.get('name')}\t{age(pm.get('creationTimestamp'))}")
    return w.text()


def describe_namespace(ns: Obj, quotas: list[Obj] | None = None,
                       limit_ranges: list[Obj] | None = None) -> str:
    w = Writer()
    _meta(w, ns, namespace=False)
    w.field(0, "Status", (ns.get("status") or {}).get("phase", "Active"))
    return w.text() + "\n" + namespace_sections(quotas or [], limit_ranges or [])


def describe_generic(obj: Obj) -> str:
    """Any other kind: metadata like the others, then every other field as YAML-ish lines."""
    w = Writer()
    meta = obj.get("metadata") or {}
    _meta(w, obj, namespace=bool(meta.get("namespace")))
    w.field(0, "API Version", obj.get("apiVersion"))
    w.field(0, "Kind", obj.get("kind"))
    head = w.text()
    rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    if not rest:
        return head
    body = "".join(_title_case_yaml(line) + "\n" for line in to_yaml(rest).splitlines())
    return head + body


def _title_case_yaml(line: str) -> str:
    """`spec:` -> `Spec:` at the top level, like kubectl's generic describer."""
    if line and not line[0].isspace() and ":" in line:
        key, sep, value = line.partition(":")
        return key[:1].upper() + key[1:] + sep + value
    return line


# -- events ---------------------------------------------------------------------------------------


def describe_events(events: list[Obj], now: datetime.datetime | None = None) -> str:
    if not events:
        return "Events:  <none>\n"
    w = Writer()
    w.line(0, "Events:")
    w.line(1, "Type\tReason\tAge\tFrom\tMessage")
    w.line(1, "----\t------\t----\t----\t-------")
    for e in sorted(events, key=_event_time):
        first, last = (e.get("firstTimestamp") or e.get("eventTime"),
                       e.get("lastTimestamp") or e.get("eventTime"))
        count = int(e.get("count") or 1)
        interval = age(last or first, now)
        if count > 1:
            interval = f"{interval} (x{count} over {age(first, now)})"
        src = e.get("source") or {}
        source = src.get("component") or e.get("reportingComponent") or ""
        if src.get("host"):
            source = f"{source}, {src['host']}"
        w.line(1, f"{e.get('type', '')}\t{e.get('reason', '')}\t{interval}\t{source}\t"
               f"{str(e.get('message', '')).strip()}")
    return w.text()


def _event_time(e: Obj) -> str:
    return str(e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or "")


# -- fetching -------------------------------------------------------------------------------------


def _items(client: RestClient, rt_name: str, namespace: str | None, params: dict[str, str]) -> list[Obj]:
    rt = DEFAULT_REGISTRY.resolve(rt_name)
    assert rt is not None
    try:
        return list(client.get(resource_path(rt, namespace), params=params).get("items") or [])
    except ApiStatusError as exc:
        if exc.code == 400:
            # A selector this server does not support: describe what we have rather than fail.
            return []
        raise


def _label_selector(selector: Obj | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(((selector or {}).get("matchLabels") or {}).items()))


def describe_object(client: RestClient, rt: ResourceType, obj: Obj) -> str:
    """The description of `obj` (already fetched) plus related objects and its Events."""
    ns, name = (obj.get("metadata") or {}).get("namespace"), (obj.get("metadata") or {}).get("name")
    describers: dict[str, Callable[[], str]] = {
        "Pod": lambda: describe_pod(obj),
        "Deployment": lambda: describe_deployment(obj, _items(
            client, "replicasets", ns,
            {"labelSelector": _label_selector((obj.get("spec") or {}).get("selector"))})),
        "ReplicaSet": lambda: describe_replicaset(obj, _items(
            client, "pods", ns, {"labelSelector": _label_selector((obj.get("spec") or {}).get("selector"))})),
        "Service": lambda: describe_service(obj, client.get_optional(resource_path(
            DEFAULT_REGISTRY.resolve("endpoints"), ns, obj["metadata"]["name"]))),  # type: ignore[arg-type]
        "Node": lambda: describe_node(obj, [
            p for p in _items(client, "pods", None,
                              {"fieldSelector": f"spec.nodeName={obj['metadata']['name']}"})
            if (p.get("spec") or {}).get("nodeName") == obj["metadata"]["name"]
        ]),
        "Namespace": lambda: describe_namespace(obj, _items(client, "resourcequotas", name, {}),
                                                _items(client, "limitranges", name, {})),
        "ResourceQuota": lambda: describe_resource_quota(obj),
        "LimitRange": lambda: describe_limit_range(obj),
    }
    text = describers.get(rt.kind, lambda: describe_generic(obj))()
    return text + describe_events(fetch_events(client, rt, obj))


def fetch_events(client: RestClient, rt: ResourceType, obj: Obj) -> list[Obj]:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    selector = [f"involvedObject.name={meta.get('name')}", f"involvedObject.namespace={ns}"]
    if meta.get("uid"):
        selector.append(f"involvedObject.uid={meta['uid']}")
    if rt.kind not in ("Pod", "Namespace"):
        selector.append(f"involvedObject.kind={rt.kind}")
    events = _items(client, "events", ns, {"fieldSelector": ",".join(selector)})
    # Filter here too, so a server that ignores a selector still shows only this object's events.
    return [e for e in events if _involves(e.get("involvedObject") or {}, meta)]


def _involves(ref: Obj, meta: Obj) -> bool:
    if ref.get("name") != meta.get("name"):
        return False
    return not (ref.get("uid") and meta.get("uid") and ref["uid"] != meta["uid"])
