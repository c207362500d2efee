"""`viewable`: an ApiCore verb that serves a version stored as another kind through `core.views`.

Owns: the decorator only (views.py holds the verbs); its own module so that core.py and the
mixins (deletion.py) use it without importing views.py, which imports them.
Must not import: anything in orchestra.api but the registry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from orchestra.api.registry import ResourceType

F = TypeVar("F", bound=Callable[..., Any])


def viewable(method: F) -> F:
    """An ApiCore verb whose first argument is the type: a view's (`ResourceType.view_of`) goes to
    the same verb of `core.views`."""

    @functools.wraps(method)
    def verb(self: Any, rt: ResourceType, *args: Any, **kwargs: Any) -> Any:
        if rt.view_of is None:
            return method(self, rt, *args, **kwargs)
        return getattr(self.views, method.__name__)(rt, *args, **kwargs)

    return cast(F, verb)
