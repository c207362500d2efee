"""The token cleaner (reconcilers/bootstraptokens.py): expired bootstrap token Secrets go, others stay."""

from __future__ import annotations

import datetime as dt

import trio
import trio.testing

from orchestra.api.policy import bootstraptoken as bt
from orchestra.controller.clock import VIRTUAL_EPOCH, virtual_clock
from orchestra.reconcilers.bootstraptokens import TokenCleaner
from tests.controller.harness import make_api, wait_for


async def test_expired_tokens_are_deleted_when_they_expire(autojump_clock: trio.testing.MockClock) -> None:
    api = await make_api("kube-system")
    start = VIRTUAL_EPOCH + dt.timedelta(seconds=trio.current_time())
    tokens = {
        "aaaaaa": start - dt.timedelta(seconds=1),  # expired already
        "bbbbbb": start + dt.timedelta(seconds=600),  # expires in ten minutes
        "cccccc": None,  # never
    }
    for token_id, expires in tokens.items():
        await api.create(
            "Secret", bt.token_secret(token_id, "0123456789abcdef", expires=expires), "kube-system"
        )
    bad = bt.token_secret("dddddd", "0123456789abcdef", expires=None)
    bad["data"][bt.EXPIRATION_KEY] = "bm90LWEtdGltZQ=="  # "not-a-time": kube counts it as expired
    await api.create("Secret", bad, "kube-system")
    other = bt.token_secret("eeeeee", "0123456789abcdef", expires=start - dt.timedelta(seconds=1))
    other["type"] = "Opaque"  # not a bootstrap token: never the cleaner's
    await api.create("Secret", other, "kube-system")

    def names() -> set[str]:
        return {s["metadata"]["name"] for s in api.list("Secret", "kube-system")}

    with trio.fail_after(3600):
        async with trio.open_nursery() as nursery:
            await nursery.start(TokenCleaner(api.client, clock=virtual_clock()).run)
            await wait_for(api, lambda: "bootstrap-token-aaaaaa" not in names())
            assert names() == {"bootstrap-token-bbbbbb", "bootstrap-token-cccccc", "bootstrap-token-eeeeee"}
            gone_at = await wait_for(api, lambda: "bootstrap-token-bbbbbb" not in names())
            assert 599 <= gone_at <= 601
            assert names() == {"bootstrap-token-cccccc", "bootstrap-token-eeeeee"}
            nursery.cancel_scope.cancel()
