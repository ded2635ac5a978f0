"""A request sent to the server: a :class:`concurrent.futures.Future` of its answer.

The pairing relies on §7.1/§8.5: the server answers one client's requests in the order they
were sent, so each answer (or non-fatal ERROR) belongs to the oldest request still waiting.
The receive thread completes the future (``set_result`` / ``set_exception``); callbacks added
with ``add_done_callback`` run in that thread.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TypeVar

from spec.constants import FrameType

from .errors import ClientTimeout

T = TypeVar("T")


class Request(Future[T]):
    """One request sent to the server; ``wait()`` returns its answer.

    It is running from the start (the frame is on its way), so it cannot be cancelled.
    """

    def __init__(self, kind: FrameType, target: str = "") -> None:
        super().__init__()
        self.kind = kind
        self.target = target
        self.set_running_or_notify_cancel()

    def wait(self, timeout: float | None = None) -> T:
        """The answer; raises RequestFailed, ConnectionClosed or ClientTimeout."""
        try:
            return self.result(timeout)
        except TimeoutError:  # no failure stored in a request is a TimeoutError
            raise ClientTimeout(f"no answer to {self.kind.name} within {timeout} s") from None
