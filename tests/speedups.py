"""The compiled twins of ``spec/_speedups.c`` as the tests see them: whatever the environment
says (CHATWIRE_PURE too), a twin is tested beside its pure-Python definition wherever
``make speedups`` built it, and skipped, saying so, where it did not."""

from __future__ import annotations

from typing import Any

import pytest

NOT_BUILT = "spec._speedups is not built"


def compiled(name: str) -> Any:
    """The compiled function ``name``, or None if the module is not built."""
    try:
        from spec import _speedups
    except ImportError:
        return None
    return getattr(_speedups, name)


def both(python: object, twin: object) -> list[Any]:
    """Parameters for a test of both paths: the Python one, and the twin unless not built."""
    return [
        pytest.param(python, id="python"),
        pytest.param(twin, id="compiled", marks=pytest.mark.skipif(twin is None, reason=NOT_BUILT)),
    ]
