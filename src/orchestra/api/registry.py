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
    # Set on a type served over another type's stored objects: that type's apiVersion (same kind and
    # plural; kube stores one object and converts it for each version). autoscaling/v1
    # HorizontalPodAutoscalers are stored as autoscaling/v2 ones, events.k8s.io/v1 Events as core
    # ("v1") Events: requests at it are converted (api/conversion/), its keys are the stored type's.
    stored_as: str = ""

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

    @property
    def storage_group(self) -> str:
        """The group whose keys hold this type's objects: the stored type's (`stored_as`)."""
        return self.stored_as.rpartition("/")[0] if self.stored_as else self.group

    def key_prefix(self, namespace: str | None = None) -> str:
        """Store key prefix: `/registry/<storage group>/<plural>/[<namespace>/]`."""
        if self.namespaced and namespace:
            return f"{self._base()}{namespace}/"
        return self._base()

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self._base()}{namespace}/{name}"
        return f"{self._base()}{name}"

    def _base(self) -> str:
        return f"/registry/{self.storage_group or 'core'}/{self.plural}/"


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
    version: str = "v1",
) -> ResourceType:
    subs: list[Subresource] = []
    if status:
        subs.append(attrs.evolve(_STATUS, kind=kind))
    if scale:
        subs.append(_SCALE)
    subs.extend(extra)
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=short,
        categories=cats,
        subresources=tuple(subs),
        verbs=verbs,
        definition=definition or f"io.k8s.api.{definition_pkg}.{version}.{kind}",
    )


def _also_served(rt: ResourceType, version: str, *, group: str | None = None,
                 definition_pkg: str = "") -> ResourceType:
    """`rt`'s stored objects served as another type too: its kind at another version of its group
    (autoscaling/v1), or at a version of another group (events.k8s.io/v1 Events are core Events)."""
    definition = (f"io.k8s.api.{definition_pkg}.{version}.{rt.kind}" if definition_pkg
                  else rt.definition.replace(f".{rt.version}.", f".{version}."))
    return attrs.evolve(rt, group=rt.group if group is None else group, version=version,
                        stored_as=rt.api_version, definition=definition)


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

_EVENT = _rt("", "Event", "events", short=("ev",), status=False, definition_pkg="core")
_HPA = _rt("autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=("hpa",),
          cats=("all",), version="v2", definition_pkg="autoscaling")

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
    _EVENT,
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
    _rt("networking.k8s.io", "Ingress", "ingresses", short=("ing",), definition_pkg="networking"),
    _rt("networking.k8s.io", "IngressClass", "ingressclasses", namespaced=False, status=False,
        definition_pkg="networking"),
    _rt("", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), definition_pkg="core"),
    _rt("", "PersistentVolume", "persistentvolumes", namespaced=False, short=("pv",), definition_pkg="core"),
    _rt("", "ResourceQuota", "resourcequotas", short=("quota",), definition_pkg="core"),
    _rt("", "LimitRange", "limitranges", short=("limits",), status=False, definition_pkg="core"),
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
    _HPA,
    _also_served(_HPA, "v1"),
    _also_served(_EVENT, "v1", group="events.k8s.io", definition_pkg="events"),
    _rt("apiregistration.k8s.io", "APIService", "apiservices", namespaced=False, cats=("api-extensions",),
        definition="io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService"),
)


class Registry:
    """Lookup of resource types by (group, plural), by kind, and by any name a user may type.

    `types` holds one resource type per stored kind (its storage version): what controllers,
    garbage collection and namespace deletion iterate. `served` adds the types served over another
    type's stored objects (`stored_as` set: autoscaling/v1 HPAs, events.k8s.io/v1 Events); the URL
    paths, discovery and type checks of bodies use those too.
    """

    def __init__(self, types: Iterable[ResourceType] = BUILTIN) -> None:
        self.served: tuple[ResourceType, ...] = tuple(types)
        self.types: tuple[ResourceType, ...] = tuple(t for t in self.served if not t.stored_as)
        self._by_plural = {(t.group, t.plural): t for t in self.types}
        self._by_path = {(t.group, t.version, t.plural): t for t in self.served}
        self._by_gvk = {(t.group, t.version, t.kind): t for t in self.served}
        self._by_kind = {t.kind: t for t in self.types}
        self._names: dict[str, ResourceType] = {}
        for t in self.types:
            for n in (t.plural, t.singular, t.kind.lower(), *t.short_names, t.group_resource):
                self._names.setdefault(n, t)
        for t in self.served:  # `events.events.k8s.io` names the type served in that group
            self._names.setdefault(t.group_resource, t)

    def by_plural(self, group: str, plural: str) -> ResourceType | None:
        return self._by_plural.get((group, plural))

    def by_path(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The resource a URL names: `/apis/<group>/<version>/<plural>` (any served version)."""
        return self._by_path.get((group, version, plural))

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
        for t in self.served:
            seen.setdefault(t.group, None)
        return list(seen)

    def in_group(self, group: str, version: str = "v1") -> list[ResourceType]:
        return [t for t in self.served if t.group == group and t.version == version]

    def versions(self, group: str) -> list[str]:
        """The versions `group` is served at, the preferred (storage) one first."""
        seen: dict[str, None] = {}
        for t in sorted(self.served, key=lambda t: bool(t.stored_as)):  # stable: storage versions first
            if t.group == group:
                seen.setdefault(t.version, None)
        return list(seen)

    def group_versions(self) -> list[tuple[str, str]]:
        """Every (group, version) served, in discovery order (kube-aggregator registers an APIService
        for each)."""
        return [(g, v) for g in self.groups() for v in self.versions(g)]


DEFAULT_REGISTRY = Registry()
