"""The kubelet API: HTTPS on a node for the API server's pod streams (logs, exec, attach, port-forward).

Entry points:
  * server.py   `KubeletApi(client, pods, runtime, KubeletApiConfig(...), serve=)`: the long-lived
                server (`await nursery.start(api.run)`), its serving certificate from a kubelet-serving
                CSR (certs.py), client certificates of the cluster CA required.
  * app.py      `KubeletApp`: the ASGI app (authentication, authorization, routes) over the pods bound
                to the node and its runtime, served by orchestra.streaming's `PodStreams`.
  * paths.py    kubelet's URL layout and authorization attributes; authz.py: who may call it.
The API server's side (calling this API for pods of other nodes) is apiserver/kubelet/.
Must not import: apiserver, app, cli, reconcilers, podman (the HTTP server is handed in).
"""
