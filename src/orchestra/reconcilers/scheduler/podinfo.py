"""PodInfo: what the scheduler needs from a Pod, computed once per pod version.

Owns: kube's pod resource arithmetic (PodRequests: containers summed, init containers as a max,
restartable sidecars added, overhead; the "non-zero" variant with 100m cpu / 200Mi memory per
container that scoring uses), host ports, parsed affinity terms and spread constraints, and the
pod's node-local scheduling signature (two pods with equal signatures get equal node-local filter
and score results on the same node state, which the framework caches).
Resources are integers like kube's framework.Resource: milli-cpu, bytes, pod counts.
Must not import: client, controller, anything above the api layer except this package.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from orchestra.api.machinery.selectors import LabelSelector, from_label_selector_object
from orchestra.api.request.stored import exact_bytes
from orchestra.objects import Obj
from orchestra.objects.quantity import INT64_MAX, INT64_MIN, parse_or_none

CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"
DEFAULT_MILLI_CPU = 100  # kube's schedutil.DefaultMilliCPURequest
DEFAULT_MEMORY = 200 * 1024 * 1024  # schedutil.DefaultMemoryRequest
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def quantity_int(name: str, value: Any) -> int:
    """A quantity in the scheduler's integer unit: milli-cpu for cpu, the value (rounded up) otherwise,
    saturated at the int64 range like everything the scheduler adds up (a malformed one counts 0)."""
    if isinstance(value, str):
        return _quantity_int(name == CPU, value)
    return _to_int(name == CPU, value)


@functools.lru_cache(maxsize=4096)
def _quantity_int(milli: bool, value: str) -> int:
    """Exact Fraction arithmetic is slow and a cluster uses few distinct quantity strings."""
    return _to_int(milli, value)


def _to_int(milli: bool, value: Any) -> int:
    q = parse_or_none(value)
    if q is None:
        return 0
    return q.milli_value() if milli else q.int_value()


def resource_map(raw: Mapping[str, Any] | None) -> dict[str, int]:
    return {k: quantity_int(k, v) for k, v in (raw or {}).items()}


def _add(into: dict[str, int], other: Mapping[str, int]) -> None:
    """Saturating, as a pod's totals stay within int64 (kube's framework.Resource fields are int64):
    a pod asking for more than any node can have still asks for more than any node has."""
    for k, v in other.items():
        into[k] = max(INT64_MIN, min(INT64_MAX, into.get(k, 0) + v))


def _max(into: dict[str, int], other: Mapping[str, int]) -> None:
    for k, v in other.items():
        if v > into.get(k, 0):
            into[k] = v


def _container_requests(c: Obj, non_zero: bool) -> dict[str, int]:
    req = resource_map((c.get("resources") or {}).get("requests"))
    if non_zero:
        req.setdefault(CPU, DEFAULT_MILLI_CPU)
        req.setdefault(MEMORY, DEFAULT_MEMORY)
    return req


def pod_requests(spec: Obj, *, non_zero: bool = False) -> dict[str, int]:
    """kube's resourcehelper.PodRequests (with NonMissingContainerRequests when non_zero)."""
    reqs: dict[str, int] = {}
    for c in spec.get("containers") or []:
        _add(reqs, _container_requests(c, non_zero))
    restartable: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for c in spec.get("initContainers") or []:
        r = _container_requests(c, non_zero)
        if c.get("restartPolicy") == "Always":  # a sidecar keeps running beside the containers
            _add(restartable, r)
            r = dict(restartable)
        else:
            r = dict(r)
            _add(r, restartable)
        _max(init_max, r)
    _add(reqs, restartable)
    _max(reqs, init_max)
    _add(reqs, resource_map(spec.get("overhead")))
    return reqs


@attrs.frozen
class AffinityTerm:
    """A pod (anti-)affinity term with its namespaces resolved as far as the pod alone allows."""

    selector: LabelSelector
    topology_key: str
    namespaces: frozenset[str]
    namespace_selector: LabelSelector | None  # None: only `namespaces`; empty selector: all namespaces
    weight: int = 0

    def matches(self, pod: PodInfo, ns_labels: Mapping[str, Mapping[str, str]]) -> bool:
        if pod.namespace not in self.namespaces:
            sel = self.namespace_selector
            if sel is None or not sel.matches(ns_labels.get(pod.namespace)):
                return False
        return self.selector.matches(pod.labels)


@attrs.frozen
class SpreadConstraint:
    max_skew: int
    topology_key: str
    hard: bool  # whenUnsatisfiable DoNotSchedule
    selector: LabelSelector
    min_domains: int | None
    honor_node_affinity: bool
    honor_taints: bool


def _term(raw: Obj, namespace: str, weight: int = 0) -> AffinityTerm:
    namespaces = frozenset(raw.get("namespaces") or ())
    ns_sel_raw = raw.get("namespaceSelector")
    ns_sel = from_label_selector_object(ns_sel_raw) if ns_sel_raw is not None else None
    if not namespaces and ns_sel is None:
        namespaces = frozenset([namespace])
    selector = from_label_selector_object(raw.get("labelSelector"))
    if raw.get("labelSelector") is None:
        selector = LabelSelector((_NOTHING,))  # a nil labelSelector matches no pods
    return AffinityTerm(selector, str(raw.get("topologyKey") or ""), namespaces, ns_sel, weight)


_NOTHING = from_label_selector_object(
    {"matchExpressions": [{"key": "\x00", "operator": "Exists"}]}
).requirements[0]


def _terms(section: Obj | None, namespace: str) -> tuple[tuple[AffinityTerm, ...], tuple[AffinityTerm, ...]]:
    section = section or {}
    required = tuple(
        _term(t, namespace) for t in section.get("requiredDuringSchedulingIgnoredDuringExecution") or []
    )
    preferred = tuple(_term(w.get("podAffinityTerm") or {}, namespace, int(w.get("weight") or 0))
                      for w in section.get("preferredDuringSchedulingIgnoredDuringExecution") or [])
    return required, preferred


def _with_match_label_keys(raw: Obj, labels: Mapping[str, str]) -> Obj:
    keys = [k for k in raw.get("matchLabelKeys") or [] if k in labels]
    if not keys:
        return raw.get("labelSelector") or {}
    sel = dict(raw.get("labelSelector") or {})
    sel["matchExpressions"] = [*sel.get("matchExpressions", []),
                               *({"key": k, "operator": "In", "values": [labels[k]]} for k in keys)]
    return sel


def _spread(raw: Obj, labels: Mapping[str, str]) -> SpreadConstraint:
    min_domains = raw.get("minDomains")
    return SpreadConstraint(
        max_skew=int(raw.get("maxSkew") or 1),
        topology_key=str(raw.get("topologyKey") or ""),
        hard=(raw.get("whenUnsatisfiable") or "DoNotSchedule") == "DoNotSchedule",
        selector=from_label_selector_object(_with_match_label_keys(raw, labels)),
        min_domains=int(min_domains) if min_domains is not None else None,
        honor_node_affinity=(raw.get("nodeAffinityPolicy") or "Honor") == "Honor",
        honor_taints=(raw.get("nodeTaintsPolicy") or "Ignore") == "Honor",
    )


@attrs.define(slots=True, eq=False)
class PodInfo:
    obj: Obj
    key: str
    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str]
    priority: int
    created: str
    node_name: str
    terminating: bool
    requests: dict[str, int]  # cpu (milli), memory, ephemeral-storage and extended resources
    non_zero_cpu: int
    non_zero_memory: int
    host_ports: tuple[tuple[str, str, int], ...]  # (hostIP, protocol, hostPort)
    node_selector: Mapping[str, str]
    required_node_terms: list[Obj] | None  # nodeSelectorTerms (ORed), None when absent
    preferred_node_terms: list[Obj]
    tolerations: list[Obj]
    affinity: tuple[AffinityTerm, ...]
    anti_affinity: tuple[AffinityTerm, ...]
    preferred_affinity: tuple[AffinityTerm, ...]
    preferred_anti_affinity: tuple[AffinityTerm, ...]
    spread: tuple[SpreadConstraint, ...]
    signature: bytes
    label_group: tuple[tuple[str, str], ...] = ()  # the labels as a hashable key (NodeInfo groups by it)

    @property
    def cpu(self) -> int:
        return self.requests.get(CPU, 0)

    @property
    def memory(self) -> int:
        return self.requests.get(MEMORY, 0)

    @property
    def has_affinity_terms(self) -> bool:
        return bool(
            self.affinity or self.anti_affinity or self.preferred_affinity or self.preferred_anti_affinity
        )

    @classmethod
    def from_pod(cls, pod: Obj) -> PodInfo:
        m = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        ns = str(m.get("namespace") or "")
        labels = m.get("labels") or {}
        requests = pod_requests(spec)
        non_zero = pod_requests(spec, non_zero=True)
        affinity = spec.get("affinity") or {}
        node_aff = affinity.get("nodeAffinity") or {}
        required = node_aff.get("requiredDuringSchedulingIgnoredDuringExecution")
        aff, pref_aff = _terms(affinity.get("podAffinity"), ns)
        anti, pref_anti = _terms(affinity.get("podAntiAffinity"), ns)
        ports = tuple(
            (str(p.get("hostIP") or "0.0.0.0"), str(p.get("protocol") or "TCP"), int(p["hostPort"]))
            for c in spec.get("containers") or []
            for p in c.get("ports") or []
            if p.get("hostPort")
        )
        node_selector = spec.get("nodeSelector") or {}
        tolerations = spec.get("tolerations") or []
        signature = exact_bytes(
            orjson.dumps(
                (
                    sorted(requests.items()),
                    non_zero.get(CPU),
                    non_zero.get(MEMORY),
                    ports,
                    node_selector,
                    node_aff,
                    tolerations,
                ),
                option=orjson.OPT_SORT_KEYS,
            )
        )
        return cls(
            obj=pod,
            key=f"{ns}/{m.get('name', '')}",
            namespace=ns,
            name=str(m.get("name") or ""),
            uid=str(m.get("uid") or ""),
            labels=labels,
            priority=int(spec.get("priority") or 0),
            created=str(m.get("creationTimestamp") or ""),
            node_name=str(spec.get("nodeName") or ""),
            terminating=bool(m.get("deletionTimestamp")),
            requests=requests,
            non_zero_cpu=non_zero.get(CPU, 0),
            non_zero_memory=non_zero.get(MEMORY, 0),
            host_ports=ports,
            node_selector=node_selector,
            required_node_terms=(required or {}).get("nodeSelectorTerms") or []
            if required is not None
            else None,
            preferred_node_terms=node_aff.get("preferredDuringSchedulingIgnoredDuringExecution") or [],
            tolerations=tolerations,
            affinity=aff,
            anti_affinity=anti,
            preferred_affinity=pref_aff,
            preferred_anti_affinity=pref_anti,
            spread=tuple(_spread(c, labels) for c in spec.get("topologySpreadConstraints") or []),
            signature=signature,
            label_group=tuple(sorted(labels.items())),
        )
