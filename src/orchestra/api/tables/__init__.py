"""Server-side `Table` output (`kubectl get`), cell for cell like kube-apiserver 1.32's printers.

Owns: the column definitions and row printers of pkg/printers/internalversion for the kinds orchestra
serves and the Table / PartialObjectMetadata envelope (also for watch events); ages use
orchestra.objects.human_duration (kube's HumanDuration).
The apiserver always prints with Wide=true: every row carries the priority-1 cells too.
This package's public surface; the parts live in format (cells), columns, pods, workloads, core
(the other kinds' printers), storage (PV, PVC, StorageClass), networking (Ingress, IngressClass,
NetworkPolicy), autoscaling (HorizontalPodAutoscaler), apis (ReplicationController, PodTemplate,
ComponentStatus, APIService), custom (a CRD's printer columns) and envelope (Table, rows, watch
events). A type served over another type's stored objects is printed as the stored object (kube
prints the internal type): envelope.py converts it.
Used by the apiserver (`Accept: ...;as=Table`), the dashboard and `orchestra explain`.
New code here: a kind's columns in columns.py and its row printer in the module of its group,
registered in envelope.py.
Must not import: api/request, the store, the HTTP server, or anything above the api layer (a table
is a function of the objects; from the api it needs only the registry, api/policy's helpers and
api/conversion, to read an object served at another version as the stored one).
"""

from orchestra.api.tables.autoscaling import format_hpa_metrics
from orchestra.api.tables.columns import (
    AGE_DESC,
    CONTAINERS_DESC,
    IMAGES_DESC,
    NAME_DESC,
    SELECTOR_DESC,
    column_definitions,
)
from orchestra.api.tables.core import format_endpoints, node_roles
from orchestra.api.tables.envelope import table, table_row, table_row_event
from orchestra.api.tables.format import (
    Cell,
    format_label_selector,
    format_labels,
    format_service_ports,
    layout_containers,
    selector_string,
    since,
)
from orchestra.api.tables.networking import format_hosts, ingress_addresses
from orchestra.api.tables.pods import pod_status_reason
from orchestra.api.tables.storage import access_modes
from orchestra.objects import Obj

__all__ = [
    "AGE_DESC",
    "CONTAINERS_DESC",
    "IMAGES_DESC",
    "NAME_DESC",
    "SELECTOR_DESC",
    "Cell",
    "Obj",
    "access_modes",
    "column_definitions",
    "format_endpoints",
    "format_hosts",
    "format_hpa_metrics",
    "format_label_selector",
    "format_labels",
    "format_service_ports",
    "ingress_addresses",
    "layout_containers",
    "node_roles",
    "pod_status_reason",
    "selector_string",
    "since",
    "table",
    "table_row",
    "table_row_event",
]
