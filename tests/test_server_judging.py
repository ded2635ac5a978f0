"""The reference server judges frames with the spec's state machine: for every frame type, in
both server states, it answers exactly as ``Connection(Role.SERVER)`` decides (the same code,
fatal or not, the same ``in_reply_to``), so core and server cannot drift apart."""

from __future__ import annotations

import pytest

from reference.ending import Ending
from reference.server import Server, ServerConfig
from reference.session import Session
from spec.connection import RECEIVABLE, Connection, Role, State
from spec.constants import ErrorCode, FrameType, LeaveReason, is_fatal
from spec.errors import ProtocolError
from spec.events import Ack, Error, Joined, Left, Send, Who
from tests.rawclient import RawClient, running_server
from tests.test_connection import raw

#: Every defined type and three undefined ones; each with an empty body, so a type the state
#: allows goes on to decoding (where most fail as MALFORMED, LIST decodes).
TYPES = sorted({int(t) for t in FrameType} | {0x00, 0x60, 0xFF})


def core_verdict(ftype: int, state: State) -> tuple[int, int] | None:
    conn = Connection(Role.SERVER)
    conn.state = state
    conn.receive_data(raw(ftype))
    try:
        conn.next_event()
    except ProtocolError as exc:
        return exc.code, exc.in_reply_to
    return None


@pytest.mark.network
@pytest.mark.timeout(60)
@pytest.mark.parametrize("state", [State.AWAITING_HELLO, State.REGISTERED], ids=lambda s: s.name)
def test_the_server_judges_every_type_as_the_core_does(state: State) -> None:
    with running_server() as server:
        for ftype in TYPES:
            expected = core_verdict(ftype, state)
            client = RawClient(server.address)
            if state is State.REGISTERED:
                client.hello(f"judged{ftype}")
            client.send_raw(raw(ftype))
            if expected is not None and is_fatal(expected[0]):
                err = client.fatal()
                assert (err.code, err.in_reply_to) == expected, hex(ftype)
            else:
                errors = [e for e in client.barrier() if isinstance(e, Error)]
                got = [(e.code, e.in_reply_to) for e in errors]
                assert got == ([] if expected is None else [expected]), hex(ftype)
            client.close()


def test_every_pair_has_a_verdict_and_the_table_decides_it() -> None:
    """Core side of the same table: a type the state does not allow is refused before its
    body is read, whatever the body (§14 MAL-17)."""
    for role in Role:
        for state in (State.AWAITING_HELLO, State.REGISTERED):
            for ftype in range(256):
                conn = Connection(role)
                conn.state = state
                conn.receive_data(raw(ftype, b"\xff" * 3))
                try:
                    conn.next_frame()
                    judged_ok = True
                except ProtocolError:
                    judged_ok = False
                allowed = ftype in {int(t) for t in RECEIVABLE[(role, state)]}
                unknown = ftype not in {int(t) for t in FrameType}
                assert judged_ok == (allowed or (unknown and role is Role.CLIENT)), (
                    role,
                    state,
                    ftype,
                )


class _FaultyOnWho(Session):
    """A session whose WHO handler has a bug."""

    def dispatch(self, ftype: int, body: bytes) -> Ending | None:
        if ftype == FrameType.WHO:
            raise RuntimeError("a bug in the WHO handler")
        return super().dispatch(ftype, body)


@pytest.mark.network
@pytest.mark.timeout(30)
def test_a_fault_of_the_server_ends_the_session_with_internal_error() -> None:
    """§11.6 ERR-21: a handler's unexpected exception is not a silent close: the client gets
    the fatal INTERNAL_ERROR, the others LEFT with reason ERROR, and the server goes on."""
    config = ServerConfig(host="127.0.0.1", port=0, drain_time=0.5)
    with Server(config, session_class=_FaultyOnWho) as server:
        alice, bob = RawClient(server.address), RawClient(server.address)
        alice.hello("alice")
        bob.hello("bob")
        assert alice.barrier() == [Joined("lobby", "bob")]
        bob.send(Who("lobby"))
        err = bob.fatal()
        assert (err.code, err.in_reply_to) == (ErrorCode.INTERNAL_ERROR, 0)
        assert alice.barrier() == [Left("lobby", "bob", LeaveReason.ERROR, "")]
        alice.send(Send("lobby", "still here"))
        assert alice.barrier() == [Ack("lobby", 1)]
        alice.close()
        bob.close()
