"""Semantic validation of the built-in kinds, worded exactly like kube-apiserver 1.32.

Owns: `validate(kind, obj, old) -> list[Cause]` — the `ValidateX`/`ValidateXUpdate` rules of
k8s.io/kubernetes/pkg/apis/*/validation, with kube's field paths (`spec.containers[0].image`) and
messages (`Required value`, `Invalid value: "x": ...`, `Unsupported value: ...`). Runs on defaulted
objects. Immutability of metadata.name/namespace/uid is the core's job, not this module's.
Must not import: the store, the HTTP server, or anything above the api layer.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Callable, Iterable
from typing import Any, TypeGuard

from orchestra.api.errors import Cause
from orchestra.api.quantity import QUANTITY_ERROR, Quantity, QuantityError

Obj = dict[str, Any]
NameFn = Callable[[str], list[str]]

REQUIRED, INVALID = "FieldValueRequired", "FieldValueInvalid"
NOT_SUPPORTED, DUPLICATE = "FieldValueNotSupported", "FieldValueDuplicate"
FORBIDDEN, NOT_FOUND, TOO_LONG = "FieldValueForbidden", "FieldValueNotFound", "FieldValueTooLong"
IMMUTABLE = "field is immutable"
NEGATIVE = "must be greater than or equal to 0"

# --- field.Error constructors (messages as field.Error.ErrorBody renders them) ------------------------


def go_quote(s: str) -> str:
    """Go's %q for a string (close enough: JSON escaping of a UTF-8 string)."""
    return json.dumps(s, ensure_ascii=False)


def go_value(value: Any) -> str:
    """How field.Error prints a bad value: %q for strings, %v for numbers, %#v for the rest."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, GoRepr):
        return value.text
    if isinstance(value, dict):
        return go_string_map(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(go_quote(v) for v in value) + "}"
    return json.dumps(value, sort_keys=True)


class GoRepr:
    """A value already rendered the way Go's %#v would print it."""

    def __init__(self, text: str) -> None:
        self.text = text


def go_string_map(m: Any) -> str:
    if m is None:
        return "map[string]string(nil)"
    items = ", ".join(f"{go_quote(str(k))}:{go_quote(str(m[k]))}" for k in sorted(m))
    return "map[string]string{" + items + "}"


def go_label_selector(sel: Any) -> GoRepr:
    sel = sel if isinstance(sel, dict) else {}
    labels = (
        go_string_map(sel.get("matchLabels")) if sel.get("matchLabels") is not None else go_string_map(None)
    )
    exprs = sel.get("matchExpressions")
    if exprs is None:
        rendered = "[]v1.LabelSelectorRequirement(nil)"
    else:
        parts = []
        for e in exprs if isinstance(exprs, list) else []:
            e = e if isinstance(e, dict) else {}
            values = e.get("values")
            vals = (
                "[]string(nil)"
                if values is None
                else "[]string{" + ", ".join(go_quote(str(v)) for v in values) + "}"
            )
            parts.append(
                f"v1.LabelSelectorRequirement{{Key:{go_quote(str(e.get('key', '')))}, "
                f"Operator:{go_quote(str(e.get('operator', '')))}, Values:{vals}}}"
            )
        rendered = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    return GoRepr(f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{rendered}}}")


def required(path: str, detail: str = "") -> Cause:
    return Cause(REQUIRED, "Required value" + (f": {detail}" if detail else ""), path)


def invalid(path: str, value: Any, detail: str = "") -> Cause:
    return Cause(INVALID, f"Invalid value: {go_value(value)}" + (f": {detail}" if detail else ""), path)


def not_supported(path: str, value: Any, valid: Iterable[str]) -> Cause:
    quoted = ", ".join(go_quote(v) for v in valid)
    detail = f": supported values: {quoted}" if quoted else ""
    return Cause(NOT_SUPPORTED, f"Unsupported value: {go_value(value)}{detail}", path)


def duplicate(path: str, value: Any) -> Cause:
    return Cause(DUPLICATE, f"Duplicate value: {go_value(value)}", path)


def forbidden(path: str, detail: str) -> Cause:
    return Cause(FORBIDDEN, "Forbidden" + (f": {detail}" if detail else ""), path)


def not_found(path: str, value: Any) -> Cause:
    return Cause(NOT_FOUND, f"Not found: {go_value(value)}", path)


def too_long(path: str, limit: int) -> Cause:
    return Cause(TOO_LONG, f"Too long: must have at most {limit} bytes", path)


# --- k8s.io/apimachinery/pkg/util/validation ---------------------------------------------------------


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    out = msg + " (e.g. "
    for i, ex in enumerate(examples):
        if i > 0:
            out += " or "
        out += f"'{ex}', "
    return out + f"regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QNAME_FMT + ")?"
CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
PERCENT_FMT = "[0-9]+%"

DNS1123_LABEL_MSG = regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character",
    DNS1123_LABEL_FMT,
    "my-name",
    "123-abc",
)
DNS1123_SUBDOMAIN_MSG = regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character",
    DNS1123_SUBDOMAIN_FMT,
    "example.com",
)
DNS1035_LABEL_MSG = regex_error(
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character",
    DNS1035_LABEL_FMT,
    "my-name",
    "abc-123",
)
QNAME_ERR = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
LABEL_VALUE_MSG = regex_error(
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character",
    LABEL_VALUE_FMT,
    "MyValue",
    "my_value",
    "12345",
)
CONFIG_KEY_MSG = regex_error(
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
    CONFIG_KEY_FMT,
    "key.name",
    "KEY_NAME",
    "key-name",
)
PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"


def _full(fmt: str) -> re.Pattern[str]:
    return re.compile("^" + fmt + "$")


_DNS1123_LABEL_RE = _full(DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = _full(DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = _full(DNS1035_LABEL_FMT)
_QNAME_RE = _full(QNAME_FMT)
_LABEL_VALUE_RE = _full(LABEL_VALUE_FMT)
_CONFIG_KEY_RE = _full(CONFIG_KEY_FMT)
_PERCENT_RE = _full(PERCENT_FMT)


def is_dns1123_label(value: str) -> list[str]:
    errs = [max_len_error(63)] if len(value) > 63 else []
    if not _DNS1123_LABEL_RE.match(value):
        errs.append(DNS1123_LABEL_MSG)
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = [max_len_error(253)] if len(value) > 253 else []
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(DNS1123_SUBDOMAIN_MSG)
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = [max_len_error(63)] if len(value) > 63 else []
    if not _DNS1035_LABEL_RE.match(value):
        errs.append(DNS1035_LABEL_MSG)
    return errs


def is_qualified_name(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(QNAME_ERR, QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _QNAME_RE.match(name):
        errs.append("name part " + regex_error(QNAME_ERR, QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs = [max_len_error(63)] if len(value) > 63 else []
    if not _LABEL_VALUE_RE.match(value):
        errs.append(LABEL_VALUE_MSG)
    return errs


def is_valid_port_name(port: str) -> list[str]:
    errs = [max_len_error(15)] if len(port) > 15 else []
    if not re.fullmatch("[-a-z0-9]+", port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_config_map_key(key: str) -> list[str]:
    errs = [max_len_error(253)] if len(key) > 253 else []
    if not _CONFIG_KEY_RE.match(key):
        errs.append(CONFIG_KEY_MSG)
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _nonneg(value: Any, path: str) -> list[Cause]:
    return [invalid(path, value, NEGATIVE)] if _is_int(value) and value < 0 else []


def _port_num(value: Any, path: str) -> list[Cause]:
    return [] if _is_int(value) and 1 <= value <= 65535 else [invalid(path, value, PORT_RANGE_MSG)]


def _port_num_or_name(value: Any, path: str) -> list[Cause]:
    if isinstance(value, str):
        return [invalid(path, value, m) for m in is_valid_port_name(value)]
    if _is_int(value):
        if value == 0:
            return [required(path, "")]
        return _port_num(value, path)
    return [required(path, "")]


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _ld(value: Any) -> list[Obj]:
    return [_d(v) for v in _l(value)]


# --- metadata ----------------------------------------------------------------------------------------


def validate_labels(labels: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for key, value in sorted(_d(labels).items()):
        errs += [invalid(path, key, m) for m in is_qualified_name(key)]
        errs += [invalid(path, value, m) for m in is_valid_label_value(str(value))]
    return errs


def validate_annotations(annotations: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    total = 0
    for key, value in sorted(_d(annotations).items()):
        errs += [invalid(path, key, m) for m in is_qualified_name(key.lower())]
        total += len(key) + len(str(value))
    if total > 256 * 1024:
        errs.append(too_long(path, 256 * 1024))
    return errs


def validate_object_meta(meta: Any, name_fn: NameFn, path: str = "metadata") -> list[Cause]:
    meta = _d(meta)
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
    for fin in _l(meta.get("finalizers")):
        errs += [invalid(f"{path}.finalizers", fin, m) for m in is_qualified_name(str(fin))]
    return errs


def _validate_owner_refs(refs: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    controllers = []
    for ref in _ld(refs):
        for key, what in (("apiVersion", "version"), ("kind", "kind"), ("name", "name"), ("uid", "uid")):
            if not ref.get(key):
                errs.append(invalid(f"{path}.{key}", "", f"{what} must not be empty"))
        if ref.get("controller") is True:
            controllers.append(str(ref.get("name", "")))
    if len(controllers) > 1:
        errs.append(
            invalid(path, _l(refs), "Only one reference can have Controller set to true. Found \"true\" in "
                    f"references for {' and '.join(controllers)}")
        )  # fmt: skip
    return errs


# --- label selectors ---------------------------------------------------------------------------------

_SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(sel: Any, path: str) -> list[Cause]:
    sel = _d(sel)
    errs: list[Cause] = []
    for i, req in enumerate(_ld(sel.get("matchExpressions"))):
        p = f"{path}.matchExpressions[{i}]"
        op, values = req.get("operator", ""), _l(req.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                errs.append(required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    forbidden(
                        f"{p}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )
                )
        else:
            errs.append(invalid(f"{p}.operator", op, "not a valid selector operator"))
        errs += [
            invalid(f"{p}.key", req.get("key", ""), m) for m in is_qualified_name(str(req.get("key", "")))
        ]
    errs += validate_labels(sel.get("matchLabels"), f"{path}.matchLabels")
    return errs


def selector_matches(sel: Any, labels: Any) -> bool:
    """LabelSelectorAsSelector(sel).Matches(labels); a nil selector matches nothing, {} everything."""
    if not isinstance(sel, dict):
        return False
    labels = _d(labels)
    for k, v in _d(sel.get("matchLabels")).items():
        if labels.get(k) != v:
            return False
    for req in _ld(sel.get("matchExpressions")):
        key, op, values = req.get("key"), req.get("operator"), _l(req.get("values"))
        present = key in labels
        if (
            (op == "In" and (not present or labels[key] not in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def _selector_empty(sel: Any) -> bool:
    sel = _d(sel)
    return not _d(sel.get("matchLabels")) and not _l(sel.get("matchExpressions"))


# --- pod spec ----------------------------------------------------------------------------------------

_PROTOCOLS = ("SCTP", "TCP", "UDP")
_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
    "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
    "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
    "image",
)  # fmt: skip
_FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"


def _enum(value: Any, path: str, valid: tuple[str, ...]) -> list[Cause]:
    if value in (None, ""):
        return [required(path, "")]
    return [] if value in valid else [not_supported(path, value, valid)]


def _validate_volumes(volumes: Any, path: str) -> tuple[list[Cause], set[str]]:
    errs: list[Cause] = []
    names: set[str] = set()
    for i, vol in enumerate(_ld(volumes)):
        p = f"{path}[{i}]"
        el = _validate_volume_source(vol, p)
        name = vol.get("name") or ""
        if not name:
            el.append(required(f"{p}.name", ""))
        else:
            el += [invalid(f"{p}.name", name, m) for m in is_dns1123_label(name)]
        if name in names:
            el.append(duplicate(f"{p}.name", name))
        if el:
            errs += el
        else:
            names.add(name)
    return errs, names


def _validate_volume_source(vol: Obj, path: str) -> list[Cause]:
    sources = [k for k in _VOLUME_SOURCES if vol.get(k) is not None]
    if not sources:
        return [required(path, "must specify a volume type")]
    errs = [forbidden(f"{path}.{k}", "may not specify more than 1 volume type") for k in sources[1:]]
    src, p = _d(vol.get(sources[0])), f"{path}.{sources[0]}"
    must = {
        "configMap": "name",
        "secret": "secretName",
        "hostPath": "path",
        "persistentVolumeClaim": "claimName",
    }
    if sources[0] in must and not src.get(must[sources[0]]):
        errs.append(required(f"{p}.{must[sources[0]]}", ""))
    mode = src.get("defaultMode")
    if _is_int(mode) and not 0 <= mode <= 0o777:
        errs.append(invalid(f"{p}.defaultMode", mode, _FILE_MODE_MSG))
    return errs


def _validate_handler(handler: Obj, path: str, kinds: tuple[str, ...]) -> list[Cause]:
    errs: list[Cause] = []
    count = 0
    for kind in kinds:
        action = handler.get(kind)
        if action is None:
            continue
        if count > 0:
            errs.append(forbidden(f"{path}.{kind}", "may not specify more than 1 handler type"))
            continue
        count += 1
        action, p = _d(action), f"{path}.{kind}"
        if kind == "exec" and not _l(action.get("command")):
            errs.append(required(f"{p}.command", ""))
        elif kind == "httpGet":
            if not action.get("path"):
                errs.append(required(f"{p}.path", ""))
            errs += _port_num_or_name(action.get("port", 0), f"{p}.port")
            if action.get("scheme") not in ("HTTP", "HTTPS"):
                errs.append(not_supported(f"{p}.scheme", action.get("scheme", ""), ("HTTP", "HTTPS")))
        elif kind == "tcpSocket":
            errs += _port_num_or_name(action.get("port", 0), f"{p}.port")
        elif kind == "grpc":
            errs += _port_num(action.get("port", 0), f"{p}.port")
    if count == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


def _validate_probe(probe: Obj, path: str) -> list[Cause]:
    errs = _validate_handler(probe, path, ("exec", "httpGet", "tcpSocket", "grpc"))
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        errs += _nonneg(probe.get(key, 0), f"{path}.{key}")
    grace = probe.get("terminationGracePeriodSeconds")
    if _is_int(grace) and grace <= 0:
        errs.append(invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than 0"))
    return errs


def _quantity(value: Any, path: str, errs: list[Cause]) -> Quantity | None:
    try:
        return Quantity.parse(value)
    except QuantityError:
        errs.append(invalid(path, value, QUANTITY_ERROR))
        return None


def _validate_resources(res: Any, path: str) -> list[Cause]:
    res = _d(res)
    errs: list[Cause] = []
    limits: dict[str, Quantity] = {}
    for section in ("limits", "requests"):
        for name, raw in sorted(_d(res.get(section)).items()):
            p = f"{path}.{section}[{name}]"
            if (
                name not in _STANDARD_CONTAINER_RESOURCES
                and not name.startswith("hugepages-")
                and "/" not in name
            ):
                errs.append(invalid(p, name, "must be a standard resource for containers"))
            q = _quantity(raw, p, errs)
            if q is None:
                continue
            if q.value < 0:
                errs.append(invalid(p, str(q), NEGATIVE))
            if section == "limits":
                limits[name] = q
            elif name in limits and q.value > limits[name].value:
                errs.append(
                    invalid(
                        f"{path}.requests",
                        str(q),
                        f"must be less than or equal to {name} limit of {limits[name]}",
                    )
                )
    return errs


def _validate_env(env: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, var in enumerate(_ld(env)):
        p = f"{path}[{i}]"
        name = var.get("name") or ""
        if not name:
            errs.append(required(f"{p}.name", ""))
        elif any(ord(ch) < 32 or ord(ch) > 126 or ch == "=" for ch in name):
            errs.append(
                invalid(
                    f"{p}.name",
                    name,
                    "a valid environment variable name must consist only of printable ASCII characters other than '='",
                )
            )
        if var.get("value") and var.get("valueFrom") is not None:
            errs.append(invalid(f"{p}.valueFrom", "", "may not be specified when `value` is not empty"))
    return errs


def _validate_container_ports(ports: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(_ld(ports)):
        p = f"{path}[{i}]"
        name = port.get("name") or ""
        if name:
            msgs = is_valid_port_name(name)
            if msgs:
                errs += [invalid(f"{p}.name", name, m) for m in msgs]
            elif name in names:
                errs.append(duplicate(f"{p}.name", name))
            else:
                names.add(name)
        cp = port.get("containerPort", 0)
        errs += (
            [required(f"{p}.containerPort", "")] if cp in (0, None) else _port_num(cp, f"{p}.containerPort")
        )
        if port.get("hostPort") not in (0, None):
            errs += _port_num(port.get("hostPort"), f"{p}.hostPort")
        errs += _enum(port.get("protocol"), f"{p}.protocol", _PROTOCOLS)
    return errs


def _validate_volume_mounts(mounts: Any, volumes: set[str], path: str) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, m in enumerate(_ld(mounts)):
        p = f"{path}[{i}]"
        name, mount_path = m.get("name") or "", m.get("mountPath") or ""
        if not name:
            errs.append(required(f"{p}.name", ""))
        if name not in volumes:
            errs.append(not_found(f"{p}.name", name))
        if not mount_path:
            errs.append(required(f"{p}.mountPath", ""))
        if mount_path in seen:
            errs.append(invalid(f"{p}.mountPath", mount_path, "must be unique"))
        seen.add(mount_path)
    return errs


def _validate_container(c: Obj, path: str, volumes: set[str], *, init: bool) -> list[Cause]:
    errs: list[Cause] = []
    name = c.get("name") or ""
    if not name:
        errs.append(required(f"{path}.name", ""))
    else:
        errs += [invalid(f"{path}.name", name, m) for m in is_dns1123_label(name)]
    image = c.get("image") or ""
    if not image:
        errs.append(required(f"{path}.image", ""))
    elif image != image.strip():
        errs.append(invalid(f"{path}.image", image, "must not have leading or trailing whitespace"))
    errs += _validate_container_ports(c.get("ports"), f"{path}.ports")
    errs += _validate_env(c.get("env"), f"{path}.env")
    errs += _validate_volume_mounts(c.get("volumeMounts"), volumes, f"{path}.volumeMounts")
    errs += _enum(
        c.get("terminationMessagePolicy"), f"{path}.terminationMessagePolicy", _TERMINATION_MESSAGE_POLICIES
    )
    errs += _enum(c.get("imagePullPolicy"), f"{path}.imagePullPolicy", _PULL_POLICIES)
    errs += _validate_resources(c.get("resources"), f"{path}.resources")
    sidecar = init and c.get("restartPolicy") == "Always"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if c.get(probe) is None:
            continue
        if init and not sidecar:
            errs.append(
                forbidden(
                    f"{path}.{probe}", "may not be set for init containers without restartPolicy=Always"
                )
            )
            continue
        errs += _validate_probe(_d(c[probe]), f"{path}.{probe}")
        if probe != "readinessProbe" and _d(c[probe]).get("successThreshold", 1) != 1:
            errs.append(
                invalid(f"{path}.{probe}.successThreshold", _d(c[probe]).get("successThreshold"), "must be 1")
            )
    lifecycle = _d(c.get("lifecycle"))
    for hook in ("postStart", "preStop"):
        if lifecycle.get(hook) is not None:
            errs += _validate_handler(
                _d(lifecycle[hook]), f"{path}.lifecycle.{hook}", ("exec", "httpGet", "tcpSocket", "sleep")
            )
    return errs


def _validate_tolerations(tolerations: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, t in enumerate(_ld(tolerations)):
        p = f"{path}[{i}]"
        key, op, value, effect = (
            t.get("key", ""),
            t.get("operator", ""),
            t.get("value", ""),
            t.get("effect", ""),
        )
        if key:
            errs += [invalid(f"{p}.key", key, m) for m in is_qualified_name(key)]
        if not key and op != "Exists":
            errs.append(
                invalid(
                    f"{p}.operator",
                    op,
                    'operator must be Exists when `key` is empty, which means "match all values and all keys"',
                )
            )
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(
                invalid(f"{p}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")
            )
        if op in ("Equal", ""):
            msgs = is_valid_label_value(str(value))
            if msgs:
                errs.append(invalid(f"{p}.operator", value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(
                    invalid(
                        f"{p}.operator",
                        GoRepr(
                            f'core.Toleration{{Key:{go_quote(key)}, Operator:"Exists", Value:{go_quote(str(value))}}}'
                        ),
                        "value must be empty when `operator` is 'Exists'",
                    )
                )
        else:
            errs.append(not_supported(f"{p}.operator", op, ("Equal", "Exists")))
        if effect and effect not in _TAINT_EFFECTS:
            errs.append(not_supported(f"{p}.effect", effect, _TAINT_EFFECTS))
    return errs


def validate_pod_spec(spec: Any, path: str) -> list[Cause]:
    """ValidatePodSpec for a pod's or a template's spec at `path` (`spec`, `spec.template.spec`)."""
    spec = _d(spec)
    errs, volumes = _validate_volumes(spec.get("volumes"), f"{path}.volumes")
    containers = _ld(spec.get("containers"))
    init_containers = _ld(spec.get("initContainers"))
    if not containers:
        errs.append(required(f"{path}.containers", ""))
    names: set[str] = set()
    for i, c in enumerate(containers):
        p = f"{path}.containers[{i}]"
        errs += _validate_container(c, p, volumes, init=False)
        if c.get("name") in names:
            errs.append(duplicate(f"{p}.name", c.get("name")))
        names.add(c.get("name") or "")
    init_names = set(names)
    for i, c in enumerate(init_containers):
        p = f"{path}.initContainers[{i}]"
        errs += _validate_container(c, p, volumes, init=True)
        if c.get("name") in init_names:
            errs.append(duplicate(f"{p}.name", c.get("name")))
        init_names.add(c.get("name") or "")
    errs += _enum(spec.get("restartPolicy"), f"{path}.restartPolicy", _RESTART_POLICIES)
    errs += _enum(spec.get("dnsPolicy"), f"{path}.dnsPolicy", _DNS_POLICIES)
    errs += validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    sa = spec.get("serviceAccountName") or ""
    if sa:
        errs += [invalid(f"{path}.serviceAccountName", sa, m) for m in is_dns1123_subdomain(sa)]
    deadline = spec.get("activeDeadlineSeconds")
    if _is_int(deadline) and not 1 <= deadline <= 2147483647:
        errs.append(
            invalid(f"{path}.activeDeadlineSeconds", deadline, "must be between 1 and 2147483647, inclusive")
        )
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            errs += [invalid(f"{path}.{key}", spec[key], m) for m in is_dns1123_label(str(spec[key]))]
    errs += _validate_tolerations(spec.get("tolerations"), f"{path}.tolerations")
    return errs


def validate_pod_template(template: Any, path: str) -> list[Cause]:
    """ValidatePodTemplateSpec: template labels/annotations and the pod spec."""
    template = _d(template)
    meta = _d(template.get("metadata"))
    errs = validate_labels(meta.get("labels"), f"{path}.metadata.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.metadata.annotations")
    return errs + validate_pod_spec(template.get("spec"), f"{path}.spec")


# --- per kind ----------------------------------------------------------------------------------------


def _validate_pod(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += validate_pod_spec(obj.get("spec"), "spec")
    if old is not None:
        errs += _validate_pod_update(_d(obj.get("spec")), _d(old.get("spec")))
    return errs


POD_UPDATE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _validate_pod_update(new: Obj, old: Obj) -> list[Cause]:
    new_deadline, old_deadline = new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
    if (
        new_deadline is not None
        and old_deadline is not None
        and _is_int(new_deadline)
        and new_deadline > old_deadline
    ):
        return [
            invalid(
                "spec.activeDeadlineSeconds", new_deadline, "must be less than or equal to previous value"
            )
        ]
    if new_deadline is None and old_deadline is not None:
        return [
            invalid(
                "spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"
            )
        ]
    munged = json.loads(json.dumps(new))
    for key in ("containers", "initContainers"):
        for c_new, c_old in zip(_ld(munged.get(key)), _ld(old.get(key)), strict=False):
            if "image" in c_old:
                c_new["image"] = c_old["image"]
    munged.pop("activeDeadlineSeconds", None)
    if old_deadline is not None:
        munged["activeDeadlineSeconds"] = old_deadline
    old_tolerations = _l(old.get("tolerations"))
    if all(t in _l(munged.get("tolerations")) for t in old_tolerations):
        if old_tolerations or "tolerations" in old:
            munged["tolerations"] = old.get("tolerations")
        else:
            munged.pop("tolerations", None)
    if (
        _is_int(old.get("terminationGracePeriodSeconds"))
        and old["terminationGracePeriodSeconds"] < 0
        and new.get("terminationGracePeriodSeconds") == 1
    ):
        munged["terminationGracePeriodSeconds"] = old["terminationGracePeriodSeconds"]
    if munged == old:
        return []
    diff = _spec_diff(old, munged)
    return [forbidden("spec", POD_UPDATE_MSG + "\n" + diff)]


def _spec_diff(old: Obj, new: Obj) -> str:
    """A short stand-in for cmp.Diff: the top-level spec fields that differ."""
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    lines = ["  core.PodSpec{"]
    for k in keys:
        if k in old:
            lines.append(f"-  {k}: {json.dumps(old[k], sort_keys=True)},")
        if k in new:
            lines.append(f"+  {k}: {json.dumps(new[k], sort_keys=True)},")
    lines.append("  }")
    return "\n".join(lines) + "\n"


def _validate_intstr_percent(value: Any, path: str, *, max_100: bool) -> list[Cause]:
    if isinstance(value, str):
        if not _PERCENT_RE.match(value):
            return [
                invalid(
                    path,
                    value,
                    regex_error(
                        "a valid percent string must be a numeric string followed by an ending '%'",
                        PERCENT_FMT,
                        "1%",
                        "93%",
                    ),
                )
            ]
        if max_100 and int(value[:-1]) > 100:
            return [invalid(path, value, "must not be greater than 100%")]
        return []
    return _nonneg(value, path)


def _intstr_zero(value: Any) -> bool:
    return value in (0, "0%") or value is None


def _validate_rolling(rolling: Obj, path: str) -> list[Cause]:
    max_unavailable, max_surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    errs = _validate_intstr_percent(max_unavailable, f"{path}.maxUnavailable", max_100=True)
    errs += _validate_intstr_percent(max_surge, f"{path}.maxSurge", max_100=False)
    if _intstr_zero(max_unavailable) and _intstr_zero(max_surge):
        errs.append(
            invalid(
                f"{path}.maxUnavailable",
                max_unavailable if max_unavailable is not None else 0,
                "may not be 0 when `maxSurge` is 0",
            )
        )
    return errs


def _validate_selector_and_template(spec: Obj, kind_word: str) -> list[Cause]:
    """Selector required/non-empty/valid, and it must select the template's labels."""
    errs: list[Cause] = []
    sel = spec.get("selector")
    if sel is None:
        errs.append(required("spec.selector", ""))
    else:
        errs += validate_label_selector(sel, "spec.selector")
        if _selector_empty(sel):
            errs.append(
                invalid("spec.selector", go_label_selector(sel), f"empty selector is invalid for {kind_word}")
            )
    template = _d(spec.get("template"))
    labels = _d(template.get("metadata")).get("labels")
    if isinstance(sel, dict) and not _selector_empty(sel) and not selector_matches(sel, labels):
        errs.append(
            invalid(
                "spec.template.metadata.labels",
                GoRepr(go_string_map(labels)),
                "`selector` does not match template `labels`",
            )
        )
    errs += validate_pod_template(template, "spec.template")
    return errs


def _restart_always(spec: Obj) -> list[Cause]:
    policy = _d(_d(spec.get("template")).get("spec")).get("restartPolicy", "")
    if policy in ("", None) or policy == "Always":
        return []
    return [not_supported("spec.template.spec.restartPolicy", policy, ("Always",))]


def _selector_immutable(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        return []
    new_sel, old_sel = _d(obj.get("spec")).get("selector"), _d(old.get("spec")).get("selector")
    if new_sel != old_sel:
        return [invalid("spec.selector", go_label_selector(new_sel), IMMUTABLE)]
    return []


def _validate_deployment(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _d(obj.get("spec"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += _nonneg(spec.get("replicas", 0), "spec.replicas")
    errs += _validate_selector_and_template(spec, "deployment")
    errs += _restart_always(spec)
    strategy = _d(spec.get("strategy"))
    stype = strategy.get("type")
    if stype == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            errs.append(
                forbidden(
                    "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
                )
            )
    elif stype == "RollingUpdate":
        if strategy.get("rollingUpdate") is None:
            errs.append(required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"))
        else:
            errs += _validate_rolling(_d(strategy["rollingUpdate"]), "spec.strategy.rollingUpdate")
    else:
        rolling = (
            "(*apps.RollingUpdateDeployment)(nil)"
            if strategy.get("rollingUpdate") is None
            else "(*apps.RollingUpdateDeployment)(0xc000000000)"
        )
        bad = GoRepr(f"apps.DeploymentStrategy{{Type:{go_quote(str(stype or ''))}, RollingUpdate:{rolling}}}")
        errs.append(not_supported("spec.strategy", bad, ("Recreate", "RollingUpdate")))
    errs += _nonneg(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    errs += _nonneg(spec.get("revisionHistoryLimit", 0), "spec.revisionHistoryLimit")
    deadline = spec.get("progressDeadlineSeconds")
    if _is_int(deadline):
        errs += _nonneg(deadline, "spec.progressDeadlineSeconds")
        if deadline <= spec.get("minReadySeconds", 0):
            errs.append(
                invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
            )
    return errs + _selector_immutable(obj, old)


def _validate_replicaset(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _d(obj.get("spec"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += _nonneg(spec.get("replicas", 0), "spec.replicas")
    errs += _nonneg(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    # kube's ReplicaSet message really says "deployment".
    errs += _validate_selector_and_template(spec, "deployment")
    errs += _restart_always(spec)
    return errs + _selector_immutable(obj, old)


def _validate_daemonset(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _d(obj.get("spec"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += _validate_selector_and_template(spec, "daemonset")
    errs += _restart_always(spec)
    errs += _nonneg(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    strategy = _d(spec.get("updateStrategy"))
    stype = strategy.get("type", "")
    if stype == "RollingUpdate" and strategy.get("rollingUpdate") is not None:
        errs += _validate_rolling(_d(strategy["rollingUpdate"]), "spec.updateStrategy.rollingUpdate")
    elif stype not in ("RollingUpdate", "OnDelete"):
        errs.append(not_supported("spec.updateStrategy.type", stype, ("RollingUpdate", "OnDelete")))
    errs += _nonneg(spec.get("revisionHistoryLimit", 0), "spec.revisionHistoryLimit")
    return errs + _selector_immutable(obj, old)


_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def _validate_statefulset(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _d(obj.get("spec"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    policy = spec.get("podManagementPolicy", "")
    if not policy:
        errs.append(required("spec.podManagementPolicy", ""))
    elif policy not in ("OrderedReady", "Parallel"):
        errs.append(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = _d(spec.get("updateStrategy"))
    stype = strategy.get("type", "")
    if not stype:
        errs.append(required("spec.updateStrategy", ""))
    elif stype == "OnDelete" and strategy.get("rollingUpdate") is not None:
        errs.append(
            invalid(
                "spec.updateStrategy.rollingUpdate",
                strategy["rollingUpdate"],
                "only allowed for updateStrategy 'RollingUpdate'",
            )
        )
    elif stype == "RollingUpdate":
        errs += _nonneg(
            _d(strategy.get("rollingUpdate")).get("partition", 0),
            "spec.updateStrategy.rollingUpdate.partition",
        )
    elif stype not in ("OnDelete", "RollingUpdate"):
        errs.append(invalid("spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'"))
    errs += _nonneg(spec.get("replicas", 0), "spec.replicas")
    errs += _nonneg(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    errs += _validate_selector_and_template(spec, "statefulset")
    errs += _restart_always(spec)
    if _d(_d(spec.get("template")).get("spec")).get("activeDeadlineSeconds") is not None:
        errs.append(
            forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in StatefulSet is not Supported",
            )
        )
    if old is not None:
        old_spec = _d(old.get("spec"))
        rest_new = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
        rest_old = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
        if rest_new != rest_old:
            errs.append(
                forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                )
            )
    return errs


def _validate_job_spec(spec: Obj, path: str, *, template_in_job: bool) -> list[Cause]:
    errs: list[Cause] = []
    for key in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ):
        errs += _nonneg(spec.get(key), f"{path}.{key}")
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        errs.append(not_supported(f"{path}.completionMode", mode, ("NonIndexed", "Indexed")))
    if mode == "Indexed" and spec.get("completions") is None:
        errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
    sel = spec.get("selector")
    template = _d(spec.get("template"))
    if sel is not None:
        errs += validate_label_selector(sel, f"{path}.selector")
        labels = _d(template.get("metadata")).get("labels")
        if template_in_job and not _selector_empty(sel) and not selector_matches(sel, labels):
            errs.append(
                invalid(
                    f"{path}.template.metadata.labels",
                    GoRepr(go_string_map(labels)),
                    "`selector` does not match template `labels`",
                )
            )
    errs += validate_pod_template(template, f"{path}.template")
    policy = _d(template.get("spec")).get("restartPolicy", "")
    if policy not in ("OnFailure", "Never"):
        errs.append(not_supported(f"{path}.template.spec.restartPolicy", policy, ("OnFailure", "Never")))
    return errs


def _validate_job(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _d(obj.get("spec"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += _validate_job_spec(spec, "spec", template_in_job=True)
    if old is not None:
        old_spec = _d(old.get("spec"))
        if old_spec.get("selector") is not None and spec.get("selector") != old_spec.get("selector"):
            errs.append(invalid("spec.selector", go_label_selector(spec.get("selector")), IMMUTABLE))
        if spec.get("template") != old_spec.get("template"):
            errs.append(invalid("spec.template", GoRepr("core.PodTemplateSpec{...}"), IMMUTABLE))
        if spec.get("completionMode") != old_spec.get("completionMode"):
            errs.append(invalid("spec.completionMode", spec.get("completionMode"), IMMUTABLE))
    return errs


def _validate_cronjob(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _d(obj.get("spec"))
    name = _d(obj.get("metadata")).get("name") or ""
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    if len(name) > 52:
        errs.append(invalid("metadata.name", name, "must be no more than 52 characters"))
    schedule = spec.get("schedule") or ""
    if not schedule:
        errs.append(required("spec.schedule", ""))
    else:
        problem = cron_error(schedule)
        if problem:
            errs.append(invalid("spec.schedule", schedule, problem))
        if "TZ" in schedule and spec.get("timeZone") is not None:
            errs.append(
                invalid(
                    "spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"
                )
            )
    tz = spec.get("timeZone")
    if tz is not None and not _valid_time_zone(str(tz)):
        errs.append(invalid("spec.timeZone", tz, f"unknown time zone {tz}"))
    errs += _enum(spec.get("concurrencyPolicy"), "spec.concurrencyPolicy", ("Allow", "Forbid", "Replace"))
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs += _nonneg(spec.get(key), f"spec.{key}")
    job_template = _d(spec.get("jobTemplate"))
    errs += validate_labels(
        _d(job_template.get("metadata")).get("labels"), "spec.jobTemplate.metadata.labels"
    )
    errs += _validate_job_spec(_d(job_template.get("spec")), "spec.jobTemplate.spec", template_in_job=False)
    return errs


def _valid_time_zone(tz: str) -> bool:
    if tz in ("", "Local") or tz.startswith((".", "/")) or ".." in tz:
        return False
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


# --- cron (robfig/cron/v3 ParseStandard, with its error messages) ---------------------------------------

_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_BOUNDS: tuple[tuple[int, int, dict[str, int] | None], ...] = (
    (0, 59, None),
    (0, 23, None),
    (1, 31, None),
    (1, 12, _MONTHS),
    (0, 6, _DAYS),
)


def _atoi(expr: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", expr):
        raise ValueError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax')
    num = int(expr)
    if num < 0:
        raise ValueError(f"negative number ({num}) not allowed: {expr}")
    return num


def _cron_range(expr: str, lo: int, hi: int, names: dict[str, int] | None) -> None:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")

    def value(s: str) -> int:
        if names and s.lower() in names:
            return names[s.lower()]
        return _atoi(s)

    if low_high[0] in ("*", "?"):
        start, end = lo, hi
    else:
        start = value(low_high[0])
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = value(low_high[1])
        else:
            raise ValueError(f"too many hyphens: {expr}")
    step = 1
    if len(range_and_step) == 2:
        step = _atoi(range_and_step[1])
        if len(low_high) == 1:
            end = hi
    elif len(range_and_step) > 2:
        raise ValueError(f"too many slashes: {expr}")
    if start < lo:
        raise ValueError(f"beginning of range ({start}) below minimum ({lo}): {expr}")
    if end > hi:
        raise ValueError(f"end of range ({end}) above maximum ({hi}): {expr}")
    if start > end:
        raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ValueError(f"step of range should be a positive number: {expr}")


def cron_error(spec: str) -> str:
    """robfig/cron's ParseStandard error for `spec`, or "" when it parses."""
    spec = spec.strip()
    if not spec:
        return "empty spec string"
    if spec.startswith(("TZ=", "CRON_TZ=")):
        head, _, rest = spec.partition(" ")
        tz = head.split("=", 1)[1]
        if not _valid_time_zone(tz) and tz != "Local":
            return f"provided bad location {tz}: unknown time zone {tz}"
        spec = rest.strip()
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            return ""
        if spec.startswith("@every "):
            dur = spec[len("@every ") :]
            if re.fullmatch(r"([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+", dur):
                return ""
            return f'failed to parse duration {spec}: time: invalid duration "{dur}"'
        return f"unrecognized descriptor: {spec}"
    fields = spec.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    try:
        for field_text, (lo, hi, names) in zip(fields, _BOUNDS, strict=True):
            for expr in field_text.split(","):
                _cron_range(expr, lo, hi, names)
    except ValueError as exc:
        return str(exc)
    return ""


# --- services and the rest ------------------------------------------------------------------------------

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
NODE_PORT_RANGE = (30000, 32767)


def _validate_service(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _d(obj.get("spec"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1035_label)
    stype = spec.get("type", "")
    headless = spec.get("clusterIP") == "None"
    ports = _ld(spec.get("ports"))
    if not ports and not headless and stype != "ExternalName":
        errs.append(required("spec.ports", ""))
    if stype == "ExternalName":
        if _l(spec.get("clusterIPs")):
            errs.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        cname = str(spec.get("externalName") or "").removesuffix(".")
        if cname:
            errs += [invalid("spec.externalName", cname, m) for m in is_dns1123_subdomain(cname)]
        else:
            errs.append(required("spec.externalName", ""))
    names: set[str] = set()
    for i, port in enumerate(ports):
        errs += _validate_service_port(port, f"spec.ports[{i}]", names, require_name=len(ports) > 1)
    if spec.get("selector") is not None:
        errs += validate_labels(spec.get("selector"), "spec.selector")
    errs += _enum(spec.get("sessionAffinity"), "spec.sessionAffinity", ("ClientIP", "None"))
    errs += _enum(stype, "spec.type", _SERVICE_TYPES)
    seen_ports: set[tuple[Any, Any]] = set()
    seen_node_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        p = f"spec.ports[{i}]"
        node_port = port.get("nodePort")
        if node_port not in (None, 0):
            if stype == "ClusterIP":
                errs.append(forbidden(f"{p}.nodePort", "may not be used when `type` is 'ClusterIP'"))
            elif _is_int(node_port) and not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                errs.append(
                    invalid(
                        f"{p}.nodePort",
                        node_port,
                        f"provided port is not in the valid range. The range of valid ports is {NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}",
                    )
                )
            key = (port.get("protocol"), node_port)
            if key in seen_node_ports:
                errs.append(duplicate(f"{p}.nodePort", node_port))
            seen_node_ports.add(key)
        key = (port.get("protocol"), port.get("port"))
        if key in seen_ports:
            errs.append(
                duplicate(p, GoRepr(f"core.ServicePort{{Protocol:{go_quote(str(key[0]))}, Port:{key[1]}}}"))
            )
        seen_ports.add(key)
    etp = spec.get("externalTrafficPolicy")
    if etp is not None and stype in ("ClusterIP", "ExternalName"):
        errs.append(
            invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services")
        )
    elif etp is not None:
        errs += _enum(etp, "spec.externalTrafficPolicy", ("Cluster", "Local"))
    if spec.get("internalTrafficPolicy") is not None:
        errs += _enum(spec["internalTrafficPolicy"], "spec.internalTrafficPolicy", ("Cluster", "Local"))
    if old is not None:
        errs += _validate_cluster_ip_update(spec, _d(old.get("spec")))
    return errs


def _validate_service_port(port: Obj, path: str, names: set[str], *, require_name: bool) -> list[Cause]:
    errs: list[Cause] = []
    name = port.get("name") or ""
    if require_name and not name:
        errs.append(required(f"{path}.name", ""))
    elif name:
        errs += [invalid(f"{path}.name", name, m) for m in is_dns1123_label(name)]
        if name in names:
            errs.append(duplicate(f"{path}.name", name))
        names.add(name)
    errs += _port_num(port.get("port", 0), f"{path}.port")
    errs += _enum(port.get("protocol"), f"{path}.protocol", _PROTOCOLS)
    errs += _port_num_or_name(port.get("targetPort", 0), f"{path}.targetPort")
    return errs


def _validate_cluster_ip_update(new: Obj, old: Obj) -> list[Cause]:
    # Changing to/from ExternalName releases/allocates the IP: allowed. An empty new value means
    # "keep what was allocated" (the core carries it over).
    if "ExternalName" in (new.get("type"), old.get("type")):
        return []
    new_ips, old_ips = _l(new.get("clusterIPs")), _l(old.get("clusterIPs"))
    if new_ips and old_ips and new_ips[0] != old_ips[0]:
        return [invalid("spec.clusterIPs[0]", new_ips, "may not change once set")]
    new_ip, old_ip = new.get("clusterIP") or "", old.get("clusterIP") or ""
    if new_ip and old_ip and new_ip != old_ip:
        return [invalid("spec.clusterIP", new_ip, IMMUTABLE)]
    return []


def _validate_data_keys(data: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for key in sorted(_d(data)):
        errs += [invalid(f"{path}[{key}]", key, m) for m in is_config_map_key(key)]
    return errs


def _immutable_data(obj: Obj, old: Obj | None, keys: tuple[str, ...]) -> list[Cause]:
    if old is None or old.get("immutable") is not True:
        return []
    errs: list[Cause] = []
    if obj.get("immutable") is not True:
        errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    for key in keys:
        if (obj.get(key) or {}) != (old.get(key) or {}):
            errs.append(forbidden(key, "field is immutable when `immutable` is set"))
    return errs


def _validate_configmap(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += _validate_data_keys(obj.get("data"), "data")
    for key in sorted(_d(obj.get("data"))):
        if key in _d(obj.get("binaryData")):
            errs.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    errs += _validate_data_keys(obj.get("binaryData"), "binaryData")
    size = sum(len(str(v)) for v in _d(obj.get("data")).values()) + sum(
        len(str(v)) * 3 // 4 for v in _d(obj.get("binaryData")).values()
    )
    if size > 1024 * 1024:
        errs.append(too_long("", 1024 * 1024))
    return errs + _immutable_data(obj, old, ("data", "binaryData"))


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


def _validate_secret(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    data = _d(obj.get("data"))
    errs += _validate_data_keys(data, "data")
    for key in _SECRET_REQUIRED_KEYS.get(str(obj.get("type")), ()):
        if key not in data:
            errs.append(required(f"data[{key}]", ""))
    if obj.get("type") == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
        errs.append(required("data[username]", ""))
        errs.append(required("data[password]", ""))
    if old is not None and old.get("type") != obj.get("type"):
        errs.append(invalid("type", obj.get("type"), IMMUTABLE))
    return errs + _immutable_data(obj, old, ("data",))


def _validate_namespace(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_label)
    for i, fin in enumerate(_l(_d(obj.get("spec")).get("finalizers"))):
        fin = str(fin)
        errs += [invalid(f"spec.finalizers[{i}]", fin, m) for m in is_qualified_name(fin)]
        if "/" not in fin and fin != "kubernetes":
            errs.append(
                invalid(
                    f"spec.finalizers[{i}]",
                    fin,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    return errs


def _validate_node(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    for i, taint in enumerate(_ld(_d(obj.get("spec")).get("taints"))):
        p = f"spec.taints[{i}]"
        key = taint.get("key") or ""
        errs += [invalid(f"{p}.key", key, m) for m in is_qualified_name(key)]
        if taint.get("value"):
            errs += [
                invalid(f"{p}.value", taint["value"], m) for m in is_valid_label_value(str(taint["value"]))
            ]
        errs += _enum(taint.get("effect"), f"{p}.effect", _TAINT_EFFECTS)
    return errs


def _validate_event(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    involved = _d(obj.get("involvedObject"))
    namespace = _d(obj.get("metadata")).get("namespace") or ""
    if involved.get("namespace") and namespace and involved["namespace"] != namespace:
        errs.append(
            invalid("involvedObject.namespace", involved["namespace"], "does not match event.namespace")
        )
    if obj.get("type") not in (None, "", "Normal", "Warning"):
        errs.append(not_supported("type", obj.get("type"), ("Normal", "Warning")))
    return errs


def _validate_lease(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    spec = _d(obj.get("spec"))
    duration = spec.get("leaseDurationSeconds")
    if _is_int(duration) and duration <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    errs += _nonneg(spec.get("leaseTransitions"), "spec.leaseTransitions")
    return errs


def _validate_endpointslice(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    address_type = obj.get("addressType") or ""
    errs += _enum(address_type, "addressType", ("FQDN", "IPv4", "IPv6"))
    for i, ep in enumerate(_ld(obj.get("endpoints"))):
        if not _l(ep.get("addresses")):
            errs.append(required(f"endpoints[{i}].addresses", "must contain at least 1 address"))
    for i, port in enumerate(_ld(obj.get("ports"))):
        if port.get("port") is not None:
            errs += _port_num(port.get("port"), f"ports[{i}].port")
        if port.get("protocol") is not None:
            errs += _enum(port.get("protocol"), f"ports[{i}].protocol", _PROTOCOLS)
    if old is not None and old.get("addressType") != obj.get("addressType"):
        errs.append(invalid("addressType", address_type, IMMUTABLE))
    return errs


def _validate_endpoints(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    for i, subset in enumerate(_ld(obj.get("subsets"))):
        for j, port in enumerate(_ld(subset.get("ports"))):
            errs += _port_num(port.get("port", 0), f"subsets[{i}].ports[{j}].port")
            errs += _enum(port.get("protocol"), f"subsets[{i}].ports[{j}].protocol", _PROTOCOLS)
    return errs


def _validate_generic(obj: Obj, old: Obj | None) -> list[Cause]:
    return validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)


_BY_KIND: dict[str, Callable[[Obj, Obj | None], list[Cause]]] = {
    "Pod": _validate_pod,
    "Deployment": _validate_deployment,
    "ReplicaSet": _validate_replicaset,
    "DaemonSet": _validate_daemonset,
    "StatefulSet": _validate_statefulset,
    "Job": _validate_job,
    "CronJob": _validate_cronjob,
    "Service": _validate_service,
    "ConfigMap": _validate_configmap,
    "Secret": _validate_secret,
    "Namespace": _validate_namespace,
    "Node": _validate_node,
    "Event": _validate_event,
    "Lease": _validate_lease,
    "EndpointSlice": _validate_endpointslice,
    "Endpoints": _validate_endpoints,
}


def validate(kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Every semantic problem with `obj` (a defaulted object), in kube's order; [] when valid."""
    return _BY_KIND.get(kind, _validate_generic)(obj, old)
