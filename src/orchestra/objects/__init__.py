"""The object vocabulary: what every layer knows about a Kubernetes object as a JSON dict.

Every layer may import this package; it imports nothing from the rest of orchestra (an
import-linter contract checks both). No layer re-implements what lives here.

What lives where (everything but quantities is re-exported here: `from orchestra.objects import meta`):
  * meta.py        `Obj`; shape guards `as_dict`/`as_list`/`as_dicts`/`only_dicts`; read-only
                   accessors `meta`/`spec`/`status`, `name_of`/`namespace_of`/`labels_of`/
                   `annotations_of`, `is_terminating`, `object_key`/`split_key`; `labels_match`
                   (a label set as a selector); `deep_copy`
  * times.py       metav1.Time: `format_time`, `now_rfc3339`, `parse_time`; durations:
                   `human_duration` (kubectl's ages), `go_duration` / `go_duration_seconds`
  * quantity.py    resource quantities: `Quantity.parse`, `parse_or_none`, `milli_value`,
                   `int_value`, the canonical form (`format_quantity`); import it as
                   `orchestra.objects.quantity`
  * tolerations.py `tolerates` (ToleratesTaint), `tolerations_tolerate`, `untolerated_taint`,
                   `min_toleration_seconds`
  * owners.py      `controller_ref`, `new_controller_ref`, `owner_uids`
  * intstr.py      `scaled_value` (an int or a percentage of a total)
  * conditions.py  `get_condition`, `condition_true`, `ready_condition`, `is_pod_ready`,
                   `set_condition` (workload APIs), `set_status_condition` (metav1.Condition),
                   `remove_condition`
Not here: label selectors with expressions (orchestra.api.machinery.selectors: they raise the API's
BadRequest), the store's encoding of objects and server-set metadata (orchestra.api.request.stored).
Must not import: anything else in orchestra.
"""

from orchestra.objects.conditions import (
    condition_true,
    get_condition,
    is_pod_ready,
    ready_condition,
    remove_condition,
    set_condition,
    set_status_condition,
)
from orchestra.objects.intstr import scaled_value
from orchestra.objects.meta import (
    Obj,
    annotations_of,
    as_dict,
    as_dicts,
    as_list,
    deep_copy,
    is_terminating,
    labels_match,
    labels_of,
    meta,
    name_of,
    namespace_of,
    object_key,
    only_dicts,
    spec,
    split_key,
    status,
)
from orchestra.objects.owners import controller_ref, new_controller_ref, owner_uids
from orchestra.objects.times import (
    format_time,
    go_duration,
    go_duration_seconds,
    human_duration,
    now_rfc3339,
    parse_time,
)
from orchestra.objects.tolerations import (
    min_toleration_seconds,
    tolerates,
    tolerations_tolerate,
    untolerated_taint,
)

__all__ = [
    "Obj",
    "annotations_of",
    "as_dict",
    "as_dicts",
    "as_list",
    "condition_true",
    "controller_ref",
    "deep_copy",
    "format_time",
    "get_condition",
    "go_duration",
    "go_duration_seconds",
    "human_duration",
    "is_pod_ready",
    "is_terminating",
    "labels_match",
    "labels_of",
    "meta",
    "min_toleration_seconds",
    "name_of",
    "namespace_of",
    "new_controller_ref",
    "now_rfc3339",
    "object_key",
    "only_dicts",
    "owner_uids",
    "parse_time",
    "ready_condition",
    "remove_condition",
    "scaled_value",
    "set_condition",
    "set_status_condition",
    "spec",
    "split_key",
    "status",
    "tolerates",
    "tolerations_tolerate",
    "untolerated_taint",
]
