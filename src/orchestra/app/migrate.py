"""`orchestra store migrate`: move a cluster between the durable log of its state directory and etcd.

Owns the whole move, either way, for a cluster that is stopped (its pods may run on: the next
`orchestra up` adopts them, whatever its store):
* refusals, before anything is written: an orchestra still running on the state directory
  (app/running.py; the durable log's lock besides), a missing or empty source, an unreachable etcd,
  a target that already holds a cluster (unless `overwrite`), a source etcd holding an unfinished
  copy, and values the state directory's encryption keys cannot read (the copy would not serve);
* durable -> etcd: the log under <state-dir>/store is read without changing a byte (opened read-only
  and locked meanwhile: no server starts on it) and written into etcd under /registry/ by
  store/etcdcopy.py, all or nothing (txns undone on failure, a marker key while it runs);
* etcd -> durable: etcd's keys under /registry/ are read at one revision into a new log written
  beside the old one (<state-dir>/store.migrating), which then takes its place by renames; the
  old log (replaced only with `overwrite`) is removed afterwards;
* `etcd` as a place: the local etcd of `orchestra up --store etcd` (app/etcdlocal.py) under
  <state-dir>/etcd, started for the copy and stopped after it; its data stays, so `orchestra up
  --store etcd` serves the migrated cluster.
Values are copied byte for byte: uid, creationTimestamp, generation, managedFields, finalizers,
ownerReferences and status are in them, and Secrets stay encrypted at rest as they were - with the
state directory's key (encryption-config.json), which stays where it is. Copying ciphertext is right
(re-encrypting is not needed): AES-GCM binds a value to its store key, and the keys are the same
in both stores (etcd holds them in kube-apiserver's layout, /registry/pods/..., which
store/etcdkeys.py maps back to the same store keys). resourceVersions become the
target's revisions: clients re-list, as after any restore of etcd. The source is never modified
(it stays behind as it was and no longer follows the cluster).
Must not import: cli.
"""

from __future__ import annotations

import os
import shutil
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import orjson
import trio

from orchestra.api.errors import InternalError
from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.api.request import encryption
from orchestra.api.request.stored import Codec
from orchestra.app.etcdlocal import BOOTSTRAPPED, LOCAL, EtcdStartError, LocalEtcd
from orchestra.app.running import servers_on
from orchestra.app.state import ENCRYPTION_CONFIG, ETCD_KEYS, ETCD_LAYOUT
from orchestra.store import KeyValue, Put, Store, StoreError, StoreUnavailableError
from orchestra.store.etcd import endpoints_from_url
from orchestra.store.etcdclient import EtcdClient
from orchestra.store.etcdcopy import CopyError, TargetNotEmpty, copy_into, read_keys, unfinished_copy

DURABLE = "durable"
STORE_DIR = "store"  # <state-dir>/store: app/state.py's open_store
STAGING = "store.migrating"  # the new log while it is written
REPLACED = "store.replaced"  # the old log between the two renames
TXN_KEYS = 500  # keys per revision in the new log


class MigrationError(Exception):
    """The migration did not happen; the message says why and what to do. Nothing was changed."""


@attrs.frozen
class Migrated:
    keys: int
    encrypted: int  # values encrypted at rest, copied as they are
    source: str
    target: str
    revision: int  # the target's revision after the copy: the objects' resourceVersions are below it


async def migrate(state_dir: Path, *, to: str, source: str | None = None,
                  overwrite: bool = False, tls: ssl.SSLContext | None = None) -> Migrated:
    """Move the cluster of `state_dir` to `to` ("durable", "etcd" or an etcd:// URL) from `source`
    (the other kind: the durable log for an etcd target; "etcd" or a URL for a durable one)."""
    try:
        return await _migrate(state_dir, to, source, overwrite, tls)
    except BaseExceptionGroup as group:  # from the local etcd's nursery: the one error inside it
        leaves = _leaves(group)
        if len(leaves) == 1 and isinstance(leaves[0], MigrationError | CopyError):
            raise leaves[0] from None
        raise


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


async def _migrate(state_dir: Path, to: str, source: str | None, overwrite: bool,
                   tls: ssl.SSLContext | None) -> Migrated:
    check_stopped(state_dir)
    if to == DURABLE:
        return await _to_durable(state_dir, source or LOCAL, overwrite, tls)
    if source not in (None, DURABLE):
        raise MigrationError(f"--from {source} with --to {to}: a cluster moves between the durable log "
                             "and etcd (--to etcd... takes --from durable, the default)")
    return await _to_etcd(state_dir, to, overwrite, tls)


def check_stopped(state_dir: Path) -> None:
    """The state directory exists and no orchestra runs on it."""
    if not state_dir.is_dir():
        raise MigrationError(f"{state_dir} does not exist: give the state directory of the cluster "
                             "(--state-dir)")
    running = servers_on(state_dir)
    if running:
        raise MigrationError(f"orchestra is running on {state_dir} ({', '.join(running)}): stop it first "
                             "(Ctrl-C or SIGTERM; its pods keep running and the next `orchestra up` adopts "
                             "them), then migrate")


# --- durable -> etcd -------------------------------------------------------------------------------


async def _to_etcd(state: Path, target: str, overwrite: bool, tls: ssl.SSLContext | None) -> Migrated:
    store = _open_log(state / STORE_DIR)
    try:
        kvs, revision = store.range("")
        if not kvs:
            raise MigrationError(f"the durable log {state / STORE_DIR} holds no objects: nothing to migrate")
        encrypted = check_readable(state, kvs)
        note = {"from": str(state / STORE_DIR), "source_revision": revision}
        async with _etcd(state, target, tls) as (url, client):
            try:
                new_revision = await copy_into(client, [_in_etcd(kv) for kv in kvs], within=ETCD_KEYS,
                                               overwrite=overwrite, note=note)
            except TargetNotEmpty as exc:
                raise MigrationError(_not_empty(url, exc)) from None
            except CopyError as exc:
                raise MigrationError(f"the copy into etcd at {url} failed: {exc}") from None
            except StoreUnavailableError:
                raise  # (_etcd says it)
            except StoreError as exc:  # refused before anything was written
                raise MigrationError(f"etcd at {url}: {exc}; nothing was migrated") from None
        return Migrated(len(kvs), encrypted, f"the durable log {state / STORE_DIR} (revision {revision})",
                        f"etcd at {url}" if target != LOCAL else f"the local etcd {url} ({state / 'etcd'})",
                        new_revision)
    finally:
        store.close()


def _open_log(directory: Path) -> Store:
    if not (directory / "LOCK").exists():
        raise MigrationError(f"{directory} holds no durable log: nothing to migrate (was the cluster "
                             "started with --store or --memory?)")
    try:
        return Store.open_durable(directory, read_only=True)
    except StoreError as exc:
        if "in use" in str(exc):
            raise MigrationError(f"{directory} is in use: a server runs on it; stop it first") from None
        raise MigrationError(f"cannot read the durable log: {exc}") from None


def _not_empty(url: str, exc: TargetNotEmpty) -> str:
    if exc.unfinished is not None:
        return (f"etcd at {url} holds an unfinished migration (started from {exc.unfinished.get('from')}, "
                f"{exc.count} keys under {ETCD_KEYS} now): run the migration again with --overwrite")
    return (f"etcd at {url} already holds {exc.count} keys under {ETCD_KEYS} (a cluster): migrate into "
            "an empty etcd, or give --overwrite to replace them")


@asynccontextmanager
async def _etcd(state: Path, where: str, tls: ssl.SSLContext | None) -> AsyncIterator[tuple[str, EtcdClient]]:
    """A client of the etcd at `where` (a URL, or "etcd": the local one, started now and stopped
    after); etcd's errors on the way in and out become MigrationErrors."""
    async with trio.open_nursery() as nursery:
        url = where
        if where == LOCAL:
            try:
                url = await nursery.start(LocalEtcd(state / "etcd").run)
            except EtcdStartError as exc:
                raise MigrationError(f"cannot start the local etcd: {exc}") from None
        try:
            endpoints = endpoints_from_url(url)
        except ValueError as exc:
            raise MigrationError(str(exc)) from None
        client = EtcdClient(endpoints, tls=tls)
        try:
            yield url, client
        except StoreUnavailableError as exc:
            raise MigrationError(f"{exc}: is etcd running there? Nothing was migrated") from None
        finally:
            with trio.CancelScope(shield=True):
                await client.aclose()
            nursery.cancel_scope.cancel()  # the local etcd: stopped (SIGTERM) once the copy is done


# --- etcd -> durable -------------------------------------------------------------------------------


async def _to_durable(state: Path, source: str, overwrite: bool, tls: ssl.SSLContext | None) -> Migrated:
    if source == DURABLE:
        raise MigrationError("--to durable takes --from etcd (the local etcd) or --from etcd://HOST:PORT")
    if source == LOCAL and not (state / "etcd" / BOOTSTRAPPED).exists():
        raise MigrationError(f"{state} has no local etcd ({state / 'etcd'}): give the etcd the cluster is "
                             "in with --from etcd://HOST:PORT")
    target = state / STORE_DIR
    _recover_interrupted_swap(state)
    old = _lock_target(target, overwrite)
    try:
        async with _etcd(state, source, tls) as (url, client):
            note = await unfinished_copy(client)
            if note is not None:
                raise MigrationError(f"etcd at {url} holds an unfinished migration into it (from "
                                     f"{note.get('from')}): it is not a whole cluster; nothing was migrated")
            try:
                kvs, revision = await read_keys(client, "", ETCD_KEYS)
                kvs = ETCD_LAYOUT.stored(kvs)  # (another layout's keys are not the cluster's)
            except StoreUnavailableError:
                raise  # (_etcd says it)
            except StoreError as exc:
                raise MigrationError(f"reading etcd at {url}: {exc}; nothing was migrated") from None
        if not kvs:
            raise MigrationError(f"etcd at {url} holds no keys under {ETCD_KEYS}: nothing to migrate")
        encrypted = check_readable(state, kvs)
        new_revision = await _write_log(state, kvs, old)
    finally:
        if old is not None:
            old.close()
    shutil.rmtree(state / REPLACED, ignore_errors=True)
    where = f"the local etcd {url} ({state / 'etcd'})" if source == LOCAL else f"etcd at {url}"
    return Migrated(len(kvs), encrypted, f"{where} (revision {revision})", f"the durable log {target}",
                    new_revision)


def _in_etcd(kv: KeyValue) -> KeyValue:
    """A store key as etcd holds it (kube-apiserver's layout: orchestra.store.etcdkeys); a key with no
    place in it is a StoreError, before anything is written."""
    return KeyValue(ETCD_LAYOUT.to_etcd(kv.key), kv.value, kv.create_revision, kv.mod_revision, kv.version)


def _recover_interrupted_swap(state: Path) -> None:
    """A migration killed between its two renames left the old log as store.replaced and no store:
    put it back (the new log, if complete, is written again)."""
    if (state / REPLACED).is_dir() and not (state / STORE_DIR).exists():
        os.rename(state / REPLACED, state / STORE_DIR)
    shutil.rmtree(state / REPLACED, ignore_errors=True)
    shutil.rmtree(state / STAGING, ignore_errors=True)


def _lock_target(target: Path, overwrite: bool) -> Store | None:
    """The log being replaced, open read-only (so locked until the swap), or None when there is none;
    refused when it holds objects, unless `overwrite`."""
    if not (target / "LOCK").exists():
        return None
    try:
        old = Store.open_durable(target, read_only=True)
    except StoreError as exc:
        if "in use" in str(exc):
            raise MigrationError(f"{target} is in use: a server runs on it; stop it first") from None
        if overwrite:
            return None  # unreadable, and to be replaced anyway (the swap needs no lock of it)
        raise MigrationError(f"{target} cannot be read ({exc}): give --overwrite to replace it") from None
    count = old.count("")
    if count and not overwrite:
        old.close()
        raise MigrationError(f"the durable log {target} already holds a cluster ({count} keys, revision "
                             f"{old.revision}; stale if the cluster has run on etcd since): give --overwrite "
                             "to replace it")
    return old


async def _write_log(state: Path, kvs: Sequence[KeyValue], old: Store | None) -> int:
    """Write `kvs` as a new log (in their source revision order) beside the old one, then swap them."""
    staging = state / STAGING
    try:
        store = Store.open_durable(staging, fsync="batch")
        try:
            ordered = sorted(kvs, key=lambda kv: (kv.mod_revision, kv.key))
            for i in range(0, len(ordered), TXN_KEYS):
                store.txn([], [Put(kv.key, kv.value) for kv in ordered[i:i + TXN_KEYS]])
            await store.snapshot()  # one fsynced file holds every key
            revision = store.revision
        finally:
            store.close()  # (fsyncs the segment too)
    except (StoreError, OSError) as exc:  # e.g. the disk is full: the old log stays as it was
        shutil.rmtree(staging, ignore_errors=True)
        raise MigrationError(f"writing the new log in {staging} failed ({exc}); nothing was "
                             "migrated") from None
    target = state / STORE_DIR
    if target.exists():
        os.rename(target, state / REPLACED)  # (the old log's lock goes with it)
    os.rename(staging, target)
    fd = os.open(state, os.O_RDONLY)
    try:
        os.fsync(fd)  # the renames, before the old log is removed
    finally:
        os.close(fd)
    return revision


# --- both ways -------------------------------------------------------------------------------------


def check_readable(state: Path, kvs: Sequence[KeyValue]) -> int:
    """Every value decodes with the state directory's encryption keys (so the migrated cluster serves
    with them); the number of encrypted values. MigrationError naming the first keys that do not."""
    path = state / ENCRYPTION_CONFIG
    try:
        codec = Codec(encryption.transformers(orjson.loads(path.read_bytes()), DEFAULT_REGISTRY))
    except FileNotFoundError:
        codec = Codec()
    except (OSError, ValueError) as exc:  # (ConfigError and orjson's error are ValueErrors)
        raise MigrationError(f"{path}: {exc}") from None
    bad: list[str] = []
    encrypted = 0
    for kv in kvs:
        encrypted += kv.value.startswith(encryption.ENCRYPTED)
        try:
            codec.decode(kv)
        except (InternalError, ValueError):
            bad.append(kv.key)
    if bad:
        raise MigrationError(
            f"{len(bad)} stored values cannot be read with the encryption keys of {state} ({path.name}), "
            f"e.g. {', '.join(bad[:3])}: migrate with the state directory of the cluster they belong to")
    return encrypted
