"""Every invariant the README says the conformance suite checks is tied to requirement IDs, a
conformance case that judges them, and a broken server of the zoo that the suite fails for them
(so the check exists and can fail)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.zoo.concurrency_servers import CONCURRENCY_ZOO
from tests.zoo.servers import ZOO

README = Path(__file__).resolve().parent.parent / "README.md"

#: README's name of each invariant -> the requirements that state it.
INVARIANTS = {
    "exactly once": {"ORD-3"},
    "no echo": {"MSG-7"},
    "ECHO placement": {"MSG-13"},
    "one order per room": {"ORD-2"},
    "contiguous sequence numbers": {"ORD-5", "ORD-1"},
    "room isolation": {"ORD-12"},
    "direct messages to their addressee only": {"MSG-10"},
    "presence": {"PRES-1", "PRES-4"},
    "the PING barrier": {"ORD-10"},
    "nick uniqueness": {"NICK-3"},
    "slow-consumer handling": {"SLOW-1", "SLOW-6"},
}


def _named_in_readme() -> list[str]:
    text = " ".join(README.read_text(encoding="utf-8").split())
    found = re.search(r"and invariants \(([^)]*)\) are checked", text)
    assert found, "the README no longer lists the invariants the suite checks"
    return [name.strip() for name in found.group(1).split(",")]


def _claimed_by_cases() -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "--list"],
        cwd=README.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return set(re.findall(r"([A-Z]+-\d+) \(", proc.stdout))


def test_every_invariant_the_readme_names_is_mapped() -> None:
    assert sorted(_named_in_readme()) == sorted(INVARIANTS)


def test_every_invariant_is_judged_by_a_case_and_failed_by_a_broken_server() -> None:
    claimed = _claimed_by_cases()
    failed = {rid for s in ZOO + CONCURRENCY_ZOO for rid in s.expected}
    for name, ids in INVARIANTS.items():
        assert ids <= claimed, f"{name}: no case judges {sorted(ids - claimed)}"
        assert ids <= failed, f"{name}: no broken server is failed for {sorted(ids - failed)}"
