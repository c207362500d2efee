"""Turning what a user typed (`pods`, `po,svc`, `deploy/web`, `all`) into resource types and names.

Owns: `parse_targets`, `resolve_type` and the kubectl-style errors for unknown types.
Must not import: the HTTP client or the server side.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from orchestra.api.registry import DEFAULT_REGISTRY, Registry, ResourceType
from orchestra.cli.errors import CliError


@attrs.frozen
class Target:
    rt: ResourceType
    names: tuple[str, ...] = ()


def resolve_type(name: str, registry: Registry = DEFAULT_REGISTRY) -> list[ResourceType]:
    """One type name, or a category (`all`) standing for several types."""
    rt = registry.resolve(name)
    if rt is not None:
        return [rt]
    in_category = [t for t in registry.types if name.lower() in t.categories]
    if in_category:
        return sorted(in_category, key=_kubectl_order)
    raise CliError(f'the server doesn\'t have a resource type "{name}"')


# The order `kubectl get all` prints in (discovery order of kube-apiserver); others go after.
_ALL_ORDER = ("pods", "replicationcontrollers", "services", "daemonsets", "deployments", "replicasets",
              "statefulsets", "horizontalpodautoscalers", "cronjobs", "jobs")


def _kubectl_order(rt: ResourceType) -> int:
    return _ALL_ORDER.index(rt.plural) if rt.plural in _ALL_ORDER else len(_ALL_ORDER)


def parse_targets(args: Sequence[str], registry: Registry = DEFAULT_REGISTRY) -> list[Target]:
    """`TYPE[,TYPE...] [NAME...]` or `TYPE/NAME...` (the two forms cannot be mixed, as in kubectl)."""
    if not args:
        raise CliError("you must specify the type of resource, e.g. `pods` or `deployments`")
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            raise CliError(
                "there is no need to specify a resource type as a separate argument when "
                "passing arguments in resource/name form (e.g. 'orchestra get resource/<resource_name>' "
                "instead of 'orchestra get resource resource/<resource_name>'"
            )
        targets: list[Target] = []
        for arg in args:
            type_name, _, name = arg.partition("/")
            if not name:
                raise CliError(
                    f'arguments in resource/name form must have a single resource and name: "{arg}"'
                )
            rts = resolve_type(type_name, registry)
            if len(rts) != 1:
                raise CliError(f'"{type_name}" is a category, not a resource type: "{arg}"')
            targets.append(Target(rts[0], (name,)))
        return targets
    types: list[ResourceType] = []
    for type_name in args[0].split(","):
        if type_name:
            types.extend(t for t in resolve_type(type_name, registry) if t not in types)
    names = tuple(args[1:])
    if names and len(types) > 1:
        raise CliError("names can only be given for one resource type, e.g. `pods web-1` (or use TYPE/NAME)")
    return [Target(rt, names) for rt in types]


def is_multi(args: Sequence[str], targets: Sequence[Target]) -> bool:
    """kubectl prefixes names with their type when several types are shown together (a category
    such as `all` counts as several, even when it holds one type)."""
    types = {(t.rt.group, t.rt.plural) for t in targets}
    return len(types) > 1 or any(
        not any(a.lower() in (t.plural, t.singular, t.kind.lower(), *t.short_names, t.group_resource)
                for t in (x.rt for x in targets))
        for a in args[0].split(",") if "/" not in a and a
    )
