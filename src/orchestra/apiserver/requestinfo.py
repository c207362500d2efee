"""What a request asks for, in kube's terms (k8s.io/apiserver/pkg/endpoints/request.RequestInfo).

Owns: `request_info(method, path, query) -> RequestInfo`: resource or non-resource request, the verb
(get, list, watch, create, update, patch, delete, deletecollection; the lower-case HTTP method for
non-resource paths), API group and version, namespace, resource, subresource and name — the words
authorization decides on and the audit log's `objectRef` records. Only the path is read (no
registry): an unknown resource is still described, as kube does before it answers 404.
Must not import: the api core, the store, or anything else of orchestra (it is a pure parser).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
          "DELETE": "delete"}
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
LONG_RUNNING_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy", "log"})


@attrs.frozen
class RequestInfo:
    path: str
    verb: str
    resource_request: bool = False
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    @property
    def long_running(self) -> bool:
        """Watches and streams: kube audits these at ResponseStarted as well as ResponseComplete."""
        return self.verb == "watch" or self.subresource in LONG_RUNNING_SUBRESOURCES

    def object_ref(self) -> dict[str, str] | None:
        """The audit Event's objectRef (fields left out when empty, as Go's omitempty does)."""
        if not self.resource_request:
            return None
        ref = {"resource": self.resource, "namespace": self.namespace, "name": self.name,
               "apiGroup": self.api_group, "apiVersion": self.api_version, "subresource": self.subresource}
        return {k: v for k, v in ref.items() if v}


def request_info(method: str, path: str, query: Mapping[str, Sequence[str]]) -> RequestInfo:
    """kube's RequestInfoFactory.NewRequestInfo for orchestra's prefixes (/api, /apis)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts or parts[0] not in ("api", "apis") or (parts[0] == "apis" and len(parts) < 3):
        return RequestInfo(path=path, verb=method.lower())
    group, rest = ("", parts[1:]) if parts[0] == "api" else (parts[1], parts[2:])
    if len(rest) < 2:  # /api, /api/v1, /apis/apps/v1: discovery, not a resource
        return RequestInfo(path=path, verb=method.lower())
    version, rest = rest[0], rest[1:]
    verb = _VERBS.get(method.upper(), method.lower())
    if rest[0] == "watch":  # the deprecated /watch/ prefix
        verb, rest = "watch", rest[1:]
        if not rest:
            return RequestInfo(path=path, verb=method.lower())
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 else ""
    if not name and verb == "get":
        verb = "watch" if _flag(query, "watch") else "list"
        name = _name_from_selector(query)
    elif not name and verb == "delete":
        verb = "deletecollection"
    return RequestInfo(path, verb, True, group, version, namespace, resource, subresource, name)


def _flag(query: Mapping[str, Sequence[str]], key: str) -> bool:
    values = query.get(key)
    return values[-1].lower() in ("true", "1") if values else False


def _name_from_selector(query: Mapping[str, Sequence[str]]) -> str:
    """A list or watch selecting one name by `fieldSelector=metadata.name=x` is about that object."""
    values = query.get("fieldSelector")
    if not values:
        return ""
    terms = [t.strip() for t in values[-1].split(",") if t.strip()]
    if len(terms) != 1:
        return ""
    key, op, value = terms[0].partition("==") if "==" in terms[0] else terms[0].partition("=")
    if key.strip() != "metadata.name" or not op or value in ("", ".", "..") or "/" in value or "%" in value:
        return ""
    return value.strip()
