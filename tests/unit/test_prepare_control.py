"""prepare refuses control characters in the raw file, naming the lines, in one line.

Refused: Unicode category Cc except tab, LF and the CR of a CRLF, i.e. C0 (0x00-0x1F), DEL
(0x7F), C1 (U+0080-U+009F, two bytes in UTF-8) and a bare CR (pandas ends a row there).
"""

from pathlib import Path

import pytest

from churn.core.errors import ChurnError
from churn.stages import prepare

HEADER = b"id,plan,churn\n"
GOOD = [b"1,basic,No\n", b"2,plus,Yes\n", b"3,basic,No\n", b"4,plus,Yes\n"]
TAIL = "; only tab and LF or CRLF line ends are allowed"


def csv_file(tmp_path: Path, rows: list[bytes]) -> Path:
    path = tmp_path / "raw.csv"
    path.write_bytes(HEADER + b"".join(rows))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ChurnError) as err:
        prepare.read_raw(path)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("char", "code"),
    [
        (b"\x00", "U+0000"),
        (b"\x01", "U+0001"),
        (b"\x08", "U+0008"),
        (b"\x0b", "U+000B"),
        (b"\x0c", "U+000C"),
        (b"\x0e", "U+000E"),
        (b"\x1b", "U+001B"),
        (b"\x1f", "U+001F"),
        (b"\x7f", "U+007F"),
        (b"\r", "U+000D"),
        ("\x80".encode(), "U+0080"),
        ("\x85".encode(), "U+0085"),
        ("\x9f".encode(), "U+009F"),
    ],
)
def test_a_control_character_in_a_field_names_its_line(tmp_path, char, code):
    path = csv_file(tmp_path, [*GOOD[:2], b"3,bas" + char + b"ic,No\n", GOOD[3]])
    assert refusal(path) == (f"{path}: 1 line(s) have control characters (line 4: {code})" + TAIL)


@pytest.mark.parametrize(
    "char",
    [b"\t", b" ", "\xa0".encode(), "\xa0\u00c2".encode(), "é".encode(), b"~"],
    ids=["tab", "space", "nbsp", "nbsp-A-circumflex", "e-acute", "tilde"],
)
def test_tab_cr_and_printable_characters_are_fine(tmp_path, char):
    """Printable neighbours of the refused ranges (0x20, 0x7E, U+00A0 = 0xC2 0xA0) pass."""
    frame = prepare.read_raw(csv_file(tmp_path, [b"1,a" + char + b"b,No\n", *GOOD[1:]]))
    assert frame["plan"].iloc[0] == ("a" + char.decode() + "b").strip()


def test_a_tab_inside_a_field_survives(tmp_path):
    frame = prepare.read_raw(csv_file(tmp_path, [b"1,basic\tplan,No\n", *GOOD[1:]]))
    assert frame["plan"].tolist() == ["basic\tplan", "plus", "basic", "plus"]


def test_crlf_line_ends_are_fine(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_bytes((HEADER + b"".join(GOOD)).replace(b"\n", b"\r\n"))
    assert prepare.read_raw(path)["id"].tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize(("last", "code"), [(b"\r", "000D"), (b"\x1f", "001F")])
def test_a_control_character_as_the_last_byte_is_found(tmp_path, last, code):
    """The final byte, with no line end after it: a bare CR, or any other control."""
    path = tmp_path / "raw.csv"
    path.write_bytes(HEADER + b"".join(GOOD) + b"5,basic,No" + last)
    with pytest.raises(ChurnError, match=rf"\(line 6: U\+{code}\)"):
        prepare._check_control_characters(path)


def test_classic_mac_line_ends_keep_their_own_message(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_bytes((HEADER + b"".join(GOOD)).replace(b"\n", b"\r"))
    assert refusal(path) == (
        f"{path}: lines end in a bare carriage return (CR); re-save the file with LF or "
        "CRLF line ends"
    )


def test_nul_in_the_header_is_line_1(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_bytes(b"id,pl\x00an,churn\n" + b"".join(GOOD))
    assert refusal(path) == (f"{path}: 1 line(s) have control characters (line 1: U+0000)" + TAIL)


def test_the_first_control_character_of_a_line_is_shown_and_lines_counted_once(tmp_path):
    path = csv_file(tmp_path, [b"1,\x1b\x00,No\n", GOOD[1], b"3,b\x7fa\x01,No\n", GOOD[3]])
    assert refusal(path) == (
        f"{path}: 2 line(s) have control characters (line 2: U+001B, line 4: U+007F)" + TAIL
    )


def test_at_most_five_lines_are_listed_but_all_are_counted(tmp_path):
    rows = [f"{i},b\x00,No\n".encode() for i in range(1, 8)]
    path = csv_file(tmp_path, rows)
    listed = ", ".join(f"line {n}: U+0000" for n in range(2, 7))
    assert refusal(path) == (f"{path}: 7 line(s) have control characters ({listed})" + TAIL)


def test_a_lone_c1_lead_byte_at_the_end_is_not_read_past(tmp_path):
    """0xC2 as the very last byte has no second byte: no C1 character, no index error."""
    path = tmp_path / "raw.bin"
    path.write_bytes(b"a\n\xc2")
    prepare._check_control_characters(path)  # not UTF-8, but that is parse_csv's to say


def test_nul_in_a_quoted_field_after_a_quoted_newline_is_found(tmp_path):
    """Lines, not rows: a quoted newline makes row 2 span lines 2 and 3."""
    path = csv_file(tmp_path, [b'1,"ba\nsic",No\n', b"2,pl\x00us,Yes\n", *GOOD[2:]])
    assert refusal(path) == (f"{path}: 1 line(s) have control characters (line 4: U+0000)" + TAIL)


BOUNDARY_ROWS = [
    b"1,a\r\nb,No\r\n",  # CRLF: fine
    b"2,x\x85\xc2\x85y,No\n",  # a NEL (U+0085, two bytes)
    b"3,\x00\x01\x02,Yes\n",  # three on one line: one line counted
    b"4,ok,No\r\n",
    b"5,p\ry,No\n",  # a bare CR
    b"6,\x7f,No\n",
    b"7,\x1b[0m,No\n",
    b"8,\xc2\x9f,Yes\n",
]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 64, 1 << 20])
def test_streaming_blocks_of_any_size_find_the_same_lines(tmp_path, size):
    """Blocks of any size: the same lines, each counted once.

    A CRLF or a two-byte C1 cut by a block end, and a line with control characters in
    two blocks, are found (and counted) exactly once.
    """
    path = csv_file(tmp_path, BOUNDARY_ROWS)
    scan = prepare.scan_bytes(path, size)
    assert scan.bad_lines == 6
    assert scan.last_bad == 10
    assert scan.examples == [
        (4, "U+0085"),  # row 1's CRLF inside a field is a line end: rows 2.. are lines 4..
        (5, "U+0000"),
        (7, "U+000D"),
        (8, "U+007F"),
        (9, "U+001B"),
    ]  # five examples at most; line 10's U+009F is counted, not shown
    assert scan.commas == 2 * 9
    assert not scan.quoted
    assert scan.line_ends == 10


def test_scan_sees_a_quote_in_any_block(tmp_path):
    path = csv_file(tmp_path, [*GOOD[:3], b'4,"plus",Yes\n'])
    assert prepare.scan_bytes(path, 4).quoted
    assert not prepare.scan_bytes(csv_file(tmp_path, GOOD), 4).quoted


def test_file_blocks_pair_each_block_with_the_next_byte(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abcdefg")
    blocks = [(bytes(data), following) for data, following in prepare.file_blocks(path, 3)]
    assert blocks == [(b"abc", ord("d")), (b"def", ord("g")), (b"g", 0)]
