"""The bench's tables: oriented ratios, a width limit, what cannot be measured, footnotes."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest

from bench import metrics, procstat
from bench.context import connect_failed
from bench.otherload import OtherLoad
from bench.progress import Progress
from bench.report import (
    COLUMNS,
    DISTURBED_NOTE,
    NOT_MEASURED,
    WIDTH,
    advantages,
    headline,
    ratios,
    tables,
)
from bench.result import Result


def fanout(server: str, n: int, **figures: float | None) -> Result:
    params = {"N": n, "messages": 20_000 // n, "pace_hz": 0.0}
    every = {c.key: 1.0 for c in COLUMNS["fanout"]}
    return Result("fanout", "flood", params, server, {**every, **figures, "status": "complete"})


def test_ratio_rows_say_how_many_times_better_whichever_way_a_figure_points() -> None:
    results = [
        fanout("reference", 4, deliveries_per_s=300.0, lat_p99_ms=2.0, cpu_us_per_delivery=None),
        fanout("naive", 4, deliveries_per_s=100.0, lat_p99_ms=8.0, cpu_us_per_delivery=3.0),
        fanout("redis", 4, deliveries_per_s=600.0, lat_p99_ms=1.0, cpu_us_per_delivery=1.0),
    ]
    better = advantages(results)[0]
    # A rate 3 times higher and a latency 4 times lower are both "4x/3x better" ...
    assert better["naive"]["deliveries_per_s"] == 3.0 and better["naive"]["lat_p99_ms"] == 4.0
    # ... and any other server (a baseline added later, say) gets its row by the same rule.
    assert better["redis"]["deliveries_per_s"] == 0.5 and better["redis"]["lat_p99_ms"] == 0.5
    assert "cpu_us_per_delivery" not in better["naive"]  # not measured on one side
    assert ratios(results)[0]["naive"]["lat_p99_ms"] == 0.25  # the JSON keeps the quotient
    text = tables(results)
    assert "  vs naive" in text and "  vs redis" in text and "4.00x" in text
    assert "above 1 better" in text


def test_tables_fit_100_columns_unless_wide() -> None:
    results = [fanout(s, n, deliveries_per_s=123456789.0) for n in (1, 1000) for s in ("a", "b")]
    narrow = tables(results)
    assert max(len(line) for line in narrow.splitlines()) <= WIDTH
    assert "left out to fit: point messages" in narrow and "--wide" in narrow
    assert "N=1000  " in narrow and "messages=20" not in narrow
    wide = tables(results, None)
    assert all(c.title in wide for c in COLUMNS["fanout"]) and "left out" not in wide
    assert "N=1000 messages=20 " in wide
    assert "— flood (pace_hz=0.0)" in narrow and "— flood (pace_hz=0.0)" in wide


def test_point_labels_keep_the_parameters_that_tell_rows_apart() -> None:
    results = [
        Result("slow-consumer", "members", {"N": 16, "messages": 9, "stalled": s}, "ref", {})
        for s in (0, 1)
    ]
    text = tables(results)  # what every point shares is said once, in the title
    assert "— members (N=16, messages=9)\n" in text
    assert "\nstalled=0  ref" in text and "\nstalled=1  ref" in text
    alone = tables(results[:1])  # one point: its first parameter labels it, the rest go above
    assert "— members (messages=9, stalled=0)\n" in alone
    assert alone.splitlines()[3].split()[:2] == ["N=16", "ref"]


def test_what_cannot_be_measured_shows_as_a_dash() -> None:
    assert metrics.server_figures(_sample(0.0), _sample(0.0), 500)["cpu_us_per_delivery"] is None
    one_tick = metrics.server_figures(_sample(0.0), _sample(procstat.TICK_S), 500)
    assert one_tick["cpu_us_per_delivery"] is None  # one tick: a rounding, not a figure
    enough = metrics.server_figures(_sample(0.0), _sample(1.0), 500)
    assert enough["cpu_us_per_delivery"] == 2000.0
    text = tables([fanout("reference", 1, cpu_us_per_delivery=None), fanout("naive", 1)])
    assert f"  {NOT_MEASURED}" in text and "0.00" not in text and "0.00x" not in text


def test_progress_says_each_scenarios_own_leading_figure() -> None:
    r = Result("connections", "idle", {"clients": 10}, "reference", {"connected": 10})
    r.figures["status"] = "complete"
    assert headline(r) == "connected 10"
    r.figures["status"] = "limit: EMFILE"
    assert headline(r) == "connected 10; limit: EMFILE"


def test_footnotes_explain_the_stalled_column_and_mark_disturbed_points() -> None:
    figures = {"stalled_told": "no ERROR", "status": "complete"}
    calm = Result("slow-consumer", "members", {"N": 2}, "reference", dict(figures))
    busy = Result("slow-consumer", "members", {"N": 3}, "reference", {**figures, "disturbed": 1})
    text = " ".join(tables([calm, busy]).split())  # footnotes are wrapped
    assert "stalled was told: the ERROR codes the stalled member found" in text
    assert "'no ERROR' = it found none" in text
    assert "reference*" in text and DISTURBED_NOTE.split(":")[0] in text
    assert "reference*" not in tables([calm])


def _sample(cpu_s: float) -> procstat.ProcSample:
    return procstat.ProcSample(cpu_s=cpu_s, rss_kib=1000, threads=1)


BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 30: pass"


def _spin_until(proc: subprocess.Popen[bytes], cpu_s: float) -> None:
    """Wait (by polling /proc, with a deadline) until ``proc`` has used ``cpu_s`` of CPU."""
    deadline = time.monotonic() + 30
    while (seen := procstat.sample(proc.pid)) is None or seen.cpu_s < cpu_s:
        assert time.monotonic() < deadline, "the busy process got no CPU"
        time.sleep(0.02)


@pytest.mark.timeout(60)
def test_cpu_taken_by_other_processes_marks_a_point_and_the_benchs_own_does_not() -> None:
    load = OtherLoad()
    load.point()
    stranger = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        _spin_until(stranger, 0.3)
        seen = load.point()
    finally:
        stranger.kill()
        stranger.wait()
    assert seen["other_cpu_cores"] > 0 and seen["disturbed"] in (True, False)
    # The same work in a process the bench watches is its own: it adds nothing to "others".
    mine = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        load.watch(mine.pid)
        before = load._look()
        _spin_until(mine, 0.3)
        after = load._look()
    finally:
        mine.kill()
        mine.wait()
    assert after[2] - before[2] >= 0.2  # counted as ours
    reaped = load._look()  # reaped: from /proc into RUSAGE_CHILDREN, not counted twice
    assert reaped[2] - after[2] < 0.15


def test_progress_counts_points_estimates_the_time_left_and_names_a_silent_step() -> None:
    now = [100.0]
    out = io.StringIO()
    progress = Progress(True, out, clock=lambda: now[0], quiet_s=10)
    progress.plan(4)
    try:
        now[0] += 20
        progress.point("fanout flood N=1 [reference]: deliv/s 5")
        progress.phase("connecting 1000 clients to reference")
        now[0] += 5
        progress.tick()  # 5 s of silence: nothing to say yet
        now[0] += 6
        progress.tick()
        now[0] += 9
        progress.point("fanout flood N=1000 [reference]: deliv/s 9")
    finally:
        progress.close()
    assert out.getvalue().splitlines() == [
        "[  20.0s] point 1 of 4, about 60 s left: fanout flood N=1 [reference]: deliv/s 5",
        "[  31.0s] ... still connecting 1000 clients to reference (11 s so far)",
        "[  40.0s] point 2 of 4, about 40 s left: fanout flood N=1000 [reference]: deliv/s 9",
    ]


def test_a_point_whose_clients_could_not_connect_says_why_and_counts_as_failed() -> None:
    joined = {"ok": 6, "failed": 4, "failures": {"handshake timed out": 3, "connect: X": 1}}
    status = connect_failed(joined)
    assert status == "connect failed: 4 of 10: 3x handshake timed out; 1x connect: X"
    assert Result("fanout", "flood", {}, "reference", {"status": status}).failed
    assert not Result("fanout", "flood", {}, "reference", {"status": "deadline"}).failed
