"""The terminal tables and the JSON report.

One table per scenario and variant; a row per point and server. Under the first server's
row, one row per other server (every baseline the run compared, whichever) gives each figure
as how many times better the first server did: the ratio is oriented by the figure, so above
1 is always better (a higher rate, a lower latency, less CPU or memory) and below 1 worse.
The JSON keeps the plain quotients too (``ratios``: first ÷ other).

A table fits ``width`` columns (100 by default): the least important figures, at the right,
are left out first, and the point shows only as many of its parameters as tell its rows
apart; a footnote names what was left out (``--wide`` or ``--json`` has everything).
"""

from __future__ import annotations

import enum
import json
import textwrap
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .result import Result

Fmt = Callable[[Any], str]
#: What a figure that could not be measured shows as.
NOT_MEASURED = "—"
WIDTH = 100


class Better(enum.Enum):
    HIGHER = "higher"
    LOWER = "lower"


@dataclass(frozen=True)
class Column:
    title: str
    key: str
    fmt: Fmt
    #: Which way is better, for the ratio rows; None: no ratio (a count, a verdict).
    better: Better | None = None


def _num(digits: int) -> Fmt:
    return lambda v: f"{v:,.{digits}f}"


def _frac(v: Any) -> str:
    return f"{v:.4f}" if v < 1 else f"{v:.3f}"


def _mib(v: Any) -> str:
    return f"{v / 1024:,.1f}"


def _yes(v: Any) -> str:
    return "yes" if v else "NO"


UP, DOWN = Better.HIGHER, Better.LOWER

#: scenario -> its columns, most important first (a narrow table drops from the right).
COLUMNS: dict[str, list[Column]] = {
    "fanout": [
        Column("deliv/s", "deliveries_per_s", _num(0), UP),
        Column("p50 ms", "lat_p50_ms", _num(2), DOWN),
        Column("p99 ms", "lat_p99_ms", _num(2), DOWN),
        Column("cpu µs/deliv", "cpu_us_per_delivery", _num(2), DOWN),
        Column("delivered", "delivered_fraction", _frac),
        Column("msgs/s", "msgs_per_s", _num(0), UP),
        Column("max ms", "lat_max_ms", _num(2), DOWN),
        Column("worst member p50", "lat_worst_member_p50_ms", _num(2), DOWN),
    ],
    "throughput": [
        Column("deliv/s", "deliveries_per_s", _num(0), UP),
        Column("msgs in/s", "msgs_per_s", _num(0), UP),
        Column("p99 ms", "lat_p99_ms", _num(1), DOWN),
        Column("cpu µs/deliv", "cpu_us_per_delivery", _num(2), DOWN),
        Column("delivered", "delivered_fraction", _frac),
        Column("MB/s out", "bytes_in_per_s", lambda v: f"{v / 1e6:,.1f}", UP),
    ],
    "connections": [
        Column("connected", "connected", _num(0)),
        Column("KiB/client", "kib_per_client", _num(1), DOWN),
        Column("connect/s", "connect_per_s", _num(0), UP),
        Column("reached all", "reached_all", _yes),
        Column("RSS MiB", "server_rss_kib", _mib, DOWN),
        Column("threads", "server_threads", _num(0), DOWN),
        Column("fan-out ms", "seconds", lambda v: f"{v * 1e3:,.1f}", DOWN),
    ],
    "slow-consumer": [
        Column("healthy deliv/s", "deliveries_per_s", _num(0), UP),
        Column("delivered", "delivered_fraction", _frac),
        Column("stalled cut after s", "stalled_cut_after_s", _num(2)),
        Column("stalled was told", "stalled_told", str),
        Column("vs no stall", "rate_vs_without", _num(2)),
        Column("p99 ms", "lat_p99_ms", _num(1), DOWN),
    ],
    "overload": [
        Column("delivered", "delivered_fraction", _frac),
        Column("members cut", "cut", _num(0)),
        Column("senders msgs/s", "msgs_per_s", _num(0), UP),
        Column("deliv/s", "deliveries_per_s", _num(0), UP),
        Column("cpu µs/deliv", "cpu_us_per_delivery", _num(2), DOWN),
        Column("p99 ms", "lat_p99_ms", _num(0), DOWN),
    ],
    "burst": [
        Column("registered", "registered", _num(0)),
        Column("last WELCOME s", "last_welcome_s", _num(3), DOWN),
        Column("all in 2 s", "within_target", _yes),
        Column("refused", "refused", _num(0)),
        Column("failed", "failed", _num(0)),
        Column("p50 ms", "welcome_p50_ms", _num(1), DOWN),
        Column("p99 ms", "welcome_p99_ms", _num(1), DOWN),
        Column("cpu s", "server_cpu_s", _num(2), DOWN),
        Column("listen drops", "listen_drops", _num(0)),
        Column("start late ms", "start_late_ms", _num(1)),
    ],
    "shutdown": [
        Column("registered", "registered", _num(0)),
        Column("exit s", "exit_s", _num(3), DOWN),
        Column("exit code", "exit_code", str),
        Column("notified", "notified", _num(0)),
        Column("exit 0, all told, in time", "within_target", _yes),
        Column("last close s", "last_close_s", _num(3), DOWN),
        Column("closed", "closed", _num(0)),
        Column("median close s", "median_close_s", _num(3), DOWN),
        Column("cpu s", "shutdown_cpu_s", _num(2), DOWN),
    ],
    "hostile": [
        Column("p99 ms", "during_p99_ms", _num(1), DOWN),
        Column("p99 < 250 ms", "within_target", _yes),
        Column("p50 ms", "during_p50_ms", _num(1), DOWN),
        Column("max ms", "during_max_ms", _num(1), DOWN),
        Column("before p99", "before_p99_ms", _num(1), DOWN),
        Column("probes", "during_probes", _num(0)),
        Column("lost", "during_lost", _num(0)),
        Column("RSS MiB before", "rss_before_kib", _mib, DOWN),
        Column("peak", "rss_peak_kib", _mib, DOWN),
        Column("after", "rss_after_kib", _mib, DOWN),
        Column("cleanup s", "cleanup_s", _num(2), DOWN),
        Column("trickled", "trickled", _num(0)),
        Column("cut in window", "crowd_cut", _num(0)),
        Column("before p50", "before_p50_ms", _num(1), DOWN),
        Column("before max", "before_max_ms", _num(1), DOWN),
    ],
    "codec": [
        Column("bytes", "frame_bytes", _num(0)),
        Column("encode construct ns", "encode_construct_ns", _num(0)),
        Column("encode fast ns", "encode_fast_ns", _num(0)),
        Column("×", "encode_speedup", _num(1)),
        Column("decode construct ns", "decode_construct_ns", _num(0)),
        Column("decode fast ns", "decode_fast_ns", _num(0)),
        Column("×", "decode_speedup", _num(1)),
    ],
}

TITLES = {
    "fanout": "fan-out: one sender, N receivers in one room",
    "throughput": "throughput: K clients all sending into one room",
    "connections": "connections: idle registered clients (QUIET, default room)",
    "slow-consumer": "slow consumer: healthy members beside one that stops reading",
    "overload": "overload: senders flood a room faster than its members read",
    "burst": "burst: N clients connect at one instant (HELLO with QUIET, default room)",
    "shutdown": "shutdown: SIGTERM to a server holding N registered clients",
    "hostile": "hostile: bystanders' delivery latency while a crowd of N connections attacks",
    "codec": "codec: cost per frame, construct definitions vs fast path",
}

#: Footnotes a scenario's table always carries: what a column means that its title cannot say.
NOTES = {
    "shutdown": [
        "in time: exit within 2 s of SIGTERM with idle clients, within 5 s amid a flood "
        "(--flood: rooms of 10 sending as fast as the server takes)",
    ],
    "slow-consumer": [
        "stalled was told: the ERROR codes the stalled member found at the end of its stream "
        "when it read it after the run; 'no ERROR' = it found none, which is usual: a server "
        "tries SLOW_CONSUMER without blocking and then closes (§12.2), and the member's full "
        "buffers seldom leave room for it; — = it was never cut",
    ],
    "hostile": [
        "p50/p99/max ms: delivery latency of the bystanders' probes (one every 20 ms, from a "
        "sender to a receiver in their own room) sent during the attack's window; before: "
        "those sent in the seconds before it; lost: probes that never arrived (counted with "
        "the time they were waited for); RSS: the server's just before the attack, its peak "
        "from then on, and after; cleanup s: from the crowd's close until the server's "
        "descriptors were back to their count before the crowd came (— = not within the "
        "settle time, or no server pid); trickled: connections still open when the trickle began "
        "(a server may cut surplus handshakes at once); cut in window: those it closed during it",
    ],
}
RATIO_NOTE = (
    "vs NAME: how many times better the first server did than NAME on that figure "
    "(higher rate; lower latency, CPU, memory): above 1 better, below 1 worse"
)
DISTURBED_NOTE = (
    "* other processes used more than half a core while this point ran: its figures are "
    "disturbed; measure again before quoting them"
)


def _pairs(results: list[Result]) -> list[tuple[int, Result, Column, Result]]:
    """(index of a first-server result, it, a ratio column, another server's same point)."""
    if not results:
        return []
    main = results[0].server
    out = []
    for i, r in enumerate(results):
        if r.server != main:
            continue
        for other in results:
            point = (other.scenario, other.variant, other.params)
            if other.server == main or point != (r.scenario, r.variant, r.params):
                continue
            out += [(i, r, c, other) for c in COLUMNS.get(r.scenario, []) if c.better]
    return out


def _quotient(a: Any, b: Any) -> float | None:
    """a ÷ b when both are measured, positive figures."""
    ok = all(isinstance(x, int | float) and not isinstance(x, bool) and x > 0 for x in (a, b))
    return a / b if ok else None


def ratios(results: list[Result]) -> dict[int, dict[str, dict[str, float]]]:
    """For each result of the first server: {other server: {figure: first ÷ other}}."""
    out: dict[int, dict[str, dict[str, float]]] = {}
    for i, r, column, other in _pairs(results):
        row = out.setdefault(i, {}).setdefault(other.server, {})
        q = _quotient(r.figures.get(column.key), other.figures.get(column.key))
        if q is not None:
            row[column.key] = q
    return out


def advantages(results: list[Result]) -> dict[int, dict[str, dict[str, float]]]:
    """As :func:`ratios`, oriented by each figure so that above 1 means the first server did
    better (a higher rate, a lower latency, CPU or memory)."""
    out: dict[int, dict[str, dict[str, float]]] = {}
    for i, r, column, other in _pairs(results):
        row = out.setdefault(i, {}).setdefault(other.server, {})
        a, b = r.figures.get(column.key), other.figures.get(column.key)
        q = _quotient(a, b) if column.better is Better.HIGHER else _quotient(b, a)
        if q is not None:
            row[column.key] = q
    return out


def _cell(fmt: Fmt, value: Any) -> str:
    if value is None or value == "":
        return NOT_MEASURED
    try:
        return fmt(value)
    except (TypeError, ValueError):
        return str(value)


def headline(r: Result) -> str:
    """A point's leading figure in words, for the progress line (and its status if not the
    usual one)."""
    status = str(r.figures.get("status", ""))
    cols = COLUMNS.get(r.scenario)
    if not cols:
        return status
    shown = f"{cols[0].title} {_cell(cols[0].fmt, r.figures.get(cols[0].key))}"
    return shown if status == "complete" else f"{shown}; {status}"


def _point_labels(
    params: list[dict[str, Any]], narrow: bool
) -> tuple[list[str], dict[str, Any], list[str]]:
    """Each point's label; the parameters every point shares (said once, in the title); and
    the parameters left out of the labels: narrow, those the points can be told apart
    without (the last first)."""
    names = list(params[0]) if params else []
    shared = {k: params[0][k] for k in names if all(p.get(k) == params[0][k] for p in params)}
    if len({repr(p) for p in params}) == 1 and names:
        shared.pop(names[0])  # one point: labelled by its first parameter, the rest in the title
    varying = [k for k in names if k not in shared]

    def distinct(keys: list[str]) -> bool:
        return len({repr([p.get(k) for k in keys]) for p in params}) == len(
            {repr(p) for p in params}
        )

    hidden: list[str] = []
    if narrow:
        for name in reversed(varying):
            rest = [k for k in varying if k != name and k not in hidden]
            if rest and distinct(rest):
                hidden.insert(0, name)
    shown = [k for k in varying if k not in hidden]
    labels = [" ".join(f"{k}={p.get(k)}" for k in shown) for p in params]
    return labels, shared, hidden


def tables(results: list[Result], width: int | None = WIDTH) -> str:
    """Every scenario's table, in the order the scenarios ran; ``width`` None: every column."""
    better = advantages(results)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(results):
        groups.setdefault((r.scenario, r.variant), []).append(i)
    blocks = []
    for (scenario, variant), indices in groups.items():
        # Rows of one point together (servers in the order they ran), points in run order.
        first_seen: dict[str, int] = {}
        for i in indices:
            first_seen.setdefault(repr(results[i].params), i)
        indices = sorted(indices, key=lambda i: (first_seen[repr(results[i].params)], i))
        cols = list(COLUMNS.get(scenario, []))
        points = [results[i].params for i in indices]
        labels, shared, hidden = _point_labels(points, width is not None)
        dropped: list[str] = []
        while True:
            head, rows = _rows(results, indices, labels, cols, better)
            text = _grid(head, rows)
            if width is None or len(cols) <= 1 or max(map(len, text.splitlines())) <= width:
                break
            dropped.insert(0, cols.pop().title)
        notes = _notes(scenario, results, indices, better, hidden, dropped)
        title = f"{TITLES.get(scenario, scenario)} — {variant}"
        if shared:
            title += " (" + ", ".join(f"{k}={v}" for k, v in shared.items()) + ")"
        blocks.append(f"{title}\n{text}{notes}")
    return "\n\n".join(blocks)


def _rows(
    results: list[Result],
    indices: list[int],
    labels: list[str],
    cols: list[Column],
    better: dict[int, dict[str, dict[str, float]]],
) -> tuple[list[str], list[list[str]]]:
    head = ["point", "server", *(c.title for c in cols), "status"]
    rows: list[list[str]] = []
    last_label = None
    for i, label in zip(indices, labels, strict=True):
        r = results[i]
        shown = label if label != last_label else ""
        last_label = label
        server = r.server + ("*" if r.figures.get("disturbed") else "")
        cells = [_cell(c.fmt, r.figures.get(c.key)) for c in cols]
        rows.append([shown, server, *cells, str(r.figures.get("status", ""))])
        for other, row in better.get(i, {}).items():
            rcells = [
                (f"{row[c.key]:.2f}x" if c.key in row else NOT_MEASURED) if c.better else ""
                for c in cols
            ]
            rows.append(["", f"  vs {other}", *rcells, ""])
    return head, rows


def _notes(
    scenario: str,
    results: list[Result],
    indices: list[int],
    better: dict[int, dict[str, dict[str, float]]],
    hidden: list[str],
    dropped: list[str],
) -> str:
    notes = list(NOTES.get(scenario, []))
    if any(i in better for i in indices):
        notes.append(RATIO_NOTE)
    if any(results[i].figures.get("disturbed") for i in indices):
        notes.append(DISTURBED_NOTE)
    left_out = [f"point {name}" for name in hidden] + dropped
    if left_out:
        notes.append(f"left out to fit: {', '.join(left_out)} (--wide or --json has them)")
    wrap = textwrap.TextWrapper(width=WIDTH, initial_indent="  ", subsequent_indent="    ")
    return "".join("\n" + "\n".join(wrap.wrap(note)) for note in notes)


def _grid(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(x[c]) for x in [head, *rows]) for c in range(len(head))]
    last = len(head) - 1

    def line(cells: list[str]) -> str:
        # Point and server left, figures right, status left.
        return "  ".join(
            x.ljust(w) if c < 2 or c == last else x.rjust(w)
            for c, (x, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


def write_json(
    path: Path, results: list[Result], environment: dict[str, Any], options: dict[str, Any]
) -> None:
    plain, oriented = ratios(results), advantages(results)
    payload = {
        "environment": environment,
        "options": options,
        "results": [
            {**asdict(r), "ratios": plain.get(i, {}), "advantages": oriented.get(i, {})}
            for i, r in enumerate(results)
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")
