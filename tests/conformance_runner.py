"""Helpers for the tests that run the conformance suite as a user would: a subprocess of
``python -m conformance`` against a server in this process, with its JSON report parsed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference.server import Server, ServerConfig

REPO = Path(__file__).resolve().parent.parent

#: The reference configuration every case can run against (as `make conformance` uses).
QUICK = {
    "idle_timeout": 2.0,
    "handshake_timeout": 2.0,
    "slow_timeout": 1.0,
    "max_clients": 150,
    "max_frame": 2048,
    "max_text": 1900,
}


@dataclass
class SuiteRun:
    code: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None

    def verdicts(self) -> dict[str, str]:
        assert self.report is not None, self.stdout + self.stderr
        return {r["id"]: r["verdict"] for r in self.report["requirements"]}

    def failed(self) -> set[str]:
        return {rid for rid, v in self.verdicts().items() if v in ("FAIL", "ERROR")}


def run_suite(args: list[str], tmp: Path, timeout: float = 150) -> SuiteRun:
    out = tmp / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", *args, "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    report = json.loads(out.read_text()) if out.exists() else None
    return SuiteRun(proc.returncode, proc.stdout, proc.stderr, report)


@contextmanager
def reference(
    build: Callable[[ServerConfig], Server] = Server, **overrides: Any
) -> Iterator[Server]:
    """A server in this process on a free loopback port, configured like `make conformance`."""
    config = ServerConfig(host="127.0.0.1", port=0, **(QUICK | overrides))
    server = build(config)
    server.start()
    try:
        yield server
    finally:
        server.shutdown()


def target(server: Server) -> str:
    host, port = server.address
    return f"{host}:{port}"
