"""The state directory: the bearer token, the service account signing key, the kubeconfig, the store,
the id of the cluster it holds, and the EncryptionConfiguration whose key encrypts Secrets in the store.

Must not import: cli.
"""

from __future__ import annotations

import base64
import os
import secrets
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from orchestra.api.request.encryption import ConfigError, new_config
from orchestra.api.serviceaccount.tokens import key_pem, load_key, new_signing_key
from orchestra.app.config import ClusterConfig
from orchestra.store import Store
from orchestra.store.etcd import endpoints_from_url
from orchestra.store.etcdclient import EtcdClient
from orchestra.store.etcdcopy import unfinished_copy
from orchestra.store.etcdkeys import KUBE_LAYOUT
from orchestra.store.etcdtls import client_tls


def load_or_create_token(state_dir: Path, given: str | None = None) -> str:
    """The bearer token every API request needs; created once (`given`, else a random one), mode 0600."""
    path = state_dir / "token"
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = given or secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def load_or_create_signing_key(state_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The key that signs ServiceAccount tokens (kubeadm's pki/sa.key); created once, mode 0600.
    Replacing it invalidates every token issued before."""
    path = state_dir / "pki" / "sa.key"
    if path.exists():
        return load_key(path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = new_signing_key()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem(key))
        os.fsync(f.fileno())  # legacy token Secrets hold tokens signed with it: they must stay good
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # and so must its name
    finally:
        os.close(dir_fd)
    return key


ENCRYPTION_CONFIG = "encryption-config.json"


def load_or_create_encryption_config(state_dir: Path) -> tuple[dict[str, Any], bool]:
    """The EncryptionConfiguration (apiserver.config.k8s.io/v1) for data at rest, and whether it was
    created now: on the first start, Secrets with a new AES-GCM key, mode 0600 (like k3s'
    server/cred/encryption-config.json). Edit it to rotate keys: the first key of a provider
    encrypts, all of them decrypt."""
    path = state_dir / ENCRYPTION_CONFIG
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        doc = new_config()
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
            os.fsync(f.fileno())  # the key must outlive the first Secret written with it
        os.replace(tmp, path)
        dir_fd = os.open(state_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # and so must its name: a lost key makes every Secret unreadable
        finally:
            os.close(dir_fd)
        return doc, True
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: not a JSON object")
    return doc, False


def write_kubeconfig(path: Path, url: str, token: str, ca_cert: Path, *, others: Sequence[str] = ()) -> None:
    """The admin kubeconfig: this server as cluster and context `orchestra` (the current context), and
    every other server of the cluster (`others`: servers sharing etcd) as `orchestra-<host:port>`."""
    ca_data = base64.b64encode(ca_cert.read_bytes()).decode()
    servers = [("orchestra", url), *((f"orchestra-{urlparse(o).netloc}", o) for o in others if o != url)]
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": ca_data}}
            for name, server in servers
        ],
        "users": [{"name": "orchestra-admin", "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": "orchestra-admin", "namespace": "default"}}
            for name, _ in servers
        ],
        "current-context": "orchestra",
        "preferences": {},
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


# Watch history kept in memory: enough for every watcher to catch up after a burst, small enough
# that 30,000 pods do not keep every past revision for the whole retention window.
HISTORY = 50_000


async def open_store(config: ClusterConfig) -> Store:
    """The store `config.store` names: "memory", "durable" (the log under the state directory) or an
    etcd URL (etcd://HOST:PORT[,HOST:PORT]: the keys under /registry/; the store is then etcd's watch
    cache). ("etcd", the local etcd, is run_cluster's to start: it gives this the URL; run_cluster has
    refused an etcd holding an unfinished migration before anything else touches it.)"""
    if config.store == "memory":
        return Store.open_memory(max_history=HISTORY)
    if config.store.startswith(("etcd://", "etcds://")):
        return await Store.open_etcd(config.store, within=ETCD_KEYS, layout=ETCD_LAYOUT,
                                     max_history=HISTORY, tls=etcd_tls(config))
    return Store.open_durable(config.state_dir / "store", fsync=config.fsync, max_history=HISTORY)  # type: ignore[arg-type]


ETCD_KEYS = "/registry/"  # what an etcd-backed store keeps (and watches) of etcd's keys
ETCD_LAYOUT = KUBE_LAYOUT  # and where each object is among them: kube-apiserver's keys (/registry/pods/...)
EARLIER_LAYOUT = "/registry/core/"  # earlier builds kept the core group's objects here (no longer read)


class UnfinishedMigrationError(RuntimeError):
    """etcd holds a partial copy of a cluster: `orchestra store migrate` into it did not finish."""


def etcd_tls(config: ClusterConfig) -> ssl.SSLContext | None:
    """The TLS context for an `etcds://` store (--etcd-cafile/--etcd-certfile/--etcd-keyfile)."""
    if not config.store.startswith("etcds://"):
        return None
    return client_tls(config.etcd_cafile, config.etcd_certfile, config.etcd_keyfile)


async def refuse_unfinished_migration(url: str, tls: ssl.SSLContext | None = None) -> None:
    """Refuse an etcd that a migration into it still runs on, or was killed on (store/etcdcopy.py's
    marker): its keys are part of a cluster, not all of it; and an etcd whose objects are in an
    earlier build's key layout (which this one would not see)."""
    client = EtcdClient(endpoints_from_url(url), tls=tls)
    try:
        note = await unfinished_copy(client)
        earlier, _, _ = await client.range(EARLIER_LAYOUT, limit=1)
    finally:
        await client.aclose()
    if note is not None:
        raise UnfinishedMigrationError(
            f"etcd at {url} holds an unfinished `orchestra store migrate` (from {note.get('from')}): "
            "it is running, or was interrupted; run it again with --overwrite, then start orchestra")
    if earlier:
        raise UnfinishedMigrationError(
            f"etcd at {url} holds objects in the key layout of an earlier orchestra development build "
            f"({earlier[0].key}; objects are now under kube-apiserver's keys, /registry/pods/...): move "
            "them out with that build (`orchestra store migrate --to durable --from etcd://...`), then in "
            "with this one (`orchestra store migrate --to etcd://...`)")


def prepare_state_dir(state: Path) -> Path:
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)  # holds the token, the CA key and the store
    return state


CLUSTER_ID_FILE = "cluster-id"


def write_cluster_id(state_dir: Path, cluster_id: str) -> None:
    """Record which cluster the state directory holds now (read back by `why_dead`)."""
    path = state_dir / CLUSTER_ID_FILE
    try:
        if path.read_text().strip() == cluster_id:
            return
    except OSError:  # first start here
        pass
    path.write_text(cluster_id + "\n")


def why_dead(cluster_id: str, state_dir: str) -> str | None:
    """Why the cluster `cluster_id` that lived in `state_dir` can never come back, or None if it can."""
    path = Path(state_dir)
    if not path.is_dir():
        return f"its state directory {state_dir} is gone"
    try:
        holder = (path / CLUSTER_ID_FILE).read_text().strip()
    except OSError:  # never recorded (an older orchestra): it may still come back
        return None
    if holder and holder != cluster_id:
        return f"its state directory {state_dir} now holds another cluster"
    return None
