"""The API core's side of objects: their stored encoding and the metadata the server sets.

Owns: the wire encoding of stored objects (orjson: `encode`/`decode`/`exact_bytes`), and
`Codec`, the seam between objects and store values: after JSON, each resource's `Transformer`
(kube's storage transformers: the Secret encryption of api/request/encryption.py), found by the
key's resource prefix; a key of a resource without one is plain JSON. Uids and generated name
suffixes, `meta(obj)` for writing (creates metadata when absent; readers use
orchestra.objects.meta), `spec_part` (what a generation bump is computed from), resourceVersion
parsing (`parse_rv`, a BadRequest for a bad one) and `with_rv`.
The object vocabulary every layer shares (`Obj`, accessors, timestamps, `deep_copy`) lives in
orchestra.objects.
Must not import: anything above the api layer.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from orchestra.api.errors import BadRequest, InternalError
from orchestra.objects import Obj

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # kube's utilrand alphabet (no vowels, no 0/1/3)


def new_uid() -> str:
    return str(uuid.uuid4())


def random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(_NAME_ALPHABET) for _ in range(n))


def meta(obj: Obj) -> Obj:
    """The object's metadata dict, created if absent."""
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


def encode(obj: Obj) -> bytes:
    """The stored form of `obj`, exactly as long as its JSON.

    orjson hands back its working buffer as the bytes object without shrinking it (at least 4 KiB,
    whatever the length), so a stored value kept as is costs 4 KiB even for a 700-byte Event: at
    30,000 pods and their history that is most of the process. One copy (~0.4 us) trims it."""
    return exact_bytes(orjson.dumps(obj))


def exact_bytes(data: bytes) -> bytes:
    """A copy of `data` in an allocation of its own length: for orjson output that is kept."""
    return memoryview(data).tobytes()


def decode(data: bytes) -> Obj:
    obj = orjson.loads(data)
    if not isinstance(obj, dict):
        raise ValueError("stored value is not an object")
    return obj


class KeyValue(Protocol):
    """What the codec reads of a store KeyValue (orchestra.store.KeyValue has these; not imported:
    the scheduler imports this module and must not reach the store)."""

    @property
    def key(self) -> str: ...

    @property
    def value(self) -> bytes: ...


class Transformer(Protocol):
    """kube's value.Transformer: one resource's plain bytes <-> the bytes the store keeps. `context`
    is the store key, which an authenticating cipher binds the value to."""

    def to_storage(self, data: bytes, context: bytes) -> bytes: ...

    def from_storage(self, data: bytes, context: bytes) -> tuple[bytes, bool]:
        """The plain bytes, and whether they were stored in a form a write would no longer use
        (stale: a rewrite would change them). Raises TransformError when they cannot be read."""
        ...


class TransformError(Exception):
    """A stored value no configured transformer can read (kube: "unable to transform key")."""


class Codec:
    """Objects <-> store values: JSON, through the transformer of the key's resource.

    `transformers` maps key prefixes (`/registry/core/secrets/`, a ResourceType.key_prefix()) to the
    transformer of that resource; keys under no prefix are plain JSON, with no cost beyond a
    startswith per configured resource."""

    def __init__(self, transformers: Mapping[str, Transformer] | None = None) -> None:
        self.transformers = dict(transformers or {})
        self._prefixes = tuple(self.transformers)

    def transformer(self, key: str) -> Transformer | None:
        if self._prefixes and key.startswith(self._prefixes):
            for prefix, t in self.transformers.items():
                if key.startswith(prefix):
                    return t
        return None

    def to_storage(self, key: str, data: bytes) -> bytes:
        t = self.transformer(key)
        return data if t is None else t.to_storage(data, key.encode())

    def plain(self, kv: KeyValue) -> tuple[bytes, bool]:
        """The JSON bytes of a stored value and whether it is stale."""
        t = self.transformer(kv.key)
        if t is None:
            return kv.value, False
        try:
            return t.from_storage(kv.value, kv.key.encode())
        except TransformError as exc:  # kube's storage.NewInternalError: a 500 naming the key
            why = f'unable to transform key "{kv.key}": {exc}'
            raise InternalError(f"Internal error occurred: {why}") from None

    def decode(self, kv: KeyValue) -> Obj:
        return decode(self.plain(kv)[0]) if self._prefixes else decode(kv.value)

    def encode(self, key: str, obj: Obj) -> bytes:
        return self.to_storage(key, encode(obj))


def spec_part(obj: Obj) -> Obj:
    """Everything except metadata and status: what a generation bump is computed from."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def with_rv(obj: Obj, kv: Any) -> Obj:
    """`obj` with metadata.resourceVersion set from a store KeyValue's mod_revision."""
    meta(obj)["resourceVersion"] = str(kv.mod_revision)
    return obj


def parse_rv(value: str | None, what: str = "resourceVersion") -> int | None:
    if value in (None, ""):
        return None
    try:
        rv = int(value)  # type: ignore[arg-type]
    except ValueError:
        raise BadRequest(f'invalid {what}: "{value}"') from None
    if rv < 0:
        raise BadRequest(f'invalid {what}: "{value}"')
    return rv
