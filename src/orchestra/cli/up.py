"""`orchestra up`: run the cluster in this process, tell the user how to reach it, apply manifests.

Owns: the foreground lifecycle of `up` — start run_cluster, print the kubectl hint, apply --apply
paths once ready, show the dashboard on a terminal, stop cleanly on Ctrl-C or SIGTERM.
The server side is imported lazily so client commands stay light.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import click
import trio

from orchestra.cli.apply import apply_manifests
from orchestra.cli.dashboard.input import is_interactive
from orchestra.cli.errors import CliError
from orchestra.cli.session import Session


def hint(cluster: Any, started: float) -> str:
    kc = cluster.kubeconfig
    return (
        f"orchestra is ready in {time.perf_counter() - started:.2f}s: API at {cluster.url}\n"  # wall-clock: start-up figure
        f"  export KUBECONFIG={kc}\n"
        f"  kubectl get nodes,pods -A        (or: orchestra get pods -A)\n"
        f"  orchestra dashboard              (live view; Ctrl-C here stops the cluster)"
    )


def apply_paths(kubeconfig: Path, paths: tuple[Path, ...]) -> None:
    # the Session closes its HTTP client with the click context; give this worker thread one
    with click.Context(click.Command("apply")):
        session = Session(str(kubeconfig), None, 30.0)
        apply_manifests(tuple(str(p) for p in paths), session)


async def _stop_on_sigterm(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def up_main(config: Any, *, dashboard: bool) -> None:
    from orchestra.app import run_cluster

    started = time.perf_counter()  # wall-clock: start-up time shown to the user
    async def cluster_then_stop(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await run_cluster(config, task_status=task_status)
        nursery.cancel_scope.cancel()  # the cluster ended by itself: nothing left to run

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_sigterm, nursery.cancel_scope)
        cluster = await nursery.start(cluster_then_stop)
        click.echo(hint(cluster, started), err=True)
        if config.apply_paths:
            try:
                await trio.to_thread.run_sync(apply_paths, cluster.kubeconfig, config.apply_paths)
            except (CliError, SystemExit) as exc:
                click.echo(f"orchestra: applying {', '.join(map(str, config.apply_paths))} failed: {exc}", err=True)
        if dashboard and is_interactive():
            from orchestra.cli.dashboard.app import run_in_process

            await run_in_process(cluster)  # until q / Ctrl-C in the dashboard
            nursery.cancel_scope.cancel()
