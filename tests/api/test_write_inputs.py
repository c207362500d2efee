"""Write requests with bad input, on the API core: kube's 4xx, and nothing stored changes.

apiVersion/kind on every write path, values of the wrong JSON type in patches and subresource
bodies, strict field validation of duplicate fields, and the nesting and size limits of stored
objects (a patch can grow an object past any body it came in).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import attrs
import orjson
import pytest
import trio

from orchestra.api.errors import ApiError, BadRequest, Invalid, RequestEntityTooLarge
from orchestra.api.registry import BUILTIN, Registry
from orchestra.api.request.bodies import MAX_DEPTH, STORED_DEPTH
from orchestra.api.request.core import ApiCore
from orchestra.api.request.typemeta import decode_error
from orchestra.api.request.types import WriteOptions
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kp", "labels": {"app": "a"}},
       "spec": {"containers": [{"name": "c", "image": "i"}]}}
MERGE, SMP, JSON_PATCH, APPLY = ("application/merge-patch+json", "application/strategic-merge-patch+json",
                                 "application/json-patch+json", "application/apply-patch+yaml")
SCHEME = 'in scheme "pkg/api/legacyscheme/scheme.go:30"'


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store)
    await bootstrap(c)
    pods = c.registry.by_kind("Pod")
    assert pods is not None
    await c.create(pods, "default", POD)
    yield c
    store.close()


def _rt(core: ApiCore, kind: str) -> Any:
    rt = core.registry.by_kind(kind)
    assert rt is not None
    return rt


async def _unchanged(core: ApiCore, call: Any, error: type[ApiError], message: str) -> ApiError:
    """`call` fails with `error` whose message contains `message`, and the pod is as it was."""
    before = core.get(_rt(core, "Pod"), "default", "kp")
    with trio.fail_after(10), pytest.raises(error) as info:
        await call
    assert message in info.value.message, info.value.message
    assert core.get(_rt(core, "Pod"), "default", "kp") == before
    return info.value


# -- null elements of struct lists (Go decodes them as zero structs) --------------------------------


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"containers": [None]}, "spec.containers[0].name"),
        ({"containers": [{"name": "c", "image": "i"}], "initContainers": [None]},
         "spec.initContainers[0].name"),
        ({"containers": [{"name": "c", "image": "i", "env": [None]}]}, "spec.containers[0].env[0].name"),
    ],
    ids=["containers", "init-containers", "env"],
)
async def test_a_null_list_element_is_a_zero_struct_and_a_422(core: ApiCore, spec: dict[str, Any],
                                                               field: str) -> None:
    body = {**POD, "metadata": {"name": "nulls"}, "spec": spec}
    with pytest.raises(Invalid) as info:
        await core.create(_rt(core, "Pod"), "default", body)
    assert field in [c.field for c in info.value.causes], info.value.causes


async def test_a_patch_to_a_null_container_is_a_422_and_loses_nothing(core: ApiCore) -> None:
    patch = orjson.dumps({"spec": {"containers": [None]}})
    patching = core.patch(_rt(core, "Pod"), "default", "kp", MERGE, patch)
    await _unchanged(core, patching, Invalid, "spec.containers[0].name")


# -- apiVersion and kind ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"apiVersion": "v1", "kind": "Secret"}, 'Secret in version "v1" cannot be handled as a Pod: '
                                                 "converting (v1.Secret) to (core.Pod): unknown conversion"),
        ({"apiVersion": "v9", "kind": "Secret"}, 'Secret in version "v9" cannot be handled as a Pod: '
                                                 f'no kind "Secret" is registered for version "v9" {SCHEME}'),
        ({"apiVersion": "apps/v1"}, 'Pod in version "v1" cannot be handled as a Pod: '
                                    f'no kind "Pod" is registered for version "apps/v1" {SCHEME}'),
        ({"kind": 5}, "couldn't get version/kind; json parse error: json: cannot unmarshal number into Go "
                      "struct field .kind of type string"),
    ],
    ids=["other-kind", "unknown-version-and-kind", "other-group", "kind-not-a-string"],
)
async def test_update_with_a_body_of_another_type_is_400(core: ApiCore, body: dict[str, Any],
                                                         message: str) -> None:
    update = core.update(_rt(core, "Pod"), "default", "kp", {**POD, **body})
    err = await _unchanged(core, update, BadRequest, message)
    assert err.message == message


@pytest.mark.parametrize(
    ("kind", "causes"),
    [
        ("Pod", ["spec.containers: Required value", "spec: Forbidden: pod updates may not change fields"]),
        ("Service", ["spec.ports: Required value"]),
    ],
    ids=["pod", "service"],
)
async def test_an_update_with_a_null_spec_is_422_not_500(core: ApiCore, kind: str, causes: list[str]) -> None:
    """`"spec": null` decodes as Go's zero struct: the update strategies (a Service keeping its
    clusterIP, a pod its priority) read an empty spec, and validation names what it lacks."""
    if kind == "Service":
        service = {"metadata": {"name": "kp"}, "spec": {"ports": [{"port": 80}]}}
        await core.create(_rt(core, kind), "default", service)
    before = core.get(_rt(core, kind), "default", "kp")
    body = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "kp"}, "spec": None}
    with trio.fail_after(10), pytest.raises(Invalid) as info:
        await core.update(_rt(core, kind), "default", "kp", body)
    for cause in causes:
        assert cause in info.value.message, info.value.message
    assert core.get(_rt(core, kind), "default", "kp") == before


async def test_a_body_of_the_same_kind_in_another_version_does_not_match() -> None:
    """kube's check after decoding: another registered version of the kind is not this endpoint's."""
    deploy = next(t for t in BUILTIN if t.kind == "Deployment")
    registry = Registry([*BUILTIN, attrs.evolve(deploy, version="v2")])
    assert decode_error(registry, deploy, "apps/v2", "Deployment") == (
        "the API version in the data (apps/v2) does not match the expected API version (apps/v1)")


@pytest.mark.parametrize(
    ("ctype", "patch", "detail"),
    [
        (MERGE, {"apiVersion": "v9", "kind": "Secret"},
         f'no kind "Secret" is registered for version "v9" {SCHEME}'),
        (MERGE, {"kind": "Secret"}, "converting (v1.Secret) to (core.Pod): unknown conversion"),
        (MERGE, {"apiVersion": "apps/v1"}, f'no kind "Pod" is registered for version "apps/v1" {SCHEME}'),
        (JSON_PATCH, [{"op": "replace", "path": "/kind", "value": "Secret"}],
         "converting (v1.Secret) to (core.Pod)"),
        (JSON_PATCH, [{"op": "replace", "path": "", "value": []}],
         "couldn't get version/kind; json parse error: json: cannot unmarshal array into Go value of type "
         "struct"),
        (JSON_PATCH, [{"op": "replace", "path": "", "value": 5}], "cannot unmarshal number into Go value"),
    ],
    ids=["merge-kind-and-version", "merge-kind", "merge-version", "json-patch-kind", "json-patch-root-list",
         "json-patch-root-number"],
)
async def test_patches_cannot_change_kind_or_api_version(core: ApiCore, ctype: str, patch: Any,
                                                          detail: str) -> None:
    """kube decodes the patched document again: naming another type is 422 Invalid on `patch`."""
    err = await _unchanged(core, core.patch(_rt(core, "Pod"), "default", "kp", ctype, orjson.dumps(patch)),
                           Invalid, detail)
    assert err.message.startswith(' "" is invalid: patch: Invalid value: "')
    assert [c.field for c in err.causes] == ["patch"]


async def test_strategic_merge_patch_keeps_the_type_as_kube_s_typed_object_does(core: ApiCore) -> None:
    out = await core.patch(_rt(core, "Pod"), "default", "kp", SMP,
                           b'{"apiVersion":"v9","kind":"Secret","metadata":{"labels":{"b":"2"}}}')
    assert (out.obj["apiVersion"], out.obj["kind"]) == ("v1", "Pod")
    assert out.obj["metadata"]["labels"] == {"app": "a", "b": "2"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"apiVersion": "v9", "kind": "Pod"},
         "Incorrect version specified in apply patch. Specified patch version: v9, expected: v1"),
        ({"kind": "Pod"},
         "Incorrect version specified in apply patch. Specified patch version: , expected: v1"),
        ({"apiVersion": "v1", "kind": "Secret"},
         'Secret in version "v1" cannot be handled as a Pod: converting'),
    ],
    ids=["other-version", "no-version", "other-kind"],
)
async def test_apply_with_another_type_is_400(core: ApiCore, config: dict[str, Any], message: str) -> None:
    body = orjson.dumps({**config, "metadata": {"name": "kp"}})
    applied = core.patch(_rt(core, "Pod"), "default", "kp", APPLY, body, WriteOptions(field_manager="m"))
    await _unchanged(core, applied, BadRequest, message)


# -- values of the wrong type -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ctype", "patch", "detail"),
    [
        (MERGE, {"metadata": []},
         "json: cannot unmarshal array into Go struct field Pod.metadata of type v1.ObjectMeta"),
        (MERGE, {"metadata": {"resourceVersion": [1]}}, "ObjectMeta.metadata.resourceVersion of type string"),
        (SMP, {"spec": {"containers": 5}}, "PodSpec.spec.containers of type []v1.Container"),
        (JSON_PATCH, [{"op": "add", "path": "/metadata/labels", "value": "x"}],
         "ObjectMeta.metadata.labels of type map[string]string"),
    ],
    ids=["metadata-list", "resource-version-list", "containers-number", "labels-string"],
)
async def test_patched_values_of_the_wrong_type_are_422_and_lose_nothing(core: ApiCore, ctype: str,
                                                                         patch: Any, detail: str) -> None:
    patching = core.patch(_rt(core, "Pod"), "default", "kp", ctype, orjson.dumps(patch))
    await _unchanged(core, patching, Invalid, detail)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.bind("default", "kp", {"target": 5}),
         'Binding in version "v1" cannot be handled as a Binding: json: cannot unmarshal number into Go '
         "struct field Binding.target of type v1.ObjectReference"),
        (lambda c: c.bind("default", "kp", [1]), "cannot unmarshal array into Go value of type v1.Binding"),
        (lambda c: c.bind("default", "kp", {"target": {"name": ["n"]}}),
         "ObjectReference.target.name of type string"),
        (lambda c: c.update_scale(_rt(c, "Deployment"), "default", "web", {"spec": []}),
         "Scale.spec of type"),
        (lambda c: c.update_scale(_rt(c, "Deployment"), "default", "web",
                                  b'[{"op":"replace","path":"","value":[]}]', JSON_PATCH),
         "cannot unmarshal array into Go value of type v1.Scale"),
        (lambda c: c.update_scale(_rt(c, "Deployment"), "default", "web", b"[1]", MERGE),
         "patch body must be"),
    ],
    ids=["binding-target-number", "binding-list", "binding-name-list", "scale-spec-list",
         "scale-json-patch-root", "scale-merge-list"],
)
async def test_subresource_bodies_of_the_wrong_type_are_400(core: ApiCore, call: Any, message: str) -> None:
    await core.create(_rt(core, "Deployment"), "default", {
        "metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
            "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    await _unchanged(core, call(core), BadRequest, message)


# -- duplicate fields -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ctype", "body", "finding"),
    [
        (MERGE, b'{"metadata":{"labels":{"x":"1","x":"2"}}}', 'duplicate field "metadata.labels.x"'),
        (SMP, b'{"metadata":{"labels":{"x":"1"},"labels":{"y":"2"}}}', 'duplicate field "metadata.labels"'),
        (JSON_PATCH, b'[{"op":"add","op":"add","path":"/metadata/labels/x","value":"1"}]',
         'json patch duplicate field "[0].op"'),
    ],
    ids=["merge", "strategic", "json-patch"],
)
async def test_duplicate_fields_in_patches_follow_field_validation(core: ApiCore, ctype: str, body: bytes,
                                                                   finding: str) -> None:
    pods = _rt(core, "Pod")
    strict = core.patch(pods, "default", "kp", ctype, body, WriteOptions(field_validation="Strict"))
    err = await _unchanged(core, strict, Invalid, f"strict decoding error: {finding}")
    assert err.causes[0].field == "patch"
    warned = await core.patch(pods, "default", "kp", ctype, body, WriteOptions(field_validation="Warn"))
    assert warned.warnings == [finding]
    quiet = await core.patch(pods, "default", "kp", ctype, body, WriteOptions(field_validation="Ignore"))
    assert quiet.warnings == []


async def test_unknown_fields_in_patches_are_kube_s_422_under_strict(core: ApiCore) -> None:
    await _unchanged(core, core.patch(_rt(core, "Pod"), "default", "kp", MERGE, b'{"spec":{"bogus":1}}',
                                      WriteOptions(field_validation="Strict")),
                     Invalid, 'strict decoding error: unknown field "spec.bogus"')


# -- nesting and size --------------------------------------------------------------------------------------


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        (MERGE, b'{"x":' + b'{"a":' * 600 + b"1" + b"}" * 601),
        (SMP, b'{"x":' + b'{"a":' * 990 + b"1" + b"}" * 991),
        (JSON_PATCH, b'[{"op":"add","path":"/x","value":' + b"[" * 600 + b"]" * 600 + b"}]"),
        (APPLY, b"apiVersion: v1\nkind: Pod\nmetadata: {name: kp}\nx: " + b"[" * 800 + b"]" * 800),
        (APPLY, b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"kp"},"x":' + b"[" * 800 + b"]" * 800
         + b"}"),
    ],
    ids=["merge-600", "strategic-990", "json-patch-600", "apply-yaml-800", "apply-json-800"],
)
async def test_deeply_nested_patches_are_400_not_recursion_errors(core: ApiCore, ctype: str,
                                                                   body: bytes) -> None:
    patching = core.patch(_rt(core, "Pod"), "default", "kp", ctype, body, WriteOptions(field_manager="m"))
    await _unchanged(core, patching, BadRequest, f"exceeded max depth of {MAX_DEPTH}")


async def test_an_object_at_the_depth_limit_can_be_written_patched_and_applied(core: ApiCore) -> None:
    cms = _rt(core, "ConfigMap")
    ignore = WriteOptions(field_validation="Ignore", field_manager="m")
    deepest = _deep(MAX_DEPTH - 2)  # inside the object and its field "x"
    await core.create(cms, "default", {"metadata": {"name": "deep"}, "x": deepest}, ignore)
    await core.patch(cms, "default", "deep", MERGE, orjson.dumps({"y": deepest}), ignore)
    await core.patch(cms, "default", "deep", SMP, orjson.dumps({"z": deepest}), ignore)
    await core.patch(cms, "default", "deep", APPLY, orjson.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep"}, "w": deepest}), ignore)
    assert core.get(cms, "default", "deep")["w"] == deepest
    with pytest.raises(BadRequest, match=re.escape(f"nested deeper than {STORED_DEPTH} levels")):
        await core.patch(cms, "default", "deep", JSON_PATCH,
                         orjson.dumps([{"op": "copy", "from": "/x", "path": "/x" + "/a" * 20}]), ignore)


async def test_patches_cannot_grow_an_object_past_the_size_limit(core: ApiCore) -> None:
    cms = _rt(core, "ConfigMap")
    chunk = "x" * 1_000_000
    ignore = WriteOptions(field_validation="Ignore")  # fields the schema lacks: ConfigMap data stops at 1 MiB
    await core.create(cms, "default", {"metadata": {"name": "big"}, "a": chunk}, ignore)
    await core.patch(cms, "default", "big", MERGE, orjson.dumps({"b": chunk}), ignore)
    before = core.get(cms, "default", "big")
    with pytest.raises(RequestEntityTooLarge, match="Request entity too large: limit is 3145728"):
        await core.patch(cms, "default", "big", MERGE, orjson.dumps({"c": chunk, "d": chunk}), ignore)
    assert core.get(cms, "default", "big") == before


# -- null pointer fields (Go: a nil pointer, defaulted like a missing field) ------------------------------

DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
          "spec": {"selector": {"matchLabels": {"app": "d"}},
                   "template": {"metadata": {"labels": {"app": "d"}},
                                "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


async def test_null_replicas_default_to_one_and_scale_reads_null_status(core: ApiCore) -> None:
    rt = _rt(core, "Deployment")
    await core.create(rt, "default", DEPLOY)
    stored = core.get(rt, "default", "d")
    await core.update(rt, "default", "d", {**stored, "spec": {**stored["spec"], "replicas": None}})
    stored = core.get(rt, "default", "d")
    assert stored["spec"]["replicas"] == 1
    await core.update(rt, "default", "d", {**stored, "status": {"replicas": None}}, subresource="status")
    assert core.get_scale(rt, "default", "d")["status"]["replicas"] == 0
    patched = await core.update_scale(rt, "default", "d", b'{"spec": {"replicas": 3}}',
                                      "application/merge-patch+json")
    assert patched["spec"]["replicas"] == 3
