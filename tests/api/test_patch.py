"""Patch engines: RFC 7386 merge patch, RFC 6902 JSON patch, strategic merge patch, server-side apply."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestra.api.request.bodies import STORED_DEPTH
from orchestra.api.request.patch import (
    MAX_OPERATIONS,
    ApplyConflict,
    PatchError,
    PatchTooLarge,
    apply_patch,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from orchestra.api.request.schema import load_schema

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
SERVICE = "io.k8s.api.core.v1.Service"
POD = "io.k8s.api.core.v1.Pod"
SCHEMA = load_schema()

# -- RFC 7386 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "patch", "expected"),
    [
        # RFC 7386 appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
        # kubectl scale on /scale
        ({"spec": {"replicas": 1}, "status": {"replicas": 1}}, {"spec": {"replicas": 3}},
         {"spec": {"replicas": 3}, "status": {"replicas": 1}}),
    ],
    ids=[f"rfc7386-{i}" for i in range(1, 16)] + ["scale"],
)
def test_merge_patch(doc, patch, expected) -> None:  # type: ignore[no-untyped-def]
    before = copy.deepcopy((doc, patch))
    assert merge_patch(doc, patch) == expected
    assert (doc, patch) == before


# -- RFC 6902 ---------------------------------------------------------------------------------------

BASE = {"foo": "bar", "list": [1, 2, 3], "obj": {"a/b": 1, "m~n": 2, "x": {"y": True}}}


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([{"op": "add", "path": "/baz", "value": "qux"}], {**BASE, "baz": "qux"}),
        ([{"op": "add", "path": "/list/1", "value": 9}], {**BASE, "list": [1, 9, 2, 3]}),
        ([{"op": "add", "path": "/list/-", "value": 4}], {**BASE, "list": [1, 2, 3, 4]}),
        ([{"op": "add", "path": "/foo", "value": {"n": 1}}], {**BASE, "foo": {"n": 1}}),
        ([{"op": "remove", "path": "/list/0"}], {**BASE, "list": [2, 3]}),
        ([{"op": "remove", "path": "/obj/a~1b"}], {**BASE, "obj": {"m~n": 2, "x": {"y": True}}}),
        ([{"op": "replace", "path": "/obj/m~0n", "value": 5}],
         {**BASE, "obj": {"a/b": 1, "m~n": 5, "x": {"y": True}}}),
        ([{"op": "move", "from": "/foo", "path": "/obj/foo"}],
         {"list": [1, 2, 3], "obj": {"a/b": 1, "m~n": 2, "x": {"y": True}, "foo": "bar"}}),
        ([{"op": "move", "from": "/list/0", "path": "/list/-"}], {**BASE, "list": [2, 3, 1]}),
        ([{"op": "copy", "from": "/obj/x", "path": "/copied"}], {**BASE, "copied": {"y": True}}),
        ([{"op": "test", "path": "/obj/x/y", "value": True},
          {"op": "test", "path": "/list", "value": [1, 2, 3.0]}], BASE),
        ([{"op": "replace", "path": "", "value": [1]}], [1]),
        ([{"op": "add", "path": "/spec", "value": {}}, {"op": "add", "path": "/spec/replicas", "value": 3}],
         {**BASE, "spec": {"replicas": 3}}),
    ],
    ids=["add", "add-index", "add-append", "add-replaces", "remove-index", "remove-escaped-slash",
         "replace-escaped-tilde", "move", "move-in-list", "copy", "test", "replace-root", "sequence"],
)
def test_json_patch(ops, expected) -> None:  # type: ignore[no-untyped-def]
    doc = copy.deepcopy(BASE)
    assert json_patch(doc, ops) == expected
    assert doc == BASE


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([{"op": "test", "path": "/foo", "value": "nope"}], "test operation failed"),
        ([{"op": "test", "path": "/obj/x/y", "value": 1}], "test operation failed"),  # true is not 1
        ([{"op": "remove", "path": "/missing"}], "does not exist"),
        ([{"op": "replace", "path": "/missing", "value": 1}], "does not exist"),
        ([{"op": "add", "path": "/a/b", "value": 1}], "does not exist"),
        ([{"op": "add", "path": "/list/7", "value": 1}], "out of bounds"),
        ([{"op": "add", "path": "/list/01", "value": 1}], "invalid array index"),
        ([{"op": "add", "path": "foo", "value": 1}], "invalid JSON pointer"),
        ([{"op": "add", "path": "/foo"}], "does not contain a value"),
        ([{"op": "move", "from": "/obj", "path": "/obj/x/z"}], "own child"),
        ([{"op": "frob", "path": "/foo"}], "unknown json patch operation"),
        ([{"path": "/foo"}], "is not an object"),
        ({"op": "add"}, "JSON array"),
    ],
    ids=["test-fails", "test-bool-vs-int", "remove-missing", "replace-missing", "add-no-parent",
         "index-range", "leading-zero", "bad-pointer", "no-value", "move-into-child", "unknown-op", "no-op",
         "not-a-list"],
)
def test_json_patch_errors(ops, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PatchError, match=message):
        json_patch(BASE, ops)


def test_json_patch_is_all_or_nothing() -> None:
    doc = copy.deepcopy(BASE)
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "remove", "path": "/foo"}, {"op": "test", "path": "/foo", "value": "bar"}])
    assert doc == BASE


# -- strategic merge patch ----------------------------------------------------------------------------


def live_deployment() -> dict[str, Any]:
    """The live object before the harder kubectl-apply case of KUBE-API.md section 3.5."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "u-1",
            "resourceVersion": "7",
            "labels": {"app": "web", "tier": "frontend"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{old}\n"},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "a",
                            "image": "busybox",
                            "args": ["sleep", "1000"],
                            "env": [{"name": "FOO", "value": "1"}, {"name": "BAR", "value": "2"}],
                            "ports": [
                                {"containerPort": 80, "protocol": "TCP"},
                                {"containerPort": 443, "protocol": "TCP"},
                            ],
                            "imagePullPolicy": "Always",
                        },
                        {"name": "b", "image": "nginx", "imagePullPolicy": "Always"},
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "restartPolicy": "Always",
                },
            },
        },
        "status": {"replicas": 2},
    }


HARD_PATCH = {
    "metadata": {"labels": {"tier": None}},
    "spec": {
        "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
        "template": {
            "spec": {
                "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
                "$setElementOrder/volumes": [{"name": "data"}],
                "containers": [
                    {"image": "busybox", "name": "c"},
                    {
                        "$setElementOrder/env": [{"name": "BAR"}],
                        "$setElementOrder/ports": [{"containerPort": 443}, {"containerPort": 8080}],
                        "args": ["sleep", "2000"],
                        "env": [{"name": "BAR", "value": "3"}, {"$patch": "delete", "name": "FOO"}],
                        "name": "a",
                        "ports": [{"containerPort": 8080}, {"$patch": "delete", "containerPort": 80}],
                    },
                    {"$patch": "delete", "name": "b"},
                ],
                "volumes": [
                    {
                        "$retainKeys": ["hostPath", "name"],
                        "emptyDir": None,
                        "hostPath": {"path": "/tmp"},
                        "name": "data",
                    }
                ],
            }
        },
    },
}


def hard_expected() -> dict[str, Any]:
    obj = live_deployment()
    del obj["metadata"]["labels"]["tier"]
    obj["spec"]["strategy"] = {"type": "Recreate"}
    spec = obj["spec"]["template"]["spec"]
    spec["containers"] = [
        {"image": "busybox", "name": "c"},
        {"name": "a", "image": "busybox", "args": ["sleep", "2000"],
         "env": [{"name": "BAR", "value": "3"}],
         "ports": [{"containerPort": 443, "protocol": "TCP"}, {"containerPort": 8080}],
         "imagePullPolicy": "Always"},
    ]
    spec["volumes"] = [{"name": "data", "hostPath": {"path": "/tmp"}}]
    return obj


def simple_live() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{v1}\n"},
        },
        "spec": {
            "replicas": 2,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.25",
                            "env": [{"name": "A", "value": "1"}],
                            "terminationMessagePath": "/dev/termination-log",
                        }
                    ]
                }
            },
        },
    }


SIMPLE_PATCH = {
    "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{v2}\n"}},
    "spec": {
        "replicas": 3,
        "template": {
            "spec": {
                "$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [{"env": None, "image": "nginx:1.26", "name": "nginx"}],
            }
        },
    },
}

SIMPLE_EXPECTED = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{v2}\n"},
    },
    "spec": {
        "replicas": 3,
        "template": {
            "spec": {
                "containers": [
                    {"name": "nginx", "image": "nginx:1.26", "terminationMessagePath": "/dev/termination-log"}
                ]
            }
        },
    },
}

LIVE_SERVICE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
    "spec": {"clusterIP": "10.96.0.10", "selector": {"app": "web"}, "ports": [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443}]},
}
SERVICE_EXPECTED = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
    "spec": {"clusterIP": "10.96.0.10", "selector": {"app": "web"}, "ports": [
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443}]},
}

POD_LIVE: dict[str, Any] = {
    "metadata": {"name": "p", "finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}},
    "spec": {
        "containers": [
            {
                "name": "c",
                "image": "i",
                "command": ["a", "b"],
                "volumeMounts": [{"name": "v1", "mountPath": "/a"}, {"name": "v2", "mountPath": "/b"}],
            }
        ],
        "tolerations": [{"key": "k1"}, {"key": "k2"}],
    },
}


def _pod(**changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(POD_LIVE)
    for path, value in changes.items():
        node: Any = obj
        *parents, last = path.split("__")
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[last] = value
    return obj


@pytest.mark.parametrize(
    ("doc", "patch", "definition", "expected"),
    [
        (simple_live(), SIMPLE_PATCH, DEPLOYMENT, SIMPLE_EXPECTED),
        (live_deployment(), HARD_PATCH, DEPLOYMENT, hard_expected()),
        (LIVE_SERVICE,
         {"spec": {"$setElementOrder/ports": [{"port": 443}], "ports": [{"$patch": "delete", "port": 80}]}},
         SERVICE, SERVICE_EXPECTED),
        (LIVE_SERVICE, {"spec": {"ports": [{"$patch": "delete", "port": 9999}]}}, SERVICE, LIVE_SERVICE),
        (LIVE_SERVICE, {"spec": {"ports": [{"port": 80, "targetPort": "web"}]}}, SERVICE,
         merge_patch(LIVE_SERVICE, {"spec": {"ports": [
             {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"},
             {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443}]}})),
        # like kube-apiserver, a new item without $setElementOrder goes before the server-only items
        (LIVE_SERVICE, {"spec": {"ports": [{"port": 8080}]}}, SERVICE,
         merge_patch(LIVE_SERVICE, {"spec": {"ports": [{"port": 8080}, *LIVE_SERVICE["spec"]["ports"]]}})),
        (LIVE_SERVICE, {"spec": {"selector": {"tier": "x"}}}, SERVICE,
         merge_patch(LIVE_SERVICE, {"spec": {"selector": {"app": "web", "tier": "x"}}})),
        (LIVE_SERVICE, {"spec": {"selector": {"$patch": "replace", "tier": "x"}}}, SERVICE,
         merge_patch(LIVE_SERVICE, {"spec": {"selector": None}})
         | {"spec": {**LIVE_SERVICE["spec"], "selector": {"tier": "x"}}}),
        (LIVE_SERVICE, {"spec": {"selector": {"$patch": "delete"}}}, SERVICE,
         {**LIVE_SERVICE, "spec": {**LIVE_SERVICE["spec"], "selector": {}}}),
        (LIVE_SERVICE, {"spec": {"ports": [{"port": 1}, {"$patch": "replace"}]}}, SERVICE,
         {**LIVE_SERVICE, "spec": {**LIVE_SERVICE["spec"], "ports": [{"port": 1}]}}),
        (POD_LIVE, {"spec": {"tolerations": [{"key": "k3"}]}}, POD, _pod(spec__tolerations=[{"key": "k3"}])),
        (POD_LIVE, {"spec": {"containers": [{"name": "c", "command": ["z"]}]}}, POD,
         _pod(spec__containers__0__command=["z"])),
        (POD_LIVE,
         {"spec": {"containers": [{"name": "c", "volumeMounts": [{"mountPath": "/b", "readOnly": True}]}]}},
         POD, _pod(spec__containers__0__volumeMounts=[{"name": "v1", "mountPath": "/a"},
                                                     {"name": "v2", "mountPath": "/b", "readOnly": True}])),
        (POD_LIVE, {"metadata": {"finalizers": ["c", "a"]}}, POD, _pod(metadata__finalizers=["c", "a", "b"])),
        (POD_LIVE, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, POD,
         _pod(metadata__finalizers=["b"])),
        (POD_LIVE, {"metadata": {"$setElementOrder/finalizers": ["b", "a"]}}, POD,
         _pod(metadata__finalizers=["b", "a"])),
        (POD_LIVE, {"metadata": {"labels": {"x": None, "z": "3"}, "nope": None}}, POD,
         _pod(metadata__labels={"y": "2", "z": "3"})),
        (POD_LIVE, {"spec": {"containers": [{"name": "d", "image": "j", "env": [{"name": "E", "value": None}],
                                             "$setElementOrder/env": [{"name": "E"}]}]}}, POD,
         _pod(spec__containers=[{"name": "d", "image": "j", "env": [{"name": "E"}]},
                                *POD_LIVE["spec"]["containers"]])),
        (POD_LIVE, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, POD,
         {**POD_LIVE, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        (POD_LIVE, {"$patch": "replace", "metadata": {"name": "q"}}, POD, {"metadata": {"name": "q"}}),
        # unknown definition: merge-patch semantics (lists replaced), directives still honoured
        ({"spec": {"items": [{"name": "a"}], "m": {"x": 1}}},
         {"spec": {"items": [{"name": "b"}], "m": {"y": 2}}}, "io.example.v1.Widget",
         {"spec": {"items": [{"name": "b"}], "m": {"x": 1, "y": 2}}}),
        ({"spec": {"m": {"x": 1}}}, {"spec": {"m": {"$patch": "replace", "y": 2}}}, "io.example.v1.Widget",
         {"spec": {"m": {"y": 2}}}),
    ],
    ids=["kubectl-simple", "kubectl-hard", "service-port-delete", "delete-missing-item-noop",
         "merge-item-by-port", "new-item-first", "map-merge", "map-replace", "map-delete", "list-replace",
         "atomic-list", "atomic-args", "merge-key-mountPath", "primitive-merge-list",
         "deleteFromPrimitiveList", "setElementOrder-primitives", "null-deletes",
         "new-item-directives-stripped", "status-conditions", "root-replace", "unknown-definition",
         "unknown-definition-replace"],
)
def test_strategic_merge_patch(doc, patch, definition, expected) -> None:  # type: ignore[no-untyped-def]
    before = copy.deepcopy((doc, patch))
    assert strategic_merge_patch(doc, patch, SCHEMA, definition) == expected
    assert (doc, patch) == before


def test_hard_case_container_order() -> None:
    out = strategic_merge_patch(live_deployment(), HARD_PATCH, SCHEMA, DEPLOYMENT)
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["c", "a"]


def test_set_element_order_interleaves_server_only_items() -> None:
    live = {"spec": {"containers": [{"name": "x"}, {"name": "a"}, {"name": "y"}, {"name": "b"}]}}
    patch = {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}
    out = strategic_merge_patch(live, patch, SCHEMA, "io.k8s.api.core.v1.Pod")
    # strategicpatch.mergeSortedSlice: server-only items go first while they precede the next patch item
    assert [c["name"] for c in out["spec"]["containers"]] == ["x", "y", "b", "a"]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"spec": {"ports": [{"name": "x"}]}}, "does not contain declared merge key: port"),
        ({"spec": {"ports": [{"$patch": "delete"}]}}, "does not contain declared merge key"),
        ({"spec": {"ports": [{"$patch": "frob", "port": 1}]}}, "unknown patch type"),
        ({"spec": {"ports": [{"$patch": "merge", "port": 1}]}}, "merging lists cannot yet be specified"),
        ({"spec": {"$patch": "frob"}}, "unknown patch type"),
        ({"spec": {"$frob": 1}}, "unknown strategic merge patch directive"),
        ({"spec": {"$retainKeys": ["type"], "clusterIP": "x"}}, "not in \\$retainKeys"),
        ({"spec": {"$setElementOrder/ports": [{"name": "x"}]}}, "does not contain merge key: port"),
        ({"spec": {"ports": [1]}}, "mixes objects"),
        ([1], "must be a JSON object"),
    ],
    ids=["item-without-key", "delete-without-key", "bad-item-directive", "list-merge-directive",
         "bad-map-directive", "unknown-directive", "retainKeys-violation", "order-without-key", "mixed-list",
         "not-an-object"],
)
def test_strategic_merge_patch_errors(patch, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PatchError, match=message):
        strategic_merge_patch(LIVE_SERVICE, patch, SCHEMA, SERVICE)


# -- server-side apply ---------------------------------------------------------------------------------


def config(
    image: str = "nginx:1.25",
    replicas: int | None = 2,
    env: list[Any] | None = None,
    containers: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    web: dict[str, Any] = {"name": "web", "image": image, "ports": [{"containerPort": 80}]}
    if env is not None:
        web["env"] = env
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers or [web]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": labels or {"app": "web"}},
            "spec": spec}


def apply(
    live: dict[str, Any] | None, cfg: dict[str, Any], manager: str = "kubectl", force: bool = False
) -> dict[str, Any]:
    return apply_patch(live, cfg, manager, force=force, schema=SCHEMA, definition=DEPLOYMENT)


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def test_apply_create_records_managed_fields_like_kubernetes() -> None:
    out = apply(None, config(env=[{"name": "A", "value": "1"}]))
    [entry] = out["metadata"]["managedFields"]
    assert set(entry) == {"manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"}
    assert (entry["manager"], entry["operation"], entry["apiVersion"], entry["fieldsType"]) == (
        "kubectl", "Apply", "apps/v1", "FieldsV1")
    assert entry["time"].endswith("Z") and "T" in entry["time"]
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},  # LabelSelector is an atomic struct
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {'k:{"name":"web"}': {
                    ".": {}, "f:env": {'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}}},
                    "f:image": {}, "f:name": {},
                    "f:ports": {'k:{"containerPort":80}': {".": {}, "f:containerPort": {}}}}}},
            },
        },
    }
    assert out["spec"] == config(env=[{"name": "A", "value": "1"}])["spec"]
    assert out["metadata"]["name"] == "web"


def test_apply_removes_env_var_dropped_from_config() -> None:
    first = apply(None, config(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]))
    second = apply(first, config(env=[{"name": "B", "value": "2"}]))
    assert containers(second)[0]["env"] == [{"name": "B", "value": "2"}]
    third = apply(second, config())
    assert "env" not in containers(third)[0]


def test_apply_removes_container_and_label_dropped_from_config() -> None:
    two = [{"name": "web", "image": "nginx"}, {"name": "side", "image": "busybox"}]
    first = apply(None, config(containers=two, labels={"app": "web", "tier": "fe"}))
    second = apply(first, config(containers=[{"name": "web", "image": "nginx"}], labels={"app": "web"}))
    assert [c["name"] for c in containers(second)] == ["web"]
    assert second["metadata"]["labels"] == {"app": "web"}


def test_apply_keeps_fields_it_never_owned() -> None:
    live = apply(None, config())
    # written by a controller / defaulting, not by an apply: untracked, so kept
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    live["spec"]["progressDeadlineSeconds"] = 600
    live["status"] = {"replicas": 2}
    out = apply(live, config(image="nginx:1.26"))
    assert containers(out)[0] == {"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}],
                                  "imagePullPolicy": "IfNotPresent"}
    assert out["spec"]["progressDeadlineSeconds"] == 600 and out["status"] == {"replicas": 2}


def test_apply_field_shared_with_another_manager_is_not_removed() -> None:
    live = apply(None, config(env=[{"name": "A", "value": "1"}]), manager="a")
    live = apply(live, config(env=[{"name": "A", "value": "1"}]), manager="b")
    out = apply(live, config(), manager="a")  # a stops applying env; b still owns it
    assert containers(out)[0]["env"] == [{"name": "A", "value": "1"}]
    assert [e["manager"] for e in out["metadata"]["managedFields"]] == ["a", "b"]


def test_apply_conflict_with_another_manager() -> None:
    live = apply(None, config(replicas=2), manager="kubectl-client-side-apply")
    with pytest.raises(ApplyConflict) as info:
        apply(live, config(replicas=5))
    assert info.value.conflicts == [("kubectl-client-side-apply", ".spec.replicas")]
    assert info.value.message == (
        'Apply failed with 1 conflict: conflict with '
        '"kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )
    [cause] = info.value.causes()
    assert cause.to_dict() == {"reason": "FieldManagerConflict", "field": ".spec.replicas",
                               "message": 'conflict with "kubectl-client-side-apply" using apps/v1'}


def test_apply_conflict_paths_use_keys() -> None:
    live = apply(None, config(image="nginx:1"), manager="other")
    with pytest.raises(ApplyConflict) as info:
        apply(live, config(image="nginx:2", replicas=9))
    assert info.value.conflicts == [
        ("other", ".spec.replicas"),
        ("other", '.spec.template.spec.containers[name="web"].image'),
    ]
    assert info.value.message.startswith(
        'Apply failed with 2 conflicts: conflicts with "other" using apps/v1\n- '
    )


def test_apply_same_value_is_not_a_conflict_and_is_shared() -> None:
    live = apply(None, config(), manager="a")
    out = apply(live, config(), manager="b")
    assert [e["manager"] for e in out["metadata"]["managedFields"]] == ["a", "b"]
    assert out["metadata"]["managedFields"][0] == live["metadata"]["managedFields"][0]


def test_apply_force_moves_ownership() -> None:
    live = apply(None, config(replicas=2), manager="a")
    out = apply(live, config(replicas=5), manager="b", force=True)
    assert out["spec"]["replicas"] == 5
    a, b = out["metadata"]["managedFields"]
    assert "f:replicas" not in a["fieldsV1"]["f:spec"]
    assert "f:replicas" in b["fieldsV1"]["f:spec"]
    # a no longer owns replicas: dropping it from b's config removes it
    out = apply(out, config(replicas=None), manager="b")
    assert "replicas" not in out["spec"]


def test_apply_keeps_other_apply_entries_and_drops_update_entries() -> None:
    live = apply(None, config(), manager="a")
    update = {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
              "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}
    other = {"manager": "helm", "operation": "Apply", "apiVersion": "apps/v1", "time": "2024-01-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {"f:x": {}}}}}
    live["metadata"]["managedFields"] += [update, other]
    out = apply(live, config(image="nginx:2"), manager="a")
    assert out["metadata"]["managedFields"][1:] == [other]
    assert out["metadata"]["managedFields"][0]["manager"] == "a"


def test_apply_twice_is_idempotent() -> None:
    once = apply(None, config(env=[{"name": "A", "value": "1"}]))
    assert apply(once, config(env=[{"name": "A", "value": "1"}])) == once


def test_apply_does_not_mutate_inputs() -> None:
    live = apply(None, config(env=[{"name": "A", "value": "1"}]))
    cfg = config()
    before = copy.deepcopy((live, cfg))
    apply(live, cfg)
    assert (live, cfg) == before


def test_apply_merges_list_map_items_by_key_and_keeps_defaulted_key_fields() -> None:
    live = apply(None, config())
    containers(live)[0]["ports"][0]["protocol"] = "TCP"  # server default
    out = apply(
        live,
        config(
            containers=[
                {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}, {"containerPort": 443}]},
                {"name": "log", "image": "busybox"},
            ]
        ),
    )
    assert containers(out) == [
        {
            "name": "web",
            "image": "nginx",
            "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
        },
        {"name": "log", "image": "busybox"},
    ]


def test_apply_set_lists_and_atomic_values() -> None:
    cfg: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "finalizers": ["x/a"]},
        "spec": {
            "containers": [{"name": "c", "image": "i", "command": ["sleep", "1"]}],
            "nodeSelector": {"disk": "ssd"},
        },
    }
    out = apply_patch(None, cfg, "m", force=False, schema=SCHEMA, definition=POD)
    fields = out["metadata"]["managedFields"][0]["fieldsV1"]
    assert fields["f:metadata"] == {"f:finalizers": {'v:"x/a"': {}}}
    assert fields["f:spec"]["f:nodeSelector"] == {}  # atomic map
    assert fields["f:spec"]["f:containers"]['k:{"name":"c"}']["f:command"] == {}  # atomic list
    cfg2 = copy.deepcopy(cfg)
    cfg2["metadata"]["finalizers"] = ["x/b"]
    cfg2["spec"]["containers"][0]["command"] = ["true"]
    out2 = apply_patch(out, cfg2, "m", force=False, schema=SCHEMA, definition=POD)
    assert out2["metadata"]["finalizers"] == ["x/b"]
    assert out2["spec"]["containers"][0]["command"] == ["true"]


def test_apply_unknown_definition_treats_maps_granular_lists_atomic() -> None:
    cfg = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
           "spec": {"size": 1, "items": [{"name": "a"}]}}
    out = apply_patch(None, cfg, "m", force=False, schema=SCHEMA, definition="io.example.v1.Widget")
    assert out["metadata"]["managedFields"][0]["fieldsV1"] == {"f:spec": {"f:items": {}, "f:size": {}}}
    out = apply_patch(out, {**cfg, "spec": {"items": [{"name": "b"}]}}, "m", force=False, schema=None,
                      definition="io.example.v1.Widget")
    assert out["spec"] == {"items": [{"name": "b"}]}


@pytest.mark.parametrize(
    ("cfg", "manager", "message"),
    [
        (config(containers=[{"image": "nginx"}]), "m", "omits all key fields"),
        (config(), "", "fieldManager is required"),
        ([1], "m", "must be a JSON object"),
    ],
    ids=["item-without-key", "no-manager", "not-an-object"],
)
def test_apply_errors(cfg, manager, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PatchError, match=message):
        apply_patch(None, cfg, manager, force=False, schema=SCHEMA, definition=DEPLOYMENT)


# -- properties -----------------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=4), json_values, max_size=4)


@given(json_objects)
def test_merge_patch_with_empty_patch_is_identity(doc: dict[str, Any]) -> None:
    assert merge_patch(doc, {}) == doc


@given(json_objects, st.text(max_size=6), json_values)
def test_json_patch_add_then_remove_round_trips(doc: dict[str, Any], key: str, value: Any) -> None:
    if key in doc:
        return
    pointer = "/" + key.replace("~", "~0").replace("/", "~1")
    added = json_patch(doc, [{"op": "add", "path": pointer, "value": value}])
    assert added[key] == value
    assert json_patch(added, [{"op": "remove", "path": pointer}]) == doc


@given(json_objects)
def test_json_patch_test_op_matches_the_document(doc: dict[str, Any]) -> None:
    assert json_patch(doc, [{"op": "test", "path": "", "value": doc}]) == doc


plain_keys = st.text(alphabet="abcxyz", min_size=1, max_size=3)
plain_values = st.recursive(
    st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.dictionaries(plain_keys, inner, max_size=3), max_leaves=8,
)
maps = st.dictionaries(plain_keys, plain_values, max_size=4)


@given(maps, maps)
def test_smp_on_maps_equals_merge_patch(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    # a patch that only sets keys (no lists, no directives) merges like RFC 7386, known schema or not
    assert strategic_merge_patch(doc, patch, SCHEMA, "io.example.v1.Widget") == merge_patch(doc, patch)
    labels_doc = {"metadata": {"labels": doc}}
    labels_patch = {"metadata": {"labels": patch}}
    assert strategic_merge_patch(labels_doc, labels_patch, SCHEMA, POD) == merge_patch(
        labels_doc, labels_patch
    )


@given(st.dictionaries(plain_keys, st.text(max_size=3), max_size=4),
       st.dictionaries(plain_keys, st.text(max_size=3), max_size=4))
def test_apply_labels_end_up_exactly_as_configured(first: dict[str, str], second: dict[str, str]) -> None:
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": first}}
    live = apply_patch(None, base, "m", force=False, schema=SCHEMA, definition="io.k8s.api.core.v1.ConfigMap")
    out = apply_patch(live, {**base, "metadata": {"name": "c", "labels": second}}, "m", force=False,
                      schema=SCHEMA, definition="io.k8s.api.core.v1.ConfigMap")
    assert out["metadata"].get("labels", {}) == second


garbage_keys = st.sampled_from(
    [
        "metadata",
        "spec",
        "containers",
        "name",
        "ports",
        "port",
        "$patch",
        "$retainKeys",
        "$setElementOrder/ports",
        "$deleteFromPrimitiveList/finalizers",
        "finalizers",
        "labels",
        "template",
        "op",
        "path",
        "value",
        "from",
        "managedFields",
        "x",
    ]
)
garbage = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from(["delete", "replace", "merge", "/spec", "", "-"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(garbage_keys, inner, max_size=4),
    max_leaves=16,
)


@given(garbage, garbage, st.sampled_from([DEPLOYMENT, SERVICE, POD, "io.example.v1.Widget"]))
def test_garbage_only_raises_patch_errors(doc: Any, patch: Any, definition: str) -> None:
    attempts = [
        lambda: merge_patch(doc, patch),
        lambda: json_patch(doc, patch),
        lambda: strategic_merge_patch(doc, patch, SCHEMA, definition),
        lambda: apply_patch(doc if isinstance(doc, dict) else None, patch, "m", force=False, schema=SCHEMA,
                            definition=definition),
    ]
    for attempt in attempts:
        try:
            attempt()
        except (PatchError, ApplyConflict):
            pass  # the expected failure mode: turned into a 4xx Status by the API core


# -- bounded cost and hostile input ----------------------------------------------------------------------


def _pod_with(n: int, image: str = "x") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": f"c{i}", "image": image} for i in range(n)]}}


def _seconds(fn: Any) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


BIG = 10_000  # a list-merge that searched the list per item took minutes here; linear takes well under 1 s


def test_strategic_merge_of_a_long_list_is_linear() -> None:
    live = _pod_with(BIG)
    patch = {"spec": {"containers": [{"name": f"c{i}", "image": "y"} for i in range(1, BIG, 2)]
                      + [{"name": f"c{i}", "$patch": "delete"} for i in range(0, BIG, 2)]}}
    out: dict[str, Any] = {}
    assert _seconds(lambda: out.update(strategic_merge_patch(live, patch, SCHEMA, POD))) < 20
    assert [c["name"] for c in out["spec"]["containers"]] == [f"c{i}" for i in range(1, BIG, 2)]
    assert {c["image"] for c in out["spec"]["containers"]} == {"y"}


def test_server_side_apply_of_a_long_list_is_linear() -> None:
    live = apply_patch(None, _pod_with(BIG), "a", force=False, schema=SCHEMA, definition=POD)
    shrunk = {**_pod_with(0),
              "spec": {"containers": [{"name": f"c{i}", "image": "x"} for i in range(0, BIG, 2)]}}
    out: dict[str, Any] = {}
    assert _seconds(lambda: out.update(apply_patch(live, shrunk, "a", force=False, schema=SCHEMA,
                                                   definition=POD))) < 20
    assert [c["name"] for c in out["spec"]["containers"]] == [f"c{i}" for i in range(0, BIG, 2)]
    assert _seconds(lambda: out.update(apply_patch(live, _pod_with(BIG, "z"), "b", force=True, schema=SCHEMA,
                                                   definition=POD))) < 20
    assert {c["image"] for c in out["spec"]["containers"]} == {"z"}


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([{"op": "test", "path": "", "value": BASE}] * (MAX_OPERATIONS + 1),
         f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {MAX_OPERATIONS + 1}"),
        ([{"op": "add", "path": "/big", "value": "x" * 1_000_000}]
         + [{"op": "copy", "from": "/big", "path": f"/c{i}"} for i in range(4)],
         "Unable to complete the copy, the accumulated size increase of copy is 4000008, exceeding the "
         "limit 3145728"),
        ([{"op": "copy", "from": "", "path": f"/k{i}"} for i in range(40)],
         "exceeding the limit"),  # each copy doubles the document: refused long before memory runs out
        ([{"op": "test", "path": "", "value": BASE}] * MAX_OPERATIONS, None),
    ],
    ids=["too-many-operations", "copy-size", "copy-doubling", "at-the-operation-limit"],
)
def test_json_patch_limits(ops: list[Any], message: str | None) -> None:
    if message is None:
        json_patch(BASE, ops)
        return
    with pytest.raises(PatchError) as info:
        json_patch(BASE, ops)
    assert message in str(info.value)
    assert isinstance(info.value, PatchTooLarge) == message.startswith("The allowed maximum")


def test_json_patch_moves_cannot_nest_the_document_past_max_depth() -> None:
    """Each move may put the document under a path as deep as the document: the depth doubles."""
    doc: dict[str, Any] = {"a": {}}
    tip = doc["a"]
    for _ in range(STORED_DEPTH - 3):
        tip["a"] = {}
        tip = tip["a"]
    deep_path = "/a" * (STORED_DEPTH - 2)
    ops = [{"op": "add", "path": "/b", "value": {}}, {"op": "move", "from": "/a", "path": "/b/a"},
           {"op": "copy", "from": "/b", "path": "/c"}, {"op": "move", "from": "/c", "path": "/b" + deep_path}]
    with pytest.raises(PatchError, match=f"nested deeper than {STORED_DEPTH} levels"):
        json_patch(doc, ops)


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([{"op": "replace", "path": "", "value": []}], []),
        ([{"op": "replace", "path": "", "value": 5}], 5),
        ([{"op": "add", "path": "", "value": "x"}], "x"),
        ([{"op": "replace", "path": "", "value": 5}, {"op": "add", "path": "/a", "value": 1}],
         PatchError("non-container")),
        ([{"op": "test", "path": "", "value": BASE}], BASE),
        ([{"op": "add", "path": 5, "value": 1}], PatchError("does not have a 'path' string")),
        ([{"op": "copy", "from": ["x"], "path": "/a"}], PatchError("does not have a 'from' string")),
        ([{"op": "add", "path": "/list/-/x", "value": 1}], PatchError("invalid array index '-'")),
        ([5], PatchError("is not an object")),
        ([{"op": ["add"], "path": "/a"}], PatchError("is not an object")),
    ],
    ids=["root-list", "root-number", "add-root", "then-into-a-number", "test-root", "path-number",
         "from-list", "dash-mid-path", "op-number", "op-list"],
)
def test_json_patch_values_of_any_type_never_crash(ops: list[Any], expected: Any) -> None:
    if isinstance(expected, PatchError):
        with pytest.raises(PatchError, match=expected.message):
            json_patch(BASE, ops)
    else:
        assert json_patch(BASE, ops) == expected
