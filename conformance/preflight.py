"""Before any case: is there a chatwire/1 server at the address at all?

One HELLO decides it. Anything but a WELCOME (or a sensible ERROR) yields a single line that
says what was found instead, so a wrong address costs one error, not hundreds of failures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import socket
import time
from typing import Any

from spec.codec import decode_body, encode
from spec.constants import DEFAULT_MAX_FRAME, ErrorCode, FrameType
from spec.decoder import FrameSplitter
from spec.errors import ProtocolError
from spec.events import Bye, Error, Hello, Welcome


class PreflightError(Exception):
    """The target cannot be tested; the message is the one line shown to the user."""


def probe(address: tuple[str, int], scale: float = 1.0) -> dict[str, Any]:
    """The WELCOME the server answers a plain HELLO with, as a dict; or PreflightError."""
    where = f"{address[0]}:{address[1]}"
    for _attempt in range(3):
        answer = _hello_once(address, where, scale)
        if isinstance(answer, Welcome):
            return dataclasses.asdict(answer)
        if answer.code != ErrorCode.NICK_IN_USE:
            name = answer.code_name
            raise PreflightError(
                f"{where} refused a plain HELLO with ERROR {name}: {answer.text!r}"
            )
    raise PreflightError(f"{where} answered NICK_IN_USE to three random nicks")


def _hello_once(address: tuple[str, int], where: str, scale: float) -> Welcome | Error:
    try:
        sock = socket.create_connection(address, timeout=5.0 * scale)
    except OSError as exc:
        raise PreflightError(f"cannot connect to {where}: {exc.strerror or exc}") from None
    try:
        sock.sendall(encode(Hello(nick=f"probe-{secrets.token_hex(4)}")))
        answer = _read_answer(sock, where, 5.0 * scale)
        if isinstance(answer, Welcome):
            with contextlib.suppress(OSError):
                sock.sendall(encode(Bye(text="conformance preflight")))
        return answer
    except OSError as exc:
        raise PreflightError(f"{where} broke the connection during HELLO: {exc}") from None
    finally:
        sock.close()


def _read_answer(sock: socket.socket, where: str, timeout: float) -> Welcome | Error:
    splitter = FrameSplitter(DEFAULT_MAX_FRAME)
    received = b""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PreflightError(_silence(where, received, timeout))
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            raise PreflightError(_silence(where, received, timeout)) from None
        if not data:
            if received:
                raise PreflightError(f"{where} is not a chatwire/1 server: {_peek(received)}")
            raise PreflightError(f"{where} closed the connection without answering HELLO")
        received += data
        splitter.receive_data(data)
        try:
            frame = splitter.next_frame()
        except ProtocolError:
            raise PreflightError(f"{where} is not a chatwire/1 server: {_peek(received)}") from None
        if frame is None:
            continue
        ftype, body = frame
        if ftype in (FrameType.WELCOME, FrameType.ERROR):
            try:
                event = decode_body(ftype, body)
            except ProtocolError as exc:
                undecodable = f"{where} sent an undecodable answer to HELLO: {exc}"
                raise PreflightError(undecodable) from None
            match event:
                case Welcome() | Error():
                    return event
        raise PreflightError(f"{where} is not a chatwire/1 server: {_peek(received)}")


def _silence(where: str, received: bytes, timeout: float) -> str:
    if received:
        return f"{where} is not a chatwire/1 server: {_peek(received)} and then silence"
    return f"{where} accepted the connection but did not answer HELLO within {timeout:g}s"


def _peek(data: bytes) -> str:
    text = data[:40].decode("latin-1")
    shown = "".join(c if c.isprintable() else "." for c in text)
    return f"it answered {shown!r} (hex {data[:16].hex()})"
