"""The storage kinds at the API: defaults, kube-worded validation, DefaultStorageClass admission and
the Table cells of PersistentVolumeClaim, PersistentVolume and StorageClass."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestra.api.policy.defaults import default
from orchestra.api.policy.validation import validate
from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.api.tables import column_definitions, table_row

Obj = dict[str, Any]
NOW = datetime(2024, 1, 1, tzinfo=UTC)
META = {
    "name": "data",
    "namespace": "default",
    "creationTimestamp": (NOW - timedelta(seconds=7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
}


def claim(**spec: Any) -> Obj:
    base: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    return default("PersistentVolumeClaim", {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                             "metadata": dict(META), "spec": {**base, **spec}})


def messages(kind: str, obj: Obj, old: Obj | None = None) -> list[str]:
    return [f"{c.field}: {c.message}" for c in validate(kind, obj, old)]


def test_defaults() -> None:
    assert claim()["spec"]["volumeMode"] == "Filesystem"
    pv = default("PersistentVolume", {"spec": {"hostPath": {"path": "/x"}}})
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["volumeMode"] == "Filesystem"
    sc = default("StorageClass", {"provisioner": "p"})
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")


@pytest.mark.parametrize(("spec", "expected"), [
    ({"accessModes": []}, ["spec.accessModes: Required value: at least 1 access mode is required"]),
    ({"accessModes": ["ReadWriteSometimes"]},
     ['spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: "ReadOnlyMany", '
      '"ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"']),
    ({"resources": {}}, ["spec.resources[storage]: Required value"]),
    ({"resources": {"requests": {"storage": "0"}}},
     ['spec.resources[storage]: Invalid value: "0": must be greater than zero']),
    ({"volumeMode": "Raw"},
     ['spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"']),
], ids=["no-modes", "bad-mode", "no-storage", "zero-storage", "bad-volume-mode"])
def test_claim_validation(spec: Obj, expected: list[str]) -> None:
    assert messages("PersistentVolumeClaim", claim(**spec)) == expected


def test_claim_spec_is_immutable_except_binding_and_bound_resize() -> None:
    old = claim(storageClassName="a")
    changed = copy.deepcopy(old)
    changed["spec"]["storageClassName"] = "b"
    assert messages("PersistentVolumeClaim", changed, old) == [
        "spec: Forbidden: spec is immutable after creation except resources.requests and "
        "volumeAttributesClassName for bound claims"
    ]
    bound = copy.deepcopy(old)
    bound["spec"]["volumeName"] = "pv-1"  # the binder sets volumeName once
    assert messages("PersistentVolumeClaim", bound, old) == []
    bound["status"] = {"phase": "Bound"}
    bigger = copy.deepcopy(bound)
    bigger["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert messages("PersistentVolumeClaim", bigger, bound) == []
    pending_resize = copy.deepcopy(old)
    pending_resize["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert len(messages("PersistentVolumeClaim", pending_resize, old)) == 1  # not bound: no resize


def test_volume_and_class_validation() -> None:
    pv = default("PersistentVolume", {"metadata": {"name": "v"}, "spec": {"capacity": {"storage": "1Gi"}}})
    assert messages("PersistentVolume", pv) == [
        "spec.accessModes: Required value: must specify at least 1 access mode",
        "spec: Required value: must specify a volume type"]
    sc = default("StorageClass", {"metadata": {"name": "s"}})
    assert messages("StorageClass", sc) == ["provisioner: Required value"]
    old = default("StorageClass", {"metadata": {"name": "s"}, "provisioner": "a.io/x"})
    new = {**copy.deepcopy(old), "provisioner": "b.io/y"}
    assert messages("StorageClass", new, old) == [
        "provisioner: Forbidden: updates to provisioner are forbidden."
    ]


def cells(kind: str, obj: Obj) -> list[Any]:
    rt = DEFAULT_REGISTRY.by_kind(kind)
    assert rt is not None
    return list(table_row(rt, obj, now=NOW)["cells"])


def test_columns() -> None:
    def names(kind: str) -> list[str]:
        rt = DEFAULT_REGISTRY.by_kind(kind)
        assert rt is not None
        return [c["name"] for c in column_definitions(rt)]

    assert names("PersistentVolumeClaim") == [
        "Name",
        "Status",
        "Volume",
        "Capacity",
        "Access Modes",
        "StorageClass",
        "VolumeAttributesClass",
        "Age",
        "VolumeMode",
    ]
    assert names("PersistentVolume") == [
        "Name",
        "Capacity",
        "Access Modes",
        "Reclaim Policy",
        "Status",
        "Claim",
        "StorageClass",
        "VolumeAttributesClass",
        "Reason",
        "Age",
        "VolumeMode",
    ]
    assert names("StorageClass") == ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode",
                                     "AllowVolumeExpansion", "Age"]


def test_cells() -> None:
    pending = claim(storageClassName="local-path")
    assert cells("PersistentVolumeClaim", pending) == [
        "data",
        "Pending",
        "",
        "",
        "",
        "local-path",
        "<unset>",
        "7s",
        "Filesystem",
    ]
    bound = {**pending, "spec": {**pending["spec"], "volumeName": "pvc-1"},
             "status": {"phase": "Bound", "capacity": {"storage": "1024Mi"},
                        "accessModes": ["ReadWriteMany", "ReadWriteOnce"]}}
    assert cells("PersistentVolumeClaim", bound)[:5] == ["data", "Bound", "pvc-1", "1Gi", "RWO,RWX"]
    pv = {
        "metadata": {**META, "name": "pvc-1"},
        "status": {"phase": "Bound"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "local-path",
            "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {"namespace": "default", "name": "data"},
            "volumeMode": "Filesystem",
        },
    }
    assert cells("PersistentVolume", pv) == [
        "pvc-1",
        "1Gi",
        "RWO",
        "Delete",
        "Bound",
        "default/data",
        "local-path",
        "<unset>",
        "",
        "7s",
        "Filesystem",
    ]
    sc = {
        "metadata": {
            **META,
            "name": "local-path",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "orchestra.io/local-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    assert cells("StorageClass", sc) == ["local-path (default)", "orchestra.io/local-path", "Delete",
                                         "WaitForFirstConsumer", False, "7s"]
