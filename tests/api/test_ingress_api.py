"""Ingress and IngressClass at the API: kube-worded validation (pkg/apis/networking/validation),
defaults, the DefaultIngressClass admission plugin, the bootstrap class and the Table cells."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

from orchestra.api.errors import ApiError
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
DNS1123 = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
WILDCARD = (
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must "
    "consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character "
    "(e.g. '*.example.com', regex used for validation is "
    "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
P0 = "spec.rules[0].http.paths[0]"


def backend(svc: str = "web", **port: Any) -> Obj:
    return {"service": {"name": svc, "port": port or {"number": 80}}}


def path(p: str = "/", path_type: str | None = "Prefix", **extra: Any) -> Obj:
    out: Obj = {"path": p, "backend": backend(), **extra}
    if path_type is not None:
        out["pathType"] = path_type
    return out


def ingress(*paths: Obj, host: str = "a.example.com", **spec: Any) -> Obj:
    rules = [{"host": host, "http": {"paths": list(paths) or [path()]}}]
    return default(
        "Ingress",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": CREATED},
            "spec": {"rules": rules, **spec},
        },
    )


def messages(kind: str, obj: Obj, old: Obj | None = None) -> list[str]:
    return [f"{c.field}: {c.message}" for c in validate(kind, obj, old)]


# --- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("obj", "expected"), [
    (ingress(), []),
    (ingress(host="*.example.com"), []),
    (ingress(host=""), []),
    (ingress(host="1.2.3.4"),
     ['spec.rules[0].host: Invalid value: "1.2.3.4": must be a DNS name, not an IP address']),
    (ingress(host="a.*.com"), [f'spec.rules[0].host: Invalid value: "a.*.com": {WILDCARD}']),
    (ingress(host="*"), [f'spec.rules[0].host: Invalid value: "*": {WILDCARD}']),
    (ingress(host="A.com"), [f'spec.rules[0].host: Invalid value: "A.com": {DNS1123}']),
    (ingress(path("foo")), [f'{P0}.path: Invalid value: "foo": must be an absolute path']),
    (ingress(path("foo", "Exact")), [f'{P0}.path: Invalid value: "foo": must be an absolute path']),
    (ingress(path("", "ImplementationSpecific")), []),
    (ingress(path("foo", "ImplementationSpecific")),
     [f'{P0}.path: Invalid value: "foo": must be an absolute path']),
    (ingress(path("/a//b")), [f"{P0}.path: Invalid value: \"/a//b\": must not contain '//'"]),
    (ingress(path("/a/%2Fb")), [f"{P0}.path: Invalid value: \"/a/%2Fb\": must not contain '%2F'"]),
    (ingress(path("/a/..")), [f"{P0}.path: Invalid value: \"/a/..\": cannot end with '/..'"]),
    (ingress(path("/", None)), [f"{P0}.pathType: Required value: pathType must be specified"]),
    (ingress(path("/", "Regex")), [f'{P0}.pathType: Unsupported value: "Regex": supported values: "Exact", '
                                   '"ImplementationSpecific", "Prefix"']),
    (ingress({"path": "/", "pathType": "Prefix", "backend": {}}),
     [f'{P0}.backend: Invalid value: "": resource or service backend is required']),
    (ingress({"path": "/", "pathType": "Prefix",
              "backend": {**backend(), "resource": {"kind": "B", "name": "b"}}}),
     [f'{P0}.backend: Invalid value: "": cannot set both resource and service backends']),
    (ingress({"path": "/", "pathType": "Prefix", "backend": {"resource": {"kind": "Bucket", "name": "a/b"}}}),
     [f"{P0}.backend.resource.name: Invalid value: \"a/b\": may not contain '/'"]),
    (ingress(path("/", backend=backend(number=80, name="http"))),
     [f'{P0}.backend: Invalid value: "": cannot set both port name & port number']),
    (ingress(path("/", backend=backend(number=0))),
     [f"{P0}.backend: Required value: port name or number is required"]),
    (ingress(path("/", backend=backend(number=70000))),
     [f"{P0}.backend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive"]),
    (ingress(path("/", backend=backend(name="HTTP"))),
     [f'{P0}.backend.service.port.name: Invalid value: "HTTP": must contain only alpha-numeric '
      'characters (a-z, 0-9), and hyphens (-)',
      f'{P0}.backend.service.port.name: Invalid value: "HTTP": must contain at least one letter (a-z)']),
    (ingress(path("/", backend=backend("1web"))),
     [f'{P0}.backend.service.name: Invalid value: "1web": a DNS-1035 label must consist of lower case '
      "alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric "
      "character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
      "'[a-z]([-a-z0-9]*[a-z0-9])?')"]),
    (ingress(tls=[{"hosts": ["*.example.com", "a.example.com"], "secretName": "tls"}]), []),
    (ingress(tls=[{"hosts": ["a.*"], "secretName": "Tls"}]),
     [f'spec.tls[0].hosts[0]: Invalid value: "a.*": {WILDCARD}',
      f'spec.tls[0].secretName: Invalid value: "Tls": {DNS1123}']),
    (ingress(ingressClassName="Orchestra"),
     [f'spec.ingressClassName: Invalid value: "Orchestra": {DNS1123}']),
], ids=["valid", "wildcard-host", "no-host", "ip-host", "wildcard-in-the-middle", "bare-star",
        "upper-case-host", "relative-prefix", "relative-exact", "empty-implementation-specific",
        "relative-implementation-specific", "double-slash", "encoded-slash", "dot-dot-suffix",
        "no-path-type", "unknown-path-type", "no-backend", "service-and-resource", "resource-name",
        "port-name-and-number", "no-port", "port-out-of-range", "bad-port-name", "bad-service-name",
        "tls-valid", "tls-bad", "bad-class-name"])
def test_ingress_validation(obj: Obj, expected: list[str]) -> None:
    assert messages("Ingress", obj) == expected


def test_ingress_needs_rules_or_a_default_backend() -> None:
    obj = ingress()
    obj["spec"] = {}
    assert messages("Ingress", obj) == [
        "spec: Invalid value: []networking.IngressRule(nil): "
        "either `defaultBackend` or `rules` must be specified"
    ]
    obj["spec"] = {"defaultBackend": backend()}
    assert messages("Ingress", obj) == []


def test_class_annotation_must_match_the_class_name_on_create_only() -> None:
    obj = ingress(ingressClassName="orchestra")
    obj["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "nginx"}
    expected = [
        'annotations.kubernetes.io/ingress.class: Invalid value: "nginx": must match `ingressClassName` '
        "when both are specified"
    ]
    assert messages("Ingress", obj) == expected
    assert messages("Ingress", obj, copy.deepcopy(obj)) == []


def test_invalid_stored_values_may_stay_on_update() -> None:
    """kube's AllowInvalidSecretName / AllowInvalidWildcardHostRule: what was stored before the
    checks existed may be kept."""
    old = ingress(path("foo"), host="*.example.com", tls=[{"secretName": "Old_Name"}])
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"a": "b"}
    assert messages("Ingress", new, old) == []
    assert messages("Ingress", new, None) != []


def test_status_addresses_are_checked() -> None:
    old = ingress()
    new = copy.deepcopy(old)
    new["status"] = {
        "loadBalancer": {"ingress": [{"ip": "10.0.0.300"}, {"hostname": "10.0.0.1"}, {"ip": "::1"}]}
    }
    assert messages("Ingress", new, old) == [
        'status.loadBalancer.ingress[0].ip: Invalid value: "10.0.0.300": must be a valid IP address, '
        "(e.g. 10.9.8.7 or 2001:db8::ffff)",
        'status.loadBalancer.ingress[1].hostname: Invalid value: "10.0.0.1": '
        "must be a DNS name, not an IP address",
    ]


def ingress_class(**spec: Any) -> Obj:
    return default("IngressClass", {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                                    "metadata": {"name": "c", "creationTimestamp": CREATED}, "spec": spec})


@pytest.mark.parametrize(("spec", "expected"), [
    ({"controller": "example.com/ingress"}, []),
    ({}, ["spec.controller: Required value"]),
    ({"controller": "ingress"},
     ['spec.controller: Invalid value: "ingress": must be a domain-prefixed path (such as "acme.io/foo")']),
    ({"controller": "Example.com/a b"},
     [f'spec.controller: Invalid value: "Example.com": {DNS1123}',
      "spec.controller: Invalid value: \"a b\": Invalid path (regex used for validation is "
      "'[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')"]),
    ({"controller": "example.com/" + "x" * 250}, ["spec.controller: Too long: must have at most 250 bytes"]),
    ({"controller": "example.com/i", "parameters": {"kind": "P", "name": "p", "scope": "Namespace"}},
     ["spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'"]),
    ({"controller": "example.com/i", "parameters": {"kind": "P", "name": "p", "namespace": "x"}},
     ["spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'"]),
    ({"controller": "example.com/i", "parameters": {"kind": "P", "name": "p", "scope": "Node"}},
     ['spec.parameters.scope: Unsupported value: "Node": supported values: "Cluster", "Namespace"']),
], ids=["valid", "no-controller", "not-domain-prefixed", "bad-domain-and-path", "too-long",
        "namespace-missing", "namespace-forbidden", "bad-scope"])
def test_ingress_class_validation(spec: Obj, expected: list[str]) -> None:
    assert messages("IngressClass", ingress_class(**spec)) == expected


def test_ingress_class_controller_is_immutable() -> None:
    old = ingress_class(controller="example.com/a")
    new = ingress_class(controller="example.com/b")
    assert messages("IngressClass", new, old) == [
        'spec.controller: Invalid value: "example.com/b": field is immutable'
    ]


def test_defaults() -> None:
    assert ingress()["status"] == {"loadBalancer": {}}
    params = ingress_class(controller="example.com/a", parameters={"kind": "P", "name": "p"})["spec"][
        "parameters"
    ]
    assert params["scope"] == "Cluster"


# --- the API core: admission, bootstrap -----------------------------------------------------------------


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    api = ApiCore(store)
    await bootstrap(api)
    yield api
    store.close()


def raw_ingress(name: str, **spec: Any) -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
            "spec": {"defaultBackend": backend(), **spec}}


async def test_bootstrap_creates_the_default_class(core: ApiCore) -> None:
    rt = core.registry.by_kind("IngressClass")
    assert rt is not None and not rt.namespaced
    cls = core.get(rt, None, "orchestra")
    assert cls["spec"] == {"controller": "orchestra.io/ingress-controller"}
    assert cls["metadata"]["annotations"] == {"ingressclass.kubernetes.io/is-default-class": "true"}
    await bootstrap(core)  # a restart keeps it


async def test_an_ingress_without_a_class_gets_the_default(core: ApiCore) -> None:
    rt, ic = core.registry.by_kind("Ingress"), core.registry.by_kind("IngressClass")
    assert rt is not None and ic is not None
    with trio.fail_after(5):
        got = (await core.create(rt, "default", raw_ingress("a"))).obj
        assert got["spec"]["ingressClassName"] == "orchestra"
        named = (await core.create(rt, "default", raw_ingress("b", ingressClassName="other"))).obj
        assert named["spec"]["ingressClassName"] == "other"
        annotated = raw_ingress("c")
        annotated["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "legacy"}
        assert "ingressClassName" not in (await core.create(rt, "default", annotated)).obj["spec"]
        # a newer default wins (kube's DefaultIngressClass since 1.28)
        await trio.sleep(1.1)  # creationTimestamp has a one-second resolution
        await core.create(ic, None, {"metadata": {"name": "newer", "annotations": {
            "ingressclass.kubernetes.io/is-default-class": "true"}}, "spec": {"controller": "example.com/x"}})
        assert (await core.create(rt, "default", raw_ingress("d"))).obj["spec"]["ingressClassName"] == "newer"
        await core.delete(ic, None, "newer")
        await core.delete(ic, None, "orchestra")
        assert "ingressClassName" not in (await core.create(rt, "default", raw_ingress("e"))).obj["spec"]


async def test_status_is_reset_on_create_and_written_through_the_subresource(core: ApiCore) -> None:
    rt = core.registry.by_kind("Ingress")
    assert rt is not None
    body = raw_ingress("a")
    body["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    with trio.fail_after(5):
        got = (await core.create(rt, "default", body)).obj
        assert got["status"] == {"loadBalancer": {}} and got["metadata"]["generation"] == 1
        with pytest.raises(ApiError, match="must be a valid IP address"):
            await core.patch(
                rt,
                "default",
                "a",
                "application/merge-patch+json",
                b'{"status":{"loadBalancer":{"ingress":[{"ip":"not-an-ip"}]}}}',
                subresource="status",
            )
        patched = await core.patch(
            rt,
            "default",
            "a",
            "application/merge-patch+json",
            b'{"status":{"loadBalancer":{"ingress":[{"ip":"10.0.0.1"}]}}}',
            subresource="status",
        )
        assert patched.obj["status"]["loadBalancer"]["ingress"] == [{"ip": "10.0.0.1"}]


# --- tables ---------------------------------------------------------------------------------------------


def cells(kind: str, obj: Obj) -> list[Any]:
    rt = DEFAULT_REGISTRY.by_kind(kind)
    assert rt is not None
    return list(table_row(rt, obj, now=NOW)["cells"])


def test_columns() -> None:
    def names(kind: str) -> list[str]:
        rt = DEFAULT_REGISTRY.by_kind(kind)
        assert rt is not None
        return [c["name"] for c in column_definitions(rt)]

    assert names("Ingress") == ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    assert names("IngressClass") == ["Name", "Controller", "Parameters", "Age"]


@pytest.mark.parametrize(("hosts", "tls", "addresses", "expected"), [
    ([""], False, [], ["*", "", "80"]),
    (["a.com", "", "b.com"], True, [{"ip": "10.0.0.2"}, {"ip": "10.0.0.1"}, {"hostname": "lb.example.com"}],
     ["a.com,b.com", "10.0.0.1,10.0.0.2,lb.example.com", "80, 443"]),
    (["a.com", "b.com", "c.com", "d.com", "e.com"], False, [{"ip": "10.0.0.1"}, {"ip": "10.0.0.1"}],
     ["a.com,b.com,c.com + 2 more...", "10.0.0.1", "80"]),
], ids=["no-host", "hosts-addresses-tls", "more-than-three"])
def test_ingress_cells(hosts: list[str], tls: bool, addresses: list[Obj], expected: list[str]) -> None:
    obj = ingress()
    obj["spec"]["rules"] = [{"host": h} if h else {} for h in hosts]
    if tls:
        obj["spec"]["tls"] = [{"secretName": "x"}]
    obj["status"] = {"loadBalancer": {"ingress": addresses}}
    assert cells("Ingress", obj) == ["web", "<none>", *expected, "7s"]
    obj["spec"]["ingressClassName"] = "orchestra"
    assert cells("Ingress", obj)[1] == "orchestra"


def test_ingress_class_cells() -> None:
    assert cells("IngressClass", ingress_class(controller="example.com/a")) == [
        "c",
        "example.com/a",
        "<none>",
        "7s",
    ]
    with_params = ingress_class(controller="example.com/a", parameters={"apiGroup": "k8s.example.com",
                                                                        "kind": "Params", "name": "p"})
    assert cells("IngressClass", with_params)[2] == "Params.k8s.example.com/p"
    assert (
        cells("IngressClass", ingress_class(controller="e.com/a", parameters={"kind": "P", "name": "p"}))[2]
        == "P/p"
    )
