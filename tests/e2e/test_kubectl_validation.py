"""The real kubectl 1.32 against a real orchestra API server: inputs kube-apiserver refuses (bad label
and field selectors, resourceVersionMatch, affinity / downward API / topology spread in a pod) are
refused the same way, and resourceVersionMatch=Exact lists the asked revision."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest

from tests.conftest import LiveCluster

pytestmark = pytest.mark.kubectl

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
QNAME = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


@pytest.fixture
def kubectl(live_cluster: LiveCluster, kubectl_bin: str) -> Kubectl:
    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [kubectl_bin, *args],
            input=input,
            capture_output=True,
            text=True,
            env=live_cluster.kubectl_env(),
            timeout=60,
        )

    return run


SELECTORS = [
    (
        "non-ascii",
        ["-l", "ñ=ü"],
        'Error from server (BadRequest): Unable to find "/v1, Resource=pods" that match '
        'label selector "ñ=ü", field selector "": unable to parse requirement: <nil>: Invalid value: "ñ": '
        "name part " + QNAME,
    ),
    (
        "long-key",
        ["-l", "k" * 70],
        f'field selector "": unable to parse requirement: <nil>: Invalid value: '
        f'"{"k" * 70}": name part must be no more than 63 characters',
    ),
    ("unclosed-set", ["-l", "a in (x"], "unable to parse requirement: found '', expected: ',' or ')'"),
    (
        "field-unescaped",
        ["--field-selector", "metadata.name=a=b"],
        'field selector "metadata.name=a=b": invalid field selector: unescaped character in value: 61',
    ),
    ("field-unknown", ["--field-selector", "spec.bogus=1"], "field label not supported: spec.bogus"),
]


@pytest.mark.parametrize(("args", "message"), [c[1:] for c in SELECTORS], ids=[c[0] for c in SELECTORS])
def test_bad_selectors_are_refused(kubectl: Kubectl, args: list[str], message: str) -> None:
    proc = kubectl("get", "pods", "-n", "default", *args)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert "Error from server (BadRequest)" in proc.stderr


def test_empty_value_set_is_a_valid_selector(kubectl: Kubectl) -> None:
    proc = kubectl("get", "pods", "-n", "default", "-l", "a in ()")
    assert proc.returncode == 0, proc.stderr


LIST_OPTIONS = [
    (
        "bogus",
        "resourceVersionMatch=Bogus&resourceVersion=1",
        'The ListOptions "" is invalid: resourceVersionMatch: Unsupported value: "Bogus": supported values: '
        '"Exact", "NotOlderThan", ""',
    ),
    (
        "without-rv",
        "resourceVersionMatch=Exact",
        'The ListOptions "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden '
        "unless "
        "resourceVersion is provided",
    ),
    (
        "exact-zero",
        "resourceVersionMatch=Exact&resourceVersion=0",
        'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
    ),
    (
        "watch",
        "watch=true&resourceVersionMatch=NotOlderThan&resourceVersion=1",
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless "
        "sendInitialEvents "
        "is provided",
    ),
]


@pytest.mark.parametrize(
    ("query", "message"), [c[1:] for c in LIST_OPTIONS], ids=[c[0] for c in LIST_OPTIONS]
)
def test_resource_version_match_is_validated(kubectl: Kubectl, query: str, message: str) -> None:
    proc = kubectl("get", "--raw", f"/api/v1/namespaces/default/configmaps?{query}")
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr


def test_exact_lists_the_asked_revision(kubectl: Kubectl) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "exact", "namespace": "default"},
        "data": {"v": "1"},
    }
    created = json.loads(kubectl("create", "-o", "json", "-f", "-", input=json.dumps(cm)).stdout)
    rv = created["metadata"]["resourceVersion"]
    assert kubectl("patch", "configmap", "exact", "-n", "default", "-p", '{"data":{"v":"2"}}').returncode == 0
    proc = kubectl(
        "get",
        "--raw",
        f"/api/v1/namespaces/default/configmaps?resourceVersionMatch=Exact&resourceVersion={rv}",
    )
    listed = json.loads(proc.stdout)
    assert listed["metadata"]["resourceVersion"] == rv
    assert [i["data"] for i in listed["items"] if i["metadata"]["name"] == "exact"] == [{"v": "1"}]
    newest = json.loads(kubectl("get", "--raw", "/api/v1/namespaces/default/configmaps/exact").stdout)
    assert newest["data"] == {"v": "2"}


def test_pod_constraints_are_validated(kubectl: Kubectl) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bad-constraints", "namespace": "default"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "localhost/busybox:latest",
                    "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.bogus"}}}],
                }
            ],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Bogus"}]}]
                    }
                }
            },
            "topologySpreadConstraints": [
                {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}
            ],
        },
    }
    proc = kubectl("apply", "-f", "-", input=json.dumps(pod))
    assert proc.returncode == 1
    assert proc.stderr.startswith('The Pod "bad-constraints" is invalid: ')
    for part in (
        'spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Invalid value: "metadata.bogus": error '
        "converting "
        "fieldPath: field label not supported: metadata.bogus",
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
        '.matchExpressions[0].operator: Invalid value: "Bogus": not a valid selector operator',
        "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero",
    ):
        assert part in proc.stderr, proc.stderr
