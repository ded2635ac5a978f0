"""The client library against the reference server, in this process."""

from __future__ import annotations

from typing import Any

import pytest

from reference.client import (
    ChatClient,
    ConnectionClosed,
    Disconnected,
    EndCause,
    NickRefused,
    Request,
    RequestFailed,
    ServerEvent,
)
from reference.server import Server, ServerConfig
from spec.constants import Capability, ErrorCode, LeaveReason
from spec.events import Ack, Deliver, Joined, Left, RoomEntry, Whisper
from tests.client_procs import server

__all__ = ["server"]

pytestmark = [pytest.mark.network, pytest.mark.timeout(30)]


def connect(server: Server, nick: str, caps: int = 0) -> ChatClient:
    host, port = server.address
    return ChatClient.connect(host, port, nick, caps, timeout=10)


def drain(client: ChatClient) -> list[ServerEvent]:
    """Everything the server has sent this client so far (PING barrier first)."""
    client.barrier(10)
    return client.pending_events()


def test_rooms_messages_and_presence(server: Server) -> None:
    with connect(server, "alice") as alice, connect(server, "Bob") as bob:
        assert alice.welcome is not None and alice.welcome.room == "lobby"
        assert bob.welcome_roster is not None
        assert set(bob.welcome_roster.members) == {"alice", "Bob"}
        assert drain(alice) == [Joined("lobby", "Bob")]

        roster = alice.join("Rust").wait(10)
        assert (roster.room, roster.members) == ("rust", ("alice",))
        assert set(alice.joined_rooms) == {"lobby", "rust"}
        bob.join("rust").wait(10)
        first = alice.send("rust", "one").wait(10)
        second = bob.send("rust", "two").wait(10)
        assert (first, second) == (Ack("rust", roster.seq + 1), Ack("rust", roster.seq + 2))

        assert bob.direct("ALICE", "psst").wait(10) == Ack("", 0)
        assert {e for e in drain(alice) if not isinstance(e, Ack)} >= {
            Joined("rust", "Bob"),
            Deliver("rust", 2, "Bob", "two"),
            Whisper("Bob", "psst"),
        }
        assert Deliver("rust", 1, "alice", "one") in drain(bob)

        rooms = alice.rooms().wait(10)
        assert set(rooms.rooms) == {RoomEntry("lobby", 2), RoomEntry("rust", 2)}
        assert set(alice.who("rust").wait(10).members) == {"alice", "Bob"}

        left = bob.leave("rust").wait(10)
        assert left == Left("rust", "Bob", LeaveReason.PART, "")
        assert bob.joined_rooms == ("lobby",)
        bob.close("off to lunch")
        events = [e for e in drain(alice) if isinstance(e, Left)]
        assert events == [
            Left("rust", "Bob", LeaveReason.PART, ""),
            Left("lobby", "Bob", LeaveReason.QUIT, "off to lunch"),
        ]


def test_requests_that_fail_raise_with_the_code(server: Server) -> None:
    with connect(server, "alice") as alice:
        assert alice.welcome is not None
        failures: dict[ErrorCode, Request[Any]] = {
            ErrorCode.NO_SUCH_NICK: alice.direct("nobody", "x"),
            ErrorCode.NOT_IN_ROOM: alice.send("elsewhere", "x"),
            ErrorCode.NO_SUCH_ROOM: alice.who("elsewhere"),
            ErrorCode.ROOM_INVALID: alice.join("no spaces"),
            ErrorCode.TEXT_TOO_LONG: alice.send("lobby", "x" * (alice.welcome.max_text + 1)),
        }
        for code, request in failures.items():
            with pytest.raises(RequestFailed) as failed:
                request.wait(10)
            assert failed.value.code == code
        assert alice.send("lobby", "still fine").wait(10).seq == 1


def test_nick_is_refused_case_insensitively(server: Server) -> None:
    with connect(server, "alice"):
        with pytest.raises(NickRefused) as refused:
            connect(server, "ALICE")
        assert refused.value.code == ErrorCode.NICK_IN_USE
        with pytest.raises(NickRefused) as invalid:
            connect(server, "a" * 33)
        assert invalid.value.code == ErrorCode.NICK_INVALID


def test_echo_and_quiet_capabilities(server: Server) -> None:
    caps = Capability.ECHO | Capability.QUIET
    with connect(server, "bot", int(caps)) as bot, connect(server, "human"):
        assert bot.welcome is not None and bot.welcome.caps == caps
        assert bot.welcome_roster is None
        seq = bot.send("lobby", "beep").wait(10).seq
        assert drain(bot) == [Ack("lobby", seq), Deliver("lobby", seq, "bot", "beep")]


def test_server_shutdown_ends_the_session_with_its_error() -> None:
    with Server(ServerConfig(host="127.0.0.1", port=0)) as server, connect(server, "a") as alice:
        server.shutdown()
        events = list(alice.events(timeout=10))
        end = events[-1]
        assert isinstance(end, Disconnected) and end.cause is EndCause.SERVER_ERROR
        assert end.error is not None and end.error.code == ErrorCode.SERVER_SHUTDOWN
        with pytest.raises(ConnectionClosed):
            alice.send("lobby", "anyone?")
