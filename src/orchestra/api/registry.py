"""The registry of kinds orchestra serves: group/version/kind, REST names, scope, discovery data.

Owns: the static table of built-in resource types, the kinds CustomResourceDefinitions add at run
time (`Registry.set_custom` / `remove_custom`, one `ResourceType` per served version, each carrying
its `CustomKind`), and lookups by plural, kind, short name. Built-in lookups are plain dict reads;
a CRD change rebuilds the tables and bumps `generation` (discovery caches key on it).
Must not import: the store, the HTTP server, or anything above the api layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

AUTHENTICATION = "authentication.k8s.io"
AUTHORIZATION = "authorization.k8s.io"
RBAC = "rbac.authorization.k8s.io"
RBAC_KINDS = (("ClusterRole", "clusterroles", False), ("ClusterRoleBinding", "clusterrolebindings", False),
              ("Role", "roles", True), ("RoleBinding", "rolebindings", True))
ACCESS_REVIEW_KINDS = (("LocalSubjectAccessReview", "localsubjectaccessreviews", True),
                       ("SelfSubjectAccessReview", "selfsubjectaccessreviews", False),
                       ("SelfSubjectRulesReview", "selfsubjectrulesreviews", False),
                       ("SubjectAccessReview", "subjectaccessreviews", False))
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CRD_GROUP = "apiextensions.k8s.io"
SUB_VERBS = ("get", "patch", "update")


@attrs.frozen
class Subresource:
    name: str
    kind: str
    group: str = ""
    version: str = "v1"
    verbs: tuple[str, ...] = SUB_VERBS


@attrs.frozen
class CustomKind:
    """What a CustomResourceDefinition says about one served version of its kind (raw JSON parts;
    api/policy/crd compiles them). `cache` holds what is compiled from them, per version."""

    crd: str  # the CRD's name, <plural>.<group>
    uid: str
    storage_version: str
    version: dict[str, Any] = attrs.field(eq=False)  # the spec.versions[] entry of this version
    list_kind: str = ""
    terminating: bool = False
    preserve_unknown_fields: bool = False
    warning: str | None = None  # the Warning a deprecated version answers with
    cache: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def schema(self) -> dict[str, Any] | None:
        return ((self.version.get("schema") or {}).get("openAPIV3Schema")) or None

    @property
    def subresources(self) -> dict[str, Any]:
        return self.version.get("subresources") or {}


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
    custom: CustomKind | None = attrs.field(default=None, eq=False, repr=False)
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
        if self.custom is not None and self.custom.list_kind:
            return self.custom.list_kind
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

CRD = ResourceType(
    group=CRD_GROUP,
    version="v1",
    kind="CustomResourceDefinition",
    plural="customresourcedefinitions",
    singular="customresourcedefinition",
    namespaced=False,
    short_names=("crd", "crds"),
    categories=("api-extensions",),
    subresources=(Subresource("status", "CustomResourceDefinition"),),
    definition="io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
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
    _rt("", "ServiceAccount", "serviceaccounts", short=("sa",), status=False, definition_pkg="core",
        extra=(Subresource("token", "TokenRequest", group=AUTHENTICATION, verbs=("create",)),)),
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
    _rt("networking.k8s.io", "NetworkPolicy", "networkpolicies", short=("netpol",), status=False,
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
    # create-only and never stored: answered by the apiserver's authenticators (apiserver/auth/)
    *(attrs.evolve(_rt(AUTHENTICATION, kind, plural, namespaced=False, status=False,
                       definition_pkg="authentication"), verbs=("create",))
      for kind, plural in (("TokenReview", "tokenreviews"), ("SelfSubjectReview", "selfsubjectreviews"))),
    # RBAC (apiserver/auth/rbac.py authorizes with them) and the access reviews (create-only, never stored)
    *(_rt(RBAC, kind, plural, namespaced=namespaced, status=False, definition_pkg="rbac")
      for kind, plural, namespaced in RBAC_KINDS),
    *(attrs.evolve(_rt(AUTHORIZATION, kind, plural, namespaced=namespaced, status=False,
                       definition_pkg="authorization"), verbs=("create",))
      for kind, plural, namespaced in ACCESS_REVIEW_KINDS),
    # certificates.k8s.io: the approver and signer controllers act on them (reconcilers/certificates/)
    _rt("certificates.k8s.io", "CertificateSigningRequest", "certificatesigningrequests", namespaced=False,
        short=("csr",), definition_pkg="certificates",
        extra=(Subresource("approval", "CertificateSigningRequest", group="certificates.k8s.io"),)),
    _rt(
        "scheduling.k8s.io",
        "PriorityClass",
        "priorityclasses",
        namespaced=False,
        short=("pc",),
        status=False,
        definition_pkg="scheduling",
    ),
    CRD,
    _HPA,
    _also_served(_HPA, "v1"),
    _also_served(_EVENT, "v1", group="events.k8s.io", definition_pkg="events"),
    _rt("apiregistration.k8s.io", "APIService", "apiservices", namespaced=False, cats=("api-extensions",),
        definition="io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService"),
)


class Registry:
    """Lookup of resource types by (group, plural), by kind, and by any name a user may type.

    `types` holds one resource type per resource: a built-in kind at its storage version, a custom
    kind at its preferred version — what controllers, garbage collection and namespace deletion
    iterate, and what the version-less lookups (`by_plural`, `by_kind`, `resolve`) answer. `served`
    adds every other type served: built-in ones served over another type's stored objects
    (`stored_as` set: autoscaling/v1 HPAs, events.k8s.io/v1 Events; api/conversion converts them) and
    a CRD's other served versions (its `CustomKind` converts them); URL paths (`by_path`), discovery,
    APIServices and type checks of bodies use those. Custom kinds (`set_custom`) never shadow a
    built-in name.
    """

    def __init__(self, types: Iterable[ResourceType] = BUILTIN) -> None:
        self.builtin: tuple[ResourceType, ...] = tuple(types)
        self._custom: dict[str, tuple[ResourceType, ...]] = {}  # CRD name -> its served versions
        self.generation = 0
        self._rebuild()

    def _rebuild(self) -> None:
        custom = [self._custom[crd] for crd in sorted(self._custom)]
        self.served: tuple[ResourceType, ...] = (*self.builtin, *(t for ts in custom for t in ts))
        self.types: tuple[ResourceType, ...] = (
            *(t for t in self.builtin if not t.stored_as),
            *(ts[0] for ts in custom if ts),
        )
        self._by_path = {(t.group, t.version, t.plural): t for t in self.served}
        self._by_gvk = {(t.group, t.version, t.kind): t for t in self.served}
        self._by_plural: dict[tuple[str, str], ResourceType] = {}
        self._by_kind: dict[str, ResourceType] = {}
        self._names: dict[str, ResourceType] = {}
        for t in self.types:  # built-ins first: setdefault keeps their names
            self._by_plural.setdefault((t.group, t.plural), t)
            self._by_kind.setdefault(t.kind, t)
            for n in (t.plural, t.singular, t.kind.lower(), *t.short_names, t.group_resource):
                self._names.setdefault(n, t)
        for t in self.served:  # `events.events.k8s.io` names the type served in that group
            self._names.setdefault(t.group_resource, t)
        self.generation += 1

    # --- custom kinds ---------------------------------------------------------------------------

    def set_custom(self, crd: str, types: Iterable[ResourceType]) -> None:
        """Serve `types` (the served versions of CRD `crd`, preferred first), replacing what it had."""
        self._custom[crd] = tuple(types)
        self._rebuild()

    def remove_custom(self, crd: str) -> None:
        if self._custom.pop(crd, None) is not None:
            self._rebuild()

    def custom(self, crd: str) -> tuple[ResourceType, ...]:
        """The served versions of CRD `crd` (empty when it serves nothing)."""
        return self._custom.get(crd, ())

    # --- lookups --------------------------------------------------------------------------------

    def by_plural(self, group: str, plural: str) -> ResourceType | None:
        """The resource (group, plural) names, at its storage or preferred version."""
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
        """The versions `group` is served at, preferred first: a built-in group's storage versions
        before the versions converted to them, a custom group's in kube's version priority."""
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
