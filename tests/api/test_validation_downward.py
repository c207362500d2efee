"""The downward API in env valueFrom and downwardAPI / projected volumes: kube-apiserver 1.32's supported
field paths, apiVersion, resource names and divisors, with its field paths and messages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_validation import check, pod

ENV = "spec.containers[0].env[0].valueFrom"
ENV_PATHS = (
    '"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", '
    '"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"'
)
VOLUME_PATHS = (
    '"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"'
)
RESOURCES = (
    '"limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu", '
    '"requests.ephemeral-storage", "requests.memory"'
)
QNAME = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def env(value_from: dict[str, Any], value: str = "") -> dict[str, Any]:
    var: dict[str, Any] = {"name": "X", "valueFrom": value_from}
    if value:
        var["value"] = value
    return pod(containers=[{"name": "web", "image": "nginx", "env": [var]}])


def field_ref(path: str, api_version: str | None = None) -> dict[str, Any]:
    ref = {"fieldPath": path}
    if api_version is not None:
        ref["apiVersion"] = api_version
    return {"fieldRef": ref}


def downward_volume(*items: dict[str, Any], projected: bool = False) -> dict[str, Any]:
    source = {"downwardAPI": {"items": list(items)}}
    volume = {"name": "info", **({"projected": {"sources": [source]}} if projected else source)}
    return pod(volumes=[volume])


CASES = [
    (
        "env-unknown-field",
        env(field_ref("metadata.bogus")),
        (
            f"{ENV}.fieldRef.fieldPath",
            "FieldValueInvalid",
            'Invalid value: "metadata.bogus": error converting fieldPath: field label not supported: '
            "metadata.bogus",
        ),
    ),
    (
        "env-labels-without-subscript",
        env(field_ref("metadata.labels")),
        (
            f"{ENV}.fieldRef.fieldPath",
            "FieldValueNotSupported",
            f'Unsupported value: "metadata.labels": supported values: {ENV_PATHS}',
        ),
    ),
    (
        "env-phase-is-not-for-env",
        env(field_ref("status.phase")),
        (
            f"{ENV}.fieldRef.fieldPath",
            "FieldValueNotSupported",
            f'Unsupported value: "status.phase": supported values: {ENV_PATHS}',
        ),
    ),
    (
        "env-api-version",
        env(field_ref("metadata.name", "v2")),
        (
            f"{ENV}.fieldRef.fieldPath",
            "FieldValueInvalid",
            'Invalid value: "metadata.name": error converting fieldPath: unsupported pod version: v2',
        ),
    ),
    (
        "env-subscript-of-name",
        env(field_ref("metadata.name['x']")),
        (
            f"{ENV}.fieldRef.fieldPath",
            "FieldValueInvalid",
            "Invalid value: \"metadata.name['x']\": error converting "
            "fieldPath: field label does not support subscript: metadata.name['x']",
        ),
    ),
    (
        "env-bad-label-key",
        env(field_ref("metadata.labels['a b']")),
        (f"{ENV}.fieldRef", "FieldValueInvalid", f'Invalid value: "a b": {QNAME}'),
    ),
    (
        "env-resource-name",
        env({"resourceFieldRef": {"resource": "limits.gpu"}}),
        (
            f"{ENV}.resourceFieldRef.resource",
            "FieldValueNotSupported",
            f'Unsupported value: "limits.gpu": supported values: {RESOURCES}',
        ),
    ),
    (
        "env-resource-required",
        env({"resourceFieldRef": {"divisor": "1"}}),
        (f"{ENV}.resourceFieldRef.resource", "FieldValueRequired", "Required value"),
    ),
    (
        "env-cpu-divisor",
        env({"resourceFieldRef": {"resource": "limits.cpu", "divisor": "2"}}),
        (
            f"{ENV}.resourceFieldRef.divisor",
            "FieldValueInvalid",
            'Invalid value: "limits.cpu": only divisor\'s values 1m and 1 are supported with the cpu '
            "resource",
        ),
    ),
    (
        "env-memory-divisor",
        env({"resourceFieldRef": {"resource": "requests.memory", "divisor": "3Mi"}}),
        (
            f"{ENV}.resourceFieldRef.divisor",
            "FieldValueInvalid",
            'Invalid value: "requests.memory": only divisor\'s values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, '
            "1Gi, 1Ti, "
            "1Pi, 1Ei are supported with the memory resource",
        ),
    ),
    (
        "env-no-source",
        env({}),
        (
            ENV,
            "FieldValueInvalid",
            'Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or '
            "`secretKeyRef`",
        ),
    ),
    (
        "env-two-sources",
        env({**field_ref("metadata.name"), "secretKeyRef": {"name": "s", "key": "k"}}),
        (ENV, "FieldValueInvalid", 'Invalid value: "": may not have more than one field specified at a time'),
    ),
    (
        "env-value-and-source",
        env(field_ref("metadata.name"), value="x"),
        (ENV, "FieldValueInvalid", 'Invalid value: "": may not be specified when `value` is not empty'),
    ),
    (
        "env-config-map-key",
        env({"configMapKeyRef": {"name": "c", "key": "a b"}}),
        (
            f"{ENV}.configMapKeyRef.key",
            "FieldValueInvalid",
            'Invalid value: "a b": a valid config key must consist of '
            "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', "
            "regex used for "
            "validation is '[-._a-zA-Z0-9]+')",
        ),
    ),
    (
        "volume-unknown-field",
        downward_volume({"path": "n", **field_ref("metadata.bogus")}),
        (
            "spec.volumes[0].downwardAPI.fieldRef.fieldPath",
            "FieldValueInvalid",
            'Invalid value: "metadata.bogus": error converting fieldPath: field label not supported: '
            "metadata.bogus",
        ),
    ),
    (
        "volume-node-name-is-not-for-volumes",
        downward_volume({"path": "n", **field_ref("spec.nodeName")}),
        (
            "spec.volumes[0].downwardAPI.fieldRef.fieldPath",
            "FieldValueNotSupported",
            f'Unsupported value: "spec.nodeName": supported values: {VOLUME_PATHS}',
        ),
    ),
    (
        "volume-resource-needs-container",
        downward_volume({"path": "n", "resourceFieldRef": {"resource": "limits.cpu"}}),
        (
            "spec.volumes[0].downwardAPI.resourceFieldRef.containerName",
            "FieldValueRequired",
            "Required value",
        ),
    ),
    (
        "volume-item-needs-a-ref",
        downward_volume({"path": "n"}),
        (
            "spec.volumes[0].downwardAPI",
            "FieldValueRequired",
            "Required value: one of fieldRef and resourceFieldRef is required",
        ),
    ),
    (
        "volume-item-path",
        downward_volume({"path": "../n", **field_ref("metadata.name")}),
        (
            "spec.volumes[0].downwardAPI.path",
            "FieldValueInvalid",
            "Invalid value: \"../n\": must not contain '..'",
        ),
    ),
    (
        "projected-unknown-field",
        downward_volume({"path": "n", **field_ref("metadata.bogus")}, projected=True),
        (
            "spec.volumes[0].projected.sources[0].downwardAPI.fieldRef.fieldPath",
            "FieldValueInvalid",
            'Invalid value: "metadata.bogus": error converting fieldPath: field label not supported: '
            "metadata.bogus",
        ),
    ),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(obj: dict[str, Any], expected: tuple[str, str, str]) -> None:
    assert expected in check("Pod", obj)


VALID = [
    ("env-field-refs", env(field_ref("status.podIPs"))),
    ("env-label-subscript", env(field_ref("metadata.labels['app.kubernetes.io/name']"))),
    ("env-old-spec-host", env(field_ref("spec.host"))),
    (
        "env-resource-hugepages",
        env({"resourceFieldRef": {"resource": "limits.hugepages-2Mi", "divisor": "1Mi"}}),
    ),
    ("env-cpu-millis", env({"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}})),
    (
        "volume-labels",
        downward_volume(
            {"path": "labels", **field_ref("metadata.labels")},
            {"path": "cpu", "resourceFieldRef": {"containerName": "web", "resource": "limits.cpu"}},
        ),
    ),
    (
        "projected-without-api-version",
        downward_volume({"path": "n", **field_ref("metadata.name")}, projected=True),
    ),
]


@pytest.mark.parametrize("obj", [c[1] for c in VALID], ids=[c[0] for c in VALID])
def test_valid(obj: dict[str, Any]) -> None:
    assert check("Pod", obj) == []
