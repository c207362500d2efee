"""Container resources → runtime resources: kube's conversions, and bounds for any stored quantity."""

from __future__ import annotations

from typing import Any

import pytest

from orchestra.node.sandbox import MAX_SHARES, resources_of
from orchestra.runtime.base import Resources


@pytest.mark.parametrize(
    ("resources", "want"),
    [
        ({"limits": {"memory": "1Gi", "cpu": "500m"}, "requests": {"cpu": "250m"}},
         Resources(memory_limit_bytes=2**30, cpu_quota=50_000, cpu_period=100_000, cpu_shares=256)),
        ({"requests": {"cpu": "1m"}}, Resources(cpu_shares=2)),
        ({"requests": {"cpu": "300"}}, Resources(cpu_shares=MAX_SHARES)),
        ({"limits": {"cpu": "1e20", "memory": "1e30"}}, Resources(cpu_shares=MAX_SHARES)),
        ({"limits": {"cpu": "9223372036854776k"}}, Resources(cpu_shares=MAX_SHARES)),
        ({"limits": {"memory": "100Ei"}}, Resources()),
        ({"limits": {"memory": "7Ei"}}, Resources(memory_limit_bytes=7 * 2**60)),
        ({"limits": {"cpu": "175921860"}}, Resources(cpu_quota=17_592_186_000_000, cpu_period=100_000,
                                                      cpu_shares=MAX_SHARES)),
        ({"limits": {"cpu": "175921861"}}, Resources(cpu_shares=MAX_SHARES)),
        ({"limits": {"memory": "lots"}}, Resources()),
    ],
    ids=["ordinary", "min-shares", "max-shares", "huge-limits-unlimited", "cpu-milli-over-int64",
         "memory-at-int64-unlimited", "memory-under-int64", "quota-within-kernel-max",
         "quota-over-kernel-max", "malformed-ignored"],
)
def test_resources_stay_within_what_the_runtime_accepts(resources: dict[str, Any], want: Resources) -> None:
    assert resources_of({"resources": resources}) == want
