"""The detail pane: a describe-like page about the selected object, live from the informer caches.

Owns: what the pane shows per kind (for a Pod: the diagnosis from `explain_pod` — the scheduler's
reason when it is Pending — then `describe`'s text, its events and its last log lines), fetching
those log lines once when the pane opens (GET pods/{name}/log?tailLines=20; a server without a node
agent answers 400, and the pane shows that message), and scrolling.
Must not import: the server side.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
from rich.text import Text

from orchestra.api.errors import ApiError
from orchestra.cli.dashboard.model import Model
from orchestra.cli.describe import (
    describe_deployment,
    describe_events,
    describe_generic,
    describe_node,
    describe_pod,
    describe_service,
)
from orchestra.cli.explain import explain_pod
from orchestra.cli.render import to_yaml
from orchestra.objects import Obj

TAIL_LINES = 20


@attrs.define
class Detail:
    kind: str
    namespace: str | None
    name: str
    scroll: int = 0
    logs: str | None = None
    logs_error: str | None = None
    logs_loading: bool = False
    log_container: str | None = None

    @property
    def title(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


async def fetch_logs(client: Any, model: Model, detail: Detail) -> None:
    """Fill `detail.logs` (or `logs_error`) with the pod's last lines; called once when the pane opens."""
    pod = model.get("Pod", detail.namespace, detail.name)
    if pod is None:
        return
    pod_logs = getattr(client, "pod_logs", None)
    if pod_logs is None:
        detail.logs_error = "this client cannot read logs (use `orchestra dashboard` over the API)"
        return
    found = explain_pod(pod, model.events_for("Pod", detail.namespace, detail.name))
    containers = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    detail.log_container = found.container or (containers[0] if containers else None)
    detail.logs_loading = True
    try:
        detail.logs = await pod_logs(detail.namespace, detail.name, container=detail.log_container,
                                     tail_lines=TAIL_LINES, previous=found.previous_logs)
    except ApiError as exc:
        detail.logs_error = f"{exc.reason}: {exc.message}"
    except OSError as exc:  # the transport failed: say so in the pane, the dashboard goes on
        detail.logs_error = str(exc)
    finally:
        detail.logs_loading = False


def _describe(model: Model, kind: str, obj: Obj) -> str:
    m = obj.get("metadata") or {}
    if kind == "Pod":
        return describe_pod(obj)
    if kind == "Deployment":
        return describe_deployment(obj, [])
    if kind == "Service":
        return describe_service(obj, None)
    if kind == "Node":
        return describe_node(obj, model.pods_on(str(m.get("name"))))
    if kind == "Event":
        return to_yaml({k: v for k, v in obj.items() if k not in ("metadata",)})
    return describe_generic(obj)


def detail_text(model: Model, detail: Detail, now: datetime) -> Text:
    """The whole page (the caller shows a window of it)."""
    obj = model.get(detail.kind, detail.namespace, detail.name)
    out = Text(no_wrap=True, overflow="crop", end="")
    if obj is None:
        out.append(f"{detail.title} no longer exists.", style="bold red")
        return out
    if detail.kind == "Pod":
        events = model.events_for("Pod", detail.namespace, detail.name)
        found = explain_pod(obj, events, now=now)
        style = "green" if found.state in ("OK", "Succeeded") else "bold yellow"
        out.append(found.headline + "\n", style=style)
        for line in found.details:
            out.append(f"  {line}\n", style="yellow" if found.state != "OK" else "")
        out.append("\n")
    else:
        events = model.events_for(detail.kind, detail.namespace, detail.name)
    out.append(_describe(model, detail.kind, obj))
    out.append("\n")
    out.append(describe_events(events, now))
    if detail.kind == "Pod":
        out.append("\n")
        out.append(f"Last log lines (container {detail.log_container or '?'}):\n", style="bold")
        if detail.logs_loading:
            out.append("  loading…\n", style="dim")
        elif detail.logs_error:
            out.append(f"  {detail.logs_error}\n", style="yellow")
        elif detail.logs is not None and detail.logs.strip():
            for line in detail.logs.rstrip("\n").splitlines()[-TAIL_LINES:]:
                out.append(f"  {line}\n")
        else:
            out.append("  (empty)\n", style="dim")
    return out


def draw_detail(model: Model, detail: Detail, *, height: int, now: datetime) -> Text:
    """A window of `height` lines of the page, starting at `detail.scroll` (clamped)."""
    page = detail_text(model, detail, now)
    lines = page.split("\n", allow_blank=True)
    detail.scroll = max(0, min(detail.scroll, max(0, len(lines) - height)))
    window = lines[detail.scroll: detail.scroll + height]
    return Text("\n", end="", no_wrap=True, overflow="crop").join(window)
