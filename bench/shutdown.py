"""shutdown: SIGTERM to a server holding N registered clients, idle or (``--flood``) flooding.

Only for a server the bench started (it is the bench's child, so its exit can be timed and
its exit code read); a point given ``--server`` is skipped with a line saying so. The clients
(QUIET, default room) keep reading while the server goes down; a client closes its end when
it reads the server's FIN, as a conforming client does after a fatal ERROR (§11.3).

Reported: seconds from SIGTERM to the process's exit (the target: exit 0 within 2 s, every
client told SERVER_SHUTDOWN), the exit code, how many clients read ERROR SERVER_SHUTDOWN
before their connection closed, when the last connection closed, and the server's CPU time
from SIGTERM to exit (from the rusage of reaped children). Baselines that send no notice
show 0 notified: that is the finding, not a failure of the run.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import threading
import time
from typing import Any

from . import capacity, harness, metrics
from .burstload import WatchOrder
from .context import Context, connect_failed, failed_server, frozen, spread
from .floodclose import FloodOrder
from .harness import Layout
from .orders import ClientSpec, Dialect, Role
from .procstat import ProcSample
from .servers import Server, ServerError

TARGET_S = 2.0
#: With ``--flood``: exit 0 within this, every client told SERVER_SHUTDOWN exactly once.
FLOOD_TARGET_S = 5.0
#: After the server is gone, how long workers wait for their sockets to see its close.
WATCH_S = 5.0


def run(ctx: Context) -> None:
    variant = "SIGTERM amid a flood" if ctx.preset.shutdown_flood_s else "SIGTERM"
    for n in ctx.preset.shutdown_sizes:
        for target in ctx.targets:
            params = {"clients": n}
            if target.kind is None:
                why = f"skipped: the bench did not start {target.address}, so it sends no SIGTERM"
                ctx.record("shutdown", variant, params, target.name, {"status": why})
                continue
            if target.kind == "redis":  # it tells its clients nothing: nothing to compare
                why = "skipped: Redis sends no shutdown notice"
                ctx.record("shutdown", variant, params, target.name, {"status": why})
                continue
            short = capacity.problem(n, ctx.pool.size)
            if short is not None:
                status = f"skipped: {short}"
                ctx.record("shutdown", variant, params, target.name, {"status": status})
                continue
            try:
                with ctx.server(target, ("--max-clients", str(n + 64))) as server:
                    figures = _shutdown(ctx, server, n)
            except ServerError as exc:
                figures = failed_server(exc)
            finally:
                ctx.pool.reset()
            ctx.record("shutdown", variant, params, target.name, figures)


def _shutdown(ctx: Context, server: Server, n: int) -> dict[str, Any]:
    assert server.process is not None
    tag = ctx.unique("q")
    specs = [ClientSpec(f"{tag}c{i}", Role.RECEIVER) for i in range(n)]
    clients = frozen(spread(specs, list(range(ctx.pool.size))))
    layout = Layout("lobby", False, clients, ctx.preset.payload)
    ctx.progress.phase(f"connecting {n} clients to {server.name}")
    joined = harness.connect(ctx.pool, server, layout, ctx.preset.connect_timeout)
    if not joined["ok"]:
        return {"status": connect_failed(joined)}
    if not server.alive():
        return {"status": f"server died before SIGTERM: {server.log_tail()}"}
    flood_s = ctx.preset.shutdown_flood_s
    if flood_s and server.dialect != Dialect.CHATWIRE:
        return {"status": "skipped: --flood speaks chatwire only"}
    if flood_s:
        return _flooded(ctx, server, specs, clients, joined["ok"], flood_s)
    held = server.sample()
    ctx.progress.phase(f"waiting for {server.name} to exit after SIGTERM")
    exit_figures = _terminate(server.process, ctx.preset.shutdown_wait_s, held)
    signal_ns = exit_figures.pop("signal_ns")
    watch = {w: ("watch-close", WatchOrder(signal_ns, WATCH_S)) for w in clients}
    ctx.progress.phase("watching the clients see the close")
    seen = list(ctx.pool.ask(watch, WATCH_S + 30).values())
    figures = _tally(seen)
    figures.update(exit_figures)
    figures["registered"] = joined["ok"]
    if server.output is not None:  # the server's own last words, e.g. how long it took
        server.output.thread.join(2)
        figures["server_log_tail"] = list(server.output.lines)[-3:]
    figures["server_threads"] = held.threads if held else None
    figures["server_rss_kib"] = held.rss_kib if held else None
    figures["within_target"] = (
        figures["exit_code"] == 0
        and figures["exit_s"] is not None
        and figures["exit_s"] <= TARGET_S
        and figures["notified"] == joined["ok"]
    )
    if joined["failed"]:
        figures["status"] = f"only {joined['ok']} of {n} registered: " + "; ".join(
            sorted(joined["failures"])
        )
    return figures


def _flooded(
    ctx: Context,
    server: Server,
    specs: list[ClientSpec],
    clients: dict[int, tuple[ClientSpec, ...]],
    registered: int,
    flood_s: float,
) -> dict[str, Any]:
    """``--flood``: every client joins its room of 10 and floods it; SIGTERM after
    ``flood_s``; each client tells which fatal ERRORs it got before the close."""
    assert server.process is not None
    rooms = {spec.nick: f"{spec.nick.split('c')[0]}r{i // 10}" for i, spec in enumerate(specs)}
    order = FloodOrder(rooms, ctx.preset.payload, flood_s + ctx.preset.shutdown_wait_s + WATCH_S)
    ctx.progress.phase(f"{registered} clients flood rooms of 10 for {flood_s:g} s")
    ctx.pool.tell({w: ("flood-close", order) for w in clients})
    time.sleep(flood_s)  # the load runs in the workers; nothing here to wait on
    held = server.sample()
    ctx.progress.phase(f"waiting for {server.name} to exit after SIGTERM")
    figures = _terminate(server.process, ctx.preset.shutdown_wait_s, held)
    signal_ns = figures.pop("signal_ns")
    seen = list(ctx.pool.answers(list(clients), order.timeout_s + 30).values())
    closes = sorted(t - signal_ns for r in seen for t in r["eof_ns"] if t >= signal_ns)
    others: dict[str, int] = {}
    for r in seen:
        for code, count in r["other_fatal"].items():
            others[code] = others.get(code, 0) + count
    figures.update(
        registered=registered,
        notified=sum(r["told_once"] for r in seen),
        no_error=sum(r["no_error"] for r in seen),
        frames_after_fatal=sum(r["frames_after_fatal"] for r in seen),
        other_errors=others,
        still_open=sum(r["still_open"] for r in seen),
        closed=len(closes),
        median_close_s=metrics.percentile(closes, 0.5) / 1e9 if closes else None,
        last_close_s=closes[-1] / 1e9 if closes else None,
        server_threads=held.threads if held else None,
        server_rss_kib=held.rss_kib if held else None,
    )
    figures["within_target"] = (
        figures["exit_code"] == 0
        and figures["exit_s"] is not None
        and figures["exit_s"] <= FLOOD_TARGET_S
        and figures["notified"] == registered
    )
    return figures


def _terminate(
    process: subprocess.Popen[bytes], wait_s: float, held: ProcSample | None
) -> dict[str, Any]:
    """SIGTERM, and time the exit to the reaping (a thread blocks in waitpid, no polling)."""
    exited = threading.Event()
    exit_ns = [0]

    def reap() -> None:
        process.wait()
        exit_ns[0] = time.monotonic_ns()
        exited.set()

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaper = threading.Thread(target=reap, name="bench-reaper", daemon=True)
    reaper.start()
    signal_ns = time.monotonic_ns()
    process.send_signal(signal.SIGTERM)
    status = "complete"
    if not exited.wait(wait_s):
        status = f"did not exit within {wait_s:.0f} s of SIGTERM: killed"
        process.kill()
        exited.wait(10)
    reaper.join(1)
    # The server is the only child reaped in between: the growth of the children's rusage is
    # its whole life's CPU; less what /proc showed just before the signal is its shutdown's.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    life = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    return {
        "status": status,
        "signal_ns": signal_ns,
        "exit_s": (exit_ns[0] - signal_ns) / 1e9 if exit_ns[0] and status == "complete" else None,
        "exit_code": process.returncode,
        "shutdown_cpu_s": max(0.0, life - held.cpu_s) if held and exit_ns[0] else None,
    }


def _tally(seen: list[dict[str, Any]]) -> dict[str, Any]:
    reasons: dict[str, int] = {}
    others: dict[str, int] = {}
    for r in seen:
        for why, count in r["close_reasons"].items():
            reasons[why] = reasons.get(why, 0) + count
        for code, count in r["other_errors"].items():
            others[code] = others.get(code, 0) + count
    closes = sorted(t for r in seen for t in r["closes_ns"])
    return {
        "notified": sum(r["notified"] for r in seen),
        "closed": sum(r["closed"] for r in seen),
        "closed_before_signal": sum(r["closed_before_signal"] for r in seen),
        "still_open": sum(r["still_open"] for r in seen),
        "first_close_s": closes[0] / 1e9 if closes else None,
        "median_close_s": metrics.percentile(closes, 0.5) / 1e9 if closes else None,
        "last_close_s": closes[-1] / 1e9 if closes else None,
        "close_reasons": reasons,
        "other_errors": others,
    }
