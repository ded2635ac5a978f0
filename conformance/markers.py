"""``@requirement("FRAME-3", ...)``: the PROTOCOL.md requirement IDs a case judges.

The first ID is the case's main one: a failure that names no ID is charged to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., object])


def requirement(*ids: str) -> Callable[[F], F]:
    if not ids:
        raise ValueError("a case must name at least one requirement ID")
    mark = pytest.mark.requirement(*ids)

    def decorate(func: F) -> F:
        return mark(func)  # type: ignore[no-any-return]

    return decorate
