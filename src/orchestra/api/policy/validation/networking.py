"""networking.k8s.io/v1: Ingress and IngressClass (pkg/apis/networking/validation of kube 1.32).

Owns: validate_ingress (ValidateIngressCreate / ValidateIngressUpdate, and the status rules of
ValidateIngressStatusUpdate: status is only written through the status subresource, so checking it on
every write sees a user's status only there) and validate_ingress_class, with kube's field paths and
messages: host wildcards, absolute paths for Exact/Prefix, pathType, backends (service XOR resource,
port name XOR number), TLS hosts and secret names, ingressClassName, the IngressClass controller and
parameters.
Must not import: the pod, workload, service or config validators, or the dispatch in __init__.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import (
    IMMUTABLE,
    GoRepr,
    forbidden,
    invalid,
    is_int,
    not_supported,
    required,
    too_long,
)
from orchestra.api.machinery.names import (
    DNS1123_SUBDOMAIN_FMT,
    PORT_RANGE_MSG,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_valid_port_name,
    max_len_error,
    regex_error,
)
from orchestra.api.policy.validation.meta import validate_object_meta
from orchestra.objects import Obj, annotations_of, as_dict, as_dicts, as_list

CLASS_ANNOTATION = "kubernetes.io/ingress.class"
PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")  # sets.String.List(): sorted
PARAMETER_SCOPES = ("Cluster", "Namespace")
MAX_CONTROLLER_LEN = 250
_INVALID_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_SUFFIXES = ("/..", "/.")

WILDCARD_FMT = r"\*\." + DNS1123_SUBDOMAIN_FMT
WILDCARD_MSG = regex_error(
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must "
    "consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
    WILDCARD_FMT,
    "*.example.com",
)
_WILDCARD_RE = re.compile("^" + WILDCARD_FMT + "$")
HTTP_PATH_FMT = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+"
_HTTP_PATH_RE = re.compile("^" + HTTP_PATH_FMT + "$")
_SLOPPY_IPV4 = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def is_wildcard_dns1123_subdomain(value: str) -> list[str]:
    errs = [max_len_error(253)] if len(value) > 253 else []
    if not _WILDCARD_RE.match(value):
        errs.append(WILDCARD_MSG)
    return errs


def is_ip(value: str) -> bool:
    """netutils.ParseIPSloppy: IPv4 may have leading zeros."""
    m = _SLOPPY_IPV4.match(value)
    if m:
        return all(int(part) <= 255 for part in m.groups())
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def _path_segment_name(value: str) -> list[str]:
    """path.IsValidPathSegmentName."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in value]


# --- Ingress -----------------------------------------------------------------------------------------


def validate_ingress(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    errs = validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    errs += _ingress_spec(spec, old)
    if old is None:
        annotation = annotations_of(obj).get(CLASS_ANNOTATION)
        class_name = spec.get("ingressClassName")
        if annotation is not None and class_name is not None and annotation != class_name:
            errs.append(invalid(f"annotations.{CLASS_ANNOTATION}", annotation,
                                "must match `ingressClassName` when both are specified"))
    status = as_dict(obj.get("status"))
    old_status = as_dict(as_dict(old).get("status")) if old is not None else {}
    if status != old_status:
        errs += _load_balancer_status(as_dict(status.get("loadBalancer")))
    return errs


def _ingress_spec(spec: Obj, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    rules, default = as_dicts(spec.get("rules")), spec.get("defaultBackend")
    if not rules and default is None:
        # Go prints the nil (absent) or empty rules slice with %#v
        shown = GoRepr(
            "[]networking.IngressRule{}" if spec.get("rules") is not None else "[]networking.IngressRule(nil)"
        )
        errs.append(invalid("spec", shown, "either `defaultBackend` or `rules` must be specified"))
    if isinstance(default, dict):
        errs += _backend(default, "spec.defaultBackend")
    old_rules = as_dicts(as_dict(as_dict(old).get("spec")).get("rules")) if old is not None else []
    # like kube: a stored wildcard rule that was accepted with invalid paths may keep them on updates
    allow_wildcard = any("*" in str(r.get("host") or "") and _rule_value(r, "") for r in old_rules)
    for i, rule in enumerate(rules):
        errs += _rule(rule, f"spec.rules[{i}]", allow_wildcard)
    old_tls = as_dicts(as_dict(as_dict(old).get("spec")).get("tls")) if old is not None else []
    allow_secret = any(_secret_name(str(t.get("secretName") or "")) for t in old_tls)
    for i, tls in enumerate(as_dicts(spec.get("tls"))):
        errs += _tls(tls, f"spec.tls[{i}]", allow_secret)
    class_name = spec.get("ingressClassName")
    if isinstance(class_name, str):
        errs += [invalid("spec.ingressClassName", class_name, m) for m in is_dns1123_subdomain(class_name)]
    return errs


def _rule(rule: Obj, path: str, allow_invalid_wildcard: bool) -> list[Cause]:
    errs: list[Cause] = []
    host = str(rule.get("host") or "")
    wildcard = False
    if host:
        if is_ip(host):
            errs.append(invalid(f"{path}.host", host, "must be a DNS name, not an IP address"))
        if "*" in host:
            errs += [invalid(f"{path}.host", host, m) for m in is_wildcard_dns1123_subdomain(host)]
            wildcard = True
        else:
            errs += [invalid(f"{path}.host", host, m) for m in is_dns1123_subdomain(host)]
    if not wildcard or not allow_invalid_wildcard:
        errs += _rule_value(rule, path)
    return errs


def _rule_value(rule: Obj, path: str) -> list[Cause]:
    http = rule.get("http")
    if not isinstance(http, dict):
        return []
    prefix = f"{path}.http" if path else "http"
    paths = as_dicts(http.get("paths"))
    errs = [] if paths else [required(f"{prefix}.paths", "")]
    for i, p in enumerate(paths):
        errs += _http_path(p, f"{prefix}.paths[{i}]")
    return errs


def _http_path(p: Obj, path: str) -> list[Cause]:
    path_type, value = p.get("pathType"), str(p.get("path") or "")
    if path_type is None:
        return [required(f"{path}.pathType", "pathType must be specified")]
    errs: list[Cause] = []
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errs.append(invalid(f"{path}.path", value, "must be an absolute path"))
        if value:
            errs += [invalid(f"{path}.path", value, f"must not contain '{seq}'")
                     for seq in _INVALID_SEQUENCES if seq in value]
            errs += [invalid(f"{path}.path", value, f"cannot end with '{suffix}'")
                     for suffix in _INVALID_SUFFIXES if value.endswith(suffix)]
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errs.append(invalid(f"{path}.path", value, "must be an absolute path"))
    else:
        errs.append(not_supported(f"{path}.pathType", path_type, PATH_TYPES))
    return errs + _backend(as_dict(p.get("backend")), f"{path}.backend")


def _backend(backend: Obj, path: str) -> list[Cause]:
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        return [invalid(path, "", "cannot set both resource and service backends")]
    if isinstance(resource, dict):
        return _typed_reference(resource, f"{path}.resource")
    if not isinstance(service, dict):
        return [invalid(path, "", "resource or service backend is required")]
    errs: list[Cause] = []
    name = str(service.get("name") or "")
    if not name:
        errs.append(required(f"{path}.service.name", ""))
    else:
        errs += [invalid(f"{path}.service.name", name, m) for m in is_dns1035_label(name)]
    port = as_dict(service.get("port"))
    port_name, number = str(port.get("name") or ""), port.get("number") or 0
    if port_name and number:
        errs.append(invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        errs += [invalid(f"{path}.service.port.name", port_name, m) for m in is_valid_port_name(port_name)]
    elif number:
        if not (is_int(number) and 1 <= number <= 65535):
            errs.append(invalid(f"{path}.service.port.number", number, PORT_RANGE_MSG))
    else:
        errs.append(required(path, "port name or number is required"))
    return errs


def _typed_reference(ref: Obj, path: str) -> list[Cause]:
    """validateIngressTypedLocalObjectReference (a resource backend)."""
    errs: list[Cause] = []
    group = ref.get("apiGroup")
    if isinstance(group, str):
        errs += [invalid(f"{path}.apiGroup", group, m) for m in is_dns1123_subdomain(group)]
    for key in ("kind", "name"):
        value = str(ref.get(key) or "")
        if not value:
            errs.append(required(f"{path}.{key}", ""))
        else:
            errs += [invalid(f"{path}.{key}", value, m) for m in _path_segment_name(value)]
    return errs


def _secret_name(name: str) -> list[str]:
    return is_dns1123_subdomain(name) if name else []


def _tls(tls: Obj, path: str, allow_invalid_secret: bool) -> list[Cause]:
    errs: list[Cause] = []
    for i, host in enumerate(as_list(tls.get("hosts"))):
        host = str(host)
        check = is_wildcard_dns1123_subdomain if "*" in host else is_dns1123_subdomain
        errs += [invalid(f"{path}.hosts[{i}]", host, m) for m in check(host)]
    if not allow_invalid_secret:
        secret = str(tls.get("secretName") or "")
        errs += [invalid(f"{path}.secretName", secret, m) for m in _secret_name(secret)]
    return errs


def _load_balancer_status(lb: Obj) -> list[Cause]:
    errs: list[Cause] = []
    for i, entry in enumerate(as_dicts(lb.get("ingress"))):
        path = f"status.loadBalancer.ingress[{i}]"
        ip, hostname = str(entry.get("ip") or ""), str(entry.get("hostname") or "")
        if ip and not is_ip(ip):
            errs.append(invalid(f"{path}.ip", ip, IP_MSG))
        if hostname:
            errs += [invalid(f"{path}.hostname", hostname, m) for m in is_dns1123_subdomain(hostname)]
            if is_ip(hostname):
                errs.append(invalid(f"{path}.hostname", hostname, "must be a DNS name, not an IP address"))
    return errs


# --- IngressClass ------------------------------------------------------------------------------------


def validate_ingress_class(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    errs: list[Cause] = []
    if old is not None:  # ValidateIngressClassUpdate: the immutable controller first
        old_controller = as_dict(old.get("spec")).get("controller")
        if spec.get("controller") != old_controller:
            errs.append(invalid("spec.controller", spec.get("controller"), IMMUTABLE))
    errs += validate_object_meta(obj.get("metadata"), is_dns1123_subdomain)
    controller = str(spec.get("controller") or "")
    if not controller:
        errs.append(required("spec.controller", ""))
    else:
        if len(controller) > MAX_CONTROLLER_LEN:
            errs.append(too_long("spec.controller", MAX_CONTROLLER_LEN))
        errs += _domain_prefixed_path("spec.controller", controller)
    params = spec.get("parameters")
    if isinstance(params, dict):
        errs += _parameters(params, "spec.parameters")
    return errs


def _domain_prefixed_path(path: str, value: str) -> list[Cause]:
    """validation.IsDomainPrefixedPath."""
    host, sep, rest = value.partition("/")
    if not sep or not host or not rest:
        return [invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    errs = [invalid(path, host, m) for m in is_dns1123_subdomain(host)]
    if not _HTTP_PATH_RE.match(rest):
        errs.append(invalid(path, rest, regex_error("Invalid path", HTTP_PATH_FMT)))
    return errs


def _parameters(params: Obj, path: str) -> list[Cause]:
    errs = _typed_reference(params, path)
    scope = params.get("scope")
    if scope is None:
        return [*errs, required(f"{path}.scope", "")]
    namespace: Any = params.get("namespace")
    if scope not in PARAMETER_SCOPES:
        errs.append(not_supported(f"{path}.scope", scope, PARAMETER_SCOPES))
    elif scope == "Namespace":
        if namespace is None:
            errs.append(required(f"{path}.namespace", "`parameters.scope` is set to 'Namespace'"))
        else:
            errs += [invalid(f"{path}.namespace", namespace, m) for m in is_dns1123_label(str(namespace))]
    elif namespace is not None:
        errs.append(forbidden(f"{path}.namespace", "`parameters.scope` is set to 'Cluster'"))
    return errs
