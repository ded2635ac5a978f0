"""Who gets a connection slot, beyond ``max_clients`` (§4.5).

* Handshake share: at most ``max_handshakes`` connections may be still in the handshake at
  once. When a new one would pass that, the oldest handshake gives way (HANDSHAKE_TIMEOUT, as
  if its time were up): connections that never send HELLO, however many and however often
  they come back, cannot keep real clients (which send HELLO at once) from registering.
* Per address: at most ``max_per_address`` connections from one IP address (0: no limit).
* Descriptors: one is kept in reserve, so that a client that arrives when the process is out
  of descriptors is still told SERVER_FULL instead of waiting in the backlog unanswered.

Called by the accept thread (``admit``, ``make_room``, ``spare_descriptor``) and by handler
threads as they end (``ended``): one lock.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from typing import Protocol


class Handshaking(Protocol):
    """A session as admission sees it."""

    def in_handshake(self) -> bool: ...

    def evict(self, error: bytes) -> None: ...


class Admission:
    def __init__(self, max_handshakes: int, max_per_address: int) -> None:
        self.max_handshakes = max_handshakes
        self.max_per_address = max_per_address
        self._lock = threading.Lock()
        #: Sessions admitted and perhaps still in the handshake, oldest first; registered
        #: ones are swept out when the share is looked at.
        self._handshaking: OrderedDict[Handshaking, None] = OrderedDict()
        self._per_address: Counter[str] = Counter()
        self._reserve: int | None = None
        self._keep_reserve()

    def refusal(self, address: str) -> str | None:
        """Why a new connection from ``address`` is refused (SERVER_FULL), or None."""
        if self.max_per_address and self._per_address[address] >= self.max_per_address:
            return f"at most {self.max_per_address} connections from one address"
        return None

    def admit(self, session: Handshaking, address: str) -> None:
        with self._lock:
            self._handshaking[session] = None
            self._per_address[address] += 1

    def ended(self, session: Handshaking, address: str) -> None:
        with self._lock:
            self._handshaking.pop(session, None)
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]

    def make_room(self) -> Handshaking | None:
        """If the handshake share is full, the oldest session still in its handshake, taken
        out of the share (the caller evicts it); else None."""
        with self._lock:
            if len(self._handshaking) < self.max_handshakes:
                return None
            for session in [s for s in self._handshaking if not s.in_handshake()]:
                del self._handshaking[session]
            if len(self._handshaking) < self.max_handshakes:
                return None
            session, _ = self._handshaking.popitem(last=False)
            return session

    @contextlib.contextmanager
    def spare_descriptor(self) -> Iterator[bool]:
        """Out of descriptors: free the reserve for the block (True if there was one), so one
        connection can be accepted and refused; take the reserve back after."""
        self._keep_reserve()  # a descriptor may have come free since it was used
        if self._reserve is None:
            yield False
            return
        os.close(self._reserve)
        self._reserve = None
        try:
            yield True
        finally:
            self._keep_reserve()

    def keep_reserve(self) -> None:
        """Take the reserve descriptor back if it is not held (after it was used)."""
        if self._reserve is None:
            self._keep_reserve()

    def close(self) -> None:
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None

    def _keep_reserve(self) -> None:
        if self._reserve is None:
            with contextlib.suppress(OSError):
                self._reserve = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
