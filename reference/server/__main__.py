"""``python -m reference.server``: run the reference server until SIGINT or SIGTERM.

Prints exactly one line, ``listening on HOST:PORT``, to stdout once it accepts connections;
everything else goes to the log (stderr). Bad flags: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import gc
import logging
import resource
import signal
import sys
import threading
from typing import TYPE_CHECKING, NoReturn

from .config import ServerConfig
from .core import Server

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
    add("--backlog", type=int, default=d.backlog, help="listen backlog")
    add("--thread-stack-size", type=int, default=d.thread_stack_size, help="KiB per thread")
    add("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    add("--cluster", metavar="URL", help="join a cluster on Redis at redis://HOST:PORT[/DB]")
    add("--node-name", default="node", help="this node's name in the cluster (logs, keys)")
    return p


def _raise_fd_limit(max_clients: int) -> None:
    """Each client is a descriptor: allow as many as the hard limit does, and say so if that
    is fewer than max-clients (the accept loop then backs off and clients wait in the
    backlog instead of getting SERVER_FULL)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < max_clients + 100:
        logging.getLogger("reference.server").info(
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


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    level = logging.getLevelName(str(args.log_level).upper())
    if not isinstance(level, int):
        parser.error(f"unknown log level {args.log_level!r}")
    config = ServerConfig(
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
        thread_stack_size=args.thread_stack_size,
    )
    try:
        config.validate()
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    _raise_fd_limit(config.max_clients)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    node = _cluster_node(parser, args, config) if args.cluster else None
    server = node.server if node is not None else Server(config)
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
    host, port = server.address
    print(f"listening on {host}:{port}", flush=True)
    try:
        stop.wait()
    finally:
        if node is not None:
            node.stop()  # the others see this node's members leave (SHUTDOWN)
        else:
            server.shutdown()
        # Every thread is joined and every socket closed. What is left is the sessions'
        # objects, in reference cycles: leave them to the process's exit rather than to a
        # last cyclic collection at interpreter teardown (0.2 s at 15,000 clients).
        gc.freeze()
    return 0


if __name__ == "__main__":
    sys.exit(main())
