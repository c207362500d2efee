"""The registry of kinds orchestra serves: group/version/kind, REST names, scope, discovery data.

Owns: the static table of built-in resource types and lookups by plural, kind, short name.
Must not import: the store, the HTTP server, or anything above the api layer.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUB_VERBS = ("get", "patch", "update")


@attrs.frozen
class Subresource:
    name: str
    kind: str
    group: str = ""
    version: str = "v1"
    verbs: tuple[str, ...] = SUB_VERBS


@attrs.frozen
class ResourceType:
    """One REST resource (e.g. deployments in apps/v1)."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # The schema definition name in the Kubernetes OpenAPI document.
    definition: str = ""
    # (group, plural) of the kind whose stored objects this version serves, converted (kube stores
    # one object and serves it in each version: events.k8s.io/v1 Events are core/v1 Events).
    view_of: tuple[str, str] | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`deployments.apps` / `pods`: the name Kubernetes uses in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def has_subresource(self, name: str) -> bool:
        return any(s.name == name for s in self.subresources)

    def key_prefix(self, namespace: str | None = None) -> str:
        """Store key prefix: `/registry/<group>/<plural>/[<namespace>/]` (a view's: its storage's)."""
        if self.namespaced and namespace:
            return f"{self._base()}{namespace}/"
        return self._base()

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self._base()}{namespace}/{name}"
        return f"{self._base()}{name}"

    def _base(self) -> str:
        group, plural = self.view_of or (self.group, self.plural)
        return f"/registry/{group or 'core'}/{plural}/"


_STATUS = Subresource("status", "")  # kind filled in per type below
_SCALE = Subresource("scale", "Scale", group="autoscaling", version="v1")


def _rt(
    group: str,
    kind: str,
    plural: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    cats: tuple[str, ...] = (),
    status: bool = True,
    scale: bool = False,
    extra: tuple[Subresource, ...] = (),
    definition_pkg: str = "",
    definition: str = "",
    verbs: tuple[str, ...] = ALL_VERBS,
    view_of: tuple[str, str] | None = None,
) -> ResourceType:
    subs: list[Subresource] = []
    if status:
        subs.append(attrs.evolve(_STATUS, kind=kind))
    if scale:
        subs.append(_SCALE)
    subs.extend(extra)
    return ResourceType(
        group=group,
        version="v1",
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=short,
        categories=cats,
        subresources=tuple(subs),
        verbs=verbs,
        definition=definition or f"io.k8s.api.{definition_pkg}.v1.{kind}",
        view_of=view_of,
    )


_PROXY_VERBS = ("create", "delete", "get", "patch", "update")
_POD_STREAMS = (
    Subresource("log", "Pod", verbs=("get",)),
    Subresource("exec", "PodExecOptions", verbs=("create", "get")),
    Subresource("portforward", "PodPortForwardOptions", verbs=("create", "get")),
    Subresource("attach", "PodAttachOptions", verbs=("create", "get")),
    Subresource("binding", "Binding", verbs=("create",)),
    Subresource("eviction", "Eviction", group="policy", verbs=("create",)),
    Subresource("ephemeralcontainers", "Pod"),
    Subresource("proxy", "PodProxyOptions", verbs=_PROXY_VERBS),
)

BUILTIN: tuple[ResourceType, ...] = (
    _rt("", "Namespace", "namespaces", namespaced=False, short=("ns",), definition_pkg="core",
        extra=(Subresource("finalize", "Namespace", verbs=("update",)),)),
    _rt("", "Pod", "pods", short=("po",), cats=("all",), extra=_POD_STREAMS, definition_pkg="core"),
    # before Service: `kubectl get all` lists the "all" category in discovery order, as kube's (alphabetical)
    _rt("", "ReplicationController", "replicationcontrollers", short=("rc",), cats=("all",), scale=True,
        definition_pkg="core"),
    _rt("", "Service", "services", short=("svc",), cats=("all",), definition_pkg="core",
        extra=(Subresource("proxy", "ServiceProxyOptions", verbs=_PROXY_VERBS),)),
    _rt("", "Endpoints", "endpoints", short=("ep",), status=False, definition_pkg="core"),
    _rt("", "Node", "nodes", namespaced=False, short=("no",), definition_pkg="core",
        extra=(Subresource("proxy", "NodeProxyOptions", verbs=_PROXY_VERBS),)),
    _rt("", "ConfigMap", "configmaps", short=("cm",), status=False, definition_pkg="core"),
    _rt("", "Secret", "secrets", status=False, definition_pkg="core"),
    _rt("", "Event", "events", short=("ev",), status=False, definition_pkg="core"),
    _rt("", "ServiceAccount", "serviceaccounts", short=("sa",), status=False, definition_pkg="core"),
    _rt("", "PodTemplate", "podtemplates", status=False, definition_pkg="core"),
    _rt("", "ComponentStatus", "componentstatuses", namespaced=False, short=("cs",), status=False,
        verbs=("get", "list"), definition_pkg="core"),
    _rt(
        "apps",
        "Deployment",
        "deployments",
        short=("deploy",),
        cats=("all",),
        scale=True,
        definition_pkg="apps",
    ),
    _rt("apps", "ReplicaSet", "replicasets", short=("rs",), cats=("all",), scale=True, definition_pkg="apps"),
    _rt("apps", "DaemonSet", "daemonsets", short=("ds",), cats=("all",), definition_pkg="apps"),
    _rt(
        "apps",
        "StatefulSet",
        "statefulsets",
        short=("sts",),
        cats=("all",),
        scale=True,
        definition_pkg="apps",
    ),
    _rt("apps", "ControllerRevision", "controllerrevisions", status=False, definition_pkg="apps"),
    _rt("batch", "Job", "jobs", cats=("all",), definition_pkg="batch"),
    _rt("batch", "CronJob", "cronjobs", short=("cj",), cats=("all",), definition_pkg="batch"),
    _rt("policy", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",), definition_pkg="policy"),
    _rt("coordination.k8s.io", "Lease", "leases", status=False, definition_pkg="coordination"),
    _rt("discovery.k8s.io", "EndpointSlice", "endpointslices", status=False, definition_pkg="discovery"),
    _rt("", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), definition_pkg="core"),
    _rt("", "PersistentVolume", "persistentvolumes", namespaced=False, short=("pv",), definition_pkg="core"),
    _rt(
        "storage.k8s.io",
        "StorageClass",
        "storageclasses",
        namespaced=False,
        short=("sc",),
        status=False,
        definition_pkg="storage",
    ),
    _rt(
        "scheduling.k8s.io",
        "PriorityClass",
        "priorityclasses",
        namespaced=False,
        short=("pc",),
        status=False,
        definition_pkg="scheduling",
    ),
    _rt("events.k8s.io", "Event", "events", short=("ev",), status=False, definition_pkg="events",
        view_of=("", "events")),
    _rt("apiregistration.k8s.io", "APIService", "apiservices", namespaced=False, cats=("api-extensions",),
        definition="io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService"),
)


class Registry:
    """Lookup of resource types by (group, plural), by kind, and by any name a user may type."""

    def __init__(self, types: Iterable[ResourceType] = BUILTIN) -> None:
        self.types: tuple[ResourceType, ...] = tuple(types)
        self._by_plural = {(t.group, t.plural): t for t in self.types}
        self._by_gvk = {(t.group, t.version, t.kind): t for t in self.types}
        self._by_kind: dict[str, ResourceType] = {}
        for t in self.types:  # a kind served in two groups (Event) is the first one's
            self._by_kind.setdefault(t.kind, t)
        self._names: dict[str, ResourceType] = {}
        for t in self.types:
            for n in (t.plural, t.singular, t.kind.lower(), *t.short_names, t.group_resource):
                self._names.setdefault(n, t)

    def by_plural(self, group: str, plural: str) -> ResourceType | None:
        return self._by_plural.get((group, plural))

    def by_gvk(self, group: str, version: str, kind: str) -> ResourceType | None:
        return self._by_gvk.get((group, version, kind))

    def by_api_version_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return self.by_gvk(group, version, kind)

    def by_kind(self, kind: str) -> ResourceType | None:
        return self._by_kind.get(kind)

    def resolve(self, name: str) -> ResourceType | None:
        """Resolve a name a user typed (`po`, `pods`, `deployment`, `deployments.apps`)."""
        return self._names.get(name.lower())

    def groups(self) -> list[str]:
        """API groups in discovery order (the legacy core group "" first)."""
        seen: dict[str, None] = {}
        for t in self.types:
            seen.setdefault(t.group, None)
        return list(seen)

    def in_group(self, group: str, version: str = "v1") -> list[ResourceType]:
        return [t for t in self.types if t.group == group and t.version == version]


DEFAULT_REGISTRY = Registry()
