"""PROTOCOL.md stays honest: generated tables current, requirement tags and index in agreement,
every number of the code documented, every cross-reference pointing somewhere."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from spec import doctables, requirements
from spec.connection import Connection, Role
from spec.constants import (
    PROTOCOL_VERSION,
    Capability,
    ErrorCode,
    FrameType,
    LeaveReason,
    is_fatal,
)
from spec.errors import ProtocolError
from spec.events import Hello, Welcome

DOC = requirements.PROTOCOL_PATH
TEXT = DOC.read_text(encoding="utf-8")
SPEC_DIR = DOC.parent
_HEADING = re.compile(r"^#{2,3}\s+(\d+(?:\.\d+)*)\.?\s+(.+?)\s*$", re.MULTILINE)
_GENERATED = re.compile(r"<!-- BEGIN GENERATED: (\w+) -->(.*?)<!-- END GENERATED: \1 -->", re.S)


def headings() -> dict[str, str]:
    return {m.group(1): m.group(2) for m in _HEADING.finditer(TEXT)}


def hand_written() -> str:
    """The document without its generated blocks and without the §19 index."""
    before, _, index_and_after = _GENERATED.sub("", TEXT).partition("\n## 19.")
    _, heading, after = index_and_after.partition("\n## 20.")
    return before + heading + after


def generated(block: str) -> str:
    found = {m.group(1): m.group(2) for m in _GENERATED.finditer(TEXT)}
    return found[block]


# -- generated blocks ----------------------------------------------------------------------


def test_generated_blocks_are_up_to_date() -> None:
    assert doctables.update(TEXT) == TEXT, "run: python -m spec.doctables --write"


def test_check_cli_reports_a_stale_document_then_write_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "PROTOCOL.md"
    stale.write_text(TEXT.replace("| NICK_IN_USE | no |", "| NICK_IN_USE | yes |"))
    assert doctables.main(["--check", "--path", str(stale)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out of date" in err
    assert doctables.main(["--write", "--path", str(stale)]) == 0
    assert stale.read_text() == TEXT
    assert doctables.main(["--check", "--path", str(stale)]) == 0


def test_check_cli_refuses_a_document_without_markers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "PROTOCOL.md"
    broken.write_text(TEXT.replace("<!-- END GENERATED: errors -->", ""))
    assert doctables.main(["--check", "--path", str(broken)]) == 2
    assert "END GENERATED: errors" in capsys.readouterr().err


def test_every_schema_field_has_a_meaning_and_no_meaning_is_orphaned() -> None:
    keys = doctables.all_field_keys()
    assert set(keys) - set(doctables.FIELD_MEANINGS) == set(), "add them to FIELD_MEANINGS"
    assert set(doctables.FIELD_MEANINGS) - set(keys) == set(), "fields no longer in the schema"


def test_frame_reference_has_one_subsection_per_type_in_type_order() -> None:
    found = re.findall(r"^### 17\.(\d+) (\w+) \(0x([0-9A-F]{2})\)$", TEXT, re.MULTILINE)
    expected = [(str(i), t.name, f"{t.value:02X}") for i, t in enumerate(sorted(FrameType), 1)]
    assert found == expected


# -- requirement IDs -----------------------------------------------------------------------


def test_spec_version_matches_the_code() -> None:
    assert requirements.spec_version() == requirements.SPEC_VERSION
    assert requirements.SPEC_VERSION.split("/") == ["chatwire", str(PROTOCOL_VERSION)]


def test_tags_are_well_formed_and_each_is_defined_once() -> None:
    uses = requirements.tag_uses()
    bad = [u.id for u in uses if not requirements.ID_PATTERN.fullmatch(u.id)]
    assert bad == []
    counts: dict[str, int] = defaultdict(int)
    for use in uses:
        counts[use.id] += 1
    assert [rid for rid, n in counts.items() if n > 1] == []


def test_ids_are_numbered_from_1_without_gaps() -> None:
    """Numbers run 1..n per prefix. IDs are stable (§1.3), so a requirement added by a later
    revision takes the next number wherever it stands: document order is not number order."""
    numbers: dict[str, list[int]] = defaultdict(list)
    for use in requirements.tag_uses():
        prefix, number = use.id.rsplit("-", 1)
        numbers[prefix].append(int(number))
    for prefix, seen in numbers.items():
        assert sorted(seen) == list(range(1, len(seen) + 1)), prefix
    assert list(numbers) == list(requirements.PREFIXES)


def test_body_tags_and_index_list_the_same_ids_in_the_same_order() -> None:
    index = requirements.load_requirements()
    body = [u.id for u in requirements.tag_uses()]
    assert list(index) == body


def test_each_tagged_sentence_has_exactly_one_keyword_and_it_matches_the_index() -> None:
    index = requirements.load_requirements()
    wrong = [
        f"{u.id}: sentence has {u.keywords or 'no keyword'}, index says {index[u.id].level}"
        for u in requirements.tag_uses()
        if len(u.keywords) != 1 or u.keywords[0] != index[u.id].level
    ]
    assert wrong == []
    assert requirements.body_tags() == {rid: r.level for rid, r in index.items()}


def test_no_keyword_stands_outside_a_tagged_sentence() -> None:
    assert requirements.stray_keywords() == []


def test_index_rows_are_complete_and_point_at_the_right_section() -> None:
    uses = {u.id: u for u in requirements.tag_uses()}
    for rid, req in requirements.load_requirements().items():
        assert req.level in requirements.LEVELS, rid
        assert req.side in requirements.SIDES, rid
        assert req.summary and "|" not in req.summary, rid
        assert req.section == uses[rid].section, rid


def test_requirement_references_in_the_text_exist() -> None:
    index = requirements.load_requirements()
    refs = set(re.findall(rf"\b(?:{'|'.join(requirements.PREFIXES)})-\d+\b", hand_written()))
    assert refs - set(index) == set()


def test_load_requirements_rejects_a_repeated_id(tmp_path: Path) -> None:
    doc = tmp_path / "PROTOCOL.md"
    row = "| TEXT-1 | MUST | both | §2.1 | x |"
    doc.write_text(f"## 19. Requirement index\n\n| ID | Level | Side | Section | Summary |\n"
                   f"| --- | --- | --- | --- | --- |\n{row}\n{row}\n")  # fmt: skip
    with pytest.raises(ValueError, match="TEXT-1"):
        requirements.load_requirements(doc)


# -- the code's numbers are all documented -------------------------------------------------


def test_every_frame_type_error_code_reason_and_capability_is_in_the_prose() -> None:
    prose = hand_written()
    names = [*FrameType, *ErrorCode, *LeaveReason, *Capability]
    missing = [n.name for n in names if n.name and not re.search(rf"\b{n.name}\b", prose)]
    assert missing == []


def test_error_registry_lists_every_code_with_its_fatality() -> None:
    registry = generated("errors")
    for code in ErrorCode:
        fatal = "yes" if is_fatal(code) else "no"
        assert f"| `0x{code.value:04X}` | {code.name} | {fatal} |" in registry


def _cited_sections(path: Path) -> set[str]:
    return set(re.findall(r"§(\d+(?:\.\d+)*)", path.read_text(encoding="utf-8")))


def test_sections_cited_by_constants_exist() -> None:
    cited = _cited_sections(SPEC_DIR / "constants.py")
    assert cited and cited - set(headings()) == set()


def test_sections_cited_anywhere_in_spec_and_in_the_document_exist() -> None:
    cited = set(re.findall(r"§(\d+(?:\.\d+)*)", TEXT))
    for path in SPEC_DIR.rglob("*.py"):
        cited |= _cited_sections(path)
    assert cited - set(headings()) == set()


def test_sections_are_numbered_1_to_20() -> None:
    top = [int(n) for n in headings() if "." not in n]
    assert top == list(range(1, 21))


# -- the §14 table's examples really are what the table says -------------------------------


def _malformed_rows() -> list[tuple[str, str, bytes, str]]:
    """(ID, input, example bytes, code) for every row of the §14 table."""
    section = TEXT.split("\n## 14.")[1].split("\n## 15.")[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[4].startswith("[MAL-"):
            example = re.match(r"`([0-9a-f ]+)`", cells[1])
            assert example, line
            rows.append((cells[4][1:-1], cells[0], bytes.fromhex(example.group(1)), cells[3]))
    return rows


def _server_verdict(data: bytes, registered: bool) -> str:
    """What the spec's own state machine (plus the version check) says about ``data``."""
    conn = Connection(Role.SERVER)
    if registered:
        conn.receive_data(bytes.fromhex("000000100143484154010000000005616c696365"))
        assert isinstance(conn.next_event(), Hello)
        conn.send(Welcome(nick="alice"))
    conn.receive_data(data)
    try:
        event = conn.next_event()
    except ProtocolError as exc:
        return exc.code.name
    if isinstance(event, Hello) and event.version != PROTOCOL_VERSION:
        return ErrorCode.UNSUPPORTED_VERSION.name
    return f"accepted {event!r}"


def test_malformed_input_table_has_one_row_per_rule() -> None:
    rows = _malformed_rows()
    assert len(rows) >= 16
    numbers = [int(r[0].removeprefix("MAL-")) for r in rows]
    # The first revision's rules 1..16, then rows a later revision added (MAL-20 onwards).
    assert numbers[:16] == list(range(1, 17))
    assert numbers == sorted(set(numbers))


@pytest.mark.parametrize(("rid", "what", "data", "code"), _malformed_rows())
def test_malformed_input_example_gives_the_tabled_error(
    rid: str, what: str, data: bytes, code: str
) -> None:
    name, kind = code.split()
    assert kind == ("(fatal)" if is_fatal(ErrorCode[name]) else "(non-fatal)"), rid
    assert _server_verdict(data, registered="after WELCOME" in what) == name, rid
