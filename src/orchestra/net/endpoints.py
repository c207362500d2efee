"""Which endpoints serve a Service port, from its EndpointSlices: shared by the service proxy and the
ingress controller.

Owns: `endpoint_targets(port_name, slices)`: the (address, port) pairs of ready endpoints for the
Service port called `port_name` ("" for an unnamed port), sorted and unique. An endpoint whose
`conditions.ready` is false is left out; one without conditions counts as ready (as kube-proxy
reads it). A slice without that port, or whose port has no number, contributes nothing.
Must not import: apiserver, cli, runtime, node, or the rest of net.
"""

from __future__ import annotations

from orchestra.objects import Obj, as_dict, only_dicts


def endpoint_targets(port_name: str, slices: list[Obj]) -> list[tuple[str, int]]:
    out: set[tuple[str, int]] = set()
    for sl in slices:
        sport = next((p for p in only_dicts(sl.get("ports")) if (p.get("name") or "") == port_name), None)
        if sport is None or sport.get("port") is None:
            continue
        for ep in only_dicts(sl.get("endpoints")):
            if as_dict(ep.get("conditions")).get("ready") is False:
                continue
            out.update((str(ip), int(sport["port"])) for ip in ep.get("addresses") or [])
    return sorted(out)
