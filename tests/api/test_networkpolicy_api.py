"""NetworkPolicy at the API: kube-worded validation (pkg/apis/networking/validation of 1.32), the
defaults (SetDefaults_NetworkPolicy[Port]), the stored form through the API core, the Table cells."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

from orchestra.api.errors import ApiError
from orchestra.api.machinery.cidr import parse_cidr
from orchestra.api.policy.defaults import default
from orchestra.api.policy.validation import validate
from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.api.request.core import ApiCore
from orchestra.api.tables import column_definitions, table_row
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store

Obj = dict[str, Any]
NOW = datetime(2024, 1, 1, tzinfo=UTC)
CREATED = (NOW - timedelta(seconds=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
I0 = "spec.ingress[0]"
E0 = "spec.egress[0]"
RANGE = "must be between 1 and 65535, inclusive"


def policy(**spec: Any) -> Obj:
    return default("NetworkPolicy", {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "np", "namespace": "default", "creationTimestamp": CREATED},
        "spec": {"podSelector": {}, **spec},
    })


def ingress_from(*peers: Obj, ports: list[Obj] | None = None) -> Obj:
    rule: Obj = {"from": list(peers)}
    if ports is not None:
        rule["ports"] = ports
    return policy(ingress=[rule])


def messages(obj: Obj, old: Obj | None = None) -> list[str]:
    return [f"{c.field}: {c.message}" for c in validate("NetworkPolicy", obj, old)]


# --- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("obj", "expected"), [
    (policy(), []),
    (ingress_from({"podSelector": {"matchLabels": {"role": "frontend"}}},
                  {"namespaceSelector": {"matchLabels": {"project": "p"}}, "podSelector": {}},
                  {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                  ports=[{"protocol": "TCP", "port": 6379}, {"port": "http"},
                         {"protocol": "UDP", "port": 32000, "endPort": 32768}, {"protocol": "SCTP"}]),
     []),
    (ingress_from({}), [f"{I0}.from[0]: Required value: must specify a peer"]),
    (ingress_from({"podSelector": None}), [f"{I0}.from[0]: Required value: must specify a peer"]),
    (ingress_from({"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}),
     [f"{I0}.from[0]: Forbidden: may not specify both ipBlock and another peer"]),
    (ingress_from({"ipBlock": {"cidr": ""}}), [f"{I0}.from[0].ipBlock.cidr: Required value"]),
    (ingress_from({"ipBlock": {"cidr": "10.0.0.0"}}),
     [f'{I0}.from[0].ipBlock.cidr: Invalid value: "10.0.0.0": not a valid CIDR']),
    (ingress_from({"ipBlock": {"cidr": "10.0.0.0/33"}}),
     [f'{I0}.from[0].ipBlock.cidr: Invalid value: "10.0.0.0/33": not a valid CIDR']),
    (ingress_from({"ipBlock": {"cidr": "010.1.2.3/8", "except": ["10.1.0.0/16"]}}), []),
    (ingress_from({"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/16", "11.0.0.0/24",
                                                               "10.0.0.0/8", "10.0.1.0/24"]}}),
     [f'{I0}.from[0].ipBlock.except[0]: Invalid value: "10.0.0.0/16": must be a strict subset of `cidr`',
      f'{I0}.from[0].ipBlock.except[1]: Invalid value: "11.0.0.0/24": must be a strict subset of `cidr`',
      f'{I0}.from[0].ipBlock.except[2]: Invalid value: "10.0.0.0/8": must be a strict subset of `cidr`']),
    (ingress_from({"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/24", "x", "10.1.0.0/16"]}}),
     [f'{I0}.from[0].ipBlock.except[0]: Invalid value: "11.0.0.0/24": must be a strict subset of `cidr`',
      f'{I0}.from[0].ipBlock.except[1]: Invalid value: "x": not a valid CIDR']),
    (ingress_from({"ipBlock": {"cidr": "fd00::/64", "except": ["fd00::/80", "10.0.0.0/24"]}}),
     [f'{I0}.from[0].ipBlock.except[1]: Invalid value: "10.0.0.0/24": must be a strict subset of `cidr`']),
    (ingress_from({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}),
     [f"{I0}.from[0].podSelector.matchExpressions[0].values: Required value: must be specified when "
      "`operator` is 'In' or 'NotIn'"]),
    (ingress_from({"podSelector": {}}, ports=[{"protocol": "ICMP", "port": 0}]),
     [f'{I0}.ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"',
      f"{I0}.ports[0].port: Invalid value: 0: {RANGE}"]),
    (ingress_from({"podSelector": {}}, ports=[{"port": 80, "endPort": 79}, {"port": 80, "endPort": 70000}]),
     [f"{I0}.ports[0].endPort: Invalid value: 79: must be greater than or equal to `port`",
      f"{I0}.ports[1].endPort: Invalid value: 70000: {RANGE}"]),
    (ingress_from({"podSelector": {}}, ports=[{"port": "http", "endPort": 90}, {"endPort": 90}]),
     [f"{I0}.ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
      f"{I0}.ports[1].endPort: Invalid value: 90: may not be specified when `port` is not specified"]),
    (ingress_from({"podSelector": {}}, ports=[{"port": "80"}, {"port": "Web_1"}]),
     [f'{I0}.ports[0].port: Invalid value: "80": must contain at least one letter (a-z)',
      f'{I0}.ports[1].port: Invalid value: "Web_1": must contain only alpha-numeric characters (a-z, '
      "0-9), and hyphens (-)"]),
    (policy(egress=[{"to": [{}], "ports": [{"port": 0}]}]),
     [f"{E0}.ports[0].port: Invalid value: 0: {RANGE}", f"{E0}.to[0]: Required value: must specify a peer"]),
    (policy(policyTypes=["Ingress", "Egress", "Ingress"]),
     ['spec.policyTypes: Invalid value: []networking.PolicyType{"Ingress", "Egress", "Ingress"}: '
      "may not specify more than two policyTypes"]),
    (policy(policyTypes=["Ingress", "egress"]),
     ['spec.policyTypes[1]: Unsupported value: "egress": supported values: "Ingress", "Egress"']),
    (policy(podSelector={"matchLabels": {"a": "-x"}}),
     ['spec.podSelector.matchLabels: Invalid value: "-x": a valid label must be an empty string or consist '
      "of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
      "(e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
      "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
], ids=["empty", "docs-example-and-every-port-form", "empty-peer", "null-selector-peer", "ipblock-and-more",
        "no-cidr", "cidr-without-prefix", "prefix-too-long", "sloppy-cidr", "except-not-strict-subsets",
        "bad-except-stops", "ipv6", "bad-selector", "bad-protocol-and-port", "end-port-range",
        "end-port-without-number", "bad-port-names", "egress", "three-policy-types", "unknown-policy-type",
        "bad-pod-selector"])
def test_validation(obj: Obj, expected: list[str]) -> None:
    assert messages(obj) == expected


def test_an_invalid_name_is_refused() -> None:
    obj = policy()
    obj["metadata"]["name"] = "Not_Valid"
    assert [c.field for c in validate("NetworkPolicy", obj, None)] == ["metadata.name"]


def test_selector_values_stored_before_the_check_may_stay_on_update() -> None:
    old = policy(podSelector={"matchExpressions": [{"key": "a", "operator": "In", "values": ["-x"]}]})
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"b": "c"}
    assert messages(new, old) == []
    assert messages(new) != []


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.0/8", "10.0.0.0/8"), ("10.1.2.3/8", "10.0.0.0/8"), ("010.001.0.0/016", "10.1.0.0/16"),
    ("fd00::1/64", "fd00::/64"), ("10.0.0.0", None), ("10.0.0.0/", None), ("256.0.0.0/8", None),
    ("10.0.0.0/-1", None), ("fe80::1%eth0/64", None), ("x/8", None),
], ids=["plain", "host-bits", "leading-zeros", "ipv6", "no-prefix", "empty-prefix", "bad-octet",
        "negative", "zone", "garbage"])
def test_parse_cidr_is_sloppy_like_kube(text: str, expected: str | None) -> None:
    got = parse_cidr(text)
    assert (str(got) if got is not None else None) == expected


# --- defaults ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "types"), [
    ({}, ["Ingress"]),
    ({"egress": [{}]}, ["Ingress", "Egress"]),
    ({"egress": []}, ["Ingress"]),
    ({"egress": [{}], "policyTypes": ["Egress"]}, ["Egress"]),
], ids=["nothing", "egress-rules", "empty-egress", "given"])
def test_policy_types_default(spec: Obj, types: list[str]) -> None:
    obj = default("NetworkPolicy", {"spec": spec})
    assert obj["spec"]["policyTypes"] == types and obj["spec"]["podSelector"] == {}


def test_port_protocol_defaults_to_tcp() -> None:
    obj = policy(ingress=[{"ports": [{"port": 80}, {"protocol": "UDP"}]}], egress=[{"ports": [{}]}])
    assert obj["spec"]["ingress"][0]["ports"] == [{"port": 80, "protocol": "TCP"}, {"protocol": "UDP"}]
    assert obj["spec"]["egress"][0]["ports"] == [{"protocol": "TCP"}]


# --- the API core ------------------------------------------------------------------------------------------


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    api = ApiCore(store)
    await bootstrap(api)
    yield api
    store.close()


async def test_create_without_a_pod_selector_defaults_and_bumps_generation(core: ApiCore) -> None:
    rt = core.registry.by_kind("NetworkPolicy")
    assert rt is not None and rt.namespaced and not rt.subresources
    with trio.fail_after(5):
        got = (await core.create(rt, "default", {"metadata": {"name": "deny"}, "spec": {}})).obj
        assert got["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
        assert got["metadata"]["generation"] == 1 and "status" not in got
        bare = (await core.create(rt, "default", {"metadata": {"name": "bare"}})).obj
        assert bare["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
        patched = await core.patch(rt, "default", "deny", "application/merge-patch+json",
                                   b'{"spec":{"egress":[{}],"policyTypes":["Egress"]}}')
        assert patched.obj["metadata"]["generation"] == 2


async def test_an_invalid_policy_is_a_422_naming_the_field(core: ApiCore) -> None:
    rt = core.registry.by_kind("NetworkPolicy")
    assert rt is not None
    body = {"metadata": {"name": "bad"}, "spec": {"ingress": [{"from": [{"ipBlock": {}}]}]}}
    with trio.fail_after(5), pytest.raises(ApiError) as info:
        await core.create(rt, "default", body)
    status = info.value.status()
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.ingress[0].from[0].ipBlock.cidr"]
    assert status["message"] == (
        'NetworkPolicy.networking.k8s.io "bad" is invalid: spec.ingress[0].from[0].ipBlock.cidr: '
        "Required value"
    )


# --- tables ---------------------------------------------------------------------------------------------


def cells(obj: Obj) -> list[Any]:
    rt = DEFAULT_REGISTRY.by_kind("NetworkPolicy")
    assert rt is not None
    return list(table_row(rt, obj, now=NOW)["cells"])


def test_columns() -> None:
    rt = DEFAULT_REGISTRY.by_kind("NetworkPolicy")
    assert rt is not None
    assert [c["name"] for c in column_definitions(rt)] == ["Name", "Pod-Selector", "Age"]


@pytest.mark.parametrize(("selector", "shown"), [
    ({}, "<none>"),
    ({"matchLabels": {"role": "db", "app": "x"}}, "app=x,role=db"),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]}, "tier in (a,b)"),
], ids=["every-pod", "labels", "expression"])
def test_cells(selector: Obj, shown: str) -> None:
    assert cells(policy(podSelector=selector)) == ["np", shown, "7s"]
