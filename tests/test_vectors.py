"""Run the language-neutral vectors in spec/vectors/ against this implementation.

The JSON files are read as any other language would read them; the Python helpers from
spec.vectorgen are used only to turn ``fields`` into events and back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spec.codec import decode_frame, encode, encode_with_construct
from spec.constants import ErrorCode, FrameType
from spec.decoder import FrameDecoder
from spec.errors import ProtocolError
from spec.events import Event, UnknownFrame
from spec.requirements import load_requirements
from spec.vectorgen import FILES, FORMAT, SPEC, VECTOR_DIR, event_from_fields, fields_of

REPO = Path(__file__).resolve().parent.parent


def load(name: str) -> list[dict[str, Any]]:
    with open(VECTOR_DIR / name, encoding="utf-8") as f:
        doc = json.load(f)
    assert doc["format"] == FORMAT
    assert doc["spec"] == SPEC
    vectors: list[dict[str, Any]] = doc["vectors"]
    return vectors


VALID = load("frames-valid.json")
INVALID = load("frames-invalid.json")
STREAMS = load("streams.json")


def ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


def drain(decoder: FrameDecoder) -> list[Event | UnknownFrame]:
    return list(decoder.events())


# -- frames-valid.json --------------------------------------------------------------------


def test_every_frame_type_has_vectors() -> None:
    assert {v["type"] for v in VALID} == {int(t) for t in FrameType}
    for ftype in FrameType:
        assert f"{ftype.name.lower()}-example" in ids(VALID)


@pytest.mark.parametrize("vector", VALID, ids=ids(VALID))
def test_valid_vector_decodes_to_its_fields(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    assert FrameType(vector["type"]).name == vector["type_name"]
    assert data[4] == vector["type"]
    expected = event_from_fields(vector["type"], vector["fields"])

    event = decode_frame(data)
    assert event == expected
    assert not isinstance(event, UnknownFrame)
    assert fields_of(event) == vector["fields"]

    decoder = FrameDecoder()
    decoder.receive_data(data)
    assert drain(decoder) == [expected]
    assert decoder.buffered == 0


@pytest.mark.parametrize("vector", VALID, ids=ids(VALID))
def test_valid_vector_encodes_to_its_hex(vector: dict[str, Any]) -> None:
    event = event_from_fields(vector["type"], vector["fields"])
    assert encode(event).hex() == vector["hex"]
    assert encode_with_construct(event).hex() == vector["hex"]


# -- frames-invalid.json ------------------------------------------------------------------


def test_every_decoding_rule_has_vectors() -> None:
    rules = {v["rule"] for v in INVALID}
    expected = {"length-zero", "length-over-limit", "field-overrun", "trailing-bytes"}
    expected |= {"invalid-utf8", "nul-in-text", "bad-magic", "bad-version", "short-hello"}
    assert rules == expected


def test_invalid_vectors_cite_requirements_of_the_document() -> None:
    index = load_requirements()
    for vector in INVALID:
        assert vector["requirement"] in index, vector["name"]
    cited = {v["requirement"] for v in INVALID}
    # Every §14 row about the bytes themselves has a vector (the rest depend on the state).
    assert {f"MAL-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 17)} <= cited


def expect_error(vector: dict[str, Any], call: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        call()
    assert info.value.code == vector["code"]
    assert info.value.code.name == vector["error"]
    assert info.value.fatal


@pytest.mark.parametrize("vector", INVALID, ids=ids(INVALID))
def test_invalid_vector_raises_its_error(vector: dict[str, Any]) -> None:
    assert ErrorCode[vector["error"]] == vector["code"]
    data = bytes.fromhex(vector["hex"])

    whole = FrameDecoder(vector["max_frame"])
    whole.receive_data(data)
    expect_error(vector, whole.next_event)

    # Byte by byte: no frame comes out first, and the error comes at the latest with the
    # last byte (for the length rules, with the fourth).
    bytewise = FrameDecoder(vector["max_frame"])
    for i, byte in enumerate(data):
        bytewise.receive_data(bytes((byte,)))
        if i == len(data) - 1 or (i == 3 and vector["rule"].startswith("length-")):
            expect_error(vector, bytewise.next_event)
            break
        assert bytewise.next_event() is None


@pytest.mark.parametrize(
    "vector",
    [v for v in INVALID if v["rule"] != "length-over-limit"],
    ids=ids([v for v in INVALID if v["rule"] != "length-over-limit"]),
)
def test_invalid_vector_raises_via_decode_frame(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    if vector["rule"] == "length-zero":
        data = data[:4]  # decode_frame takes exactly one frame; a zero length ends it
    expect_error(vector, lambda: decode_frame(data))


# -- streams.json -------------------------------------------------------------------------


def expected_frames(vector: dict[str, Any]) -> list[Event | UnknownFrame]:
    out: list[Event | UnknownFrame] = []
    for frame in vector["frames"]:
        body = bytes.fromhex(frame["body_hex"])
        if frame["type_name"] is None:
            assert frame["fields"] is None
            out.append(UnknownFrame(frame["type"], body))
        else:
            event = event_from_fields(frame["type"], frame["fields"])
            assert encode(event)[5:] == body
            out.append(event)
    return out


def split(vector: dict[str, Any], chunks: list[bytes]) -> tuple[list[Any], int | None]:
    """Feed ``chunks``, draining after each; the frames, and the error code if one came."""
    decoder = FrameDecoder(vector["max_frame"])
    got: list[Event | UnknownFrame] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        try:
            got.extend(decoder.events())
        except ProtocolError as exc:
            return got, exc.code
    assert decoder.buffered == vector["buffered"]
    return got, None


@pytest.mark.parametrize("vector", STREAMS, ids=ids(STREAMS))
def test_stream_splits_as_specified(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    expected = (expected_frames(vector), vector["code"])
    assert split(vector, [data]) == expected
    assert split(vector, [data[i : i + 1] for i in range(len(data))]) == expected
    assert split(vector, [data[i : i + 7] for i in range(0, len(data), 7)]) == expected


def test_streams_cover_unknown_types_and_partial_frames() -> None:
    assert any(f["type"] == 0x6E for v in STREAMS for f in v["frames"])
    assert any(v["buffered"] for v in STREAMS)
    assert any(v["error"] for v in STREAMS)


# -- the committed files are what the schema gives ------------------------------------------


def test_committed_vectors_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "spec.vectorgen", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert set(FILES) <= {p.name for p in VECTOR_DIR.glob("*.json")}


def test_check_reports_a_stale_file(tmp_path: Path) -> None:
    from spec.vectorgen import stale_files, write

    assert sorted(write(tmp_path)) == sorted(FILES)
    assert stale_files(tmp_path) == []
    (tmp_path / "streams.json").write_text("{}", encoding="utf-8")
    assert stale_files(tmp_path) == ["streams.json"]
