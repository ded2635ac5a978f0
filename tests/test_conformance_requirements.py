"""Every MUST and SHOULD of PROTOCOL.md that binds a server has a conformance case, and every
case names only requirements that exist (with the level the index gives them)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.registry import requirements, server_requirements

REPO = Path(__file__).resolve().parent.parent
_TAG = re.compile(r"([A-Z]+-\d+) \(([A-Z ]+)\)")


@pytest.fixture(scope="module")
def listing() -> list[tuple[str, list[tuple[str, str]]]]:
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    cases = []
    for line in proc.stdout.splitlines():
        if "::" in line:
            node, _, tags = line.partition("  ")
            cases.append((node, _TAG.findall(tags)))
    return cases


def test_every_server_must_and_should_has_a_case(
    listing: list[tuple[str, list[tuple[str, str]]]],
) -> None:
    covered = {rid for _, tags in listing for rid, _ in tags}
    missing = sorted(set(server_requirements()) - covered)
    assert not missing, f"requirements without a conformance case: {missing}"


def test_cases_name_only_known_requirements_with_their_levels(
    listing: list[tuple[str, list[tuple[str, str]]]],
) -> None:
    known = requirements()
    for node, tags in listing:
        assert tags, f"{node} names no requirement"
        for rid, level in tags:
            assert rid in known, f"{node} names unknown requirement {rid}"
            assert known[rid].level == level, f"{node}: {rid} is {known[rid].level}, not {level}"


def test_client_only_requirements_are_not_claimed(
    listing: list[tuple[str, list[tuple[str, str]]]],
) -> None:
    """A server suite cannot judge a client: no case may claim a client-only requirement."""
    known = requirements()
    claimed = {rid for _, tags in listing for rid, _ in tags if known[rid].side == "client"}
    assert not claimed
