"""The nft adapter (net/netpol/kernel.py) against the real nft: a transaction applies whole or not at
all, a refusal is an NftError with nft's words, and tables are read back as JSON. It works on a
throw-away table, never on the enforcer's (a running cluster's rules stay untouched)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import trio

from orchestra.net.netpol.kernel import Nft, NftError, unavailable

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="nft needs root")

TABLE = f"orchestra-test-kernel-{os.getpid()}"
T = {"family": "inet", "name": TABLE}


@pytest.fixture
async def nft() -> AsyncIterator[Nft]:
    adapter = Nft()
    try:
        yield adapter
    finally:
        with trio.CancelScope(shield=True):
            await adapter.apply([{"add": {"table": T}}, {"delete": {"table": T}}])


async def test_a_transaction_applies_and_reads_back(nft: Nft) -> None:
    assert unavailable() is None
    with trio.fail_after(10):
        assert await nft.list_table("inet", TABLE) is None
        await nft.apply([{"add": {"table": T}},
                         {"add": {"chain": {"family": "inet", "table": TABLE, "name": "c"}}},
                         {"add": {"rule": {"family": "inet", "table": TABLE, "chain": "c", "comment": "x",
                                           "expr": [{"drop": None}]}}}])
        items = await nft.list_table("inet", TABLE)
        assert items is not None
        assert [next(iter(i)) for i in items] == ["table", "chain", "rule"]
        assert items[2]["rule"]["comment"] == "x" and items[2]["rule"]["expr"] == [{"drop": None}]
        assert nft.transactions == 1


async def test_a_refused_transaction_changes_nothing(nft: Nft) -> None:
    with trio.fail_after(10):
        with pytest.raises(NftError, match="No such file or directory"):
            await nft.apply([{"add": {"table": T}},
                             {"add": {"rule": {"family": "inet", "table": TABLE, "chain": "missing",
                                               "expr": [{"drop": None}]}}}])
        assert await nft.list_table("inet", TABLE) is None  # not even the table of the same batch
        assert nft.transactions == 0


async def test_a_missing_binary_is_an_nft_error() -> None:
    with trio.fail_after(10), pytest.raises(NftError, match="cannot run"):
        await Nft("/nonexistent/nft").apply([])
