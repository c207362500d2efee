"""Field paths into a structural schema: kube's cel.ValidFieldPath.

Owns: `valid_field_path(text, schema, allow_array=True)`: the path (`.spec.foo`, `.spec['a.b']`)
as kube renders it (`spec.foo`, `spec[a.b]` for a map key) and the schema it reaches, or the reason it
is invalid. Used by x-kubernetes-validations' fieldPath and the CRD's selectableFields.
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""

from __future__ import annotations

import re

from orchestra.api.policy.crd.structural import Structural

_TOKEN = re.compile(r"'(?:[^'\\]|\\.)*'|[.\[\]]|[^.\[\]]+")


class FieldPathError(ValueError):
    pass


def resolve_field_path(text: str, schema: Structural, *, allow_array: bool = True) -> tuple[str, Structural]:
    """(rendered path, schema reached); raises FieldPathError with kube's reason."""
    tokens = iter(_TOKEN.findall(text))
    path = ""
    node = schema
    for tok in tokens:
        if tok == "[":
            if not allow_array:
                raise FieldPathError("array notation is not allowed")
            name = next(tokens, None)
            if name is None:
                raise FieldPathError("unexpected end of JSON path")
            if len(name) < 2 or name[0] != "'" or name[-1] != "'":
                raise FieldPathError(f"expected single quoted string but got {name}")
            path, node = _step(path, node, name[1:-1].replace("\\'", "'"))
            close = next(tokens, None)
            if close is None:
                raise FieldPathError("unexpected end of JSON path")
            if close != "]":
                raise FieldPathError(f"expected ] but got {close}")
        elif tok == ".":
            name = next(tokens, None)
            if name is None:
                raise FieldPathError("unexpected end of JSON path")
            path, node = _step(path, node, name)
        else:
            raise FieldPathError(f"expected [ or . but got: {tok}")
    return path, node


def _step(path: str, node: Structural, name: str) -> tuple[str, Structural]:
    if node.properties:
        found = node.properties.get(name)
        if found is None:
            raise FieldPathError("does not refer to a valid field")
        return (f"{path}.{name}" if path else name), found
    if node.additional is not None:
        return f"{path}[{name}]", node.additional
    raise FieldPathError("does not refer to a valid field")


def valid_field_path(text: str, schema: Structural) -> tuple[str, Structural] | None:
    try:
        return resolve_field_path(text, schema)
    except FieldPathError:
        return None
