"""One served version of a custom kind, compiled once from its CustomResourceDefinition.

Owns: `compiled(kind: CustomKind) -> Compiled` (cached on the CustomKind, so a CRD change, which
makes new CustomKinds, recompiles): the structural schema, the CEL rules, whether the schema has
defaults (reads skip defaulting otherwise), the status subresource's schema, the scale paths, the
printer columns, the selectable fields and the deprecation warning of the version.
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

from typing import Any

import attrs

from orchestra.api.policy.crd.cel import Rules, compile_rules
from orchestra.api.policy.crd.structural import Structural, has_defaults
from orchestra.api.registry import CustomKind
from orchestra.objects import as_dict, as_dicts


@attrs.frozen
class Scale:
    spec_replicas: str  # ".spec.replicas"
    status_replicas: str
    label_selector: str | None


@attrs.frozen
class Compiled:
    schema: Structural | None
    rules: Rules
    has_defaults: bool
    preserve_unknown: bool  # spec.preserveUnknownFields: nothing is pruned
    status: bool
    scale: Scale | None
    columns: tuple[dict[str, Any], ...]
    selectable: tuple[str, ...]  # "spec.color" (no leading dot)
    warning: str | None  # the Warning header of a deprecated version

    @property
    def status_schema(self) -> Structural | None:
        return self.schema.properties.get("status") if self.schema is not None else None


def compiled(kind: CustomKind) -> Compiled:
    found = kind.cache.get("compiled")
    if found is None:
        found = kind.cache["compiled"] = _compile(kind)
    return found  # type: ignore[no-any-return]


def _compile(kind: CustomKind) -> Compiled:
    raw = kind.schema
    schema = Structural(raw) if raw is not None else None
    rules = compile_rules(schema, "")[0] if schema is not None else Rules()
    subs = kind.subresources
    scale = as_dict(subs.get("scale")) if subs.get("scale") is not None else None
    return Compiled(
        schema=schema,
        rules=rules,
        has_defaults=has_defaults(schema),
        preserve_unknown=kind.preserve_unknown_fields,
        status=subs.get("status") is not None,
        scale=Scale(str(scale.get("specReplicasPath") or ""), str(scale.get("statusReplicasPath") or ""),
                    scale.get("labelSelectorPath")) if scale is not None else None,
        columns=tuple(as_dicts(kind.version.get("additionalPrinterColumns"))),
        selectable=tuple(str(f.get("jsonPath") or "").lstrip(".")
                         for f in as_dicts(kind.version.get("selectableFields"))),
        warning=kind.warning,
    )
