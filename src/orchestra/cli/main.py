"""The `orchestra` command: `up` runs the cluster; apply/get/describe/delete/version talk to it.

Owns: the click group (kubectl-like exit codes: 0 ok, 1 error, never a traceback), `up` option
parsing, `describe` and `version`. The server is imported lazily inside `up`, so client commands
start fast and do not need the server's dependencies.
Must not import (at module level): orchestra.app or anything of the server side.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from orchestra import __version__
from orchestra.cli.apply import apply_command
from orchestra.cli.config import default_state_dir
from orchestra.cli.dashboard.input import is_interactive
from orchestra.cli.delete import delete_command
from orchestra.cli.describe import describe_object
from orchestra.cli.errors import ApiStatusError, CliError
from orchestra.cli.etcdoptions import check_etcd_tls
from orchestra.cli.get import get_command
from orchestra.cli.rest import resource_path
from orchestra.cli.session import Session, client_options
from orchestra.cli.signals import Terminated
from orchestra.cli.targets import parse_targets

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# Commands whose modules are heavy (trio, httpx, rich Live) load only when they are run.
LAZY_COMMANDS = {
    "dashboard": ("orchestra.cli.dashboard.command", "dashboard_command"),
    "explain": ("orchestra.cli.explain", "explain_command"),
    "join": ("orchestra.cli.join", "join_command"),
    "kubeconfig": ("orchestra.cli.kubeconfig", "kubeconfig_command"),
    "status": ("orchestra.cli.status", "status_command"),
    "store": ("orchestra.cli.store", "store_command"),
    "token": ("orchestra.cli.token", "token_command"),
    "why": ("orchestra.cli.explain", "why_command"),
}


class OrchestraGroup(click.Group):
    """Runs commands with kubectl's exit codes: usage errors exit 1 (click uses 2), Ctrl-C 130."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, attr = LAZY_COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            exc.show()
            sys.exit(1)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt) as exc:
            # click turns KeyboardInterrupt into Abort; SIGTERM arrives as Terminated (cli/signals.py)
            sys.exit(143 if isinstance(exc.__cause__ or exc, Terminated) else 130)
        except BrokenPipeError:
            sys.exit(1)  # e.g. `orchestra get pods | head`
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=OrchestraGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="orchestra", message="%(prog)s %(version)s")
def cli() -> None:
    """orchestra: Kubernetes in one Python process.

    \b
    Start a cluster, then use this CLI or kubectl against it:
      orchestra up                      # runs until Ctrl-C; writes <state dir>/kubeconfig
      orchestra apply -f examples/      # in another terminal
      orchestra get pods -o wide
      kubectl --kubeconfig ~/.local/share/orchestra/kubeconfig get pods
    """


cli.add_command(apply_command)
cli.add_command(get_command)
cli.add_command(delete_command)



# -- up -------------------------------------------------------------------------------------------


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (127.0.0.1) or `[::1]:PORT`."""
    host, sep, port = value.rpartition(":")
    if not sep:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise click.BadParameter(f"port must be a number, got {port!r}") from None
    if not 0 <= number <= 65535:
        raise click.BadParameter(f"port must be between 0 and 65535, got {number}")
    return host, number


class ListenType(click.ParamType):
    name = "HOST:PORT"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_listen(str(value))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


def _check_cluster_cidr(value: str) -> str:
    from orchestra.node.podcidr import PodCIDRError, plan

    try:
        plan(1, value)
    except PodCIDRError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _check_store(value: str | None) -> str | None:
    """--store: `etcd` (a local etcd under the state directory) or an etcd URL
    (etcd://HOST:PORT[,HOST:PORT]), checked here so a typo is a usage error."""
    if value is None or value == "etcd":
        return value
    from orchestra.store.etcd import endpoints_from_url

    try:
        endpoints_from_url(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _check_ip(value: str | None) -> str | None:
    import ipaddress

    if value is None:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IP address") from None
    if address.is_unspecified:
        raise click.BadParameter(f"{value} is not an address nodes can reach: give one of this host's")
    return str(address)


def _check_tls_sans(values: tuple[str, ...]) -> tuple[str, ...]:
    """--tls-san: IP addresses or DNS names (a leading `*.` for a wildcard), as a certificate holds them."""
    import ipaddress
    import re

    label = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    checked = []
    for value in values:
        name = value.strip().lower()
        try:
            checked.append(str(ipaddress.ip_address(name)))
            continue
        except ValueError:
            pass
        labels = name.removeprefix("*.").split(".")
        if not name or len(name) > 253 or not all(label.match(part) for part in labels):
            raise click.BadParameter(f"{value!r} is neither an IP address nor a DNS name (letters, digits "
                                     "and '-' in dot-separated labels, optionally starting with '*.')")
        checked.append(name)
    return tuple(dict.fromkeys(checked))


class OptionalListenType(ListenType):
    """HOST:PORT, or `off` (None)."""

    name = "HOST:PORT|off"

    def convert(self, value: Any, param: click.Parameter | None,  # type: ignore[override]
                ctx: click.Context | None) -> tuple[str, int] | None:
        if value is None or (isinstance(value, str) and value.strip().lower() == "off"):
            return None
        return super().convert(value, param, ctx)


UP_HELP = """Run a cluster in this process until Ctrl-C.

Starts the store, API server, scheduler, controllers and node agent, writes
<state dir>/kubeconfig and prints how to point kubectl at it. State persists in the state
directory across restarts (unless --memory; with --store, in etcd). Every option can also be
set in the environment (ORCHESTRA_STATE_DIR, ORCHESTRA_LISTEN, ORCHESTRA_MEMORY, ORCHESTRA_STORE,
ORCHESTRA_SIMULATE_NODES,
ORCHESTRA_APPLY (paths separated by spaces), ORCHESTRA_NO_PODMAN, ORCHESTRA_DASHBOARD,
ORCHESTRA_NO_NETWORK, ORCHESTRA_TIMINGS, ORCHESTRA_STOP_PODS, ORCHESTRA_INGRESS_LISTEN,
ORCHESTRA_INGRESS_TLS_LISTEN, ORCHESTRA_CLUSTER_CIDR).

\b
Examples:
  orchestra up
  orchestra up --listen 127.0.0.1:7443 --state-dir /tmp/demo --apply examples/
  orchestra up --memory --no-podman --simulate-nodes 100
  orchestra up --store etcd
  orchestra up --store etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379
  orchestra up --ingress-listen 127.0.0.1:8080 --ingress-tls-listen off
"""


@cli.command("up", help=UP_HELP)
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), envvar="ORCHESTRA_STATE_DIR",
              help="Where the store, token and kubeconfig live [default: the user data dir].")
@click.option("--listen", type=ListenType(), default="127.0.0.1:6443", show_default=True,
              envvar="ORCHESTRA_LISTEN", help="Address for the API server.")
@click.option("--advertise-address", default=None, envvar="ORCHESTRA_ADVERTISE_ADDRESS", metavar="IP",
              callback=lambda ctx, param, value: _check_ip(value),
              help="Where nodes and pods reach the API server (the `kubernetes` Service's endpoint, in the "
                   "serving certificate, listened on as well) [default: the --listen address].")
@click.option("--tls-san", "tls_sans", multiple=True, metavar="NAME_OR_IP", envvar="ORCHESTRA_TLS_SAN",
              callback=lambda ctx, param, value: _check_tls_sans(value),
              help="Another name or address the API server's serving certificate covers (repeatable; e.g. a "
                   "load balancer's in front of several servers).")
@click.option("--memory", is_flag=True, envvar="ORCHESTRA_MEMORY",
              help="Keep state in memory only (lost on exit) instead of the durable store.")
@click.option("--store", "store_url", default=None, envvar="ORCHESTRA_STORE",
              metavar="etcd|etcd://HOST:PORT[,...]", callback=lambda ctx, param, value: _check_store(value),
              help="Keep state in etcd (v3, through its gRPC gateway) under /registry/, as kube-apiserver "
                   "does, instead of the durable store in the state directory; several endpoints of one "
                   "etcd cluster separated by commas. `etcd` alone: orchestra runs a local etcd itself, "
                   "its data in <state dir>/etcd.")
@click.option("--etcd-cafile", default=None, envvar="ORCHESTRA_ETCD_CAFILE", metavar="FILE",
              help="With --store etcds://...: the CA that signed etcd's serving certificates (PEM) [default: "
                   "the system's CAs] (kube-apiserver's --etcd-cafile).")
@click.option("--etcd-certfile", default=None, envvar="ORCHESTRA_ETCD_CERTFILE", metavar="FILE",
              help="With --store etcds://...: the client certificate (PEM) for an etcd that asks for one "
                   "(--client-cert-auth).")
@click.option("--etcd-keyfile", default=None, envvar="ORCHESTRA_ETCD_KEYFILE", metavar="FILE",
              help="With --store etcds://...: the client certificate's key (PEM).")
@click.option("--token", "cluster_token", default=None, envvar="ORCHESTRA_TOKEN", metavar="TOKEN",
              help="The cluster's admin token (k3s' --token). With --store etcd://... where another server "
                   "already runs the cluster: that cluster's token (its first server's <state dir>/token), "
                   "so this server takes the cluster's CA, keys and token from etcd and serves it too. On a "
                   "first start: the token to use [default: the state directory's, or a new one].")
@click.option("--simulate-nodes", type=click.IntRange(min=0), default=0, show_default=True,
              envvar="ORCHESTRA_SIMULATE_NODES", help="Also run N simulated nodes (no containers).")
@click.option("--simulated-node-prefix", default="sim-node-", show_default=True, metavar="PREFIX",
              envvar="ORCHESTRA_SIMULATED_NODE_PREFIX",
              help="The simulated nodes are PREFIX1..PREFIXN (servers sharing one etcd need different ones).")
@click.option("--nodes", type=click.IntRange(min=1, max=200), default=1, show_default=True,
              envvar="ORCHESTRA_NODES",
              help="Real nodes on this host: this host's node plus N-1 workers (worker-1, ...), each in a "
                   "network namespace of its own with its own Podman, joined like `orchestra join` nodes.")
@click.option("--node-link-cidr", default="10.243.0.0/24", show_default=True, metavar="CIDR",
              envvar="ORCHESTRA_NODE_LINK_CIDR",
              help="With --nodes: the link between this host (its first address) and the worker nodes.")
@click.option("--apply", "apply_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              envvar="ORCHESTRA_APPLY", help="Apply these manifests (file or "
                                             "directory) once ready (repeatable).")
@click.option("--no-podman", is_flag=True, envvar="ORCHESTRA_NO_PODMAN",
              help="Do not run containers with Podman (simulated nodes only).")
@click.option("--dashboard/--no-dashboard", default=None, envvar="ORCHESTRA_DASHBOARD",
              help="Show the live terminal dashboard [default: on when stdout is a terminal].")
@click.option("--stop-pods", is_flag=True, envvar="ORCHESTRA_STOP_PODS",
              help="On exit, stop and remove this cluster's pods (default: they keep running and are adopted "
                   "by the next `orchestra up`).")
@click.option("--no-network", is_flag=True, envvar="ORCHESTRA_NO_NETWORK",
              help="No service proxy or cluster DNS (they need root to route the service range).")
@click.option("--cluster-cidr", default="", envvar="ORCHESTRA_CLUSTER_CIDR", metavar="CIDR",
              callback=lambda ctx, param, value: _check_cluster_cidr(value),
              help="Each Node's spec.podCIDR (a /24 each, from the node IPAM controller) comes from this "
                   "range [default: 10.244.0.0/16, wider for more than 256 simulated nodes].")
@click.option("--ingress-listen", type=OptionalListenType(), default="0.0.0.0:80", show_default=True,
              metavar="HOST:PORT|off",
              envvar="ORCHESTRA_INGRESS_LISTEN",
              help="HTTP address of the ingress controller (Ingresses of class `orchestra`); `off` to "
                   "disable. Needs the network (off with --no-network). Left at the default, a port in "
                   "use is a warning and the listener stays off; given, it stops the start.")
@click.option("--ingress-tls-listen", type=OptionalListenType(), default="0.0.0.0:443", show_default=True,
              metavar="HOST:PORT|off",
              envvar="ORCHESTRA_INGRESS_TLS_LISTEN",
              help="HTTPS address of the ingress controller (certificates from the Ingresses' TLS Secrets, "
                   "by SNI); `off` to disable. A port in use: as for --ingress-listen.")
@click.option("--timings", type=click.Choice(["default", "fast"]), default="default", show_default=True,
              envvar="ORCHESTRA_TIMINGS",
              help="Kubernetes' defaults, or fast for local use: node failure detection in 10 s (not 40 s), "
                   "HPAs synced every 5 s (not 15 s) with a 60 s downscale stabilization (not 300 s), "
                   "and pods evicted 30 s (not 300 s) after their node goes not-ready or unreachable "
                   "(both --default-*-toleration-seconds set to 30).")
@click.option("--default-not-ready-toleration-seconds", type=int, default=None, metavar="SECONDS",
              envvar="ORCHESTRA_DEFAULT_NOT_READY_TOLERATION_SECONDS",
              help="The tolerationSeconds of the toleration for not-ready:NoExecute that is added to every "
                   "pod that does not already have such a toleration [default: 300; 30 with --timings fast].")
@click.option("--default-unreachable-toleration-seconds", type=int, default=None, metavar="SECONDS",
              envvar="ORCHESTRA_DEFAULT_UNREACHABLE_TOLERATION_SECONDS",
              help="The tolerationSeconds of the toleration for unreachable:NoExecute that is added to every "
                   "pod that does not already have such a toleration [default: 300; 30 with --timings fast].")
@click.option("-v", "--verbose", count=True, help="More log output (-vv: debug).")
def up_command(
    state_dir: Path | None,
    listen: tuple[str, int],
    advertise_address: str | None,
    tls_sans: tuple[str, ...],
    memory: bool,
    store_url: str | None,
    etcd_cafile: str | None,
    etcd_certfile: str | None,
    etcd_keyfile: str | None,
    cluster_token: str | None,
    simulate_nodes: int,
    simulated_node_prefix: str,
    nodes: int,
    node_link_cidr: str,
    apply_paths: tuple[Path, ...],
    no_podman: bool,
    dashboard: bool | None,
    stop_pods: bool,
    no_network: bool,
    cluster_cidr: str,
    ingress_listen: tuple[str, int] | None,
    ingress_tls_listen: tuple[str, int] | None,
    timings: str,
    default_not_ready_toleration_seconds: int | None,
    default_unreachable_toleration_seconds: int | None,
    verbose: int,
) -> None:
    import trio

    from orchestra.cli.up import up_main

    try:
        from orchestra.app import ClusterConfig
    except ImportError as exc:
        raise CliError(f"the cluster runtime is not available in this installation ({exc})") from None
    if memory and store_url:
        raise click.UsageError("--memory and --store exclude each other")
    check_etcd_tls(store_url, etcd_cafile, etcd_certfile, etcd_keyfile)
    config = ClusterConfig(
        state_dir=state_dir or default_state_dir(),
        listen_host=listen[0],
        listen_port=listen[1],
        advertise_address=advertise_address,
        tls_sans=tls_sans,
        store=store_url or ("memory" if memory else "durable"),
        cluster_token=cluster_token or None,
        etcd_cafile=etcd_cafile,
        etcd_certfile=etcd_certfile,
        etcd_keyfile=etcd_keyfile,
        simulate_nodes=simulate_nodes,
        simulated_node_prefix=simulated_node_prefix,
        nodes=nodes,
        node_link_cidr=node_link_cidr,
        apply_paths=tuple(apply_paths),
        dashboard=bool(dashboard),
        podman=not no_podman,
        network=not no_network,
        timings=timings,
        default_not_ready_toleration_seconds=default_not_ready_toleration_seconds,
        default_unreachable_toleration_seconds=default_unreachable_toleration_seconds,
        stop_pods_on_exit=stop_pods,
        cluster_cidr=cluster_cidr,
        ingress_listen=ingress_listen,
        ingress_tls_listen=ingress_tls_listen,
        ingress_optional=_defaulted(("http", "ingress_listen"), ("https", "ingress_tls_listen")),
    )
    show_dashboard = is_interactive() if dashboard is None else dashboard
    _configure_logging(verbose, quiet=show_dashboard)
    try:
        trio.run(functools.partial(up_main, config, dashboard=show_dashboard))
    except BaseException as exc:
        # The nursery wraps Ctrl-C (and start-up failures) in exception groups; look at the leaves.
        leaves = list(_leaves(exc))
        if all(isinstance(e, KeyboardInterrupt | trio.Cancelled) for e in leaves):
            click.echo("orchestra: stopped", err=True)
            return
        setup = [e for e in leaves
                 if type(e).__name__ in ("NetworkSetupError", "RuntimeUnavailable", "ConfigError",
                                           "EtcdStartError", "UnfinishedMigrationError",
                                           "BootstrapError")]
        if setup:
            # the host is not ready for what was asked; the message says what to do
            raise CliError(f"cannot start the cluster: {setup[0]}") from None
        os_errors = [e for e in leaves if isinstance(e, OSError)]
        if os_errors and len(os_errors) == len(leaves):
            # e.g. the port is taken: the server cannot start, and a traceback would not help.
            raise CliError(f"cannot start the cluster: {os_errors[0].strerror or os_errors[0]}") from None
        raise


def _defaulted(*options: tuple[str, str]) -> frozenset[str]:
    """The names of the options (name, click parameter) the user left at their default: neither on
    the command line nor in the environment."""
    ctx = click.get_current_context()
    return frozenset(name for name, param in options
                     if ctx.get_parameter_source(param) in (None, ParameterSource.DEFAULT))


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _configure_logging(verbose: int, *, quiet: bool = False) -> None:
    """The server logs through `logging`; `up` is where those records get printed (stderr).
    Under the dashboard only warnings print (they would tear the full-screen view)."""
    import logging

    level = logging.DEBUG if verbose >= 2 else (logging.WARNING if quiet and not verbose else logging.INFO)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    if verbose < 2:
        # Third-party libraries are chatty at INFO (hypercorn's access log, httpx).
        for noisy in ("hypercorn", "hypercorn.access", "hypercorn.error", "httpx"):
            logging.getLogger(noisy).setLevel(logging.WARNING if verbose == 0 else logging.INFO)


# -- describe -------------------------------------------------------------------------------------

DESCRIBE_HELP = """Show details of a resource, with its recent events.

\b
Examples:
  orchestra describe pod web-1
  orchestra describe deploy/web
  orchestra describe nodes           # every node
  orchestra describe svc web -n shop
"""


@cli.command("describe", help=DESCRIBE_HELP)
@click.argument("args", nargs=-1, required=True, metavar="(TYPE [NAME...] | TYPE/NAME...)")
@click.option("-l", "--selector", metavar="SELECTOR", help="Describe every object "
                                                           "matching the label selector.")
@click.option("-A", "--all-namespaces", is_flag=True, help="Look in every namespace.")
@client_options
def describe_command(
    args: tuple[str, ...], selector: str | None, all_namespaces: bool, session: Session
) -> None:
    client = session.client
    texts: list[str] = []
    failed = False
    for target in parse_targets(args, session.registry(args)):
        ns = session.namespace if target.rt.namespaced and not all_namespaces else None
        if target.names:
            objs = []
            for name in target.names:
                try:
                    objs.append(client.get(resource_path(target.rt, ns or session.namespace, name)))
                except ApiStatusError as exc:
                    if not exc.not_found:
                        raise
                    exc.show()
                    failed = True
        else:
            params = {"labelSelector": selector} if selector else {}
            objs = client.get(resource_path(target.rt, ns), params=params).get("items") or []
        texts.extend(describe_object(client, target.rt, obj) for obj in objs)
    if texts:
        click.echo("\n\n".join(t.rstrip("\n") for t in texts))
    elif not failed:
        namespaced = (
            any(t.rt.namespaced for t in parse_targets(args, session.registry(args))) and not all_namespaces
        )
        click.echo(
            f"No resources found in {session.namespace} namespace." if namespaced else "No resources found",
            err=True,
        )
    if failed:
        raise SystemExit(1)


# -- version --------------------------------------------------------------------------------------


@cli.command("version")
@click.option("--client", "client_only", is_flag=True, help="Only print the client version.")
@client_options
def version_command(client_only: bool, session: Session) -> None:
    """Print the client version, and the server's if it is reachable.

    \b
    Examples:
      orchestra version
      orchestra version --client
    """
    click.echo(f"Client Version: v{__version__}")
    if client_only:
        return
    try:
        info = session.client.get("/version")
    except CliError as exc:
        click.echo(f"Server Version: unavailable ({exc.message})", err=True)
        return
    click.echo(f"Server Version: {info.get('gitVersion', '<unknown>')}")


def main() -> None:
    cli.main(prog_name="orchestra")
