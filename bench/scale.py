"""Scale benchmark: 1,000 simulated nodes and 30,000 pods in one process; RSS and API LIST latency.

Everything is `orchestra up --simulate-nodes 1000` in this process (run_cluster with the memory
store, no Podman, no network): API server, controllers, scheduler and 1,000 simulated node agents.
The pods come from Deployments created through the in-process API core (300 x 100 replicas by
default), so the whole control loop runs: ReplicaSets, the scheduler's binds, the agents' status.
Printed: the time until every pod is Running (seen by a pod watch); the process RSS (target
<= 2 GiB); LIST latency at that size, in-process (ApiCore.list of every pod, and label-selected)
and over HTTPS from a client thread (p50 of a full pod LIST and of a label-selected one, time to
the last byte of the reply).
--tracemalloc prints the allocation sites holding the most memory at the end (slow: ~2x).
Usage: .venv/bin/python bench/scale.py [--nodes 1000] [--deployments 300] [--replicas 100] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import tempfile
import time  # wall-clock: a benchmark measures real time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import trio

from orchestra.api.machinery.selectors import parse_label_selector
from orchestra.client.local import LocalClient

LIST_ROUNDS = 7


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident set size in MiB."""
    current = 0.0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def deployment(i: int, replicas: int) -> dict[str, Any]:
    name = f"app-{i:03d}"
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                     {"name": "c", "image": "localhost/busybox:latest", "command": ["sleep", "3600"],
                      "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}},
    }


def running(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and not pod["metadata"].get(
        "deletionTimestamp"
    )


def timed(fn: Callable[[], object], rounds: int = LIST_ROUNDS) -> tuple[float, object]:
    """p50 in ms over `rounds` calls, and the last result."""
    times, result = [], None
    for _ in range(rounds):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


async def bench(n_nodes: int, n_deployments: int, replicas: int) -> None:
    from orchestra.app import ClusterConfig, run_cluster

    total = n_deployments * replicas
    config = ClusterConfig(state_dir=Path(tempfile.mkdtemp(prefix="orchestra-scale-")), listen_port=0,
                           store="memory", podman=False, network=False, simulate_nodes=n_nodes)
    async with trio.open_nursery() as nursery:
        t0 = time.perf_counter()
        cluster = await nursery.start(run_cluster, config)
        print(f"cluster with {n_nodes} simulated nodes up in {time.perf_counter() - t0:.1f}s; "
              f"RSS {rss_mib()[0]:.0f} MiB")
        client = LocalClient(cluster.core)
        pod_rt, deploy_rt = client.kind("Pod"), client.kind("Deployment")
        all_running = trio.Event()
        seen: set[str] = set()
        progress = {"t": time.perf_counter()}

        async def watch_pods(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            _, rv = await client.list(pod_rt, "default")
            task_status.started()
            async for event_type, pod in client.watch(pod_rt, "default", resource_version=rv):
                uid = pod["metadata"]["uid"]
                if event_type != "DELETED" and running(pod):
                    seen.add(uid)
                else:
                    seen.discard(uid)
                if len(seen) >= total:
                    all_running.set()
                    return
                if time.perf_counter() - progress["t"] > 10:
                    progress["t"] = time.perf_counter()
                    print(f"  ... {len(seen):,} pods Running after {progress['t'] - start:.0f}s; "
                          f"RSS {rss_mib()[0]:.0f} MiB", flush=True)

        await nursery.start(watch_pods)
        start = time.perf_counter()
        for i in range(n_deployments):
            await client.create(deploy_rt, "default", deployment(i, replicas))
        created = time.perf_counter() - start
        await all_running.wait()
        elapsed = time.perf_counter() - start
        print(f"{n_deployments} Deployments x {replicas} replicas created in {created:.1f}s; "
              f"all {total:,} pods Running after {elapsed:.1f}s")

        gc.collect()
        current, peak = rss_mib()
        print(f"RSS: {current:,.0f} MiB now, {peak:,.0f} MiB peak (target <= 2,048 MiB)")

        core = cluster.core
        selector = parse_label_selector("app=app-007")
        p50_all, res = timed(lambda: core.list(pod_rt, None))
        n_all = len(res.items)  # type: ignore[attr-defined]
        p50_sel, res = timed(lambda: core.list(pod_rt, None, label_selector=selector))
        n_sel = len(res.items)  # type: ignore[attr-defined]
        print(f"in-process ApiCore.list: all {n_all:,} pods p50 {p50_all:.1f} ms; "
              f"label-selected (app=app-007, {n_sel} pods) p50 {p50_sel:.1f} ms")

        def http_lists() -> tuple[float, int, float, int]:
            headers = {"Authorization": f"Bearer {cluster.token}", "Accept": "application/json"}
            with httpx.Client(
                base_url=cluster.url, verify=str(cluster.ca_cert), headers=headers, timeout=300
            ) as http:
                full, r = timed(lambda: http.get("/api/v1/pods"))
                size_all = len(r.content)  # type: ignore[attr-defined]
                sel, r = timed(
                    lambda: http.get(
                        "/api/v1/namespaces/default/pods", params={"labelSelector": "app=app-007"}
                    )
                )
                return full, size_all, sel, len(r.content)  # type: ignore[attr-defined]

        full, size_all, sel, size_sel = await trio.to_thread.run_sync(http_lists)
        print(
            "HTTPS LIST (client thread, to the last byte): "
            f"all pods p50 {full:.0f} ms ({size_all / 2**20:.1f} MiB); "
            f"labelSelector=app=app-007 p50 {sel:.1f} ms ({size_sel / 1024:.0f} KiB)"
        )
        print(f"RSS after the LISTs: {rss_mib()[0]:,.0f} MiB")
        nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--deployments", type=int, default=300)
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument(
        "--tracemalloc", action="store_true", help="print the top allocation sites at the end"
    )
    args = parser.parse_args()
    if args.tracemalloc:
        tracemalloc.start(1)  # one frame: deeper tracebacks make the run several times slower
    trio.run(bench, args.nodes, args.deployments, args.replicas)
    if args.tracemalloc:
        snapshot = tracemalloc.take_snapshot()
        print("top allocation sites (tracemalloc, by size, grouped by file:line):")
        for stat in snapshot.statistics("lineno")[:25]:
            print(f"  {stat.size / 2**20:8.1f} MiB  {stat.count:>9,} blocks  {stat.traceback[0]}")


if __name__ == "__main__":
    main()
