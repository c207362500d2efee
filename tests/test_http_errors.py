"""Bad input gets the right Kubernetes Status, and generated garbage never yields a 500."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import LiveCluster


@pytest.fixture(scope="module")
def http(live_cluster: LiveCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_cluster.url, headers={"Authorization": f"Bearer {live_cluster.token}"}, timeout=10,
                      verify=ssl.create_default_context(cafile=str(live_cluster.ca_cert))) as c:
        c.post("/api/v1/namespaces", json={"metadata": {"name": "errs"}})
        yield c


DEPLOY = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "d"},
    "spec": {
        "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "img"}]}},
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
        (_with(["spec", "replicaz"], 3), 400, "BadRequest", 'strict decoding error: unknown field "spec.replicaz"'),
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
    assert 'unknown field \\"spec.replicaz\\"' in r.headers["warning"] or 'unknown field "spec.replicaz"' in r.headers["warning"]


def test_garbage_json_and_oversize(http: httpx.Client) -> None:
    r = http.post(DEPLOYS, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and _status(r)["reason"] == "BadRequest"
    big = b'{"metadata":{"name":"big"},"data":{"x":"' + b"a" * (3 * 1024 * 1024 + 10) + b'"}}'
    r = http.post("/api/v1/namespaces/errs/configmaps", content=big, headers={"Content-Type": "application/json"})
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
    r = http.patch("/api/v1/namespaces/errs/configmaps/p", content=b"{}", headers={"Content-Type": "text/html"})
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
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
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
    query=st.dictionaries(st.sampled_from(["fieldValidation", "dryRun", "labelSelector", "fieldSelector", "resourceVersion",
                                           "limit", "continue", "fieldManager", "watch", "timeoutSeconds"]),
                          st.text(max_size=12), max_size=3),
)
def test_generated_garbage_never_500(http: httpx.Client, method: str, path: str, ctype: str, body: object, query: dict) -> None:
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
