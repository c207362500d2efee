"""Store benchmarks: `.venv/bin/python bench/store.py` (about 60 s on the 2-core dev box).

Prints in-memory puts/s, durable puts/s per fsync policy (with concurrent writers sharing fsyncs for
"always"), the put-to-delivery latency of a watch fan-out to 1,000 watchers, and etcd rows on a local
etcd (orchestra.app.etcdlocal, Debian's etcd-server): puts/s straight into etcd with the gateway client
(orchestra.store.etcdclient) beside puts/s through a Store over the same etcd (aput: etcd's txn, then
the write back through the watch into the cache), same writers, as a share of raw etcd (target >= 70 %),
and the latency from a write into etcd to its event at a Store watcher (what the API's watches read).
All times come from trio.current_time() under trio's real clock. `--etcd-only`: only the etcd rows.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import trio

from orchestra.store import Store

VALUE = b"x" * 512  # about a small pod's JSON


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def memory_puts() -> None:
    for label, keys in (("overwrite 10k keys", 10_000), ("create new keys", None)):
        store = Store.open_memory()
        n = 300_000
        start = trio.current_time()
        for i in range(n):
            store.put(f"/registry/pods/default/pod-{i % keys if keys else i}", VALUE)
        elapsed = trio.current_time() - start
        print(f"memory   put ({label}):            {n / elapsed:>10,.0f} puts/s")
    start = trio.current_time()
    for _ in range(100):
        store.range("/registry/pods/default/pod-1", limit=500)
    print(f"memory   range (500 of 300k keys):          {(trio.current_time() - start) / 100 * 1e3:>8.2f} ms")
    store.put("/registry/zz/last", VALUE)  # a prefix that sorts after all 300k keys
    start = trio.current_time()
    for _ in range(1000):
        store.range("/registry/zz/")
    per_range = (trio.current_time() - start) / 1000
    print(f"memory   range (1 key after 300k others):   {per_range * 1e6:>8.1f} µs")


async def durable_sync_puts(policy: str, directory: Path) -> None:
    store = Store.open_durable(directory, fsync=policy, snapshot_every=10**9)  # type: ignore[arg-type]
    n = 100_000
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        start = trio.current_time()
        for i in range(n):
            store.put(f"/registry/pods/default/pod-{i % 10_000}", VALUE)
            if i % 1000 == 0:
                await trio.lowlevel.checkpoint()  # let run() do its batch fsync
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    stats = store.statistics()
    store.close()
    print(
        f"durable  put fsync={policy:<6} (1 writer, no wait): {n / elapsed:>10,.0f} puts/s"
        f"   fsyncs={stats['fsyncs']}"
    )


async def durable_always(directory: Path, writers: int, seconds: float) -> None:
    store = Store.open_durable(directory, fsync="always", snapshot_every=10**9)
    done = 0
    latencies: list[float] = []

    async def writer(n: int) -> None:
        nonlocal done
        i = 0
        while True:
            t0 = trio.current_time()
            kv = store.put(f"/registry/pods/w{n}/pod-{i % 1000}", VALUE)
            await store.wait_durable(kv.mod_revision)
            latencies.append(trio.current_time() - t0)
            done += 1
            i += 1

    async with trio.open_nursery() as nursery:
        for n in range(writers):
            nursery.start_soon(writer, n)
        start = trio.current_time()
        await trio.sleep(seconds)
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    stats = store.statistics()
    store.close()
    print(
        f"durable  put+wait_durable fsync=always, {writers:>3} writers: {done / elapsed:>8,.0f} puts/s"
        f"   fsyncs={stats['fsyncs']} ({done / max(1, stats['fsyncs']):.1f} puts/fsync)"  # type: ignore[call-overload]
        f"   commit p50={percentile(latencies, 0.5) * 1e3:.2f} ms"
        f" p99={percentile(latencies, 0.99) * 1e3:.2f} ms"
    )


async def watch_fanout(watchers: int, puts: int, interval: float) -> None:
    store = Store.open_memory()
    put_times: dict[int, float] = {}
    latencies: list[float] = []
    slowest: dict[int, float] = {}

    async def follow() -> None:
        async with store.watch("/registry/pods/", start_revision=1) as w:
            async for batch in w:
                now = trio.current_time()
                for ev in batch:
                    lat = now - put_times[ev.revision]
                    latencies.append(lat)
                    slowest[ev.revision] = max(slowest.get(ev.revision, 0.0), lat)

    async with trio.open_nursery() as nursery:
        for _ in range(watchers):
            nursery.start_soon(follow)
        await trio.sleep(0.2)
        for i in range(puts):
            put_times[store.revision + 1] = trio.current_time()
            store.put(f"/registry/pods/default/pod-{i % 50}", VALUE)
            await trio.sleep(interval)
        await trio.sleep(0.2)
        nursery.cancel_scope.cancel()
    assert len(latencies) == watchers * puts, (len(latencies), watchers * puts)
    print(
        f"watch    fan-out to {watchers} watchers, {puts} puts every {interval * 1e3:.0f} ms:"
        f" p50={percentile(latencies, 0.5) * 1e3:.2f} ms p99={percentile(latencies, 0.99) * 1e3:.2f} ms"
        f" (last watcher per put: median {statistics.median(slowest.values()) * 1e3:.2f} ms,"
        f" max {max(slowest.values()) * 1e3:.2f} ms)"
    )


async def writes_with_watchers(watchers: int, n: int) -> None:
    """Writers never wait for watchers: a tight put loop with 1,000 watchers attached."""
    store = Store.open_memory()
    received = 0
    all_caught_up = trio.Event()

    async def follow() -> None:
        nonlocal received
        async with store.watch("", start_revision=1) as w:
            async for batch in w:
                received += len(batch)
                if received == watchers * n:
                    all_caught_up.set()

    async with trio.open_nursery() as nursery:
        for _ in range(watchers):
            nursery.start_soon(follow)
        await trio.sleep(0.2)
        start = trio.current_time()
        for i in range(n):  # no yield: the watchers are woken once and wait for the trio thread
            store.put(f"/registry/pods/default/pod-{i % 1000}", VALUE)
        put_elapsed = trio.current_time() - start
        await all_caught_up.wait()
        total = trio.current_time() - start
        nursery.cancel_scope.cancel()
    print(
        f"watch    {n:,} puts with {watchers} watchers attached: {n / put_elapsed:>10,.0f} puts/s;"
        f" every watcher caught up after {total:.2f} s ({watchers * n / total:,.0f} events delivered/s)"
    )


async def etcd_rows(seconds: float) -> None:
    from orchestra.app.etcdlocal import LocalEtcd, etcd_binary

    if etcd_binary() is None:
        print("etcd     (skipped: no etcd binary; ./dev installs Debian's etcd-server)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        async with trio.open_nursery() as nursery:
            etcd = LocalEtcd(Path(tmp) / "etcd")
            await nursery.start(etcd.run)
            for writers in (1, 16, 64):
                best = {"raw": 0.0, "store": 0.0}
                for _ in range(2):  # alternately, best of 2 each: this machine is shared
                    best["raw"] = max(best["raw"], await etcd_raw_puts(etcd.endpoint, writers, seconds))
                    best["store"] = max(best["store"], await etcd_store_puts(etcd.url, writers, seconds))
                print(f"etcd     put, {writers:>3} writers: raw etcd {best['raw']:>7,.0f} puts/s;"
                      f" Store over etcd {best['store']:>7,.0f} puts/s"
                      f" ({best['store'] / best['raw']:.0%} of raw etcd; target >= 70 %)")
            await etcd_watch_latency(etcd.url, etcd.endpoint, 300, 0.01)
            nursery.cancel_scope.cancel()


async def _timed_writers(writers: int, seconds: float, write) -> float:  # type: ignore[no-untyped-def]
    """`writers` tasks calling `await write(n, i)` for `seconds`: writes/s."""
    done = 0

    async def writer(n: int) -> None:
        nonlocal done
        i = 0
        while True:
            await write(n, i)
            done += 1
            i += 1

    async with trio.open_nursery() as nursery:
        for n in range(writers):
            nursery.start_soon(writer, n)
        start = trio.current_time()
        await trio.sleep(seconds)
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    return done / elapsed


async def etcd_raw_puts(endpoint: str, writers: int, seconds: float) -> float:
    """Puts straight into etcd: orchestra's gateway client, no Store."""
    from orchestra.store.etcdclient import EtcdClient

    client = EtcdClient([endpoint])
    try:
        return await _timed_writers(writers, seconds, lambda n, i: client.put(
            f"/raw/registry/pods/w{n}/pod-{i % 1000}", VALUE))
    finally:
        await client.aclose()


async def etcd_store_puts(url: str, writers: int, seconds: float) -> float:
    """Puts through a Store over etcd: each returns once its revision is in the Store's cache."""
    store = await Store.open_etcd(url, prefix="/store")
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            rate = await _timed_writers(writers, seconds, lambda n, i: store.aput(
                f"/registry/pods/w{n}/pod-{i % 1000}", VALUE))
            nursery.cancel_scope.cancel()
    finally:
        await store.aclose()
    return rate


async def etcd_watch_latency(url: str, endpoint: str, puts: int, interval: float) -> None:
    """A write straight into etcd (as another server's would be) to its event at a Store watcher."""
    from orchestra.store.etcdclient import EtcdClient

    store = await Store.open_etcd(url, prefix="/watched")
    client = EtcdClient([endpoint])
    sent: dict[str, float] = {}
    latencies: list[float] = []
    all_seen = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)

            async def follow(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                async with store.watch("/registry/configmaps/", start_revision=store.revision + 1) as w:
                    task_status.started()
                    async for batch in w:
                        now = trio.current_time()
                        latencies.extend(now - sent[ev.kv.key] for ev in batch)
                        if len(latencies) >= puts:
                            all_seen.set()

            await nursery.start(follow)
            for i in range(puts):
                key = f"/registry/configmaps/default/cm-{i}"
                sent[key] = trio.current_time()
                await client.put(f"/watched{key}", VALUE)
                await trio.sleep(interval)
            with trio.move_on_after(5):
                await all_seen.wait()
            nursery.cancel_scope.cancel()
    finally:
        await client.aclose()
        await store.aclose()
    print(f"etcd     watch, a write into etcd -> the event at a Store watcher ({len(latencies)} of {puts}):"
          f" p50={percentile(latencies, 0.5) * 1e3:.2f} ms p99={percentile(latencies, 0.99) * 1e3:.2f} ms")


async def main() -> None:
    print(f"python {sys.version.split()[0]}, trio {trio.__version__}")
    if "--etcd-only" in sys.argv:
        await etcd_rows(3.0)
        return
    await memory_puts()
    with tempfile.TemporaryDirectory() as tmp:
        for policy in ("never", "batch", "always"):
            await durable_sync_puts(policy, Path(tmp) / f"sync-{policy}")
        for writers in (1, 16, 128):
            await durable_always(Path(tmp) / f"always-{writers}", writers, 3.0)
    await watch_fanout(1000, 200, 0.02)
    await writes_with_watchers(1000, 50_000)
    await etcd_rows(3.0)


if __name__ == "__main__":
    trio.run(main)
