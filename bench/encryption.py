"""Micro-benchmark: the API core's create / get / LIST of Secrets, stored in the clear and encrypted
at rest (aesgcm), in process (no HTTP), in CPU time of this process — so other load on the machine
hardly moves the numbers. Rounds alternate between the two codecs; the best round of each is kept.
Usage: .venv/bin/python bench/encryption.py [--objects 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time  # process CPU time: a benchmark measures real work

import trio

from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.api.request import encryption
from orchestra.api.request.core import ApiCore
from orchestra.api.request.stored import Codec
from orchestra.store import Store


def secret(i: int) -> dict[str, object]:
    return {"metadata": {"name": f"s-{i}", "labels": {"app": "bench"}},
            "data": {"username": "YWRtaW4=", "password": "dmFsdWVz" * 12}}


async def round_(codec: Codec | None, n: int) -> dict[str, float]:
    """Operations per CPU second for each verb."""
    core = ApiCore(Store.open_memory(), codec=codec)
    ns, rt = DEFAULT_REGISTRY.by_kind("Namespace"), DEFAULT_REGISTRY.by_kind("Secret")
    assert ns is not None and rt is not None
    await core.create(ns, None, {"metadata": {"name": "default"}})
    out = {}
    t0 = time.process_time()
    for i in range(n):
        await core.create(rt, "default", secret(i))
    out["create"] = n / (time.process_time() - t0)
    t0 = time.process_time()
    for i in range(n):
        core.get(rt, "default", f"s-{i}")
    out["get"] = n / (time.process_time() - t0)
    t0 = time.process_time()
    lists = 20
    for _ in range(lists):
        core.list(rt, "default")
    out["list"] = lists / (time.process_time() - t0)
    return out


async def main(n: int, rounds: int) -> None:
    codecs = {"clear": None,
              "aesgcm": Codec(encryption.transformers(encryption.new_config(), DEFAULT_REGISTRY))}
    best: dict[str, dict[str, float]] = {name: {} for name in codecs}
    for _ in range(rounds):
        for name, codec in codecs.items():
            for verb, rate in (await round_(codec, n)).items():
                best[name][verb] = max(best[name].get(verb, 0.0), rate)
    print(f"Secrets through the API core, {n} objects, best of {rounds} rounds (operations per CPU second)")
    for verb in ("create", "get", "list"):
        clear, enc = best["clear"][verb], best["aesgcm"][verb]
        unit = f"LIST of {n}" if verb == "list" else verb
        print(f"{unit:>16}: clear {clear:9.1f}/s   aesgcm {enc:9.1f}/s   ({(enc / clear - 1) * 100:+.0f}%)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    trio.run(main, args.objects, args.rounds)
