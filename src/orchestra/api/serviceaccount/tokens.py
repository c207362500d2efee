"""Signing and checking ServiceAccount JWTs (kube's pkg/serviceaccount/jwt.go), with PyJWT.

Owns: the signing key's format (an EC P-256 key: ES256, which kube accepts like RS256 and which is
quick to make and to check), its key id (kube's: the URL-safe base64 of the SHA-256 of the public
key's DER), `TokenIssuer.sign(claims)` and `TokenVerifier`: is a token one of ours (its issuer), is
its signature ours, do its audiences meet the ones asked for, is it within its times (exp / nbf /
iat with kube's one minute of leeway). Errors are `TokenInvalid`, worded as kube words them; the
caller decides what a client sees (the apiserver answers 401 "Unauthorized" whatever the reason).
Times are epoch seconds from an injected clock (wall time by default: a JWT's times are calendar
times), so tests can make tokens that expired long ago.
Must not import: anything above the api layer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from orchestra.api.serviceaccount import API_AUDIENCES, ISSUER, LEEWAY, LEGACY_ISSUER

ALGORITHM = "ES256"
Clock = Callable[[], float]  # epoch seconds
_NO_CHECKS: Any = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
              "verify_iss": False}  # done below, against the injected clock and kube's rules


class TokenInvalid(Exception):
    """A token of ours that must not be accepted; the message is kube's."""


def new_signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """The signing key from its PEM; ValueError if it is not an EC P-256 private key."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the service account signing key must be an EC P-256 private key")
    return key


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


@attrs.frozen
class TokenIssuer:
    """Signs service account tokens; `audiences` are the API server's own (--api-audiences)."""

    private_key: ec.EllipticCurvePrivateKey
    issuer: str = ISSUER
    audiences: tuple[str, ...] = API_AUDIENCES
    clock: Clock = time.time
    extend_expiration: bool = True  # --service-account-extend-token-expiration (kube's default)

    def sign(self, claims: dict[str, Any]) -> str:
        kid = key_id(self.private_key.public_key())
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers={"kid": kid})

    def verifier(self) -> TokenVerifier:
        return TokenVerifier([self.private_key.public_key()], issuer=self.issuer,
                             audiences=self.audiences, clock=self.clock)


class TokenVerifier:
    """Checks tokens signed by any of `public_keys` for `issuer` (and legacy Secret tokens)."""

    def __init__(self, public_keys: Iterable[ec.EllipticCurvePublicKey], *, issuer: str = ISSUER,
                 audiences: Sequence[str] = API_AUDIENCES, clock: Clock = time.time) -> None:
        self.public_keys = list(public_keys)
        self.issuer = issuer
        self.audiences = tuple(audiences)
        self.clock = clock

    def peek(self, token: str) -> dict[str, Any] | None:
        """The unverified claims of a JWT one of our issuers made; None for anything else (another
        authenticator may know it: kube's hasCorrectIssuer). Read directly (base64url + JSON):
        PyJWT checks each character of a segment in Python, and this runs for every unknown token."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except (ValueError, binascii.Error):  # not base64 or not JSON (orjson's error is a ValueError)
            return None
        if not isinstance(claims, dict) or claims.get("iss") not in (self.issuer, LEGACY_ISSUER):
            return None
        return claims

    def verify(self, token: str, audiences: Sequence[str] = ()) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The token's claims and the audiences it was accepted for (those of `audiences`, default
        the API server's, that it names); TokenInvalid when the signature, audience or times fail."""
        claims = self.signed_claims(token)
        self.check_times(claims)
        return claims, self.accepted_audiences(claims, tuple(audiences) or self.audiences)

    def signed_claims(self, token: str) -> dict[str, Any]:
        errors = []
        for key in self.public_keys:
            try:
                claims: dict[str, Any] = jwt.decode(token, key, algorithms=[ALGORITHM], options=_NO_CHECKS)
                return claims
            except jwt.InvalidSignatureError:
                errors.append("token signature is invalid")
            except jwt.PyJWTError as exc:  # a malformed token, another algorithm ("none", HS256), ...
                errors.append(str(exc) or type(exc).__name__)
        raise TokenInvalid(", ".join(dict.fromkeys(errors)) or "no key to verify the token with")

    def check_times(self, claims: dict[str, Any]) -> None:
        """go-jose's Claims.Validate with its leeway, worded as kube's validator words it."""
        now = self.clock()
        exp, nbf, iat = (_number(claims.get(k)) for k in ("exp", "nbf", "iat"))
        if exp is not None and now > exp + LEEWAY:
            raise TokenInvalid("Token has expired.")
        if (nbf is not None and now + LEEWAY < nbf) or (iat is not None and now + LEEWAY < iat):
            raise TokenInvalid("Token could not be validated.")

    def accepted_audiences(self, claims: dict[str, Any], wanted: tuple[str, ...]) -> tuple[str, ...]:
        raw = claims.get("aud")
        have = [raw] if isinstance(raw, str) else [a for a in raw or () if isinstance(a, str)]
        if not have:  # legacy tokens carry none: they are good for the API server's audiences only
            have = list(self.audiences)
        accepted = tuple(a for a in wanted if a in have)
        if not accepted:
            raise TokenInvalid(f"token audiences {_go_quoted(have)} is invalid for the target audiences "
                               f"{_go_quoted(wanted)}")
        return accepted


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _go_quoted(values: Iterable[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "]"
