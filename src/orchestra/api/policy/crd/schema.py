"""A CRD version's openAPIV3Schema checked as kube checks it (validateCustomResourceDefinitionValidation).

Owns: `schema_errors(schema, path)` — in kube's order: the structural rules (schemarules.py), then
the defaults (defaulting.py), then the per-node OpenAPI rules, then — only when the schema itself
is sound — the CEL rules compiled (cel.py); a structural error hides the default checks, a
schema error hides the CEL ones, as in kube.
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

from orchestra.api.errors import Cause
from orchestra.api.policy.crd.cel import compile_rules
from orchestra.api.policy.crd.defaulting import default_errors
from orchestra.api.policy.crd.schemarules import node_errors, structural_errors
from orchestra.api.policy.crd.structural import Structural


def schema_errors(schema: Structural, path: str) -> list[Cause]:
    errs = structural_errors(schema, path)
    if not errs:
        errs = default_errors(schema, path)
    node = node_errors(schema, path)
    if errs or node:
        return errs + node
    _, cel_errs = compile_rules(schema, path)
    return cel_errs
