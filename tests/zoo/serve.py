"""``python -m tests.zoo.serve NAME``: run one broken server of the zoo in its own process.

Configured like ``make conformance`` (plus the specimen's own settings), on a free loopback
port. Prints ``listening on HOST:PORT`` once it accepts connections, like the reference server,
and stops on SIGTERM or SIGINT. Each zoo run gets its own process so that several runs at once
do not share one interpreter lock (the cases that time the server would feel it).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from reference.server import ServerConfig
from tests.conformance_runner import QUICK
from tests.zoo.concurrency_servers import CONCURRENCY_ZOO
from tests.zoo.servers import ZOO


def main(argv: list[str] | None = None) -> int:
    names = {s.name: s for s in ZOO + CONCURRENCY_ZOO}
    parser = argparse.ArgumentParser(prog="python -m tests.zoo.serve")
    parser.add_argument("name", choices=sorted(names), help="the broken server to run")
    args = parser.parse_args(argv)
    specimen = names[args.name]
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    config = ServerConfig(host="127.0.0.1", port=0, **(QUICK | specimen.config))
    server = specimen.build(config)
    server.start()
    host, port = server.address
    print(f"listening on {host}:{port}", flush=True)
    try:
        while not stop.wait(0.5):  # a timed wait: signal handlers run in between
            pass
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
