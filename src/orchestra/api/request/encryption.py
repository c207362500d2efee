"""Encryption at rest of chosen resources (kube-apiserver's EncryptionConfiguration; k3s'
--secrets-encryption), as storage transformers for stored.Codec.

Owns:
  * the providers: `aesgcm` (AES-GCM from `cryptography`; a value is
    `k8s:enc:aesgcm:v1:<key name>:` + 12-byte random nonce + ciphertext and tag, the store key as
    authenticated data, so a value copied under another key does not decrypt) and `identity`
    (plain JSON; refuses `k8s:enc:` data);
  * the chain kube builds from a resource's provider list (ProviderChain);
  * `transformers(config, registry)`: an EncryptionConfiguration document
    (apiserver.config.k8s.io/v1) -> {key prefix: transformer} for stored.Codec. Supported: exact
    resource names (`secrets`, `deployments.apps`) with `aesgcm` / `identity` providers;
    anything else is refused with a ConfigError naming the field;
  * `new_config()`: the document orchestra writes on a state directory's first start: Secrets
    with a fresh 32-byte AES-GCM key `key1`, then identity (so Secrets stored before are read);
  * `rewrite_stale(store, codec)`: the one-time migration at start-up: every stored value of an
    encrypted resource that is stale (plain JSON, or under an older key) is written again with the
    first provider (a compare-and-swap on its revision). The object is unchanged; the rewrite is a
    new revision, as kube's `kubectl replace` of every Secret after enabling encryption would be.
AES-GCM with random nonces is safe for about 2^32 writes under one key (kube's aesgcm provider has
the same limit and recommends rotation): rotate by adding a new key first in the config file.
Must not import: anything above the api layer.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestra.api.registry import Registry
from orchestra.api.request.stored import Transformer, TransformError
from orchestra.objects import as_dict, as_list
from orchestra.store import CompareFailed, Store

ENCRYPTED = b"k8s:enc:"
NONCE = 12
KEY_SIZES = (16, 24, 32)
API_VERSION = "apiserver.config.k8s.io/v1"


class ConfigError(ValueError):
    """An EncryptionConfiguration orchestra cannot use; the message names the field."""


class AESGCMKey:
    """One key of kube's aesgcm provider: values `k8s:enc:aesgcm:v1:<name>:` + nonce + sealed data."""

    def __init__(self, name: str, secret: bytes) -> None:
        self.prefix = f"k8s:enc:aesgcm:v1:{name}:".encode()
        self._aead = AESGCM(secret)

    def to_storage(self, data: bytes, context: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE)
        return self.prefix + nonce + self._aead.encrypt(nonce, data, context)

    def from_storage(self, data: bytes, context: bytes) -> tuple[bytes, bool]:
        view, start = memoryview(data), len(self.prefix)  # slices of a view copy nothing
        try:
            return self._aead.decrypt(view[start:start + NONCE], view[start + NONCE:], context), False
        except InvalidTag:
            raise TransformError("cipher: message authentication failed") from None


class Identity:
    """kube's identity provider: values as they are, but never one another provider wrote."""

    prefix = b""

    def to_storage(self, data: bytes, context: bytes) -> bytes:
        return data

    def from_storage(self, data: bytes, context: bytes) -> tuple[bytes, bool]:
        if data.startswith(ENCRYPTED):
            raise TransformError("identity transformer tried to read encrypted data")
        return data, False


Entry = AESGCMKey | Identity


class ProviderChain:
    """A resource's providers in config order, each key its own prefix (kube's prefixTransformers).
    The first writes; a read takes the first entry whose prefix the value has (identity's empty
    prefix: any value; its refusal of encrypted data lets the next entries try). A value read by
    any entry but the first is stale, so the migration and the next write move it to the first."""

    def __init__(self, entries: list[Entry]) -> None:
        if not entries:
            raise ConfigError("providers: at least one provider is required")
        self.entries = entries

    def to_storage(self, data: bytes, context: bytes) -> bytes:
        return self.entries[0].to_storage(data, context)

    def from_storage(self, data: bytes, context: bytes) -> tuple[bytes, bool]:
        refused: list[TransformError] = []
        for i, entry in enumerate(self.entries):
            if not data.startswith(entry.prefix):
                continue
            try:
                plain, stale = entry.from_storage(data, context)
            except TransformError as exc:
                if entry.prefix:
                    raise
                refused.append(exc)
                continue
            return plain, stale or i != 0
        if refused:
            raise refused[0]
        raise TransformError("no matching prefix found")


def _aesgcm(spec: Any, path: str) -> list[Entry]:
    keys: list[Entry] = []
    for i, key in enumerate(as_list(as_dict(spec).get("keys"))):
        key = as_dict(key)
        name = key.get("name")
        if not isinstance(name, str) or not name or ":" in name:
            raise ConfigError(f"{path}.keys[{i}].name: a name without ':' is required")
        try:
            secret = base64.b64decode(str(key.get("secret") or ""), validate=True)
        except ValueError:
            raise ConfigError(f"{path}.keys[{i}].secret: not valid base64") from None
        if len(secret) not in KEY_SIZES:
            raise ConfigError(f"{path}.keys[{i}].secret: must be 16, 24 or 32 bytes, not {len(secret)}")
        keys.append(AESGCMKey(name, secret))
    if not keys:
        raise ConfigError(f"{path}.keys: at least one key is required")
    return keys


def _provider(entry: Any, path: str) -> list[Entry]:
    entry = as_dict(entry)
    if len(entry) != 1:
        raise ConfigError(f"{path}: exactly one provider type is required")
    (kind, spec), = entry.items()
    if kind == "aesgcm":
        return _aesgcm(spec, f"{path}.aesgcm")
    if kind == "identity":
        return [Identity()]
    raise ConfigError(f"{path}: unsupported provider {kind!r} (orchestra supports aesgcm and identity)")


def transformers(config: Mapping[str, Any], registry: Registry) -> dict[str, Transformer]:
    """{store key prefix: transformer} for an EncryptionConfiguration document."""
    if config.get("kind") != "EncryptionConfiguration" or config.get("apiVersion") != API_VERSION:
        raise ConfigError(f"kind/apiVersion: an EncryptionConfiguration of {API_VERSION} is required")
    out: dict[str, Transformer] = {}
    for i, rule in enumerate(as_list(config.get("resources"))):
        path = f"resources[{i}]"
        chain = ProviderChain([entry for j, p in enumerate(as_list(as_dict(rule).get("providers")))
                               for entry in _provider(p, f"{path}.providers[{j}]")])
        for name in as_list(as_dict(rule).get("resources")):
            plural, _, group = str(name).partition(".")
            rt = registry.by_plural(group, plural)
            if rt is None:
                raise ConfigError(f"{path}.resources: unknown resource {name!r}")
            out.setdefault(rt.key_prefix(), chain)  # as in kube, the first rule naming it wins
    return out


def new_config() -> dict[str, Any]:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    return {
        "kind": "EncryptionConfiguration",
        "apiVersion": API_VERSION,
        "resources": [{
            "resources": ["secrets"],
            "providers": [{"aesgcm": {"keys": [{"name": "key1", "secret": key}]}}, {"identity": {}}],
        }],
    }


async def rewrite_stale(store: Store, codec: Any) -> int:
    """Write every stale value under an encrypted prefix again with its first provider; the count."""
    rewritten = 0
    for prefix in codec.transformers:
        kvs, _ = store.range(prefix)
        for kv in kvs:
            plain, stale = codec.plain(kv)
            if not stale:
                continue
            try:
                await store.aput(kv.key, codec.to_storage(kv.key, plain), expect_mod_revision=kv.mod_revision)
            except CompareFailed:
                continue  # written meanwhile, by a writer that encrypted it
            rewritten += 1
    return rewritten
