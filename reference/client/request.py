"""A request sent to the server: ``wait()`` gives the answer the receive thread paired with it.

The pairing relies on §7.1/§8.5: the server answers one client's requests in the order they
were sent, so each answer (or non-fatal ERROR) belongs to the oldest request still waiting.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar, cast

from spec.constants import FrameType

from .errors import ClientTimeout

T = TypeVar("T")


class Request(Generic[T]):
    """One request sent to the server; ``wait()`` returns its answer."""

    def __init__(self, kind: FrameType, target: str = "") -> None:
        self.kind = kind
        self.target = target
        self._done = threading.Event()
        self._answer: T | None = None
        self._failure: Exception | None = None

    def _resolve(self, answer: object) -> None:
        self._answer = cast(T, answer)
        self._done.set()

    def _fail(self, failure: Exception) -> None:
        self._failure = failure
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> T:
        """The answer; raises RequestFailed, ConnectionClosed or ClientTimeout."""
        if not self._done.wait(timeout):
            raise ClientTimeout(f"no answer to {self.kind.name} within {timeout} s")
        if self._failure is not None:
            raise self._failure
        return cast(T, self._answer)
