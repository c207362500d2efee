"""resourceVersion / resourceVersionMatch / continue / sendInitialEvents on LIST and WATCH: kube's 422
for options it refuses, and the list served at exactly the asked revision (410 once compacted)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orchestra.api.errors import ApiError, BadRequest, Gone
from orchestra.api.machinery.selectors import parse_field_selector
from orchestra.api.request.core import ApiCore
from orchestra.api.request.listoptions import validate_list_options
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store

INVALID = 'ListOptions.meta.k8s.io "" is invalid: '
OPTION_CASES = [
    # (id, watch, options, message after INVALID)
    (
        "bogus-match",
        False,
        {"resource_version": "5", "match": "Bogus"},
        'resourceVersionMatch: Unsupported value: "Bogus": supported values: "Exact", "NotOlderThan", ""',
    ),
    (
        "match-without-rv",
        False,
        {"match": "NotOlderThan"},
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is "
        "provided",
    ),
    (
        "bogus-match-without-rv",
        False,
        {"match": "Bogus"},
        "[resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is "
        "provided, "
        'resourceVersionMatch: Unsupported value: "Bogus": supported values: "Exact", "NotOlderThan", ""]',
    ),
    (
        "exact-at-zero",
        False,
        {"resource_version": "0", "match": "Exact"},
        'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
    ),
    (
        "match-with-continue",
        False,
        {"resource_version": "5", "match": "Exact", "continue_token": "x"},
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided",
    ),
    (
        "send-initial-events-on-list",
        False,
        {"send_initial_events": "true"},
        "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
    ),
    (
        "watch-match-without-send-initial-events",
        True,
        {"resource_version": "5", "match": "NotOlderThan"},
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless "
        "sendInitialEvents "
        "is provided",
    ),
    (
        "watch-exact",
        True,
        {"resource_version": "5", "match": "Exact"},
        "[resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless "
        "sendInitialEvents "
        'is provided, resourceVersionMatch: Unsupported value: "Exact": supported values: "NotOlderThan"]',
    ),
    (
        "watch-list-without-match",
        True,
        {"send_initial_events": "true"},
        "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to "
        "NotOlderThan",
    ),
    (
        "watch-list-exact",
        True,
        {"match": "Exact", "send_initial_events": "true"},
        "[resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to "
        'NotOlderThan, resourceVersionMatch: Unsupported value: "Exact": supported values: "NotOlderThan"]',
    ),
    (
        "watch-list-with-continue",
        True,
        {"match": "NotOlderThan", "send_initial_events": "true", "continue_token": "123"},
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided",
    ),
]


@pytest.mark.parametrize(
    ("watch", "options", "message"), [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES]
)
def test_refused_options_are_422_listoptions(watch: bool, options: dict[str, str], message: str) -> None:
    with pytest.raises(ApiError) as info:
        validate_list_options(watch=watch, **options)
    status = info.value.status()
    assert (status["code"], status["reason"], status["message"]) == (422, "Invalid", INVALID + message)
    assert status["details"]["kind"] == "ListOptions" and status["details"]["group"] == "meta.k8s.io"
    assert all(
        c["field"] in ("resourceVersionMatch", "sendInitialEvents") for c in status["details"]["causes"]
    )


@pytest.mark.parametrize(
    ("watch", "options"),
    [
        (False, {}),
        (False, {"resource_version": "0"}),
        (False, {"resource_version": "3", "match": "Exact"}),
        (False, {"resource_version": "0", "match": "NotOlderThan"}),
        (True, {"resource_version": "3"}),
        (True, {"match": "NotOlderThan", "send_initial_events": "true"}),
        (True, {"match": "NotOlderThan", "send_initial_events": "false", "resource_version": "3"}),
    ],
    ids=["nothing", "rv-0", "exact", "not-older-than-0", "watch-rv", "watch-list", "watch-list-off"],
)
def test_accepted_options(watch: bool, options: dict[str, str]) -> None:
    validate_list_options(watch=watch, **options)


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store)
    await bootstrap(c)
    yield c
    store.close()


async def _configmaps(core: ApiCore) -> tuple[int, int]:
    """c1 at revision a, then c2 at b: returns (a, b)."""
    cm = core.registry.by_kind("ConfigMap")
    assert cm is not None
    first = await core.create(cm, "default", {"metadata": {"name": "c1"}, "data": {"v": "1"}})
    await core.update(cm, "default", "c1", {"metadata": {"name": "c1"}, "data": {"v": "2"}})
    second = await core.create(cm, "default", {"metadata": {"name": "c2"}})
    return int(first.obj["metadata"]["resourceVersion"]), int(second.obj["metadata"]["resourceVersion"])


async def test_list_is_refused_before_reading(core: ApiCore) -> None:
    cm = core.registry.by_kind("ConfigMap")
    assert cm is not None
    with pytest.raises(ApiError, match='Unsupported value: "Bogus"'):
        core.list(cm, "default", resource_version="1", resource_version_match="Bogus")
    with pytest.raises(BadRequest, match="specifying resource version is not allowed when using continue"):
        core.list(cm, "default", resource_version="1", continue_token="abc")


async def test_exact_lists_the_past_revision(core: ApiCore) -> None:
    cm = core.registry.by_kind("ConfigMap")
    assert cm is not None
    at_first, _ = await _configmaps(core)
    listed = core.list(cm, "default", resource_version=str(at_first), resource_version_match="Exact")
    assert listed.resource_version == str(at_first)
    assert [(o["metadata"]["name"], o["data"]) for o in listed.items] == [("c1", {"v": "1"})]
    newest = core.list(cm, "default", resource_version=str(at_first), resource_version_match="NotOlderThan")
    assert [o["metadata"]["name"] for o in newest.items] == ["c1", "c2"]


async def test_paged_list_at_a_resource_version_is_exact(core: ApiCore) -> None:
    cm = core.registry.by_kind("ConfigMap")
    assert cm is not None
    at_first, _ = await _configmaps(core)
    page = core.list(cm, "default", resource_version=str(at_first), limit=10)
    assert page.resource_version == str(at_first) and [o["metadata"]["name"] for o in page.items] == ["c1"]


async def test_exact_at_a_compacted_revision_is_410(core: ApiCore) -> None:
    cm = core.registry.by_kind("ConfigMap")
    assert cm is not None
    at_first, at_second = await _configmaps(core)
    core.store.compact(at_second)
    with pytest.raises(Gone) as info:
        core.list(cm, "default", resource_version=str(at_first), resource_version_match="Exact")
    status = info.value.status()
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert status["message"] == "The resourceVersion for the provided list is too old."
    # the point lookup of a fieldSelector on metadata.name reads at the revision too
    with pytest.raises(Gone):
        core.list(
            cm,
            "default",
            resource_version=str(at_first),
            resource_version_match="Exact",
            field_selector=parse_field_selector("metadata.name=c1", "ConfigMap"),
        )
