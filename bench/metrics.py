"""Turn what the workers counted into the figures a report shows."""

from __future__ import annotations

from typing import Any

from . import procstat
from .orders import Dialect, Role
from .procstat import ProcSample, cpu_between

#: Fewest clock ticks of server CPU from which a CPU cost per delivery is given (10%).
MIN_CPU_TICKS = 10

Metrics = dict[str, Any]
#: Wires on which the server answers every message (chatwire ACK, Redis's PUBLISH reply):
#: senders keep a window of unanswered messages, and the answers count what was accepted.
ACKED_DIALECTS = frozenset({Dialect.CHATWIRE, Dialect.REDIS})


def percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an already sorted list."""
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def merge_run(
    results: list[dict[str, Any]],
    dialect: Dialect,
    before: ProcSample | None,
    after: ProcSample | None,
) -> Metrics:
    """One point's figures from every worker's run summary."""
    roles: dict[str, dict[str, int]] = {}
    latencies: list[int] = []
    medians: list[int] = []
    cuts: list[dict[str, Any]] = []
    for result in results:
        for role, counts in result["roles"].items():
            into = roles.setdefault(role, dict.fromkeys(counts, 0))
            for key, value in counts.items():
                into[key] += value
        latencies += result["latencies_ns"]
        medians += result["client_medians_ns"]
        cuts += result["cuts"]
    zero = dict.fromkeys(("count", "delivered", "acked", "written", "bytes_in", "bytes_out"), 0)
    send, peer = roles.get(Role.SENDER, zero), roles.get(Role.PEER, zero)
    recv = roles.get(Role.RECEIVER, zero)
    # What the server accepted: ACKed messages for chatwire (and answered PUBLISHes for
    # Redis); for the other baselines, which have no ACK, every message whose bytes were all
    # handed to the kernel.
    key = "acked" if dialect in ACKED_DIALECTS else "written"
    accepted_s, accepted_p = send[key], peer[key]
    n_recv, n_peer = recv["count"], peer["count"]
    expected = accepted_s * (n_recv + n_peer) + accepted_p * max(0, n_recv + n_peer - 1)
    delivered = recv["delivered"] + peer["delivered"]
    first_tx = min((r["first_tx_ns"] for r in results if r["first_tx_ns"]), default=0)
    last = max(max(r["last_rx_ns"], r["last_ack_ns"]) for r in results)
    elapsed = (last - first_tx) / 1e9 if first_tx and last > first_tx else None
    statuses = {r["status"] for r in results}
    m: Metrics = {
        "status": "deadline" if "deadline" in statuses else "complete",
        "messages": accepted_s + accepted_p,
        "deliveries": delivered,
        "expected": expected,
        "delivered_fraction": delivered / expected if expected else None,
        "seconds": elapsed,
        "msgs_per_s": _rate(accepted_s + accepted_p, elapsed),
        "deliveries_per_s": _rate(delivered, elapsed),
        "bytes_in_per_s": _rate(sum(r["bytes_in"] for r in roles.values()), elapsed),
        "bytes_out_per_s": _rate(sum(r["bytes_out"] for r in roles.values()), elapsed),
        "rejected": sum(r.get("rejected", 0) for r in roles.values()),
        "dup": sum(r.get("dup", 0) for r in roles.values()),
        "reordered": sum(r.get("reordered", 0) for r in roles.values()),
        "bad_seq": sum(r.get("bad_seq", 0) for r in roles.values()),
        "cut": len([c for c in cuts if c["role"] != Role.STALLER]),
        "cuts": cuts[:20],
    }
    m.update(latency_figures(latencies))
    m["lat_worst_member_p50_ms"] = max(medians) / 1e6 if medians else None
    m.update(server_figures(before, after, delivered))
    return m


def latency_figures(latencies: list[int]) -> Metrics:
    if not latencies:
        return {"lat_samples": 0, "lat_p50_ms": None, "lat_p99_ms": None, "lat_max_ms": None}
    ordered = sorted(latencies)
    return {
        "lat_samples": len(ordered),
        "lat_p50_ms": percentile(ordered, 0.50) / 1e6,
        "lat_p99_ms": percentile(ordered, 0.99) / 1e6,
        "lat_max_ms": ordered[-1] / 1e6,
    }


def server_figures(before: ProcSample | None, after: ProcSample | None, deliveries: int) -> Metrics:
    if before is None or after is None:
        return {"server_cpu_s": None, "cpu_us_per_delivery": None, "server_rss_kib": None}
    cpu = cpu_between(before, after)
    # /proc/PID/stat counts CPU in clock ticks (10 ms): below MIN_CPU_TICKS of them, a figure
    # per delivery would be mostly rounding, so it is not given, unless the per-thread
    # schedstat sum (nanoseconds) measured it.
    precise = procstat.precise(before, after)
    measurable = (precise or cpu >= MIN_CPU_TICKS * procstat.TICK_S) and deliveries
    return {
        "server_cpu_s": cpu,
        "cpu_us_per_delivery": cpu / deliveries * 1e6 if measurable else None,
        "server_rss_kib": after.rss_kib,
        "server_threads": after.threads,
    }


def _rate(count: int, seconds: float | None) -> float | None:
    return count / seconds if seconds else None
