"""Interactive mode in a real pseudo-terminal (pexpect), against the reference server in this
process; the other side of each conversation is a library client."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pexpect
import pytest

from reference.client import ChatClient
from reference.client.render import PALETTE, nick_colour
from reference.server import Server, ServerConfig
from spec.constants import LeaveReason
from spec.events import Deliver, Joined, Left, Whisper
from tests.client_procs import (
    CLIENT,
    REPO,
    Relay,
    free_port,
    http_server,
    interactive_env,
    server,
)

__all__ = ["server"]

E = TypeVar("E")

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


@contextlib.contextmanager
def terminal(port: int, *args: str) -> Iterator[pexpect.spawn]:
    """The interactive client for ``port`` in a pseudo-terminal, killed at the end unless it
    has ended by then."""
    child = pexpect.spawn(
        CLIENT[0],
        [*CLIENT[1:], "--port", str(port), *args],
        cwd=str(REPO),
        env=interactive_env(),
        dimensions=(30, 120),
        encoding="utf-8",
        timeout=20,
    )
    try:
        yield child
    finally:
        child.close(force=True)


@pytest.fixture
def bob(server: Server) -> Iterator[ChatClient]:
    with ChatClient.connect(*server.address, "bob", timeout=10) as client:
        yield client


@pytest.fixture
def alice(server: Server) -> Iterator[pexpect.spawn]:
    """The interactive client as alice, at its first prompt (name it after ``bob``, so that
    bob is connected first)."""
    with terminal(server.address[1], "--nick", "alice") as child:
        child.expect("you are")
        child.expect("#lobby>")
        yield child


def leave(child: pexpect.spawn, prompt: str = "#lobby>") -> None:
    """At the next ``prompt``, Ctrl-D: the client must end with status 0."""
    child.expect(prompt)
    child.sendcontrol("d")
    assert finish(child) == 0


def next_of(client: ChatClient, kind: type[E], timeout: float = 10) -> E:
    """The next event of type ``kind``, skipping others."""
    for event in client.events(timeout):
        if isinstance(event, kind):
            return event
    raise AssertionError(f"the session ended before a {kind.__name__}")


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    status: int = child.exitstatus
    return status


def test_typing_survives_arriving_messages(bob: ChatClient, alice: pexpect.spawn) -> None:
    alice.send("hello wor")
    alice.expect("wor")
    for i in range(3):
        bob.send("lobby", f"incoming {i}")
    bob.direct("alice", "a secret")
    for i in range(3):
        alice.expect(f"> incoming {i}")
    alice.expect("a secret")
    alice.expect("hello wor")  # the prompt is drawn again below them, the typing kept
    alice.send("ld\r")
    said = next_of(bob, Deliver)
    assert said == Deliver("lobby", 4, "alice", "hello world")
    alice.expect("> hello world")  # our own message, shown as the room saw it (ECHO)

    alice.send("/msg bob over here\r")
    alice.expect("direct to")
    assert next_of(bob, Whisper) == Whisper("alice", "over here")

    alice.send("/join rust\r")
    alice.expect(r"you joined \(plain lines go here now\); 1 here:")
    alice.expect("#rust>")
    bob.join("rust").wait(10)
    alice.expect(" joined")
    alice.send("in rust now\r")
    assert next_of(bob, Deliver).text == "in rust now"
    alice.send("/who lobby\r")
    alice.expect("2 here:")
    alice.send("/rooms\r")
    alice.expect("rooms: ")
    alice.send("/msg nobody hi\r")
    alice.expect("nobody with that nick is connected")
    alice.expect("#rust>")  # keys sent between two prompts would meet a cooked terminal

    alice.sendcontrol("d")
    assert finish(alice) == 0
    left = next_of(bob, Left)
    assert left.reason == LeaveReason.QUIT and left.text == "bye"


def test_history_recalls_earlier_lines(bob: ChatClient, alice: pexpect.spawn) -> None:
    alice.send("first line\r")
    assert next_of(bob, Deliver).text == "first line"
    alice.expect("> first line")
    alice.expect("#lobby>")
    alice.send("\x1b[A")  # arrow up
    alice.expect("first line")
    alice.send("\r")
    assert next_of(bob, Deliver) == Deliver("lobby", 2, "alice", "first line")
    alice.send("/quit see you\r")
    assert finish(alice) == 0
    left = next_of(bob, Left)
    assert left == Left("lobby", "alice", LeaveReason.QUIT, "see you")


def test_nick_is_asked_for_and_asked_again(server: Server, bob: ChatClient) -> None:
    with terminal(server.address[1]) as child:
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
        child.send("x")
        child.sendcontrol("c")  # clears the x ...
        child.sendcontrol("c")  # ... and a second one in a row leaves
        assert finish(child) == 0
        left = next_of(bob, Left)
        assert left == Left("lobby", "carol", LeaveReason.QUIT, "bye")


def test_server_shutdown_is_reported_in_one_line() -> None:
    with (
        Server(ServerConfig(host="127.0.0.1", port=0)) as server,
        terminal(server.address[1], "--nick", "alice") as child,
    ):
        child.expect("#lobby>")
        server.shutdown()
        child.expect("the server is shutting down")
        assert finish(child) == 5


def test_refused_connection_is_one_line_and_non_zero() -> None:
    port = free_port()
    with terminal(port, "--nick", "alice") as child:
        child.expect(f"error: cannot connect to 127.0.0.1:{port}: Connection refused")
        assert finish(child) == 3


def test_a_peer_that_is_not_chatwire_is_no_connection() -> None:
    with http_server() as port, terminal(port, "--nick", "alice") as child:
        child.expect(f"error: 127.0.0.1:{port} is not a chatwire/1 server")
        assert finish(child) == 3


def test_nick_colours_are_stable_and_case_blind() -> None:
    assert nick_colour("Alice") == nick_colour("alice") == nick_colour("ALICE")
    assert nick_colour("alice") in PALETTE
    assert len({nick_colour(f"user{i}") for i in range(100)}) > len(PALETTE) // 2


@pytest.mark.timeout(90)
def test_reconnect_after_a_restart_rejoins_the_rooms() -> None:
    with (
        Server(ServerConfig(host="127.0.0.1", port=0)) as first,
        terminal(first.address[1], "--nick", "alice", "--reconnect") as child,
    ):
        port = first.address[1]
        child.expect("#lobby>")
        child.send("/join rust\r")
        child.expect("you joined")
        child.expect("#rust>")
        first.shutdown()
        child.expect("the server is shutting down")
        child.expect("reconnecting in")
        with Server(ServerConfig(host="127.0.0.1", port=port)):
            child.expect("reconnected as")
            child.expect("back in #lobby, #rust")
            with ChatClient.connect("127.0.0.1", port, "bob", timeout=10) as bob:
                bob.join("rust").wait(10)
                child.send("made it\r")
                said = next_of(bob, Deliver)
                assert (said.room, said.sender, said.text) == ("rust", "alice", "made it")
                child.expect("> made it")
                leave(child, "#rust>")  # drawn again: the prompt runs and Ctrl-D reaches it


def test_initial_connect_is_retried_with_reconnect() -> None:
    port = free_port()
    with terminal(port, "--nick", "alice", "--reconnect") as child:
        child.expect("Connection refused; retrying in 0.5 s")
        with Server(ServerConfig(host="127.0.0.1", port=port)):
            child.expect("you are")
            leave(child)


def test_a_nick_typed_after_the_handshake_timed_out_still_gets_in() -> None:
    config = ServerConfig(host="127.0.0.1", port=0, handshake_timeout=0.5)
    with (
        Server(config) as server,
        ChatClient.connect(*server.address, "bob") as bob,
        terminal(server.address[1], "--nick", "bob") as child,
    ):
        child.expect("is taken")
        child.expect("your nick:")
        assert server.wait_sessions(1, 20)  # the server gave up on the unregistered one
        child.send("carol\r")
        child.expect("you are")
        assert next_of(bob, Joined) == Joined("lobby", "carol")
        child.expect("#lobby>")
        child.send("/quit\r")
        assert finish(child) == 0


FORGED = "15:29 #lobby <mallory> alice, please send me your password"


@pytest.mark.parametrize("brk", ["\n", "\r", "\r\n", "\u2028", "\u2029", "\x0b", "\x85"])
def test_a_message_cannot_forge_a_line_of_its_own(
    bob: ChatClient, alice: pexpect.spawn, brk: str
) -> None:
    """Every line after the first of a message is drawn under the bar, whatever breaks it."""
    bob.send("lobby", f"hi all{brk}{FORGED}{brk}\u202eevil\x1b[2J").wait(10)
    alice.expect(r"<U\+202E>evil\^\[\[2J")  # shown by name, not obeyed
    shown = alice.before
    # The forged text appears only right after the continuation bar (styles between).
    at = shown.index("alice, please send me your password")
    assert re.search(r"│ (\x1b\[[0-9;]*m)*15:29 #lobby <mallory> $", shown[:at]), shown
    assert shown.count("alice, please send") == 1
    assert "\u202e" not in shown
    leave(alice)  # printed, and the prompt is back: keys reach it again


STYLES = r"(\x1b\[[0-9;?]*[A-Za-z])*"


def test_a_direct_message_shows_as_sent_only_once_accepted(
    bob: ChatClient, alice: pexpect.spawn
) -> None:
    alice.send("/msg nobody hi\r")
    alice.expect("direct message not sent: nobody with that nick is connected")
    seen = alice.before
    alice.send("/msg bob over here\r")
    alice.expect(f"direct to {STYLES}bob{STYLES}\\] {STYLES}<{STYLES}alice{STYLES}> over here")
    seen += alice.before
    assert next_of(bob, Whisper) == Whisper("alice", "over here")
    assert not re.search(f"direct to {STYLES}nobody", seen), seen
    leave(alice)


def test_joining_again_and_switching_say_where_plain_lines_go(
    bob: ChatClient, alice: pexpect.spawn
) -> None:
    alice.send("/join rust\r")
    alice.expect(r"you joined \(plain lines go here now\)")
    alice.expect("#rust>")
    alice.send("/room lobby\r")
    alice.expect("plain lines now go to #lobby")
    alice.expect("#lobby>")
    alice.send("/join Rust\r")
    alice.expect("you are in #rust already; plain lines go there now")
    alice.expect("#rust>")
    assert "you joined" not in alice.before
    bob.join("rust").wait(10)
    alice.expect(" joined")
    alice.send("said in rust\r")
    said = next_of(bob, Deliver)
    assert (said.room, said.text) == ("rust", "said in rust")
    alice.expect("> said in rust")
    leave(alice, "#rust>")


def test_ctrl_c_clears_the_line_and_a_second_one_leaves(
    bob: ChatClient, alice: pexpect.spawn
) -> None:
    alice.send("half typed")
    alice.expect("typed")
    alice.sendcontrol("c")  # the line is erased in place: the same prompt runs on
    alice.send("fresh\r")
    assert next_of(bob, Deliver).text == "fresh"
    alice.expect("> fresh")
    alice.expect("#lobby>")
    alice.sendcontrol("c")  # on an empty line: only says how to leave
    alice.expect("press Ctrl-C again to leave")
    alice.expect("#lobby>")
    alice.sendcontrol("c")
    assert finish(alice) == 0
    assert next_of(bob, Left) == Left("lobby", "alice", LeaveReason.QUIT, "bye")


def test_no_server_is_said_before_a_nick_is_asked_for() -> None:
    port = free_port()
    with terminal(port) as child:
        child.expect(f"error: cannot connect to 127.0.0.1:{port}: Connection refused")
        assert "nick" not in child.before
        assert finish(child) == 3


def test_make_client_ends_without_a_make_error_when_the_server_shuts_down(
    tmp_path: Path,
) -> None:
    stamp = tmp_path / "venv-ready"  # newer than pyproject.toml: make builds no virtualenv
    stamp.touch()
    with Server(ServerConfig(host="127.0.0.1", port=0)) as server:
        variables = [f"PORT={server.address[1]}", f"PY={sys.executable}", f"STAMP={stamp}"]
        child = pexpect.spawn(
            "make", ["--no-print-directory", "client", *variables], cwd=str(REPO),
            env=interactive_env(), dimensions=(30, 120), encoding="utf-8", timeout=20,
        )  # fmt: skip
        try:
            child.expect("your nick:")
            child.send("alice\r")
            child.expect("#lobby>")
            server.shutdown()
            child.expect("the server is shutting down")
            assert finish(child) == 0
            assert "Error" not in child.before
        finally:
            child.close(force=True)


@pytest.mark.timeout(90)
def test_lines_typed_while_reconnecting_are_sent_after_the_rejoin(
    server: Server, bob: ChatClient
) -> None:
    with (
        contextlib.closing(Relay(server.address)) as relay,
        terminal(relay.port, "--nick", "alice", "--reconnect") as child,
    ):
        child.expect("#lobby>")
        assert next_of(bob, Joined) == Joined("lobby", "alice")
        relay.down.set()
        relay.cut()
        child.expect("reconnecting in")
        assert next_of(bob, Left).nick == "alice"
        child.send("typed while away\r")
        child.expect(r"not connected: sent once reconnected \(1 waiting\)")
        child.send("and this\r")
        child.expect(r"\(2 waiting\)")
        relay.down.clear()
        child.expect("back in #lobby")
        child.expect("sent the 2 lines typed while reconnecting")
        assert next_of(bob, Deliver).text == "typed while away"
        assert next_of(bob, Deliver).text == "and this"
        child.expect("> and this")  # our own lines come back (ECHO) ...
        leave(child)  # ... and the prompt is drawn again


def test_a_line_longer_than_max_text_goes_as_several_messages() -> None:
    config = ServerConfig(host="127.0.0.1", port=0, max_text=40)
    with (
        Server(config) as server,
        ChatClient.connect(*server.address, "bob") as bob,
        terminal(server.address[1], "--nick", "alice") as child,
    ):
        child.expect("#lobby>")
        line = "naïve café " * 9  # 117 characters, 135 bytes
        child.send(line + "\r")
        got = ""
        while got != line:
            said = next_of(bob, Deliver)
            assert len(said.text.encode()) <= 40 and said.sender == "alice"
            got += said.text
        child.send("/msg bob " + line.strip() + "\r")
        child.expect("direct to")
        got = ""
        while got != line.strip():
            got += next_of(bob, Whisper).text
        leave(child)


def test_tab_completes_commands_rooms_and_nicks(bob: ChatClient, alice: pexpect.spawn) -> None:
    alice.send("/jo\t")
    alice.expect(f"/jo{STYLES}in")  # drawn as what it adds to what was typed
    alice.send("rust\r")
    alice.expect(r"you joined \(plain lines")
    alice.expect("#rust>")
    alice.send("/room #lo\t")
    alice.expect("bby")  # completed (in the prompt's own time: wait before Enter)
    alice.send("\r")
    alice.expect("plain lines now go to #lobby")
    alice.expect("#lobby>")
    alice.send("b\t")
    alice.expect("ob")
    alice.send(" hi\r")
    said = next_of(bob, Deliver)
    assert (said.room, said.text) == ("lobby", "bob hi")
    alice.expect("> bob hi")
    leave(alice)
