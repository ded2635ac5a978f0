"""Each broken server of the zoo is failed by the conformance suite for exactly the
requirements its fault breaks — and for no unrelated one, and never with a harness ERROR."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference.server import Server, ServerConfig
from tests.conformance_runner import reference, run_suite, target
from tests.zoo.servers import ZOO, NeverPingsSession, Specimen

pytestmark = [pytest.mark.network]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("specimen", ZOO, ids=[s.name for s in ZOO])
def test_suite_names_the_fault(specimen: Specimen, tmp_path: Path) -> None:
    args = ["--clients", "10", "--seed", "3", "--timeout-scale", str(specimen.scale)]
    for pattern in specimen.only:
        args += ["--only", pattern]
    with reference(specimen.build, **specimen.config) as server:
        run = run_suite(["--server", target(server), *args], tmp_path)
    assert run.report is not None, run.stdout + run.stderr
    verdicts = run.verdicts()
    errors = {rid for rid, v in verdicts.items() if v == "ERROR"}
    assert not errors, f"harness errors: {errors}\n{run.stdout[-2000:]}"
    failed = {rid for rid, v in verdicts.items() if v == "FAIL"}
    assert failed == specimen.expected, (
        f"{specimen.name}: missed {sorted(specimen.expected - failed)},"
        f" unrelated {sorted(failed - specimen.expected)}\n{run.stdout[-3000:]}"
    )
    assert run.code == 1


def test_the_zoo_is_big_enough() -> None:
    assert len(ZOO) >= 10
    assert len({s.name for s in ZOO}) == len(ZOO)
    assert all(s.expected for s in ZOO)


def _never_pings(config: ServerConfig) -> Server:
    return Server(config, session_class=NeverPingsSession)


@pytest.mark.timeout(60)
def test_a_missed_should_is_non_strict_and_fails_only_with_strict(tmp_path: Path) -> None:
    with reference(_never_pings) as server:
        lenient = run_suite(["--server", target(server), "--only", "KEEP-8"], tmp_path)
    assert lenient.verdicts() == {"KEEP-8": "NON-STRICT"}, lenient.stdout
    assert lenient.code == 0
    with reference(_never_pings) as server:
        strict = run_suite(["--server", target(server), "--only", "KEEP-8", "--strict"], tmp_path)
    assert strict.verdicts() == {"KEEP-8": "NON-STRICT"} and strict.code == 1, strict.stdout
