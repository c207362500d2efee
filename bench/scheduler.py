"""Scheduler benchmark: pods scheduled per second with 1,000 simulated nodes and 10,000 pods.

Everything runs in this process: the in-memory store, the API core, a LocalClient and the Scheduler
(no node agents: Node objects are created directly with allocatable cpu 32 / memory 128Gi / pods 110
and a Ready condition). The clock starts at the first pod creation and stops when a watch has seen
every pod bound; per-pod latency is creation → bound as the watch observed it.
With --backlog every pod exists before the scheduler starts, so the clock measures the scheduler
alone (its binds, events and the watches) rather than the rate at which the API creates pods.

--deployment times the other figure: a 1,000-replica Deployment on 100 simulated nodes, from its
creation until its status says every replica is updated and available (target <= 10 s). That is the
whole cluster of `orchestra up --simulate-nodes 100` in this process (run_cluster with the memory
store, no Podman, no network): API, controllers, scheduler and simulated node agents.
Usage: .venv/bin/python bench/scheduler.py [--nodes 1000] [--pods 10000] [--backlog] [--profile]
       .venv/bin/python bench/scheduler.py --deployment [--nodes 100] [--replicas 1000]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time  # wall-clock: a benchmark measures real time
from pathlib import Path

import trio

from orchestra.api.request.core import ApiCore
from orchestra.client.local import LocalClient
from orchestra.reconcilers.scheduler import Scheduler
from orchestra.store import Store


def node(i: int) -> dict[str, object]:
    name = f"node-{i:04d}"
    return {
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": f"zone-{i % 3}"},
        },
        "status": {
            "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
            "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
        },
    }


def pod(i: int) -> dict[str, object]:
    return {
        "metadata": {"name": f"pod-{i:05d}", "labels": {"app": "bench"}},
        "spec": {
            "containers": [
                {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}
            ]
        },
    }


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


async def bench(n_nodes: int, n_pods: int, precreate: bool = False) -> None:
    core = ApiCore(Store.open_memory())
    client = LocalClient(core)
    pod_rt, node_rt = client.kind("Pod"), client.kind("Node")
    await client.create(client.kind("Namespace"), None, {"metadata": {"name": "default"}})
    for i in range(n_nodes):
        await client.create(node_rt, None, node(i))
    scheduler = Scheduler(client, seed=1)
    created: dict[str, float] = {}
    bound: dict[str, float] = {}
    all_bound = trio.Event()

    async def observe(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        _, rv = await client.list(pod_rt, "default")
        task_status.started()
        async for event_type, obj in client.watch(pod_rt, "default", resource_version=rv):
            name = obj["metadata"]["name"]
            if event_type != "DELETED" and obj["spec"].get("nodeName") and name not in bound:
                bound[name] = time.perf_counter()
                if len(bound) == n_pods:
                    all_bound.set()
                    return

    async def create_pods() -> None:
        for i in range(n_pods):
            obj = pod(i)
            created[obj["metadata"]["name"]] = time.perf_counter()  # type: ignore[index]
            await client.create(pod_rt, "default", obj)
            await trio.lowlevel.checkpoint()  # pods arrive one by one, as over HTTP

    async with trio.open_nursery() as nursery:
        await nursery.start(observe)
        if precreate:  # a backlog: only the scheduler (binds, events, watches) is on the clock
            await create_pods()
            start, cpu_start = time.perf_counter(), time.process_time()
            await nursery.start(scheduler.run)
            created_all = 0.0
        else:
            await nursery.start(scheduler.run)
            start, cpu_start = time.perf_counter(), time.process_time()
            await create_pods()
            created_all = time.perf_counter() - start
        await all_bound.wait()
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        nursery.cancel_scope.cancel()
    lat = sorted(bound[k] - created[k] for k in bound)
    stats = scheduler.statistics()
    print(
        f"nodes={n_nodes} pods={n_pods} mode="
        f"""{'backlog (pods created before the scheduler starts)' if precreate
             else 'arrival (pods created while the scheduler runs)'}"""
    )
    if precreate:
        print(f"all bound {elapsed:.2f}s after the scheduler started")
    else:
        print(f"created all pods in {created_all:.2f}s; all bound after {elapsed:.2f}s")
    print(f"throughput: {n_pods / elapsed:,.0f} pods/s (wall clock); {n_pods / cpu:,.0f} pods per CPU-second "
          f"(this process used {cpu:.2f}s of CPU: the figure to compare on a busy machine)")
    if precreate:
        lat = sorted(v - start for v in bound.values())
    print(
        f"per-pod latency ({'scheduler start' if precreate else 'create'} -> bound seen by a watch): "
        f"p50 {pct(lat, 0.5) * 1000:.1f} ms, p99 {pct(lat, 0.99) * 1000:.1f} ms"
    )
    print(
        f"scheduler: attempts={stats.attempts} scheduled={stats.scheduled} "
        f"unschedulable={stats.unschedulable} errors={stats.errors}"
    )
    per_node = [len(info.pods) for info in scheduler.cache.node_list()]
    print(f"pods per node: min {min(per_node)} max {max(per_node)}")


async def bench_deployment(n_nodes: int, replicas: int) -> None:
    from orchestra.app import ClusterConfig, run_cluster

    config = ClusterConfig(state_dir=Path(tempfile.mkdtemp(prefix="orchestra-bench-")), listen_port=0,
                           store="memory", podman=False, network=False, simulate_nodes=n_nodes)
    async with trio.open_nursery() as nursery:
        t0 = time.perf_counter()
        cluster = await nursery.start(run_cluster, config)
        up = time.perf_counter() - t0
        client = LocalClient(cluster.core)
        deploy_rt = client.kind("Deployment")
        body = {
            "metadata": {"name": "bench", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "bench"}},
                     "template": {"metadata": {"labels": {"app": "bench"}}, "spec": {"containers": [
                         {"name": "c", "image": "localhost/busybox:latest", "command": ["sleep", "3600"],
                          "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}},
        }
        _, rv = await client.list(deploy_rt, "default")
        start, cpu_start = time.perf_counter(), time.process_time()
        await client.create(deploy_rt, "default", body)
        async for _, obj in client.watch(deploy_rt, "default", resource_version=rv):
            st = obj.get("status") or {}
            if (
                st.get("observedGeneration") == obj["metadata"]["generation"]
                and st.get("updatedReplicas") == replicas
                and st.get("availableReplicas") == replicas
                and st.get("replicas") == replicas
            ):
                break
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        nursery.cancel_scope.cancel()
    print(f"deployment: replicas={replicas} simulated nodes={n_nodes} (cluster up in {up:.2f}s)")
    print(
        f"fully available after {elapsed:.2f}s (target <= 10 s); "
        f"this process used {cpu:.2f}s of CPU meanwhile"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, help="nodes (default 1000; with --deployment 100)")
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument(
        "--backlog", action="store_true", help="create every pod before starting the scheduler"
    )
    parser.add_argument(
        "--deployment", action="store_true", help="time a Deployment to fully available instead"
    )
    parser.add_argument("--replicas", type=int, default=1000, help="with --deployment")
    parser.add_argument("--profile", action="store_true", help="print the top functions by cumulative time")
    args = parser.parse_args()
    if args.deployment:
        run, run_args = bench_deployment, (args.nodes or 100, args.replicas)
    else:
        run, run_args = bench, (args.nodes or 1000, args.pods, args.backlog)  # type: ignore[assignment]
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(lambda: trio.run(run, *run_args))
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
    else:
        trio.run(run, *run_args)


if __name__ == "__main__":
    main()
