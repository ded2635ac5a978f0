"""Scripted mode end to end: client processes with piped stdin/stdout against the reference
server, running in this process."""

from __future__ import annotations

import json
import subprocess

import pytest

from reference.client import ChatClient
from reference.server import Server, ServerConfig
from spec.events import Deliver, Roster
from tests.client_procs import (
    CLIENT,
    REPO,
    ScriptedClient,
    free_port,
    http_server,
    roster_line,
    server,
)

__all__ = ["server"]

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def test_two_clients_chat_across_rooms_with_presence(server: Server) -> None:
    port = server.address[1]
    bob = ScriptedClient(port, "--nick", "bob")
    assert bob.next_line() == "welcome bob lobby bob"
    alice = ScriptedClient(port, "--nick", "Alice")
    try:
        alice.expect(roster_line("welcome", "lobby", {"Alice", "bob"}))
        assert alice.seen[0].startswith("welcome Alice lobby ")
        bob.expect("joined lobby Alice")

        alice.write("hello bob", "//slash stays")
        bob.expect("message lobby 1 Alice hello bob")
        bob.expect("message lobby 2 Alice /slash stays")
        alice.expect("ack lobby 1")
        alice.expect("ack lobby 2")

        bob.write("/msg alice psst")
        alice.expect("whisper bob psst")
        bob.expect("ack-direct")

        alice.write("/join Rust", "in rust?")
        alice.expect("roster rust 0 Alice")
        alice.expect("ack rust 1")
        bob.write("/join rust", "yes")
        bob.expect(roster_line("roster", "rust", {"Alice", "bob"}))
        alice.expect("joined rust bob")
        alice.expect("message rust 2 bob yes")
        bob.expect("ack rust 2")

        bob.write("/who", "/room lobby", "back in the lobby", "/rooms")
        bob.expect(roster_line("roster", "rust", {"Alice", "bob"}))
        alice.expect("message lobby 3 bob back in the lobby")
        bob.expect(lambda line: sorted(line.split(" ")) == ["lobby:2", "rooms", "rust:2"])

        alice.write("/leave rust", "/quit gone fishing")
        alice.expect("left rust Alice part ")
        bob.expect("left rust Alice part ")
        assert alice.wait() == 0
        assert alice.seen[-1] == "closed bye"
        bob.expect("left lobby Alice quit gone fishing")
        assert bob.finish() == 0
        assert bob.seen[-1] == "closed bye"
        assert bob.stderr == "" and alice.stderr == ""
    finally:
        bob.kill()
        alice.kill()


def test_end_of_input_waits_for_every_answer_before_bye(server: Server) -> None:
    port = server.address[1]
    with ChatClient.connect("127.0.0.1", port, "watcher") as watcher:
        sender = ScriptedClient(port, "--nick", "burst")
        try:
            sender.write(*(f"line {i}" for i in range(300)))
            assert sender.finish() == 0, (sender.seen[-3:], sender.stderr)
        finally:
            sender.kill()
        acks = [line for line in sender.seen if line.startswith("ack ")]
        assert acks == [f"ack lobby {i}" for i in range(1, 301)]
        assert sender.seen[-1] == "closed bye"
        watcher.barrier(10)
        texts = [e.text for e in watcher.pending_events() if hasattr(e, "text")]
        assert texts[:300] == [f"line {i}" for i in range(300)]


def test_json_lines(server: Server) -> None:
    port = server.address[1]
    with ChatClient.connect("127.0.0.1", port, "bob") as bob:
        alice = ScriptedClient(port, "--nick", "alice", "--json")
        try:
            alice.next_line()
            bob.send("lobby", 'tab\there "quoted"\nnew line').wait(10)
            alice.write("/msg bob hi", "/who nowhere")
            assert alice.finish() == 0
        finally:
            alice.kill()
    events = [json.loads(line) for line in alice.seen]
    assert events[0]["event"] == "welcome" and set(events[0]["members"]) == {"alice", "bob"}
    assert events[0]["nick"] == "alice" and events[0]["room"] == "lobby"
    assert {
        "event": "message",
        "room": "lobby",
        "seq": 1,
        "sender": "bob",
        "text": 'tab\there "quoted"\nnew line',
    } in events
    assert {"event": "ack-direct"} in events
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1
    assert errors[0]["code"] == "NO_SUCH_ROOM" and errors[0]["request"] == "WHO"
    assert errors[0]["code_value"] == 0x0104
    assert events[-1] == {
        "event": "closed",
        "cause": "bye",
        "code": None,
        "text": events[-1]["text"],
    }


def test_text_lines_escape_control_characters(server: Server) -> None:
    port = server.address[1]
    with ChatClient.connect("127.0.0.1", port, "bob") as bob:
        alice = ScriptedClient(port, "--nick", "alice")
        try:
            alice.next_line()
            bob.send("lobby", "a\\b\nc\td\x1be\u2028").wait(10)
            alice.expect("message lobby 1 bob a\\\\b\\nc\\td\\x1be\\u2028")
            assert alice.finish() == 0, (alice.seen, alice.stderr)
        finally:
            alice.kill()


def test_rejected_input_lines_are_reported_and_the_rest_still_sent(server: Server) -> None:
    port = server.address[1]
    alice = ScriptedClient(port, "--nick", "alice")
    try:
        alice.write("/bogus", "/join bad room", "/room nowhere", "fine")
        alice.expect("ack lobby 1")
        assert alice.finish() == 1
    finally:
        alice.kill()
    assert "input line 1: unknown command /bogus" in alice.stderr
    assert "input line 2: usage: /join ROOM" in alice.stderr
    assert "input line 3: you are not in #nowhere" in alice.stderr


def test_taken_nick_exits_with_one_line(server: Server) -> None:
    port = server.address[1]
    with ChatClient.connect("127.0.0.1", port, "alice"):
        twin = ScriptedClient(port, "--nick", "ALICE")
        try:
            assert twin.finish() == 4
        finally:
            twin.kill()
    assert twin.seen == []
    assert twin.stderr.count("\n") == 0 and "taken" in twin.stderr


def test_invalid_nick_exits_with_one_line(server: Server) -> None:
    bad = ScriptedClient(server.address[1], "--nick", "no spaces")
    try:
        assert bad.finish() == 4
    finally:
        bad.kill()
    assert bad.stderr.count("\n") == 0 and "not allowed" in bad.stderr


def test_missing_nick_is_a_usage_error() -> None:
    client = ScriptedClient(free_port())
    try:
        assert client.finish() == 2
    finally:
        client.kill()
    assert client.stderr == "error: --nick is required when input is not a terminal"


def test_connection_refused_exits_with_one_line() -> None:
    port = free_port()
    client = ScriptedClient(port, "--nick", "alice")
    try:
        assert client.finish() == 3
    finally:
        client.kill()
    assert client.seen == []
    assert client.stderr == f"error: cannot connect to 127.0.0.1:{port}: Connection refused"


def test_a_peer_that_is_not_chatwire_is_no_connection() -> None:
    with http_server() as port:
        client = ScriptedClient(port, "--nick", "alice")
        try:
            assert client.finish() == 3
        finally:
            client.kill()
    assert client.seen == []
    assert client.stderr.startswith(f"error: 127.0.0.1:{port} is not a chatwire/1 server (")
    assert len(client.stderr.splitlines()) == 1


def test_server_shutdown_is_reported_and_exits_non_zero() -> None:
    with Server(ServerConfig(host="127.0.0.1", port=0)) as server:
        alice = ScriptedClient(server.address[1], "--nick", "alice")
        try:
            alice.next_line()
            server.shutdown()
            status = alice.wait()  # stdin is still open: the end of the session ends it
        finally:
            alice.kill()
    assert status == 5
    assert alice.seen[-1].startswith("closed error SERVER_SHUTDOWN")
    assert alice.stderr.startswith("the server is shutting down")


@pytest.mark.timeout(90)
def test_reconnect_rejoins_the_rooms() -> None:
    first = Server(ServerConfig(host="127.0.0.1", port=0))
    first.start()
    port = first.address[1]
    carol = ScriptedClient(port, "--nick", "carol", "--reconnect")
    try:
        carol.next_line()
        carol.write("/join rust", "/leave lobby")
        carol.expect("roster rust 0 carol")
        carol.expect("left lobby carol part ")
        carol.write("/rooms")  # answered once the /leave is done with: the rooms are settled
        carol.expect("rooms rust:1")
        first.shutdown()
        carol.expect(lambda line: line.startswith("closed error SERVER_SHUTDOWN"))
        with Server(ServerConfig(host="127.0.0.1", port=port)) as second:
            carol.expect(lambda line: line.startswith("welcome carol lobby "))
            carol.expect(lambda line: line.startswith("roster rust "))
            carol.expect("left lobby carol part ")
            with ChatClient.connect("127.0.0.1", port, "dave") as dave:
                assert "carol" in dave.who("rust").wait(10).members
                assert dave.welcome_roster is not None
                assert "carol" not in dave.welcome_roster.members
                dave.join("rust").wait(10)
                carol.write("still here")
                message = next(e for e in dave.events(10) if not isinstance(e, Roster))
                assert isinstance(message, Deliver)
                assert (message.room, message.sender, message.text) == (
                    "rust",
                    "carol",
                    "still here",
                )
                assert carol.finish() == 0
            assert second.address[1] == port
    finally:
        carol.kill()
        first.shutdown()
    assert "reconnecting in" in carol.stderr


def test_a_reader_that_goes_away_ends_the_client(server: Server) -> None:
    port = server.address[1]
    with ChatClient.connect("127.0.0.1", port, "bob") as bob:
        alice = subprocess.Popen(
            [*CLIENT, "--port", str(port), "--nick", "alice"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        try:
            assert alice.stdout is not None
            assert alice.stdout.readline().startswith(b"welcome alice ")
            alice.stdout.close()  # like `| head -1`: nobody reads any more
            for i in range(50):
                bob.send("lobby", f"into the void {i}")
            assert alice.wait(20) == 0  # with stdin still open
        finally:
            alice.kill()
            alice.wait(10)
            if alice.stdin is not None:
                alice.stdin.close()
