"""The reference server passes the whole conformance suite (the suite's first proof: a correct
server gets no FAIL, NON-STRICT or ERROR), in the configurations that let every case run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conformance_runner import CLUSTER_SKIPS, EXPECTED_SKIPS, reference, run_suite, target

pytestmark = [pytest.mark.network]


@pytest.mark.timeout(180)
def test_full_suite_passes_against_the_reference(tmp_path: Path) -> None:
    with reference() as server:
        run = run_suite(["--server", target(server), "--seed", "1"], tmp_path)
    assert run.code == 0, run.stdout[-3000:] + run.stderr
    verdicts = run.verdicts()
    skipped = {rid for rid, v in verdicts.items() if v == "SKIPPED"}
    assert skipped == set(EXPECTED_SKIPS), run.stdout[-3000:]
    assert {v for rid, v in verdicts.items() if rid not in skipped} == {"PASS"}
    assert run.report is not None
    for req in run.report["requirements"]:
        if req["id"] in EXPECTED_SKIPS:
            assert any(f"[{EXPECTED_SKIPS[req['id']]}]" in n for n in req["notes"]), req


@pytest.mark.timeout(180)
def test_full_suite_passes_against_a_rate_limited_reference(tmp_path: Path) -> None:
    """With a flood limit on, §13 is judged, and no other case trips over the limit: the
    cases keep to it, and the §12 floods use as many senders as it takes, each within its
    bucket, so a rate-limited server's overload behaviour is judged too."""
    with reference(rate=50, burst=20) as server:
        run = run_suite(["--server", target(server), "--seed", "2"], tmp_path)
    assert run.code == 0, run.stdout[-3000:] + run.stderr
    verdicts = run.verdicts()
    assert {verdicts[f"FLOOD-{i}"] for i in (2, 3, 4)} == {"PASS"}
    skipped = {rid for rid, v in verdicts.items() if v == "SKIPPED"}
    assert skipped == {"FLOOD-1", "ERR-18", *CLUSTER_SKIPS}
    assert {v for rid, v in verdicts.items() if rid not in skipped} == {"PASS"}


@pytest.mark.timeout(60)
def test_shutdown_case_with_a_launched_reference(tmp_path: Path) -> None:
    command = f"{sys.executable} -m reference.server --port 0 --handshake-timeout 2"
    run = run_suite(["--launch", command, "--only", "ERR-18,KEEP-2"], tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    assert run.verdicts() == {"ERR-18": "PASS", "KEEP-2": "PASS"}
