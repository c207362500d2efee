"""What a dead earlier run of `orchestra join` left on the same state dir (app/joinleftovers.py): the
run marker, and which of the pods found at the start are removed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from orchestra.app.joinleftovers import clear_marker, read_marker, remove_leftovers, write_marker
from orchestra.node.sandbox import LABEL_CLUSTER


@attrs.define
class Sandbox:
    id: str
    name: str
    labels: dict[str, str]


@attrs.define
class FakeRuntime:
    sandboxes: list[Sandbox]
    calls: list[tuple[str, str]] = attrs.field(factory=list)

    async def list_sandboxes(self, labels: dict[str, str]) -> list[Sandbox]:
        assert labels == {}
        return list(self.sandboxes)

    async def stop_sandbox(self, ident: str, grace: int) -> None:
        self.calls.append(("stop", ident))

    async def remove_sandbox(self, ident: str) -> None:
        self.calls.append(("remove", ident))


def test_the_marker_outlives_only_a_run_that_did_not_stop_cleanly(tmp_path: Path) -> None:
    assert read_marker(tmp_path) is None  # first run
    write_marker(tmp_path, "c1", True)
    assert read_marker(tmp_path) == {"cluster": "c1", "stopPods": True}  # a killed run's
    clear_marker(tmp_path)
    assert read_marker(tmp_path) is None  # a clean stop's
    (tmp_path / "run.json").write_text('{"clus')  # torn by a crash
    assert read_marker(tmp_path) == {}


@pytest.mark.parametrize(("earlier", "removed"), [
    (None, ["other"]),
    ({"cluster": "c1", "stopPods": False}, ["other"]),
    ({"cluster": "c1", "stopPods": True}, ["mine", "unlabelled", "other"]),
    ({}, ["mine", "unlabelled", "other"]),
], ids=["clean-stop", "killed-keeping-pods", "killed-with-stop-pods", "torn-marker"])
async def test_remove_leftovers(earlier: dict[str, Any] | None, removed: list[str]) -> None:
    runtime = FakeRuntime([Sandbox("1", "mine", {LABEL_CLUSTER: "c1"}), Sandbox("2", "unlabelled", {}),
                           Sandbox("3", "other", {LABEL_CLUSTER: "c0"})])
    assert await remove_leftovers(runtime, "c1", earlier) == removed
    by_name = {s.name: s.id for s in runtime.sandboxes}
    assert runtime.calls == [call for name in removed
                             for call in (("stop", by_name[name]), ("remove", by_name[name]))]
