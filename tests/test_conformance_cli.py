"""The ``python -m conformance`` front end: the preflight probe (exit 2 with one line),
listing and selection, and the reports (JSON schema keys, JUnit, terminal summary)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reference.server import Server
from tests.conformance_runner import REPO, reference, run_suite, target

pytestmark = [pytest.mark.network]


def conformance(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def listener() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """A loopback listener whose connections get ``handler``; yields its HOST:PORT."""
    socks: list[socket.socket] = []

    def start(handler: Callable[[socket.socket], None]) -> str:
        lsock = socket.create_server(("127.0.0.1", 0))
        socks.append(lsock)

        def loop() -> None:
            while True:
                try:
                    conn, _ = lsock.accept()
                except OSError:
                    return
                threading.Thread(target=handler, args=(conn,), daemon=True).start()

        threading.Thread(target=loop, daemon=True).start()
        return f"127.0.0.1:{lsock.getsockname()[1]}"

    yield start
    for s in socks:
        s.close()


def _http(conn: socket.socket) -> None:
    with conn:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def _silent(conn: socket.socket) -> None:
    with conn:
        while conn.recv(4096):
            pass


def _one_line_exit_2(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert proc.stdout == ""


@pytest.mark.timeout(60)
def test_preflight_refuses_a_closed_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    _one_line_exit_2(conformance("--server", f"127.0.0.1:{port}"), "cannot connect")


@pytest.mark.timeout(60)
def test_preflight_refuses_a_non_chatwire_peer(
    listener: Callable[[Callable[[socket.socket], None]], str],
) -> None:
    _one_line_exit_2(conformance("--server", listener(_http)), "not a chatwire/1 server")
    silent = conformance("--server", listener(_silent), "--timeout-scale", "0.2")
    _one_line_exit_2(silent, "did not answer HELLO")


@pytest.mark.timeout(60)
def test_bad_usage_exits_2() -> None:
    _one_line_exit_2(conformance(), "no target")
    _one_line_exit_2(conformance("--server", "nonsense"), "not a HOST:PORT")
    _one_line_exit_2(conformance("--launch", "false"), "exited with code 1")


@pytest.mark.timeout(60)
def test_list_shows_cases_with_ids_and_levels() -> None:
    proc = conformance("--list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(
        "test_malformed_input[length-zero-first-frame]" in x and "MAL-1 (MUST)" in x for x in lines
    )
    assert any("KEEP-8 (SHOULD)" in x for x in lines)
    assert lines[-1].endswith(" cases") and int(lines[-1].split()[0]) == len(lines) - 1


@pytest.mark.timeout(60)
def test_only_and_skip_select_by_glob_and_section() -> None:
    only = conformance("--list", "--only", "MAL-1*", "--skip", "MAL-10").stdout.splitlines()[:-1]
    assert only and all("MAL-1" in x for x in only)
    assert not any("unknown-type" in x and "after-welcome" in x for x in only)
    section = conformance("--list", "--only", "8.2").stdout.splitlines()[:-1]
    assert section and all("ORD-2" in x for x in section)
    bad = conformance("--list", "--only", "NOPE-*")
    assert bad.returncode == 2 and "NOPE-*" in bad.stdout + bad.stderr


@pytest.mark.timeout(120)
def test_reports_json_junit_and_exit_code(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    with reference() as server:
        run = run_suite(
            [
                "--server",
                target(server),
                "--only",
                "KEEP-2,KEEP-4,HS-3",
                "--seed",
                "7",
                "--repeat",
                "2",
                "--junitxml",
                str(junit),
            ],
            tmp_path,
        )
    assert run.code == 0, run.stdout + run.stderr
    assert "3 requirements: 3 PASS" in run.stdout and "seed 7" in run.stdout
    report = run.report
    assert report is not None
    assert (report["schema"], report["schema_version"]) == ("chatwire-conformance-report", 1)
    assert set(report) == {"schema", "schema_version", "run", "summary", "requirements", "cases"}
    r = report["run"]
    for key in (
        "target",
        "launched",
        "suite_version",
        "spec_version",
        "spec_sha256",
        "python",
        "platform",
        "seed",
        "options",
        "started_at",
        "finished_at",
        "duration_s",
        "exit_code",
        "server",
    ):
        assert key in r, key
    assert r["seed"] == 7 and r["options"]["repeat"] == 2 and r["spec_version"] == "chatwire/1"
    assert r["server"]["idle_timeout_ms"] == 2000
    assert set(report["summary"]["verdicts"]) == {"PASS", "FAIL", "NON-STRICT", "SKIPPED", "ERROR"}
    req = report["requirements"][0]
    assert set(req) >= {
        "id",
        "level",
        "side",
        "section",
        "summary",
        "verdict",
        "runs",
        "passed_runs",
        "intermittent",
        "cases",
        "notes",
    }
    assert all(x["runs"] == x["passed_runs"] == 2 for x in report["requirements"])
    case = report["cases"][0]
    assert set(case) >= {
        "id",
        "name",
        "description",
        "requirements",
        "run",
        "verdict",
        "requirement_verdicts",
        "duration_s",
        "observed",
    }
    assert json.dumps(report)  # serialisable as a whole
    tree = ET.parse(junit)
    props = {p.get("name") for p in tree.iter("property")}
    assert {"verdict", "requirements"} <= props


class _Vanishing(Server):
    """Stops listening for good after its 30th connection: the target goes away mid-run."""

    def _admit(self, sock: socket.socket, peer: str) -> None:
        self.admitted = getattr(self, "admitted", 0) + 1
        super()._admit(sock, peer)
        if self.admitted == 30:
            threading.Thread(target=self.shutdown, daemon=True).start()


@pytest.mark.timeout(90)
def test_target_that_goes_away_mid_run_exits_2(tmp_path: Path) -> None:
    with reference(_Vanishing) as server:
        run = run_suite(["--server", target(server), "--only", "14"], tmp_path)
    assert run.code == 2, run.stdout[-2000:]
    assert "target became unreachable" in run.stdout
