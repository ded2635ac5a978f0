"""What both baselines share: the command line, the ready line and a clean SIGTERM."""

from __future__ import annotations

import argparse
import signal
import socket
import sys
from types import FrameType


def listen(description: str, argv: list[str] | None = None) -> socket.socket:
    """Parse ``--host/--port``, bind, listen, and print the ready line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((args.host, args.port))
    except OSError as exc:
        parser.exit(2, f"cannot listen on {args.host}:{args.port}: {exc.strerror}\n")
    server.listen(4096)
    host, port = server.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    return server


def exit_on_sigterm() -> None:
    def stop(signum: int, frame: FrameType | None) -> None:
        sys.stdout.flush()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
