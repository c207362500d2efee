"""HttpClient: the `Client` interface over the Kubernetes REST API (httpx on trio, via anyio).

Owns: REST paths for a `ResourceType`, HTTPS with the cluster's CA and a bearer token or a client
certificate (`load_pem_chain`: a kubeconfig's client-certificate-data / client-key-data), turning
`Status` replies into `orchestra.api.errors` exceptions (by reason, else by HTTP code), transport
failures into `TransportError` (an `OSError`, which the Informer already retries), watch streams
read line by line as an async generator that closes its response, reading a kubeconfig, and failing
over between several API servers of one cluster (`set_servers`, as a k3s agent's client does): a
request that could not connect moves to the next server and is sent there (it never reached the
first, so nothing is sent twice; a GET is also sent again after a broken connection); any other
broken connection moves later requests on and is raised as `TransportError` for the caller to retry.
Must not import: apiserver, reconcilers, node, net, cli.
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import attrs
import httpx
import orjson
import trio
from ruamel.yaml import YAML

from orchestra.api import errors
from orchestra.api.metrics import API_VERSION as METRICS_API_VERSION
from orchestra.api.registry import DEFAULT_REGISTRY, Registry, ResourceType
from orchestra.client.base import WatchEvent
from orchestra.objects import Obj

MERGE_PATCH = "application/merge-patch+json"
CONNECT_SECONDS = 5.0  # with several servers: a server that does not accept within this is passed over
log = logging.getLogger("orchestra.client")

_BY_REASON: dict[str, type[errors.ApiError]] = {
    cls.reason: cls
    for cls in (
        errors.BadRequest, errors.Unauthorized, errors.Forbidden, errors.NotFound, errors.MethodNotAllowed,
        errors.NotAcceptable, errors.AlreadyExists, errors.Conflict, errors.Gone,
        errors.RequestEntityTooLarge, errors.UnsupportedMediaType, errors.Invalid, errors.TooManyRequests,
        errors.InternalError, errors.Timeout,
    )
}  # fmt: skip
_BY_CODE: dict[int, type[errors.ApiError]] = {
    400: errors.BadRequest, 401: errors.Unauthorized, 403: errors.Forbidden, 404: errors.NotFound,
    405: errors.MethodNotAllowed, 406: errors.NotAcceptable, 409: errors.Conflict, 410: errors.Gone,
    413: errors.RequestEntityTooLarge, 415: errors.UnsupportedMediaType, 422: errors.Invalid,
    429: errors.TooManyRequests, 504: errors.Timeout,
}  # fmt: skip


class TransportError(OSError):
    """The server could not be reached or the connection broke (not an API answer)."""


class KubeconfigError(ValueError):
    """A kubeconfig that is missing, unreadable, or names no usable cluster."""


@attrs.frozen
class Endpoint:
    """Where and how to reach one API server (what a kubeconfig context resolves to)."""

    server: str
    token: str | None = None
    ca_data: bytes | None = None  # PEM
    namespace: str = "default"
    cert_data: bytes | None = None  # the client certificate (PEM), with its key
    key_data: bytes | None = None

    @classmethod
    def from_kubeconfig(cls, path: Path | str, *, context: str | None = None) -> Endpoint:
        path = Path(path).expanduser()
        try:
            doc = YAML(typ="safe").load(path.read_text())
        except OSError as exc:
            raise KubeconfigError(f"cannot read kubeconfig {path}: {exc.strerror or exc}") from None
        if not isinstance(doc, dict):
            raise KubeconfigError(f"kubeconfig {path} is not a mapping")
        ctx_name = context or doc.get("current-context")
        ctx = _named(doc.get("contexts"), ctx_name, "context") or {}
        cluster = _named(doc.get("clusters"), ctx.get("cluster"), "cluster")
        if cluster is None and len(doc.get("clusters") or []) == 1:
            cluster = doc["clusters"][0].get("cluster") or {}
        if not cluster or not cluster.get("server"):
            raise KubeconfigError(f"kubeconfig {path}: no cluster server configured")
        user = _named(doc.get("users"), ctx.get("user"), "user") or {}
        return cls(server=str(cluster["server"]).rstrip("/"), token=_token(user), ca_data=_ca(cluster, path),
                   namespace=str(ctx.get("namespace") or "default"),
                   cert_data=_pem(user, "client-certificate", path), key_data=_pem(user, "client-key", path))


def _named(items: Any, name: Any, field: str) -> dict[str, Any] | None:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            value = item.get(field)
            return value if isinstance(value, dict) else {}
    return None


def _token(user: dict[str, Any]) -> str | None:
    if user.get("token"):
        return str(user["token"])
    if user.get("tokenFile"):
        return Path(user["tokenFile"]).read_text().strip()
    return None


def _pem(user: dict[str, Any], field: str, kubeconfig: Path) -> bytes | None:
    """A user's `<field>-data` (base64) or `<field>` (a file, relative to the kubeconfig)."""
    if user.get(f"{field}-data"):
        return base64.b64decode(user[f"{field}-data"])
    if user.get(field):
        return (kubeconfig.parent / str(user[field])).read_bytes()
    return None


def load_pem_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """Give `ctx` a client certificate held in memory (ssl only loads files: they live in a private
    directory for the moment it takes)."""
    with tempfile.TemporaryDirectory(prefix="orchestra-cert-") as tmp:  # mode 0700
        cert_file, key_file = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert_file.write_bytes(cert)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        ctx.load_cert_chain(str(cert_file), str(key_file))


def _ca(cluster: dict[str, Any], kubeconfig: Path) -> bytes | None:
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(cluster["certificate-authority-data"])
    if cluster.get("certificate-authority"):
        return (kubeconfig.parent / str(cluster["certificate-authority"])).read_bytes()
    return None


def resource_path(
    rt: ResourceType, namespace: str | None = None, name: str | None = None, subresource: str = ""
) -> str:
    """`/apis/apps/v1/namespaces/default/deployments/web[/scale]`; no namespace = all namespaces."""
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    if rt.namespaced and namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{rt.plural}"
    if name:
        base += f"/{name}"
    return f"{base}/{subresource}" if subresource else base


def api_error(status: Any, http_code: int, fallback: str = "") -> errors.ApiError:
    """The `errors` exception for a `Status` body (or for a bare HTTP code when there is none)."""
    if not isinstance(status, dict) or status.get("kind") != "Status":
        status = {"message": fallback or f"the server answered HTTP {http_code}", "code": http_code}
    cls = _BY_REASON.get(str(status.get("reason") or "")) or _BY_CODE.get(http_code)
    details = status.get("details") if isinstance(status.get("details"), dict) else {}
    causes = [errors.Cause(str(c.get("reason", "")), str(c.get("message", "")), str(c.get("field", "")))
              for c in details.get("causes") or [] if isinstance(c, dict)]
    err = (cls or errors.ApiError)(str(status.get("message") or ""), name=str(details.get("name") or ""),
                                   group=str(details.get("group") or ""), kind=str(details.get("kind") or ""),
                                   causes=causes, retry_after=details.get("retryAfterSeconds"))
    if cls is None:  # an unusual code (e.g. 503): keep what the server said
        err.code, err.reason = http_code, str(status.get("reason") or "Unknown")
    return err


class HttpClient:
    """The `Client` protocol over HTTPS; use as `async with HttpClient.from_kubeconfig(p) as c:`."""

    def __init__(self, endpoint: Endpoint, *, registry: Registry = DEFAULT_REGISTRY, timeout: float = 30.0,
                 field_manager: str = "orchestra", servers: Iterable[str] = ()) -> None:
        self.endpoint = endpoint  # (its `server` is the one this client was made for; `url`: the current)
        self._servers = list(dict.fromkeys([endpoint.server, *(s.rstrip("/") for s in servers)]))
        self.registry = registry
        self.field_manager = field_manager
        headers = {"Accept": "application/json", "User-Agent": "orchestra-client"}
        if endpoint.token:
            headers["Authorization"] = f"Bearer {endpoint.token}"
        verify: ssl.SSLContext | bool = True
        if endpoint.ca_data:
            verify = ssl.create_default_context(cadata=endpoint.ca_data.decode())
        if endpoint.cert_data and endpoint.key_data:
            verify = verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()
            load_pem_chain(verify, endpoint.cert_data, endpoint.key_data)
        self._tls = verify
        self._http = httpx.AsyncClient(
            base_url=endpoint.server, headers=headers, verify=verify,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_SECONDS)),
        )

    @classmethod
    def from_kubeconfig(cls, path: Path | str, *, context: str | None = None, **kw: Any) -> HttpClient:
        return cls(Endpoint.from_kubeconfig(path, context=context), **kw)

    def use_client_certificate(self, cert: bytes, key: bytes) -> None:
        """Present this certificate from the next connection on (a rotated node certificate); open
        connections keep the one they started with."""
        if not isinstance(self._tls, ssl.SSLContext):
            raise ValueError("this client has no TLS context of its own (no CA or client certificate)")
        load_pem_chain(self._tls, cert, key)
        self.endpoint = attrs.evolve(self.endpoint, cert_data=cert, key_data=key)

    @property
    def url(self) -> str:
        """The API server requests go to now."""
        return str(self._http.base_url).rstrip("/")

    @property
    def servers(self) -> list[str]:
        """The servers this client fails over between, in the order it tries them."""
        return list(self._servers)

    def set_servers(self, servers: Iterable[str]) -> None:
        """Fail over between these servers (every server of the cluster, as learned); the current one
        stays in use, and known, until it fails."""
        known = list(dict.fromkeys(s.rstrip("/") for s in servers))
        if self.url not in known:
            known.append(self.url)
        self._servers = known

    def _fail_over(self, server: str, why: BaseException) -> bool:
        """`server` failed: move to the next known server unless another request moved on already.
        False when there is no other server."""
        if len(self._servers) < 2:
            return False
        if self.url == server:
            index = self._servers.index(server) if server in self._servers else -1
            following = self._servers[(index + 1) % len(self._servers)]
            log.warning("API server %s failed (%s): moving to %s", server, str(why) or type(why).__name__,
                        following)
            self._http.base_url = httpx.URL(following)
        return True

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def kind(self, kind: str) -> ResourceType:
        rt = self.registry.by_kind(kind)
        if rt is None:
            raise KeyError(kind)
        return rt

    # --- plumbing ----------------------------------------------------------------------------

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None,
                      content_type: str = "application/json") -> Any:
        """One request; the decoded JSON answer, or the mapped `ApiError` / `TransportError`."""
        resp = await self._send(method, path, params=params, body=body, content_type=content_type)
        data = _json(resp.content)
        if resp.status_code >= 400:
            raise api_error(data, resp.status_code, resp.text.strip())
        return data

    async def _send(self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None,
                    content_type: str = "application/json") -> httpx.Response:
        headers = {}
        content = None
        if body is not None:
            content = body if isinstance(body, bytes) else orjson.dumps(body)
            headers["Content-Type"] = content_type
        for attempt in range(len(self._servers)):
            server = self.url
            try:
                return await self._http.request(method, path, params=params, content=content, headers=headers)
            except httpx.HTTPError as exc:
                # not sent (it could not connect), or a read that may be sent again: the next server
                again = _unsent(exc) or method == "GET"
                if not self._fail_over(server, exc) or not again or attempt + 1 >= len(self._servers):
                    why = str(exc) or type(exc).__name__
                    raise TransportError(f"{method} {path} at {server}: {why}") from exc
        raise AssertionError("unreachable: the loop returns or raises")

    def _write_params(self) -> dict[str, str]:
        return {"fieldManager": self.field_manager}

    # --- the Client protocol -----------------------------------------------------------------

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        return await self.request("GET", resource_path(rt, namespace, name))  # type: ignore[no-any-return]

    async def list(self, rt: ResourceType, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None) -> tuple[list[Obj], str]:
        params = _selectors(label_selector, field_selector)
        data = await self.request("GET", resource_path(rt, namespace), params=params)
        kind, api_version = rt.kind, rt.api_version
        items = data.get("items") or []
        for item in items:  # list items carry no kind/apiVersion on the wire; the cache wants them
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
        return items, str((data.get("metadata") or {}).get("resourceVersion") or "")

    async def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        params = {"watch": "true", **_selectors(label_selector, field_selector)}
        if resource_version:
            params["resourceVersion"] = resource_version
        timeout = httpx.Timeout(self._http.timeout.connect, read=None)
        for attempt in range(len(self._servers)):
            server, opened = self.url, False
            try:
                async with self._http.stream(
                    "GET", resource_path(rt, namespace), params=params, timeout=timeout
                ) as resp:
                    opened = True
                    if resp.status_code >= 400:
                        body = await resp.aread()
                        raise api_error(_json(body), resp.status_code, body.decode(errors="replace").strip())
                    lines = resp.aiter_lines()
                    try:
                        async for line in lines:
                            if line.strip():
                                event = orjson.loads(line)
                                yield str(event.get("type")), event.get("object") or {}
                    finally:
                        await _unwind(lines)
                return
            except httpx.HTTPError as exc:
                if (not self._fail_over(server, exc) or opened or not _unsent(exc)
                        or attempt + 1 >= len(self._servers)):
                    why = str(exc) or type(exc).__name__
                    raise TransportError(f"watch {rt.plural} at {server}: {why}") from exc

    async def create(self, rt: ResourceType, namespace: str | None, obj: Obj) -> Obj:
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        return await self.request("POST", resource_path(rt, ns), params=self._write_params(),  # type: ignore[no-any-return]
                                  body=_typed(rt, obj))

    async def update(self, rt: ResourceType, obj: Obj) -> Obj:
        m = obj["metadata"]
        return await self.request("PUT", resource_path(rt, m.get("namespace"), m["name"]),  # type: ignore[no-any-return]
                                  params=self._write_params(), body=_typed(rt, obj))

    async def update_status(self, rt: ResourceType, obj: Obj) -> Obj:
        m = obj["metadata"]
        return await self.request("PUT", resource_path(rt, m.get("namespace"), m["name"], "status"),  # type: ignore[no-any-return]
                                  params=self._write_params(), body=_typed(rt, obj))

    async def patch(self, rt: ResourceType, namespace: str | None, name: str, patch: Any, *,
                    patch_type: str = MERGE_PATCH, subresource: str = "") -> Obj:
        return await self.request("PATCH", resource_path(rt, namespace, name, subresource),  # type: ignore[no-any-return]
                                  params=self._write_params(), body=patch, content_type=patch_type)

    async def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        uid: str | None = None,
    ) -> Obj | None:
        opts: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            opts["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            opts["gracePeriodSeconds"] = grace_period_seconds
        if uid:
            opts["preconditions"] = {"uid": uid}
        data = await self.request("DELETE", resource_path(rt, namespace, name), body=opts)
        # The wire does not say whether the object is gone; one that still exists (graceful
        # deletion, finalizers) carries a deletionTimestamp, one deleted outright usually not.
        if (
            isinstance(data, dict)
            and data.get("kind") != "Status"
            and (data.get("metadata") or {}).get("deletionTimestamp")
        ):
            return data
        return None

    async def get_scale(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        scale = await self.request("GET", resource_path(rt, namespace, name, "scale"))
        return scale  # type: ignore[no-any-return]

    async def update_scale(self, rt: ResourceType, scale: Obj) -> Obj:
        m = scale["metadata"]
        path = resource_path(rt, m.get("namespace"), m["name"], "scale")
        updated = await self.request("PUT", path, params=self._write_params(), body=scale)
        return updated  # type: ignore[no-any-return]

    async def bind(self, namespace: str, name: str, node_name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        await self.request("POST", resource_path(self.kind("Pod"), namespace, name, "binding"), body=body)

    async def finalize_namespace(self, obj: Obj) -> Obj:
        rt = self.kind("Namespace")
        return await self.request("PUT", resource_path(rt, None, obj["metadata"]["name"], "finalize"),  # type: ignore[no-any-return]
                                  body=_typed(rt, obj))

    async def create_token(self, namespace: str, name: str, request: Obj) -> Obj:
        path = resource_path(self.kind("ServiceAccount"), namespace, name, "token")
        return await self.request("POST", path, body=request)  # type: ignore[no-any-return]

    # --- beyond the protocol -----------------------------------------------------------------

    async def pod_logs(
        self,
        namespace: str,
        name: str,
        *,
        container: str | None = None,
        tail_lines: int | None = 20,
        previous: bool = False,
    ) -> str:
        """GET pods/{name}/log (text). A server without a node agent answers 400: that raises BadRequest."""
        params: dict[str, str] = {}
        if tail_lines is not None:
            params["tailLines"] = str(tail_lines)
        if container:
            params["container"] = container
        if previous:
            params["previous"] = "true"
        resp = await self._send("GET", resource_path(self.kind("Pod"), namespace, name, "log"), params=params)
        if resp.status_code >= 400:
            raise api_error(_json(resp.content), resp.status_code, resp.text.strip())
        return resp.text


class HttpMetricsClient:
    """The MetricsClient interface over HTTP: GET /apis/metrics.k8s.io/v1beta1/namespaces/<ns>/pods."""

    def __init__(self, client: HttpClient) -> None:
        self.client = client

    async def pod_metrics(self, namespace: str, label_selector: str = "") -> list[Obj]:
        params = {"labelSelector": label_selector} if label_selector else None
        path = f"/apis/{METRICS_API_VERSION}/namespaces/{namespace}/pods"
        listed = await self.client.request("GET", path, params=params)
        return [i for i in (listed or {}).get("items") or [] if isinstance(i, dict)]


async def _unwind(agen: AsyncIterator[str]) -> None:
    """Finish httpx's chain of nested async generators (lines <- text <- bytes <- raw <- httpcore).

    `aclose()` on the outer one would leave the inner ones suspended for the garbage collector,
    which trio reports as a ResourceWarning. Resuming the chain inside a cancelled scope raises
    Cancelled at its innermost await instead, so every generator in it ends by that exception.
    """
    with trio.CancelScope() as scope:
        scope.cancel()
        while True:
            try:
                await agen.__anext__()
            except StopAsyncIteration:
                return
            except httpx.HTTPError:
                return  # the connection is gone: that also ended the chain


def _unsent(exc: httpx.HTTPError) -> bool:
    """The request never reached the server: it could not connect (refused, timed out, TLS)."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


def _selectors(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
    params = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


def _typed(rt: ResourceType, obj: Obj) -> Obj:
    """The body with kind/apiVersion filled in (the REST API wants them; LocalClient does not)."""
    if obj.get("kind") and obj.get("apiVersion"):
        return obj
    return {"kind": rt.kind, "apiVersion": rt.api_version, **obj}


def _json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
