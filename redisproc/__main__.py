"""``python -m redisproc [--port P]``: a loopback redis-server in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys

from redisproc.process import RedisNotFound, RedisServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m redisproc", description=__doc__)
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    args = parser.parse_args(argv)
    try:
        server = RedisServer(args.host)
        server.start(args.port)
    except (RedisNotFound, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(server.url, flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
