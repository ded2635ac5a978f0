"""Interactive mode in a real pseudo-terminal (pexpect), against the reference server in this
process; the other side of each conversation is a library client."""

from __future__ import annotations

from collections.abc import Iterator

import pexpect
import pytest

from reference.client import ChatClient, ServerEvent
from reference.client.interactive import PALETTE, nick_colour
from reference.server import Server, ServerConfig
from spec.constants import LeaveReason
from spec.events import Deliver, Left, Whisper
from tests.client_procs import CLIENT, REPO, free_port, interactive_env, server

__all__ = ["server"]

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def spawn(port: int, *args: str) -> pexpect.spawn:
    child = pexpect.spawn(
        CLIENT[0],
        [*CLIENT[1:], "--port", str(port), *args],
        cwd=str(REPO),
        env=interactive_env(),
        dimensions=(30, 120),
        encoding="utf-8",
        timeout=10,
    )
    return child


@pytest.fixture
def bob(server: Server) -> Iterator[ChatClient]:
    with ChatClient.connect(*server.address, "bob", timeout=10) as client:
        yield client


def events_until(client: ChatClient, done: type, timeout: float = 10) -> list[ServerEvent]:
    """Events up to and including the first of type ``done``."""
    seen: list[ServerEvent] = []
    for event in client.events(timeout):
        seen.append(event)
        if isinstance(event, done):
            return seen
    return seen


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    status: int = child.exitstatus
    return status


def test_typing_survives_arriving_messages(server: Server, bob: ChatClient) -> None:
    child = spawn(server.address[1], "--nick", "alice")
    try:
        child.expect("you are")
        child.expect("#lobby>")
        child.send("hello wor")
        child.expect("wor")
        for i in range(3):
            bob.send("lobby", f"incoming {i}")
        bob.direct("alice", "a secret")
        for i in range(3):
            child.expect(f"> incoming {i}")
        child.expect("a secret")
        child.expect("hello wor")  # the prompt is drawn again below them, the typing kept
        child.send("ld\r")
        said = events_until(bob, Deliver)[-1]
        assert said == Deliver("lobby", 4, "alice", "hello world")
        child.expect("> hello world")  # our own message, shown as the room saw it (ECHO)

        child.send("/msg bob over here\r")
        child.expect("direct to")
        assert events_until(bob, Whisper)[-1] == Whisper("alice", "over here")

        child.send("/join rust\r")
        child.expect("you joined; 1 here:")
        child.expect("#rust>")
        bob.join("rust").wait(10)
        child.expect(" joined")
        child.send("in rust now\r")
        assert events_until(bob, Deliver)[-1].text == "in rust now"  # type: ignore[union-attr]
        child.send("/who lobby\r")
        child.expect("2 here:")
        child.send("/rooms\r")
        child.expect("rooms: ")
        child.send("/msg nobody hi\r")
        child.expect("nobody with that nick is connected")
        child.expect("#rust>")  # keys sent between two prompts would meet a cooked terminal

        child.sendcontrol("d")
        assert finish(child) == 0
        lefts = [e for e in events_until(bob, Left) if isinstance(e, Left)]
        assert lefts[-1].reason == LeaveReason.QUIT and lefts[-1].text == "bye"
    finally:
        child.close(force=True)


def test_history_recalls_earlier_lines(server: Server, bob: ChatClient) -> None:
    child = spawn(server.address[1], "--nick", "alice")
    try:
        child.expect("#lobby>")
        child.send("first line\r")
        assert events_until(bob, Deliver)[-1].text == "first line"  # type: ignore[union-attr]
        child.expect("> first line")
        child.expect("#lobby>")
        child.send("\x1b[A")  # arrow up
        child.expect("first line")
        child.send("\r")
        assert events_until(bob, Deliver)[-1] == Deliver("lobby", 2, "alice", "first line")
        child.send("/quit see you\r")
        assert finish(child) == 0
        lefts = [e for e in events_until(bob, Left) if isinstance(e, Left)]
        assert lefts[-1] == Left("lobby", "alice", LeaveReason.QUIT, "see you")
    finally:
        child.close(force=True)


def test_nick_is_asked_for_and_asked_again(server: Server, bob: ChatClient) -> None:
    child = spawn(server.address[1])
    try:
        child.expect("your nick:")
        child.send("BOB\r")
        child.expect("is taken")
        child.expect("your nick:")
        child.send("no way\r")
        child.expect("cannot be a nick")
        child.expect("your nick:")
        child.send("carol\r")
        child.expect("you are")
        child.expect("#lobby>")
        child.sendcontrol("c")
        assert finish(child) == 0
        lefts = [e for e in events_until(bob, Left) if isinstance(e, Left)]
        assert lefts[-1] == Left("lobby", "carol", LeaveReason.QUIT, "bye")
    finally:
        child.close(force=True)


def test_server_shutdown_is_reported_in_one_line() -> None:
    with Server(ServerConfig(host="127.0.0.1", port=0)) as server:
        child = spawn(server.address[1], "--nick", "alice")
        try:
            child.expect("#lobby>")
            server.shutdown()
            child.expect("the server is shutting down")
            assert finish(child) == 5
        finally:
            child.close(force=True)


def test_refused_connection_is_one_line_and_non_zero() -> None:
    port = free_port()
    child = spawn(port, "--nick", "alice")
    try:
        child.expect(f"error: cannot connect to 127.0.0.1:{port}: Connection refused")
        assert finish(child) == 3
    finally:
        child.close(force=True)


def test_nick_colours_are_stable_and_case_blind() -> None:
    assert nick_colour("Alice") == nick_colour("alice") == nick_colour("ALICE")
    assert nick_colour("alice") in PALETTE
    assert len({nick_colour(f"user{i}") for i in range(100)}) > len(PALETTE) // 2
