"""The list views (Nodes, Pods, Workloads, Services, Events, Autoscalers, Ingresses): rows from the
model, and drawing them.

Owns: each view's columns and how one object becomes a `Row` of plain strings (cached per object
resourceVersion, so 1,000 pods cost one dict lookup each when nothing changed), the filtered and
sorted row list (cached per model generation and filter), and drawing only the visible window of
rows as fixed-width `Text` lines (no rich Table: measuring 1,000 cells every frame is what makes
dashboards slow). Ages are computed at draw time for visible rows only.
Must not import: the server side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs
from rich.text import Text

from orchestra.api.tables import (
    format_hpa_metrics,
    format_service_ports,
    ingress_addresses,
    node_roles,
    pod_status_reason,
)
from orchestra.cli.dashboard.model import WORKLOAD_KINDS, Model, event_time
from orchestra.objects import Obj, as_dict, human_duration, meta, only_dicts, parse_time
from orchestra.objects.quantity import QuantityError, parse_quantity

GAP = "  "


@attrs.frozen
class Column:
    name: str
    max: int = 40
    flex: bool = False  # shrinks first when the terminal is narrow
    right: bool = False


@attrs.frozen
class Row:
    key: str  # "Kind/namespace/name": the selection's identity and what actions act on
    kind: str
    namespace: str | None
    name: str
    cells: tuple[str, ...]
    styles: tuple[str, ...]  # one per cell, "" for none
    since: datetime | None  # the age column counts from here (drawn per frame)
    sort: tuple[Any, ...]
    search: str  # lower-cased text the `/` filter matches


def row_key(kind: str, namespace: str | None, name: str) -> str:
    return f"{kind}/{namespace or ''}/{name}"


def _make_row(
    kind: str,
    obj: Obj,
    cells: Sequence[str],
    styles: Sequence[str] = (),
    *,
    since: datetime | None = None,
    sort: tuple[Any, ...] | None = None,
) -> Row:
    m = meta(obj)
    ns, name = m.get("namespace"), str(m.get("name") or "")
    if since is None:
        since = parse_time(m.get("creationTimestamp"))
    cells = tuple(cells)
    return Row(row_key(kind, ns, name), kind, ns, name, cells, tuple(styles) or ("",) * len(cells), since,
               sort if sort is not None else (ns or "", name), " ".join(cells).lower())


# --- rows per kind ---------------------------------------------------------------------------------

POD_STYLE = {"Running": "green", "Completed": "dim", "Succeeded": "dim", "Pending": "yellow",
             "ContainerCreating": "yellow", "PodInitializing": "yellow", "Terminating": "magenta"}


def status_style(reason: str) -> str:
    if reason in POD_STYLE:
        return POD_STYLE[reason]
    if reason.startswith("Init:") and not any(
        e in reason for e in ("Error", "BackOff", "ExitCode", "Signal")
    ):
        return "yellow"
    return "bold red"


def pod_row(pod: Obj) -> Row:
    reason, ready, total, restarts, _ = pod_status_reason(pod)
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    m = meta(pod)
    ready_style = "" if ready == total else "yellow"
    cells = (
        str(m.get("namespace") or ""),
        str(m.get("name") or ""),
        f"{ready}/{total}",
        reason,
        str(restarts),
        str(spec.get("nodeName") or "<none>"),
        str(status.get("podIP") or "<none>"),
        "",
    )
    styles = ("dim", "", ready_style, status_style(reason), "yellow" if restarts else "", "", "", "")
    return _make_row("Pod", pod, cells, styles)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def workload_counts(kind: str, obj: Obj) -> tuple[str, str, str, str]:
    """(desired, ready, up-to-date, available) as a user reads them for each workload kind."""
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "DaemonSet":
        return (str(_int(st.get("desiredNumberScheduled"))), str(_int(st.get("numberReady"))),
                str(_int(st.get("updatedNumberScheduled"))), str(_int(st.get("numberAvailable"))))
    if kind == "Job":  # a Job's "available" is how many pods succeeded
        desired = spec.get("completions")
        return (str(desired) if desired is not None else "-", str(_int(st.get("ready"))), "-",
                str(_int(st.get("succeeded"))))
    return (str(_int(spec.get("replicas"), 1)), str(_int(st.get("readyReplicas"))),
            str(_int(st.get("updatedReplicas"))), str(_int(st.get("availableReplicas"))))


def workload_row(kind: str, obj: Obj) -> Row:
    counts = workload_counts(kind, obj)
    desired, ready = counts[0], counts[1]
    m = meta(obj)
    short = desired not in ("-", ready)
    cells = (kind, str(m.get("namespace") or ""), str(m.get("name") or ""), *counts, "")
    styles = ("cyan", "dim", "", "", "yellow" if short else "green", "", "", "")
    return _make_row(kind, obj, cells, styles, sort=(m.get("namespace") or "", m.get("name") or "", kind))


def _hpa_state(status: Obj) -> tuple[str, str]:
    """What an autoscaler is up to, from its conditions: a failing one's reason first."""
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    for ctype in ("AbleToScale", "ScalingActive"):
        if conditions.get(ctype, {}).get("status") == "False":
            return str(conditions[ctype].get("reason") or ctype), "bold red"
    limited = conditions.get("ScalingLimited", {})
    if limited.get("status") == "True":
        return str(limited.get("reason") or "ScalingLimited"), "yellow"
    return ("Scaling", "green") if conditions else ("Waiting", "dim")


def hpa_row(hpa: Obj) -> Row:
    """An autoscaler: its target, current/target metrics, min/max and replicas (current -> desired)."""
    spec, st, m = hpa.get("spec") or {}, hpa.get("status") or {}, meta(hpa)
    ref = spec.get("scaleTargetRef") or {}
    current, desired = _int(st.get("currentReplicas")), _int(st.get("desiredReplicas"))
    low = spec.get("minReplicas")
    state, style = _hpa_state(st)
    cells = (str(m.get("namespace") or ""), str(m.get("name") or ""), f"{ref.get('kind')}/{ref.get('name')}",
             format_hpa_metrics(spec.get("metrics"), st.get("currentMetrics")),
             f"{low if low is not None else '<unset>'}-{_int(spec.get('maxReplicas'))}",
             str(current) if current == desired else f"{current}->{desired}", state, "")
    styles = ("dim", "", "cyan", "", "", "" if current == desired else "yellow", style, "")
    return _make_row("HorizontalPodAutoscaler", hpa, cells, styles)


def event_row(ev: Obj) -> Row:
    ref = ev.get("involvedObject") or {}
    m = meta(ev)
    etype = str(ev.get("type") or "")
    count = _int(ev.get("count") or (ev.get("series") or {}).get("count"), 1)
    when = event_time(ev)
    cells = ("", str(m.get("namespace") or ""), etype, str(ev.get("reason") or ""),
             f"{str(ref.get('kind') or '').lower()}/{ref.get('name') or ''}", str(count),
             " ".join(str(ev.get("message") or "").split()))
    styles = (
        "",
        "dim",
        "yellow" if etype == "Warning" else "",
        "bold" if etype == "Warning" else "",
        "",
        "",
        "",
    )
    stamp = parse_time(when)
    return _make_row("Event", ev, cells, styles, since=stamp, sort=(-(stamp.timestamp() if stamp else 0.0),))


def _milli_cpu(value: Any) -> int:
    try:
        return int(parse_quantity(value) * 1000)
    except (QuantityError, TypeError):
        return 0


def _bytes(value: Any) -> int:
    try:
        return int(parse_quantity(value))
    except (QuantityError, TypeError):
        return 0


def pod_requests(pod: Obj) -> tuple[int, int]:
    """(milli-CPU, memory bytes) the scheduler counts for a pod: max(sum of containers, largest init)."""
    spec = pod.get("spec") or {}

    def req(c: Obj) -> tuple[int, int]:
        r = (c.get("resources") or {}).get("requests") or {}
        return _milli_cpu(r.get("cpu", 0)), _bytes(r.get("memory", 0))

    main = [req(c) for c in spec.get("containers") or []]
    init = [req(c) for c in spec.get("initContainers") or []]
    cpu, mem = sum(c for c, _ in main), sum(m for _, m in main)
    return max([cpu, *(c for c, _ in init)]), max([mem, *(m for _, m in init)])


def bar(fraction: float, width: int = 10) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


def fmt_cpu(milli: int) -> str:
    return f"{milli}m" if milli % 1000 else str(milli // 1000)


def fmt_bytes(n: int) -> str:
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f}{unit}" if value >= 10 or value == int(value) else f"{value:.1f}{unit}"
    return str(n)


def usage_style(fraction: float) -> str:
    return "green" if fraction < 0.7 else "yellow" if fraction < 0.9 else "bold red"


def _alloc_cell(used: int, total: int, fmt: Callable[[int], str]) -> tuple[str, str]:
    frac = used / total if total else 0.0
    return f"{bar(frac)} {round(frac * 100):>3}% {fmt(used)}/{fmt(total)}", usage_style(frac)


def node_status(node: Obj) -> str:
    ready = [c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
    state = ("Ready" if ready[-1].get("status") == "True" else "NotReady") if ready else "Unknown"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    return state


# --- views ---------------------------------------------------------------------------------------


class View:
    """One list view. `rows()` is cached per (model generation, namespace filter, text filter)."""

    title = ""
    kinds: tuple[str, ...] = ()
    columns: tuple[Column, ...] = ()
    namespaced = True

    def __init__(self) -> None:
        self._row_cache: dict[str, tuple[str, Row]] = {}
        self._list_key: tuple[Any, ...] | None = None
        self._list: list[Row] = []
        self._index: dict[str, int] = {}
        self._widths: list[int] = []

    @property
    def age_index(self) -> int:
        return (
            [c.name for c in self.columns].index("AGE") if any(c.name == "AGE" for c in self.columns) else -1
        )

    def object_row(self, kind: str, obj: Obj) -> Row:
        raise NotImplementedError

    def build(self, model: Model) -> Iterable[Row]:
        """Every row (unfiltered); the default reuses a row while its object's resourceVersion holds."""
        fresh: dict[str, tuple[str, Row]] = {}
        for kind in self.kinds:
            for obj in model.items(kind):
                m = meta(obj)
                key = row_key(kind, m.get("namespace"), str(m.get("name") or ""))
                rv = str(m.get("resourceVersion") or "")
                cached = self._row_cache.get(key)
                fresh[key] = (
                    cached if cached is not None and cached[0] == rv else (rv, self.object_row(kind, obj))
                )
        self._row_cache = fresh
        return (row for _, row in fresh.values())

    def rows(self, model: Model, namespace: str | None, text: str) -> list[Row]:
        key = (model.generation, namespace, text)
        if key != self._list_key:
            needle = text.lower()
            rows = [r for r in self.build(model)
                    if (namespace is None or not self.namespaced or r.namespace == namespace)
                    and (not needle or needle in r.search)]
            rows.sort(key=lambda r: r.sort)
            self._list, self._list_key = rows, key
            self._index = {r.key: i for i, r in enumerate(rows)}
            self._widths = self._measure(rows)
        return self._list

    def index_of(self, key: str | None) -> int | None:
        return self._index.get(key) if key is not None else None

    def _measure(self, rows: list[Row]) -> list[int]:
        widths = [len(c.name) for c in self.columns]
        age = self.age_index
        for r in rows:
            for i, cell in enumerate(r.cells):
                if len(cell) > widths[i]:
                    widths[i] = len(cell)
        if age >= 0:
            widths[age] = max(widths[age], 6)
        return [min(w, c.max) for w, c in zip(widths, self.columns, strict=True)]

    def widths(self, total: int) -> list[int]:
        widths = list(self._widths)
        excess = sum(widths) + len(GAP) * (len(widths) - 1) - total
        for i, col in enumerate(self.columns):
            if excess > 0 and col.flex:
                cut = min(excess, widths[i] - max(len(col.name), 8))
                widths[i] -= cut
                excess -= cut
        return widths


class NodesView(View):
    title, kinds, namespaced = "Nodes", ("Node",), False
    columns = (Column("NAME", 40, flex=True), Column("STATUS", 30), Column("ROLES", 20),
               Column("CPU REQUESTS", 40), Column("MEMORY REQUESTS", 44), Column("PODS", 12, right=True),
               Column("AGE", 8))

    def __init__(self) -> None:
        super().__init__()
        self._requests: dict[str, tuple[str, tuple[int, int]]] = {}  # pod uid -> (resourceVersion, requests)

    def build(self, model: Model) -> Iterable[Row]:  # allocation depends on pods: no per-node row cache
        previous, self._requests = self._requests, {}
        return [self.node_row(node, model.pods_on(str(meta(node).get("name"))), previous)
                for node in model.items("Node")]

    def _pod_requests(self, pod: Obj, previous: dict[str, tuple[str, tuple[int, int]]]) -> tuple[int, int]:
        """Parsing quantities is the slow part: reuse a pod's sums while its resourceVersion holds."""
        m = meta(pod)
        uid, rv = str(m.get("uid") or m.get("name")), str(m.get("resourceVersion") or "")
        cached = previous.get(uid)
        if cached is None or cached[0] != rv:
            cached = (rv, pod_requests(pod))
        self._requests[uid] = cached
        return cached[1]

    def node_row(
        self, node: Obj, pods: list[Obj], previous: dict[str, tuple[str, tuple[int, int]]] | None = None
    ) -> Row:
        live = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        cpu = mem = 0
        for pod in live:
            c, m = self._pod_requests(pod, previous or {})
            cpu, mem = cpu + c, mem + m
        alloc = (node.get("status") or {}).get("allocatable") or {}
        cpu_cell, cpu_style = _alloc_cell(cpu, _milli_cpu(alloc.get("cpu", 0)), fmt_cpu)
        mem_cell, mem_style = _alloc_cell(mem, _bytes(alloc.get("memory", 0)), fmt_bytes)
        status = node_status(node)
        pods_cap = alloc.get("pods")
        cells = (
            str(meta(node).get("name")),
            status,
            node_roles(meta(node).get("labels")),
            cpu_cell,
            mem_cell,
            f"{len(live)}/{pods_cap}" if pods_cap else str(len(live)),
            "",
        )
        styles = ("", "green" if status == "Ready" else "bold red", "", cpu_style, mem_style, "", "")
        return _make_row("Node", node, cells, styles)


class PodsView(View):
    title, kinds = "Pods", ("Pod",)
    columns = (
        Column("NAMESPACE", 20),
        Column("NAME", 63, flex=True),
        Column("READY", 7),
        Column("STATUS", 26),
        Column("RESTARTS", 8, right=True),
        Column("NODE", 30, flex=True),
        Column("IP", 39),
        Column("AGE", 8),
    )

    def object_row(self, kind: str, obj: Obj) -> Row:
        return pod_row(obj)


class WorkloadsView(View):
    title, kinds = "Workloads", WORKLOAD_KINDS
    columns = (
        Column("KIND", 11),
        Column("NAMESPACE", 20),
        Column("NAME", 63, flex=True),
        Column("DESIRED", 7, right=True),
        Column("READY", 5, right=True),
        Column("UP-TO-DATE", 10, right=True),
        Column("AVAILABLE", 9, right=True),
        Column("AGE", 8),
    )

    def object_row(self, kind: str, obj: Obj) -> Row:
        return workload_row(kind, obj)


class AutoscalersView(View):
    title, kinds = "Autoscalers", ("HorizontalPodAutoscaler",)
    columns = (Column("NAMESPACE", 20), Column("NAME", 63, flex=True), Column("REFERENCE", 40, flex=True),
               Column("TARGETS", 60, flex=True), Column("MIN-MAX", 9), Column("REPLICAS", 8, right=True),
               Column("STATUS", 24), Column("AGE", 8))

    def object_row(self, kind: str, obj: Obj) -> Row:
        return hpa_row(obj)


def ready_endpoints(slices: list[Obj]) -> int:
    """Endpoints that are ready (a missing `ready` condition means ready, as kube-proxy reads it)."""
    return sum(1 for s in slices for e in s.get("endpoints") or []
               if (e.get("conditions") or {}).get("ready") is not False)


class ServicesView(View):
    title, kinds = "Services", ("Service",)
    columns = (
        Column("NAMESPACE", 20),
        Column("NAME", 63, flex=True),
        Column("TYPE", 12),
        Column("CLUSTER-IP", 39),
        Column("PORTS", 40, flex=True),
        Column("ENDPOINTS", 9, right=True),
        Column("AGE", 8),
    )

    def build(self, model: Model) -> Iterable[Row]:  # endpoint counts come from EndpointSlices
        for svc in model.items("Service"):
            m, spec = meta(svc), svc.get("spec") or {}
            n = ready_endpoints(model.slices_of(str(m.get("namespace")), str(m.get("name"))))
            selectorless = not spec.get("selector") and spec.get("type") != "ExternalName"
            cells = (
                str(m.get("namespace") or ""),
                str(m.get("name") or ""),
                str(spec.get("type") or "ClusterIP"),
                str(spec.get("clusterIP") or "<none>"),
                format_service_ports(spec.get("ports")),
                str(n),
                "",
            )
            styles = ("dim", "", "", "", "", "yellow" if n == 0 and not selectorless else "", "")
            yield _make_row("Service", svc, cells, styles)


def _backend_text(backend: Any) -> str:
    service, resource = as_dict(backend).get("service"), as_dict(backend).get("resource")
    if isinstance(service, dict):
        port = as_dict(service.get("port"))
        return f"{service.get('name', '')}:{port.get('name') or port.get('number', '')}"
    if isinstance(resource, dict):
        return f"{resource.get('kind', '')}/{resource.get('name', '')}"
    return "?"


def ingress_routes(ing: Obj) -> str:
    """`host/path→service:port` for every path, then `default→service:port`."""
    spec = as_dict(ing.get("spec"))
    out = []
    for rule in only_dicts(spec.get("rules")):
        host = str(rule.get("host") or "*")
        paths = only_dicts(as_dict(rule.get("http")).get("paths"))
        out += [f"{host}{p.get('path') or '/'}→{_backend_text(p.get('backend'))}" for p in paths]
    if spec.get("defaultBackend"):
        out.append(f"default→{_backend_text(spec['defaultBackend'])}")
    return ", ".join(out)


class IngressesView(View):
    title, kinds = "Ingresses", ("Ingress",)
    columns = (Column("NAMESPACE", 20), Column("NAME", 63, flex=True), Column("CLASS", 20),
               Column("ADDRESS", 39), Column("ROUTES", 200, flex=True), Column("AGE", 8))

    def object_row(self, kind: str, obj: Obj) -> Row:
        m, spec = meta(obj), as_dict(obj.get("spec"))
        address = ingress_addresses(as_dict(obj.get("status")))
        cells = (
            str(m.get("namespace") or ""),
            str(m.get("name") or ""),
            str(spec.get("ingressClassName") or "<none>"),
            address or "<pending>",
            ingress_routes(obj),
            "",
        )
        return _make_row(kind, obj, cells, ("dim", "", "", "" if address else "yellow", "", ""))


class EventsView(View):
    title, kinds = "Events", ("Event",)
    columns = (
        Column("LAST SEEN", 9),
        Column("NAMESPACE", 20),
        Column("TYPE", 7),
        Column("REASON", 24),
        Column("OBJECT", 50, flex=True),
        Column("COUNT", 5, right=True),
        Column("MESSAGE", 400, flex=True),
    )

    @property
    def age_index(self) -> int:
        return 0

    def object_row(self, kind: str, obj: Obj) -> Row:
        return event_row(obj)


def make_views() -> list[View]:
    return [NodesView(), PodsView(), WorkloadsView(), ServicesView(), EventsView(), AutoscalersView(),
            IngressesView()]


# --- drawing ---------------------------------------------------------------------------------------


def fit(text: str, width: int, right: bool = False) -> str:
    if len(text) > width:
        return text[: max(width - 1, 0)] + "…" if width > 0 else ""
    return text.rjust(width) if right else text.ljust(width)


def age_of(since: datetime | None, now: datetime) -> str:
    return human_duration((now - since).total_seconds()) if since is not None else "<unknown>"


def draw_table(view: View, rows: list[Row], *, selected: int | None, offset: int, height: int, width: int,
               now: datetime) -> Text:
    """The column header plus rows[offset:offset+height-1], one line each, `selected` highlighted."""
    widths = view.widths(width - 2)  # two columns for the selection marker
    out = Text(no_wrap=True, overflow="crop", end="")
    out.append(
        "  " + GAP.join(fit(c.name, w, c.right) for c, w in zip(view.columns, widths, strict=True)).rstrip(),
        style="bold",
    )
    age = view.age_index
    last = len(view.columns) - 1
    for i in range(offset, min(len(rows), offset + max(height - 1, 0))):
        row = rows[i]
        out.append("\n")
        start = len(out)
        out.append("▶ " if i == selected else "  ", style="bold" if i == selected else None)
        for j, (col, w) in enumerate(zip(view.columns, widths, strict=True)):
            cell = age_of(row.since, now) if j == age else row.cells[j]
            text = fit(cell, w, col.right) if j < last else fit(cell, w).rstrip()
            out.append(text, style=row.styles[j] or None)
            if j < last:
                out.append(GAP)
        if i == selected:
            out.append(" " * max(0, width - (len(out) - start)))
            out.stylize("reverse", start, len(out))
    if not rows:
        out.append("\n")
        out.append("  (nothing to show)", style="dim")
    return out


def scroll_offset(selected: int | None, offset: int, visible: int, total: int) -> int:
    """Keep the selection on screen, moving the window as little as possible."""
    if visible <= 0 or total <= visible:
        return 0
    offset = max(0, min(offset, total - visible))
    if selected is None:
        return offset
    if selected < offset:
        return selected
    if selected >= offset + visible:
        return selected - visible + 1
    return offset
