"""Which pod sync failures are ordinary (logged as warnings) and which are bugs (logged with a traceback)."""

from __future__ import annotations

import pytest

from orchestra.api.errors import Conflict
from orchestra.node.context import expected_failure
from orchestra.runtime.base import RuntimeFailure, RuntimeUnavailable

CASES = [
    pytest.param(RuntimeUnavailable("podman went away"), True, id="runtime-unavailable"),
    pytest.param(Conflict("the object has been modified"), True, id="api-conflict"),
    pytest.param(ConnectionResetError(), True, id="oserror"),
    pytest.param(KeyError("spec"), False, id="bug"),
    pytest.param(ExceptionGroup("teardown", [RuntimeUnavailable("a"), RuntimeFailure("b")]), True,
                 id="group-of-runtime-failures"),
    pytest.param(ExceptionGroup("g", [ExceptionGroup("inner", [OSError()]), RuntimeUnavailable("a")]), True,
                 id="nested-group"),
    pytest.param(ExceptionGroup("mixed", [RuntimeUnavailable("a"), TypeError("x")]), False,
                 id="group-with-a-bug"),
]


@pytest.mark.parametrize(("exc", "expected"), CASES)
def test_expected_failure(exc: BaseException, expected: bool) -> None:
    assert expected_failure(exc) is expected
