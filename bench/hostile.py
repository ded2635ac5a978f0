"""hostile: what ordinary members see while a crowd attacks the server.

Two attacks, each on a fresh server (or the one given with ``--server``):

- ``mass-close``: N registered clients (HELLO with QUIET, default room) all close their
  connections at one instant;
- ``trickle``: N connections send a HELLO one byte a second, all in step, for a window
  shorter than the HELLO, so none ever registers (the server may cut them: counted). A
  reference server the bench starts is let hold N handshakes at once (``--max-handshakes``)
  unless ``--server-arg`` sets it, so that all N trickle.

The crowd lives in the load workers (:mod:`.hostileload`); the bystanders, one sender and
one receiver in a room of their own, probe from a thread of the bench's own process
(:mod:`.bystanders`), a stamped message every 20 ms from ``hostile_before_s`` before the
attack to the end of its window.

Reported: the bystanders' delivery latency p50 / p99 / max during the window and before it,
how many probes each took and how many never arrived (they count in the percentiles with the
time they were waited for), the server's RSS just before the attack, its peak from then on,
and after (once its descriptors are back to their count before the crowd came, or the
settle time is over), and how long that cleanup took from the crowd's close. Target (issue
10): bystanders' p99 under 250 ms during the attack, no probe lost.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from . import capacity, harness, metrics, procstat
from .bystanders import BystanderError, Bystanders, ProbeLog
from .context import Context, Target, connect_failed, failed_server, frozen, spread
from .harness import Layout
from .hostileload import TrickleOpen, TrickleOrder
from .orders import ClientSpec, Role
from .presets import Preset
from .servers import Server, ServerError

TARGET_P99_MS = 250.0
#: From choosing the attack's instant to reaching it: time for every worker to read its order.
LEAD_S = 0.25
#: How often the server's memory and descriptors are read while it is under attack.
SAMPLE_S = 0.1


def run(ctx: Context) -> None:
    p = ctx.preset
    for variant, sizes in (
        ("mass-close", p.hostile_close_sizes),
        ("trickle", p.hostile_trickle_sizes),
    ):
        for n in sizes:
            for target in ctx.targets:
                figures = _point(ctx, target, variant, n)
                ctx.record("hostile", variant, {"clients": n}, target.name, figures)


def _point(ctx: Context, target: Target, variant: str, n: int) -> dict[str, Any]:
    if target.kind not in (None, "reference"):
        return {"status": "skipped: not a chatwire/1 server"}
    short = capacity.problem(n + 2, ctx.pool.size)
    if short is not None:
        return {"status": f"skipped: {short}"}
    limits = ["--max-clients", str(n + 64)]
    # The reference keeps only a share of its slots for handshakes and cuts the oldest past
    # it: let every trickler in, so that N really trickle, unless told otherwise.
    if variant == "trickle" and not any(a.startswith("--max-handshakes") for a in target.args):
        limits += ["--max-handshakes", str(n + 64)]
    try:
        with ctx.server(target, tuple(limits)) as server:
            figures = _attack(ctx, server, variant, n)
            if not server.alive():
                figures["status"] = f"server died: {server.log_tail()}"
            return figures
    except ServerError as exc:
        return failed_server(exc)
    finally:
        ctx.pool.reset()


@dataclass(frozen=True)
class _Crowd:
    workers: list[int]
    joined: dict[str, Any]


def _attack(ctx: Context, server: Server, variant: str, n: int) -> dict[str, Any]:
    p = ctx.preset
    tag = ctx.unique("h")
    ctx.progress.phase(f"registering the bystanders on {server.name}")
    try:
        by = Bystanders(server.host, server.port, tag, p.payload, p.connect_timeout)
    except BystanderError as exc:
        return {"status": f"connect failed: bystanders: {exc}"}
    try:
        base_fds = procstat.open_fds(server.pid) if server.pid else None
        base = server.sample()
        crowd = _gather(ctx, server, variant, n, tag)
        if crowd.joined["failed"]:
            return {"status": connect_failed(crowd.joined), "connect": crowd.joined}
        ctx.progress.phase(f"bystanders probe for {p.hostile_before_s:g} s before the attack")
        by.start(p.probe_every_s)
        time.sleep(p.hostile_before_s)  # probes beside the quiet crowd; nothing to wait on
        before = server.sample()
        attack_ns = time.monotonic_ns() + int(LEAD_S * 1e9)
        end_ns = attack_ns + int(p.hostile_window_s * 1e9)
        if variant == "mass-close":
            order: tuple[str, Any] = ("close-at", attack_ns)
        else:
            order = ("trickle", TrickleOrder(attack_ns, p.hostile_window_s, f"{tag}t"))
        ctx.progress.phase(f"{n} connections attack: {variant} ({p.hostile_window_s:g} s)")
        ctx.pool.tell({w: order for w in crowd.workers})
        closed_ns = attack_ns if variant == "mass-close" else end_ns
        figures = _follow(server, by, p, base_fds, closed_ns, end_ns)
        replies = list(ctx.pool.answers(crowd.workers, p.hostile_window_s + 30).values())
    finally:
        log = by.finish()
    figures.update(_probes(log, attack_ns, end_ns))
    figures.update(_crowd_figures(variant, replies, attack_ns))
    figures.update(
        status="complete" if log.failure is None else f"bystander cut: {log.failure}",
        crowd=crowd.joined["ok"],
        connect=crowd.joined,
        rss_base_kib=base.rss_kib if base else None,
        rss_before_kib=before.rss_kib if before else None,
    )
    figures["within_target"] = (
        log.failure is None
        and figures["during_probes"] > 0
        and figures["during_lost"] == 0
        and figures["during_p99_ms"] <= TARGET_P99_MS
    )
    return figures


def _gather(ctx: Context, server: Server, variant: str, n: int, tag: str) -> _Crowd:
    """The crowd, quiet until the attack: registered clients, or bare connections."""
    p = ctx.preset
    everyone = list(range(ctx.pool.size))
    ctx.progress.phase(f"connecting {n} crowd connections to {server.name}")
    if variant == "mass-close":
        specs = [ClientSpec(f"{tag}c{i}", Role.RECEIVER) for i in range(n)]
        clients = frozen(spread(specs, everyone))
        layout = Layout("lobby", False, clients, p.payload)
        return _Crowd(list(clients), harness.connect(ctx.pool, server, layout, p.connect_timeout))
    shares = {w: n // len(everyone) + (w < n % len(everyone)) for w in everyone}
    orders: dict[int, tuple[str, Any]] = {
        w: ("trickle-open", TrickleOpen(*server.address_for(w), count, p.connect_timeout))
        for w, count in shares.items()
        if count
    }
    replies = ctx.pool.ask(orders, p.connect_timeout + 30).values()
    failures: Counter[str] = Counter()
    for reply in replies:
        failures.update(reply["failures"])
    joined = {
        "ok": sum(r["ok"] for r in replies),
        "failed": sum(failures.values()),
        "failures": dict(failures),
    }
    return _Crowd(list(orders), joined)


def _follow(
    server: Server,
    by: Bystanders,
    p: Preset,
    base_fds: int | None,
    closed_ns: int,
    end_ns: int,
) -> dict[str, Any]:
    """Read the server's memory and descriptors every SAMPLE_S from the attack on; at the
    window's end stop the probes; go on until the probes under way are in and the server's
    descriptors are back to ``base_fds`` (or the grace and settle times are over)."""
    settle_ns = end_ns + int(p.hostile_settle_s * 1e9)
    peak: int | None = None
    back_ns: int | None = None
    sending = True
    while True:
        now = time.monotonic_ns()
        if sending and now >= end_ns:
            by.stop_sending(p.hostile_grace_s)
            sending = False
        look = server.sample()
        fds = procstat.open_fds(server.pid) if server.pid else None
        if look is not None:
            peak = max(peak or 0, look.rss_kib)
        if back_ns is None and fds is not None and base_fds is not None and now >= closed_ns:
            back_ns = now if fds <= base_fds else None
        settled = back_ns is not None or fds is None or base_fds is None or now >= settle_ns
        if not sending and by.done() and settled:
            break
        time.sleep(SAMPLE_S)  # a sampling period, not a wait for an event
    return {
        "rss_peak_kib": peak,
        "rss_after_kib": look.rss_kib if look is not None else None,
        "cleanup_s": (back_ns - closed_ns) / 1e9 if back_ns is not None else None,
        "server_fds_base": base_fds,
        "server_fds_after": fds,
        "server_threads_after": look.threads if look is not None else None,
    }


def _probes(log: ProbeLog, attack_ns: int, end_ns: int) -> dict[str, Any]:
    """Latency figures of the probes sent before the attack and during its window; a probe
    that never arrived counts with the time it was waited for (a lower bound)."""
    out: dict[str, Any] = {}
    first = log.sent_ns[0] if log.sent_ns else attack_ns
    for name, low, high in (("before", first, attack_ns), ("during", attack_ns, end_ns)):
        sent = [s for s in log.sent_ns if low <= s < high]
        lost = [s for s in sent if s not in log.latency_ns]
        waits = [log.latency_ns[s] for s in sent if s in log.latency_ns]
        waits += [max(0, log.ended_ns - s) for s in lost]
        lat = metrics.latency_figures(waits)
        out[f"{name}_probes"] = len(sent)
        out[f"{name}_lost"] = len(lost)
        for key in ("p50", "p99", "max"):
            out[f"{name}_{key}_ms"] = lat[f"lat_{key}_ms"]
    return out


def _crowd_figures(variant: str, replies: list[dict[str, Any]], attack_ns: int) -> dict[str, Any]:
    if variant == "mass-close":
        return {
            "crowd_closed": sum(r["closed"] for r in replies),
            # How well the instant held: the last worker's last close after it.
            "close_spread_ms": max(r["done_ns"] for r in replies) / 1e6 - attack_ns / 1e6,
        }
    # A server may cut surplus handshakes as they come (a cap on connections in the
    # handshake): those were gone before the attack began (negative times).
    cuts = sorted(t for r in replies for t in r["cuts_ns"])
    early = sum(1 for t in cuts if t < 0)
    cuts = cuts[early:]
    errors: Counter[str] = Counter()
    for r in replies:
        errors.update(r["errors"])
    return {
        "crowd_cut_before_attack": early,
        "trickled": sum(r["open_at_start"] for r in replies) - early,
        "crowd_cut": len(cuts),
        "crowd_cut_median_s": metrics.percentile(cuts, 0.5) / 1e9 if cuts else None,
        "crowd_still_open": sum(r["still_open"] for r in replies),
        "crowd_errors": dict(errors),
        "crowd_bytes_sent": sum(r["bytes_sent"] for r in replies),
    }
