"""Bad input gets the right Kubernetes Status, and generated garbage never yields a 500."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestra.api.request.bodies import MAX_DEPTH
from tests.conftest import LiveCluster


@pytest.fixture(scope="module")
def http(live_cluster: LiveCluster) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=live_cluster.url,
        headers={"Authorization": f"Bearer {live_cluster.token}"},
        timeout=10,
        verify=ssl.create_default_context(cafile=str(live_cluster.ca_cert)),
    ) as c:
        c.post("/api/v1/namespaces", json={"metadata": {"name": "errs"}})
        yield c


DEPLOY = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "d"},
    "spec": {
        "selector": {"matchLabels": {"app": "d"}},
        "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "c", "image": "img"}]},
        },
    },
}
DEPLOYS = "/apis/apps/v1/namespaces/errs/deployments"


def _status(resp: httpx.Response) -> dict:
    body = resp.json()
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == resp.status_code
    return body


def _with(path: list[str], value: object) -> dict:
    doc = orjson.loads(orjson.dumps(DEPLOY))
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    if value is _DELETE:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return doc


_DELETE = object()


def test_missing_token_is_401(live_cluster: LiveCluster) -> None:
    ca = ssl.create_default_context(cafile=str(live_cluster.ca_cert))
    r = httpx.get(f"{live_cluster.url}/api/v1/pods", verify=ca)
    assert r.status_code == 401 and _status(r)["reason"] == "Unauthorized"
    r = httpx.get(f"{live_cluster.url}/api/v1/pods", headers={"Authorization": "Bearer wrong"}, verify=ca)
    assert r.status_code == 401
    assert httpx.get(f"{live_cluster.url}/healthz", verify=ca).status_code == 200
    assert httpx.get(f"{live_cluster.url}/readyz", verify=ca).status_code == 200


@pytest.mark.parametrize(
    ("doc", "code", "reason", "needle"),
    [
        (_with(["spec", "replicaz"], 3), 400, "BadRequest",
         'strict decoding error: unknown field "spec.replicaz"'),
        (_with(["spec", "replicas"], "three"), 400, "BadRequest", "spec.replicas"),
        (_with(["spec", "template", "spec", "containers"], [{"image": "x"}]), 422, "Invalid", "name"),
        (_with(["spec", "selector"], _DELETE), 422, "Invalid", "spec.selector"),
        ({**DEPLOY, "kind": "Deploymnt"}, 400, "BadRequest", "Deploymnt"),
    ],
    ids=["unknown-field", "wrong-type", "missing-container-name", "missing-selector", "wrong-kind"],
)
def test_invalid_bodies(http: httpx.Client, doc: dict, code: int, reason: str, needle: str) -> None:
    r = http.post(DEPLOYS, params={"fieldValidation": "Strict"}, content=orjson.dumps(doc),
                  headers={"Content-Type": "application/json"})
    assert r.status_code == code, r.text
    body = _status(r)
    assert body["reason"] == reason
    assert needle in body["message"]


def test_unknown_field_warns_under_warn(http: httpx.Client) -> None:
    doc = _with(["spec", "replicaz"], 3)
    doc["metadata"] = {"name": "warned"}
    r = http.post(DEPLOYS, params={"fieldValidation": "Warn"}, json=doc)
    assert r.status_code == 201
    assert (
        'unknown field \\"spec.replicaz\\"' in r.headers["warning"]
        or 'unknown field "spec.replicaz"' in r.headers["warning"]
    )


def test_garbage_json_and_oversize(http: httpx.Client) -> None:
    r = http.post(DEPLOYS, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and _status(r)["reason"] == "BadRequest"
    big = b'{"metadata":{"name":"big"},"data":{"x":"' + b"a" * (3 * 1024 * 1024 + 10) + b'"}}'
    r = http.post(
        "/api/v1/namespaces/errs/configmaps", content=big, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and _status(r)["reason"] == "RequestEntityTooLarge"


def test_unknown_resource_and_missing_namespace(http: httpx.Client) -> None:
    r = http.get("/apis/apps/v1/namespaces/errs/deploymnts")
    assert r.status_code == 404
    r = http.post("/api/v1/namespaces/nowhere/configmaps", json={"metadata": {"name": "x"}})
    assert r.status_code == 404 and 'namespaces "nowhere" not found' in r.json()["message"]


def test_stale_resource_version_conflict(http: httpx.Client) -> None:
    r = http.post("/api/v1/namespaces/errs/configmaps", json={"metadata": {"name": "cm"}, "data": {"a": "1"}})
    obj = r.json()
    http.patch("/api/v1/namespaces/errs/configmaps/cm", content=b'{"data":{"a":"2"}}',
               headers={"Content-Type": "application/merge-patch+json"})
    r = http.put("/api/v1/namespaces/errs/configmaps/cm", json=obj)
    assert r.status_code == 409 and _status(r)["reason"] == "Conflict"
    assert "the object has been modified" in r.json()["message"]


def test_duplicate_create_already_exists(http: httpx.Client) -> None:
    http.post("/api/v1/namespaces/errs/secrets", json={"metadata": {"name": "s"}})
    r = http.post("/api/v1/namespaces/errs/secrets", json={"metadata": {"name": "s"}})
    assert r.status_code == 409 and _status(r)["reason"] == "AlreadyExists"
    assert r.json()["message"] == 'secrets "s" already exists'


def test_bad_patch_type_and_bad_apply_yaml(http: httpx.Client) -> None:
    http.post("/api/v1/namespaces/errs/configmaps", json={"metadata": {"name": "p"}})
    r = http.patch(
        "/api/v1/namespaces/errs/configmaps/p", content=b"{}", headers={"Content-Type": "text/html"}
    )
    assert r.status_code == 415
    r = http.patch("/api/v1/namespaces/errs/configmaps/p", params={"fieldManager": "t"},
                   content=b"a: [unclosed", headers={"Content-Type": "application/apply-patch+yaml"})
    assert r.status_code == 400 and _status(r)["reason"] == "BadRequest"


def test_unknown_field_with_a_control_character_is_warned_about_escaped(http: httpx.Client) -> None:
    """The Warning header names the field; a CR in its name must not break the response."""
    http.post("/api/v1/namespaces/errs/configmaps", json={"metadata": {"name": "ctl"}})
    r = http.put("/api/v1/namespaces/errs/configmaps/ctl", json={"metadata": {"name": "ctl"}, "\r": None})
    assert r.status_code == 200, r.text
    assert r.headers["warning"] == '299 - "unknown field \\"\\u000d\\""'


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
PATHS = [
    "/api/v1/namespaces/errs/pods",
    "/api/v1/namespaces/errs/services",
    "/apis/apps/v1/namespaces/errs/deployments",
    "/apis/batch/v1/namespaces/errs/cronjobs",
    "/api/v1/nodes",
    "/api/v1/namespaces/errs/configmaps/cm",
    "/apis/apps/v1/namespaces/errs/deployments/d/scale",
]
CONTENT_TYPES = ["application/json", "application/merge-patch+json", "application/strategic-merge-patch+json",
                 "application/json-patch+json", "application/apply-patch+yaml", ""]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["POST", "PUT", "PATCH", "GET", "DELETE"]),
    path=st.sampled_from(PATHS),
    ctype=st.sampled_from(CONTENT_TYPES),
    body=json_values | st.binary(max_size=200),
    query=st.dictionaries(st.sampled_from(["fieldValidation", "dryRun", "labelSelector", "fieldSelector",
                                           "resourceVersion", "limit", "continue", "fieldManager", "watch",
                                           "timeoutSeconds"]),
                          st.text(max_size=12), max_size=3),
)
def test_generated_garbage_never_500(
    http: httpx.Client, method: str, path: str, ctype: str, body: object, query: dict
) -> None:
    if query.get("watch"):
        query["timeoutSeconds"] = "1"
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"Content-Type": ctype} if ctype else {}
    if method == "PATCH" and "fieldManager" not in query:
        query["fieldManager"] = "fuzz"
    r = http.request(method, path, params=query, content=content, headers=headers, timeout=10)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        _status(r)


# -- bodies kube-apiserver refuses, and bodies that must not cost the server -------------------------------


def _laughs(levels: int) -> str:
    lines = ["  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [7, 9], ids=["10^7", "10^9"])
def test_apply_alias_bomb_is_400_at_once_and_stores_nothing(http: httpx.Client, levels: int) -> None:
    body = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb{levels}\nx:\n{_laughs(levels)}".encode()
    start = time.monotonic()
    r = http.patch(f"/api/v1/namespaces/errs/configmaps/bomb{levels}", params={"fieldManager": "t"},
                   content=body, headers={"Content-Type": "application/apply-patch+yaml"})
    assert time.monotonic() - start < 2
    assert r.status_code == 400, r.text
    assert _status(r)["message"] == ("error decoding YAML: error converting YAML to JSON: yaml: line 8: "
                                     "document contains excessive aliasing")
    assert http.get(f"/api/v1/namespaces/errs/configmaps/bomb{levels}").status_code == 404


REC_YAML = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: rec}\n"


@pytest.mark.parametrize(
    ("ctype", "body", "message"),
    [
        ("application/apply-patch+yaml", REC_YAML + b"a: &a [*a]\n",
         "error decoding YAML: error converting YAML to JSON: yaml: line 4: anchor 'a' value contains "
         "itself"),
        ("application/yaml", REC_YAML + b"a: &a {b: *a}\n",
         "error converting YAML to JSON: yaml: line 4: anchor 'a' value contains itself"),
    ],
    ids=["apply", "create"],
)
def test_recursive_yaml_anchor_is_400(http: httpx.Client, ctype: str, body: bytes, message: str) -> None:
    r = (http.patch("/api/v1/namespaces/errs/configmaps/rec", params={"fieldManager": "t"}, content=body,
                    headers={"Content-Type": ctype}) if "apply" in ctype else
         http.post("/api/v1/namespaces/errs/configmaps", content=body, headers={"Content-Type": ctype}))
    assert r.status_code == 400 and _status(r)["message"] == message


DEEP_JSON = b'{"metadata":{"name":"deep"},"x":' + b"[" * 700 + b"]" * 700 + b"}"
DEEP_LIST = b"[" * 700 + b"]" * 700


@pytest.mark.parametrize(
    ("method", "ctype", "body"),
    [
        ("POST", "application/json", DEEP_JSON),
        ("POST", "application/yaml", b"metadata: {name: deep}\nx: " + b"[" * 700 + b"]" * 700),
        ("POST", "application/vnd.kubernetes.protobuf", b"k8s\x00" + b"\x12\x02" * 50),
        ("PATCH", "application/merge-patch+json", b'{"x":' + b'{"a":' * 990 + b"1" + b"}" * 991),
        ("PATCH", "application/strategic-merge-patch+json", b'{"x":' + b'{"a":' * 500 + b"1" + b"}" * 501),
        ("PATCH", "application/json-patch+json", b'[{"op":"add","path":"/x","value":' + DEEP_LIST + b"}]"),
        ("PATCH", "application/apply-patch+yaml",
         b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"},"x":' + DEEP_LIST + b"}"),
    ],
    ids=["create-json", "create-yaml", "create-protobuf", "merge", "strategic", "json-patch", "apply"],
)
def test_deep_nesting_is_400_naming_the_limit(http: httpx.Client, method: str, ctype: str,
                                              body: bytes) -> None:
    http.post("/api/v1/namespaces/errs/configmaps", json={"metadata": {"name": "cm"}})
    url = "/api/v1/namespaces/errs/configmaps" + ("" if method == "POST" else "/cm")
    r = http.request(method, url, params={"fieldManager": "t"}, content=body, headers={"Content-Type": ctype})
    assert r.status_code == 400, r.text
    message = _status(r)["message"]
    assert "max depth" in message or "nested too deeply" in message or "protobuf" in message, message


def test_an_object_at_the_depth_limit_is_served_in_every_shape(http: httpx.Client) -> None:
    deepest = b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1)
    body = b'{"metadata":{"name":"deepest"},"x":' + deepest + b"}"
    r = http.post("/api/v1/namespaces/errs/configmaps", params={"fieldValidation": "Ignore"}, content=body)
    assert r.status_code == 201, r.text
    applied = http.patch("/api/v1/namespaces/errs/configmaps/deepest",
                         params={"fieldManager": "t", "force": "true"},
                         content=b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deepest"},"y":'
                         + deepest + b"}", headers={"Content-Type": "application/apply-patch+yaml"})
    assert applied.status_code == 200, applied.text
    table = "application/json;as=Table;v=v1;g=meta.k8s.io"
    for params, accept in [({}, "application/json"), ({"includeObject": "Object"}, table)]:
        listed = http.get("/api/v1/namespaces/errs/configmaps", params=params, headers={"Accept": accept})
        assert listed.status_code == 200
        watched = http.get("/api/v1/namespaces/errs/configmaps", headers={"Accept": accept},
                           params={**params, "watch": "true", "timeoutSeconds": "1",
                                   "fieldSelector": "metadata.name=deepest"})
        assert watched.status_code == 200 and b'"type":"ADDED"' in watched.content


@pytest.mark.parametrize(
    ("ctype", "code"),
    [("text/plain", 415), ("application/json;;", 415), ("application/cbor", 415),
     ("application/x-www-form-urlencoded", 415), (None, 201), ("application/json; charset=utf-8", 201),
     ("APPLICATION/JSON", 201)],
    ids=["text", "bad-params", "cbor", "form", "none-is-json", "charset", "upper-case"],
)
def test_create_and_update_negotiate_the_body_s_media_type_like_kube(http: httpx.Client, ctype: str | None,
                                                                      code: int) -> None:
    name = f"mt{abs(hash(ctype)) % 10**6}"
    headers = {"Content-Type": ctype} if ctype else {}
    r = http.post("/api/v1/namespaces/errs/configmaps", content=orjson.dumps({"metadata": {"name": name}}),
                  headers=headers)
    assert r.status_code == code, r.text
    if code == 415:
        assert _status(r) == {**_status(r), "reason": "UnsupportedMediaType", "message": (
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml, application/vnd.kubernetes.protobuf")}
        r = http.put(f"/api/v1/namespaces/errs/configmaps/{name}", content=b"{}", headers=headers)
        assert r.status_code == 415


def test_duplicate_fields_are_strict_errors(http: httpx.Client) -> None:
    body = b'{"metadata":{"name":"dups","name":"dups"},"data":{"a":"1","a":"2"}}'
    r = http.post("/api/v1/namespaces/errs/configmaps", params={"fieldValidation": "Strict"}, content=body)
    assert r.status_code == 400 and _status(r)["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'duplicate field "metadata.name", duplicate field "data.a"')
    r = http.post("/api/v1/namespaces/errs/configmaps", params={"fieldValidation": "Warn"}, content=body)
    assert r.status_code == 201 and r.json()["data"] == {"a": "2"}
    assert r.headers.get_list("warning") == ['299 - "duplicate field \\"metadata.name\\""',
                                             '299 - "duplicate field \\"data.a\\""']


def test_kubectl_patch_cannot_turn_a_pod_into_a_secret(http: httpx.Client) -> None:
    http.post("/api/v1/namespaces/errs/pods", json={"metadata": {"name": "kp"},
                                                    "spec": {"containers": [{"name": "c", "image": "i"}]}})
    r = http.patch("/api/v1/namespaces/errs/pods/kp", content=b'{"apiVersion":"v9","kind":"Secret"}',
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422 and _status(r)["reason"] == "Invalid"
    assert r.json()["message"].endswith(
        'no kind "Secret" is registered for version "v9" in scheme "pkg/api/legacyscheme/scheme.go:30"')
    got = http.get("/api/v1/namespaces/errs/pods/kp").json()
    assert (got["apiVersion"], got["kind"]) == ("v1", "Pod")


def test_plain_http_to_the_api_port_gets_go_s_400(live_cluster: LiveCluster, http: httpx.Client) -> None:
    host, port = live_cluster.url.removeprefix("https://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    assert answer == b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
    assert http.get("/api/v1/namespaces/errs").status_code == 200


def test_a_large_yaml_body_does_not_stall_other_requests(live_cluster: LiveCluster,
                                                         http: httpx.Client) -> None:
    """Seconds of pure-Python YAML decoding run in a worker thread; meanwhile the server answers."""
    items = "".join(f"  k{i}: {'v' * 30}\n" for i in range(40_000))  # ~1.5 MB of YAML
    body = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: large\nx:\n{items}".encode()
    done: list[float] = []

    def apply() -> None:
        r = http.patch("/api/v1/namespaces/errs/configmaps/large",
                       params={"fieldManager": "t", "fieldValidation": "Ignore"},
                       content=body, headers={"Content-Type": "application/apply-patch+yaml"}, timeout=120)
        assert r.status_code == 201, r.text
        done.append(time.monotonic())

    worker = threading.Thread(target=apply)
    worker.start()
    time.sleep(0.3)  # the body is sent and being decoded
    ca = ssl.create_default_context(cafile=str(live_cluster.ca_cert))
    with httpx.Client(base_url=live_cluster.url, verify=ca, timeout=30) as other:
        start = time.monotonic()
        assert other.get("/healthz").status_code == 200
        answered = time.monotonic()
    worker.join(120)
    assert done and answered < done[0], "the health check waited for the YAML body to be decoded"
    assert answered - start < 3


@pytest.mark.parametrize("value", ["99999999999999999999", "-9223372036854775809", "1_0", " 5", "5 ", "0x10"])
def test_integer_query_parameters_are_int64_as_go_parses_them(http: httpx.Client, value: str) -> None:
    """A grace period past int64 once reached the store and failed to encode there (a 500)."""
    http.post("/api/v1/namespaces/errs/pods", json={
        "metadata": {"name": "graceful"},
        "spec": {"nodeName": "nowhere", "containers": [{"name": "c", "image": "i"}]}})
    r = http.delete("/api/v1/namespaces/errs/pods/graceful", params={"gracePeriodSeconds": value})
    assert r.status_code == 400
    assert _status(r)["message"] == f'invalid value for gracePeriodSeconds: "{value}"'
    r = http.get("/api/v1/namespaces/errs/configmaps", params={"limit": value})
    assert r.status_code == 400
    assert http.get("/api/v1/namespaces/errs/pods/graceful").status_code == 200


@pytest.mark.parametrize("timeout", ["-1", "1"], ids=["negative-ends-at-once", "expires"])
def test_a_watch_that_times_out_ends_its_response_cleanly(http: httpx.Client, timeout: str) -> None:
    """Go's timer fires at once for a negative duration; either way the chunked response is complete
    (the timeout never cuts a write in half)."""
    with http.stream(
        "GET", "/api/v1/namespaces", params={"watch": "true", "timeoutSeconds": timeout}
    ) as resp:
        assert resp.status_code == 200
        body = resp.read()  # an incomplete chunked body raises here
    events = [orjson.loads(line) for line in body.splitlines()]
    assert all(e["type"] == "ADDED" for e in events)


def test_a_watch_with_timeout_zero_is_not_ended(http: httpx.Client) -> None:
    """kube reads timeoutSeconds=0 as not set: the server's default lifetime applies."""
    with http.stream("GET", "/api/v1/namespaces", params={"watch": "true", "timeoutSeconds": "0"},
                     timeout=httpx.Timeout(10, read=1.5)) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        assert orjson.loads(next(lines))["type"] == "ADDED"
        with pytest.raises(httpx.ReadTimeout):
            for _ in lines:
                pass


@pytest.mark.parametrize("ctype", ["application/yaml", "application/apply-patch+yaml"])
def test_deep_flow_yaml_is_refused_in_linear_time(http: httpx.Client, ctype: str) -> None:
    """ruamel's scanner re-checks every open flow collection on every token: 200,000 nested `[` took
    minutes of CPU before the depth was counted while scanning."""
    body = b"metadata: {name: deep}\nx: " + b"[" * 200_000 + b"]" * 200_000
    method, url = ("POST", "/api/v1/namespaces/errs/configmaps") if ctype == "application/yaml" else (
        "PATCH", "/api/v1/namespaces/errs/configmaps/deep-flow")
    started = time.monotonic()
    r = http.request(method, url, params={"fieldManager": "t"}, content=body, headers={"Content-Type": ctype})
    assert r.status_code == 400, r.text
    assert "exceeded max depth of 200" in _status(r)["message"]
    assert time.monotonic() - started < 3
