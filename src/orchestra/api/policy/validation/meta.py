"""ObjectMeta and label selectors: name, generateName, labels, annotations, owner references,
matchLabels / matchExpressions (and selector_matches, used to check a template against its selector).

Owns: validate_object_meta, validate_labels, validate_annotations, validate_label_selector (and its
requirement and value checks, shared with the affinity rules).
Must not import: anything in orchestra.api.policy.validation but field and names.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import NameFn, forbidden, invalid, required, too_long
from orchestra.api.machinery.names import is_dns1123_label, is_qualified_name, is_valid_label_value
from orchestra.objects import Obj, as_dict, as_dicts, as_list

# --- metadata ----------------------------------------------------------------------------------------


def validate_labels(labels: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for key, value in sorted(as_dict(labels).items()):
        errs += [invalid(path, key, m) for m in is_qualified_name(key)]
        errs += [invalid(path, value, m) for m in is_valid_label_value(str(value))]
    return errs


def validate_annotations(annotations: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    total = 0
    for key, value in sorted(as_dict(annotations).items()):
        errs += [invalid(path, key, m) for m in is_qualified_name(key.lower())]
        total += len(key) + len(str(value))
    if total > 256 * 1024:
        errs.append(too_long(path, 256 * 1024))
    return errs


def validate_object_meta(meta: Any, name_fn: NameFn, path: str = "metadata") -> list[Cause]:
    meta = as_dict(meta)
    errs: list[Cause] = []
    generate_name = meta.get("generateName") or ""
    if generate_name:
        masked = generate_name[:-1] if generate_name.endswith("-") else generate_name
        errs += [invalid(f"{path}.generateName", generate_name, m) for m in name_fn(masked)]
    name = meta.get("name") or ""
    if not name:
        if not generate_name:
            errs.append(required(f"{path}.name", "name or generateName is required"))
    else:
        errs += [invalid(f"{path}.name", name, m) for m in name_fn(name)]
    namespace = meta.get("namespace") or ""
    if namespace:
        errs += [invalid(f"{path}.namespace", namespace, m) for m in is_dns1123_label(namespace)]
    errs += validate_labels(meta.get("labels"), f"{path}.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    errs += _validate_owner_refs(meta.get("ownerReferences"), f"{path}.ownerReferences")
    for fin in as_list(meta.get("finalizers")):
        errs += [invalid(f"{path}.finalizers", fin, m) for m in is_qualified_name(str(fin))]
    return errs


def _validate_owner_refs(refs: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    controllers = []
    for ref in as_dicts(refs):
        for key, what in (("apiVersion", "version"), ("kind", "kind"), ("name", "name"), ("uid", "uid")):
            if not ref.get(key):
                errs.append(invalid(f"{path}.{key}", "", f"{what} must not be empty"))
        if ref.get("controller") is True:
            controllers.append(str(ref.get("name", "")))
    if len(controllers) > 1:
        errs.append(
            invalid(path, as_list(refs),
                    "Only one reference can have Controller set to true. Found \"true\" in "
                    f"references for {' and '.join(controllers)}")
        )  # fmt: skip
    return errs


# --- label selectors ---------------------------------------------------------------------------------


def validate_label_selector(sel: Any, path: str) -> list[Cause]:
    """metav1validation.ValidateLabelSelector: matchLabels, then each requirement's operator, values
    and key. Values that an existing object already had are allowed on its updates by validate()."""
    sel = as_dict(sel)
    errs = validate_labels(sel.get("matchLabels"), f"{path}.matchLabels")
    for i, req in enumerate(as_dicts(sel.get("matchExpressions"))):
        errs += validate_selector_requirement(req, f"{path}.matchExpressions[{i}]")
    return errs


def validate_selector_requirement(
    req: Obj, path: str, *, node: bool = False, check_values: bool = True
) -> list[Cause]:
    """A LabelSelectorRequirement; with `node`, a NodeSelectorRequirement, whose Gt and Lt need exactly
    one value (not parsed as an integer, as in kube). `check_values=False` skips the label-value check
    (preferred node terms)."""
    op, values = req.get("operator", ""), as_list(req.get("values"))
    errs: list[Cause] = []
    if op in ("In", "NotIn"):
        if not values:
            errs.append(required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(
                forbidden(
                    f"{path}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                )
            )
    elif node and op in ("Gt", "Lt"):
        if len(values) != 1:
            errs.append(
                required(f"{path}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'")
            )
    else:
        errs.append(invalid(f"{path}.operator", op, "not a valid selector operator"))
    key = str(req.get("key", ""))
    errs += [invalid(f"{path}.key", key, m) for m in is_qualified_name(key)]
    return errs + (validate_label_values(values, f"{path}.values") if check_values else [])


def validate_label_values(values: list[Any], path: str) -> list[Cause]:
    return [invalid(f"{path}[{i}]", v, m) for i, v in enumerate(values) for m in is_valid_label_value(str(v))]


def selector_matches(sel: Any, labels: Any) -> bool:
    """LabelSelectorAsSelector(sel).Matches(labels); a nil selector matches nothing, {} everything."""
    if not isinstance(sel, dict):
        return False
    labels = as_dict(labels)
    for k, v in as_dict(sel.get("matchLabels")).items():
        if labels.get(k) != v:
            return False
    for req in as_dicts(sel.get("matchExpressions")):
        key, op, values = req.get("key"), req.get("operator"), as_list(req.get("values"))
        present = key in labels
        if (
            (op == "In" and (not present or labels[key] not in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def selector_empty(sel: Any) -> bool:
    sel = as_dict(sel)
    return not as_dict(sel.get("matchLabels")) and not as_list(sel.get("matchExpressions"))
