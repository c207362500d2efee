"""LIST and WATCH query options checked like kube-apiserver 1.32 (apimachinery's ValidateListOptions).

Owns: `validate_list_options(...)`, raising the 422 kube answers before reading anything:
`ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Unsupported value: "Bogus": supported
values: "Exact", "NotOlderThan", ""` (and the Forbidden rules: a match needs a resourceVersion, no
match with continue, Exact never with "0", sendInitialEvents never on a list, and on a watch only
with resourceVersionMatch=NotOlderThan), as with 1.32's WatchList feature gate on (its default);
`send_initial_events(value)` reads the parameter the way kube's query decoder reads a *bool.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from orchestra.api.errors import Cause, invalid
from orchestra.api.machinery.field import forbidden, not_supported

EXACT, NOT_OLDER_THAN = "Exact", "NotOlderThan"
MATCH = "resourceVersionMatch"


def validate_list_options(
    *,
    watch: bool,
    resource_version: str | None = None,
    match: str | None = None,
    continue_token: str | None = None,
    send_initial_events: str | None = None,
) -> None:
    """Raise kube's 422 for options a LIST (or, with `watch`, a WATCH) may not combine."""
    check = _watch_errors if watch else _list_errors
    causes = check(resource_version or "", match or "", continue_token or "", send_initial_events)
    if causes:
        raise invalid("ListOptions", "", causes, group="meta.k8s.io")


FALSE_WORDS = ("0", "f", "false", "n", "no")


def send_initial_events(value: str | None) -> bool | None:
    """sendInitialEvents as kube's parameter codec reads a *bool: absent is nil, "0", "f", "false",
    "n" and "no" (any case) are false, anything else is true."""
    if value is None:
        return None
    return value.lower() not in FALSE_WORDS


def _list_errors(rv: str, match: str, cont: str, send_initial_events: str | None) -> list[Cause]:
    errs: list[Cause] = []
    if match:
        if not rv:
            errs.append(forbidden(MATCH, f"{MATCH} is forbidden unless resourceVersion is provided"))
        if cont:
            errs.append(forbidden(MATCH, f"{MATCH} is forbidden when continue is provided"))
        if match not in (EXACT, NOT_OLDER_THAN):
            errs.append(not_supported(MATCH, match, (EXACT, NOT_OLDER_THAN, "")))
        if match == EXACT and rv == "0":
            errs.append(forbidden(MATCH, 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'))
    if send_initial_events is not None:
        errs.append(forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"))
    return errs


def _watch_errors(rv: str, match: str, cont: str, send_initial_events: str | None) -> list[Cause]:
    errs: list[Cause] = []
    if send_initial_events is not None and match != NOT_OLDER_THAN:
        errs.append(forbidden(MATCH, f"sendInitialEvents requires setting {MATCH} to {NOT_OLDER_THAN}"))
    if match:
        if send_initial_events is None:
            errs.append(
                forbidden(MATCH, f"{MATCH} is forbidden for watch unless sendInitialEvents is provided")
            )
        if match != NOT_OLDER_THAN:
            errs.append(not_supported(MATCH, match, (NOT_OLDER_THAN,)))
        if cont:
            errs.append(forbidden(MATCH, f"{MATCH} is forbidden when continue is provided"))
    return errs
