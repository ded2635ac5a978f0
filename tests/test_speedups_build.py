"""``python -m spec._speedups_build``: optional, so it never fails the build; it says in one
line what it did, rebuilds only a stale module, and ``--check`` tells whether it is built."""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

import pytest

from spec import _speedups_build as speedups


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The build script pointed at a copy of the C source in a temporary directory."""
    shutil.copy(speedups.SOURCE, tmp_path / "_speedups.c")
    monkeypatch.setattr(speedups, "HERE", tmp_path)
    monkeypatch.setattr(speedups, "SOURCE", tmp_path / "_speedups.c")
    return tmp_path


def test_without_a_compiler_it_says_so_and_succeeds(
    scratch: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = sysconfig.get_config_var
    monkeypatch.setattr(
        sysconfig,
        "get_config_var",
        lambda name: "no-such-cc-here" if name == "CC" else real(name),
    )
    assert speedups.main([]) == 0
    assert capsys.readouterr().out == (
        "speedups: no C compiler (no-such-cc-here): the pure-Python path is used\n"
    )
    assert speedups.main(["--check"]) == 1
    assert "is not built" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler here")
def test_it_builds_once_and_then_only_when_the_source_changes(scratch: Path) -> None:
    assert speedups.build().startswith("speedups: built _speedups")
    assert speedups.build().endswith("is up to date")
    assert speedups.main(["--check"]) == 0
    later = speedups.target().stat().st_mtime + 5
    os.utime(speedups.SOURCE, (later, later))
    assert speedups.build().startswith("speedups: built _speedups")
