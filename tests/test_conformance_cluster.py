"""The whole conformance suite against three reference nodes on one real Redis, launched by
the suite itself so that the §20 cases can freeze one node and shut another down: no FAIL, no
harness ERROR, nothing SKIPPED but the flood-limit cases (PROTOCOL.md §20 CLUSTER-1)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from redisproc import RedisServer
from tests.conformance_runner import EXPECTED_SKIPS, run_suite

pytestmark = [pytest.mark.network]

#: As `make conformance` runs the reference, but for two settings. The idle timeout: a DIRECT
#: crosses Redis, so a flood congests the stalled client of the §12 DIRECT case more slowly
#: than on one node, and it must be cut for being slow before it is cut for being idle. The
#: client limit is per node: 60 each, so the 200 clients of the SERVER_FULL case fill them.
NODE = (
    f"{sys.executable} -m reference.server --port 0 --idle-timeout 4 --handshake-timeout 2"
    " --slow-timeout 1 --max-clients 60 --max-frame 2048 --max-text 1900 --log-level WARNING"
)


@pytest.mark.timeout(240)
def test_full_suite_passes_against_a_three_node_cluster(tmp_path: Path) -> None:
    with RedisServer() as redis:
        launch = [
            arg
            for i in range(1, 4)
            for arg in ("--launch", f"{NODE} --cluster {redis.url} --node-name n{i}")
        ]
        run = run_suite([*launch, "--clients", "16", "--seed", "3"], tmp_path, timeout=220)
    assert run.code == 0, run.stdout[-3000:] + run.stderr
    verdicts = run.verdicts()
    skipped = {rid for rid, v in verdicts.items() if v == "SKIPPED"}
    assert skipped == {rid for rid in EXPECTED_SKIPS if rid.startswith("FLOOD")}
    assert {v for rid, v in verdicts.items() if rid not in skipped} == {"PASS"}
