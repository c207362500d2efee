"""The dashboard's trio main loop: informers in, keys in, frames out (rich Live on the alternate screen).

Owns: `run_dashboard()` (the entry point for `orchestra dashboard` and for `orchestra up` on a
terminal), the render loop (woken by informer events and keys, coalesced to at most ~10 frames a
second, plus one frame a second so ages move), the screen layout (header, list or detail pane,
status line, key help), carrying out actions through the Client (delete, scale, restart), and
keeping log records off the screen while it is drawn.
Must not import: the server side at module level (`run_in_process` takes a Cluster handle as is).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import trio
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from orchestra.api.errors import ApiError
from orchestra.cli.dashboard.controls import Action, Ui
from orchestra.cli.dashboard.detail import draw_detail, fetch_logs
from orchestra.cli.dashboard.input import cbreak, is_interactive, read_keys
from orchestra.cli.dashboard.model import Model
from orchestra.cli.dashboard.views import draw_table, scroll_offset
from orchestra.client.base import Client
from orchestra.objects import now_rfc3339

FRAME_SECONDS = 0.1  # at most ~10 frames a second, however fast events arrive
TICK_SECONDS = 1.0  # ages move once a second
HELP = (
    "1-7/Tab view  ↑↓/jk move  Enter details  / filter  n namespace  d delete  s scale  r restart  q quit"
)
DETAIL_HELP = "↑↓/jk/PgUp/PgDn scroll  Esc back  q quit"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"

__all__ = ["Dashboard", "is_interactive", "run_dashboard", "run_in_process"]


class Dashboard:
    """The screen and its state; `render()` is pure given the model, so tests draw it to a string."""

    def __init__(
        self, client: Client, *, title: str, namespace: str | None = None, logs_client: Any = None
    ) -> None:
        self.client = client
        self.logs_client = logs_client if logs_client is not None else client
        self.title = title
        self.model = Model(client)
        self.ui = Ui(namespace=namespace)
        self.render_seconds = 0.0
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None
        self.model.on_change(self.request_redraw)

    def request_redraw(self) -> None:
        self._wake.set()

    # --- drawing -------------------------------------------------------------------------------

    def render(self, width: int, height: int, now: datetime | None = None) -> Group:
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        ui, view = self.ui, self.ui.current
        rows = view.rows(self.model, ui.namespace, ui.filter_text)
        body_height = max(height - 4, 1)
        ui.page = max(body_height - 2, 1)
        if ui.mode == "detail" and ui.detail is not None:
            body = Text(no_wrap=True, overflow="crop", end="")
            body.append(f"── {ui.detail.title} ", style="bold cyan")
            body.append("─" * max(0, width - len(body)), style="cyan")
            body.append("\n")
            body.append_text(draw_detail(self.model, ui.detail, height=body_height - 1, now=now))
        else:
            selected = ui.selected_index(rows)
            offset = scroll_offset(selected, ui.offsets.get(ui.view, 0), body_height - 1, len(rows))
            ui.offsets[ui.view] = offset
            body = draw_table(
                view, rows, selected=selected, offset=offset, height=body_height, width=width, now=now
            )
        body.append("\n" * max(0, body_height - body.plain.count("\n") - 1))
        body.end = "\n"
        group = Group(self._header(len(rows), width), body, self._status(), self._footer())
        self.render_seconds = time.perf_counter() - started
        return group

    def _header(self, shown: int, width: int) -> Text:
        m, ui = self.model, self.ui
        pods = m.items("Pod")
        pending = sum(1 for p in pods if (p.get("status") or {}).get("phase", "Pending") == "Pending")
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(" orchestra ", style="bold white on blue")
        head.append(f" {self.title}  ", style="bold")
        head.append(
            f"nodes {m.count('Node')}  pods {len(pods)} ({pending} pending)  "
            f"deployments {m.count('Deployment')}  services {m.count('Service')}  events {m.count('Event')}"
        )
        if not m.synced:
            head.append("  syncing…", style="yellow")
        head.append("\n")
        for i, v in enumerate(ui.views):
            label = f" {i + 1} {v.title} "
            head.append(label, style="bold black on cyan" if i == ui.view else "cyan")
        head.append(f"   namespace: {ui.namespace or 'all'}", style="bold" if ui.namespace else "")
        text = ui.filter_text
        head.append(f"   filter: {text or '-'}", style="bold" if text else "")
        head.append(f"   {shown} shown", style="dim")
        return head

    def _status(self) -> Text:
        ui = self.ui
        out = Text(no_wrap=True, overflow="ellipsis")
        if ui.mode == "filter":
            out.append("filter: ", style="bold")
            out.append(ui.draft)
            out.append("█  (Enter apply, Esc clear)", style="dim")
        elif ui.mode == "scale" and ui.target is not None:
            out.append(f"Scale {ui.target.kind} {ui.target.namespace}/{ui.target.name} to: ", style="bold")
            out.append(ui.prompt)
            out.append("█  (Enter apply, Esc cancel)", style="dim")
        elif ui.message:
            out.append(
                ui.message,
                style="bold red" if ui.message_error else "bold" if ui.mode == "confirm" else "green",
            )
        return out

    def _footer(self) -> Text:
        help_text = DETAIL_HELP if self.ui.mode == "detail" else HELP
        out = Text(help_text, style="dim", no_wrap=True, overflow="ellipsis", end="")
        out.append(f"   frame {self.render_seconds * 1000:.1f} ms", style="dim")
        return out

    # --- keys and actions ------------------------------------------------------------------------

    def press(self, key: str) -> Action | None:
        """Feed one key; start any API call it asks for. Returns the action (tests look at it)."""
        ui = self.ui
        rows = ui.current.rows(self.model, ui.namespace, ui.filter_text)
        namespaces = self.model.namespaces() or sorted({r.namespace for r in rows if r.namespace})
        action = ui.handle(key, rows, namespaces)
        if action is not None and action.verb != "quit" and self._nursery is not None:
            self._nursery.start_soon(self.perform, action)
        self.request_redraw()
        return action

    async def perform(self, action: Action) -> None:
        row = action.row
        assert row is not None
        what = f"{row.kind} {row.namespace + '/' if row.namespace else ''}{row.name}"
        rt = self.model.rt(row.kind)
        try:
            if action.verb == "delete":
                remaining = await self.client.delete(rt, row.namespace, row.name)
                self.ui.flash(f"{what} is terminating" if remaining is not None else f"deleted {what}")
            elif action.verb == "scale":
                await self.client.patch(rt, row.namespace, row.name, {"spec": {"replicas": action.replicas}})
                self.ui.flash(f"scaled {what} to {action.replicas}")
            elif action.verb == "restart":
                stamp = now_rfc3339()
                patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
                await self.client.patch(rt, row.namespace, row.name, patch)
                self.ui.flash(f"restarted {what}")
            elif action.verb == "detail" and action.detail is not None and row.kind == "Pod":
                self.request_redraw()
                await fetch_logs(self.logs_client, self.model, action.detail)
        except ApiError as exc:
            self.ui.flash(f"{action.verb} {what} failed: {exc.message}", error=True)
        except OSError as exc:  # the server went away: say so, keep the dashboard up
            self.ui.flash(f"{action.verb} {what} failed: {exc}", error=True)
        self.request_redraw()

    # --- loops ----------------------------------------------------------------------------------

    async def run(self, live: Live, keys: AsyncIterator[str], *, stop: trio.Event | None = None) -> None:
        """Until `q` (or `stop`): informers, keys, ticks and frames in one nursery."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.model.run)
            nursery.start_soon(self._tick)
            nursery.start_soon(self._on_resize)
            nursery.start_soon(self._render_loop, live)
            if stop is not None:
                nursery.start_soon(_cancel_when, stop, nursery.cancel_scope)
            async with contextlib.aclosing(keys):  # type: ignore[type-var]
                async for key in keys:
                    action = self.press(key)
                    if action is not None and action.verb == "quit":
                        break
            nursery.cancel_scope.cancel()

    async def _tick(self) -> None:
        while True:  # a clock for the age column, not a poll: data only arrives through the informers
            await trio.sleep(TICK_SECONDS)
            self.request_redraw()

    async def _on_resize(self) -> None:
        """Redraw at once when the terminal changes size (the frame reads the size each time)."""
        try:
            with trio.open_signal_receiver(signal.SIGWINCH) as signals:
                async for _ in signals:
                    self.request_redraw()
        except (ValueError, RuntimeError):  # not the main thread: the 1 s tick redraws soon enough
            return

    async def _render_loop(self, live: Live) -> None:
        last = -math.inf
        self.request_redraw()
        while True:
            await self._wake.wait()
            delay = last + FRAME_SECONDS - trio.current_time()
            if delay > 0:
                await trio.sleep(delay)  # coalesce: whatever changes meanwhile joins this frame
            self._wake = trio.Event()
            width, height = terminal_size(live.console)
            live.update(self.render(width, height), refresh=True)
            last = trio.current_time()


def terminal_size(console: Console) -> tuple[int, int]:
    """The terminal's size now. rich prefers $COLUMNS/$LINES, which go stale when the terminal is
    resized (and are often exported by shells and test runners): ask the terminal itself."""
    try:
        size = os.get_terminal_size(console.file.fileno())
    except (AttributeError, ValueError, OSError):  # not a terminal (tests): what rich thinks
        width, height = console.size
        return width, height
    console.size = (size.columns, size.lines)  # rich crops the alternate screen to this
    return size.columns, size.lines


async def _cancel_when(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


class _StatusLineHandler(logging.Handler):
    """Log records become the status line while the screen is drawn (warnings and worse only)."""

    def __init__(self, ui: Ui) -> None:
        super().__init__(logging.WARNING)
        self.ui = ui

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.ui.flash(f"{record.levelname.lower()}: {record.getMessage()}", error=True)
        except Exception:  # logging must never break the caller; logging's own policy too
            self.handleError(record)


@contextlib.contextmanager
def logs_to_status_line(ui: Ui) -> Iterator[None]:
    """Swap the root logger's handlers (stderr would scribble over the screen) for the status line."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers = [_StatusLineHandler(ui)]
    root.setLevel(min(level or logging.WARNING, logging.WARNING))
    try:
        yield
    finally:
        root.handlers, root.level = saved, level


async def run_dashboard(
    client: Client,
    *,
    title: str,
    stop: trio.Event | None = None,
    namespace: str | None = None,
    logs_client: Any = None,
    console: Console | None = None,
) -> None:
    """Show the dashboard on this terminal until the user quits (`q`) or `stop` is set.

    The caller makes sure stdin/stdout are a terminal (`is_interactive()`). `logs_client` serves
    pod logs when `client` cannot (LocalClient); by default `client.pod_logs` is used if it exists.
    """
    dash = Dashboard(client, title=title, namespace=namespace, logs_client=logs_client)
    console = console or Console()
    fd = sys.stdin.fileno()
    with (
        cbreak(fd),
        logs_to_status_line(dash.ui),
        Live(
            console=console, screen=True, auto_refresh=False, redirect_stdout=False, redirect_stderr=False
        ) as live,
    ):
        await dash.run(live, read_keys(fd), stop=stop)


async def run_in_process(cluster: Any, *, stop: trio.Event | None = None) -> None:
    """`orchestra up` on a terminal: the dashboard on the in-process API core (LocalClient), with
    pod logs read over the cluster's own HTTPS endpoint (the log stream lives in the API server)."""
    from orchestra.client.http import Endpoint, HttpClient
    from orchestra.client.local import LocalClient

    client = LocalClient(cluster.core, field_manager="orchestra-dashboard")
    endpoint = Endpoint(cluster.url, token=cluster.token, ca_data=cluster.ca_cert.read_bytes())
    async with HttpClient(endpoint, field_manager="orchestra-dashboard") as logs:
        await run_dashboard(client, title=cluster.url, stop=stop, logs_client=logs)
