"""Scheduling constraints and label selectors inside objects: node affinity, pod (anti-)affinity,
topology spread constraints and workload / PDB selectors, with kube-apiserver 1.32's field paths,
reasons and messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.api.test_validation import check, deployment, pod

LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
DNS_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
NA = "spec.affinity.nodeAffinity."
REQ = NA + "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0]"
PREF = NA + "preferredDuringSchedulingIgnoredDuringExecution[0]"
PA = "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
ANTI = "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]"
TSC = "spec.topologySpreadConstraints[0]"


def required_node(*exprs: dict[str, Any], fields: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    term: dict[str, Any] = {"matchExpressions": list(exprs)}
    if fields:
        term["matchFields"] = list(fields)
    return pod(
        affinity={
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
        }
    )


def preferred_node(preference: dict[str, Any], weight: int = 1) -> dict[str, Any]:
    return pod(
        affinity={
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": weight, "preference": preference}
                ]
            }
        }
    )


def pod_affinity(**term: Any) -> dict[str, Any]:
    term.setdefault("topologyKey", "zone")
    return pod(affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}})


def spread(*constraints: dict[str, Any]) -> dict[str, Any]:
    full = [
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", **c} for c in constraints
    ]
    return pod(topologySpreadConstraints=full)


def expr(op: str, *values: str, key: str = "a") -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "operator": op}
    if values:
        out["values"] = list(values)
    return out


BAD_OPERATOR = 'Invalid value: "Bogus": not a valid selector operator'
CASES = [
    # node affinity
    (
        "node-required-bogus-operator",
        required_node(expr("Bogus", "x")),
        (f"{REQ}.operator", "FieldValueInvalid", BAD_OPERATOR),
    ),
    (
        "node-preferred-bogus-operator",
        preferred_node({"matchExpressions": [expr("Bogus", "x")]}),
        (f"{PREF}.preference.matchExpressions[0].operator", "FieldValueInvalid", BAD_OPERATOR),
    ),
    (
        "node-fields-bogus-operator",
        preferred_node({"matchFields": [expr("Bogus", "n1", key="metadata.name")]}),
        (f"{PREF}.preference.matchFields[0].operator", "FieldValueInvalid", BAD_OPERATOR),
    ),
    (
        "node-in-without-values",
        required_node(expr("In")),
        (
            f"{REQ}.values",
            "FieldValueRequired",
            "Required value: must be specified when `operator` is 'In' or 'NotIn'",
        ),
    ),
    (
        "node-exists-with-values",
        required_node(expr("Exists", "x")),
        (
            f"{REQ}.values",
            "FieldValueForbidden",
            "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        ),
    ),
    (
        "node-gt-two-values",
        required_node(expr("Gt", "1", "2")),
        (
            f"{REQ}.values",
            "FieldValueRequired",
            "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'",
        ),
    ),
    (
        "node-required-bad-value",
        required_node(expr("In", "a b")),
        (f"{REQ}.values[0]", "FieldValueInvalid", f'Invalid value: "a b": {LABEL_VALUE}'),
    ),
    (
        "node-no-terms",
        pod(
            affinity={
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}
            }
        ),
        (
            NA + "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
            "FieldValueRequired",
            "Required value: must have at least one node selector term",
        ),
    ),
    (
        "node-field-key",
        required_node(fields=(expr("In", "n1", key="spec.x"),)),
        (
            NA + "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key",
            "FieldValueInvalid",
            'Invalid value: "spec.x": not a valid field selector key',
        ),
    ),
    (
        "node-field-two-values",
        required_node(fields=(expr("In", "n1", "n2", key="metadata.name"),)),
        (
            NA + "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].values",
            "FieldValueRequired",
            "Required value: must be only one value when `operator` is 'In' or 'NotIn' for node field "
            "selector",
        ),
    ),
    (
        "node-preferred-weight",
        preferred_node({"matchExpressions": [expr("Exists")]}, weight=0),
        (f"{PREF}.weight", "FieldValueInvalid", "Invalid value: 0: must be in the range 1-100"),
    ),
    # pod (anti-)affinity
    (
        "pod-affinity-bogus-operator",
        pod_affinity(labelSelector={"matchExpressions": [expr("Bogus")]}),
        (f"{PA}.labelSelector.matchExpressions[0].operator", "FieldValueInvalid", BAD_OPERATOR),
    ),
    (
        "pod-affinity-bad-value",
        pod_affinity(labelSelector={"matchExpressions": [expr("In", "ü")]}),
        (
            f"{PA}.labelSelector.matchExpressions[0].values[0]",
            "FieldValueInvalid",
            f'Invalid value: "ü": {LABEL_VALUE}',
        ),
    ),
    (
        "pod-affinity-namespace-selector",
        pod_affinity(namespaceSelector={"matchExpressions": [expr("In")]}),
        (
            f"{PA}.namespaceSelector.matchExpressions[0].values",
            "FieldValueRequired",
            "Required value: must be specified when `operator` is 'In' or 'NotIn'",
        ),
    ),
    (
        "pod-affinity-namespaces",
        pod_affinity(namespaces=["Bad_NS"]),
        (f"{PA}.namespace", "FieldValueInvalid", f'Invalid value: "Bad_NS": {DNS_LABEL}'),
    ),
    (
        "pod-affinity-topology-key",
        pod_affinity(topologyKey=""),
        (f"{PA}.topologyKey", "FieldValueRequired", "Required value: can not be empty"),
    ),
    (
        "pod-affinity-match-keys-without-selector",
        pod_affinity(matchLabelKeys=["app"]),
        (
            f"{PA}.matchLabelKeys",
            "FieldValueForbidden",
            "Forbidden: must not be specified when labelSelector is not set",
        ),
    ),
    (
        "pod-affinity-match-and-mismatch",
        pod_affinity(labelSelector={}, matchLabelKeys=["app"], mismatchLabelKeys=["app"]),
        (
            f"{PA}.matchLabelKeys[0]",
            "FieldValueInvalid",
            'Invalid value: "app": exists in both matchLabelKeys and mismatchLabelKeys',
        ),
    ),
    (
        "anti-affinity-weight-and-term",
        pod(
            affinity={
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 101,
                            "podAffinityTerm": {
                                "topologyKey": "zone",
                                "labelSelector": {"matchExpressions": [expr("Bogus")]},
                            },
                        }
                    ]
                }
            }
        ),
        (
            f"{ANTI}.podAffinityTerm.labelSelector.matchExpressions[0].operator",
            "FieldValueInvalid",
            BAD_OPERATOR,
        ),
    ),
    # topology spread constraints
    (
        "spread-max-skew-zero",
        spread({"maxSkew": 0}),
        (f"{TSC}.maxSkew", "FieldValueInvalid", "Invalid value: 0: must be greater than zero"),
    ),
    (
        "spread-when-unsatisfiable",
        spread({"whenUnsatisfiable": "Sometimes"}),
        (
            f"{TSC}.whenUnsatisfiable",
            "FieldValueNotSupported",
            'Unsupported value: "Sometimes": supported values: "DoNotSchedule", "ScheduleAnyway"',
        ),
    ),
    (
        "spread-topology-key",
        spread({"topologyKey": ""}),
        (f"{TSC}.topologyKey", "FieldValueRequired", "Required value: can not be empty"),
    ),
    (
        "spread-duplicate-pair",
        spread({}, {"maxSkew": 2}),
        (
            f"{TSC}.{{topologyKey, whenUnsatisfiable}}",
            "FieldValueDuplicate",
            'Duplicate value: "{zone, DoNotSchedule}"',
        ),
    ),
    (
        "spread-min-domains-zero",
        spread({"minDomains": 0}),
        (f"{TSC}.minDomains", "FieldValueInvalid", "Invalid value: 0: must be greater than zero"),
    ),
    (
        "spread-min-domains-schedule-anyway",
        spread({"minDomains": 2, "whenUnsatisfiable": "ScheduleAnyway"}),
        (
            f"{TSC}.minDomains",
            "FieldValueInvalid",
            "Invalid value: 2: can only use minDomains if whenUnsatisfiable=DoNotSchedule, not "
            "ScheduleAnyway",
        ),
    ),
    (
        "spread-node-affinity-policy",
        spread({"nodeAffinityPolicy": "Bogus"}),
        (
            f"{TSC}.nodeAffinityPolicy",
            "FieldValueNotSupported",
            'Unsupported value: "Bogus": supported values: "Honor", "Ignore"',
        ),
    ),
    (
        "spread-match-label-keys-in-selector",
        spread({"labelSelector": {"matchLabels": {"app": "x"}}, "matchLabelKeys": ["app"]}),
        (
            f"{TSC}.matchLabelKeys[0]",
            "FieldValueInvalid",
            'Invalid value: "app": exists in both matchLabelKeys and labelSelector',
        ),
    ),
    (
        "spread-selector-operator",
        spread({"labelSelector": {"matchExpressions": [expr("Bogus")]}}),
        (f"{TSC}.labelSelector.matchExpressions[0].operator", "FieldValueInvalid", BAD_OPERATOR),
    ),
    # selectors in objects
    (
        "deployment-selector-operator",
        deployment(selector={"matchLabels": {"app": "web"}, "matchExpressions": [expr("Bogus")]}),
        ("spec.selector.matchExpressions[0].operator", "FieldValueInvalid", BAD_OPERATOR),
    ),
    (
        "deployment-selector-value",
        deployment(selector={"matchLabels": {"app": "web"}, "matchExpressions": [expr("NotIn", "a b")]}),
        (
            "spec.selector.matchExpressions[0].values[0]",
            "FieldValueInvalid",
            f'Invalid value: "a b": {LABEL_VALUE}',
        ),
    ),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(obj: dict[str, Any], expected: tuple[str, str, str]) -> None:
    kind = "Deployment" if obj.get("apiVersion") == "apps/v1" else "Pod"
    assert expected in check(kind, obj)


VALID = [
    ("preferred-node-terms-allow-any-value", preferred_node({"matchExpressions": [expr("In", "a b")]})),
    ("gt-value-is-not-parsed", required_node(expr("Lt", "x"))),
    ("node-field-name", required_node(fields=(expr("In", "node-1", key="metadata.name"),))),
    (
        "full-spread",
        spread(
            {
                "minDomains": 2,
                "nodeTaintsPolicy": "Honor",
                "labelSelector": {"matchLabels": {"a": "b"}},
                "matchLabelKeys": ["pod-template-hash"],
            },
            {"whenUnsatisfiable": "ScheduleAnyway"},
        ),
    ),
    (
        "pod-affinity",
        pod_affinity(
            labelSelector={"matchExpressions": [expr("In", "x")]},
            namespaces=["default"],
            matchLabelKeys=["app"],
            mismatchLabelKeys=["tier"],
        ),
    ),
]


@pytest.mark.parametrize("obj", [c[1] for c in VALID], ids=[c[0] for c in VALID])
def test_valid(obj: dict[str, Any]) -> None:
    assert check("Pod", obj) == []


def test_stored_invalid_selector_values_may_stay_on_update() -> None:
    """kube's AllowInvalidLabelValueInSelector: what an existing object already had is not refused."""
    old = deployment(selector={"matchLabels": {"app": "web"}, "matchExpressions": [expr("NotIn", "a b")]})
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    causes = check("Deployment", new, old)
    assert not [c for c in causes if c[0].endswith(".values[0]")]
    assert (
        "spec.selector.matchExpressions[0].values[0]",
        "FieldValueInvalid",
        f'Invalid value: "a b": {LABEL_VALUE}',
    ) in check("Deployment", new)
