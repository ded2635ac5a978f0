"""``--repeat K``: every point measured K times, the servers taking turns, and reported as the
median of each figure.

On a shared 2-core machine one run of a point moves by tens of per cent from minute to
minute (other tenants, CPU caches, wake-up latency), for every server alike. Running the
whole scenario K times in a row makes each server's runs spread over the same stretch of
time, so a comparison is not decided by which server happened to run during a quiet minute.
"""

from __future__ import annotations

import statistics
from typing import Any

from .result import Result


def combine(results: list[Result], repeats: int) -> list[Result]:
    """One result per point and server (in first-run order): each numeric figure the median
    of its runs, ``runs`` how many there were and ``spread`` each numeric figure's lowest and
    highest; a status other than ``complete`` in any run is the point's status. ``repeats``
    1 returns ``results`` unchanged."""
    if repeats <= 1:
        return results
    groups: dict[tuple[str, str, str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.scenario, r.variant, repr(r.params), r.server), []).append(r)
    return [_median_of(runs) for runs in groups.values()]


def _median_of(runs: list[Result]) -> Result:
    first = runs[0]
    figures: dict[str, Any] = {}
    spread: dict[str, list[float]] = {}
    for key, value in first.figures.items():
        values = [r.figures.get(key) for r in runs]
        if _numeric(values):
            numbers = [float(v) for v in values if v is not None]
            figures[key] = statistics.median(numbers)
            if min(numbers) != max(numbers):
                spread[key] = [min(numbers), max(numbers)]
        elif key == "status":
            figures[key] = next((v for v in values if v != "complete"), value)
        else:
            figures[key] = value
    figures["runs"] = len(runs)
    figures["spread"] = spread
    return Result(first.scenario, first.variant, first.params, first.server, figures)


def _numeric(values: list[Any]) -> bool:
    """Numbers (bools are not), None where a run could not measure the figure; one at least."""
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    )
