"""serviceaccounts/token (authentication.k8s.io/v1 TokenRequest), as kube-apiserver 1.32's TokenREST
answers it: `kubectl create token`, and the node agent's tokens for projected volumes.

Owns, for one POST to `/api/v1/namespaces/NS/serviceaccounts/NAME/token`:
  * the body: a TokenRequest (other types, wrong JSON types: 400; unknown fields are warnings);
    metadata.name/namespace, when given, must match the URL (422);
  * the defaults: spec.audiences the API server's, spec.expirationSeconds 3600; fewer than 600 or
    more than 2^32 seconds is 422;
  * the service account (404 when missing) and spec.boundObjectRef: a Pod (which must run as this
    service account, 400 otherwise; its node goes into the token too), a Secret or a Node of the
    namespace; any other kind is 400; a uid that is not the object's is 409;
  * kube's extension of the kubelet's 3607 s pod tokens to a year, warned after 3607 s
    (--service-account-extend-token-expiration);
  * the answer: the request with creationTimestamp, defaults and status {token, expirationTimestamp}.
The signing is the `TokenIssuer` the app gives the core (`ApiCore(tokens=...)`); without one this
subresource does not exist (404), as in a kube-apiserver without a signing key.
Must not import: anything above the api layer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from orchestra.api import serviceaccount as sa_api
from orchestra.api.errors import BadRequest, Cause, Conflict, NotFound, invalid
from orchestra.api.machinery.field import INVALID, go_value
from orchestra.api.request.core import ApiCore
from orchestra.api.serviceaccount.claims import bound_claims
from orchestra.api.serviceaccount.tokens import TokenIssuer
from orchestra.objects import Obj, deep_copy, format_time

GROUP = "authentication.k8s.io"
API_VERSION = f"{GROUP}/v1"
DEFINITION = "io.k8s.api.authentication.v1.TokenRequest"
_BINDABLE = ("Pod", "Secret", "Node")


async def create_token(core: ApiCore, namespace: str, name: str, body: Any) -> tuple[Obj, list[str]]:
    """The TokenRequest answered (with its token) and the warnings of its decoding."""
    issuer: TokenIssuer | None = core.tokens
    if issuer is None:
        raise NotFound("the server could not find the requested resource")
    req, warnings = _decode(core, body)
    meta = req.setdefault("metadata", {})
    if meta.get("name") and meta["name"] != name:
        raise _invalid(name, "metadata.name", meta["name"],
                       "must match the service account name if specified")
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise _invalid(name, "metadata.namespace", meta["namespace"],
                       "must match the service account namespace if specified")
    sa = core.get(_rt(core, "ServiceAccount"), namespace, name)
    spec = req.setdefault("spec", {})
    if not spec.get("audiences"):
        spec["audiences"] = list(issuer.audiences)
    spec.setdefault("expirationSeconds", sa_api.DEFAULT_EXPIRATION)
    meta.update(name=name, namespace=namespace)
    now = issuer.clock()
    meta["creationTimestamp"] = format_time(datetime.fromtimestamp(now, UTC))
    req["status"] = {}
    _validate(spec["expirationSeconds"])
    bound = _bound_objects(core, namespace, name, spec.get("boundObjectRef"))
    expiration, warn_after = spec["expirationSeconds"], 0
    if (issuer.extend_expiration and "pod" in bound and expiration == sa_api.WARN_ONLY_EXPIRATION
            and set(spec["audiences"]) <= set(issuer.audiences)):
        expiration, warn_after = sa_api.EXTENDED_EXPIRATION, spec["expirationSeconds"]
    claims = bound_claims(sa, audiences=spec["audiences"], issuer=issuer.issuer, now=now,
                          expiration_seconds=expiration, warn_after=warn_after, jti=str(uuid.uuid4()),
                          **bound)
    expires = datetime.fromtimestamp(int(now) + spec["expirationSeconds"], UTC)
    req["status"] = {"token": issuer.sign(claims), "expirationTimestamp": format_time(expires)}
    return req, warnings


def _rt(core: ApiCore, kind: str) -> Any:
    rt = core.registry.by_kind(kind)
    assert rt is not None
    return rt


def _decode(core: ApiCore, body: Any) -> tuple[Obj, list[str]]:
    prefix = 'TokenRequest in version "v1" cannot be handled as a TokenRequest: '
    if not isinstance(body, dict):
        raise BadRequest(prefix + "the request body is not a JSON object")
    req = deep_copy(body)
    api_version, kind = req.get("apiVersion") or API_VERSION, req.get("kind") or "TokenRequest"
    if (api_version, kind) != (API_VERSION, "TokenRequest"):
        raise BadRequest(prefix + f'no kind "{kind}" is registered for version "{api_version}"')
    req.update(apiVersion=API_VERSION, kind="TokenRequest")
    res = core.schema.validate(req, DEFINITION)
    if res.type_errors:  # spec.audiences is "required" in the schema only: kube defaults it
        raise BadRequest(prefix + res.type_errors[0].message, kind="TokenRequest", causes=res.type_errors)
    return req, [f'unknown field "{u}"' for u in res.unknown_fields]


def _invalid(name: str, field: str, value: Any, message: str) -> Exception:
    cause = Cause(INVALID, f"Invalid value: {go_value(value)}: {message}", field)
    return invalid("TokenRequest", name, [cause], group=GROUP)


def _validate(seconds: Any) -> None:
    """ValidateTokenRequest (kube reports it with an empty name)."""
    if not isinstance(seconds, int) or seconds < sa_api.MIN_EXPIRATION:
        raise _invalid("", "spec.expirationSeconds", seconds,
                       "may not specify a duration less than 10 minutes")
    if seconds > sa_api.MAX_EXPIRATION:
        raise _invalid("", "spec.expirationSeconds", seconds,
                       "may not specify a duration larger than 2^32 seconds")


def _bound_objects(core: ApiCore, namespace: str, sa_name: str, ref: Any) -> dict[str, Obj]:
    """The objects a token is bound to, as keywords of bound_claims (pod, secret, node)."""
    if not isinstance(ref, dict):
        return {}
    kind, api_version = str(ref.get("kind") or ""), str(ref.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    if group or kind not in _BINDABLE:
        raise BadRequest(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
    name = str(ref.get("name") or "")
    obj = core.get(_rt(core, kind), None if kind == "Node" else namespace, name)
    bound = {kind.lower(): obj}
    if kind == "Pod":
        spec = obj.get("spec") or {}
        if spec.get("serviceAccountName") != sa_name:
            raise BadRequest(f'cannot bind token for serviceaccount "{sa_name}" to pod running with '
                             "different serviceaccount name.")
        if spec.get("nodeName"):
            bound["node"] = _node(core, str(spec["nodeName"]))
    uid = (obj.get("metadata") or {}).get("uid")
    if ref.get("uid") and ref["uid"] != uid:
        raise Conflict(f'Operation cannot be fulfilled on {kind} "{name}": the UID in the bound object '
                       f"reference ({ref['uid']}) does not match the UID in record. The object might have "
                       "been deleted and then recreated", name=name, kind=kind)
    return bound


def _node(core: ApiCore, name: str) -> Obj:
    """The pod's node for the token's node claim; only its name when the Node object is gone (kube)."""
    try:
        return core.get(_rt(core, "Node"), None, name)
    except NotFound:
        return {"metadata": {"name": name}}
