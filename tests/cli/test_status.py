"""`orchestra status`'s table of servers: the leader first, a server silent for 30 s unreachable."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from orchestra.cli.status import server_rows

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


URL = "https://127.0.0.1:6443"


def identity(who: str, seconds_ago: float | None, url: str | None = URL) -> dict[str, Any]:
    spec: dict[str, Any] = {"holderIdentity": who}
    if seconds_ago is not None:
        spec["renewTime"] = (NOW - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    annotations = {"orchestra.io/server-url": url} if url else {}
    return {"metadata": {"name": f"orchestra-apiserver-{who}", "annotations": annotations}, "spec": spec}


@pytest.mark.parametrize(("leases", "leader", "expected"), [
    ([identity("b", 3), identity("a", 5)], "a",
     [["a", URL, "leader", "5s ago"], ["b", URL, "standby", "3s ago"]]),
    ([identity("a", 45), identity("b", 1, url=None)], "b",
     [["b", "<unknown>", "leader", "1s ago"], ["a", URL, "unreachable", "45s ago"]]),
    ([identity("a", None)], "", [["a", URL, "unreachable", "<never>"]]),
], ids=["leader-first", "silent-server-unreachable", "never-renewed"])
def test_server_rows(leases: list[dict[str, Any]], leader: str, expected: list[list[str]]) -> None:
    assert server_rows(leases, leader, NOW) == expected
