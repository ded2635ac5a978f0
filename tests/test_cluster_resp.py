"""The cluster's Redis plumbing: the sans-I/O RESP2 parser and encoder alone, then the
connections against a real redis-server."""

from __future__ import annotations

import threading

import pytest

from redisproc import RedisServer
from reference.cluster.connection import Pool, RedisAddress, RedisUnavailable, Subscriber
from reference.cluster.resp import INCOMPLETE, Parser, ProtocolError, ReplyError, encode_command


def test_encode_command_is_an_array_of_bulk_strings() -> None:
    assert encode_command("SET", b"k\r\n", 42) == b"*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n42\r\n"


def parse_all(data: bytes) -> list[object]:
    parser = Parser()
    parser.feed(data)
    out = []
    while (reply := parser.next_reply()) is not INCOMPLETE:
        out.append(reply)
    return out


def test_every_reply_type() -> None:
    data = b"+OK\r\n-ERR bad\r\n:-7\r\n$4\r\na\r\nb\r\n$-1\r\n*2\r\n:1\r\n*1\r\n$0\r\n\r\n*-1\r\n"
    assert parse_all(data) == ["OK", ReplyError("ERR bad"), -7, b"a\r\nb", None, [1, [b""]], None]


def test_replies_split_anywhere_come_out_whole() -> None:
    data = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n:12\r\n"
    for cut in range(len(data)):
        parser = Parser()
        parser.feed(data[:cut])
        got = []
        while (reply := parser.next_reply()) is not INCOMPLETE:
            got.append(reply)
        parser.feed(data[cut:])
        while (reply := parser.next_reply()) is not INCOMPLETE:
            got.append(reply)
        assert got == [[b"message", b"ch", b"hello"], 12], cut


@pytest.mark.parametrize("bad", [b"?x\r\n", b":12a\r\n", b"$3\r\nabcde\r\n"])
def test_garbage_is_a_protocol_error(bad: bytes) -> None:
    parser = Parser()
    parser.feed(bad)
    with pytest.raises(ProtocolError):
        parser.next_reply()


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://127.0.0.1:6379", RedisAddress("127.0.0.1", 6379, 0)),
        ("redis://localhost:7000/3", RedisAddress("localhost", 7000, 3)),
    ],
)
def test_urls(url: str, address: RedisAddress) -> None:
    assert RedisAddress.parse(url) == address


@pytest.mark.parametrize("url", ["http://h:1", "redis://h", "redis://h:x", "redis://h:1/db"])
def test_bad_urls_say_so(url: str) -> None:
    with pytest.raises(ValueError, match="redis"):
        RedisAddress.parse(url)


@pytest.mark.network
@pytest.mark.timeout(30)
def test_pool_and_subscriber_against_real_redis() -> None:
    with RedisServer() as redis:
        address = RedisAddress.parse(redis.url + "/2")
        pool = Pool(address)
        assert pool.call("SET", "k", b"\x00\xff") == "OK"
        assert pool.call("GET", "k") == b"\x00\xff"
        with pytest.raises(ReplyError):
            pool.call("INCR", "k")
        got: list[tuple[bytes, bytes]] = []
        lost: list[str] = []
        done, gone = threading.Event(), threading.Event()

        def on_lost(reason: str) -> None:
            lost.append(reason)
            gone.set()

        def on_message(channel: bytes, data: bytes) -> None:
            got.append((channel, data))
            if data == b"last":
                done.set()

        sub = Subscriber(address, on_message, on_lost)
        sub.subscribe(b"ch")  # confirmed: what is published now arrives
        for i in range(100):
            pool.call("PUBLISH", "ch", str(i))
        pool.call("PUBLISH", "ch", "last")
        assert done.wait(10)
        assert [d for _, d in got] == [str(i).encode() for i in range(100)] + [b"last"]
        redis.stop()  # the subscriber notices; commands fail as RedisUnavailable
        with pytest.raises(RedisUnavailable):
            pool.call("GET", "k")
        assert gone.wait(10)
        sub.close()
        pool.close()
        assert lost == ["Redis closed the subscriber connection"]
