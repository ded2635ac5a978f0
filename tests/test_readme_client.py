"""The README's examples for the scripted client and the library, run as written (only the
port changes: the server under test listens on a free one instead of 5000)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from reference.client.commands import HELP
from reference.server import Server
from tests.client_procs import REPO, ScriptedClient, server

__all__ = ["server"]

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

SECTION = "## Chatting by hand with two terminals"


def client_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block in the README's client section."""
    readme = (REPO / "README.md").read_text()
    start = readme.index(SECTION)
    end = readme.index("\n## ", start + len(SECTION))
    return re.findall(r"```(\w*)\n(.*?)```", readme[start:end], re.DOTALL)


def on_port(text: str, port: int) -> str:
    assert "5000" in text
    return text.replace("5000", str(port))


def test_every_client_block_is_run_here() -> None:
    blocks = client_blocks()
    interactive = [b for b in blocks if "make client" in b[1]]
    # One interactive block (people, not tests, type into it), the scripted run with its
    # output and the other client's output, and the library example with its output.
    assert len(interactive) == 1 and len(blocks) == 5, blocks
    assert [lang for lang, _ in blocks] == ["sh", "sh", "", "python", ""]


def test_scripted_example_prints_what_the_readme_shows(server: Server) -> None:
    _, (_, scripted), (_, bob_says), _, _ = client_blocks()
    command, *expected = scripted.strip().splitlines()
    port = server.address[1]
    command = on_port(command, port).replace(".venv/bin/python", sys.executable)
    bob = ScriptedClient(port, "--nick", "bob")
    try:
        bob.expect("welcome bob lobby bob")
        done = subprocess.run(
            ["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == expected
        bob.expect("left lobby bot quit bye")
        assert bob.finish() == 0
        assert bob.seen == bob_says.strip().splitlines()
    finally:
        bob.kill()


def test_library_example_runs_and_its_event_loop_ends_when_quiet(server: Server) -> None:
    *_, (_, code), (_, printed) = client_blocks()
    code = on_port(code, server.address[1])
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == printed


def test_the_command_table_is_the_help_text() -> None:
    readme = (REPO / "README.md").read_text()
    table = re.findall(r"^\| `(/[^`]+)` \|", readme, re.MULTILINE)
    helped = re.findall(r"^  (/\S+(?: [A-Z\[\]]+)*)", HELP, re.MULTILINE)
    assert table == helped
