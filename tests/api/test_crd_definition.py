"""CustomResourceDefinitions validated like kube-apiserver 1.32: one table of bad CRDs, each with
kube's field path and message (apiextensions' validation package)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from orchestra.api.policy.crd.definition import validate_crd
from orchestra.api.policy.crd.strategy import default_crd

Obj = dict[str, Any]


def crd(**changes: Any) -> Obj:
    obj: Obj = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "properties": {
                    "color": {"type": "string"}}}}}}}],
        },
    }
    for path, value in changes.items():
        _set(obj, path.split("__"), value)
    default_crd(obj)
    return obj


def _set(obj: Any, path: list[str], value: Any) -> None:
    for part in path[:-1]:
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    if isinstance(obj, list):
        obj[int(path[-1])] = value
    elif value is _DROP:
        obj.pop(path[-1], None)
    else:
        obj[path[-1]] = value


_DROP = object()
SCHEMA = "spec.validation.openAPIV3Schema"


def schema(**props: Any) -> Obj:
    return {
        "openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}
    }


CASES: list[tuple[str, Callable[[], Obj], list[str]]] = [
    ("valid", lambda: crd(), []),
    (
        "name must be plural.group",
        lambda: crd(metadata={"name": "widget.example.com"}),
        ['metadata.name: Invalid value: "widget.example.com": must be spec.names.plural+"."+spec.group'],
    ),
    (
        "group needs a dot",
        lambda: crd(metadata={"name": "widgets.example"}, spec__group="example"),
        ['spec.group: Invalid value: "example": should be a domain with at least one dot'],
    ),
    (
        "scope",
        lambda: crd(spec__scope="Global"),
        ['spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"'],
    ),
    (
        "plural",
        lambda: crd(
            metadata={"name": "Widgets.example.com"}, spec__names={"plural": "Widgets", "kind": "Widget"}
        ),
        [
            'metadata.name: Invalid value: "Widgets.example.com": a lowercase RFC 1123 subdomain must '
            'consist of lower '
            "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
            "(e.g. "
            "'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            'spec.names.plural: Invalid value: "Widgets": a DNS-1035 label must consist of lower case '
            'alphanumeric '
            "characters or '-', start with an alphabetic character, and end with an alphanumeric character "
            "(e.g. "
            "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ],
    ),
    (
        "kind and listKind",
        lambda: crd(spec__names={"plural": "widgets", "kind": "Widget", "listKind": "Widget"}),
        ['spec.names.listKind: Invalid value: "Widget": kind and listKind may not be the same'],
    ),
    (
        "no storage version",
        lambda: crd(spec__versions__0__storage=False),
        [
            "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{apiextensions."
            'CustomResourceDefinitionVersion{Name:"v1", Served:true, Storage:false, Deprecated:false}}: must '
            'have '
            "exactly one version marked as storage version",
            "status.storedVersions: Invalid value: []string(nil): must have at least one stored version",
        ],
    ),
    (
        "schema required",
        lambda: crd(spec__versions__0__schema=_DROP),
        ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"],
    ),
    (
        "untyped field",
        lambda: crd(spec__versions__0__schema=schema(color={})),
        [
            f"{SCHEMA}.properties[spec].properties[color].type: Required value: must not be empty for "
            f"specified object "
            "fields"
        ],
    ),
    (
        "additionalProperties with properties",
        lambda: crd(
            spec__versions__0__schema=schema(
                m={
                    "type": "object",
                    "properties": {"a": {"type": "string"}},
                    "additionalProperties": {"type": "string"},
                }
            )
        ),
        [
            f"{SCHEMA}.properties[spec].properties[m].additionalProperties: Forbidden: additionalProperties "
            f"and "
            "properties are mutual exclusive"
        ],
    ),
    (
        "array without items",
        lambda: crd(spec__versions__0__schema=schema(l={"type": "array"})),
        [f"{SCHEMA}.properties[spec].properties[l].items: Required value: must be specified"],
    ),
    (
        "list-map keys",
        lambda: crd(
            spec__versions__0__schema=schema(
                l={
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                }
            )
        ),
        [
            f"{SCHEMA}.properties[spec].properties[l].x-kubernetes-list-map-keys: Required value: must not "
            f"be empty if "
            "x-kubernetes-list-type is map"
        ],
    ),
    (
        "uniqueItems",
        lambda: crd(
            spec__versions__0__schema=schema(
                l={"type": "array", "uniqueItems": True, "items": {"type": "string"}}
            )
        ),
        [
            f"{SCHEMA}.properties[spec].properties[l].uniqueItems: Forbidden: uniqueItems cannot be set to "
            f"true since "
            "the runtime complexity becomes quadratic"
        ],
    ),
    (
        "metadata beyond name",
        lambda: crd(
            spec__versions__0__schema={
                "openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}
                    },
                }
            }
        ),
        [
            f"{SCHEMA}.properties[metadata]: Forbidden: must not specify anything other than name and "
            f"generateName, but "
            "metadata is implicitly specified"
        ],
    ),
    (
        "default of the wrong type",
        lambda: crd(spec__versions__0__schema=schema(r={"type": "integer", "default": "x"})),
        [
            f'{SCHEMA}.properties[spec].properties[r].default: Invalid value: "string":  in body must be of '
            f'type '
            'integer: "string"'
        ],
    ),
    (
        "CEL rule that does not compile",
        lambda: crd(
            spec__versions__0__schema=schema(
                r={"type": "integer", "x-kubernetes-validations": [{"rule": "self.frob()"}]}
            )
        ),
        [
            f"{SCHEMA}.properties[spec].properties[r].x-kubernetes-validations[0].rule: Invalid value: "
            'apiextensions.ValidationRule{Rule:"self.frob()", Message:"", MessageExpression:"", '
            'Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", '
            'OptionalOldSelf:(*bool)(nil)}: '
            "compilation failed: ERROR: <input>:1:6: undeclared reference to 'frob' (in container '')"
        ],
    ),
    (
        "rule reason",
        lambda: crd(
            spec__versions__0__schema=schema(
                r={"type": "integer", "x-kubernetes-validations": [{"rule": "self > 1", "reason": "Nope"}]}
            )
        ),
        [
            f'{SCHEMA}.properties[spec].properties[r].x-kubernetes-validations[0].reason: Unsupported value: '
            f'"Nope": '
            'supported values: "FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", '
            '"FieldValueRequired"'
        ],
    ),
    (
        "scale paths",
        lambda: crd(
            spec__versions__0__subresources={
                "scale": {"specReplicasPath": "spec.replicas", "statusReplicasPath": ".spec.x"}
            }
        ),
        [
            'spec.subresources.scale.specReplicasPath: Invalid value: "spec.replicas": must be a simple json '
            'path '
            "starting with .",
            'spec.subresources.scale.statusReplicasPath: Invalid value: ".spec.x": should be a json path '
            'under .status',
        ],
    ),
    (
        "printer column type",
        lambda: crd(
            spec__versions__0__additionalPrinterColumns=[
                {"name": "C", "type": "text", "jsonPath": ".spec.color"}
            ]
        ),
        [
            'spec.additionalPrinterColumns[0].type: Invalid value: "text": must be one of '
            "boolean,date,integer,number,string"
        ],
    ),
    (
        "selectable field type",
        lambda: crd(spec__versions__0__selectableFields=[{"jsonPath": ".spec"}]),
        [
            'spec.selectableFields[0].jsonPath: Invalid value: ".spec": must point to a field of type '
            'string, boolean or '
            "integer. Enum string fields and strings with formats are allowed."
        ],
    ),
    (
        "selectable field path",
        lambda: crd(spec__versions__0__selectableFields=[{"jsonPath": ".spec.nope"}]),
        [
            'spec.selectableFields[0].jsonPath: Invalid value: ".spec.nope": is an invalid path: does not '
            'refer to a '
            "valid field"
        ],
    ),
    (
        "deprecationWarning without deprecated",
        lambda: crd(spec__versions__0__deprecationWarning="old"),
        [
            'spec.versions[0].deprecationWarning: Invalid value: "old": can only be set for deprecated '
            'versions'
        ],
    ),
    (
        "protected group",
        lambda: crd(metadata={"name": "widgets.x.k8s.io"}, spec__group="x.k8s.io"),
        [
            "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have "
            "approval "
            'annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111'
        ],
    ),
]


@pytest.mark.parametrize(("make", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_crd_validation(make: Callable[[], Obj], want: list[str]) -> None:
    assert [f"{c.field}: {c.message}" for c in validate_crd(make(), None)] == want


def test_per_version_schemas_that_differ_keep_their_paths() -> None:
    obj = crd()
    second = copy.deepcopy(obj["spec"]["versions"][0])
    second.update(name="v2", storage=False, schema=schema(color={}))
    obj["spec"]["versions"].append(second)
    assert [c.field for c in validate_crd(obj, None)] == [
        "spec.versions[1].schema.openAPIV3Schema.properties[spec].properties[color].type"]


UPDATE_CASES = [
    (
        "group is immutable",
        {"spec__group": "other.com", "metadata": {"name": "widgets.other.com"}},
        False,
        ['spec.group: Invalid value: "other.com": field is immutable'],
    ),
    (
        "kind may change before Established",
        {"spec__names": {"plural": "widgets", "kind": "Gadget"}},
        False,
        [],
    ),
    (
        "kind is immutable once Established",
        {"spec__names": {"plural": "widgets", "kind": "Gadget"}},
        True,
        ['spec.names.kind: Invalid value: "Gadget": field is immutable'],
    ),
    (
        "dropping the stored version",
        {"spec__versions__0__name": "v2"},
        False,
        [
            'status.storedVersions: Invalid value: []string{"v1"}: must have the storage version v2',
            'status.storedVersions[0]: Invalid value: "v1": must appear in spec.versions',
        ],
    ),
]


@pytest.mark.parametrize(("changes", "established", "want"), [c[1:] for c in UPDATE_CASES],
                         ids=[c[0] for c in UPDATE_CASES])
def test_crd_update_validation(changes: dict[str, Any], established: bool, want: list[str]) -> None:
    old = crd()
    if established:
        old["status"]["conditions"] = [{"type": "Established", "status": "True"}]
    new = crd(**changes)
    new["status"] = copy.deepcopy(old["status"])
    assert [f"{c.field}: {c.message}" for c in validate_crd(new, old)] == want


def test_a_new_storage_version_joins_stored_versions() -> None:
    from orchestra.api.policy.crd.strategy import prepare_create, prepare_update

    old = crd()
    prepare_create(old)
    assert old["status"] == {"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]}
    new = copy.deepcopy(old)
    new["spec"]["versions"][0]["storage"] = False
    new["spec"]["versions"].append({**new["spec"]["versions"][0], "name": "v2", "storage": True})
    prepare_update(new, old)
    assert new["status"]["storedVersions"] == ["v1", "v2"]
