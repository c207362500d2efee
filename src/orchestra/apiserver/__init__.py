"""The HTTP face of the API: the Kubernetes REST layout over HTTPS for kubectl, the CLI, the dashboard,
the Python client and remote node agents. Only HTTP lives here; every semantic is the API core's.

Entry points:
  * server.py       `ApiServer(core, *, token, pod_streams=, metrics=, watch_limits=, authenticator=,
                    authorizer=, audit=)`, an ASGI app: routing (routes.py), content negotiation
                    (JSON, server-side Tables), the HTTP shape of errors; `ApiServer.ready`, `.watch_stats`.
  * chain.py        the filters before every handler, in kube's order: audit (audit/), authentication
                    and the authorization seam (auth/), on requestinfo.py's description of the request.
  * auth/           authenticators (admin token, client certificates, ServiceAccount JWTs), the
                    RBAC authorizer, impersonation, TokenReview, SelfSubjectReview and the access reviews.
  * audit/          the audit log: one audit.k8s.io/v1 Event per request, batched off the request path.
  * serve.py        `serve_api(server, host, port, tls, *, task_status)`: orchestra's own HTTP/1.1
                    server (h11server.py + h11ws.py: h11 parses, wsproto frames) by default;
                    `ORCHESTRA_HTTP_SERVER=hypercorn` selects hypercorn's trio worker (no raw SPDY
                    upgrades then: kubectl <= 1.29 exec and <= 1.30 port-forward get a 400).
  * tls.py          `ensure_serving_cert(state_dir, hosts)`: the cluster CA and the serving certificate;
                    `issue_client_cert(state_dir, user, groups)`: a user's client certificate.
  * tlsconn.py      the TLS context (client certificates requested, checked against the CA) and the
                    ASGI `tls` extension of a connection.
  * streams.py      `PodStreamsHandler`: pods/log, exec, attach, portforward, served by the shared
                    orchestra.streaming (also the node's kubelet API's); `ApiServer(pod_streams=)`
                    takes any `PodStreams`.
  * metricsapi.py   `MetricsApi(core, collector)`: GET routes under /apis/metrics.k8s.io/v1beta1.
  * proxy.py        `ProxyHandler(core)`: pods/, services/, nodes/proxy (proxyhttp.py: the h11
                    exchange with the backend); components.py: componentstatuses.
The rest: http.py (ASGI request/response plumbing, body decoding under api/request/bodies.py's
limits), protobuf.py (Kubernetes protobuf request bodies -> JSON), discovery.py (discovery
documents, /version), openapi.py (`OpenApi(registry, schema)`: /openapi/v2 and /openapi/v3, built on
first request; openapi_schemas.py converts the 1.32 definitions, openapi_crd.py makes custom
resources' definitions from their CRDs, openapi_pb.py writes v2 as gnostic's protobuf),
watchserve.py (one watch streamed with flow control:
`serve_watch(send, receive, stream, encode, *, lifetime, limits, stats)`; each write is awaited
before more is decoded; a watch whose backlog stays at `WatchLimits.backlog` or more for `grace`
seconds is closed, as kube's cacher closes unresponsive watchers),
plainhttp.py (plain HTTP on the TLS port answered as Go answers it).

New code here: a route or query parameter's HTTP side in server.py (its semantics in api/request/),
a streaming subresource in streams.py, a discovery detail in discovery.py, a body format in http.py,
an authenticator or authorizer in auth/, a filter of every request in chain.py.
Must not import: cli, app, reconcilers, node, net, or a concrete runtime (streams use only the
Runtime protocol of runtime/base.py; the node agent hands in what finds containers).
"""
