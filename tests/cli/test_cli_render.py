"""Rendering server-side Tables, ages, YAML/JSON and describe text exactly as kubectl lays them out."""

from __future__ import annotations

import datetime

import pytest

from orchestra.cli.describe import describe_events, describe_pod
from orchestra.cli.render import TableLayout, age, as_list, render_table, table_rows, to_json, to_yaml
from orchestra.cli.tabwriter import tabwrite
from orchestra.objects import human_duration

POD_TABLE = {
    "kind": "Table",
    "apiVersion": "meta.k8s.io/v1",
    "metadata": {"resourceVersion": "107"},
    "columnDefinitions": [
        {"name": "Name", "type": "string", "format": "name", "priority": 0},
        {"name": "Ready", "type": "string", "priority": 0},
        {"name": "Status", "type": "string", "priority": 0},
        {"name": "Restarts", "type": "integer", "priority": 0},
        {"name": "Age", "type": "string", "priority": 0},
        {"name": "IP", "type": "string", "priority": 1},
        {"name": "Node", "type": "string", "priority": 1},
        {"name": "Nominated Node", "type": "string", "priority": 1},
        {"name": "Readiness Gates", "type": "string", "priority": 1},
    ],
    "rows": [
        {
            "cells": ["solo", "1/1", "Running", 0, "5m", "10.244.0.110", "node-1", "<none>", "<none>"],
            "object": {"kind": "PartialObjectMetadata", "metadata": {"name": "solo", "namespace": "default"}},
        },
        {
            "cells": ["web-9044812af3-f825s", "0/1", "Pending", 0, "0s", None, None, "<none>", "<none>"],
            "object": {
                "kind": "PartialObjectMetadata",
                "metadata": {"name": "web-9044812af3-f825s", "namespace": "shop"},
            },
        },
    ],
}


def test_default_columns_only() -> None:
    assert render_table(POD_TABLE) == (
        "NAME                   READY   STATUS    RESTARTS   AGE\n"
        "solo                   1/1     Running   0          5m\n"
        "web-9044812af3-f825s   0/1     Pending   0          0s"
    )


def test_wide_adds_priority_columns() -> None:
    assert render_table(POD_TABLE, wide=True) == (
        "NAME                   READY   STATUS    RESTARTS   AGE   IP             NODE     "
        "NOMINATED NODE   READINESS GATES\n"
        "solo                   1/1     Running   0          5m    10.244.0.110   node-1   "
        "<none>           <none>\n"
        "web-9044812af3-f825s   0/1     Pending   0          0s    <none>         <none>   "
        "<none>           <none>"
    )


def test_all_namespaces_puts_namespace_first() -> None:
    assert render_table(POD_TABLE, with_namespace=True) == (
        "NAMESPACE   NAME                   READY   STATUS    RESTARTS   AGE\n"
        "default     solo                   1/1     Running   0          5m\n"
        "shop        web-9044812af3-f825s   0/1     Pending   0          0s"
    )


def test_name_prefix_and_no_headers() -> None:
    assert render_table(POD_TABLE, name_prefix="pod", headers=False) == (
        "pod/solo                   1/1   Running   0     5m\n"
        "pod/web-9044812af3-f825s   0/1   Pending   0     0s"
    )


def test_narrow_columns_have_kubectl_minimum_width() -> None:
    table = {"columnDefinitions": [{"name": "A"}, {"name": "B"}], "rows": [{"cells": ["x", True]}]}
    assert render_table(table) == "A     B\nx     true"


def test_watch_rows_keep_header_widths_and_widen_only_their_line() -> None:
    layout = TableLayout()
    first = {**POD_TABLE, "rows": POD_TABLE["rows"][:1]}
    assert layout.lines(table_rows(first)) == [
        "NAME   READY   STATUS    RESTARTS   AGE",
        "solo   1/1     Running   0          5m",
    ]
    later = table_rows({**POD_TABLE, "rows": POD_TABLE["rows"][1:]}, headers=False)
    assert layout.lines_for_row(later[0]) == "web-9044812af3-f825s   0/1     Pending   0          0s"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (119, "119s"), (120, "2m"), (185, "3m5s"), (600, "10m"), (3 * 3600 + 60, "3h1m"),
     (10 * 3600, "10h"), (50 * 3600, "2d2h"), (30 * 86400, "30d"), (800 * 86400, "2y70d")],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_age_of_timestamp() -> None:
    now = datetime.datetime(2024, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
    assert age("2024-01-01T11:55:00Z", now) == "5m"
    assert age(None, now) == "<unknown>"


def test_yaml_is_sorted_block_style_like_kubectl() -> None:
    obj = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "x"},
           "spec": {"containers": [{"name": "c", "args": ["sleep", "10"]}]}}
    assert to_yaml(obj) == (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - args:\n    - sleep\n"
        "    - \"10\"\n    name: c\n"
    )


def test_json_is_sorted_with_four_space_indent() -> None:
    assert to_json(as_list([{"b": 1, "a": 2}])) == (
        '{\n    "apiVersion": "v1",\n    "items": [\n        {\n            "a": 2,\n            "b": 1\n'
        '        }\n    ],\n    "kind": "List",\n    "metadata": {\n        "resourceVersion": ""\n    }\n}'
    )


def test_tabwriter_blocks_align_independently() -> None:
    text = "Name:\tsolo\nLabels:\ta=1\n\tb=2\nIPs:\n  IP:\t10.0.0.1\n"
    assert tabwrite(text) == "Name:    solo\nLabels:  a=1\n         b=2\nIPs:\n  IP:  10.0.0.1\n"


def test_describe_pod_layout() -> None:
    pod = {
        "metadata": {"name": "solo", "namespace": "default", "labels": {"app": "web", "tier": "fe"}},
        "spec": {
            "nodeName": "node-1",
            "serviceAccountName": "default",
            "containers": [{"name": "main", "image": "busybox", "ports": [{"containerPort": 8080}]}],
        },
        "status": {
            "phase": "Running",
            "hostIP": "10.0.0.1",
            "podIP": "10.244.0.5",
            "podIPs": [{"ip": "10.244.0.5"}],
            "qosClass": "BestEffort",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "main",
                    "ready": True,
                    "restartCount": 0,
                    "image": "busybox",
                    "imageID": "sha256:1",
                    "containerID": "podman://abc",
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                }
            ],
        },
    }
    assert describe_pod(pod) == (
        "Name:             solo\n"
        "Namespace:        default\n"
        "Priority:         0\n"
        "Service Account:  default\n"
        "Node:             node-1/10.0.0.1\n"
        "Labels:           app=web\n"
        "                  tier=fe\n"
        "Annotations:      <none>\n"
        "Status:           Running\n"
        "IP:               10.244.0.5\n"
        "IPs:\n"
        "  IP:  10.244.0.5\n"
        "Containers:\n"
        "  main:\n"
        "    Container ID:   podman://abc\n"
        "    Image:          busybox\n"
        "    Image ID:       sha256:1\n"
        "    Port:           8080/TCP\n"
        "    Host Port:      0/TCP\n"
        "    State:          Waiting\n"
        "      Reason:       ContainerCreating\n"
        "    Ready:          True\n"
        "    Restart Count:  0\n"
        "    Environment:    <none>\n"
        "    Mounts:         <none>\n"
        "Conditions:\n"
        # Like kubectl: the conditions share a tabwriter block with the lines below them.
        "  Type           Status\n"
        "  Ready          True \n"
        "Volumes:         <none>\n"
        "QoS Class:       BestEffort\n"
        "Node-Selectors:  <none>\n"
        "Tolerations:     <none>\n"
    )


def test_describe_events() -> None:
    now = datetime.datetime(2024, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
    events = [
        {"type": "Normal", "reason": "Pulled", "message": "pulled ", "count": 3,
         "firstTimestamp": "2024-01-01T11:50:00Z", "lastTimestamp": "2024-01-01T11:59:58Z",
         "source": {"component": "kubelet", "host": "node-1"}},
        {"type": "Normal", "reason": "Scheduled", "message": "Successfully assigned default/solo to node-1",
         "firstTimestamp": "2024-01-01T11:50:00Z", "lastTimestamp": "2024-01-01T11:50:00Z",
         "source": {"component": "default-scheduler"}},
    ]
    assert describe_events(events, now) == (
        "Events:\n"
        "  Type    Reason     Age               From               Message\n"
        "  ----    ------     ----              ----               -------\n"
        "  Normal  Scheduled  10m               default-scheduler  "
        "Successfully assigned default/solo to node-1\n"
        "  Normal  Pulled     2s (x3 over 10m)  kubelet, node-1    pulled\n"
    )
    assert describe_events([], now) == "Events:  <none>\n"


def test_yaml_quotes_like_go() -> None:
    assert to_yaml({"rv": "7", "flag": "yes", "name": "web"}) == 'flag: "yes"\nname: web\nrv: "7"\n'


def test_yaml_prints_multiline_strings_as_blocks() -> None:
    assert (
        to_yaml({"data": {"run.sh": "echo hi\necho there\n"}})
        == "data:\n  run.sh: |\n    echo hi\n    echo there\n"
    )
