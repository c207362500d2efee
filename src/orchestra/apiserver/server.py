"""The Kubernetes REST API over HTTP: an ASGI app, served by orchestra's h11 server (serve.py; hypercorn's
trio worker with ORCHESTRA_HTTP_SERVER=hypercorn).

Owns: routing to the API core, content negotiation (JSON, server-side Tables), watch requests
(streamed by watchserve.py), and the HTTP shape of errors. Every request first passes the request
chain (chain.py: audit, authentication, authorization). Streaming pod subresources (log, exec,
attach, portforward) are delegated to a PodStreams provider when the node agent supplies one;
serviceaccounts/token is the TokenRequest verb (api/request/tokenrequest.py), TokenReview and
SelfSubjectReview are answered by apiserver/auth/reviews.py.
Must not import: cli, reconcilers, node, or any runtime adapter (streams use only the Runtime protocol).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs
import orjson
import trio

from orchestra.api import tables
from orchestra.api.errors import (
    ApiError,
    BadRequest,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    path_not_found,
)
from orchestra.api.machinery.selectors import parse_label_selector
from orchestra.api.metrics import METRICS_REGISTRY
from orchestra.api.registry import ResourceType
from orchestra.api.request.bodies import Decoded
from orchestra.api.request.core import ApiCore
from orchestra.api.request.custom import field_selector
from orchestra.api.request.deletion import DELETE_OPTIONS, DeleteOptions, delete_options
from orchestra.api.request.eviction import evict
from orchestra.api.request.listoptions import send_initial_events, validate_list_options
from orchestra.api.request.stored import parse_rv
from orchestra.api.request.tokenrequest import create_token
from orchestra.api.request.typemeta import check_body_types
from orchestra.api.request.types import WriteOptions, WriteResult
from orchestra.api.request.watch import WatchStream
from orchestra.api.serviceaccount import API_AUDIENCES
from orchestra.apiserver import openapi
from orchestra.apiserver.audit.log import AuditLog
from orchestra.apiserver.auth import reviews
from orchestra.apiserver.auth.accessreviews import access_review
from orchestra.apiserver.auth.authn import AdminToken, RequestAuthenticator
from orchestra.apiserver.auth.authz import Authorizer
from orchestra.apiserver.auth.rbacindex import RbacIndex
from orchestra.apiserver.chain import CACERTS_PATH, PUBLIC_PATHS, RequestChain
from orchestra.apiserver.components import WARNING as COMPONENT_STATUS_WARNING
from orchestra.apiserver.components import ComponentStatuses
from orchestra.apiserver.discovery import Discovery, version_info, wants_aggregated
from orchestra.apiserver.http import (
    Receive,
    Request,
    Scope,
    Send,
    send_bytes,
    send_error,
    send_json,
    warning_headers,
)
from orchestra.apiserver.metricsapi import PREFIX as METRICS_PREFIX
from orchestra.apiserver.metricsapi import MetricsApi
from orchestra.apiserver.proxy import ProxyHandler
from orchestra.apiserver.routes import Route, parse_resource_path
from orchestra.apiserver.watchserve import WatchLimits, WatchStatistics, serve_watch
from orchestra.store import StoreUnavailableError

WATCH_DEFAULT_TIMEOUT = 1800.0  # kube-apiserver uses 30-60 min for watches without timeoutSeconds


class PodStreams(Protocol):
    """Implemented by the node layer: serves pods/log, pods/exec, pods/attach, pods/portforward."""

    async def handle(self, req: Request, route: Route, pod: dict[str, Any]) -> None: ...


class ApiServer:
    def __init__(self, core: ApiCore, *, token: str | None, server_address: str = "127.0.0.1:6443",
                 pod_streams: PodStreams | None = None, bookmark_interval: float = 60.0,
                 metrics: MetricsApi | None = None, watch_limits: WatchLimits | None = None,
                 authenticator: RequestAuthenticator | None = None, authorizer: Authorizer | None = None,
                 audit: AuditLog | None = None, rbac: RbacIndex | None = None,
                 ca_pem: bytes | None = None) -> None:
        """`metrics`: serves metrics.k8s.io (and discovery lists it) when given; `watch_limits`:
        page size, write size and the slow-watcher bound of watches (watchserve.py);
        `authenticator`: who may ask (default: just `token`, the admin's; neither: no authentication);
        `authorizer`: the seam after it (default AlwaysAllow); `audit`: the audit log, if any;
        `rbac`: the RBAC index SelfSubjectRulesReview reads; `ca_pem`: the cluster CA served to anyone at
        /cacerts (k3s' endpoint: `orchestra join` checks it against its token's pin before trusting it)."""
        self.ca_pem = ca_pem
        self.rbac = rbac
        self.core = core
        self.token = token
        if authenticator is None and token is not None:
            authenticator = RequestAuthenticator([AdminToken(token, API_AUDIENCES)],
                                                 api_audiences=API_AUDIENCES)
        self.authenticator = authenticator
        self.chain = RequestChain(authenticator, authorizer=authorizer, audit=audit)
        self.metrics = metrics
        self.discovery = Discovery(
            core.registry, server_address, read_only=METRICS_REGISTRY if metrics else None
        )
        self.openapi = openapi.OpenApi(core.registry, core.schema)  # documents built on first request
        self.pod_streams = pod_streams
        self.proxy = ProxyHandler(core)  # pods/proxy, services/proxy, nodes/proxy
        self.component_statuses = ComponentStatuses(core.store)  # the app adds its components' probes
        self.bookmark_interval = bookmark_interval
        self.watch_limits = watch_limits or WatchLimits()
        self.watch_stats = WatchStatistics()
        self.ready = False
        self.requests_total = 0

    # --- ASGI entry ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] not in ("http", "websocket"):
            return
        req = Request.from_scope(scope, receive, send)
        self.requests_total += 1
        await self.chain.serve(req, self._handle, self._fail)

    async def _handle(self, req: Request) -> None:
        try:
            await self._dispatch(req)
        except ApiError as err:
            await self._fail(req, err)
        except trio.Cancelled:
            raise
        except StoreUnavailableError as exc:  # etcd away: kube-apiserver's 503, and the client retries
            await self._fail(req, ServiceUnavailable(f"storage is unavailable: {exc}"))
        except Exception as exc:
            await self._fail(req, InternalError(f"Internal error occurred: {type(exc).__name__}: {exc}"))

    async def _fail(self, req: Request, err: ApiError) -> None:
        if req.audit is not None:
            req.audit.status = err.status()
        if req.scope["type"] == "websocket":
            # refuse the upgrade with the Status as a plain HTTP answer (kubectl shows its message)
            body = orjson.dumps(err.status())
            await req.send(
                {
                    "type": "websocket.http.response.start",
                    "status": err.code,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await req.send({"type": "websocket.http.response.body", "body": body})
            return
        await send_error(req.send, err)

    # --- dispatch -----------------------------------------------------------------------------

    async def _dispatch(self, req: Request) -> None:
        path = req.path.rstrip("/") or "/"
        if path == CACERTS_PATH and self.ca_pem is not None:
            await send_bytes(req.send, 200, self.ca_pem, b"application/x-pem-file")
            return
        if path in PUBLIC_PATHS - {CACERTS_PATH}:
            ok = self.ready or path == "/livez"
            await send_bytes(
                req.send, 200 if ok else 503, b"ok" if ok else b"not ready", b"text/plain; charset=utf-8"
            )
            return
        if path == "/version":
            await send_json(req.send, 200, version_info())
            return
        parts = path.strip("/").split("/")
        is_discovery = (
            parts[0] in ("api", "apis") and len(parts) <= 3 and (parts[0] == "apis" or len(parts) <= 2)
        )
        if is_discovery and await self._discovery(req, parts):
            return
        if parts[0] == "openapi":
            await self._openapi(req, parts)
            return
        if self.metrics is not None and tuple(parts[:3]) == METRICS_PREFIX:
            await self.metrics.serve(req, parts[3:])
            return
        route = parse_resource_path(self.core.registry, parts)
        if route is None:
            raise path_not_found()
        if route.rt.custom is not None and route.rt.custom.warning:  # a deprecated custom version
            req = attrs.evolve(req, send=_with_headers(req.send, warning_headers([route.rt.custom.warning])))
        await self._resource(req, route)

    async def _discovery(self, req: Request, parts: list[str]) -> bool:
        d = self.discovery
        if parts == ["api"] or parts == ["apis"]:
            agg = wants_aggregated(req.headers.get("accept", ""))
            if agg:
                await send_bytes(req.send, 200, d.aggregated(parts == ["api"], agg), agg.encode())
            else:
                await send_bytes(req.send, 200, d.api_versions() if parts == ["api"] else d.api_group_list())
            return True
        if parts[0] == "api" and len(parts) == 2:
            body = d.resource_list("", parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            body = d.api_group(parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            body = d.resource_list(parts[1], parts[2])
        else:
            return False
        if body is None:
            raise path_not_found()
        await send_bytes(req.send, 200, body)
        return True

    async def _openapi(self, req: Request, parts: list[str]) -> None:
        await openapi.serve(self.openapi, req, parts)

    # --- resources ----------------------------------------------------------------------------

    async def _resource(self, req: Request, route: Route) -> None:
        m = req.method
        if route.rt.verbs == ("create",):
            await self._review(req, route)
        elif (route.rt.group, route.rt.kind) == ("", "ComponentStatus") and not route.subresource:
            await self._component_statuses(req, route)
        elif route.subresource:
            await self._subresource(req, route)
        elif route.name is None:
            if m == "GET":
                if req.flag("watch"):
                    await self._watch(req, route)
                else:
                    await self._list(req, route)
            elif m == "POST":
                body, opts = await self._write_body(req)
                await self._write(req, await self.core.create(route.rt, route.namespace, body, opts))
            elif m == "DELETE":
                await self._delete_collection(req, route)
            else:
                raise MethodNotAllowed(
                    f"the server does not allow this method on the requested resource ({m})"
                )
        elif m == "GET":
            obj = self.core.get(route.rt, route.namespace, route.name)
            await self._send_object(req, route.rt, obj)
        elif m == "PUT":
            body, opts = await self._write_body(req)
            await self._write(req, await self.core.update(route.rt, route.namespace, route.name, body, opts))
        elif m == "PATCH":
            await self._patch(req, route)
        elif m == "DELETE":
            await self._delete(req, route)
        else:
            raise MethodNotAllowed(f"the server does not allow this method on the requested resource ({m})")

    async def _write_body(self, req: Request) -> tuple[Any, WriteOptions]:
        """A create/update body and the write options, with what decoding found for strictness."""
        opts = self._write_opts(req)
        decoded = await req.decoded_body()
        assert decoded is not None
        return decoded.value, attrs.evolve(opts, decode_findings=_findings(decoded))

    def _write_opts(self, req: Request) -> WriteOptions:
        dry = req.arg("dryRun")
        if dry not in (None, "", "All"):
            raise BadRequest(f'dryRun: Unsupported value: "{dry}": supported values: "All"')
        return WriteOptions(
            dry_run=dry == "All",
            field_validation=req.arg("fieldValidation") or "Warn",  # kube-apiserver's default
            field_manager=req.arg("fieldManager") or "",
            force=req.flag("force"),
            user=req.user,
        )

    async def _write(self, req: Request, result: WriteResult) -> None:
        status = 201 if result.created else 200
        await send_json(req.send, status, result.obj, warning_headers(result.warnings))

    async def _patch(self, req: Request, route: Route) -> None:
        body = await req.body()
        result = await self.core.patch(route.rt, route.namespace, route.name or "", req.content_type, body,
                                       self._write_opts(req), subresource=route.subresource)
        await self._write(req, result)

    async def _delete(self, req: Request, route: Route) -> None:
        opts = await self._delete_opts(req)
        obj, gone = await self.core.delete(route.rt, route.namespace, route.name or "", opts)
        status = 200 if gone or opts.propagation_policy not in ("Foreground", "Orphan") else 202
        await send_json(req.send, status, obj)

    async def _delete_opts(self, req: Request) -> DeleteOptions:
        body = await req.json_body(allow_empty=True)
        body = {} if body is None else body
        check_body_types(self.core.schema, body, DELETE_OPTIONS, kind="DeleteOptions")
        return delete_options(body, propagation_policy=req.arg("propagationPolicy"),
                              grace_period_seconds=req.int_arg("gracePeriodSeconds"),
                              dry_run=req.arg("dryRun"))

    async def _delete_collection(self, req: Request, route: Route) -> None:
        listed = self._do_list(req, route)
        opts = await self._delete_opts(req)
        items = []
        for obj in listed.items:
            try:
                deleted, _ = await self.core.delete(
                    route.rt, obj["metadata"].get("namespace"), obj["metadata"]["name"], opts
                )
            except NotFound:
                continue
            items.append(deleted)
        await send_json(
            req.send,
            200,
            {
                "kind": route.rt.list_kind,
                "apiVersion": route.rt.api_version,
                "metadata": {"resourceVersion": str(self.core.store.revision)},
                "items": items,
            },
        )

    def _do_list(self, req: Request, route: Route) -> Any:
        return self.core.list(
            route.rt,
            route.namespace,
            label_selector=parse_label_selector(req.arg("labelSelector")),
            field_selector=field_selector(route.rt, req.arg("fieldSelector")),
            resource_version=req.arg("resourceVersion"),
            limit=req.int_arg("limit"),
            continue_token=req.arg("continue"),
            resource_version_match=req.arg("resourceVersionMatch"),
            send_initial_events=req.arg("sendInitialEvents"),
        )

    async def _list(self, req: Request, route: Route) -> None:
        listed = self._do_list(req, route)
        if _wants_table(req):
            await send_json(
                req.send,
                200,
                self._table(req, route.rt, listed.items, listed.resource_version, listed.continue_token),
            )
            return
        lm: dict[str, Any] = {"resourceVersion": listed.resource_version}
        if listed.continue_token:
            lm["continue"] = listed.continue_token
            lm["remainingItemCount"] = listed.remaining
        body = orjson.dumps(
            {
                "kind": route.rt.list_kind,
                "apiVersion": route.rt.api_version,
                "metadata": lm,
                "items": listed.items,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )
        await send_bytes(req.send, 200, body)

    def _table(
        self, req: Request, rt: ResourceType, items: list[dict[str, Any]], rv: str, cont: str = ""
    ) -> dict[str, Any]:
        t = tables.table(
            rt,
            items,
            now=datetime.now(UTC),
            include_object=req.arg("includeObject") or "Metadata",
            resource_version=rv,
        )
        if cont:
            t["metadata"]["continue"] = cont
        return t

    async def _send_object(self, req: Request, rt: ResourceType, obj: dict[str, Any]) -> None:
        if _wants_table(req):
            await send_json(
                req.send, 200, self._table(req, rt, [obj], obj["metadata"].get("resourceVersion", ""))
            )
        else:
            await send_json(req.send, 200, obj)

    async def _subresource(self, req: Request, route: Route) -> None:
        rt, sub, m = route.rt, route.subresource, req.method
        name = route.name or ""
        own = (("Namespace", "finalize"), ("Pod", "ephemeralcontainers"),
               ("CertificateSigningRequest", "approval"))
        if (sub == "status" or (rt.kind, sub) in own) and rt.has_subresource(sub):
            if m == "GET":
                await self._send_object(req, rt, self.core.get(rt, route.namespace, name))
            elif m == "PUT":
                body, opts = await self._write_body(req)
                updated = await self.core.update(rt, route.namespace, name, body, opts, subresource=sub)
                await self._write(req, updated)
            elif m == "PATCH":
                await self._patch(req, route)
            else:
                raise MethodNotAllowed(f"{m} is not supported on {rt.plural}/{sub}")
        elif sub == "scale" and rt.has_subresource("scale"):
            if m == "GET":
                await send_json(req.send, 200, self.core.get_scale(rt, route.namespace, name))
            elif m in ("PUT", "PATCH"):
                given: Any = await req.json_body() if m == "PUT" else await req.body()
                scale = await self.core.update_scale(
                    rt,
                    route.namespace,
                    name,
                    given,
                    None if m == "PUT" else req.content_type,
                    self._write_opts(req),
                )
                await send_json(req.send, 200, scale)
            else:
                raise MethodNotAllowed(f"{m} is not supported on {rt.plural}/scale")
        elif rt.kind == "Pod" and sub == "binding" and m == "POST":
            await self.core.bind(route.namespace or "", name, await req.json_body())
            await send_json(
                req.send,
                201,
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
            )
        elif rt.kind == "Pod" and sub == "eviction" and m == "POST":
            await self._evict(req, route)
        elif rt.kind == "ServiceAccount" and sub == "token" and m == "POST":
            body = await req.json_body()
            answered, warnings = await create_token(self.core, route.namespace or "", name, body)
            await send_json(req.send, 201, answered, warning_headers(warnings))
        elif sub.split("/")[0] == "proxy" and rt.has_subresource("proxy"):
            await self.proxy.handle(req, route)
        elif rt.kind == "Pod" and sub in ("log", "exec", "portforward", "attach"):
            pod = self.core.get(rt, route.namespace, name)
            if self.pod_streams is None:
                raise BadRequest(f"pods/{sub} needs a node agent, and none is running in this server")
            await self.pod_streams.handle(req, route, pod)
        else:
            raise path_not_found()

    async def _review(self, req: Request, route: Route) -> None:
        """TokenReview, SelfSubjectReview and the access reviews (auth/accessreviews.py): create-only,
        answered from who is asking, never stored."""
        if req.method != "POST" or route.name is not None:
            raise MethodNotAllowed(
                f"the server does not allow this method on the requested resource ({req.method})")
        body = await req.json_body(allow_empty=route.rt.kind == "SelfSubjectReview")
        if route.rt.kind == "TokenReview":
            if self.authenticator is None:
                raise NotFound("the server could not find the requested resource")
            await send_json(req.send, 201, reviews.token_review(self.authenticator, body))
        elif req.user is None:  # a server without authentication knows nobody
            raise NotFound("the server could not find the requested resource")
        elif route.rt.kind == "SelfSubjectReview":
            await send_json(req.send, 201, reviews.self_subject_review(req.user, body))
        else:
            await send_json(req.send, 201, access_review(route.rt.kind, body, req.user, route.namespace,
                                                         self.chain.authorizer, self.rbac))

    async def _component_statuses(self, req: Request, route: Route) -> None:
        """GET componentstatuses[/NAME]: computed now from the components (components.py)."""
        if req.method != "GET" or req.flag("watch"):
            raise MethodNotAllowed(
                f"the server does not allow this method on the requested resource ({req.method})")
        warn = warning_headers([COMPONENT_STATUS_WARNING])
        if route.name is not None:
            obj = self.component_statuses.get(route.name)
            body = self._table(req, route.rt, [obj], "") if _wants_table(req) else obj
        else:
            items = self.component_statuses.list()
            body = self._table(req, route.rt, items, "") if _wants_table(req) else {
                "kind": "ComponentStatusList", "apiVersion": "v1", "metadata": {}, "items": items}
        await send_json(req.send, 200, body, warn)

    async def _evict(self, req: Request, route: Route) -> None:
        """pods/eviction (policy/v1 Eviction): a delete that honours PodDisruptionBudgets — 429
        TooManyRequests while the pod's budget allows no disruption, 500 for a pod under several
        budgets, else the budget is spent and the pod deleted (api/request/eviction.py)."""
        await evict(self.core, route.namespace or "", route.name or "", await req.json_body(allow_empty=True))
        await send_json(
            req.send,
            201,
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
        )

    # --- watch --------------------------------------------------------------------------------

    async def _watch(self, req: Request, route: Route) -> None:
        label = parse_label_selector(req.arg("labelSelector"))
        field = field_selector(route.rt, req.arg("fieldSelector"))
        validate_list_options(watch=True, resource_version=req.arg("resourceVersion"),
                              match=req.arg("resourceVersionMatch"), continue_token=req.arg("continue"),
                              send_initial_events=req.arg("sendInitialEvents"))
        timeout = req.int_arg("timeoutSeconds")
        if timeout == 0:
            timeout = None  # kube: 0 is "not set" (the server's default watch lifetime)
        elif timeout is not None and timeout < 0:
            timeout = 0  # Go's timer fires at once for a negative duration: the watch just ends
        parse_rv(req.arg("resourceVersion"))  # a bad value is a 400 now; once streaming, only an ERROR event
        bookmarks = self.bookmark_interval if req.flag("allowWatchBookmarks") else None
        stream = WatchStream(
            self.core,
            route.rt,
            route.namespace,
            resource_version=req.arg("resourceVersion"),
            label_selector=label,
            field_selector=field,
            bookmark_interval=bookmarks,
            page_size=self.watch_limits.page_size,
            send_initial_events=send_initial_events(req.arg("sendInitialEvents")),
        )
        await serve_watch(req.send, req.receive, stream, self._watch_encoder(req, route.rt),
                          lifetime=timeout if timeout is not None else WATCH_DEFAULT_TIMEOUT,
                          limits=self.watch_limits, stats=self.watch_stats)

    def _watch_encoder(self, req: Request, rt: ResourceType) -> Callable[[str, dict[str, Any]], bytes]:
        """One watch event as a JSON line; with a Table Accept each object (a BOOKMARK's too, as
        kube's watch encoder converts every event) is a one-row Table, and only the first carries
        the column definitions."""
        as_table = _wants_table(req)
        first = True

        def encode(etype: str, obj: dict[str, Any]) -> bytes:
            nonlocal first
            if as_table and etype in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
                obj = self._table(req, rt, [obj], obj["metadata"].get("resourceVersion", ""))
                if not first:
                    obj["columnDefinitions"] = []
                first = False
            return orjson.dumps({"type": etype, "object": obj}, option=orjson.OPT_APPEND_NEWLINE)

        return encode


def _with_headers(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    """`send` adding `headers` to the response start (a deprecated version's Warning on every answer)."""

    async def wrapped(message: MutableMapping[str, Any]) -> None:
        if message.get("type") == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *headers]}
        await send(message)

    return wrapped


def _findings(decoded: Decoded) -> tuple[tuple[str, str], ...]:
    return tuple((f'duplicate field "{d}"', d) for d in decoded.duplicates)


def _wants_table(req: Request) -> bool:
    accept = req.headers.get("accept", "")
    return "as=Table" in accept and "g=meta.k8s.io" in accept


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
