"""Server-side Tables: kube-apiserver 1.32's columns and printer output."""

from datetime import UTC, datetime, timedelta

import pytest

from orchestra.api.registry import DEFAULT_REGISTRY, ResourceType
from orchestra.api.tables import column_definitions, table, table_row_event
from orchestra.objects import human_duration

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rt(kind: str) -> ResourceType:
    found = DEFAULT_REGISTRY.by_kind(kind)
    assert found is not None
    return found


def cells(kind, obj):
    return table(rt(kind), [obj], now=NOW)["rows"][0]["cells"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"), (-1.5, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (123, "2m3s"),
        (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"), (5 * 3600 + 60 * 7, "5h7m"), (8 * 3600, "8h"),
        (47 * 3600, "47h"), (3 * 86400, "3d"), (3 * 86400 + 5 * 3600, "3d5h"), (10 * 86400, "10d"),
        (730 * 86400, "2y"), (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y"),
    ],
)  # fmt: skip
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


def test_columns_for_every_kind():
    expected = {
        "Pod": ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node",
                "Readiness Gates"],
        "Deployment": ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"],
        "ReplicaSet": ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"],
        "DaemonSet": ["Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector",
                      "Age", "Containers", "Images", "Selector"],
        "StatefulSet": ["Name", "Ready", "Age", "Containers", "Images"],
        "Job": ["Name", "Status", "Completions", "Duration", "Age", "Containers", "Images", "Selector"],
        "CronJob": ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age", "Containers",
                    "Images", "Selector"],
        "Service": ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"],
        "Endpoints": ["Name", "Endpoints", "Age"],
        "EndpointSlice": ["Name", "AddressType", "Ports", "Endpoints", "Age"],
        "Node": ["Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image",
                 "Kernel-Version", "Container-Runtime"],
        "Namespace": ["Name", "Status", "Age"],
        "Event": ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen",
                  "Count", "Name"],
        "ConfigMap": ["Name", "Data", "Age"],
        "Secret": ["Name", "Type", "Data", "Age"],
        "ServiceAccount": ["Name", "Secrets", "Age"],
        "Lease": ["Name", "Holder", "Age"],
        "PodDisruptionBudget": ["Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"],
    }  # fmt: skip
    for kind, names in expected.items():
        cols = column_definitions(rt(kind))
        assert [c["name"] for c in cols] == names, kind
        assert all(set(c) == {"name", "type", "format", "description", "priority"} for c in cols)
    pod_cols = {c["name"]: c for c in column_definitions(rt("Pod"))}
    assert pod_cols["Name"]["format"] == "name"
    assert pod_cols["Restarts"]["type"] == "string"  # 1.32: "3 (2m ago)"
    assert [c["priority"] for c in column_definitions(rt("Pod"))] == [0, 0, 0, 0, 0, 1, 1, 1, 1]


def test_generic_table_for_unknown_kinds():
    other = ResourceType(
        group="example.com", version="v1", kind="Widget", plural="widgets", singular="widget", namespaced=True
    )
    t = table(other, [{"metadata": {"name": "w", "creationTimestamp": ts(5)}}], now=NOW)
    assert [(c["name"], c["type"]) for c in t["columnDefinitions"]] == [
        ("Name", "string"),
        ("Created At", "date"),
    ]
    assert t["rows"][0]["cells"] == ["w", ts(5)]


def running(name="web", restarts=0, ready=True, **extra):
    return {"name": name, "image": "nginx", "imageID": "", "ready": ready, "restartCount": restarts,
            "state": {"running": {"startedAt": ts(60)}}, **extra}  # fmt: skip


def waiting(reason, name="web", restarts=0, **extra):
    return {
        "name": name,
        "image": "nginx",
        "imageID": "",
        "ready": False,
        "restartCount": restarts,
        "state": {"waiting": {"reason": reason}},
        **extra,
    }


def terminated(reason, exit_code, name="web", **extra):
    state = {"terminated": {"exitCode": exit_code, **({"reason": reason} if reason else {})}}
    return {
        "name": name,
        "image": "x",
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "state": state,
        **extra,
    }


def pod(statuses=(), init_statuses=None, phase="Running", init=0, meta=None, **status):
    spec = {
        "containers": [{"name": s["name"], "image": "x"} for s in statuses] or [{"name": "web", "image": "x"}]
    }
    if init:
        spec["initContainers"] = [{"name": f"init{i}", "image": "busybox"} for i in range(init)]
    st = {"phase": phase, "containerStatuses": list(statuses), **status}
    if init_statuses is not None:
        st["initContainerStatuses"] = init_statuses
    return {
        "metadata": {"name": "p", "creationTimestamp": ts(300), **(meta or {})},
        "spec": spec,
        "status": st,
    }


@pytest.mark.parametrize(
    ("obj", "ready", "status"),
    [
        (pod([running()]), "1/1", "Running"),
        (pod([waiting("ContainerCreating")], phase="Pending"), "0/1", "ContainerCreating"),
        (pod([waiting("CrashLoopBackOff", restarts=3)]), "0/1", "CrashLoopBackOff"),
        (pod([waiting("ErrImagePull")], phase="Pending"), "0/1", "ErrImagePull"),
        (pod([terminated("Completed", 0)], phase="Succeeded"), "0/1", "Completed"),
        (pod([terminated("Error", 1)], phase="Failed"), "0/1", "Error"),
        (pod([terminated("", 137)], phase="Failed"), "0/1", "ExitCode:137"),
        (
            pod(
                [terminated("", 0, **{"state": {"terminated": {"exitCode": 0, "signal": 9}}})], phase="Failed"
            ),
            "0/1",
            "Signal:9",
        ),
        (pod([], phase="Pending"), "0/1", "Pending"),
        (
            pod(
                [running(), terminated("Completed", 0, name="side")],
                conditions=[{"type": "Ready", "status": "True"}],
            ),
            "1/2",
            "Running",
        ),
        (pod([running(), terminated("Completed", 0, name="side")]), "1/2", "NotReady"),
        (
            pod([waiting("PodInitializing")], [waiting("", name="init0")], phase="Pending", init=1),
            "0/1",
            "Init:0/1",
        ),
        (
            pod(
                [],
                [terminated("Completed", 0, name="init0"), waiting("", name="init1")],
                phase="Pending",
                init=2,
            ),
            "0/1",
            "Init:1/2",
        ),
        (
            pod([], [waiting("CrashLoopBackOff", name="init0")], phase="Pending", init=1),
            "0/1",
            "Init:CrashLoopBackOff",
        ),
        (pod([], [terminated("Error", 1, name="init0")], phase="Pending", init=1), "0/1", "Init:Error"),
        (pod([], [terminated("", 2, name="init0")], phase="Pending", init=1), "0/1", "Init:ExitCode:2"),
        (pod([running()], meta={"deletionTimestamp": ts(1)}), "1/1", "Terminating"),
        (pod([running()], meta={"deletionTimestamp": ts(1)}, reason="NodeLost"), "1/1", "Unknown"),
        (pod([running()], phase="Failed", reason="Evicted"), "1/1", "Evicted"),
        (
            pod(
                [],
                phase="Pending",
                conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
            ),
            "0/1",
            "SchedulingGated",
        ),
    ],
)
def test_pod_ready_and_status(obj, ready, status):
    row = cells("Pod", obj)
    assert row[1:3] == [ready, status]


def test_pod_restarts_with_last_restart_age():
    last = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ts(120)}}
    obj = pod([running(restarts=3, lastState=last)])
    assert cells("Pod", obj)[3] == "3 (2m ago)"
    assert cells("Pod", pod([running(restarts=2)]))[3] == "2"
    assert cells("Pod", pod([running()]))[3] == "0"


def test_pod_full_row_and_row_object():
    obj = pod([running()], podIPs=[{"ip": "10.244.0.5"}])
    obj["spec"]["nodeName"] = "node-1"
    obj["metadata"].update(
        {"namespace": "default", "labels": {"app": "web"}, "managedFields": [{"manager": "x"}]}
    )
    t = table(rt("Pod"), [obj], now=NOW, resource_version="107")
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "107"}
    row = t["rows"][0]
    assert row["cells"] == ["p", "1/1", "Running", "0", "5m", "10.244.0.5", "node-1", "<none>", "<none>"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["apiVersion"] == "meta.k8s.io/v1"
    assert row["object"]["metadata"]["labels"] == {"app": "web"}
    assert "managedFields" not in row["object"]["metadata"]
    assert table(rt("Pod"), [obj], now=NOW, include_object="Object")["rows"][0]["object"] is obj
    assert "object" not in table(rt("Pod"), [obj], now=NOW, include_object="None")["rows"][0]


def test_pod_readiness_gates_and_completed_condition():
    obj = pod([running()], conditions=[{"type": "example.com/ready", "status": "True"}])
    obj["spec"]["readinessGates"] = [{"conditionType": "example.com/ready"}, {"conditionType": "other"}]
    assert cells("Pod", obj)[8] == "1/2"
    done = table(rt("Pod"), [pod([terminated("Completed", 0)], phase="Succeeded")], now=NOW)["rows"][0]
    assert done["conditions"][0]["reason"] == "Succeeded"


def test_watch_event_table_has_one_row_and_object_rv():
    obj = pod([running()])
    obj["metadata"]["resourceVersion"] = "42"
    t = table_row_event(rt("Pod"), obj, now=NOW)
    assert len(t["rows"]) == 1 and t["metadata"] == {"resourceVersion": "42"}


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        ({"type": "ClusterIP", "clusterIPs": ["10.96.0.10"], "ports": [{"port": 80, "protocol": "TCP"}]},
         {}, ["ClusterIP", "10.96.0.10", "<none>", "80/TCP"]),
        ({"type": "NodePort", "clusterIPs": ["10.96.0.11"],
          "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]},
         {}, ["NodePort", "10.96.0.11", "<none>", "80:30080/TCP,53/UDP"]),
        ({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"],
          "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]},
         {"loadBalancer": {}}, ["LoadBalancer", "10.96.0.12", "<pending>", "443:31443/TCP"]),
        ({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "ports": []},
         {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}},
         ["LoadBalancer", "10.96.0.12", "1.2.3.4", "<none>"]),
        ({"type": "ClusterIP", "clusterIPs": ["None"], "ports": []},
         {}, ["ClusterIP", "None", "<none>", "<none>"]),
        ({"type": "ExternalName", "externalName": "example.com"},
         {}, ["ExternalName", "<none>", "example.com", "<none>"]),
        ({"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP"}], "externalIPs": ["5.6.7.8"]},
         {}, ["ClusterIP", "<none>", "5.6.7.8", "80/TCP"]),
    ],
)  # fmt: skip
def test_service_cells(spec, status, expected):
    obj = {
        "metadata": {"name": "web", "creationTimestamp": ts(10)},
        "spec": {**spec, "selector": {"b": "2", "a": "1"}},
        "status": status,
    }
    assert cells("Service", obj) == ["web", *expected, "10s", "a=1,b=2"]


def test_workload_cells():
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "redis"}],
            "nodeSelector": {"disk": "ssd"},
        },
    }
    sel = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}],
    }
    meta = {"name": "web", "creationTimestamp": ts(3600 * 5)}
    dep = {
        "metadata": meta,
        "spec": {"replicas": 3, "selector": sel, "template": template},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert cells("Deployment", dep) == [
        "web",
        "2/3",
        3,
        2,
        "5h",
        "a,b",
        "nginx,redis",
        "app=web,tier in (api,web)",
    ]
    rs = {
        "metadata": meta,
        "spec": {"replicas": 3, "selector": sel, "template": template},
        "status": {"replicas": 3, "readyReplicas": 1},
    }
    assert cells("ReplicaSet", rs) == [
        "web",
        3,
        3,
        1,
        "5h",
        "a,b",
        "nginx,redis",
        "app=web,tier in (api,web)",
    ]
    ds = {
        "metadata": meta,
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template},
        "status": {
            "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1,
            "numberReady": 1,
            "updatedNumberScheduled": 1,
            "numberAvailable": 1,
        },
    }
    assert cells("DaemonSet", ds) == ["web", 1, 1, 1, 1, 1, "disk=ssd", "5h", "a,b", "nginx,redis", "app=web"]
    sts = {"metadata": meta, "spec": {"replicas": 2, "template": template}, "status": {"readyReplicas": 2}}
    assert cells("StatefulSet", sts) == ["web", "2/2", "5h", "a,b", "nginx,redis"]


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        ({"completions": 1, "parallelism": 1},
         {"succeeded": 1, "startTime": ts(100), "completionTime": ts(70),
          "conditions": [{"type": "Complete", "status": "True"}]}, ["Complete", "1/1", "30s"]),
        ({"completions": 3, "parallelism": 1}, {"startTime": ts(125)}, ["Running", "0/3", "2m5s"]),
        ({"parallelism": 2}, {}, ["Running", "0/1 of 2", ""]),
        ({"completions": 1}, {"conditions": [{"type": "Failed", "status": "True"}]}, ["Failed", "0/1", ""]),
        ({"completions": 1, "suspend": True}, {"conditions": [{"type": "Suspended", "status": "True"}]},
         ["Suspended", "0/1", ""]),
    ],
)  # fmt: skip
def test_job_cells(spec, status, expected):
    obj = {
        "metadata": {"name": "j", "creationTimestamp": ts(200)},
        "spec": {
            **spec,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
            "template": {"spec": {"containers": [{"name": "a", "image": "busybox"}]}},
        },
        "status": status,
    }
    assert cells("Job", obj) == [
        "j",
        *expected,
        "3m20s",
        "a",
        "busybox",
        "batch.kubernetes.io/controller-uid=u",
    ]


def test_cronjob_cells():
    obj = {
        "metadata": {"name": "c", "creationTimestamp": ts(86400 * 3)},
        "spec": {
            "schedule": "*/5 * * * *",
            "suspend": False,
            "jobTemplate": {
                "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "busybox"}]}}}
            },
        },
        "status": {"active": [{"name": "c-1"}], "lastScheduleTime": ts(30)},
    }
    assert cells("CronJob", obj) == [
        "c",
        "*/5 * * * *",
        "<none>",
        "False",
        1,
        "30s",
        "3d",
        "a",
        "busybox",
        "<none>",
    ]
    obj["status"] = {}
    assert cells("CronJob", obj)[5] == "<none>"


def test_node_cells():
    obj = {
        "metadata": {
            "name": "node-1",
            "creationTimestamp": ts(86400 * 10),
            "labels": {
                "node-role.kubernetes.io/control-plane": "",
                "kubernetes.io/role": "worker",
                "node-role.kubernetes.io/": "",
            },
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"},
            ],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.9"}],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0",
                "osImage": "Fedora",
                "kernelVersion": "6.8",
                "containerRuntimeVersion": "podman://5.0",
            },
        },
    }
    assert cells("Node", obj) == [
        "node-1",
        "Ready,SchedulingDisabled",
        "control-plane,worker",
        "10d",
        "v1.32.0",
        "10.0.0.9",
        "<none>",
        "Fedora",
        "6.8",
        "podman://5.0",
    ]
    bare = {
        "metadata": {"name": "n", "creationTimestamp": ts(1)},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]},
    }
    assert cells("Node", bare)[1:3] == ["NotReady", "<none>"]
    assert cells("Node", {"metadata": {"name": "n"}})[1] == "Unknown"


def test_event_cells():
    obj = {"metadata": {"name": "p.17a", "creationTimestamp": ts(60)},
           "involvedObject": {"kind": "Pod", "name": "solo", "fieldPath": "spec.containers{web}"},
           "reason": "Scheduled", "message": " Successfully assigned default/solo to node-1\n",
           "type": "Normal",
           "source": {"component": "default-scheduler"}, "firstTimestamp": ts(600), "lastTimestamp": ts(60),
           "count": 3}  # fmt: skip
    assert cells("Event", obj) == [
        "60s",
        "Normal",
        "Scheduled",
        "pod/solo",
        "spec.containers{web}",
        "default-scheduler",
        "Successfully assigned default/solo to node-1",
        "10m",
        3,
        "p.17a",
    ]
    new_style = {
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Node"},
        "eventTime": "2024-05-01T11:59:00.000000Z",
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1",
    }
    row = cells("Event", new_style)
    assert row[0] == "60s" and row[3] == "node" and row[5] == "kubelet, node-1" and row[8] == 1


def test_a_type_served_over_another_prints_the_stored_form():
    """kube prints the internal object: an events.k8s.io/v1 Event has the core Event's cells."""
    events_v1 = DEFAULT_REGISTRY.by_path("events.k8s.io", "v1", "events")
    assert events_v1 is not None
    served = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
              "metadata": {"name": "e", "creationTimestamp": ts(60)},
              "regarding": {"kind": "Pod", "name": "solo", "fieldPath": "spec.containers{web}"},
              "reason": "Pulled", "note": "pulled", "type": "Normal",
              "eventTime": "2024-05-01T11:59:00.000000Z",
              "reportingController": "kubelet", "reportingInstance": "node-1", "deprecatedSource": {},
              "deprecatedFirstTimestamp": None, "deprecatedLastTimestamp": None}  # fmt: skip
    row = table(events_v1, [served], now=NOW)["rows"][0]
    assert row["cells"] == ["60s", "Normal", "Pulled", "pod/solo", "spec.containers{web}", "kubelet, node-1",
                            "pulled", "60s", 1, "e"]
    assert table(events_v1, [served], now=NOW)["columnDefinitions"] == column_definitions(rt("Event"))


def test_small_kinds():
    meta = {"name": "x", "creationTimestamp": ts(7)}
    assert cells("Namespace", {"metadata": meta, "status": {"phase": "Active"}}) == ["x", "Active", "7s"]
    assert cells("ConfigMap", {"metadata": meta, "data": {"a": "1"}, "binaryData": {"b": ""}}) == [
        "x",
        2,
        "7s",
    ]
    assert cells("Secret", {"metadata": meta, "type": "Opaque", "data": {"a": "MQ=="}}) == [
        "x",
        "Opaque",
        1,
        "7s",
    ]
    assert cells("ServiceAccount", {"metadata": meta}) == ["x", 0, "7s"]
    assert cells("Lease", {"metadata": meta, "spec": {"holderIdentity": "node-1"}}) == ["x", "node-1", "7s"]
    assert cells("Namespace", {"metadata": {"name": "y"}, "status": {}}) == ["y", "", "<unknown>"]


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        ({"minAvailable": 2}, {"disruptionsAllowed": 1}, ["web", "2", "N/A", 1, "7s"]),
        ({"maxUnavailable": "25%"}, {"disruptionsAllowed": 0}, ["web", "N/A", "25%", 0, "7s"]),
        ({"minAvailable": "50%"}, {}, ["web", "50%", "N/A", 0, "7s"]),
        ({}, None, ["web", "N/A", "N/A", 0, "7s"]),
    ],
    ids=["min-int", "max-percent", "min-percent-no-status", "neither"],
)
def test_pdb_cells(spec, status, expected):
    obj = {"metadata": {"name": "web", "creationTimestamp": ts(7)}, "spec": spec, "status": status}
    assert cells("PodDisruptionBudget", obj) == expected
    cols = column_definitions(rt("PodDisruptionBudget"))
    assert [c["type"] for c in cols] == ["string", "string", "string", "integer", "string"]
    assert cols[3]["description"] == "Calculated number of pods that may be disrupted at this time."


def test_endpoints_cells():
    meta = {"name": "web", "creationTimestamp": ts(7)}
    eps = {
        "metadata": meta,
        "subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 5)], "ports": [{"port": 80}]}],
    }
    assert cells("Endpoints", eps) == ["web", "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more...", "7s"]
    assert cells("Endpoints", {"metadata": meta})[1] == "<none>"
    v6 = {"metadata": meta, "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]}
    assert cells("Endpoints", v6)[1] == "[fd00::1]:80"
    slice_ = {
        "metadata": meta,
        "addressType": "IPv4",
        "ports": [{"port": 80, "name": "", "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}],
    }
    assert cells("EndpointSlice", slice_) == ["web", "IPv4", "80", "10.0.0.1,10.0.0.2", "7s"]
    assert cells("EndpointSlice", {"metadata": meta, "addressType": "IPv4"})[2:4] == ["<unset>", "<unset>"]
