"""The raw limit: a relay that copies every frame a client writes to every other client.

No decoding, no rooms, no sequence numbers, no per-message work beyond finding where the
last whole frame in what was read ends (so that frames of two senders never interleave).
It is one thread around epoll, writing each chunk it reads to every other socket with as
few system calls as the kernel allows. Nothing written in Python moves these bytes much
faster, so it is the ceiling a chatwire/1 server on the same interpreter can be held to.

Output is never dropped: while any client has more than ``HIGH_WATER`` bytes pending, the
relay stops reading from everyone (so a client that stops reading stalls it, as it would
stall any server that neither drops nor disconnects).
"""

from __future__ import annotations

import selectors
import socket
import struct

from spec.codec import encode
from spec.events import Pong

from .common import exit_on_sigterm, listen

#: Sent to each accepted socket once it is on the relay list, so clients know when to start.
READY = encode(Pong(0))
HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024
_LEN = struct.Struct(">I")


class Peer:
    __slots__ = ("inbuf", "mask", "out", "out_pos", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.out = bytearray()
        self.out_pos = 0
        self.mask = 0

    @property
    def pending(self) -> int:
        return len(self.out) - self.out_pos


class Relay:
    def __init__(self, server: socket.socket) -> None:
        self.server = server
        self.sel = selectors.DefaultSelector()
        self.sel.register(server, selectors.EVENT_READ, None)
        self.peers: dict[socket.socket, Peer] = {}
        self.full: set[Peer] = set()

    def _update(self, peer: Peer) -> None:
        mask = 0 if self.full else selectors.EVENT_READ
        if peer.pending:
            mask |= selectors.EVENT_WRITE
        if mask == peer.mask:
            return
        if peer.mask == 0:
            self.sel.register(peer.sock, mask, peer)
        elif mask == 0:
            self.sel.unregister(peer.sock)
        else:
            self.sel.modify(peer.sock, mask, peer)
        peer.mask = mask

    def _set_full(self, peer: Peer, full: bool) -> None:
        was = bool(self.full)
        if full:
            self.full.add(peer)
        else:
            self.full.discard(peer)
        if was != bool(self.full):
            for other in self.peers.values():
                self._update(other)

    def _drop(self, peer: Peer) -> None:
        if self.peers.pop(peer.sock, None) is None:
            return
        if peer.mask:
            self.sel.unregister(peer.sock)
        self._set_full(peer, False)
        peer.sock.close()

    def _flush(self, peer: Peer) -> None:
        try:
            while peer.pending:
                sent = peer.sock.send(memoryview(peer.out)[peer.out_pos :])
                peer.out_pos += sent
        except BlockingIOError:
            pass
        except OSError:
            self._drop(peer)
            return
        if not peer.pending:
            peer.out.clear()
            peer.out_pos = 0
        elif peer.out_pos > LOW_WATER:
            del peer.out[: peer.out_pos]
            peer.out_pos = 0
        if peer.pending > HIGH_WATER:
            self._set_full(peer, True)
        elif peer.pending < LOW_WATER and peer in self.full:
            self._set_full(peer, False)
        if peer.sock in self.peers:
            self._update(peer)

    def _push(self, peer: Peer, chunk: bytes) -> None:
        peer.out += chunk
        self._flush(peer)

    def _accept(self) -> None:
        sock, _ = self.server.accept()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = Peer(sock)
        self.peers[sock] = peer
        self._push(peer, READY)

    def _read(self, peer: Peer) -> None:
        try:
            data = peer.sock.recv(262_144)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(peer)
            return
        buf = peer.inbuf
        buf += data
        pos, size = 0, len(buf)
        while size - pos >= 4:
            end = pos + 4 + _LEN.unpack_from(buf, pos)[0]
            if end > size:
                break
            pos = end
        if not pos:
            return
        chunk = bytes(buf[:pos])
        del buf[:pos]
        for other in list(self.peers.values()):
            if other is not peer:
                self._push(other, chunk)

    def serve(self) -> None:
        while True:
            for key, mask in self.sel.select():
                peer = key.data
                if peer is None:
                    self._accept()
                    continue
                if mask & selectors.EVENT_WRITE:
                    self._flush(peer)
                if mask & selectors.EVENT_READ and peer.sock in self.peers:
                    self._read(peer)


def main(argv: list[str] | None = None) -> None:
    server = listen("raw relay, no protocol work (bench baseline)", argv)
    server.setblocking(False)
    exit_on_sigterm()
    Relay(server).serve()


if __name__ == "__main__":
    main()
