"""`orchestra dashboard`: attach the live dashboard to a running server over the API (HttpClient).

Owns: the click command and its options; refusing to start without a terminal.
Must not import: the server side.
"""

from __future__ import annotations

import click
import trio

from orchestra.cli.dashboard.app import run_dashboard
from orchestra.cli.dashboard.input import is_interactive
from orchestra.cli.errors import CliError
from orchestra.cli.session import Session, client_options

DASHBOARD_HELP = """Show the live cluster dashboard in this terminal (attaches over the API).

\b
Views: 1 Nodes  2 Pods  3 Workloads  4 Services  5 Events  6 Autoscalers  7 Ingresses
       8 Custom (custom resources; Tab cycles).
Keys:  ↑/↓ or j/k move, Enter details, Esc back, / filter, n namespace,
       d delete, s scale, r restart a rollout, q quit.

\b
Examples:
  orchestra dashboard
  orchestra dashboard --kubeconfig /tmp/demo/kubeconfig
  orchestra dashboard -n shop        # start filtered to one namespace
"""


@click.command("dashboard", help=DASHBOARD_HELP)
@client_options
def dashboard_command(session: Session) -> None:
    from orchestra.client.http import HttpClient, KubeconfigError

    if not is_interactive():
        raise CliError("the dashboard needs a terminal (stdin and stdout must be a TTY)")
    source = session.config.source
    if source is None:
        raise CliError("no kubeconfig to read the server from")
    namespace = session.namespace_flag

    async def main() -> None:
        async with HttpClient.from_kubeconfig(source, field_manager="orchestra-dashboard",
                                              timeout=session.timeout) as client:
            await run_dashboard(client, title=client.url, namespace=namespace)

    try:
        trio.run(main)
    except KubeconfigError as exc:
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:
        pass  # Ctrl-C outside the key reader (e.g. while connecting): just leave
