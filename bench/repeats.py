"""``--repeat K``: every point measured K times, the servers taking turns, and reported as the
median of each figure.

On a shared 2-core machine one run of a point moves by tens of per cent from minute to
minute (other tenants, CPU caches, wake-up latency), for every server alike. Running the
whole scenario K times in a row makes each server's runs spread over the same stretch of
time, so a comparison is not decided by which server happened to run during a quiet minute.

Not everything is a median: a fault seen in one run stays seen. Counts of what went wrong
(duplicates, reordering, cuts, …) are the worst run's, the fraction delivered the lowest, a
verdict (``within_target``, ``reached_all``) holds only if it held in every run, a point is
``disturbed`` if any run was, and the status is the worst run's.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from .result import FAILED, Result

#: Figures where the worst run speaks for the point (higher is worse).
WORST_HIGH = frozenset(("dup", "reordered", "bad_seq", "cut", "rejected", "lat_max_ms"))
#: ... and where lower is worse.
WORST_LOW = frozenset(("delivered_fraction",))
#: Yes/no figures where a yes in any run is the point's yes; every other one must hold in all.
ANY_YES = frozenset(("disturbed",))


def combine(results: list[Result], repeats: int) -> list[Result]:
    """One result per point and server, in first-run order (see the module's rules); each
    numeric figure the median of the runs that measured it (the lower middle one for an even
    count: always a figure some run had), ``runs`` how many runs there were and ``spread``
    the lowest and highest of each numeric figure that differed. ``repeats`` 1 returns
    ``results`` unchanged."""
    if repeats <= 1:
        return results
    groups: dict[tuple[str, str, str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.scenario, r.variant, repr(r.params), r.server), []).append(r)
    return [_combined(runs) for runs in groups.values()]


def _combined(runs: list[Result]) -> Result:
    first = runs[0]
    keys = list(dict.fromkeys(k for r in runs for k in r.figures))  # every run's, in order
    figures: dict[str, Any] = {}
    spread: dict[str, list[float]] = {}
    for key in keys:
        values = [r.figures[key] for r in runs if r.figures.get(key) is not None]
        if key == "status":
            figures[key] = min(values, key=_status_rank)
        elif not values:
            figures[key] = None
        elif all(isinstance(v, bool) for v in values):
            figures[key] = any(values) if key in ANY_YES else all(values)
        elif all(isinstance(v, int | float) for v in values):
            pick: Callable[[list[float]], float] = statistics.median_low
            if key in WORST_HIGH:
                pick = max
            elif key in WORST_LOW:
                pick = min
            figures[key] = pick(values)
            if min(values) != max(values):
                spread[key] = [min(values), max(values)]
        else:  # structured figures (cut lists, connect counts): the first run's
            figures[key] = values[0]
    figures["runs"] = len(runs)
    figures["spread"] = spread
    return Result(first.scenario, first.variant, first.params, first.server, figures)


def _status_rank(status: Any) -> int:
    """0 for a point that could not be measured, 1 for another finding, 2 for complete."""
    text = str(status)
    if text.startswith(FAILED):
        return 0
    return 2 if text == "complete" else 1
