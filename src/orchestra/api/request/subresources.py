"""The scale and binding subresources of the API core.

Owns: the autoscaling/v1 Scale view of Deployments/ReplicaSets/StatefulSets/ReplicationControllers
and of custom resources (through their CRD's specReplicasPath, statusReplicasPath,
labelSelectorPath) and pods/binding
(the scheduler's bind). Mixed into ApiCore; uses its get/update and the store.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import (
    BadRequest,
    Cause,
    Conflict,
    NotFound,
    RequestEntityTooLarge,
    UnsupportedMediaType,
    conflict,
    invalid,
)
from orchestra.api.machinery.selectors import from_label_selector_object, selector_from_set
from orchestra.api.policy.crd import resource
from orchestra.api.policy.crd.model import Compiled, compiled
from orchestra.api.registry import ResourceType
from orchestra.api.request import patch
from orchestra.api.request.stored import meta
from orchestra.api.request.typemeta import check_body_types
from orchestra.api.request.types import WriteOptions
from orchestra.objects import Obj, now_rfc3339
from orchestra.store import CompareFailed

PATCH_TYPES_SCALE = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",  # the Python client's patch_*_scale sends this
}
MAX_RETRIES = 8
SCALE = "io.k8s.api.autoscaling.v1.Scale"
BINDING = "io.k8s.api.core.v1.Binding"


class SubresourceMixin:
    def get_scale(self: Any, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        if not rt.has_subresource("scale"):
            raise NotFound(f"the server could not find the requested resource ({rt.plural}/scale)")
        return self._scale_of(self.get(rt, namespace, name), rt)

    def _scale_of(self, obj: Obj, rt: ResourceType | None = None) -> Obj:
        m = obj["metadata"]
        if rt is not None and rt.custom is not None:
            return _custom_scale(obj, compiled(rt.custom))
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        selector = (  # a ReplicationController's selector is a plain label map
            selector_from_set(spec.get("selector")) if obj.get("kind") == "ReplicationController"
            else from_label_selector_object(spec.get("selector")))
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: m[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in m
            },
            "spec": {"replicas": int(1 if spec.get("replicas") is None else spec["replicas"])},
            "status": {"replicas": int(status.get("replicas") or 0), "selector": str(selector)},
        }

    async def update_scale(self: Any, rt: ResourceType, namespace: str | None, name: str, body: Any,
                           content_type: str | None = None, opts: WriteOptions | None = None) -> Obj:
        """PUT (content_type None) or PATCH of the Scale subresource."""
        current = self.get_scale(rt, namespace, name)
        if content_type is None:
            scale = body
        else:
            ptype = PATCH_TYPES_SCALE.get(content_type.split(";")[0].strip().lower())
            if ptype is None:
                raise UnsupportedMediaType(f"unsupported patch type for scale: {content_type}")
            scale = self._patched_scale(current, ptype, self._parse_json(body, find_duplicates=False).value)
        check_body_types(self.schema, scale, SCALE, kind="Scale", version="v1")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid(
                "Scale",
                name,
                [
                    Cause(
                        "FieldValueInvalid",
                        f"Invalid value: {replicas!r}: must be greater than or equal to 0",
                        "spec.replicas",
                    )
                ],
                group="autoscaling",
            )
        want_rv = (scale.get("metadata") or {}).get("resourceVersion")
        if content_type is not None and want_rv == current["metadata"]["resourceVersion"]:
            want_rv = (
                None  # a patch of the current scale carries the RV it read; only a PUT is a precondition
            )
        obj = self.get(rt, namespace, name)
        if rt.custom is not None:
            custom_scale = compiled(rt.custom).scale
            assert custom_scale is not None
            resource.set_path(obj, custom_scale.spec_replicas, replicas)
        else:
            obj["spec"]["replicas"] = replicas
        if want_rv is None and rt.custom is None:
            meta(obj).pop("resourceVersion", None)  # a custom resource keeps the one just read: no
            # unconditional update of it exists (a write in between is a Conflict, as in kube's retry)
        elif want_rv is not None:
            meta(obj)["resourceVersion"] = want_rv
        result = await self.update(rt, namespace, name, obj, opts)
        return self._scale_of(result.obj, rt)

    @staticmethod
    def _patched_scale(current: Obj, ptype: str, doc: Any) -> Any:
        try:
            if ptype == "json":
                return patch.json_patch(current, doc)
            if not isinstance(doc, dict):
                raise BadRequest("patch body must be a JSON object")
            return patch.merge_patch(current, doc)
        except patch.PatchTooLarge as exc:
            raise RequestEntityTooLarge(f"Request entity too large: {exc}") from None
        except patch.PatchError as exc:
            raise BadRequest(str(exc)) from None

    async def bind(self: Any, namespace: str, name: str, binding: Any) -> None:
        """pods/binding: set spec.nodeName once and mark PodScheduled (as the scheduler's bind does)."""
        rt = self.registry.by_kind("Pod")
        assert rt is not None
        check_body_types(self.schema, binding, BINDING, kind="Binding", version="v1")
        target = binding.get("target") or {}
        node = target.get("name")
        if not node:
            raise invalid("Binding", name, [Cause("FieldValueRequired", "Required value", "target.name")])
        for _ in range(MAX_RETRIES):
            kv = self._get_kv(rt, namespace, name)
            pod = self._load(kv)
            if meta(pod).get("deletionTimestamp"):
                raise Conflict(
                    f'Operation cannot be fulfilled on pods/binding "{name}": '
                    f"pod {name} is being deleted, cannot be assigned to a host",
                    name=name,
                    kind="pods/binding",
                )
            spec = pod.setdefault("spec", {})
            if spec.get("nodeName"):
                raise Conflict(
                    f'Operation cannot be fulfilled on pods/binding "{name}": '
                    f'pod {name} is already assigned to node "{spec["nodeName"]}"',
                    name=name,
                    kind="pods/binding",
                )
            spec["nodeName"] = node
            status = pod.setdefault("status", {})
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conds.append(
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": now_rfc3339(),
                }
            )
            status["conditions"] = conds
            meta(pod).pop("resourceVersion", None)
            try:
                value = self.codec.encode(kv.key, pod)
                nkv = await self.store.aput(kv.key, value, expect_mod_revision=kv.mod_revision)
            except CompareFailed:
                continue
            await self.store.wait_durable(nkv.mod_revision)
            return
        raise conflict("pods", name, group="", plural="pods")


def _custom_scale(obj: Obj, c: Compiled) -> Obj:
    """kube's scale of a custom resource: replicas read through the CRD's paths (0 when absent)."""
    assert c.scale is not None
    m = obj["metadata"]
    spec_replicas = resource.get_path(obj, c.scale.spec_replicas)
    status_replicas = resource.get_path(obj, c.scale.status_replicas)
    selector = resource.get_path(obj, c.scale.label_selector) if c.scale.label_selector else None
    status: Obj = {"replicas": status_replicas if isinstance(status_replicas, int) else 0}
    if isinstance(selector, str) and selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in m
        },
        "spec": {"replicas": spec_replicas if isinstance(spec_replicas, int) else 0},
        "status": status,
    }
