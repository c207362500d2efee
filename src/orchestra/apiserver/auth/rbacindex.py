"""The RBAC objects in memory, kept current from the store's watch, and kube's rule resolution over them.

Owns: `RbacIndex(store, decode=)`: lists rbac.authorization.k8s.io once, then follows a store watcher
of that prefix (drained without waiting whenever the prefix's revision moved, so an authorization decision
always sees every write acknowledged before it — no store scan per request, no lag); roles'
rules are parsed once per write; bindings are indexed by subject (a user name — a ServiceAccount
subject is its `system:serviceaccount:<ns>:<name>` user — or a group), so resolving a user touches
only the bindings that name them. `visit(user, namespace)` is kube's VisitRulesFor: the
ClusterRoleBindings, then the namespace's RoleBindings, each binding's role rules with the binding's
description (`ClusterRoleBinding "x" of ClusterRole "y" to User "z"`), and the errors (a binding to a
role that does not exist). Answers are memoised per (user, namespace) until the next RBAC write.
Must not import: reconcilers, node, net, the api core's verbs (it reads the store directly: it is
an index of it, like an informer's cache; `decode` is the core's `codec.decode`, so RBAC objects an
encryption config names are read in the clear).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import attrs
import orjson

from orchestra.api.errors import ApiError
from orchestra.api.policy.rbac.rules import Rule, rules_of
from orchestra.api.user import SERVICE_ACCOUNT_PREFIX, UserInfo
from orchestra.apiserver.auth.watchfed import WatchFedIndex
from orchestra.store import KeyValue, Store

log = logging.getLogger("orchestra.auth")

PREFIX = "/registry/rbac.authorization.k8s.io/"
CACHE_SIZE = 4096
SubjectKey = tuple[str, str]  # ("user" | "group", name)


@attrs.frozen
class Binding:
    kind: str  # RoleBinding | ClusterRoleBinding
    namespace: str
    name: str
    role_kind: str
    role_name: str
    subjects: tuple[tuple[str, str, str], ...]  # (kind, name, namespace) as written

    def subject_keys(self) -> set[SubjectKey]:
        return {k for s in self.subjects if (k := self._key(s)) is not None}

    def _key(self, subject: tuple[str, str, str]) -> SubjectKey | None:
        kind, name, namespace = subject
        if kind == "User":
            return "user", name
        if kind == "Group":
            return "group", name
        if kind == "ServiceAccount" and (namespace or self.namespace):
            return "user", f"{SERVICE_ACCOUNT_PREFIX}{namespace or self.namespace}:{name}"
        return None

    def subject_for(self, user: UserInfo) -> tuple[str, str, str] | None:
        """The first subject naming `user` (kube's appliesTo)."""
        for subject in self.subjects:
            key = self._key(subject)
            if key is not None and (key[1] == user.name if key[0] == "user" else key[1] in user.groups):
                return subject
        return None

    def describe(self, subject: tuple[str, str, str]) -> str:
        kind, name, namespace = subject
        if kind == "ServiceAccount":
            name = f"{name}/{namespace or self.namespace}"
        target = f"{self.name}/{self.namespace}" if self.kind == "RoleBinding" else self.name
        return f'{self.kind} "{target}" of {self.role_kind} "{self.role_name}" to {kind} "{name}"'


def _binding(kind: str, obj: dict[str, Any]) -> Binding:
    meta, ref = obj.get("metadata") or {}, obj.get("roleRef") or {}
    subjects = tuple(
        (str(s.get("kind") or ""), str(s.get("name") or ""), str(s.get("namespace") or ""))
        for s in obj.get("subjects") or []
        if isinstance(s, dict)
    )
    return Binding(
        kind,
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
        str(ref.get("kind") or ""),
        str(ref.get("name") or ""),
        subjects,
    )


@attrs.frozen
class Resolved:
    """What applies to one user in one namespace: (description, rules) per binding, and errors."""

    sources: tuple[tuple[str, tuple[Rule, ...]], ...]
    errors: tuple[str, ...]

    def rules(self) -> list[Rule]:
        return [rule for _, rules in self.sources for rule in rules]


def _plain_json(kv: KeyValue) -> dict[str, Any]:
    obj = orjson.loads(kv.value)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    return obj


class RbacIndex(WatchFedIndex):
    def __init__(self, store: Store, *, decode: Callable[[KeyValue], dict[str, Any]] = _plain_json) -> None:
        self.decode = decode  # a store value -> its object (the API core's codec: transformers)
        self.generation = 0
        self._cache: dict[tuple[UserInfo, str], Resolved] = {}
        super().__init__(store, PREFIX, "RBAC index")

    # --- keeping current ------------------------------------------------------------------------

    def _clear(self) -> None:
        self.roles: dict[tuple[str, str], tuple[Rule, ...]] = {}
        self.cluster_roles: dict[str, tuple[Rule, ...]] = {}
        self.bindings: dict[tuple[str, str, str], Binding] = {}  # (kind, namespace, name)
        self._by_subject: dict[tuple[str, SubjectKey], set[tuple[str, str, str]]] = {}  # (ns, key)

    def _changed(self) -> None:
        self.generation += 1
        self._cache.clear()

    def _put(self, kv: KeyValue) -> None:
        key = kv.key
        parts = key[len(PREFIX) :].split("/")
        self._delete(key)
        try:
            obj = self.decode(kv)
        except (ValueError, ApiError) as exc:  # undecodable: logged, and it grants nothing
            log.warning("RBAC index: %s cannot be read (%s); ignored", key, exc)
            return
        if parts[0] == "roles" and len(parts) == 3:
            self.roles[parts[1], parts[2]] = rules_of(obj)
        elif parts[0] == "clusterroles" and len(parts) == 2:
            self.cluster_roles[parts[1]] = rules_of(obj)
        elif parts[0] in ("rolebindings", "clusterrolebindings"):
            kind = "RoleBinding" if parts[0] == "rolebindings" else "ClusterRoleBinding"
            binding = _binding(kind, obj)
            ident = (kind, binding.namespace, binding.name)
            self.bindings[ident] = binding
            for subject in binding.subject_keys():
                self._by_subject.setdefault((binding.namespace, subject), set()).add(ident)

    def _delete(self, key: str) -> None:
        parts = key[len(PREFIX) :].split("/")
        if parts[0] == "roles" and len(parts) == 3:
            self.roles.pop((parts[1], parts[2]), None)
        elif parts[0] == "clusterroles" and len(parts) == 2:
            self.cluster_roles.pop(parts[1], None)
        elif parts[0] in ("rolebindings", "clusterrolebindings"):
            kind = "RoleBinding" if parts[0] == "rolebindings" else "ClusterRoleBinding"
            ident = (kind, parts[1] if len(parts) == 3 else "", parts[-1])
            binding = self.bindings.pop(ident, None)
            for subject in binding.subject_keys() if binding is not None else ():
                holders = self._by_subject.get((binding.namespace, subject))  # type: ignore[union-attr]
                if holders is not None:
                    holders.discard(ident)

    # --- resolution -----------------------------------------------------------------------------

    def role_rules(self, kind: str, name: str, namespace: str) -> tuple[Rule, ...] | None:
        """kube's GetRoleReferenceRules; None when the role does not exist."""
        if kind == "ClusterRole":
            return self.cluster_roles.get(name)
        if kind == "Role":
            return self.roles.get((namespace, name))
        return None

    def resolve(self, user: UserInfo, namespace: str) -> Resolved:
        """The rules that apply to `user` in `namespace` ("" : cluster-wide only), kube's order."""
        self.sync()
        found = self._cache.get((user, namespace))
        if found is None:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            found = self._cache[user, namespace] = self._resolve(user, namespace)
        return found

    def _resolve(self, user: UserInfo, namespace: str) -> Resolved:
        sources: list[tuple[str, tuple[Rule, ...]]] = []
        errors: list[str] = []
        for binding in self._bindings_of(user, ""):
            self._visit(binding, user, "", sources, errors)
        if namespace:
            for binding in self._bindings_of(user, namespace):
                self._visit(binding, user, namespace, sources, errors)
        return Resolved(tuple(sources), tuple(errors))

    def _bindings_of(self, user: UserInfo, namespace: str) -> list[Binding]:
        keys = [("user", user.name), *(("group", g) for g in user.groups)]
        idents: set[tuple[str, str, str]] = set()
        for key in keys:
            idents |= self._by_subject.get((namespace, key), set())
        return [self.bindings[i] for i in sorted(idents)]

    def _visit(
        self,
        binding: Binding,
        user: UserInfo,
        namespace: str,
        sources: list[tuple[str, tuple[Rule, ...]]],
        errors: list[str],
    ) -> None:
        subject = binding.subject_for(user)
        if subject is None:
            return
        rules = self.role_rules(binding.role_kind, binding.role_name, namespace)
        if rules is None:
            errors.append(_not_found(binding.role_kind, binding.role_name))
            return
        sources.append((binding.describe(subject), rules))


def _not_found(kind: str, name: str) -> str:
    if kind not in ("Role", "ClusterRole"):
        return f'unsupported role reference kind: "{kind}"'
    return f'{kind.lower()}.rbac.authorization.k8s.io "{name}" not found'
