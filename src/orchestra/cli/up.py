"""`orchestra up`: run the cluster in this process, tell the user how to reach it, apply manifests.

Owns: the foreground lifecycle of `up` — start run_cluster, print the kubectl hint, apply --apply
paths once ready, show the dashboard on a terminal, stop cleanly on Ctrl-C or SIGTERM.
The server side is imported lazily so client commands stay light.
"""

from __future__ import annotations

import os
import signal
import threading
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
        f"orchestra is ready in {time.perf_counter() - started:.2f}s: "  # wall-clock: start-up figure
        f"API at {cluster.url}\n"
        f"  export KUBECONFIG={kc}\n"
        f"  kubectl get nodes,pods -A        (or: orchestra get pods -A)\n"
        f"  orchestra dashboard              (live view; Ctrl-C here stops the cluster)"
    )


def apply_paths(kubeconfig: Path, paths: tuple[Path, ...]) -> None:
    # the Session closes its HTTP client with the click context; give this worker thread one
    with click.Context(click.Command("apply")):
        session = Session(str(kubeconfig), None, 30.0)
        apply_manifests(tuple(str(p) for p in paths), session)


FORCE_EXIT_AFTER = 5.0  # seconds a forced stop may take before the process exits regardless


async def _handle_signals(signals: Any, shutdown: Any) -> None:
    """First SIGTERM/SIGINT: stop cleanly. Second: cut the clean-up short (and if even that hangs,
    leave the process after FORCE_EXIT_AFTER s — a thread, so a blocked event loop cannot stop it)."""
    from orchestra.cli.signals import received

    if received:  # one arrived before the event loop took the signals over and was lost on the way
        click.echo(f"orchestra: {signal.Signals(received[-1]).name}: stopping", err=True)
        shutdown.stop()
    async for signum in signals:
        name = signal.Signals(signum).name
        if not shutdown.stopping:
            click.echo(f"orchestra: {name}: stopping (again to force)", err=True)
            shutdown.stop()
            continue
        click.echo(f"orchestra: {name}: forcing the stop", err=True)
        shutdown.force()
        timer = threading.Timer(FORCE_EXIT_AFTER, os._exit, (130,))
        timer.daemon = True
        timer.start()
        return


async def up_main(config: Any, *, dashboard: bool) -> None:
    from orchestra.app import Shutdown, run_cluster

    started = time.perf_counter()  # wall-clock: start-up time shown to the user
    shutdown = Shutdown()
    # Signals are ours from the first moment of the event loop: a SIGTERM during start-up stops the
    # cluster cleanly instead of interrupting whatever happened to run.
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as outer:
            outer.start_soon(_handle_signals, signals, shutdown)
            try:
                await _run_up(config, dashboard, shutdown, started, run_cluster)
            finally:
                outer.cancel_scope.cancel()


async def _run_up(config: Any, dashboard: bool, shutdown: Any, started: float, run_cluster: Any) -> None:
    async def cluster_then_stop(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await run_cluster(config, shutdown=shutdown, task_status=task_status)
        nursery.cancel_scope.cancel()  # the cluster ended (stopped, or by itself): nothing left to run

    async with trio.open_nursery() as nursery:
        try:
            cluster = await nursery.start(cluster_then_stop)
        except RuntimeError:
            if shutdown.stopping:  # stopped during start-up: run_cluster returned before it was ready
                return
            raise
        click.echo(hint(cluster, started), err=True)
        if config.apply_paths:
            try:
                # abandoned on a stop: the HTTP calls fail once the server is gone, and nothing waits for them
                await trio.to_thread.run_sync(apply_paths, cluster.kubeconfig, config.apply_paths,
                                              abandon_on_cancel=True)
            except (CliError, SystemExit) as exc:
                click.echo(
                    f"orchestra: applying {', '.join(map(str, config.apply_paths))} failed: {exc}", err=True
                )
        if dashboard and is_interactive():
            from orchestra.cli.dashboard.app import run_in_process

            await run_in_process(cluster)  # until q / Ctrl-C in the dashboard
            shutdown.stop()
