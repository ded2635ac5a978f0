"""``--plot FILE.png``: the scaling curves, one panel per question, one line per server.

matplotlib is the optional extra ``plot`` (``pip install -e '.[plot]'``); the CLI checks for it
before a sweep starts, so a missing package costs one line and no wasted run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from .context import Result

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
        for server, rows in servers.items():
            for key, suffix, style in series:
                points = _points(rows, xkey, key)
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, style, marker="o", label=f"{server}{suffix}")
        ax.set_title(name)
        ax.set_xlabel(xkey)
        ax.set_ylabel(ylabel)
        ax.set_xscale("log")
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
