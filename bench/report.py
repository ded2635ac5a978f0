"""The terminal tables and the JSON report.

One table per scenario and variant; a row per point and server. Under the first server's
row, one row per baseline gives every figure as a ratio (first server ÷ baseline): above 1
means a larger figure, which is better for rates and worse for latency, CPU and memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .context import Result

Fmt = Callable[[Any], str]


def _num(digits: int) -> Fmt:
    return lambda v: f"{v:,.{digits}f}"


def _frac(v: Any) -> str:
    return f"{v:.4f}" if v < 1 else f"{v:.3f}"


def _mib(v: Any) -> str:
    return f"{v / 1024:,.1f}"


def _yes(v: Any) -> str:
    return "yes" if v else "NO"


#: scenario -> [(column title, figure key, format, ratio shown)]
COLUMNS: dict[str, list[tuple[str, str, Fmt, bool]]] = {
    "fanout": [
        ("deliv/s", "deliveries_per_s", _num(0), True),
        ("msgs/s", "msgs_per_s", _num(0), True),
        ("p50 ms", "lat_p50_ms", _num(2), True),
        ("p99 ms", "lat_p99_ms", _num(2), True),
        ("max ms", "lat_max_ms", _num(2), True),
        ("worst member p50", "lat_worst_member_p50_ms", _num(2), True),
        ("cpu µs/deliv", "cpu_us_per_delivery", _num(2), True),
        ("delivered", "delivered_fraction", _frac, False),
    ],
    "throughput": [
        ("msgs in/s", "msgs_per_s", _num(0), True),
        ("deliv/s", "deliveries_per_s", _num(0), True),
        ("MB/s out", "bytes_in_per_s", lambda v: f"{v / 1e6:,.1f}", True),
        ("p99 ms", "lat_p99_ms", _num(1), True),
        ("cpu µs/deliv", "cpu_us_per_delivery", _num(2), True),
        ("delivered", "delivered_fraction", _frac, False),
    ],
    "connections": [
        ("connected", "connected", _num(0), False),
        ("connect/s", "connect_per_s", _num(0), True),
        ("RSS MiB", "server_rss_kib", _mib, True),
        ("KiB/client", "kib_per_client", _num(1), True),
        ("threads", "server_threads", _num(0), True),
        ("reached all", "reached_all", _yes, False),
        ("fan-out ms", "seconds", lambda v: f"{v * 1e3:,.1f}", True),
    ],
    "slow-consumer": [
        ("healthy deliv/s", "deliveries_per_s", _num(0), True),
        ("vs no stall", "rate_vs_without", _num(2), False),
        ("delivered", "delivered_fraction", _frac, False),
        ("stalled cut after s", "stalled_cut_after_s", _num(2), False),
        ("stalled was told", "stalled_told", str, False),
        ("p99 ms", "lat_p99_ms", _num(1), True),
    ],
    "overload": [
        ("delivered", "delivered_fraction", _frac, False),
        ("members cut", "cut", _num(0), False),
        ("senders msgs/s", "msgs_per_s", _num(0), True),
        ("deliv/s", "deliveries_per_s", _num(0), True),
        ("p99 ms", "lat_p99_ms", _num(0), True),
        ("cpu µs/deliv", "cpu_us_per_delivery", _num(2), True),
    ],
    "burst": [
        ("registered", "registered", _num(0), False),
        ("last WELCOME s", "last_welcome_s", _num(3), True),
        ("p50 ms", "welcome_p50_ms", _num(1), True),
        ("p99 ms", "welcome_p99_ms", _num(1), True),
        ("all in 2 s", "within_target", _yes, False),
        ("refused", "refused", _num(0), False),
        ("failed", "failed", _num(0), False),
        ("cpu s", "server_cpu_s", _num(2), True),
        ("start late ms", "start_late_ms", _num(1), False),
        ("listen drops", "listen_drops", _num(0), False),
    ],
    "shutdown": [
        ("registered", "registered", _num(0), False),
        ("exit s", "exit_s", _num(3), True),
        ("exit code", "exit_code", str, False),
        ("notified", "notified", _num(0), False),
        ("closed", "closed", _num(0), False),
        ("median close s", "median_close_s", _num(3), True),
        ("last close s", "last_close_s", _num(3), True),
        ("exit 0, all told, in 2 s", "within_target", _yes, False),
        ("cpu s", "shutdown_cpu_s", _num(2), True),
    ],
    "codec": [
        ("bytes", "frame_bytes", _num(0), False),
        ("encode construct ns", "encode_construct_ns", _num(0), False),
        ("encode fast ns", "encode_fast_ns", _num(0), False),
        ("×", "encode_speedup", _num(1), False),
        ("decode construct ns", "decode_construct_ns", _num(0), False),
        ("decode fast ns", "decode_fast_ns", _num(0), False),
        ("×", "decode_speedup", _num(1), False),
    ],
}

TITLES = {
    "fanout": "fan-out: one sender, N receivers in one room",
    "throughput": "throughput: K clients all sending into one room",
    "connections": "connections: idle registered clients (QUIET, default room)",
    "slow-consumer": "slow consumer: healthy members beside one that stops reading",
    "overload": "overload: senders flood a room faster than its members read",
    "burst": "burst: N clients connect at one instant (HELLO with QUIET, default room)",
    "shutdown": "shutdown: SIGTERM to a server holding N idle registered clients",
    "codec": "codec: cost per frame, construct definitions vs fast path",
}


def ratios(results: list[Result]) -> dict[int, dict[str, dict[str, float]]]:
    """For each result of the first server: {baseline: {figure: first ÷ baseline}}."""
    if not results:
        return {}
    main = results[0].server
    out: dict[int, dict[str, dict[str, float]]] = {}
    for i, r in enumerate(results):
        if r.server != main:
            continue
        for other in results:
            if other.server == main or (other.scenario, other.variant, other.params) != (
                r.scenario,
                r.variant,
                r.params,
            ):
                continue
            row: dict[str, float] = {}
            for _, key, _, shown in COLUMNS.get(r.scenario, []):
                a, b = r.figures.get(key), other.figures.get(key)
                if shown and isinstance(a, int | float) and isinstance(b, int | float) and b:
                    row[key] = a / b
            out.setdefault(i, {})[other.server] = row
    return out


def _cell(fmt: Fmt, value: Any) -> str:
    if value is None or value == "":
        return "-"
    try:
        return fmt(value)
    except (TypeError, ValueError):
        return str(value)


def tables(results: list[Result]) -> str:
    """Every scenario's table, in the order the scenarios ran."""
    by_ratio = ratios(results)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(results):
        groups.setdefault((r.scenario, r.variant), []).append(i)
    blocks = []
    for (scenario, variant), indices in groups.items():
        cols = COLUMNS.get(scenario, [])
        head = ["point", "server", *(c[0] for c in cols), "status"]
        rows: list[list[str]] = []
        last_point = None
        # Rows of one point together (servers in the order they ran), points in run order.
        first_seen: dict[str, int] = {}
        for i in indices:
            first_seen.setdefault(repr(results[i].params), i)
        indices = sorted(indices, key=lambda i: (first_seen[repr(results[i].params)], i))
        for i in indices:
            r = results[i]
            point = " ".join(f"{k}={v}" for k, v in r.params.items())
            shown = point if point != last_point else ""
            last_point = point
            cells = [_cell(fmt, r.figures.get(key)) for _, key, fmt, _ in cols]
            rows.append([shown, r.server, *cells, str(r.figures.get("status", ""))])
            for base, row in by_ratio.get(i, {}).items():
                rcells = [f"{row[k]:.2f}x" if k in row else "" for _, k, _, _ in cols]
                rows.append(["", f"  ÷ {base}", *rcells, ""])
        blocks.append(f"{TITLES.get(scenario, scenario)} — {variant}\n{_grid(head, rows)}")
    return "\n\n".join(blocks)


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
    by_ratio = ratios(results)
    payload = {
        "environment": environment,
        "options": options,
        "results": [{**asdict(r), "ratios": by_ratio.get(i, {})} for i, r in enumerate(results)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")
