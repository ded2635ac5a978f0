"""``python -m bench SCENARIO [options]``: run, print the tables, write JSON and a plot."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from . import (
    burst,
    codecbench,
    connections,
    fanout,
    hostile,
    overload,
    plot,
    preflight,
    procstat,
    repeats,
    report,
    shutdown,
    slow,
    throughput,
)
from .context import Context, Target
from .harness import Pool, WorkerError
from .presets import PRESETS, Preset
from .progress import Progress
from .servers import ServerError, parse_address

SCENARIOS: dict[str, Callable[[Context], None]] = {
    "fanout": fanout.run,
    "throughput": throughput.run,
    "connections": connections.run,
    "slow-consumer": slow.run,
    "overload": overload.run,
    "burst": burst.run,
    "shutdown": shutdown.run,
    "hostile": hostile.run,
    "codec": codecbench.run,
}
#: How many points each scenario measures per server.
POINTS: dict[str, Callable[[Preset], int]] = {
    "fanout": lambda p: len(p.fanout_variants) * len(p.fanout_sizes),
    "throughput": lambda p: len(p.throughput_sizes),
    "connections": lambda p: len(p.connection_levels),
    "slow-consumer": lambda p: 2,
    "overload": lambda p: 1,
    "burst": lambda p: len(p.burst_sizes),
    "shutdown": lambda p: len(p.shutdown_sizes),
    "hostile": lambda p: len(p.hostile_close_sizes) + len(p.hostile_trickle_sizes),
}
#: Arguments the bench gives the reference server it starts: no flood limit (a bench floods).
REFERENCE_ARGS = ("--rate", "0")


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure a chatwire/1 server over loopback TCP, optionally beside the "
        "naive, raw and Redis pub/sub baselines.",
    )
    p.add_argument("scenario", choices=[*SCENARIOS, "all"], help="what to measure; all = sweep")
    p.add_argument("--server", metavar="HOST:PORT", help="measure this running server")
    p.add_argument("--server-pid", type=int, help="its pid, for /proc figures (else found)")
    p.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for the reference server the bench starts",
    )
    p.add_argument(
        "--compare", action="store_true", help="also run the naive, raw and Redis baselines"
    )
    p.add_argument("--smoke", action="store_true", help="tiny sizes (seconds, for tests)")
    p.add_argument("--sizes", type=_sizes, help="override N/K/client levels, e.g. 1,16,256")
    p.add_argument("--workers", type=int, default=3, help="load worker processes (default 3)")
    p.add_argument("--payload", type=int, help="message text bytes (at least 20)")
    p.add_argument("--batch", type=int, help="frames per send call when flooding (default 64)")
    p.add_argument("--window", type=int, help="chatwire: most unACKed messages a sender keeps")
    p.add_argument(
        "--variant",
        choices=("flood", "paced"),
        help="fanout: only the flooding or only the paced runs (default both)",
    )
    p.add_argument(
        "--pace",
        type=float,
        metavar="HZ",
        help="fanout: the paced sender's messages per second at every N "
        "(default: 10,000 deliveries/s ÷ N, within 5..500; --smoke 400 ÷ N, within 20..200)",
    )
    p.add_argument(
        "--pace-seconds",
        type=float,
        metavar="S",
        help="fanout: how long a paced run offers messages (default: 1; --smoke 0.2)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="K",
        help="measure every point K times, the servers taking turns; report medians",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="write every figure as JSON")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the scaling curves")
    p.add_argument(
        "--cluster",
        type=int,
        metavar="N",
        help="also measure the reference as N cluster nodes on one Redis (clients spread)",
    )
    p.add_argument(
        "--flood",
        action="store_true",
        help="shutdown: the clients flood rooms of 10 when SIGTERM comes (target: exit 5 s)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument(
        "--wide", action="store_true", help="every column (tables fit 100 columns otherwise)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.plot is not None and not plot.available():
        print("--plot needs matplotlib: pip install -e '.[plot]'", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    if not 1 <= args.repeat <= 100:
        print("--repeat must be 1..100", file=sys.stderr)
        return 2
    preset = PRESETS["smoke" if args.smoke else "standard"].with_sizes(args.sizes)
    if args.payload is not None:
        if not 20 <= args.payload <= 4000:
            print("--payload must be 20..4000 bytes (the stamp takes 20)", file=sys.stderr)
            return 2
        preset = replace(preset, payload=args.payload)
    if args.flood:
        preset = replace(preset, shutdown_flood_s=3.0)
    for name in ("batch", "window"):
        value = getattr(args, name)
        if value is not None:
            if value < 1:
                print(f"--{name} must be at least 1", file=sys.stderr)
                return 2
            preset = replace(preset, **{name: value})
    fanout_only = [
        f"--{name.replace('_', '-')}"
        for name in ("variant", "pace", "pace_seconds")
        if getattr(args, name) is not None
    ]
    if fanout_only and args.scenario not in ("fanout", "all"):
        print(f"{fanout_only[0]} is for the fanout scenario only", file=sys.stderr)
        return 2
    if args.variant == "flood" and (args.pace is not None or args.pace_seconds is not None):
        print("--pace and --pace-seconds are for paced runs, not --variant flood", file=sys.stderr)
        return 2
    if args.pace is not None:
        if not 0.5 <= args.pace <= 100_000:
            print("--pace must be 0.5..100000 messages per second", file=sys.stderr)
            return 2
        preset = replace(preset, paced_hz=(args.pace, args.pace))
    if args.pace_seconds is not None:
        if not 0.1 <= args.pace_seconds <= 600:
            print("--pace-seconds must be 0.1..600", file=sys.stderr)
            return 2
        preset = replace(preset, paced_seconds=args.pace_seconds)
    if args.variant is not None:
        preset = replace(preset, fanout_variants=(args.variant,))
    try:
        targets = _targets(args)
        if args.server is not None:
            preflight.probe(*parse_address(args.server))
        elif args.server_arg and args.scenario != "codec":
            preflight.starts("reference", [*REFERENCE_ARGS, *args.server_arg])
    except ServerError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    # Servers the bench starts inherit this limit; each worker lifts its own too.
    fd_limit = procstat.raise_fd_limit()
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    progress = Progress(not args.quiet)
    pool = Pool(args.workers) if names != ["codec"] else Pool(0)
    ctx = Context(pool, preset, targets, progress)
    progress.plan(args.repeat * sum(_points(name, preset, len(targets)) for name in names))
    started = time.time()
    interrupted = False
    try:
        for run in range(args.repeat):
            for name in names:
                again = f" (run {run + 1} of {args.repeat})" if args.repeat > 1 else ""
                progress.say(f"scenario {name}{again}")
                SCENARIOS[name](ctx)
    except (ServerError, WorkerError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; partial results follow", file=sys.stderr)
        interrupted = True
    finally:
        progress.close()
        pool.close()
    ctx.results = repeats.combine(ctx.results, args.repeat)
    print(report.tables(ctx.results, None if args.wide else report.WIDTH))
    options = {
        "argv": sys.argv[1:] if argv is None else argv,
        "scenarios": names,
        "preset": asdict(preset),
        "targets": [asdict(t) for t in targets],
        "workers": args.workers,
        "repeat": args.repeat,
        "fd_limit": list(fd_limit),
        "started_unix": started,
        "wall_seconds": time.time() - started,
    }
    if args.json is not None:
        report.write_json(args.json, ctx.results, procstat.environment(), options)
        progress.say(f"wrote {args.json}")
    if args.plot is not None:
        plot.draw(args.plot, ctx.results, f"chatwire bench ({preset.name})")
        progress.say(f"wrote {args.plot}")
    failed = [r for r in ctx.results if r.failed]
    if failed:
        first = failed[0]
        print(
            f"bench: {len(failed)} of {len(ctx.results)} points could not be measured; "
            f"first: {first.scenario} {first.variant} [{first.server}]: {first.figures['status']}",
            file=sys.stderr,
        )
        return 1
    return 130 if interrupted else 0


def _points(name: str, preset: Preset, servers: int) -> int:
    if name == "codec":
        return codecbench.FRAMES  # measured in this process, once
    return POINTS[name](preset) * servers


def _targets(args: argparse.Namespace) -> list[Target]:
    if args.server is not None:
        host, port = parse_address(args.server)
        main = Target("server", address=f"{host}:{port}", pid=args.server_pid)
    else:
        main = Target("reference", kind="reference", args=(*REFERENCE_ARGS, *args.server_arg))
    cluster = []
    if args.cluster:
        if args.cluster < 1 or args.server is not None:
            raise ServerError("--cluster wants N >= 1 and no --server")
        args_ = (*REFERENCE_ARGS, *args.server_arg)
        cluster = [
            Target(f"cluster-{args.cluster}", kind="reference", args=args_, nodes=args.cluster)
        ]
    if not args.compare:
        return [main, *cluster]
    baselines = ("naive", "raw", "redis")
    return [main, *cluster, *(Target(name, kind=name) for name in baselines)]
