"""IntOrString values as the API uses them for counts: `3` or `"25%"` of a total.

Owns: `scaled_value` (intstr.GetScaledValueFromIntOrPercent), shared by the workload
controllers (maxSurge, maxUnavailable) and the disruption controller (minAvailable).
Must not import: anything from orchestra (every layer imports this module).
"""

from __future__ import annotations

import math
from typing import Any


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int as is, `"N%"` of `total` rounded up or down;
    None counts as 0."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        pct = int(text[:-1])
        exact = pct * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)
