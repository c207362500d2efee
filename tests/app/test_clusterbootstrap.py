"""app/clusterbootstrap.py against a real etcd: servers that share an etcd share one cluster's token,
CA, ServiceAccount key and encryption key, sealed in etcd under the token; a server of another cluster
is refused before it writes anything."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from orchestra.app.clusterbootstrap import SHARED, BootstrapError, seal, share_bootstrap, unseal
from orchestra.store.etcd import endpoints_from_url
from orchestra.store.etcdclient import EtcdClient
from orchestra.store.types import Put
from tests.etcdserver import EtcdServer, unique_prefix


def files_of(state: Path) -> dict[str, bytes]:
    return {name: (state / name).read_bytes() for name in SHARED}


def test_a_record_opens_only_with_its_token() -> None:
    files = {"token": b"t0k\n", "pki/ca.key": b"secret"}
    record = seal(files, "t0k")
    assert b"secret" not in record and b"t0k" not in record
    assert unseal(record, "t0k") == files
    assert unseal(record, "other") is None
    with pytest.raises(BootstrapError, match="damaged"):
        unseal(b"{}", "t0k")


async def test_the_first_server_writes_the_record_and_another_takes_the_cluster_from_it(
        etcd_server: EtcdServer, tmp_path: Path) -> None:
    key = unique_prefix("bootstrap") + "record"
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    said = await share_bootstrap(etcd_server.url, first, key=key)
    assert "first server" in said
    token = (first / "token").read_text().strip()
    # a restart of the first server finds its own files in the record
    assert "matches" in await share_bootstrap(etcd_server.url, first, key=key)
    # another server: a fresh state directory and the cluster's token
    said = await share_bootstrap(etcd_server.url, second, token, key=key)
    assert "another server" in said
    assert files_of(second) == files_of(first)
    assert (second / "pki" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (second / "pki" / "ca.crt").stat().st_mode & 0o777 == 0o644
    # and it restarts without --token (its state directory has the token now)
    assert "matches" in await share_bootstrap(etcd_server.url, second, key=key)


async def test_servers_of_other_clusters_are_refused_before_writing(etcd_server: EtcdServer,
                                                                    tmp_path: Path) -> None:
    key = unique_prefix("bootstrap") + "record"
    first, other, fresh, wrong = (tmp_path / n for n in ("a", "other", "fresh", "wrong"))
    for d in (first, other, fresh, wrong):
        d.mkdir()
    await share_bootstrap(etcd_server.url, first, key=key)
    token = (first / "token").read_text().strip()
    # a state directory of another cluster (its own token): the record does not open with it
    await share_bootstrap(etcd_server.url, other, key=unique_prefix("bootstrap") + "elsewhere")
    with pytest.raises(BootstrapError, match="holds another cluster"):
        await share_bootstrap(etcd_server.url, other, key=key)
    # no token at all
    with pytest.raises(BootstrapError, match="already holds a cluster: pass its token with --token"):
        await share_bootstrap(etcd_server.url, fresh, key=key)
    assert list(fresh.iterdir()) == []  # nothing written
    # a wrong --token
    with pytest.raises(BootstrapError, match="does not open with --token"):
        await share_bootstrap(etcd_server.url, wrong, "not-the-token", key=key)
    # the right token, but the state directory has another cluster's CA
    with pytest.raises(BootstrapError, match=r"--token is not the token of this state directory"):
        await share_bootstrap(etcd_server.url, other, token, key=key)
    (other / "token").write_text(token + "\n")
    with pytest.raises(BootstrapError, match=r"pki/sa\.key|encryption-config\.json|pki/ca\.crt"):
        await share_bootstrap(etcd_server.url, other, token, key=key)


async def test_two_first_servers_racing_end_in_one_cluster(etcd_server: EtcdServer, tmp_path: Path) -> None:
    key = unique_prefix("bootstrap") + "record"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (b / "token").write_text("shared-token\n")
    (a / "token").write_text("shared-token\n")
    results: dict[str, str | BaseException] = {}

    async def start(name: str, state: Path) -> None:
        try:
            results[name] = await share_bootstrap(etcd_server.url, state, key=key)
        except BootstrapError as exc:
            results[name] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(start, "a", a)
        nursery.start_soon(start, "b", b)
    # one wrote the record; the other found it and dropped the CA and keys it had just made for them
    said = sorted(str(r) for r in results.values())
    assert sum("first server" in r for r in said) == 1, said
    assert sum("another server" in r or "matches" in r for r in said) == 1, said
    assert files_of(a) == files_of(b)


async def test_a_damaged_record_is_reported(etcd_server: EtcdServer, tmp_path: Path) -> None:
    key = unique_prefix("bootstrap") + "record"
    client = EtcdClient(endpoints_from_url(etcd_server.url))
    try:
        await client.txn([], [Put(key, b"not json")])
    finally:
        await client.aclose()
    (tmp_path / "token").write_text("x\n")
    with pytest.raises(BootstrapError, match="damaged"):
        await share_bootstrap(etcd_server.url, tmp_path, key=key)
