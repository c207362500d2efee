"""The official `kubernetes` Python client on custom resources: ApiextensionsV1Api for the CRD (its
models must accept what orchestra answers) and CustomObjectsApi for create, list, watch, patch,
status, scale and delete."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LiveCluster

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

GROUP, VERSION, PLURAL = "py.example.com", "v1", "sprockets"
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "kind": "Sprocket"},
        "versions": [{
            "name": VERSION, "served": True, "storage": True,
            "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                     "statusReplicasPath": ".status.replicas"}},
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {"teeth": {"type": "integer", "minimum": 3},
                                                          "replicas": {"type": "integer"}}},
                "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}},
        }],
    },
}


@pytest.fixture(scope="module")
def api(live_cluster: LiveCluster) -> Iterator[client.ApiClient]:
    cfg = client.Configuration()
    cfg.host = live_cluster.url
    cfg.api_key = {"authorization": live_cluster.token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    cfg.ssl_ca_cert = str(live_cluster.ca_cert)
    with client.ApiClient(cfg) as api_client:
        yield api_client


def test_apiextensions_and_custom_objects(api: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api)
    created = ext.create_custom_resource_definition(CRD)
    assert created.status.stored_versions == [VERSION]
    w = watch.Watch()
    for event in w.stream(
        ext.list_custom_resource_definition,
        field_selector=f"metadata.name={PLURAL}.{GROUP}",
        timeout_seconds=20,
    ):
        conds = {c.type: c.status for c in event["object"].status.conditions or []}
        if conds.get("Established") == "True":
            w.stop()
    crd = ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    assert crd.status.accepted_names.kind == "Sprocket"

    objs = client.CustomObjectsApi(api)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Sprocket", "metadata": {"name": "s1"},
            "spec": {"teeth": 12, "replicas": 1}}
    got: list[tuple[str, str]] = []
    started = threading.Event()
    # From the empty list's resourceVersion: a watch without one starts with the state at the moment the
    # request arrives, which under load may already include the writes below.
    empty = objs.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    since = empty["metadata"]["resourceVersion"]

    def follow() -> None:
        stream = watch.Watch()
        started.set()
        for ev in stream.stream(objs.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL,
                                resource_version=since, timeout_seconds=20):
            got.append((ev["type"], ev["object"]["metadata"]["name"]))
            if ev["type"] == "DELETED":
                stream.stop()

    follower = threading.Thread(target=follow)
    follower.start()
    started.wait(5)
    assert (
        objs.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)["spec"]["teeth"] == 12
    )
    with pytest.raises(ApiException) as err:
        objs.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL,
                                             {**body, "metadata": {"name": "s2"}, "spec": {"teeth": 1}})
    assert (
        err.value.status == 422
        and "spec.teeth in body should be greater than or equal to 3" in err.value.body
    )
    listed = objs.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["s1"] and listed["kind"] == "SprocketList"
    patched = objs.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "s1", {"spec": {"teeth": 16}}
    )
    assert patched["spec"]["teeth"] == 16
    status = objs.patch_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "s1",
                                                        {"status": {"replicas": 1}})
    assert status["status"] == {"replicas": 1}
    scale = objs.patch_namespaced_custom_object_scale(GROUP, VERSION, "default", PLURAL, "s1",
                                                      {"spec": {"replicas": 5}})
    assert scale["spec"]["replicas"] == 5
    assert objs.get_namespaced_custom_object_scale(GROUP, VERSION, "default", PLURAL, "s1")["status"] == {
        "replicas": 1}
    objs.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "s1")
    follower.join(20)
    assert got == [
        ("ADDED", "s1"),
        ("MODIFIED", "s1"),
        ("MODIFIED", "s1"),
        ("MODIFIED", "s1"),
        ("DELETED", "s1"),
    ]
    ext.delete_custom_resource_definition(f"{PLURAL}.{GROUP}")
