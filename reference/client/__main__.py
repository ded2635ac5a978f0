"""``python -m reference.client``: chat with a chatwire/1 server.

Interactive when stdin is a terminal, scripted otherwise (see :mod:`.scripted` and the output
format in :mod:`.formats`). Exit statuses are listed in :mod:`.status`.
"""

from __future__ import annotations

import argparse
import io
import sys

from .chat import Endpoint
from .status import EXIT_USAGE


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not in 1..65535")
    return port


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reference.client",
        description="Chat with a chatwire/1 server. Interactive when stdin is a terminal; "
        "otherwise every input line is sent and every event is printed as one line.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="server address (127.0.0.1)")
    parser.add_argument("--port", type=_port, default=5000, help="server port (5000)")
    parser.add_argument("--nick", help="your nick (asked for when interactive)")
    parser.add_argument("--json", action="store_true", help="scripted: print JSON lines")
    parser.add_argument(
        "--reconnect",
        action="store_true",
        help="when the connection is lost, reconnect with back-off and re-join the rooms",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for connect and HELLO (10)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if sys.stdin.isatty():
        from .interactive import run as run_interactive

        status: int = run_interactive(args.host, args.port, args.nick, args.reconnect, args.timeout)
        return status
    if not args.nick:
        print("error: --nick is required when input is not a terminal", file=sys.stderr)
        return EXIT_USAGE
    from .scripted import run as run_scripted

    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(encoding="utf-8", errors="replace")
    endpoint = Endpoint(args.host, args.port, args.nick, timeout=args.timeout)
    return run_scripted(endpoint, args.json, args.reconnect)


if __name__ == "__main__":
    sys.exit(main())
