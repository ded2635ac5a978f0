"""How much CPU other processes took while a point ran, so a disturbed figure is marked.

The load average cannot tell: it counts the bench's own server and workers, which keep it
above the core count during any flood. Instead: the machine's busy CPU time (/proc/stat) less
the bench's own (this process, the children it has reaped, i.e. the servers it started and
stopped, and the live processes it watches: workers, and a server while it runs), between
two looks.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

from . import procstat

#: Other processes' CPU, in cores on average over a point, from which the point is disturbed.
DISTURBED_CORES = 0.5


def machine_busy_s() -> float:
    """CPU seconds every core has spent not idle since boot (iowait counts as idle)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) * procstat.TICK_S


class OtherLoad:
    """Looks at the machine between points; :meth:`point` gives what others took since."""

    def __init__(self) -> None:
        self._offsets: dict[int, float] = {}
        self._last = self._look()

    def watch(self, pid: int, from_now: bool = False) -> None:
        """Count ``pid``'s CPU as the bench's own: all of it (a child the bench started), or
        only from now (a server it was given the address of)."""
        if pid != os.getpid() and pid not in self._offsets:
            seen = procstat.sample(pid) if from_now else None
            self._offsets[pid] = seen.cpu_s if seen is not None else 0.0

    def _ours(self) -> float:
        me = resource.getrusage(resource.RUSAGE_SELF)
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = me.ru_utime + me.ru_stime + reaped.ru_utime + reaped.ru_stime
        for pid, offset in list(self._offsets.items()):
            seen = procstat.sample(pid)
            if seen is None:  # gone: a child of ours is in RUSAGE_CHILDREN from now on
                del self._offsets[pid]
            else:
                total += seen.cpu_s - offset
        return total

    def _look(self) -> tuple[float, float, float]:
        return time.monotonic(), machine_busy_s(), self._ours()

    def point(self) -> dict[str, float | bool]:
        """Figures for the point since the last call: others' CPU in cores, and the verdict."""
        then, now = self._last, self._look()
        self._last = now
        wall = now[0] - then[0]
        others = max(0.0, (now[1] - then[1]) - (now[2] - then[2]))
        cores = others / wall if wall > 0 else 0.0
        return {"other_cpu_cores": round(cores, 3), "disturbed": cores > DISTURBED_CORES}
