"""The API core: Kubernetes object semantics over the MVCC store.

Owns: create/get/list/update/patch/delete with resourceVersion, uid, generation, generateName,
finalizers and deletionTimestamp, spec/status separation, the order of a write: strategy,
defaulting, admission, validation (api/policy/), the real 1.32 schema (schema.py); deletion
(deletion.py), server-side apply (serverside.py), the scale and binding subresources
(subresources.py), whose mixins make up `ApiCore`. Used in-process by controllers and over HTTP by
the apiserver, so every writer sees the same rules.
Must not import: the apiserver, cli, reconcilers, node agent or runtime.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable
from typing import Any

import attrs

from orchestra.api import conversion
from orchestra.api.errors import (
    BadRequest,
    Cause,
    Conflict,
    Forbidden,
    Gone,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
    Timeout,
    UnsupportedMediaType,
    already_exists,
    conflict,
    invalid,
    new_content_forbidden,
    not_found,
)
from orchestra.api.machinery.selectors import FieldSelector, LabelSelector
from orchestra.api.policy import admission, certificates, defaults, validation
from orchestra.api.policy.admission import AdmissionPlugin
from orchestra.api.policy.allocators import ServiceAllocator
from orchestra.api.policy.strategy import (
    for_subresource,
    prepare_for_create,
    prepare_for_update,
    takes_write,
    tracks_generation,
)
from orchestra.api.registry import DEFAULT_REGISTRY, Registry, ResourceType
from orchestra.api.request import bodies, patch, typemeta
from orchestra.api.request.admitting import AdmissionMixin
from orchestra.api.request.custom import CustomMixin
from orchestra.api.request.customkinds import KindsMixin
from orchestra.api.request.decoding import DecodingMixin, _shown
from orchestra.api.request.deletion import DeletionMixin, finalizers_pending
from orchestra.api.request.labelcache import LabelCache
from orchestra.api.request.listoptions import EXACT, decode_continue, encode_continue, validate_list_options
from orchestra.api.request.quota import PolicyAdmissionMixin
from orchestra.api.request.schema import Schema, load_schema
from orchestra.api.request.serverside import ApplyMixin
from orchestra.api.request.stored import Codec, meta, new_uid, parse_rv, random_suffix, spec_part, with_rv
from orchestra.api.request.subresources import SubresourceMixin
from orchestra.api.request.types import ListResult, WriteOptions, WriteResult
from orchestra.objects import Obj, deep_copy, now_rfc3339
from orchestra.store import CompactedError, CompareFailed, KeyValue, Store

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply-cbor",
}
# kube's GuaranteedUpdate retries a conflict for as long as it takes; every lost race means another write
# won, so this bound is only a guard against a bug looping forever
MAX_RETRIES = 100
LABEL_CACHE_MIN = 256  # below this many objects a label-selected LIST just decodes them all


def _strip_rv(obj: Obj) -> None:
    m = obj.get("metadata")
    if isinstance(m, dict):
        m.pop("resourceVersion", None)




class ApiCore(SubresourceMixin, DeletionMixin, ApplyMixin, PolicyAdmissionMixin, AdmissionMixin,
              DecodingMixin, CustomMixin, KindsMixin):
    """Kubernetes object semantics on top of a Store. All methods run in the trio thread."""

    def __init__(self, store: Store, *, registry: Registry | None = None, schema: Schema | None = None,
                 allocator: ServiceAllocator | None = None, codec: Codec | None = None,
                 admission: tuple[AdmissionPlugin, ...] = (), tokens: Any = None) -> None:
        """`admission`: the configurable admission plugins (api/policy/admission.py), run in order;
        `tokens`: the TokenIssuer of serviceaccounts/token (api/request/tokenrequest.py)."""
        self.store = store
        self.codec = codec or Codec()  # objects <-> store values (Secrets encrypted when configured)
        self.admission = admission
        self.tokens = tokens
        self.registry = registry or Registry(DEFAULT_REGISTRY.builtin)  # its own: CRDs add kinds
        self.schema = schema or load_schema()
        self.allocator = allocator or ServiceAllocator()
        self.labels = LabelCache(self.codec.decode)
        self._small: dict[str, tuple[int, builtins.list[Obj]]] = {}  # see _all_cached
        self.load_custom_kinds()

    # --- reads -------------------------------------------------------------------------------

    def _load(self, kv: KeyValue) -> Obj:
        return with_rv(self.codec.decode(kv), kv)

    def _get_kv(self, rt: ResourceType, namespace: str | None, name: str) -> KeyValue:
        kv = self.store.get(rt.key(namespace, name))
        if kv is None:
            raise not_found(rt.group_resource, name, group=rt.group, plural=rt.plural)
        return kv

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        return self._presented(rt, self._load(self._get_kv(rt, namespace, name)))

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
        resource_version: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version_match: str | None = None,
        send_initial_events: str | None = None,
    ) -> ListResult:
        validate_list_options(watch=False, resource_version=resource_version, match=resource_version_match,
                              continue_token=continue_token, send_initial_events=send_initial_events)
        prefix = rt.key_prefix(namespace)
        revision: int | None = None
        start_after: str | None = None
        if continue_token:
            if resource_version not in (None, "", "0"):
                raise BadRequest("specifying resource version is not allowed when using continue")
            revision, start_after = decode_continue(continue_token, prefix)
        elif resource_version not in (None, "", "0"):
            want = parse_rv(resource_version)
            if want is not None and want > self.store.revision:
                raise _too_new(want, self.store.revision)
            if resource_version_match == EXACT or (not resource_version_match and limit):
                revision = want  # Exact, and kube's legacy rule: a paged list at a given RV is exact
        match = selection(rt, label_selector, field_selector)
        name = field_selector.exact_name() if field_selector else None
        try:
            if name is not None and (namespace or not rt.namespaced):
                kv = self.store.get(rt.key(namespace, name), revision=revision)
                kvs, rev = ([kv] if kv else []), (revision or self.store.revision)
            else:
                kvs, rev = self.store.range(prefix, revision=revision, start_after=start_after)
        except CompactedError:
            if not continue_token:  # etcd's ErrCompacted for a list at an exact revision
                raise Gone("The resourceVersion for the provided list is too old.") from None
            raise Gone("The provided continue parameter is too old to display a consistent list result. "
                       "You can start a new list without the continue parameter.") from None
        items: builtins.list[Obj] = []
        next_token = ""
        remaining = None
        wanted = None  # with a label selector over many objects: only the keys whose labels match
        if label_selector is not None and not label_selector.empty and len(kvs) > LABEL_CACHE_MIN:
            wanted = self.labels.matching_keys(prefix, kvs, label_selector.matches)
        read = self.reader(rt)
        for i, kv in enumerate(kvs):
            if wanted is not None and kv.key not in wanted:
                continue
            stored = self._load(kv)
            obj = stored if read is None else read(stored)
            if match is None or match(stored, obj):
                items.append(obj)
                if limit and len(items) >= limit and i + 1 < len(kvs):
                    next_token = encode_continue(rev, kv.key)
                    remaining = len(kvs) - i - 1
                    break
        return ListResult(items, str(rev), next_token, remaining)

    # --- create ------------------------------------------------------------------------------

    async def create(
        self, rt: ResourceType, namespace: str | None, body: Any, opts: WriteOptions | None = None
    ) -> WriteResult:
        opts = opts or WriteOptions()
        obj = self._check_body(rt, namespace, body)
        warnings = self._schema_check(rt, obj, opts)
        # from here on a built-in object is in the version the store keeps (a custom resource stays at
        # its version, which its CRD's rules read, until _stored at the write)
        obj = conversion.stored(rt, obj)
        self._check_namespace(rt, namespace, meta(obj).get("name") or "")
        m = meta(obj)
        if not m.get("name"):
            if m.get("generateName"):
                m["name"] = f"{m['generateName']}{random_suffix()}"
            else:
                raise invalid(
                    rt.kind,
                    "",
                    [Cause("FieldValueRequired", "name or generateName is required", "metadata.name")],
                    group=rt.group,
                )
        for server_field in (
            "uid",
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ):
            m.pop(server_field, None)
        m["uid"] = new_uid()
        m["creationTimestamp"] = now_rfc3339()
        if rt.custom is not None:
            self._custom_create(rt, obj)
            await self._admit("CREATE", rt, namespace, obj, None, opts)
        else:
            obj = await self._builtin_create(rt, namespace, obj, opts)
        key = rt.key(namespace, m["name"])
        if self.store.get(key) is not None:  # before allocating anything for it
            raise already_exists(rt.group_resource, m["name"], group=rt.group, plural=rt.plural)
        value = self._encode(self._stored(rt, obj), key)
        if rt.kind == "Service":
            self.allocator.allocate(obj, self._all(rt))
            value = self._encode(obj, key)
        await self._admit_namespaced(rt, obj, None, opts)  # LimitRanger, ResourceQuota (charged here)
        if opts.dry_run:
            return WriteResult(conversion.served(rt, obj), warnings, created=True)
        try:
            kv = await self.store.aput(key, value, expect_mod_revision=0)
        except CompareFailed:
            raise already_exists(rt.group_resource, m["name"], group=rt.group, plural=rt.plural) from None
        self._written(rt, obj, m["name"])
        await self.store.wait_durable(kv.mod_revision)
        return WriteResult(conversion.served(rt, with_rv(obj, kv)), warnings, created=True)

    async def _builtin_create(self, rt: ResourceType, namespace: str | None, obj: Obj,
                              opts: WriteOptions) -> Obj:
        if tracks_generation(rt):
            meta(obj)["generation"] = 1
        else:
            meta(obj).pop("generation", None)
        prepare_for_create(rt, obj)
        obj = defaults.default(rt.kind, obj)
        admission.admit_create(rt.kind, obj, self._priority_classes, self._storage_classes,
                               self._limit_ranges, self._ingress_classes)
        await self._admit("CREATE", rt, namespace, obj, None, opts)
        self._validate(rt, obj, None)
        return obj

    def _priority_classes(self) -> builtins.list[Obj]:
        return self._all_cached("PriorityClass")

    def _storage_classes(self) -> builtins.list[Obj]:
        return self._all_cached("StorageClass")

    def _ingress_classes(self) -> builtins.list[Obj]:
        return self._all_cached("IngressClass")

    def _all_cached(self, kind: str) -> builtins.list[Obj]:
        """Every object of a small cluster-wide kind that admission reads on each create, re-read
        only after a write under its prefix (callers must not modify the objects)."""
        rt = self.registry.by_kind(kind)
        assert rt is not None
        rev = self.store.prefix_revision(rt.key_prefix())
        cached = self._small.get(kind)
        if cached is None or cached[0] != rev:
            cached = self._small[kind] = (rev, self._all(rt))
        return cached[1]

    def _all(self, rt: ResourceType) -> builtins.list[Obj]:
        kvs, _ = self.store.range(rt.key_prefix())
        return [self.codec.decode(kv) for kv in kvs]

    def _check_body(self, rt: ResourceType, namespace: str | None, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise BadRequest(f"{rt.kind} in version \"{rt.version}\" cannot be handled as a {rt.kind}: "
                             "the request body is not a JSON object")
        obj = deep_copy(body)
        typemeta.check_written_type(self.registry, rt, obj)
        if obj.get("metadata") is not None and not isinstance(obj.get("metadata"), dict):
            raise BadRequest(
                f'{rt.kind} in version "{rt.version}" cannot be '
                f'handled as a {rt.kind}: metadata must be an object'
            )
        m = meta(obj)
        if rt.namespaced:
            if m.get("namespace") and namespace and m["namespace"] != namespace:
                raise BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            if namespace:
                m["namespace"] = namespace
        else:
            m.pop("namespace", None)
        return obj

    def _validate(self, rt: ResourceType, obj: Obj, old: Obj | None, subresource: str = "") -> None:
        # the stored form, with the rules of the version written in (events.k8s.io/v1's are stricter)
        causes = validation.validate(rt.kind, obj, old, subresource=subresource, version=rt.api_version)
        if causes:
            raise invalid(rt.kind, str(meta(obj).get("name") or ""), causes, group=rt.group)

    def _check_namespace(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        """kube's NamespaceLifecycle admission: no namespace is 404; a terminating one refuses new
        objects with 403 (errors.new_content_forbidden)."""
        if not rt.namespaced:
            return
        if not namespace:
            raise BadRequest("the server could not find the requested resource: a namespace is required")
        ns_rt = self.registry.by_kind("Namespace")
        assert ns_rt is not None
        kv = self.store.get(ns_rt.key(None, namespace))
        if kv is None:
            raise NotFound(f'namespaces "{namespace}" not found', name=namespace, kind="namespaces")
        if (self.codec.decode(kv).get("metadata") or {}).get("deletionTimestamp"):
            raise new_content_forbidden(rt.group_resource, name, namespace, group=rt.group, plural=rt.plural)

    # --- update ------------------------------------------------------------------------------

    async def update(self, rt: ResourceType, namespace: str | None, name: str, body: Any,
                     opts: WriteOptions | None = None, *, subresource: str = "") -> WriteResult:
        opts = opts or WriteOptions()
        if not takes_write(rt, subresource, "update"):
            raise MethodNotAllowed(f"update is not supported on {rt.plural}/{subresource}")
        obj = self._check_body(rt, namespace, body)
        warnings = self._schema_check(rt, obj, opts)
        body_name = meta(obj).get("name")
        if body_name and body_name != name:
            raise BadRequest(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        meta(obj)["name"] = name
        want_rv = parse_rv(meta(obj).get("resourceVersion"))
        kv = self.store.get(rt.key(namespace, name))
        if kv is None:
            if subresource or rt.custom is not None or rt.kind == "CustomResourceDefinition":
                # not AllowCreateOnUpdate (kube's custom resource and CRD strategies)
                raise not_found(rt.group_resource, name, group=rt.group, plural=rt.plural)
            # PUT creates when the object does not exist (AllowCreateOnUpdate for most kinds)
            meta(obj).pop("resourceVersion", None)
            return await self.create(rt, namespace, obj, opts)
        if want_rv is None and (rt.custom is not None or rt.kind == "CustomResourceDefinition"):
            # kube's custom resource and CRD strategies allow no unconditional update
            raise invalid(
                rt.kind,
                name,
                [
                    Cause(
                        "FieldValueInvalid",
                        "Invalid value: 0x0: must be specified for an update",
                        "metadata.resourceVersion",
                    )
                ],
                group=rt.group,
            )
        for _ in range(MAX_RETRIES):
            if want_rv is not None and want_rv != kv.mod_revision:
                raise conflict(rt.group_resource, name, group=rt.group, plural=rt.plural)
            # an unconditional update is retried on a conflict, as kube's GuaranteedUpdate does; only
            # a store that decides writes elsewhere (etcd) can conflict between this read and the write
            again = deep_copy(obj) if want_rv is None and self.store.remote else None
            try:
                result = await self._replace(rt, kv, obj, opts, subresource)
            except Conflict:
                if again is None:
                    raise
                obj, kv = again, self._get_kv(rt, namespace, name)
                continue
            result.warnings = warnings + result.warnings
            return result
        raise conflict(rt.group_resource, name, group=rt.group, plural=rt.plural)

    async def _replace(
        self, rt: ResourceType, kv: KeyValue, new: Obj, opts: WriteOptions, subresource: str
    ) -> WriteResult:
        """Write `new` (at `rt`'s version) over the stored `kv`; the result is at `rt`'s version too."""
        result = await self._replace_stored(rt, kv, conversion.stored(rt, new), opts, subresource)
        result.obj = conversion.served(rt, result.obj)
        return result

    async def _replace_stored(
        self, rt: ResourceType, kv: KeyValue, new: Obj, opts: WriteOptions, subresource: str
    ) -> WriteResult:
        """Write `new` over the stored `kv` (CAS on its revision), applying spec/status rules."""
        old = self.codec.decode(kv)
        if rt.custom is not None:  # a custom resource's rules run at the version asked for
            old = self._presented(rt, old)
        new = self._merge_rules(rt, old, new, subresource)
        if rt.custom is None:
            new = defaults.default(rt.kind, new)
            if not subresource:
                admission.admit_update(rt.kind, new, self._priority_classes)
                await self._admit("UPDATE", rt, meta(old).get("namespace"), new, old, opts)
            elif opts.user is not None:  # a client's status update: the plugins that look at those
                await self._admit("UPDATE", rt, meta(old).get("namespace"), new, old, opts, subresource)
            self._validate(rt, new, old, subresource)
        elif not subresource:  # the configurable plugins see custom resources too, as in kube
            await self._admit("UPDATE", rt, meta(old).get("namespace"), new, old, opts)
        om = meta(old)
        if (
            om.get("deletionTimestamp")
            and not finalizers_pending(rt, new)
            and not om.get("deletionGracePeriodSeconds")
        ):
            # finalizers gone and no graceful period pending (a pod's agent ends that with a grace-0 delete)
            if opts.dry_run:
                return WriteResult(with_rv(new, kv))
            return WriteResult(await self._remove(rt, kv, new))
        if new == old:
            return WriteResult(with_rv(new, kv))
        value = self._encode(self._stored(rt, new), kv.key)
        await self._admit_namespaced(rt, new, old, opts, subresource)
        if opts.dry_run:
            return WriteResult(with_rv(new, kv))
        try:
            nkv = await self.store.aput(kv.key, value, expect_mod_revision=kv.mod_revision)
        except CompareFailed:
            raise conflict(rt.group_resource, om.get("name", ""), group=rt.group, plural=rt.plural) from None
        self._written(rt, new, om.get("name", ""))
        await self.store.wait_durable(nkv.mod_revision)
        return WriteResult(with_rv(new, nkv))

    def _merge_rules(self, rt: ResourceType, old: Obj, new: Obj, subresource: str) -> Obj:
        om, nm = meta(old), meta(new)
        _strip_rv(new)
        if rt.kind == "CertificateSigningRequest" and subresource in ("status", "approval"):
            new = {**new, "metadata": deep_copy(om)}
            return certificates.merge_update(old, new, subresource, now_rfc3339())
        if subresource == "status" and rt.custom is not None:
            return self._custom_update(rt, new, old, "status")
        merged = for_subresource(old, new, subresource)  # status, finalize, ephemeralcontainers
        if merged is not None:
            return merged
        # immutable server metadata
        for k in (
            "uid",
            "creationTimestamp",
            "namespace",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if k in om:
                nm[k] = om[k]
            else:
                nm.pop(k, None)
        if rt.has_subresource("status"):
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if om.get("deletionTimestamp"):
            # finalizers may only be removed from an object being deleted, not added
            added = set(nm.get("finalizers") or []) - set(om.get("finalizers") or [])
            if added:
                raise Forbidden(
                    "no new finalizers can be added if the object is being "
                    f"deleted, found new finalizers {sorted(added)!r}"
                )
        if rt.custom is not None:
            return self._custom_update(rt, new, old, "")
        prepare_for_update(rt, new, old)
        if tracks_generation(rt) and spec_part(new) != spec_part(old):
            nm["generation"] = int(om.get("generation") or 0) + 1
        return new

    # --- patch -------------------------------------------------------------------------------

    async def patch(self, rt: ResourceType, namespace: str | None, name: str, content_type: str, body: bytes,
                    opts: WriteOptions | None = None, *, subresource: str = "") -> WriteResult:
        opts = opts or WriteOptions()
        ptype = PATCH_TYPES.get(content_type.split(";")[0].strip().lower())
        if ptype is None or ptype == "apply-cbor":
            raise UnsupportedMediaType(
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{', '.join(t for t in PATCH_TYPES if 'cbor' not in t)}"
            )
        if ptype == "strategic" and rt.custom is not None:  # custom resources have no patch strategies
            raise UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
        if not takes_write(rt, subresource, "patch"):
            raise MethodNotAllowed(f"patch is not supported on {rt.plural}/{subresource}")
        self._field_validation(opts)
        if ptype == "apply":
            return await self._apply(rt, namespace, name, body, opts, subresource)
        decoded = self._parse_json(body, find_duplicates=opts.field_validation != "Ignore")
        lead = "json patch " if ptype == "json" else ""  # kube's prefix for the operations' own fields
        findings = tuple((f'{lead}duplicate field "{d}"', d) for d in decoded.duplicates)
        opts = attrs.evolve(opts, decode_findings=findings)
        for _ in range(MAX_RETRIES):
            kv = self._get_kv(rt, namespace, name)
            current = self._presented(rt, self._load(kv))  # patches apply to the version requested
            patched = self._patched(rt, current, ptype, decoded.value)
            if subresource in ("status", "approval") and rt.custom is None:
                # a status (or CSR approval) patch changes status only
                patched = {**current, "status": patched.get("status", {})}
            shown = functools.partial(_shown, ptype, decoded.value, patched)
            warnings = self._patch_check(rt, patched, opts, shown)
            want_rv = parse_rv(meta(patched).get("resourceVersion"))
            if want_rv is not None and want_rv != kv.mod_revision:
                raise conflict(rt.group_resource, name, group=rt.group, plural=rt.plural)
            meta(patched)["name"] = name
            try:
                result = await self._replace(rt, kv, patched, opts, subresource)
            except Conflict:
                # someone wrote in between: re-read and re-apply the patch (a patch that pins a
                # resourceVersion then fails the check above, as in kube)
                continue
            result.warnings = warnings
            return result
        raise conflict(rt.group_resource, name, group=rt.group, plural=rt.plural)

    def _parse_json(self, body: bytes, *, find_duplicates: bool) -> bodies.Decoded:
        try:
            return bodies.decode_json(body, find_duplicates=find_duplicates)
        except bodies.DecodeError as exc:
            if exc.too_large:
                raise RequestEntityTooLarge(exc.message) from None
            raise BadRequest(f"error decoding patch: {exc.message}") from None

    def _patched(self, rt: ResourceType, current: Obj, ptype: str, doc: Any) -> Obj:
        """The current object with the patch applied, still an object of `rt`'s type (see typemeta)."""
        try:
            if ptype == "json":
                if not isinstance(doc, list):
                    raise BadRequest(f"json: cannot unmarshal {_json_type(doc)} into Go value of type "
                                     "jsonpatch.Patch")
                result = patch.json_patch(current, doc)
            elif not isinstance(doc, dict):
                raise BadRequest("patch body must be a JSON object")
            elif ptype == "merge":
                result = patch.merge_patch(current, doc)
            else:
                smp = patch.strategic_merge_patch(current, doc, self.schema, rt.definition)
                typemeta.keep_type(rt, smp)
                return smp
        except patch.PatchTooLarge as exc:
            raise RequestEntityTooLarge(f"Request entity too large: {exc}") from None
        except patch.PatchError as exc:
            raise BadRequest(str(exc)) from None
        err = typemeta.patched_type_error(self.registry, rt, result)
        if err is not None:
            raise err
        return result  # type: ignore[no-any-return]


def selector_predicate(label: LabelSelector | None,
                       field: FieldSelector | None) -> Callable[[Obj], bool] | None:
    if (label is None or label.empty) and (field is None or field.empty):
        return None

    def match(obj: Obj) -> bool:
        if label is not None and not label.matches((obj.get("metadata") or {}).get("labels")):
            return False
        return field is None or field.matches(obj)

    return match


# (stored object, the object as the resource serves it) -> whether a LIST or WATCH's selectors take it
Selection = Callable[[Obj, Obj], bool]


def selection(rt: ResourceType, label: LabelSelector | None, field: FieldSelector | None) -> Selection | None:
    """The selectors of a LIST or WATCH of `rt` (None without any). A built-in kind's read the stored
    form: a type served over another's objects had its field selector put in the stored type's labels
    (parse_field_selector: events.k8s.io/v1's `regarding.name` is core/v1's `involvedObject.name`), as
    kube matches the internal object. A custom resource's read the version asked for (its
    selectableFields are that version's)."""
    pred = selector_predicate(label, field)
    if pred is None:
        return None
    if rt.custom is not None:
        return lambda _stored, shown: pred(shown)
    return lambda stored, _shown: pred(stored)


def _too_new(want: int, current: int) -> Timeout:
    """kube-apiserver answers 504 `Too large resource version` with a retry hint."""
    return Timeout(f"Too large resource version: {want}, current: {current}",
                   causes=(Cause("ResourceVersionTooLarge", "Too large resource version"),), retry_after=1)


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return "bool" if isinstance(value, bool) else "number" if value is not None else "null"
