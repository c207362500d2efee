"""orchestra's built-in ingress controller: Ingresses of the `orchestra.io/ingress-controller` class,
served on the host over HTTP and HTTPS.

The parts, each one concept: routing (the routing table: hosts, paths, default backend; pure),
backends (a Service port's live endpoints), certs (SNI certificates from TLS Secrets), headers
(hop-by-hop and X-Forwarded-*), upstream (h11 client connections to endpoints, a keep-alive pool),
downstream (the client connection: h11 server reads, writes, local answers), forward (one request:
route, stream both ways, upgrade tunnels), connection (the TLS handshake and the keep-alive request
loop) and controller (informers, listeners, status). HTTP is
parsed by h11 only. Trio only: one task per client connection (plus one while a request body
streams, and one per direction of an upgraded tunnel).
Must not import: apiserver, cli, runtime, node.
"""

from orchestra.net.ingress.controller import IngressController, ListenError

__all__ = ["IngressController", "ListenError"]
