"""Where the store's keys live in etcd: kube-apiserver's key layout.

The store keys every object `/registry/<group>/<resource>/[<namespace>/]<name>` (`core` for the core
group: orchestra.api.registry). kube-apiserver keys objects of its built-in types by the resource
alone, `/registry/pods/default/web`, with the prefixes compiled into it for a few
(SpecialDefaultResourcePrefixes: nodes are `minions`, services `services/specs`, endpoints
`services/endpoints`, replication controllers `controllers`, ingresses `ingress`); the API servers
beside it (apiextensions-apiserver for CRDs and custom resources, kube-aggregator for APIServices)
key by group and resource, `/registry/<group>/<resource>/...` - as the store does.

Owns: KUBE_LAYOUT (the store's keys as kube-apiserver lays them out) and IDENTITY (keys as they are;
the store's own tests over etcd use it), both KeyLayout:
- to_etcd(key): the etcd key of a store key. A key the layout cannot tell apart from another's
  (under /registry/, a first segment that is a built-in resource's name, or `core` with a resource
  that has no built-in name) is StoreError;
- from_etcd(key): the store key of an etcd key, or None for a key that is not one this layout
  writes (an older layout's `/registry/core/...`, `/registry/services/<other>/...`): the store ignores
  such keys. For every store key k, from_etcd(to_etcd(k)) == k, and for every etcd key e with a
  store key, to_etcd(from_etcd(e)) == e. stored(kvs) maps etcd's key-values so, leaving those out.
Values are not touched (a Secret encrypted with its store key as the authenticated data stays valid
whichever layout etcd holds it in).

Must not import: anything from orchestra except orchestra.store.types.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestra.store.types import KeyValue, StoreError

REGISTRY = "/registry/"

# (store group, resource) -> kube-apiserver's etcd prefix under /registry/, for the built-in types
# kube-apiserver itself serves (orchestra's and the rest of kube's, so that a key never moves when
# orchestra serves one more of them). Groups without a dot and *.k8s.io groups served by
# kube-apiserver; the default is the resource's name.
_BUILT_IN: dict[str, tuple[str, ...]] = {
    "core": ("bindings", "componentstatuses", "configmaps", "endpoints", "events", "limitranges",
             "namespaces", "nodes", "persistentvolumeclaims", "persistentvolumes", "pods", "podtemplates",
             "replicationcontrollers", "resourcequotas", "secrets", "serviceaccounts", "services"),
    "admissionregistration.k8s.io": ("mutatingwebhookconfigurations", "validatingadmissionpolicies",
                                     "validatingadmissionpolicybindings", "validatingwebhookconfigurations"),
    "apps": ("controllerrevisions", "daemonsets", "deployments", "replicasets", "statefulsets"),
    "autoscaling": ("horizontalpodautoscalers",),
    "batch": ("cronjobs", "jobs"),
    "certificates.k8s.io": ("certificatesigningrequests",),
    "coordination.k8s.io": ("leases",),
    "discovery.k8s.io": ("endpointslices",),
    "flowcontrol.apiserver.k8s.io": ("flowschemas", "prioritylevelconfigurations"),
    "networking.k8s.io": ("ingressclasses", "ingresses", "ipaddresses", "networkpolicies", "servicecidrs"),
    "node.k8s.io": ("runtimeclasses",),
    "policy": ("poddisruptionbudgets",),
    "rbac.authorization.k8s.io": ("clusterrolebindings", "clusterroles", "rolebindings", "roles"),
    "scheduling.k8s.io": ("priorityclasses",),
    "storage.k8s.io": ("csidrivers", "csinodes", "csistoragecapacities", "storageclasses",
                       "volumeattachments"),
}
# kube-apiserver's SpecialDefaultResourcePrefixes (pkg/kubeapiserver/default_storage_factory_builder.go)
_SPECIAL = {
    ("core", "replicationcontrollers"): "controllers",
    ("core", "endpoints"): "services/endpoints",
    ("core", "nodes"): "minions",
    ("core", "services"): "services/specs",
    ("networking.k8s.io", "ingresses"): "ingress",
}


class KeyLayout:
    """A bijection between store keys and etcd keys (the module docstring); `forward` maps a built-in
    type's (store group, resource) to its etcd prefix under /registry/ (none: keys as they are)."""

    def __init__(self, name: str, forward: dict[tuple[str, str], str] | None = None) -> None:
        self.name = name
        self.forward = dict(forward or {})
        self.reverse = {prefix: owner for owner, prefix in self.forward.items()}
        if len(self.reverse) != len(self.forward):
            raise ValueError(f"{name}: two types share an etcd prefix")
        # first segments under /registry/ that only the built-in names (and `core`) may start with
        self.taken = frozenset({prefix.partition("/")[0] for prefix in self.reverse} | {"core"})

    def __repr__(self) -> str:
        return f"KeyLayout({self.name!r})"

    def to_etcd(self, key: str) -> str:
        if not self.forward or not key.startswith(REGISTRY):
            return key
        parts = key[len(REGISTRY):].split("/", 2)
        if len(parts) < 3:  # not an object's key (a range prefix such as /registry/ itself)
            return key
        group, resource, rest = parts
        prefix = self.forward.get((group, resource))
        if prefix is not None:
            return f"{REGISTRY}{prefix}/{rest}"
        if group in self.taken:
            raise StoreError(f"key {key!r} has no place in etcd's {self.name} key layout")
        return key

    def from_etcd(self, key: str) -> str | None:
        if not self.forward or not key.startswith(REGISTRY):
            return key
        first, _, tail = key[len(REGISTRY):].partition("/")
        if first == "services":  # services/specs, services/endpoints
            second, _, tail = tail.partition("/")
            first = f"{first}/{second}"
        owner = self.reverse.get(first)
        if owner is not None and tail:
            return f"{REGISTRY}{owner[0]}/{owner[1]}/{tail}"
        if first.partition("/")[0] in self.taken:
            return None
        return key

    def stored(self, kvs: Iterable[KeyValue], cut: int = 0) -> list[KeyValue]:
        """etcd's `kvs` under the store's keys (each etcd key less its first `cut` characters, the
        prefix); the keys this layout does not write are left out."""
        found = []
        for kv in kvs:
            key = self.from_etcd(kv.key[cut:])
            if key is not None:
                found.append(KeyValue(key, kv.value, kv.create_revision, kv.mod_revision, kv.version))
        return found


def _kube_forward() -> dict[tuple[str, str], str]:
    return {(group, resource): _SPECIAL.get((group, resource), resource)
            for group, resources in _BUILT_IN.items() for resource in resources}


IDENTITY = KeyLayout("identity")
KUBE_LAYOUT = KeyLayout("kube-apiserver", _kube_forward())

__all__ = ["IDENTITY", "KUBE_LAYOUT", "REGISTRY", "KeyLayout"]
