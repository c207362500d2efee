"""Clients of the API, one interface for every caller: controllers, node agents, the dashboard.

Entry points: `base.Client` (the Protocol: get, list, watch, create, update, update_status, patch,
delete, get_scale/update_scale, bind, finalize_namespace; objects are JSON dicts, errors are
orchestra.api.errors'; `update_scale` PUTs the autoscaling/v1 Scale with the resourceVersion it read,
so a stale one is a Conflict),
`local.LocalClient(core)` (in process, straight onto the API core: no HTTP, the same rules) and
`http.HttpClient` (over HTTPS with the cluster's CA and a bearer token, from a kubeconfig; transport
failures are `TransportError`, an OSError the informers retry). A node agent on another machine
runs on HttpClient with no other change.
`base.MetricsClient` (`pod_metrics(namespace, label_selector)`: the metrics.k8s.io PodMetrics a list
returns, what the HPA controller reads): `local.LocalMetricsClient(core, usage source)` in process,
`http.HttpMetricsClient(http client)` over HTTP.
Import the one you need from its module: the package itself imports nothing, so a light client
does not load the API core.

New code here: a call every client needs goes into base.Client and both implementations (with the
HTTP path kube uses); a caller's convenience belongs to the caller.
Must not import: apiserver, app, reconcilers, node, net, cli (callers import the client, never the
reverse).
"""
