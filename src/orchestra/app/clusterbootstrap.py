"""Servers that share one etcd share one cluster: its bootstrap record.

Owns: the etcd key `/orchestra/bootstrap` (outside /registry/, the keys the store keeps), which holds
what every server of one cluster must have alike - the admin token, the EncryptionConfiguration whose
keys encrypt Secrets at rest, the cluster CA's certificate and key, the ServiceAccount signing key - as
k3s keeps its bootstrap data in its datastore: sealed with AES-256-GCM under a key derived from the
cluster's token (scrypt, a random salt per record), so etcd's readers learn nothing without the token.

`share_bootstrap(url, state_dir, token)` runs before a server opens an etcd store:
- no record yet (the cluster's first server): the state directory's files (made now where missing)
  are sealed into a new record (a create-if-absent transaction: of two first servers racing, one
  writes and the other joins it);
- a record: it must open with the token (`--token`, else the state directory's own), and the state
  directory takes the files it lacks from it; a file it already has must be the cluster's.
So `orchestra up --store etcd://... --token T --state-dir NEW` serves an existing cluster as another
server, and a server of another cluster (another CA, another encryption key: it could read none of
the Secrets and would sign certificates no node trusts) is refused before it writes anything.
Must not import: cli.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import ssl
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestra.apiserver.tls import ensure_ca
from orchestra.app.state import (
    ENCRYPTION_CONFIG,
    load_or_create_encryption_config,
    load_or_create_signing_key,
    load_or_create_token,
)
from orchestra.store.etcd import endpoints_from_url
from orchestra.store.etcdclient import EtcdClient
from orchestra.store.types import Compare, Put

KEY = "/orchestra/bootstrap"
VERSION = 1
# the files every server of a cluster has alike (the token is the file "token", compared stripped)
SHARED = ("token", ENCRYPTION_CONFIG, "pki/ca.crt", "pki/ca.key", "pki/sa.key")
PUBLIC = {"pki/ca.crt"}  # mode 0644; the others 0600
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # ~50 ms: once per server start


class BootstrapError(Exception):
    """This server cannot serve the cluster in that etcd as it is configured; the message says why and
    what to do."""


def _key(token: str, salt: bytes) -> bytes:
    return hashlib.scrypt(token.encode(), salt=salt, dklen=32, maxmem=64 * 2**20, **SCRYPT)


def seal(files: dict[str, bytes], token: str) -> bytes:
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    plain = orjson.dumps({name: base64.b64encode(data).decode() for name, data in files.items()})
    sealed = AESGCM(_key(token, salt)).encrypt(nonce, plain, KEY.encode())
    return orjson.dumps({"version": VERSION, "salt": base64.b64encode(salt).decode(),
                         "nonce": base64.b64encode(nonce).decode(),
                         "data": base64.b64encode(sealed).decode()})


def unseal(record: bytes, token: str) -> dict[str, bytes] | None:
    """The record's files, or None when `token` does not open it."""
    try:
        doc = orjson.loads(record)
        if isinstance(doc, dict) and "version" in doc and doc["version"] != VERSION:
            raise BootstrapError(f"the bootstrap record {KEY} has version {doc.get('version')!r}, this "
                                 f"orchestra reads version {VERSION}: run the orchestra that wrote it")
        salt, nonce, data = (base64.b64decode(doc[k]) for k in ("salt", "nonce", "data"))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BootstrapError(f"the bootstrap record {KEY} in etcd is damaged ({exc}); remove it with "
                             f"`etcdctl del {KEY}` only if no server of the cluster runs") from None
    try:
        plain = AESGCM(_key(token, salt)).decrypt(nonce, data, KEY.encode())
    except InvalidTag:
        return None
    return {name: base64.b64decode(value) for name, value in orjson.loads(plain).items()}


def _local_files(state_dir: Path, token: str | None) -> dict[str, bytes]:
    """The state directory's shared files, made where missing (as a first start makes them)."""
    load_or_create_token(state_dir, token)
    load_or_create_encryption_config(state_dir)
    load_or_create_signing_key(state_dir)
    ensure_ca(state_dir)
    return {name: (state_dir / name).read_bytes() for name in SHARED}


def _same(name: str, mine: bytes, theirs: bytes) -> bool:
    return mine.strip() == theirs.strip() if name == "token" else mine == theirs


def _adopt(state_dir: Path, files: dict[str, bytes]) -> list[str]:
    """Write the cluster's files the state directory lacks; refuse one it has that differs. Returns the
    names written."""
    missing = set(SHARED) - set(files)
    if missing:
        raise BootstrapError(f"the bootstrap record {KEY} lacks {', '.join(sorted(missing))}")
    for name in SHARED:
        path = state_dir / name
        if path.exists() and not _same(name, path.read_bytes(), files[name]):
            raise BootstrapError(
                f"{path} is not the one of the cluster in this etcd: the state directory belongs to "
                "another cluster. Give this server a fresh --state-dir (it takes the cluster's files "
                "from etcd), or point it at another etcd")
    written = []
    for name in SHARED:
        path = state_dir / name
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644 if name in PUBLIC else 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(files[name])
            os.fsync(f.fileno())
        os.replace(tmp, path)
        written.append(name)
    return written


def check_given_token(state_dir: Path, token: str | None) -> None:
    path = state_dir / "token"
    if token and path.exists() and path.read_text().strip() != token:
        raise BootstrapError(f"--token is not the token of this state directory ({path}): drop --token "
                             "or use a fresh --state-dir")


async def share_bootstrap(url: str, state_dir: Path, token: str | None = None, *, key: str = KEY,
                          tls: ssl.SSLContext | None = None) -> str:
    """Make `state_dir` hold the shared files of the cluster in the etcd at `url` (see the module's
    docstring); returns what happened, for the log."""
    check_given_token(state_dir, token)
    client = EtcdClient(endpoints_from_url(url), tls=tls)
    try:
        kv, _ = await client.get(key)
        if kv is None:
            had = {name for name in SHARED if (state_dir / name).exists()}
            files = _local_files(state_dir, token)
            reply = await client.txn([Compare(key, "create", "==", 0)],
                                     [Put(key, seal(files, files["token"].decode().strip()))])
            if reply.succeeded:
                return f"this is the cluster's first server: its bootstrap record is now in etcd ({key})"
            # another first server won the race: join its cluster, dropping what was made just now
            for name in set(SHARED) - had - {"token"}:
                (state_dir / name).unlink(missing_ok=True)
            kv, _ = await client.get(key)
            if kv is None:
                raise BootstrapError(f"the bootstrap record {key} vanished while this server started")
        mine = token or _state_token(state_dir)
        if mine is None:
            raise BootstrapError(
                "this etcd already holds a cluster: pass its token with --token (the file `token` in "
                "its first server's state directory) to serve it as another server, or point this "
                "server at another etcd")
        shared = unseal(kv.value, mine)
        if shared is None:
            raise BootstrapError(
                "this etcd holds another cluster: its bootstrap record does not open with "
                f"{'--token' if token else 'the token of ' + str(state_dir)}. Pass that cluster's token "
                "with --token (and a fresh --state-dir), or point this server at another etcd")
        written = _adopt(state_dir, shared)
        return (f"serving the cluster in etcd as another server (took {', '.join(written)} from its "
                "bootstrap record)" if written else "the state directory matches the cluster's bootstrap "
                "record")
    finally:
        await client.aclose()


def _state_token(state_dir: Path) -> str | None:
    path = state_dir / "token"
    token = path.read_text().strip() if path.exists() else ""
    return token or None

