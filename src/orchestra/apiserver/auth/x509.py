"""Client certificates as users: kube's x509 authenticator with CommonNameUserConversion.

Owns: `ClientCertificates(ca_cert).authenticate(pem) -> UserInfo | None`: the certificate must be
issued by the cluster CA (its signature checked by `cryptography`), be within its validity and
allow client authentication (ExtKeyUsage clientAuth, or none); its Common Name is the user and
each Organization a group; an empty Common Name is not a user (None: the bearer token may still
authenticate the request). The TLS handshake already refuses certificates of other CAs (tlsconn.py);
this check does not rely on that. Results are cached per certificate (a connection presents the same
one on every request); only the validity window is re-checked on a hit.
Must not import: the api core, the store, reconcilers, node, net.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orchestra.api.user import UserInfo
from orchestra.apiserver.auth.base import AuthenticationError

CACHE_SIZE = 1024
Clock = Callable[[], dt.datetime]


class _Refused(Exception):
    pass


@attrs.frozen
class _Checked:
    user: UserInfo | None
    error: str
    not_before: dt.datetime
    not_after: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)  # wall-clock: certificate validity is calendar time


class ClientCertificates:
    def __init__(self, ca_cert: x509.Certificate, *, clock: Clock = _now) -> None:
        self.ca = ca_cert
        self.clock = clock
        self._cache: dict[str, _Checked] = {}

    def authenticate(self, pem: str) -> UserInfo | None:
        checked = self._cache.get(pem)
        if checked is None:
            checked = self._check(pem)
            if len(self._cache) >= CACHE_SIZE:
                del self._cache[next(iter(self._cache))]
            self._cache[pem] = checked
        if checked.error:
            raise AuthenticationError(checked.error)
        now = self.clock()
        if not checked.not_before <= now <= checked.not_after:
            raise AuthenticationError(
                "x509: certificate has expired or is not yet valid: current time "
                f"{now:%Y-%m-%dT%H:%M:%SZ} is outside {checked.not_before:%Y-%m-%dT%H:%M:%SZ} - "
                f"{checked.not_after:%Y-%m-%dT%H:%M:%SZ}")
        return checked.user

    def _check(self, pem: str) -> _Checked:
        never = dt.datetime.min.replace(tzinfo=dt.UTC)
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError as exc:
            return _Checked(None, f"x509: malformed certificate: {exc}", never, never)
        try:
            self._verify(cert)
        except _Refused as exc:
            return _Checked(None, str(exc), never, never)
        subject = cert.subject
        names = [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        name = str(names[0]) if names else ""
        groups = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        return _Checked(UserInfo(name, groups=groups) if name else None, "", cert.not_valid_before_utc,
                        cert.not_valid_after_utc)

    def _verify(self, cert: x509.Certificate) -> None:
        try:
            cert.verify_directly_issued_by(self.ca)
        except (ValueError, TypeError, InvalidSignature):
            raise _Refused(f"verifying certificate SN={cert.serial_number} failed: x509: certificate signed "
                           "by unknown authority") from None
        try:
            usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            return  # no ExtKeyUsage: any usage (Go's x509 reads it so)
        if not {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE} & set(usages):
            raise _Refused(f"verifying certificate SN={cert.serial_number} failed: x509: certificate "
                           "specifies an incompatible key usage")
