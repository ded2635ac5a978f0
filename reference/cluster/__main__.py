"""``python -m reference.cluster``: Redis and N server nodes on consecutive ports, for trying
a cluster by hand (``make cluster``; then ``make client PORT=5002``) until Ctrl-C.

Prints one line per node, ``node n1 listening on 127.0.0.1:5001``; the nodes log to stderr.
Ctrl-C (or SIGTERM) shuts every node down (their clients get SERVER_SHUTDOWN), then Redis.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import threading

_LISTENING = re.compile(r"listening on (\S+:\d+)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference.cluster", description=__doc__)
    parser.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")
    parser.add_argument("--base-port", type=int, default=5001, help="node 1's port")
    parser.add_argument("--redis", metavar="URL", help="use this Redis instead of starting one")
    parser.add_argument("--host", default="127.0.0.1", help="address the nodes listen on")
    args, node_args = parser.parse_known_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.nodes < 1:
        parser.error("--nodes must be at least 1")
    redis = None
    url = args.redis
    if url is None:
        from redisproc import RedisNotFound, RedisServer  # a dev tool: only when starting one

        try:
            redis = RedisServer().start()
        except (RedisNotFound, RuntimeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        url = redis.url
    print(f"redis {url}", flush=True)
    nodes: list[subprocess.Popen[str]] = []
    try:
        for i in range(1, args.nodes + 1):
            command = [
                sys.executable, "-m", "reference.server", "--host", args.host,
                "--port", str(args.base_port + i - 1), "--cluster", url, "--node-name", f"n{i}",
                *node_args,
            ]  # fmt: skip
            node = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            nodes.append(node)
            assert node.stdout is not None
            found = _LISTENING.search(node.stdout.readline())
            if found is None:
                print(f"error: node n{i} did not start (exit {node.wait()})", file=sys.stderr)
                return 1
            print(f"node n{i} listening on {found.group(1)}", flush=True)
        stop.wait()
    finally:
        for node in nodes:
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
        for node in nodes:
            node.wait(15)
        if redis is not None:
            redis.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
