"""Cluster networking from Services, EndpointSlices, Ingresses, NetworkPolicies and Nodes: kube-proxy's,
CoreDNS's, an ingress controller's and a network plugin's roles (policies, pod routes), on trio.

Entry points (each a long-lived component: `await nursery.start(x.run)`, run again after it raised):
  * proxy.py        `ServiceProxy(client, *, host_addresses=...)`: a userspace proxy with one
                    listener per Service port on its ClusterIP, every NodePort and, for
                    `type: LoadBalancer`, the host address; round-robin (or ClientIP affinity) to
                    ready endpoints, following Services and EndpointSlices live.
  * dns.py          `ClusterDNS(client, *, host, port=53, domain="cluster.local")`: the records of
                    CoreDNS's kubernetes plugin from the same caches; other names go to the host's
                    resolvers.
  * ingress/        `IngressController(client, *, http=, https=, tls_default=, host_addresses=,
                    optional=)`: Ingresses of the `orchestra.io/ingress-controller` IngressClass
                    served on the host (HTTP and HTTPS with SNI certificates); a listener's port in
                    use fails `run()` with `ListenError` unless the listener is `optional` (then it
                    stays off); `resolve(host, path) -> forward.Target | forward.Refusal`, `bound`
                    / `errors` per listener, `statistics()`. Its package docstring names the parts
                    (routing, backends, certs, headers, upstream, downstream, forward, connection).
  * netpol/         `NetworkPolicyEnforcer(client, node=, host=)`: NetworkPolicies in the kernel
                    (nftables table `inet orchestra-netpol`, one transaction per change);
                    `source_mark(address)`, which the app hands the proxy (`ServiceProxy(...,
                    source_mark=)`) so policies see the client pod behind it. Its package docstring
                    names the parts (model, ranges, selection, compile, kernel, reconciler).
  * podroutes.py    `PodRoutes(client, node_name, *, own_networks, kernel=None)`: the pod network
                    across nodes (every pod reaches every pod by its address, no NAT): publishes
                    this node's pod networks on its Node, routes the other nodes' (host-gw on a
                    shared link, VXLAN otherwise), exempts them from netavark's masquerade;
                    `remove()`, `statistics()`. Parts: podpeers.py (Node -> peer -> routes, the
                    annotations, the VXLAN scheme), podkernel.py (`RouteKernel(netns=)`: iproute2
                    and iptables, the only place that runs them).
  * routes.py       `ServiceRoute`: the service range routed to `lo` (needs root), taken over from a
                    killed orchestra; `host_addresses()`.
  * service_env.py  `env_for_pod(pod, services)`: the Docker-links variables the kubelet injects (the
                    app hands it to the node agent, which does not import this package).
  * endpoints.py    `endpoint_targets(port_name, slices)`: a Service port's ready (ip, port) pairs;
                    `Backends`: round robin / ClientIP affinity with exclusions (proxy and ingress).
  * pumps.py        `connect`, `bulk`, `splice_pump` / `copy_pump` / `PUMP`: the byte pumps both share.
  * common.py       the resource types and the EndpointSlice -> Service index they share;
                    `INGRESS_CONTROLLER`, the controller name of the IngressClass the app creates.
Started by app/components.py unless `--no-network`.

New code here: a Service or DNS feature of kube-proxy or CoreDNS, an Ingress feature in ingress/
(HTTP is parsed by h11 only); what a pod's containers see of the network at start (env) goes
through service_env.py; pod IPs are the runtime's.
Must not import: apiserver, app, cli, reconcilers, node, runtime, the store (the API only through
a client, import-linter).
"""
