"""Error bodies byte for byte as kube-apiserver writes them: metav1.Status's field order (kind,
apiVersion, metadata, status, message, reason, details, code), `details` on every 404/409/422 (name,
group, kind; causes for 422), the resource named the way kube names it, and the trailing newline of
Go's json.Encoder."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LiveCluster

NS = "status-bytes"
HEAD = b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
BAD_DEPLOY = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "bad"},
    "spec": {
        "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c"}]}},
    },
}


@pytest.fixture(scope="module")
def http(live_cluster: LiveCluster) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=live_cluster.url,
        headers={"Authorization": f"Bearer {live_cluster.token}"},
        timeout=10,
        verify=ssl.create_default_context(cafile=str(live_cluster.ca_cert)),
    ) as c:
        c.post("/api/v1/namespaces", json={"metadata": {"name": NS}})
        c.post(f"/api/v1/namespaces/{NS}/configmaps", json={"metadata": {"name": "taken"}})
        yield c


CASES: list[tuple[str, str, str, Any, int, bytes]] = [
    ("core-not-found", "GET", f"/api/v1/namespaces/{NS}/pods/nope", None, 404,
     b'"message":"pods \\"nope\\" not found","reason":"NotFound",'
     b'"details":{"name":"nope","kind":"pods"},"code":404}\n'),
    ("group-not-found", "GET", f"/apis/apps/v1/namespaces/{NS}/deployments/nope", None, 404,
     b'"message":"deployments.apps \\"nope\\" not found","reason":"NotFound",'
     b'"details":{"name":"nope","group":"apps","kind":"deployments"},"code":404}\n'),
    ("unknown-path", "GET", "/api/v1/nonsense", None, 404,
     b'"message":"the server could not find the requested resource","reason":"NotFound",'
     b'"details":{},"code":404}\n'),
    ("already-exists", "POST", f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": "taken"}}, 409,
     b'"message":"configmaps \\"taken\\" already exists","reason":"AlreadyExists",'
     b'"details":{"name":"taken","kind":"configmaps"},"code":409}\n'),
    ("conflict", "PUT", f"/api/v1/namespaces/{NS}/configmaps/taken",
     {"metadata": {"name": "taken", "resourceVersion": "1"}}, 409,
     b'"message":"Operation cannot be fulfilled on configmaps \\"taken\\": the object has been modified; '
     b'please apply your changes to the latest version and try again","reason":"Conflict",'
     b'"details":{"name":"taken","kind":"configmaps"},"code":409}\n'),
    ("invalid", "POST", f"/apis/apps/v1/namespaces/{NS}/deployments", BAD_DEPLOY, 422,
     b'"message":"Deployment.apps \\"bad\\" is invalid: spec.template.spec.containers[0].image: '
     b'Required value","reason":"Invalid","details":{"name":"bad","group":"apps","kind":"Deployment",'
     b'"causes":[{"reason":"FieldValueRequired","message":"Required value",'
     b'"field":"spec.template.spec.containers[0].image"}]},"code":422}\n'),
]


@pytest.mark.parametrize(("method", "path", "body", "code", "tail"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_status_body_is_byte_exact(http: httpx.Client, method: str, path: str, body: Any, code: int,
                                   tail: bytes) -> None:
    resp = http.request(method, path, json=body)
    assert resp.status_code == code
    assert resp.content == HEAD + tail


def test_objects_end_with_a_newline_too(http: httpx.Client) -> None:
    got = http.get(f"/api/v1/namespaces/{NS}/configmaps/taken")
    listed = http.get(f"/api/v1/namespaces/{NS}/configmaps")
    assert got.content.endswith(b"}\n") and listed.content.endswith(b"}\n")
