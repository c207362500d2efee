"""certificates.k8s.io/v1 CertificateSigningRequest validation (kube's pkg/apis/certificates/validation).

Owns: `validate_csr(obj, old)`: any name; spec.request a PEM CERTIFICATE REQUEST with a valid
signature; spec.usages present, known and without duplicates; spec.signerName a qualified
`domain/path` (not kubernetes.io/legacy-unknown in v1); spec.expirationSeconds >= 600; conditions
typed, Approved and Denied exclusive and True, no type twice; status.certificate PEM CERTIFICATE
blocks. On update: an issued certificate cannot change, and an Approved or Denied condition cannot
be removed. (The spec is kept from the stored object by the core's strategy, as kube's.)
Must not import: anything in orchestra.api.policy.validation but meta.
"""

from __future__ import annotations

import base64
import binascii

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import GoRepr, duplicate, forbidden, invalid, not_supported, required
from orchestra.api.machinery.names import is_dns1123_subdomain
from orchestra.api.policy import certificates as certs
from orchestra.api.policy.validation.meta import validate_object_meta
from orchestra.objects import Obj, as_dict, as_list, only_dicts

CERT_DATA = GoRepr('"<certificate data>"')
MIN_EXPIRATION = 600


def _signer_name(value: object) -> list[Cause]:
    """apivalidation.ValidateSignerName."""
    path = "spec.signerName"
    if not isinstance(value, str) or not value:
        return [required(path)]
    domain, slash, rest = value.partition("/")
    if not slash or not domain or not rest:
        return [invalid(path, value, "must be a fully qualified domain and path of the form "
                                     "'example.com/signer-name'")]
    errs = [invalid(path, value, f"validating domain component: {e}") for e in is_dns1123_subdomain(domain)]
    if len(rest) > 571:
        errs.append(invalid(path, value, "validating path component: must be no more than 571 characters"))
    return errs


def _conditions(obj: Obj) -> list[Cause]:
    path = "status.conditions"
    conditions = only_dicts(as_dict(obj.get("status")).get("conditions"))
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, c in enumerate(conditions):
        kind = str(c.get("type") or "")
        if not kind:
            errs.append(required(f"{path}[{i}].type"))
        if kind in (certs.APPROVED, certs.DENIED, certs.FAILED):
            if c.get("status") != "True":
                errs.append(not_supported(f"{path}[{i}].status", c.get("status") or "", ["True"]))
            if kind in seen:
                errs.append(duplicate(f"{path}[{i}].type", kind))
        elif c.get("status") not in ("True", "False", "Unknown"):
            errs.append(not_supported(f"{path}[{i}].status", c.get("status") or "",
                                      ["False", "True", "Unknown"]))
        seen.add(kind)
    if certs.APPROVED in seen and certs.DENIED in seen:
        errs.append(invalid(path, GoRepr("[...]"), "Approved and Denied conditions are mutually exclusive"))
    return errs


def _certificate(obj: Obj) -> list[Cause]:
    value = as_dict(obj.get("status")).get("certificate")
    if not value:
        return []
    try:
        pem = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        pem = b""
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        return [invalid("status.certificate", CERT_DATA, "must contain at least one CERTIFICATE PEM block")]
    return []


def validate_csr(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_object_meta(obj.get("metadata"), lambda name: [])
    spec = as_dict(obj.get("spec"))
    try:
        certs.parse_request(spec.get("request"))
    except certs.CsrError as exc:
        errs.append(invalid("spec.request", GoRepr("[]byte{...}"), str(exc)))
    usages = as_list(spec.get("usages"))
    if not usages:
        errs.append(required("spec.usages", "usages must be provided"))
    seen: set[str] = set()
    for i, usage in enumerate(usages):
        if usage not in certs.VALID_USAGES:
            errs.append(not_supported(f"spec.usages[{i}]", usage, sorted(certs.VALID_USAGES)))
        elif usage in seen:
            errs.append(duplicate(f"spec.usages[{i}]", usage))
        seen.add(str(usage))
    signer = spec.get("signerName")
    if signer == certs.LEGACY_UNKNOWN:
        errs.append(invalid("spec.signerName", signer,
                            "the legacy signerName is not allowed via this API version"))
    else:
        errs.extend(_signer_name(signer))
    seconds = spec.get("expirationSeconds")
    if isinstance(seconds, int) and seconds < MIN_EXPIRATION:
        errs.append(invalid("spec.expirationSeconds", seconds,
                            "may not specify a duration less than 600 seconds (10 minutes)"))
    errs.extend(_conditions(obj))
    errs.extend(_certificate(obj))
    if old is not None:
        errs.extend(_update(obj, old))
    return errs


def _update(obj: Obj, old: Obj) -> list[Cause]:
    errs: list[Cause] = []
    before = as_dict(old.get("status")).get("certificate")
    if before and as_dict(obj.get("status")).get("certificate") != before:
        errs.append(invalid("status.certificate", CERT_DATA,
                            "updates may not modify existing certificate content"))
    kept = certs.condition_types(obj)
    for kind in (certs.APPROVED, certs.DENIED):
        if kind in certs.condition_types(old) and kind not in kept:
            errs.append(forbidden("status.conditions",
                                  f"updates may not remove a condition of type {kind!r}"))
    return errs
