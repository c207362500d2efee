"""Which endpoints serve a Service port, from its EndpointSlices: shared by the service proxy and the
ingress controller.

Owns: `endpoint_targets(port_name, slices)`: the (address, port) pairs of ready endpoints for the
Service port called `port_name` ("" for an unnamed port), sorted and unique. An endpoint whose
`conditions.ready` is false is left out; one without conditions counts as ready (as kube-proxy
reads it). A slice without that port, or whose port has no number, contributes nothing.
`Backends`: the live target list of one Service port and the choice of one target per connection
(round robin, or by client IP with session affinity), skipping targets that already failed.
Must not import: apiserver, cli, runtime, node, or the rest of net.
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import trio

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


@attrs.define
class Backends:
    """The live backend list of one Service port; listeners read it on every new connection."""

    service: str  # ns/name
    port_name: str
    target: list[tuple[str, int]] = attrs.field(factory=list)
    affinity_timeout: float | None = None
    _rr: Any = attrs.field(default=None)
    _affinity: dict[str, tuple[tuple[str, int], float]] = attrs.field(factory=dict)
    connections: int = 0

    def pick(self, client_ip: str, exclude: set[tuple[str, int]] = frozenset()) -> tuple[str, int] | None:  # type: ignore[assignment]
        choices = [b for b in self.target if b not in exclude]
        if not choices:
            return None
        now = trio.current_time()
        if self.affinity_timeout is not None:
            hit = self._affinity.get(client_ip)
            if hit and hit[0] in choices and now - hit[1] < self.affinity_timeout:
                self._affinity[client_ip] = (hit[0], now)
                return hit[0]
        if self._rr is None or len(choices) != len(self.target):
            self._rr = itertools.count()
        chosen = choices[next(self._rr) % len(choices)]
        if self.affinity_timeout is not None:
            self._affinity[client_ip] = (chosen, now)
        return chosen
