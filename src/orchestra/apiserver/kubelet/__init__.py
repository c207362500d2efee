"""The API server's client of the nodes' kubelet API: the pod streams of pods on other nodes.

Entry points:
  * runtime.py   `RemoteContainers(dialer, get_node)`: the ContainerLocator part for pods of remote
                 nodes (the app's locator asks it for pods not run in this process); `KubeletRuntime`:
                 logs, exec, attach and port-forward over a node's kubelet API, as the streams'
                 Runtime.
  * dial.py      `KubeletDialer(client_context(ca, cert, key))`, `KubeletEndpoint.of_node(node)`,
                 `DialError` ("error dialing backend: ...").
  * sessions.py, wsclient.py: HTTP GET over h11, the channel WebSocket as a runtime session, one port of
                 the kubelet's port-forward as a trio Stream; the WebSocket client (wsproto).
Must not import: cli, app, reconcilers, node, net; from runtime only the `base` contract.
"""
