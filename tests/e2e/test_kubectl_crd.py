"""kubectl 1.32 against custom resources on a real orchestra API server (controllers on): a CRD and
its objects applied from one directory, get with printer columns, describe, explain, patches,
server-side apply, scale, wait, label, selectors, invalid objects, the CRD's APIService, and the CRD's
deletion."""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import LiveCluster

pytestmark = pytest.mark.kubectl

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.kubectl.example.com
spec:
  group: kubectl.example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gd], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    selectableFields:
    - {jsonPath: .spec.color}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [color]
            properties:
              color: {type: string, enum: [red, blue], description: The color of the gadget.}
              replicas: {type: integer, default: 1, minimum: 0}
              owner: {type: string}
          status:
            type: object
            properties:
              replicas: {type: integer}
"""
GADGET = """\
apiVersion: kubectl.example.com/v1
kind: Gadget
metadata:
  name: g1
  namespace: default
spec:
  color: {color}
"""


@pytest.fixture
def kubectl(live_cluster: LiveCluster, kubectl_bin: str) -> Kubectl:
    def run(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([kubectl_bin, *args], input=input, capture_output=True, text=True,
                              env=live_cluster.kubectl_env(), timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


def test_custom_resources_with_kubectl(kubectl: Kubectl, kubectl_bin: str, live_cluster: LiveCluster,
                                      tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "a-crd.yaml").write_text(CRD)
    (folder / "b-gadget.yaml").write_text(GADGET.format(color="red"))

    # As on Kubernetes: kubectl maps every object before applying any, so the first run creates the
    # CRD and cannot map its object yet; once kubectl re-reads discovery, the kind is there.
    first = kubectl("apply", "-f", str(folder), check=False)
    assert "customresourcedefinition.apiextensions.k8s.io/gadgets.kubectl.example.com created" in first.stdout
    assert first.returncode == 1 and "b-gadget.yaml" in first.stderr
    second = kubectl("apply", "-f", str(folder))
    assert "gadget.kubectl.example.com/g1 created" in second.stdout
    kubectl("wait", "--for=condition=established", "crd/gadgets.kubectl.example.com", "--timeout=20s")
    services = kubectl("get", "apiservices").stdout  # the CRD's group/version is a Local APIService
    assert re.search(r"^v1\.kubectl\.example\.com\s+Local\s+True\s", services, re.M), services

    table = kubectl("get", "gadgets").stdout.splitlines()
    assert table[0].split() == ["NAME", "COLOR", "REPLICAS", "AGE"]
    assert table[1].split()[:3] == ["g1", "red", "1"]
    assert "gadget.kubectl.example.com/g1" in kubectl("get", "all").stdout

    described = kubectl("describe", "gadget", "g1").stdout
    assert "Kind:         Gadget" in described and "Color:     red" in described
    assert "The color of the gadget." in kubectl("explain", "gadget.spec.color").stdout

    kubectl("patch", "gadget", "g1", "--type=merge", "-p", '{"spec":{"color":"blue"}}')
    kubectl("patch", "gd", "g1", "--type=json", "-p", '[{"op":"replace","path":"/spec/replicas","value":2}]')
    strategic = kubectl("patch", "gadget", "g1", "-p", '{"spec":{"color":"red"}}', check=False)
    assert (
        strategic.returncode != 0 and "the body of the request was in an unknown format" in strategic.stderr
    )

    (folder / "b-gadget.yaml").write_text(GADGET.format(color="blue") + "  owner: me\n")
    assert (
        "gadget.kubectl.example.com/g1 configured"
        in kubectl("apply", "-f", str(folder / "b-gadget.yaml")).stdout
    )
    ssa = kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=team",
                  "-f", str(folder / "b-gadget.yaml"))
    assert "serverside-applied" in ssa.stdout

    kubectl("scale", "gadget", "g1", "--replicas=3")
    obj = json.loads(kubectl("get", "gadget", "g1", "-o", "json").stdout)
    assert obj["spec"] == {"color": "blue", "replicas": 3, "owner": "me"}
    assert obj["metadata"]["generation"] >= 4

    kubectl("label", "gadget", "g1", "tier=gold")
    assert kubectl("get", "gadgets", "-l", "tier=gold", "-o", "name").stdout.split() == [
        "gadget.kubectl.example.com/g1"]
    assert kubectl("get", "gadgets", "--field-selector", "spec.color=red", "-o", "name").stdout.strip() == ""

    bad = kubectl("apply", "-f", "-", input=GADGET.format(color="green").replace("g1", "g2"), check=False)
    assert bad.returncode != 0
    assert 'spec.color: Unsupported value: "green": supported values: "red", "blue"' in bad.stderr

    with subprocess.Popen([kubectl_bin, "get", "gadgets", "--watch", "--output-watch-events"],
                          stdout=subprocess.PIPE, text=True, env=live_cluster.kubectl_env()) as watcher:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().split()[:2] == ["EVENT", "NAME"]
        assert watcher.stdout.readline().split()[:2] == ["ADDED", "g1"]
        # that line came from kubectl's list; its watch request may not have reached the server yet (and
        # once the CRD is gone it would be a 404): a change it reports shows the watch is running
        kubectl("label", "gadget", "g1", "watched=yes")
        assert _line(watcher.stdout, timeout=20).split()[:2] == ["MODIFIED", "g1"]
        kubectl("delete", "crd", "gadgets.kubectl.example.com", "--timeout=30s")  # returns once it is gone
        watcher.terminate()
        seen = [line.split()[:2] for line in watcher.stdout.read().splitlines()]
    assert ["DELETED", "g1"] in seen  # its objects went before it
    # and then its APIService (kube's crdregistration)
    kubectl("wait", "--for=delete", "apiservice/v1.kubectl.example.com", "--timeout=20s")
    gone = kubectl("get", "gadgets", check=False)  # kubectl's cached discovery may still name the kind
    assert gone.returncode != 0 and ("doesn't have a resource type" in gone.stderr
                                     or "the server could not find the requested resource" in gone.stderr)


def _line(stream: IO[str], *, timeout: float) -> str:
    """The next line of a child's output, waiting at most `timeout` seconds for it."""
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"no output within {timeout} s")
    return stream.readline()


EXPLAIN_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: gizmos, singular: gizmo, kind: Gizmo}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    schema:
      openAPIV3Schema:
        type: object
        description: A Gizmo is a thing with a color.
        properties:
          spec:
            type: object
            required: [color]
            properties:
              color: {{type: string, enum: [red, blue], description: The color of the gizmo.}}
              size: {{type: integer, default: 1, minimum: 0}}
              ports:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {{type: string}}
                    port: {{type: integer}}
          status:
            type: object
            properties:
              ready: {{type: boolean}}
"""


def _gizmo(group: str, color: str, ports: list[dict[str, object]], extra: dict[str, object] | None = None,
           ) -> str:
    return json.dumps({"apiVersion": f"{group}/v1", "kind": "Gizmo",
                       "metadata": {"name": "g1", "namespace": "default"},
                       "spec": {"color": color, "ports": ports, **(extra or {})}})


@pytest.mark.parametrize("version", ["1.27", "1.33"])
def test_explain_and_apply_on_a_custom_kind(live_cluster: LiveCluster, tmp_path: Path, version: str) -> None:
    """`kubectl explain` reads the custom kind's schema from /openapi/v3 (and 1.27's plaintext-openapiv2
    from /openapi/v2's protobuf); client-side apply (a merge patch: the published PATCH takes no
    strategic merge patch), strict field validation, diff and server-side apply work on it."""
    binary = f"/usr/lib/google-cloud-sdk/bin/kubectl.{version}"
    if not os.path.exists(binary):
        pytest.fail(f"{binary} is required for these tests")
    home = tmp_path / "home"
    home.mkdir()

    def kubectl(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([binary, *args], input=input, capture_output=True, text=True, timeout=60,
                              env={**live_cluster.kubectl_env(), "HOME": str(home)})
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    group = f"explain{version.replace('.', '')}.example.com"
    kubectl("apply", "-f", "-", input=EXPLAIN_CRD.format(group=group))
    kubectl("wait", "--for=condition=established", f"crd/gizmos.{group}", "--timeout=20s")

    field = kubectl("explain", f"gizmos.{group}.spec.color").stdout
    assert "KIND:" in field and "Gizmo" in field and "The color of the gizmo." in field, field
    assert "enum: red, blue" in field or "<string>" in field, field
    kind = kubectl("explain", f"gizmos.{group}", "--recursive").stdout
    assert "A Gizmo is a thing with a color." in kind and "ports" in kind and "ready" in kind, kind
    if version == "1.27":
        v2 = kubectl("explain", f"gizmos.{group}.spec", "--output=plaintext-openapiv2").stdout
        assert "RESOURCE: spec <Object>" in v2 and "The color of the gizmo." in v2, v2

    red = [{"name": "http", "port": 80}]
    assert "created" in kubectl("apply", "-f", "-", input=_gizmo(group, "red", red)).stdout
    blue = [{"name": "http", "port": 8080}, {"name": "admin", "port": 9000}]
    diff = kubectl("diff", "-f", "-", input=_gizmo(group, "blue", blue), check=False)
    assert diff.returncode == 1 and "+  color: blue" in diff.stdout, diff.stdout + diff.stderr
    assert "configured" in kubectl("apply", "-f", "-", input=_gizmo(group, "blue", blue)).stdout
    got = json.loads(kubectl("get", f"gizmos.{group}", "g1", "-o", "json").stdout)
    assert got["spec"] == {"color": "blue", "size": 1, "ports": blue}

    bad = kubectl("apply", "-f", "-", input=_gizmo(group, "blue", blue, {"bogus": 1}), check=False)
    assert bad.returncode == 1 and 'unknown field "spec.bogus"' in bad.stderr, bad.stderr

    ssa = kubectl("apply", "--server-side", "--field-manager=team", "--force-conflicts", "-f", "-",
                  input=_gizmo(group, "red", [{"name": "http", "port": 81}]))
    assert "serverside-applied" in ssa.stdout
    got = json.loads(kubectl("get", f"gizmos.{group}", "g1", "-o", "json").stdout)
    assert got["spec"]["color"] == "red"
    assert {p["name"]: p["port"] for p in got["spec"]["ports"]} == {"http": 81, "admin": 9000}
    kubectl("delete", "crd", f"gizmos.{group}", "--timeout=30s")
