"""The ingress routing table (pure): hosts and wildcards, Exact / Prefix / ImplementationSpecific paths
and their precedence, the default backend, which Ingresses a controller serves; header rewriting."""

from __future__ import annotations

from typing import Any

import pytest

from orchestra.net.ingress.controller import status_entry
from orchestra.net.ingress.headers import request_headers, response_headers
from orchestra.net.ingress.routing import BackendRef, RoutingTable, normalize_host, serves

Obj = dict[str, Any]
OURS = "orchestra.io/ingress-controller"


def ing(name: str, rules: list[Obj], *, created: str = "2024-01-01T00:00:00Z", default: str | None = None,
        ns: str = "default", **spec: Any) -> Obj:
    body: Obj = {"rules": rules, **spec}
    if default:
        body["defaultBackend"] = {"service": {"name": default, "port": {"number": 80}}}
    return {"metadata": {"name": name, "namespace": ns, "creationTimestamp": created}, "spec": body}


def rule(host: str | None, *paths: tuple[str, str, str]) -> Obj:
    out: Obj = {
        "http": {
            "paths": [
                {"path": p, "pathType": t, "backend": {"service": {"name": svc, "port": {"number": 80}}}}
                for p, t, svc in paths
            ]
        }
    }
    if host is not None:
        out["host"] = host
    return out


TABLE = RoutingTable.build(
    [
        ing(
            "main",
            [
                rule(
                    "a.example.com",
                    ("/", "Prefix", "a-root"),
                    ("/api", "Prefix", "a-api"),
                    ("/api", "Exact", "a-api-exact"),
                    ("/api/v2/", "Prefix", "a-v2"),
                    ("/static", "ImplementationSpecific", "a-static"),
                ),
                rule("*.example.com", ("/", "Prefix", "wild")),
                rule(None, ("/shared", "Prefix", "any-shared")),
                rule("exact.example.com", ("/only", "Exact", "exact-only")),
                rule("exact.org", ("/only", "Exact", "exact-org")),
            ],
            default="fallback",
        ),
        ing(
            "later",
            [rule("a.example.com", ("/api", "Prefix", "later-api"))],
            created="2024-02-01T00:00:00Z",
            default="later-fallback",
        ),
    ]
)


@pytest.mark.parametrize(("host", "path", "service"), [
    ("a.example.com", "/", "a-root"),
    ("a.example.com", "/x/y", "a-root"),
    ("a.example.com", "/api", "a-api-exact"),
    ("a.example.com", "/api/", "a-api"),
    ("a.example.com", "/api/users", "a-api"),
    ("a.example.com", "/apis", "a-root"),
    ("a.example.com", "/api/v2", "a-v2"),
    ("a.example.com", "/api/v2/x", "a-v2"),
    ("a.example.com", "/api/v22", "a-api"),
    ("a.example.com", "/static/app.js", "a-static"),
    ("a.example.com", "/API", "a-root"),
    ("b.example.com", "/anything", "wild"),
    ("x.y.example.com", "/", None),
    ("example.com", "/", None),
    ("other.org", "/shared/x", "any-shared"),
    ("other.org", "/sharedx", None),
    ("exact.example.com", "/only", "exact-only"),
    ("exact.example.com", "/only/", "wild"),
    ("exact.org", "/shared", "any-shared"),
    ("nothing.org", "/", None),
], ids=["root", "prefix-of-root", "exact-beats-prefix", "trailing-slash", "prefix-element",
        "not-a-prefix-element", "longer-prefix", "longer-prefix-deeper", "element-wise-not-string",
        "implementation-specific-as-prefix", "case-sensitive-path", "wildcard", "wildcard-one-label-only",
        "wildcard-not-the-apex", "no-host-rule", "no-host-rule-element-wise", "exact-host",
        "exact-host-falls-to-wildcard", "exact-host-falls-to-any-host", "default-backend"])
def test_route(host: str, path: str, service: str | None) -> None:
    got = TABLE.route(host, path)
    assert got == BackendRef("default", service or "fallback", 80)


def test_the_oldest_ingress_wins_a_tie_and_the_default() -> None:
    assert TABLE.default == BackendRef("default", "fallback", 80)
    tie = RoutingTable.build([
        ing("new", [rule("t.com", ("/p", "Prefix", "new"))], created="2024-03-01T00:00:00Z"),
        ing("old", [rule("t.com", ("/p", "Prefix", "old"))], created="2024-01-01T00:00:00Z"),
    ])
    assert tie.route("t.com", "/p") == BackendRef("default", "old", 80)
    assert tie.route("t.com", "/") is None


def test_empty_table_and_backend_kinds() -> None:
    assert RoutingTable().route("a", "/") is None
    table = RoutingTable.build(
        [
            ing(
                "r",
                [
                    {
                        "host": "r.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"resource": {"kind": "Bucket", "name": "b"}},
                                },
                                {
                                    "path": "/named",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "s", "port": {"name": "http"}}},
                                },
                                {
                                    "pathType": "ImplementationSpecific",
                                    "path": "",
                                    "backend": {"service": {"name": "t", "port": {"number": 1}}},
                                },
                            ]
                        },
                    }
                ],
            )
        ]
    )
    assert table.route("r.com", "/x") == BackendRef("default", resource="Bucket/b")
    assert table.route("r.com", "/named/a") == BackendRef("default", "s", 0, "http")


@pytest.mark.parametrize(("header", "host"), [
    ("A.Example.COM", "a.example.com"), ("a.example.com:8080", "a.example.com"),
    ("a.example.com.", "a.example.com"), ("[::1]:80", "[::1]"), ("", ""),
], ids=["case", "port", "trailing-dot", "ipv6", "empty"])
def test_normalize_host(header: str, host: str) -> None:
    assert normalize_host(header) == host


CLASSES = {
    "orchestra": {
        "metadata": {
            "name": "orchestra",
            "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"},
        },
        "spec": {"controller": OURS},
    },
    "mine-too": {"metadata": {"name": "mine-too"}, "spec": {"controller": OURS}},
    "nginx": {"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}},
}


@pytest.mark.parametrize(("spec", "annotations", "classes", "expected"), [
    ({"ingressClassName": "orchestra"}, {}, CLASSES, True),
    ({"ingressClassName": "mine-too"}, {}, CLASSES, True),
    ({"ingressClassName": "nginx"}, {}, CLASSES, False),
    ({"ingressClassName": "missing"}, {}, CLASSES, False),
    ({}, {}, CLASSES, True),
    ({}, {}, {"nginx": CLASSES["nginx"]}, False),
    ({}, {"kubernetes.io/ingress.class": "nginx"}, CLASSES, False),
    ({}, {"kubernetes.io/ingress.class": "mine-too"}, CLASSES, True),
], ids=["default-class-by-name", "another-class-of-ours", "someone-else-s", "unknown-class",
        "no-class-default-is-ours", "no-class-no-default", "legacy-annotation-other",
        "legacy-annotation-ours"])
def test_serves(spec: Obj, annotations: dict[str, str], classes: dict[str, Obj], expected: bool) -> None:
    obj = {"metadata": {"name": "x", "annotations": annotations}, "spec": spec}
    assert serves(obj, classes, OURS) is expected


def test_request_headers_replace_forwarded_and_drop_hop_by_hop() -> None:
    given = [
        (b"host", b"a.com"),
        (b"connection", b"keep-alive, x-secret, content-length"),
        (b"x-secret", b"1"),
        (b"keep-alive", b"300"),
        (b"te", b"trailers"),
        (b"x-forwarded-for", b"6.6.6.6"),
        (b"accept", b"*/*"),
        (b"content-length", b"3"),
        (b"upgrade", b"websocket"),
    ]
    out = request_headers(given, client_ip="10.0.0.9", scheme="https", host=b"a.com", port=443, upgrade=False)
    assert out == [
        (b"host", b"a.com"),
        (b"accept", b"*/*"),
        (b"content-length", b"3"),
        (b"x-forwarded-for", b"10.0.0.9"),
        (b"x-real-ip", b"10.0.0.9"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"a.com"),
        (b"x-forwarded-port", b"443"),
    ]
    upgraded = request_headers(
        given, client_ip="1.2.3.4", scheme="http", host=b"a.com", port=80, upgrade=True
    )
    assert upgraded[-2:] == [(b"connection", b"Upgrade"), (b"upgrade", b"websocket")]


def test_response_headers() -> None:
    given = [(b"transfer-encoding", b"chunked"), (b"connection", b"close"), (b"content-type", b"text/html"),
             (b"upgrade", b"websocket"), (b"sec-websocket-accept", b"abc")]
    assert response_headers(given) == [(b"content-type", b"text/html"), (b"sec-websocket-accept", b"abc")]
    assert response_headers(given, switching=True)[-2:] == [
        (b"connection", b"Upgrade"),
        (b"upgrade", b"websocket"),
    ]


@pytest.mark.parametrize(("address", "entry"), [
    ("10.0.0.5", {"ip": "10.0.0.5"}), ("::1", {"ip": "::1"}), ("localhost", {"hostname": "localhost"}),
], ids=["ipv4", "ipv6", "name"])
def test_status_entry(address: str, entry: Obj) -> None:
    assert status_entry(address) == entry
