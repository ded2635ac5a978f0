"""``python -m reference.server``: run the reference server until SIGINT or SIGTERM.

Prints exactly one line, ``listening on HOST:PORT``, to stdout once it accepts connections;
everything else goes to the log (stderr). Bad flags: one line on stderr, exit status 2.

This process runs nothing but the server, so it opts in to process-wide tuning
(``reference.server.tuning``); an embedded ``Server`` gets none.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import signal
import sys
from typing import TYPE_CHECKING, NoReturn

from spec import fastpath

from .config import ServerConfig
from .core import Server
from .tuning import ProcessTuning

#: Signals that stop the server. The kernel may deliver one to any thread, and CPython runs
#: Python handlers only in the main thread once it holds the GIL (which it may wait seconds
#: for behind thousands of busy threads). So nothing waits for a Python handler: the C-level
#: handler writes the signal's number to the server's stop pipe (``signal.set_wakeup_fd``),
#: from whichever thread it interrupted, without the GIL. Busy handler threads see the pipe at
#: once and end their sessions; the main thread waits on it in ``poll``, then shuts down.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: KiB of stack per thread by default (every server test passes at 32, the smallest CPython
#: allows; only the pages touched cost memory).
THREAD_STACK_KIB = 128

log = logging.getLogger("reference.server")

if TYPE_CHECKING:
    from ..cluster import ClusterNode


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    d = ServerConfig()
    p = _Parser(
        prog="python -m reference.server",
        description="The reference chatwire/1 server. Prints 'listening on HOST:PORT' when "
        "ready; stops on SIGINT or SIGTERM after sending every client SERVER_SHUTDOWN.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = p.add_argument
    add("--host", default="127.0.0.1", help="address to listen on")
    add("--port", type=int, default=5000, help="TCP port; 0 picks a free one")
    add("--max-clients", type=int, default=d.max_clients, help="connections held at once")
    add("--max-frame", type=int, default=d.max_frame, help="largest frame, bytes")
    add("--max-text", type=int, default=d.max_text, help="longest message text, bytes")
    add("--max-rooms", type=int, default=d.max_rooms, help="rooms per client, lobby included")
    add("--idle-timeout", type=float, default=d.idle_timeout, help="seconds; 0 = none")
    add("--handshake-timeout", type=float, default=d.handshake_timeout, help="seconds")
    add("--out-limit", type=int, default=d.out_limit, help="pending output bytes per client")
    add("--slow-timeout", type=float, default=d.slow_timeout, help="seconds congested before cut")
    add("--rate", type=int, default=d.rate, help="flood limit, messages/s; 0 = off")
    add("--burst", type=int, default=d.burst, help="flood bucket size; 0 = same as rate")
    add("--drain-time", type=float, default=d.drain_time, help="seconds to drain when closing")
    add(
        "--max-handshakes",
        type=int,
        default=d.max_handshakes,
        help="connections still in the handshake at once (0: max-clients/4, at least 64); "
        "a new one past it ends the oldest handshake",
    )
    add(
        "--max-per-address",
        type=int,
        default=d.max_per_address,
        help="connections from one IP address at once; 0 = no limit",
    )
    add("--backlog", type=int, default=d.backlog, help="listen backlog")
    add("--thread-stack-size", type=int, default=THREAD_STACK_KIB, help="KiB per thread")
    add("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    add("--cluster", metavar="URL", help="join a cluster on Redis at redis://HOST:PORT[/DB]")
    add("--node-name", default="node", help="this node's name in the cluster (logs, keys)")
    return p


def _config(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig the flags describe (the CLI-only flags are read elsewhere)."""
    return ServerConfig(
        host=args.host,
        port=args.port,
        max_clients=args.max_clients,
        max_frame=args.max_frame,
        max_text=args.max_text,
        max_rooms=args.max_rooms,
        idle_timeout=args.idle_timeout,
        handshake_timeout=args.handshake_timeout,
        out_limit=args.out_limit,
        slow_timeout=args.slow_timeout,
        rate=args.rate,
        burst=args.burst,
        drain_time=args.drain_time,
        backlog=args.backlog,
        max_handshakes=args.max_handshakes,
        max_per_address=args.max_per_address,
    )


def _raise_fd_limit(max_clients: int) -> None:
    """Each client is a descriptor: allow as many as the hard limit does, and say so if that
    is fewer than max-clients (clients past it are then refused with SERVER_FULL)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < max_clients + 100:
        log.info(
            "descriptor limit %d leaves room for about %d clients, fewer than --max-clients %d",
            hard,
            max(0, hard - 100),
            max_clients,
        )


def _cluster_node(
    parser: argparse.ArgumentParser, args: argparse.Namespace, config: ServerConfig
) -> ClusterNode:
    from ..cluster import ClusterNode, RedisAddress

    try:
        return ClusterNode(config, RedisAddress.parse(args.cluster), args.node_name)
    except ValueError as exc:
        parser.error(str(exc))


def _announce(host: str, port: int) -> None:
    """The one line on stdout. If whoever started the server has stopped reading (``| head
    -1``), serve on: what would go to stdout goes nowhere instead."""
    try:
        print(f"listening on {host}:{port}", flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        log.info("stdout is closed: listening on %s:%d", host, port)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    level = logging.getLevelName(str(args.log_level).upper())
    if not isinstance(level, int):
        parser.error(f"unknown log level {args.log_level!r}")
    if args.thread_stack_size != 0 and args.thread_stack_size < 32:
        parser.error("thread-stack-size must be 0 (default) or at least 32 KiB")
    config = _config(args)
    try:
        config.validate()
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    _raise_fd_limit(config.max_clients)
    tuning = ProcessTuning(args.thread_stack_size)
    tuning.apply()
    node = _cluster_node(parser, args, config) if args.cluster else None
    server = node.server if node is not None else Server(config)
    server.tuning = tuning
    try:
        if node is not None:  # wait a little for Redis; serve anyway (CLUSTER_UNAVAILABLE)
            node.start(wait_up=5.0)
        else:
            server.start()
    except OSError as exc:
        print(
            f"{parser.prog}: cannot listen on {args.host}:{args.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    # From here on the server runs: whatever happens, SIGTERM and the end of main stop it (its
    # flusher thread would otherwise keep the process alive, deaf to SIGTERM).
    try:
        for signum in STOP_SIGNALS:  # a Python handler, so that the C one runs (and not death)
            signal.signal(signum, lambda *_: None)
        signal.set_wakeup_fd(server.stop_fd)
        log.info(
            "SEND scanner and batch builder: %s",
            "the compiled twins (spec/_speedups.c)" if fastpath.COMPILED else "pure Python",
        )
        _announce(*server.address)
        server.wait_stop()
        log.info("stop requested: shutting down")
    finally:
        if node is not None:
            node.stop()  # the others see this node's members leave (SHUTDOWN)
        else:
            server.shutdown()
        tuning.after_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
