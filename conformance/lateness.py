"""The suite's own lateness: how far behind its threads ran, so that a starved suite blames
itself (harness ERROR), never the server (FAIL).

On a busy machine the suite's threads can be kept off the CPU for longer than a server's time
limits allow: a PONG goes out late, a PING meant to keep a client active is sent late, and a
correct server rightly cuts the client. The server cannot be faulted for that. Two measures:

* a ticker thread sleeps 50 ms at a time and records by how much each sleep overran (what
  every thread of the suite suffers, the readers that answer PINGs included);
* clients report their own delays (a PONG sent long after its PING was read).

A case that found a fault while the suite ran late by more than the run's tolerance reports
ERROR (with how late), and the user re-runs with a larger --timeout-scale.
"""

from __future__ import annotations

import bisect
import threading
import time

TICK = 0.05


class Lateness:
    def __init__(self) -> None:
        self._times: list[float] = []  #: monotonic end of each late stretch, increasing
        self._late: list[float] = []  #: how late, in seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._idle_cuts: list[tuple[float, str, object]] = []

    def start(self) -> None:
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="lateness", daemon=True)
            self._ticker.start()

    def stop(self) -> None:
        self._stop.set()

    def note(self, seconds: float, at: float | None = None) -> None:
        """Record that something of the suite ran ``seconds`` late (ending at ``at``)."""
        if seconds <= 0:
            return
        with self._lock:
            self._times.append(time.monotonic() if at is None else at)
            self._late.append(seconds)

    def idle_cut(self, client: str, owner: object) -> None:
        """A client that meant to stay alive (it answers PINGs) was cut as idle; ``owner`` is
        what it belongs to (its case's transcript), so only its own case is excused."""
        with self._lock:
            self._idle_cuts.append((time.monotonic(), client, owner))

    def idle_cuts_since(self, since: float, owner: object) -> list[str]:
        with self._lock:
            return [name for t, name, o in self._idle_cuts if t >= since and o is owner]

    def worst_since(self, since: float) -> float:
        """The largest lateness recorded from ``since`` on (0.0 if none)."""
        with self._lock:
            i = bisect.bisect_left(self._times, since)
            return max(self._late[i:], default=0.0)

    def _tick(self) -> None:
        before = time.monotonic()
        while not self._stop.wait(TICK):
            now = time.monotonic()
            late = now - before - TICK
            if late > 0.02:  # scheduler noise below this is not worth a record
                self.note(late, now)
            before = now


#: One per suite process: every client and case of the run shares it.
LATENESS = Lateness()
