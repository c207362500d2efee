"""Pod streams as the kubelet serves them: logs, exec, attach and port-forward of one pod's
containers, over plain HTTP, WebSocket channels (`v4`/`v5.channel.k8s.io`) or SPDY/3.1. Shared by
the API server (apiserver/streams.py serves them for pods of this process's runtimes, and proxies to
other nodes through apiserver/kubelet/) and by the node's kubelet API (node/kubeletapi/).

Entry points:
  * pods.py         `PodStreams(locator).serve(req, subresource, pod)`: log, exec, attach,
                    portforward; `ContainerLocator` (where a pod's containers are); `pick_container`.
  * request.py      `StreamRequest`: the ASGI request these read (the API server's Request extends it).
  * attach.py, remotecommand.py, portforward.py: attach, exec's channels (WebSocket or raw SPDY),
                    port-forward (SPDY in WebSocket, raw SPDY, the v4 channel protocol).
  * websocket_channels.py, spdy.py: the WebSocket channel framing; SPDY/3.1 frames.
Must not import: apiserver, app, cli, reconcilers, node, net, or a concrete runtime (only the
Runtime protocol of runtime/base.py).
"""
