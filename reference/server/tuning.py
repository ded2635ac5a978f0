"""Interpreter-wide tuning for a process that runs nothing but one server.

Opt-in: only ``python -m reference.server`` uses it. A program that embeds :class:`Server`
gets none of it, and its ``Server.shutdown()`` changes nothing outside the server. Every
setting here belongs to the whole process (thread stack size, switch interval, cyclic
collector, CPU affinity), which is why a library must not touch it behind its caller's back.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
from collections.abc import Sequence

#: The interpreter's switch interval (seconds) while serving. Each thread waiting for the GIL
#: wakes once per interval to demand it: when thousands of clients act at once (3,000 closing
#: at one instant), thousands of waiters at the default 5 ms cost the kernel more than the work
#: (bystanders' delivery max 3.4 s; at 50 ms, 0.13-0.8 s, p99 under 80 ms). Every handler
#: thread blocks within far less than 50 ms, so no thread holds the GIL that long in practice.
#: Not longer: at 200 ms, 15,000 clients closing at once are cleaned up in 12 s rather than 18 s,
#: but bystanders' p99 beside 2,000 trickling handshakes goes from 115 ms to 1.2 s.
RUN_SWITCH_INTERVAL = 0.05

#: The interpreter's switch interval (seconds) while shutting down. A thread waiting for the
#: GIL wakes every interval to demand it; with thousands waiting at the default 5 ms those
#: wake-ups alone saturate the CPU (measured: 15,000 threads woken at once end in 5.0 s at
#: 5 ms, 1.1 s at 1 s). During shutdown every thread soon blocks or ends and so lets go.
SHUTDOWN_SWITCH_INTERVAL = 1.0


class ProcessTuning:
    """What a dedicated server process sets for itself: :meth:`apply` once before the server
    starts; ``begin``, ``confine`` and ``restore`` are the server's shutdown hooks
    (``reference.server.core.Tuning``)."""

    def __init__(self, thread_stack_kib: int) -> None:
        self.thread_stack_kib = thread_stack_kib
        self._saved: tuple[float, bool] | None = None
        self._own_cpus: set[int] | None = None

    def apply(self) -> None:
        """Every thread started from now on gets a small stack (one per client: at 15,000
        clients the default 8 MiB of address space each is 120 GiB; only pages touched cost
        memory, but the mappings cost the kernel), and the GIL's switch interval is
        ``RUN_SWITCH_INTERVAL``."""
        if self.thread_stack_kib:
            threading.stack_size(self.thread_stack_kib * 1024)
        sys.setswitchinterval(RUN_SWITCH_INTERVAL)

    def begin(self) -> None:
        """Shutdown began (perhaps in a busy handler thread): from now on no waiter for the GIL
        times out and forces a switch, so the thousands of threads that must each run once
        more to end hand the GIL on when they block or end, and none wakes every 5 ms only to
        ask for it; no cyclic collection passes over every client's objects."""
        self._saved = (sys.getswitchinterval(), gc.isenabled())
        sys.setswitchinterval(max(self._saved[0], SHUTDOWN_SWITCH_INTERVAL))
        gc.disable()

    def confine(self, threads: Sequence[threading.Thread]) -> None:
        """The threads that end the sessions and the flusher that closes them, on one CPU."""
        self._own_cpus = _gather_on_one_cpu(threads)

    def restore(self) -> None:
        if self._own_cpus is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, self._own_cpus)
            self._own_cpus = None
        if self._saved is not None:
            interval, collecting = self._saved
            sys.setswitchinterval(interval)
            if collecting:
                gc.enable()
            self._saved = None

    def after_shutdown(self) -> None:
        """Every thread is joined and every socket closed. What is left is the sessions'
        objects, in reference cycles: leave them to the process's exit rather than to a last
        cyclic collection at interpreter teardown (0.2 s at 15,000 clients)."""
        gc.freeze()


def _gather_on_one_cpu(threads: Sequence[threading.Thread]) -> set[int] | None:
    """Confine these threads and the calling one to one CPU; the calling thread's CPUs before.

    Thousands of handler threads ending, then one flusher closing thousands of sockets, make
    no use of a second CPU under the GIL, but spread over several they cost the kernel an
    interrupt to another CPU for each thread woken there and each stack unmapped (a TLB
    flush): measured, 15,000 threads end in 0.7 s on one CPU, 1.0 s on two. The other CPUs
    are left to the clients."""
    try:
        own = os.sched_getaffinity(0)
    except OSError:
        return None
    if len(own) < 2:
        return None
    one = {min(own)}
    for thread in threads:
        if thread.native_id is not None and thread.is_alive():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(thread.native_id, one)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, one)
    return own
