"""Helpers for the tests that run the conformance suite as a user would: a subprocess of
``python -m conformance`` against a server in this process, with its JSON report parsed."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
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


#: What a correct server configured like QUICK may still get SKIPPED for (with ``--server``),
#: and the typed reason the report gives.
EXPECTED_SKIPS = {
    "ERR-18": "not-applicable",  # --server: the suite cannot stop a server it did not start
    "FLOOD-2": "not-advertised",  # rate = 0 here; a rate-limited run covers §13
    "FLOOD-3": "not-advertised",
    "FLOOD-4": "not-advertised",
    # One server address: the §20 cases need a cluster's nodes (tests/test_conformance_cluster.py)
    **{f"CLUSTER-{n}": "not-applicable" for n in range(1, 10)},
}
#: A single node is no cluster: §20's cases need two or more (tests/test_cluster_* run them).
CLUSTER_SKIPS = {f"CLUSTER-{i}": "not-applicable" for i in range(1, 10)}
EXPECTED_SKIPS |= CLUSTER_SKIPS


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

    def with_verdict(self, *verdicts: str) -> set[str]:
        return {rid for rid, v in self.verdicts().items() if v in verdicts}

    def notes(self, rid: str) -> list[str]:
        assert self.report is not None
        return next((r["notes"] for r in self.report["requirements"] if r["id"] == rid), [])


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


@contextmanager
def served(argv: list[str], log: Path, ready_within: float = 30.0) -> Iterator[str]:
    """A server in a subprocess (``python ARGV...``, which must print ``listening on
    HOST:PORT``); yields that address, its stderr going to ``log``; SIGTERM at the end."""
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, *argv], cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True
        )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + ready_within
        line = ""
        while not line and time.monotonic() < deadline and proc.poll() is None:
            if select.select([proc.stdout], [], [], 0.2)[0]:
                line = proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"{argv} did not start: {line!r}; {log.read_text()[-2000:]}")
        yield line.removeprefix("listening on ").strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
