"""`orchestra join https://SERVER:PORT --token T`: this host becomes a node of that cluster.

Owns: the command line of a joined node and its foreground lifetime: run app/joined.py until Ctrl-C or
SIGTERM (the first stops cleanly, keeping or removing pods as `orchestra up` does; a second forces),
and turning a refused join (JoinError), a host that cannot run pods (RuntimeUnavailable) or the node's
network (NetworkSetupError: --no-network) into a one-line message.
The node side is imported lazily so other commands stay light.
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import trio

from orchestra.cli.errors import CliError


@click.command("join")
@click.argument("server", metavar="https://SERVER:PORT")
@click.option("--token", required=True, envvar="ORCHESTRA_JOIN_TOKEN",
              help="The join token `orchestra token create` printed on the server "
                   "(K10<sha256>::<id>.<secret>).")
@click.option("--node-name", default="", help="This node's name [default: the host name].")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="ORCHESTRA_NODE_STATE_DIR",
              help="The node's certificate, kubeconfig, Podman storage and volumes "
                   "[default: <user data dir>/node].")
@click.option("--stop-pods", is_flag=True,
              help="On exit, stop and remove this node's pods (default: they keep running and are "
                   "adopted by the next `orchestra join`).")
@click.option("--timings", type=click.Choice(["default", "fast"]), default="default", show_default=True,
              help="Heartbeats for the server's node failure detection "
                   "(fast: for `orchestra up --timings fast`).")
@click.option("--kubelet-port", type=click.IntRange(1, 65535), default=10250, show_default=True,
              help="The port of this node's kubelet API (the API server's logs, exec, attach, port-forward).")
@click.option("--no-network", is_flag=True, envvar="ORCHESTRA_NO_NETWORK",
              help="No service proxy, cluster DNS or NetworkPolicy enforcement on this node. Use it when the "
                   "node shares its network namespace with the server or another node (theirs serve its "
                   "pods; two cannot hold the same ClusterIPs), or cannot run them (not root).")
@click.option("--wait", "wait_seconds", type=click.FloatRange(min=1), default=120.0, show_default=True,
              help="Seconds to wait for the node's certificate to be approved and signed.")
@click.option("--certificate-ttl", type=click.IntRange(min=600), default=None, hidden=True,
              help="Requested lifetime of the node's client certificate, in seconds.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv: debug).")
def join_command(server: str, token: str, node_name: str, state_dir: Path | None, stop_pods: bool,
                 timings: str, kubelet_port: int, no_network: bool, wait_seconds: float,
                 certificate_ttl: int | None, verbose: int) -> None:
    """Join this host to a cluster as a node with its own Podman, until Ctrl-C.

    \b
    Examples:
      orchestra join https://10.0.0.5:6443 --token K10...::abcdef.0123456789abcdef
      orchestra join https://10.0.0.5:6443 --token $T --node-name worker-1 --state-dir /var/lib/worker-1
    """
    from orchestra.app.components import node_name as host_name
    from orchestra.app.joined import JoinConfig
    from orchestra.cli.config import default_state_dir
    from orchestra.cli.main import _configure_logging

    if not server.startswith("https://"):
        raise click.BadParameter(f"expected https://SERVER:PORT, got {server!r}", param_hint="SERVER")
    name = node_name or host_name()
    config = JoinConfig(server=server.rstrip("/"), token=token, node_name=name,
                        state_dir=(state_dir or default_state_dir() / "node").resolve(),
                        stop_pods_on_exit=stop_pods,
                        wait_seconds=wait_seconds, certificate_seconds=certificate_ttl, timings=timings,
                        kubelet_port=kubelet_port, network=not no_network)
    _configure_logging(verbose)
    try:
        trio.run(functools.partial(_main, config))
    except BaseException as exc:
        leaves = list(_leaves(exc))
        if all(isinstance(e, KeyboardInterrupt | trio.Cancelled) for e in leaves):
            click.echo("orchestra: node stopped", err=True)
            return
        refused = [e for e in leaves
                   if type(e).__name__ in ("JoinError", "RuntimeUnavailable", "NetworkSetupError")]
        if refused:
            raise CliError(f"cannot join {server}: {refused[0]}") from None
        raise


async def _main(config: Any) -> None:
    from orchestra.app.joined import run_joined_node

    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            async def node(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
                await run_joined_node(config, task_status=task_status)
                nursery.cancel_scope.cancel()

            _, _, cidr = await nursery.start(node)
            click.echo(f"orchestra: node {config.node_name} joined {config.server} (podCIDR {cidr}); "
                       "Ctrl-C stops it", err=True)
            async for signum in signals:
                click.echo(f"orchestra: {signal.Signals(signum).name}: stopping the node", err=True)
                nursery.cancel_scope.cancel()
                return


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc
