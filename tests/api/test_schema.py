"""Schema: strict-decoding checks against the real Kubernetes 1.32 definitions, and field metadata."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from orchestra.api.errors import Cause
from orchestra.api.request.schema import FieldInfo, load_schema

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
POD = "io.k8s.api.core.v1.Pod"
SERVICE = "io.k8s.api.core.v1.Service"


def deployment() -> dict[str, Any]:
    # what `kubectl apply -f deploy.yaml` sends (creationTimestamp: null included)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "creationTimestamp": None,
            "labels": {"app": "web"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.25",
                            "args": ["-g", "daemon off;"],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [
                                {"name": "FOO", "value": "1"},
                                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            ],
                            "resources": {
                                "limits": {"cpu": "500m", "memory": "128Mi"},
                                "requests": {"cpu": 0.1},
                            },
                            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                },
            },
        },
        "status": {},
    }


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "labels": {"run": "p"},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": True}
            ],
        },
        "spec": {
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "command": ["sleep", "3600"],
                    "securityContext": {"runAsUser": 1000, "privileged": False},
                }
            ],
            "tolerations": [
                {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}
            ],
        },
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.5",
            "startTime": "2024-05-01T10:00:00Z",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": None}],
        },
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080},
            {"name": "https", "port": 443, "targetPort": "https"},
        ]},
    }


@pytest.fixture(scope="module")
def schema():  # type: ignore[no-untyped-def]
    return load_schema()


@pytest.mark.parametrize(
    ("obj", "definition"),
    [(deployment(), DEPLOYMENT), (pod(), POD), (service(), SERVICE)],
    ids=["deployment", "pod", "service"],
)
def test_typical_objects_validate_clean(schema, obj, definition) -> None:  # type: ignore[no-untyped-def]
    before = copy.deepcopy(obj)
    res = schema.validate(obj, definition)
    assert res.unknown_fields == [] and res.type_errors == [] and res.missing_required == []
    assert res.ok
    assert obj == before


def _set(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node: Any = obj
    parts = path.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if p.isdigit() else node[p]
    last = parts[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return obj


CONTAINER = "spec.template.spec.containers.0"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (f"{CONTAINER}.imagee", "x", "spec.template.spec.containers[0].imagee"),
        ("spec.foo", 1, "spec.foo"),
        (f"{CONTAINER}.Image", "x", "spec.template.spec.containers[0].Image"),  # case-sensitive
        (f"{CONTAINER}.env.0.valu", "x", "spec.template.spec.containers[0].env[0].valu"),
        ("metadata.labelz", {}, "metadata.labelz"),
        ("spec.template.spec.volumes.0.emptyDir", {"sizeLimit": "1Gi", "medum": "Memory"},
         "spec.template.spec.volumes[0].emptyDir.medum"),
        ("extra", True, "extra"),
    ],
    ids=["container-typo", "spec-level", "case", "env-item", "metadata", "nested-volume", "top-level"],
)
def test_unknown_field_path(schema, path, value, expected) -> None:  # type: ignore[no-untyped-def]
    res = schema.validate(_set(deployment(), path, value), DEPLOYMENT)
    assert res.unknown_fields == [expected]
    assert res.type_errors == [] and res.missing_required == []


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        ("spec.replicas", "3", "spec.replicas",
         "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"),
        ("spec.replicas", 1.5, "spec.replicas",
         "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32"),
        ("spec.replicas", 2**31, "spec.replicas",
         "json: cannot unmarshal number 2147483648 into Go struct "
         "field DeploymentSpec.spec.replicas of type int32"),
        ("spec.replicas", True, "spec.replicas",
         "json: cannot unmarshal bool into Go struct field DeploymentSpec.spec.replicas of type int32"),
        (f"{CONTAINER}.image", 5, "spec.template.spec.containers[0].image",
         "json: cannot unmarshal number into Go struct field "
         "Container.spec.template.spec.containers.image of type string"),
        ("spec.template.spec.containers", {"name": "x"}, "spec.template.spec.containers",
         "json: cannot unmarshal object into Go struct field "
         "PodSpec.spec.template.spec.containers of type []v1.Container"),
        ("spec.template", "x", "spec.template",
         "json: cannot unmarshal string into Go struct field "
         "DeploymentSpec.spec.template of type v1.PodTemplateSpec"),
        ("metadata.labels", {"n": 1}, "metadata.labels[n]",
         "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"),
        (f"{CONTAINER}.args.1", 7, "spec.template.spec.containers[0].args[1]",
         "json: cannot unmarshal number into Go struct field "
         "Container.spec.template.spec.containers.args of type string"),
        ("spec.paused", "yes", "spec.paused",
         "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool"),
        ("spec.strategy.rollingUpdate.maxSurge", [1], "spec.strategy.rollingUpdate.maxSurge",
         "json: cannot unmarshal array into Go struct field "
         "RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge"
         " of type intstr.IntOrString"),
        (f"{CONTAINER}.resources.limits.cpu", "lots",
         "spec.template.spec.containers[0].resources.limits[cpu]",
         "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
        (f"{CONTAINER}.resources.requests.cpu", "1e99999999999999999999",
         "spec.template.spec.containers[0].resources.requests[cpu]", "unable to parse quantity's suffix"),
    ],
    ids=["string-for-int", "float-for-int", "int32-overflow", "bool-for-int", "number-for-string",
         "object-for-array", "string-for-struct", "map-value", "array-item", "bool", "int-or-string",
         "quantity", "quantity-exponent-over-int64"],
)
def test_wrong_type(schema, path, value, field, message) -> None:  # type: ignore[no-untyped-def]
    res = schema.validate(_set(deployment(), path, value), DEPLOYMENT)
    assert res.type_errors == [Cause("FieldValueInvalid", message, field)]
    assert res.unknown_fields == []


@pytest.mark.parametrize(
    ("obj", "definition", "delete", "field"),
    [
        (deployment(), DEPLOYMENT, ("spec", "template", "spec", "containers", 0, "name"),
         "spec.template.spec.containers[0].name"),
        (deployment(), DEPLOYMENT, ("spec", "selector"), "spec.selector"),
        (service(), SERVICE, ("spec", "ports", 1, "port"), "spec.ports[1].port"),
        (pod(), POD, ("spec", "containers"), "spec.containers"),
    ],
    ids=["container-name", "deployment-selector", "service-port", "pod-containers"],
)
def test_missing_required(schema, obj, definition, delete, field) -> None:  # type: ignore[no-untyped-def]
    node = obj
    for p in delete[:-1]:
        node = node[p]
    del node[delete[-1]]
    res = schema.validate(obj, definition)
    assert res.missing_required == [Cause("FieldValueRequired", "Required value", field)]


def test_null_required_counts_as_missing(schema) -> None:  # type: ignore[no-untyped-def]
    obj = _set(deployment(), f"{CONTAINER}.name", None)
    assert [c.field for c in schema.validate(obj, DEPLOYMENT).missing_required] == [
        "spec.template.spec.containers[0].name"
    ]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("metadata.creationTimestamp", None),
        ("metadata.creationTimestamp", "2024-01-01T00:00:00Z"),
        ("spec.replicas", None),
        ("spec.strategy", None),
        (f"{CONTAINER}.ports", None),
        ("status", {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}),
    ],
    ids=["creationTimestamp-null", "creationTimestamp", "null-int", "null-struct", "null-list", "status"],
)
def test_accepted_values(schema, path, value) -> None:  # type: ignore[no-untyped-def]
    assert schema.validate(_set(deployment(), path, value), DEPLOYMENT).ok


@pytest.mark.parametrize("target", [8080, "http"], ids=["int", "string"])
def test_target_port_int_or_string(schema, target) -> None:  # type: ignore[no-untyped-def]
    assert schema.validate(_set(service(), "spec.ports.0.targetPort", target), SERVICE).ok


@pytest.mark.parametrize("value", ["1Gi", "500m", 2, 0.5, "1e3"], ids=["Gi", "milli", "int", "float", "exp"])
def test_quantity_accepts_string_or_number(schema, value) -> None:  # type: ignore[no-untyped-def]
    assert schema.validate(_set(deployment(), f"{CONTAINER}.resources.limits.memory", value), DEPLOYMENT).ok


def test_free_form_json_accepts_anything(schema) -> None:  # type: ignore[no-untyped-def]
    rev = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
           "revision": 1, "data": {"anything": [1, {"x": None}], "goes": True}}
    assert schema.validate(rev, "io.k8s.api.apps.v1.ControllerRevision").ok


def test_secret_data_must_be_base64(schema) -> None:  # type: ignore[no-untyped-def]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"ok": "aGk=", "bad": "??"},
    }
    res = schema.validate(secret, "io.k8s.api.core.v1.Secret")
    assert [c.field for c in res.type_errors] == ["data[bad]"]
    assert "illegal base64 data" in res.type_errors[0].message


def test_root_must_be_an_object(schema) -> None:  # type: ignore[no-untyped-def]
    res = schema.validate([], DEPLOYMENT)  # type: ignore[arg-type]
    assert res.type_errors == [
        Cause("FieldValueInvalid", "json: cannot unmarshal array into Go value of type v1.Deployment", "")
    ]


def test_unknown_definition(schema) -> None:  # type: ignore[no-untyped-def]
    assert not schema.has("io.example.v1.Nope")
    assert schema.has(DEPLOYMENT)
    assert schema.field("io.example.v1.Nope", "spec") is None
    with pytest.raises(KeyError):
        schema.validate({}, "io.example.v1.Nope")


@pytest.mark.parametrize(
    ("definition", "name", "expected"),
    [
        ("io.k8s.api.core.v1.Container", "ports",
         dict(type="array", ref="io.k8s.api.core.v1.ContainerPort", patch_strategy="merge",
              merge_key="containerPort", list_type="map", list_map_keys=("containerPort", "protocol"))),
        ("io.k8s.api.core.v1.ServiceSpec", "ports",
         dict(type="array", ref="io.k8s.api.core.v1.ServicePort", patch_strategy="merge", merge_key="port")),
        ("io.k8s.api.core.v1.PodSpec", "volumes",
         dict(type="array", ref="io.k8s.api.core.v1.Volume", patch_strategy="merge,retainKeys",
              merge_key="name")),
        ("io.k8s.api.apps.v1.DeploymentSpec", "strategy",
         dict(type="object", ref="io.k8s.api.apps.v1.DeploymentStrategy", patch_strategy="retainKeys")),
        ("io.k8s.api.apps.v1.DeploymentSpec", "selector",
         dict(type="object", ref="io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector", map_type="atomic")),
        ("io.k8s.api.core.v1.Container", "args",
         dict(type="array", ref=None, list_type="atomic", merge_key=None)),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "labels", dict(type="map", ref=None)),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers",
         dict(type="array", patch_strategy="merge", list_type="set")),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "creationTimestamp",
         dict(type="string", format="date-time")),
        ("io.k8s.api.core.v1.ServicePort", "targetPort", dict(type="int-or-string")),
        ("io.k8s.api.core.v1.ResourceRequirements", "limits", dict(type="map")),
        ("io.k8s.api.apps.v1.DeploymentSpec", "replicas", dict(type="integer", format="int32")),
        ("io.k8s.api.apps.v1.ControllerRevision", "data", dict(type="any")),
    ],
    ids=["container-ports", "service-ports", "volumes", "strategy", "selector", "args", "labels",
         "finalizers", "time", "int-or-string", "quantity-map", "int32", "raw-extension"],
)
def test_field_info(schema, definition, name, expected) -> None:  # type: ignore[no-untyped-def]
    info = schema.field(definition, name)
    assert isinstance(info, FieldInfo)
    for attr, value in expected.items():
        assert getattr(info, attr) == value, attr


def test_map_values_and_array_items_are_described(schema) -> None:  # type: ignore[no-untyped-def]
    limits = schema.field("io.k8s.api.core.v1.ResourceRequirements", "limits")
    assert limits.items == FieldInfo("quantity")
    containers = schema.field("io.k8s.api.core.v1.PodSpec", "containers")
    assert containers.items == FieldInfo("object", ref="io.k8s.api.core.v1.Container")
    assert schema.field("io.k8s.api.core.v1.PodSpec", "nosuch") is None


def test_load_schema_is_cached() -> None:
    assert load_schema() is load_schema("1.32")
    with pytest.raises(ValueError, match="no schema"):
        load_schema("0.1")


def test_validating_a_deployment_is_fast(schema) -> None:  # type: ignore[no-untyped-def]
    obj = deployment()
    schema.validate(obj, DEPLOYMENT)  # compile the definitions involved
    n = 300
    start = time.perf_counter()
    for _ in range(n):
        schema.validate(obj, DEPLOYMENT)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 0.002  # measured ~0.05 ms; the bound only catches an accidental blow-up
