"""apiregistration.k8s.io/v1 APIService (kube-aggregator's pkg/apis/apiregistration/validation).

Owns: ValidateAPIService — the name must be `spec.version + "." + spec.group` (and a path segment);
only v1 may have an empty group; the group a DNS subdomain, the version a DNS-1035 label; the
priorities in range; a Local service (no spec.service) takes no caBundle nor insecureSkipTLSVerify;
a service reference names its namespace, name and a valid port.
Must not import: the other kinds' validators or the dispatch in __init__.
"""

from __future__ import annotations

import base64
import binascii

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import go_quote, invalid, is_int, required
from orchestra.api.machinery.names import is_dns1035_label, is_dns1123_subdomain, is_path_segment_name
from orchestra.api.policy.validation.meta import validate_object_meta
from orchestra.objects import Obj, as_dict


def _ca_bytes(value: object) -> int:
    try:
        return len(base64.b64decode(str(value or ""), validate=True))
    except (binascii.Error, ValueError):
        return len(str(value or ""))


def validate_api_service(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    group, version = str(spec.get("group") or ""), str(spec.get("version") or "")
    required_name = f"{version}.{group}"

    def name_rule(name: str) -> list[str]:
        failures = is_path_segment_name(name)
        if failures:
            return failures
        if name == required_name:
            return []
        return [f'must be `spec.version+"."+spec.group`: {go_quote(required_name)}']

    errs = validate_object_meta(obj.get("metadata"), name_rule)
    if not group and version != "v1":
        errs.append(required("spec.group", "only v1 may have an empty group and it better be legacy kube"))
    if group:
        errs += [invalid("spec.group", group, m) for m in is_dns1123_subdomain(group)]
    errs += [invalid("spec.version", version, m) for m in is_dns1035_label(version)]
    for key, limit in (("groupPriorityMinimum", 20000), ("versionPriority", 1000)):
        value = spec.get(key)
        number = value if is_int(value) else 0
        if number <= 0 or number > limit:
            errs.append(invalid(f"spec.{key}", number, f"must be positive and less than {limit}"))
    insecure = bool(spec.get("insecureSkipTLSVerify"))
    service = spec.get("service")
    if service is None:
        if spec.get("caBundle"):
            errs.append(invalid("spec.caBundle", f"{_ca_bytes(spec['caBundle'])} bytes",
                                "local APIServices may not have a caBundle"))
        if insecure:
            errs.append(invalid("spec.insecureSkipTLSVerify", True,
                                "local APIServices may not have insecureSkipTLSVerify"))
        return errs
    service = as_dict(service)
    for key in ("namespace", "name"):
        if not service.get(key):
            errs.append(required(f"spec.service.{key}", ""))
    port = service.get("port")
    if not is_int(port) or not 0 < port < 65536:
        errs.append(invalid("spec.service.port", port,
                            "port is not valid: must be between 1 and 65535, inclusive"))
    if insecure and spec.get("caBundle"):
        errs.append(invalid("spec.insecureSkipTLSVerify", True, "may not be true if caBundle is present"))
    return errs
