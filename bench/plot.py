"""``--plot FILE.png``: the scaling curves, one panel per question, one line per server.

matplotlib is the optional extra ``plot`` (``pip install -e '.[plot]'``); the CLI checks for it
before a sweep starts, so a missing package costs one line and no wasted run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from .result import Result

#: (title, scenario, variant, x parameter, [(figure key, label suffix, line style)], y label, log y)
PANELS: list[tuple[str, str, str, str, list[tuple[str, str, str]], str, bool]] = [
    (
        "fan-out capacity (flooding)",
        "fanout",
        "flood",
        "N",
        [("deliveries_per_s", "", "-")],
        "deliveries / s",
        True,
    ),
    (
        "fan-out latency (paced)",
        "fanout",
        "paced",
        "N",
        [("lat_p50_ms", " p50", "-"), ("lat_p99_ms", " p99", "--")],
        "ms",
        True,
    ),
    (
        "throughput (K senders, one room)",
        "throughput",
        "flood",
        "K",
        [("deliveries_per_s", " deliv/s", "-"), ("msgs_per_s", " msgs in/s", "--")],
        "per second",
        True,
    ),
    (
        "server memory per idle client",
        "connections",
        "idle",
        "clients",
        [("kib_per_client", "", "-")],
        "KiB / client",
        False,
    ),
]


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def draw(path: Path, results: list[Result], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    for ax, (name, scenario, variant, xkey, series, ylabel, logy) in zip(
        axes.flat, PANELS, strict=True
    ):
        servers: dict[str, list[Result]] = {}
        for r in results:
            if r.scenario == scenario and r.variant == variant:
                servers.setdefault(r.server, []).append(r)
        ticks: set[float] = set()
        for n, (server, rows) in enumerate(servers.items()):
            for key, suffix, style in series:
                points = _points(rows, xkey, key)
                if points:
                    xs, ys = zip(*points, strict=True)
                    ticks.update(xs)
                    # One colour per server in every panel; the line style tells the figure.
                    color = f"C{n}"
                    ax.plot(xs, ys, style, color=color, marker="o", label=f"{server}{suffix}")
        ax.set_title(name)
        ax.set_xlabel(xkey)
        ax.set_ylabel(ylabel)
        ax.set_xscale("log")
        if ticks:
            ax.set_xticks(sorted(ticks), [f"{t:g}" for t in sorted(ticks)])
            ax.minorticks_off()
        if logy:
            ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        if servers:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _points(rows: list[Result], xkey: str, key: str) -> list[tuple[Any, Any]]:
    out = []
    for r in rows:
        x, y = r.params.get(xkey), r.figures.get(key)
        if isinstance(x, int | float) and isinstance(y, int | float) and x > 0 and y > 0:
            out.append((x, y))
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.plot REPORT.json OUT.png``: redraw the curves of a saved report."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.plot", description=main.__doc__)
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if not available():
        print("plotting needs matplotlib: pip install -e '.[plot]'", file=sys.stderr)
        return 2
    try:
        data = json.loads(args.report.read_text())
        results = [
            Result(r["scenario"], r["variant"], r["params"], r["server"], r["figures"])
            for r in data["results"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"cannot read {args.report}: {exc}", file=sys.stderr)
        return 2
    preset = data.get("options", {}).get("preset", {}).get("name", "?")
    draw(args.out, results, f"chatwire bench ({preset})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
