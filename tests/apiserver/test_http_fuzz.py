"""Fuzzing the API server over HTTPS: no request gets a 5xx, takes long, or stops the server serving.

Hypothesis builds whole requests against the session's real in-process cluster: methods, paths
(every resource, unknown ones, subresources, names with odd characters), query parameters (valid,
out of range and garbage values), headers (Content-Type, Accept) and bodies (JSON, YAML with
anchors and aliases, garbage, protobuf-like bytes, objects with values of the wrong type, deep
nesting around the limit, every patch type with its directives). Half the requests are writes a
client might send (create, update, each patch type, apply, delete, status, scale, binding,
eviction) with, now and then, the wrong Content-Type or any body; the others are anything.
After the run the server must still answer an ordinary create, get and delete.

Writes stay in the namespace `fuzz` (and namespaces named fuzz-*), so the other tests sharing the
session's cluster are untouched; integers in bodies stay small or overflow (a Deployment asking for
two billion pods would be valid and merely slow). At the end the namespace is deleted.
Inputs kube refuses but orchestra still accepts (some label selectors, resourceVersionMatch values)
are generated too: refusing them is another change's, and only a 5xx or a slow answer fails here.
"""

from __future__ import annotations

import json
import os
import ssl
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestra.api.registry import BUILTIN, ResourceType
from orchestra.api.request.bodies import MAX_DEPTH
from tests.conftest import LiveCluster

NS = "fuzz"
PROTOBUF_FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "protobuf").glob("*.bin"))
SEEDED = {
    "configmaps": {"metadata": {"name": "cm"}, "data": {"a": "1"}},
    "secrets": {"metadata": {"name": "s"}, "stringData": {"k": "v"}},
    "pods": {"metadata": {"name": "p", "labels": {"app": "f"}},
             "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}],
                                      "env": [{"name": "A", "value": "1"}]}]}},
    "services": {"metadata": {"name": "svc"}, "spec": {"selector": {"app": "f"}, "ports": [{"port": 80}]}},
    "deployments": {"metadata": {"name": "d"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}},
                     "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
    "poddisruptionbudgets": {"metadata": {"name": "pdb"},
                             "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "f"}}}},
}
NAMES = ["cm", "s", "p", "svc", "d", "pdb", "nope"]
SUBRESOURCES = ["status", "scale", "binding", "eviction", "log", "exec", "attach", "portforward", "finalize",
                "proxy", "ephemeralcontainers", "bogus", "status/extra", ""]
# Cluster-scoped kinds are only read: a fuzzed Node or PriorityClass would change the other tests' cluster.
READ_ONLY = {rt.plural for rt in BUILTIN if not rt.namespaced} - {"namespaces"}
NAMESPACED = [rt for rt in BUILTIN if rt.namespaced]
BY_PLURAL = {rt.plural: rt for rt in BUILTIN}
TYPE_CHANGES = [{"kind": "Secret", "apiVersion": "v9"}, {"kind": "Secret"}, {"apiVersion": "apps/v1"},
                {"kind": 5}, {"apiVersion": None}, {"metadata": []}, {"metadata": {"resourceVersion": [1]}},
                {"status": 5}]


def _prefix(rt: ResourceType) -> str:
    return f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"


def _segment(name: str) -> str:
    """`name` as one path segment: dots escaped too, or httpx would resolve a name `..` and a write
    to pods/.. would land on the namespace itself."""
    return quote(name, safe="").replace(".", "%2E")


# -- paths ----------------------------------------------------------------------------------------------

odd_names = st.one_of(
    st.sampled_from(NAMES),
    st.text(alphabet=string.ascii_lowercase + string.digits + "-.", min_size=1, max_size=12),
    st.text(min_size=0, max_size=20),  # anything, percent-encoded below
    st.sampled_from(["..", ".", "%", "a b", "ü", "a/b", "x" * 300, "\x00", "-", "A"]),
)


@st.composite
def resource_paths(draw: st.DrawFn) -> tuple[str, bool]:
    """(path, writable): writes only where they cannot disturb the rest of the session."""
    rt = draw(st.sampled_from(BUILTIN))
    base = _prefix(rt)
    shape = draw(st.sampled_from(["collection", "item", "item", "sub", "all-namespaces"]))
    if not rt.namespaced:
        coll = f"{base}/{rt.plural}"
        if shape in ("collection", "all-namespaces"):
            return coll, False
        name = draw(st.sampled_from(["fuzz-a", NS, "default"]) | odd_names)
        path = f"{coll}/{_segment(name)}"
        if shape == "sub":
            path += "/" + draw(st.sampled_from(SUBRESOURCES))
        return path, rt.plural not in READ_ONLY and name.startswith("fuzz-")
    if shape == "all-namespaces":
        return f"{base}/{rt.plural}", False
    coll = f"{base}/namespaces/{NS}/{rt.plural}"
    if shape == "collection":
        return coll, True
    path = f"{coll}/{_segment(draw(odd_names))}"
    if shape == "sub":
        path += "/" + draw(st.sampled_from(SUBRESOURCES))
    return path, True


other_paths = st.sampled_from([
    "/", "//", "/api", "/apis", "/apis/apps", "/apis/apps/v1", "/api/v1", "/api/v2/pods",
    "/apis/apps/v2/deployments", "/apis/bogus.io/v1/things", f"/api/v1/namespaces/{NS}/bogus",
    "/api/v1/namespaces//pods", "/openapi/v3", "/openapi/v3/api/v1", "/openapi/v3/apis/apps/v1",
    "/openapi/v2", "/version", "/healthz", "/livez", "/readyz", "/metrics",
    "/apis/metrics.k8s.io/v1beta1/nodes", f"/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods",
    "/api/v1/namespaces/fuzz/pods/p/log/../../../x", "/%2e%2e/api", "/api/v1/pods?x", "/api/v1/watch/pods",
]) | st.builds(lambda parts: "/" + "/".join(_segment(p) for p in parts),
               st.lists(st.text(max_size=8), max_size=5))

# -- query parameters -----------------------------------------------------------------------------------

garbage = st.text(max_size=12)
QUERY: dict[str, st.SearchStrategy[str]] = {
    "resourceVersion": st.sampled_from(["", "0", "1", "5", "-1", "abc", "99999999999999999999"]) | garbage,
    # (kube refuses resourceVersionMatch=Bogus, and Exact at a compacted resourceVersion; making
    # orchestra refuse them too is another change's. Only 5xx answers fail here.)
    "resourceVersionMatch": st.sampled_from(["", "NotOlderThan", "Exact", "Bogus"]) | garbage,
    "limit": st.sampled_from(["", "0", "-1", "1", "2", "500", "abc", "99999999999999999999"]),
    "continue": st.sampled_from(["", "abc", "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MSwic3RhcnQiOiIvIn0=",
                                 "eyJydiI6ImEifQ=="]) | garbage,
    "fieldValidation": st.sampled_from(["Strict", "Warn", "Ignore", "", "strict"]) | garbage,
    "dryRun": st.sampled_from(["All", "", "all"]) | garbage,
    "propagationPolicy": st.sampled_from(["Background", "Foreground", "Orphan", "", "Bogus"]),
    "gracePeriodSeconds": st.sampled_from(["0", "1", "-1", "30", "abc", "99999999999999999999"]),
    # (kube refuses selectors such as ñ=ü, "a in ()" or a 70k-character key; making orchestra refuse
    # them too is another change's.)
    "labelSelector": st.sampled_from(["", "app=f", "app!=f", "app", "!app", "app in (f,d)", "app notin (x)",
                                      "a=b,c!=d", "app==f", "ñ=ü", "a in ()", "a in (b", "k" * 2000 + "=v"])
    | garbage,
    "fieldSelector": st.sampled_from(["", "metadata.name=p", "metadata.namespace!=x", "spec.nodeName=",
                                      "status.phase=Running", "bogus=1", "metadata.name", "a=b=c"]) | garbage,
    "fieldManager": st.sampled_from(["fuzz", "", "x" * 200, "a\x01b"]) | garbage,
    "force": st.sampled_from(["true", "false", "", "maybe"]),
    "allowWatchBookmarks": st.sampled_from(["true", "false", "x"]),
    "includeObject": st.sampled_from(["Object", "Metadata", "None", "", "Bogus"]),
    "orphanDependents": st.sampled_from(["true", "false", "x"]),
    "pretty": st.sampled_from(["true", "false"]),
    "container": st.sampled_from(["c", "", "nope"]),
    "tailLines": st.sampled_from(["1", "-1", "x", "0"]),
    "sinceSeconds": st.sampled_from(["1", "-1", "x"]),
    "limitBytes": st.sampled_from(["1", "-1", "x"]),
    "previous": st.sampled_from(["true", "x"]),
    "timestamps": st.sampled_from(["true", "x"]),
    "command": st.sampled_from(["ls", ""]),
    "watch": st.sampled_from(["true", "1", "false", "yes", ""]),
}


@st.composite
def queries(draw: st.DrawFn) -> dict[str, str]:
    names = draw(st.lists(st.sampled_from(sorted(QUERY)), max_size=4, unique=True))
    query = {k: draw(QUERY[k]) for k in names}
    if query.get("watch", "").lower() in ("true", "1"):
        # a watch with no timeout (or timeoutSeconds=0: "not set") would rightly run for 30 minutes;
        # a negative one ends at once, as Go's timer fires at once
        query["timeoutSeconds"] = "-1"
    return query


# -- bodies ---------------------------------------------------------------------------------------------

small_ints = st.integers(-3, 3) | st.sampled_from([2**31, 2**63, -(2**63) - 1, 2**64])
scalars = (st.none() | st.booleans() | small_ints | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=10))
json_values = st.recursive(
    scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=15)


def _json(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return strategy.map(lambda v: json.dumps(v).encode())  # json, not orjson: ints past 64 bits too


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated(draw: st.DrawFn, template: dict[str, Any]) -> Any:
    """A template object with a few values replaced by others of any JSON type, or removed."""
    doc = orjson.loads(orjson.dumps(template))
    for _ in range(draw(st.integers(0, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        where = draw(st.sampled_from(paths))
        parent = doc
        for step in where[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[where[-1]]
        else:
            parent[where[-1]] = draw(json_values)
    return doc


def nested(depth: int, leaf: str = "1") -> bytes:
    return (b'{"a":' * depth) + leaf.encode() + (b"}" * depth)


def _deep_body(depth: int, objects: bool) -> bytes:
    """An object with a field nested so that the whole body is `depth` levels deep."""
    inner = nested(depth - 1) if objects else b"[" * (depth - 1) + b"]" * (depth - 1)
    return b'{"metadata":{"name":"deep"},"x":' + inner + b"}"


# around the limit, past orjson's encoder (254), where Python recursed out (990), past orjson's decoder
deep_bodies = st.builds(_deep_body,
                        st.sampled_from([MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 254, 300, 990, 1100]),
                        st.booleans())

LAUGHS = "".join(f"{c}: &{c} [{','.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcd", "bcde", strict=True))
yaml_bodies = st.sampled_from([
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\ndata: {a: b}\n",
    "a: &a [*a]\n", "a: &a {b: *a}\n", "x: *nope\n", "a: [unclosed", "- - - -", "!!binary aGk=",
    "? [a]\n: 1\n",
    "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + LAUGHS,
    "base: &b {app: f}\nmetadata: {name: m, labels: {<<: *b}}\n", "a: 1\na: 2\n", "%YAML 1.1\n---\na: 1e3\n",
    "a: .nan\n", "a: 2001-12-14t21:59:43.10-05:00\n", "metadata: {name: &n x, labels: {*n : y}}\n",
    "---\na: 1\n---\nb: 2\n", "metadata: {name: big}\nx: 99999999999999999999\ny: -0x8000000000000001\n",
]) | st.builds(lambda d: "x: " + "[" * d + "]" * d + "\n", st.sampled_from([MAX_DEPTH, MAX_DEPTH + 1, 600]))

pointers = st.sampled_from(["", "/", "/metadata", "/metadata/labels/x", "/spec/containers/0",
                            "/spec/containers/-", "/data/a", "/kind", "/apiVersion", "/metadata/name",
                            "/a~1b", "/status", "x"])
json_patches = st.lists(st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bogus"]) | json_values},
    optional={"path": pointers | json_values,
              "from": st.sampled_from(["", "/metadata", "/spec", "/data", "/metadata/labels"]) | json_values,
              "value": json_values}), max_size=4)

names_cd = st.fixed_dictionaries({"name": st.sampled_from(["c", "d"])})
smp_directives = st.fixed_dictionaries({}, optional={
    "$patch": st.sampled_from(["replace", "merge", "delete", "bogus"]) | json_values,
    "$retainKeys": st.lists(st.text(max_size=5), max_size=3) | json_values,
    "$setElementOrder/containers": st.lists(names_cd, max_size=3) | json_values,
    "$deleteFromPrimitiveList/finalizers": st.lists(st.text(max_size=5), max_size=2) | json_values,
    "$bogus": json_values,
})
smp_items = st.fixed_dictionaries({"name": st.sampled_from(["c", "d"])}, optional={
    "$patch": st.sampled_from(["delete", "replace", "merge"]) | json_values, "image": json_values})
smp_bodies = st.builds(lambda top, spec, containers: {**top, "spec": {**spec, "containers": containers}},
                       smp_directives, smp_directives, st.lists(smp_items, max_size=3) | json_values)

templates = st.sampled_from([*SEEDED.values(), {"target": {"kind": "Node", "name": "n"}},
                             {"metadata": {"name": "p"}, "deleteOptions": {"gracePeriodSeconds": 0}},
                             {"spec": {"replicas": 1}}, {"propagationPolicy": "Orphan"}])
json_bodies = st.one_of(json_values, templates.flatmap(mutated), smp_bodies, json_patches,
                        st.sampled_from(TYPE_CHANGES))
protobuf_bodies = st.builds(lambda path, cut, junk: path.read_bytes()[:cut] + junk,  # kubectl's, spoilt
                            st.sampled_from(PROTOBUF_FIXTURES), st.integers(0, 400), st.binary(max_size=8))
bodies = st.one_of(st.just(b""), _json(json_bodies), deep_bodies, yaml_bodies.map(str.encode),
                   st.binary(max_size=64), protobuf_bodies,
                   st.just(b'{"a":1,"a":2,"metadata":{"name":"dup","name":"dup2"}}'))

# -- headers --------------------------------------------------------------------------------------------

header_text = st.text(alphabet=string.printable.strip() + " ", max_size=30).map(str.strip)  # a header value
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "application/json;;",
                 "application/yaml", "application/vnd.kubernetes.protobuf", "application/merge-patch+json",
                 "application/strategic-merge-patch+json", "application/json-patch+json",
                 "application/apply-patch+yaml", "application/apply-patch+cbor", "text/plain", "*/*",
                 "application/cbor", ""]
ACCEPTS = ["application/json", "application/json;as=Table;v=v1;g=meta.k8s.io",
           "application/vnd.kubernetes.protobuf",
           "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", "application/yaml", "*/*", "",
           "text/html", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
           "application/json;as=Table;v=v1beta1"]

# -- requests -------------------------------------------------------------------------------------------


def _object_bodies(plural: str) -> st.SearchStrategy[Any]:
    template = SEEDED.get(plural, {"metadata": {"name": "x"}})
    rt = BY_PLURAL[plural]
    typed = {"apiVersion": rt.api_version, "kind": rt.kind, **template}
    return st.one_of(mutated(template), mutated(typed), st.sampled_from(TYPE_CHANGES), json_values)


def _intent_body(intent: str, plural: str) -> st.SearchStrategy[bytes]:
    objects = _object_bodies(plural)
    if intent in ("create", "update", "merge", "status"):
        return st.one_of(_json(objects), deep_bodies)
    if intent == "strategic":
        return st.one_of(_json(smp_bodies | objects), deep_bodies)
    if intent == "json-patch":
        simple_ops = st.lists(st.fixed_dictionaries({
            "op": st.sampled_from(["add", "replace", "test"]),
            "path": st.sampled_from(["", "/x", "/metadata/labels"]), "value": json_values}), max_size=2)
        return st.one_of(_json(json_patches), _json(simple_ops), deep_bodies.map(lambda b: b"[" + b + b"]"))
    if intent == "apply":
        return st.one_of(_json(objects), yaml_bodies.map(str.encode), deep_bodies)
    if intent == "delete":
        return st.one_of(st.just(b""), _json(mutated({"propagationPolicy": "Orphan", "gracePeriodSeconds": 0,
                                                       "preconditions": {"uid": "u"}, "dryRun": ["All"]})))
    if intent == "binding":
        return _json(mutated({"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n"}}))
    if intent == "eviction":
        return _json(mutated({"metadata": {"name": "p"}, "deleteOptions": {"gracePeriodSeconds": 0}}))
    return _json(mutated({"metadata": {"name": "d"}, "spec": {"replicas": 1}}))  # scale


JSON_OR_YAML = ["application/json", "application/yaml"]
INTENTS = {  # intent -> (methods, the Content-Types a client sends it with)
    "create": (["POST"], [*JSON_OR_YAML, ""]),
    "update": (["PUT"], JSON_OR_YAML),
    "merge": (["PATCH"], ["application/merge-patch+json"]),
    "strategic": (["PATCH"], ["application/strategic-merge-patch+json"]),
    "json-patch": (["PATCH"], ["application/json-patch+json"]),
    "apply": (["PATCH"], ["application/apply-patch+yaml"]),
    "delete": (["DELETE"], ["application/json", ""]),
    "status": (["PUT", "PATCH"], ["application/json", "application/merge-patch+json"]),
    "scale": (["PUT", "PATCH"], ["application/json", "application/merge-patch+json",
                                 "application/json-patch+json", "application/strategic-merge-patch+json"]),
    "binding": (["POST"], ["application/json"]),
    "eviction": (["POST"], ["application/json"]),
}


@st.composite
def writes(draw: st.DrawFn) -> dict[str, Any]:
    """A write a client might send, then (sometimes) with the wrong Content-Type or any body."""
    intent = draw(st.sampled_from(sorted(INTENTS)))
    # mostly the seeded objects, so the patch engines and updates work on something that exists
    seeded_kind = draw(st.integers(0, 3)) > 0
    rt = BY_PLURAL[draw(st.sampled_from(sorted(SEEDED)))] if seeded_kind else draw(
        st.sampled_from(NAMESPACED))
    coll = f"{_prefix(rt)}/namespaces/{NS}/{rt.plural}"
    seeded = SEEDED.get(rt.plural, {}).get("metadata", {}).get("name")
    name = _segment(seeded if seeded and draw(st.integers(0, 4)) else draw(odd_names))
    methods, ctypes = INTENTS[intent]
    method = draw(st.sampled_from(methods))
    url, plural = {
        "create": (coll, rt.plural), "status": (f"{coll}/{name}/status", rt.plural),
        "scale": (f"/apis/apps/v1/namespaces/{NS}/deployments/d/scale", "deployments"),
        "binding": (f"/api/v1/namespaces/{NS}/pods/p/binding", "pods"),
        "eviction": (f"/api/v1/namespaces/{NS}/pods/p/eviction", "pods"),
    }.get(intent, (f"{coll}/{name}", rt.plural))
    usual = draw(st.integers(0, 5)) > 0
    ctype = draw(st.sampled_from(ctypes) if usual else st.sampled_from(CONTENT_TYPES) | header_text)
    body = draw(_intent_body(intent, plural) if draw(st.integers(0, 7)) else bodies)
    if intent == "create" and draw(st.booleans()):  # a new name, so some creates get past AlreadyExists
        fresh = f'"name": "n{draw(st.integers(0, 10**6))}"'
        body = body.replace(f'"name": "{seeded}"'.encode(), fresh.encode(), 1)
    query = {"fieldManager": "fuzz"} if method == "PATCH" and draw(st.integers(0, 3)) else {}
    query.update(draw(queries()))
    headers = {"Content-Type": ctype} if ctype else {}
    return {"method": method, "url": url, "params": query, "headers": headers, "content": body}


@st.composite
def anything(draw: st.DrawFn) -> dict[str, Any]:
    """Reads anywhere; writes with any method, header and body where writes are harmless."""
    path, writable = draw(resource_paths() | other_paths.map(lambda p: (p, False)))
    methods = ["GET", "GET", "POST", "PUT", "PATCH", "DELETE"] if writable else ["GET"]
    method = draw(st.sampled_from(methods))
    query = draw(queries())
    if "/watch/" in path:
        query["timeoutSeconds"] = "-1"
    headers = {"Content-Type": draw(st.sampled_from(CONTENT_TYPES) | header_text),
               "Accept": draw(st.sampled_from(ACCEPTS) | header_text)}
    body = draw(bodies) if method in ("POST", "PUT", "PATCH", "DELETE") else b""
    headers = {k: v for k, v in headers.items() if v}
    return {"method": method, "url": path, "params": query, "headers": headers, "content": body}


# -- the test -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_http(live_cluster: LiveCluster) -> Iterator[httpx.Client]:
    ca = ssl.create_default_context(cafile=str(live_cluster.ca_cert))
    with httpx.Client(base_url=live_cluster.url, headers={"Authorization": f"Bearer {live_cluster.token}"},
                      timeout=10, verify=ca) as client:
        client.post("/api/v1/namespaces", json={"metadata": {"name": NS}})
        for rt in BUILTIN:
            if rt.plural in SEEDED:
                client.post(f"{_prefix(rt)}/namespaces/{NS}/{rt.plural}", json=SEEDED[rt.plural])
        yield client
        client.delete(f"/api/v1/namespaces/{NS}")


def _kube_timeout(resp: httpx.Response) -> bool:
    """kube-apiserver's own 5xx: a resourceVersion newer than the store is 504 ResourceVersionTooLarge
    (with Retry-After), by design, not a failure."""
    if resp.status_code != 504:
        return False
    causes = resp.json().get("details", {}).get("causes", [])
    return [c.get("reason") for c in causes] == ["ResourceVersionTooLarge"]


def _check(resp: httpx.Response) -> None:
    assert resp.status_code < 500 or _kube_timeout(resp), \
        f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text[:500]}"
    if resp.status_code >= 400 and resp.headers.get("content-type", "").startswith("application/json"):
        status = resp.json()
        assert status["kind"] == "Status" and status["code"] == resp.status_code, resp.text[:500]


# About 20 s here (the "ci" profile runs the same examples every time); FUZZ_EXAMPLES=20000 for a long
# hunt.
@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "2500")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(request=writes() | anything())
def test_no_request_gets_a_5xx_or_takes_long(fuzz_http: httpx.Client, request: dict[str, Any]) -> None:
    url = str(fuzz_http.base_url).rstrip("/") + request.pop("url")  # absolute: "//x" is a path, not a host
    resp = fuzz_http.request(url=url, **request)
    _check(resp)
    assert resp.elapsed.total_seconds() < 5, f"{request['method']} {url} took {resp.elapsed}"


def test_server_still_serves_after_fuzzing(fuzz_http: httpx.Client) -> None:
    """Runs after the fuzz test (file order): the server answers ordinary requests as before."""
    assert fuzz_http.get("/readyz").status_code == 200
    created = fuzz_http.post(f"/api/v1/namespaces/{NS}/configmaps",
                             json={"metadata": {"generateName": "after-"}})
    assert created.status_code == 201, created.text
    name = created.json()["metadata"]["name"]
    assert fuzz_http.get(f"/api/v1/namespaces/{NS}/configmaps/{name}").json()["metadata"]["name"] == name
    assert fuzz_http.delete(f"/api/v1/namespaces/{NS}/configmaps/{name}").status_code == 200
