"""Waiting for a condition that no event signals (state inside a server or a hub), by a
deadline: checked every 10 ms until it holds or the time is up."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(check: Callable[[], bool], seconds: float = 10) -> bool:
    """True as soon as ``check()`` holds; False if it still does not after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
