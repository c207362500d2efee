"""The OpenAPI documents kube-apiserver serves: `/openapi/v2` (JSON, and the protobuf form kubectl reads)
and `/openapi/v3` (the discovery index) with `/openapi/v3/<api/v1|apis/<group>/<version>>`.

Owns: building each document from the registry (which kinds, at which paths) and the Kubernetes 1.32
definitions (openapi_schemas.py converts them): per group-version, every kind served at it (also at
a type stored as another, `ResourceType.stored_as`: autoscaling/v1 and v2, events.k8s.io/v1 Events),
its list, its subresources' kinds (serviceaccounts/token's TokenRequest too) and everything they refer
to, with the operations kubectl looks for (a PATCH per kind tagged with its group/version/kind and
declaring `fieldValidation`, so it lets the server validate fields), each only if the kind has its verb
(componentstatuses: read and list; the create-only TokenReview and SelfSubjectReview have only their
POST, as in kube's documents: kubectl, finding no PATCH, looks for them among the
CustomResourceDefinitions, then validates them itself). Documents are built on first request and kept
(a few hundred ms each; start-up does none of it); each has an ETag (the upper-case hex SHA-512 of its
bytes, as kube-openapi computes it), named by the v3 index's `?hash=`; a stale `hash` is redirected
like kube does, `If-None-Match` answers 304.
Custom resources (openapi_crd.py makes their definitions) are in /openapi/v2 and in their
group-version's v3 document, with kube's CRD operations (PATCH consumes no strategic merge patch, so
kubectl's client-side apply sends a merge patch, as with kube); the documents they are in are rebuilt
when what the CRDs serve changes, and only then (a CRD's status writes keep them).
Must not import: cli, reconcilers, node, runtime.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from email.utils import formatdate
from typing import Any

import orjson

from orchestra.api.errors import NotAcceptable, path_not_found
from orchestra.api.registry import Registry, ResourceType
from orchestra.api.request.schema import Schema
from orchestra.apiserver import openapi_crd
from orchestra.apiserver.discovery import KUBE_VERSION
from orchestra.apiserver.http import Request, send_bytes
from orchestra.apiserver.openapi_pb import encode_document
from orchestra.apiserver.openapi_schemas import (
    PREFIX,
    Flavor,
    closure,
    convert_definition,
    find_kind,
)

# What kubectl asks for; the answer is labelled with the second form, as kube-openapi does ('@' is not
# valid in a media type, and Go's mime.ParseMediaType, which client-go runs on Content-Type, refuses it).
V2_PROTOBUF_ACCEPT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
# Definitions every group-version document carries (the operations' bodies and answers).
COMMON = tuple(META + n for n in ("Status", "DeleteOptions", "WatchEvent", "Patch", "APIResourceList"))
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")
CUSTOM_PATCH_TYPES = tuple(t for t in PATCH_TYPES if "strategic" not in t)
WRITE_PARAMS = (
    ("dryRun", "When present, indicates that modifications should not be persisted."),
    ("fieldManager", "fieldManager is a name associated with the actor or entity that is making these "
                     "changes."),
    ("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request "
                        "containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict."),
)


def etag(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest().upper()


class Document:
    """One built document: its bytes and ETag (and, for v2, its protobuf form, made on demand)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.json = orjson.dumps(doc)
        self.etag = etag(self.json)
        self._protobuf: bytes | None = None

    @property
    def protobuf(self) -> bytes:
        if self._protobuf is None:
            self._protobuf = encode_document(self.doc)
        return self._protobuf


class OpenApi:
    """The documents of one registry, each built once, on first use."""

    def __init__(self, registry: Registry, schema: Schema) -> None:
        self.registry = registry
        self.schema = schema
        self._docs: dict[str, Document] = {}
        self._generation = registry.generation
        self._custom = _custom_signature(registry)  # what the documents with custom kinds were built from

    def group_versions(self) -> list[str]:
        """`api/v1`, `apis/apps/v1`, ...: the v3 index's keys, in discovery order (every served
        version: autoscaling/v2 and autoscaling/v1 both have a document)."""
        self._sync()
        out: dict[str, None] = {}
        for t in self.registry.served:
            out.setdefault(_gv_path(t), None)
        return list(out)

    def v3_index(self) -> bytes:
        paths = {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={self.v3(gv).etag}"}
                 for gv in self.group_versions()}
        return orjson.dumps({"paths": paths})

    def v3(self, gv: str) -> Document:
        """The document of a group-version path from group_versions() (KeyError for others)."""
        self._sync()
        types = [t for t in self.registry.served if _gv_path(t) == gv]
        if not types:
            raise KeyError(gv)
        return self._cached(f"v3/{gv}", lambda: self._v3_doc(types))

    def v2(self) -> Document:
        self._sync()
        return self._cached("v2", lambda: self._v2_doc(list(self.registry.served)))

    def _sync(self) -> None:
        """Forget the documents custom kinds were or are in once what the CRDs serve has changed (the
        registry's generation moves on every CRD write: most of those change nothing here)."""
        if self._generation == self.registry.generation:
            return
        self._generation = self.registry.generation
        custom = _custom_signature(self.registry)
        if custom == self._custom:
            return
        stale = {f"v3/{gv}" for gv, *_ in (*self._custom, *custom)} | {"v2"}
        self._custom = custom
        for key in stale:
            self._docs.pop(key, None)

    def _cached(self, key: str, build: Any) -> Document:
        doc = self._docs.get(key)
        if doc is None:
            doc = self._docs[key] = Document(build())
        return doc

    # --- building ---------------------------------------------------------------------------------

    def _roots(self, types: list[ResourceType]) -> list[str]:
        roots = list(COMMON)
        for t in types:
            if t.custom is not None:
                roots += openapi_crd.roots(t)
                continue
            if not t.definition:
                continue
            roots += [t.definition, t.definition + "List"]
            for sub in t.subresources:
                found = self._subresource_definition(t, sub.kind, sub.group, sub.version)
                if found:
                    roots.append(found)
        return roots

    def _subresource_definition(self, t: ResourceType, kind: str, group: str, version: str) -> str | None:
        if not kind or kind == t.kind:
            return None
        package = group.split(".")[0] if group else "core"  # authentication.k8s.io: authentication
        guess = f"io.k8s.api.{package}.{version}.{kind}"
        if self.schema.raw(guess) is not None:
            return guess
        return find_kind([guess], self.schema.raw, group, version, kind)

    def _definitions(self, types: list[ResourceType], flavor: Flavor) -> dict[str, Any]:
        names = closure(self._roots(types), self.schema.raw)
        out = {}
        for name in names:
            raw = self.schema.raw(name)
            assert raw is not None  # closure() keeps only known names
            out[name] = convert_definition(name, raw, flavor)
        for t in types:
            if t.custom is not None:
                out.update(openapi_crd.definitions(t, flavor))
        return dict(sorted(out.items()))  # kube's documents are sorted by name

    def _v3_doc(self, types: list[ResourceType]) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        for t in types:
            item, collection = _paths(t)
            if item_ops := _ops(t, ("get", "put", "patch", "delete")):  # TokenReview: only its POST
                paths[item] = {verb: _v3_op(t, verb) for verb in item_ops}
            paths[collection] = {("get" if verb == "list" else verb): _v3_op(t, verb)
                                 for verb in _ops(t, ("list", "post"))}
        crd_only = all(t.custom is not None for t in types)  # a custom group's document
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"} if crd_only
            else {"title": "Kubernetes", "version": KUBE_VERSION},
            "paths": paths,
            "components": {"schemas": self._definitions(types, "v3")},
        }

    def _v2_doc(self, types: list[ResourceType]) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        for t in types:
            item, collection = _paths(t)
            if item_ops := _ops(t, ("get", "put", "patch", "delete")):  # TokenReview: only its POST
                paths[item] = {verb: _v2_op(t, verb) for verb in item_ops}
            paths[collection] = {("get" if verb == "list" else verb): _v2_op(t, verb)
                                 for verb in _ops(t, ("list", "post"))}
        return {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": KUBE_VERSION},
            "paths": paths,
            "definitions": self._definitions(types, "v2"),
        }


def _gv_path(t: ResourceType) -> str:
    return f"api/{t.version}" if not t.group else f"apis/{t.group}/{t.version}"


def _custom_signature(registry: Registry) -> tuple[tuple[Any, ...], ...]:
    """What the documents take from the served custom kinds (not their CRDs' status)."""
    return tuple(
        (_gv_path(t), t.kind, t.plural, t.namespaced, t.list_kind, t.subresources, t.custom.uid,
         t.custom.preserve_unknown_fields, orjson.dumps(t.custom.version, option=orjson.OPT_SORT_KEYS))
        for t in registry.served if t.custom is not None
    )


def _definition(t: ResourceType) -> str:
    return openapi_crd.definition_name(t) if t.custom is not None else t.definition


def _paths(t: ResourceType) -> tuple[str, str]:
    base = f"/{_gv_path(t)}"
    collection = f"{base}/namespaces/{{namespace}}/{t.plural}" if t.namespaced else f"{base}/{t.plural}"
    return f"{collection}/{{name}}", collection


_ACTIONS = {"get": "get", "put": "put", "patch": "patch", "delete": "delete", "list": "list", "post": "post"}
_OP_IDS = {"get": "read", "put": "replace", "patch": "patch", "delete": "delete", "list": "list",
           "post": "create"}


# the API verb (ResourceType.verbs) each operation needs
_VERBS = {"get": "get", "put": "update", "patch": "patch", "delete": "delete", "list": "list",
          "post": "create"}


def _ops(t: ResourceType, ops: tuple[str, ...]) -> list[str]:
    """The operations of `ops` the type serves: componentstatuses are only read and listed, as kube
    publishes them."""
    return [op for op in ops if _VERBS[op] in t.verbs]


def _op_id(t: ResourceType, verb: str) -> str:
    """kube-openapi's GetOperationIDAndTags: the verb, the group without `.k8s.io` and the version as
    an identifier (`rbac.authorization.k8s.io` -> RbacAuthorization, `example.com` -> ExampleCom)."""
    group = _identifier((t.group or "core").removesuffix(".k8s.io"))
    scope = "Namespaced" if t.namespaced else ""
    return f"{_OP_IDS[verb]}{group}{_identifier(t.version)}{scope}{t.kind}"


def _identifier(text: str) -> str:
    """ToValidOperationID(text, capitalizeFirstLetter=true): each run of letters and digits capitalized."""
    return "".join(word[:1].upper() + word[1:] for word in _words(text))


def _words(text: str) -> Iterable[str]:
    word = ""
    for ch in text:
        if ch.isalnum():
            word += ch
        elif word:
            yield word
            word = ""
    if word:
        yield word


def _gvk(t: ResourceType) -> dict[str, str]:
    return {"group": t.group, "version": t.version, "kind": t.kind}


def _writes(verb: str) -> bool:
    return verb in ("put", "patch", "post")


def _response_kind(t: ResourceType, verb: str) -> str:
    if verb == "list":
        return openapi_crd.definition_name(t, t.list_kind) if t.custom is not None else t.definition + "List"
    return _definition(t)


def _patch_types(t: ResourceType) -> tuple[str, ...]:
    """A custom resource takes no strategic merge patch: kubectl reads this to choose its patch."""
    return CUSTOM_PATCH_TYPES if t.custom is not None else PATCH_TYPES


def _v3_op(t: ResourceType, verb: str) -> dict[str, Any]:
    ref = {"$ref": PREFIX["v3"] + _response_kind(t, verb)}
    op: dict[str, Any] = {
        "description": f"{_OP_IDS[verb]} the specified {t.kind}",
        "operationId": _op_id(t, verb),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}},
        "x-kubernetes-action": _ACTIONS[verb],
        "x-kubernetes-group-version-kind": _gvk(t),
    }
    if _writes(verb):
        op["parameters"] = [{"name": name, "in": "query", "description": text,
                             "schema": {"type": "string", "uniqueItems": True}}
                            for name, text in WRITE_PARAMS]
        body = {"$ref": PREFIX["v3"] + (META + "Patch" if verb == "patch" else _definition(t))}
        types = _patch_types(t) if verb == "patch" else ("application/json",)
        op["requestBody"] = {"content": {ct: {"schema": body} for ct in types}, "required": True}
    return op


def _v2_op(t: ResourceType, verb: str) -> dict[str, Any]:
    op: dict[str, Any] = {
        "description": f"{_OP_IDS[verb]} the specified {t.kind}",
        "operationId": _op_id(t, verb),
        "consumes": list(_patch_types(t)) if verb == "patch" else _consumes(t),
        "produces": _produces(t),
        "schemes": ["https"],
        "responses": {"200": {"description": "OK",
                              "schema": {"$ref": PREFIX["v2"] + _response_kind(t, verb)}}},
        "x-kubernetes-action": _ACTIONS[verb],
        "x-kubernetes-group-version-kind": _gvk(t),
    }
    if _writes(verb):
        body = PREFIX["v2"] + (META + "Patch" if verb == "patch" else _definition(t))
        op["parameters"] = [
            {"name": "body", "in": "body", "required": True, "schema": {"$ref": body}},
            *({"name": name, "in": "query", "description": text, "type": "string", "uniqueItems": True}
              for name, text in WRITE_PARAMS),
        ]
    return op


def _consumes(t: ResourceType) -> list[str]:
    return ["application/json", "application/yaml"] if t.custom is not None else ["*/*"]


def _produces(t: ResourceType) -> list[str]:
    """Custom resources have no protobuf form."""
    base = ["application/json", "application/yaml"]
    return base if t.custom is not None else [*base, "application/vnd.kubernetes.protobuf"]


def v2_media_type(accept: str) -> str:
    """What /openapi/v2 answers for this Accept: JSON, or gnostic's protobuf; else 406 like kube."""
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in (V2_PROTOBUF_ACCEPT, V2_PROTOBUF):
            return V2_PROTOBUF
        if media in ("application/json", "application/*", "*/*", ""):
            return "application/json"
    raise NotAcceptable("only the following media types are accepted: application/json, "
                        f"{V2_PROTOBUF_ACCEPT}, {V2_PROTOBUF}")


async def serve(api: OpenApi, req: Request, parts: list[str]) -> None:
    """GET /openapi/v2, /openapi/v3 and /openapi/v3/<group-version> as kube-openapi's handlers do."""
    if parts == ["openapi", "v2"]:
        doc = api.v2()
        media = v2_media_type(req.headers.get("accept", ""))
        data = doc.protobuf if media == V2_PROTOBUF else doc.json
        await _send_document(req, data, doc.etag, media.encode(), [(b"vary", b"Accept")])
        return
    if parts == ["openapi", "v3"]:
        await send_bytes(req.send, 200, api.v3_index())
        return
    gv = "/".join(parts[2:])
    if parts[:2] != ["openapi", "v3"] or gv not in api.group_versions():
        raise path_not_found()
    doc = api.v3(gv)
    given = req.arg("hash")
    headers: list[tuple[bytes, bytes]] = []
    if given and given != doc.etag:  # an old hash: point the client at the current document
        location = f"/openapi/v3/{gv}?hash={doc.etag}".encode()
        await send_bytes(req.send, 301, b"", b"text/plain", [(b"location", location)])
        return
    if given:
        expires = formatdate(time.time() + 365 * 24 * 3600, usegmt=True).encode()  # wall-clock: an HTTP date
        headers = [(b"vary", b"Accept"), (b"cache-control", b"public, immutable"), (b"expires", expires)]
    await _send_document(req, doc.json, doc.etag, b"application/json", headers)


async def _send_document(req: Request, data: bytes, tag: str, content_type: bytes,
                         headers: list[tuple[bytes, bytes]]) -> None:
    quoted = f'"{tag}"'
    headers = [(b"etag", quoted.encode()), *headers]
    if quoted in (v.strip() for v in req.headers.get("if-none-match", "").split(",")):
        await send_bytes(req.send, 304, b"", content_type, headers)
        return
    await send_bytes(req.send, 200, data, content_type, headers)
