"""What the verbs of the API core take and give back, shared by the core and the mixins it is made of.

Owns: `WriteOptions` (dryRun, fieldValidation, fieldManager, force, and what decoding the body found
for strict field validation), `WriteResult` (the object written, warnings, whether it was created)
and `ListResult` (a LIST page: items, resourceVersion, continue token, remaining count).
Its own module so that core.py and the mixins it is built from (serverside.py, subresources.py,
deletion.py) all name these types without importing one another.
Must not import: anything in orchestra.api but user.py (plain value types).
"""

from __future__ import annotations

import attrs

from orchestra.api.user import UserInfo
from orchestra.objects import Obj


@attrs.define
class WriteOptions:
    dry_run: bool = False
    field_validation: str = "Strict"
    field_manager: str = ""
    force: bool = False
    # what decoding the request body found for strict field validation: (message, field), e.g.
    # ('duplicate field "data.a"', "data.a")
    decode_findings: tuple[tuple[str, str], ...] = ()
    # who asks (admission plugins read it); None for in-process components, whose path is trusted
    user: UserInfo | None = None


@attrs.define
class WriteResult:
    obj: Obj
    warnings: list[str] = attrs.field(factory=list)
    created: bool = False


@attrs.define
class ListResult:
    items: list[Obj]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None
