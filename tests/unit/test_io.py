import csv
import errno
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from churn.core import io
from churn.core.errors import ChurnError
from conftest import spy_reads
from unit.ascii_locale import ascii_locale


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def interrupted_write() -> None:
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        interrupted_write()
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


@pytest.fixture
def umask_022():
    """The common umask, whatever the machine's: a new file is then 0o644, as open() makes it."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_atomic_write_replaces_on_success(tmp_path, umask_022):
    target = tmp_path / "sub" / "out.json"
    io.write_json(target, {"b": 1, "a": [1.5, 2]})
    assert target.read_text() == '{\n  "a": [\n    1.5,\n    2\n  ],\n  "b": 1\n}\n'
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_parquet_bytes_are_stable_and_carry_no_pandas_version(tmp_path):
    frame = pd.DataFrame(
        {"x": [1.0, None], "c": pd.array(["a", None], dtype="string")},
        index=pd.Index([10, 11], name="id"),
    )
    io.write_parquet(tmp_path / "a.parquet", frame)
    io.write_parquet(tmp_path / "b.parquet", frame.copy())
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    meta = json.loads(pq.read_schema(tmp_path / "a.parquet").metadata[b"pandas"])
    assert "pandas_version" not in meta
    back = io.read_parquet(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(back, frame)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ChurnError, match=r"missing\.parquet: file not found"):
        io.read_parquet(tmp_path / "missing.parquet")


def test_broken_json_is_named(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{nope")
    with pytest.raises(ChurnError, match=r"bad\.json: not valid JSON"):
        io.read_json(path)


def test_replace_dir_swaps_contents(tmp_path):
    old, new = tmp_path / "plots", tmp_path / "new"
    old.mkdir()
    (old / "stale.json").write_text("1")
    new.mkdir()
    (new / "fresh.json").write_text("2")
    io.replace_dir(new, old)
    assert [p.name for p in old.iterdir()] == ["fresh.json"]
    assert not new.exists()


def test_csv_has_no_index_unix_lines_and_full_precision(tmp_path):
    path = tmp_path / "x.csv"
    io.write_csv(path, pd.DataFrame({"a": [0.1 + 0.2, 1.0], "b": ["x", "y"]}))
    assert path.read_bytes() == b"a,b\n0.30000000000000004,x\n1.0,y\n"


def test_pickle_round_trips(tmp_path):
    io.write_pickle(tmp_path / "m.pkl", {"w": [1, 2]})
    assert io.read_pickle(tmp_path / "m.pkl") == {"w": [1, 2]}
    with pytest.raises(ChurnError, match=r"m2.pkl: file not found"):
        io.read_pickle(tmp_path / "m2.pkl")


def test_json_refuses_nan_and_writes_nothing(tmp_path):
    path = tmp_path / "metrics.json"
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        io.write_json(path, {"roc_auc": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_file_sits_beside_the_target(tmp_path, monkeypatch, umask_022):
    # os.replace is atomic only within one file system: the temp file must be in the
    # target's own directory, not in the system temp dir.
    seen = []
    real_replace = io.os.replace
    monkeypatch.setattr(io.os, "replace", lambda a, b: (seen.append(a), real_replace(a, b)))
    io.write_text(tmp_path / "sub" / "out.txt", "x")
    assert [p.parent for p in map(type(tmp_path), seen)] == [tmp_path / "sub"]
    assert (tmp_path / "sub" / "out.txt").stat().st_mode & 0o777 == 0o644


def test_an_output_keeps_the_mode_of_the_file_it_replaces_else_follows_the_umask(tmp_path):
    private = tmp_path / "private.txt"
    private.write_text("old")
    private.chmod(0o600)
    io.write_text(private, "new")
    assert (private.read_text(), private.stat().st_mode & 0o777) == ("new", 0o600)
    before = os.umask(0o077)
    try:
        io.write_text(tmp_path / "fresh.txt", "x")
    finally:
        os.umask(before)
    assert (tmp_path / "fresh.txt").stat().st_mode & 0o777 == 0o600
    assert os.umask(before) == before  # left as it was


def test_a_name_near_the_limit_is_written_and_a_failed_write_names_the_target(tmp_path):
    """The temp name is short: NAME_MAX (255) is the target's alone."""
    long = tmp_path / ("a" * 250 + ".txt")
    io.write_text(long, "x")
    assert long.read_text() == "x"

    def full_disk() -> None:
        with io.atomic_path(tmp_path / "out.csv"):
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left") as err:
        full_disk()
    assert (err.value.errno, err.value.filename) == (28, str(tmp_path / "out.csv"))
    with pytest.raises(OSError, match="Error writing") as err, io.atomic_path(tmp_path / "out.csv"):
        raise OSError("Error writing bytes to file")  # pyarrow's: text only
    assert (err.value.errno, err.value.strerror) == (5, "Error writing bytes to file")
    assert err.value.filename == str(tmp_path / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == [long.name]


@pytest.mark.parametrize("under", ["afile", "afile/sub"])
def test_a_file_where_a_folder_should_be_is_not_a_directory(tmp_path, under):
    """The mkdir said 'File exists' of the parent itself: the output's path is named instead."""
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError) as err:
        io.write_text(tmp_path / under / "out.csv", "y")
    assert (err.value.filename, err.value.strerror) == (
        str(tmp_path / under / "out.csv"),
        "Not a directory",
    )


def test_an_unreadable_parquet_file_is_named(tmp_path, monkeypatch):
    path = tmp_path / "train.parquet"
    io.write_parquet(path, pd.DataFrame({"a": [1]}))

    def denied(*_args, **_kwargs):
        raise PermissionError("Failed to open local file")  # pyarrow's, no file name

    monkeypatch.setattr(io.pd, "read_parquet", denied)
    with pytest.raises(PermissionError) as err:
        io.read_parquet(path)
    assert (err.value.filename, err.value.errno) == (str(path), errno.EACCES)
    assert err.value.strerror == "Failed to open local file"


@pytest.mark.parametrize(
    ("raised", "strerror"),
    [
        (OSError(28, "Error writing bytes to file. Detail: disk full"), "Error writing bytes"),
        (OSError(28, ""), "No space left on device"),
    ],
)
def test_a_failed_write_keeps_its_words_or_gets_the_systems(tmp_path, raised, strerror):
    with pytest.raises(OSError, match=r"\w") as err, io.atomic_path(tmp_path / "out.csv"):
        raise raised
    assert err.value.strerror.startswith(strerror)
    assert (err.value.errno, err.value.filename) == (28, str(tmp_path / "out.csv"))


def test_text_is_utf8_whatever_the_locale(tmp_path):
    """Relying on the locale's encoding breaks (or garbles) non-ASCII text in a non-UTF-8 locale."""
    path = tmp_path / "card.json"
    with ascii_locale():
        io.write_text(path, '{"note": "Café ✓"}')
        assert path.read_bytes() == '{"note": "Café ✓"}'.encode()
        assert io.read_json(path) == {"note": "Café ✓"}


def test_yaml_error_is_one_line_naming_the_origin():
    """The default origin is "YAML"; ruamel's multi-line message is folded onto one line."""
    with pytest.raises(ChurnError) as err:
        io.parse_yaml("a: b: c")
    assert str(err.value) == (
        'YAML: not valid YAML (mapping values are not allowed here in "<unicode string>",'
        " line 1, column 5: a: b: c ^ (line: 1))"
    )


def test_a_key_written_twice_is_named_without_advice_to_switch_the_check_off():
    with pytest.raises(ChurnError) as err:
        io.parse_yaml("a: 1\na: 2\n", "params.yaml")
    assert str(err.value).endswith(
        'found duplicate key "a" with value "2" (original value: "1") in "<unicode string>", '
        "line 2, column 1: a: 2 ^ (line: 2))"
    )


def test_an_integer_too_long_for_python_is_one_line():
    """4,301 digits: Python refuses to convert it (a ValueError, which was a traceback)."""
    with pytest.raises(ChurnError) as err:
        io.parse_yaml("seed: " + "9" * 4301, "params.yaml")
    assert str(err.value).startswith("params.yaml: not valid YAML (Exceeds the limit (4300 ")
    assert io.parse_yaml("seed: " + "9" * 4300)["seed"] == int("9" * 4300)


def test_csv_has_unix_lines_even_where_the_os_default_is_crlf(tmp_path, monkeypatch):
    """Unless told otherwise pandas ends CSV lines in os.linesep: CRLF on Windows."""
    monkeypatch.setattr(io.os, "linesep", "\r\n")
    path = tmp_path / "x.csv"
    io.write_csv(path, pd.DataFrame({"a": [1, 2]}))
    assert path.read_bytes() == b"a\n1\n2\n"


def test_parquet_layout_is_pinned(tmp_path):
    """The file's layout is what other readers and byte comparisons rely on.

    A RangeIndex is stored as a real column, pages are zstd, and the pandas metadata is
    canonical sorted-key JSON.
    """
    path = tmp_path / "f.parquet"
    io.write_parquet(path, pd.DataFrame({"x": [1.5, 2.5], "y": [1, 2]}))
    assert pq.read_schema(path).names == ["x", "y", "__index_level_0__"]
    columns = pq.ParquetFile(path).metadata.row_group(0)
    assert {columns.column(i).compression for i in range(3)} == {"ZSTD"}
    raw = pq.read_schema(path).metadata[b"pandas"]
    assert raw == json.dumps(json.loads(raw), sort_keys=True).encode()


def test_read_parquet_reads_only_the_asked_columns(tmp_path):
    path = tmp_path / "f.parquet"
    frame = pd.DataFrame({"x": [1.5, 2.5], "y": [1, 2]}, index=pd.Index([7, 9], name="id"))
    io.write_parquet(path, frame)
    pd.testing.assert_frame_equal(io.read_parquet(path, columns=["y"]), frame[["y"]])


def test_pickle_protocol_is_pinned_to_5(tmp_path):
    """Python's default protocol changes between versions (4 up to 3.13); the bytes must not."""
    io.write_pickle(tmp_path / "m.pkl", [1])
    assert (tmp_path / "m.pkl").read_bytes()[:2] == b"\x80\x05"


def test_replace_dir_into_a_new_nested_place(tmp_path):
    """A first run: no old directory to move away, and its parent does not exist yet."""
    src, dst = tmp_path / "new", tmp_path / "reports" / "plots" / "roc"
    src.mkdir()
    (src / "a.json").write_text("1")
    io.replace_dir(src, dst)
    assert [p.name for p in dst.iterdir()] == ["a.json"]
    assert sorted(p.name for p in dst.parent.iterdir()) == ["roc"]


def test_replace_dir_clears_a_stale_old_copy_left_by_a_crash(tmp_path):
    """A crash between the two renames leaves `.plots.old`; the next run must not trip on it."""
    src, dst = tmp_path / "new", tmp_path / "plots"
    for d, name in ((src, "fresh"), (dst, "current"), (tmp_path / ".plots.old", "stale")):
        d.mkdir()
        (d / name).write_text(name)
    io.replace_dir(src, dst)
    assert [p.name for p in dst.iterdir()] == ["fresh"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plots"]


def test_json_that_is_not_utf8_names_the_byte_and_line(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_bytes(b'{"a": 1,\n "b": "\xff"}')
    with pytest.raises(ChurnError) as err:
        io.read_json(path)
    assert str(err.value) == (f"{path}: line 2: not UTF-8 (byte 0xff); re-save the file as UTF-8")


def test_json_nested_past_the_recursion_limit_is_one_line(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"roc_auc": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ChurnError) as err:
        io.read_json(path)
    assert str(err.value) == f"{path}: not valid JSON (nested too deep)"


def test_csv_fields_of_any_size_lifts_the_limit_only_inside():
    field = "x" * 200_000
    before = csv.field_size_limit()
    with pytest.raises(csv.Error, match="field larger than field limit"):
        next(csv.reader([field]))
    with io.csv_fields_of_any_size():
        assert next(csv.reader([field])) == [field]
    assert csv.field_size_limit() == before
    with pytest.raises(ValueError, match="inside"), io.csv_fields_of_any_size():
        raise ValueError("inside")
    assert csv.field_size_limit() == before


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 24])
def test_first_bad_utf8_finds_the_byte_in_the_file_whatever_the_blocks(tmp_path, block):
    """Blocks of 1 to 3 bytes cut the two- and three-byte characters before the bad byte."""
    path = tmp_path / "f.csv"
    path.write_bytes("id,name\n1,Zürich\n2,€\n".encode() + b"3,caf\xe9\n")
    assert io.first_bad_utf8(path, block) == (
        len("id,name\n1,Zürich\n2,€\n3,caf".encode()),
        0xE9,
        4,
    )
    path.write_bytes("ok\n€".encode())
    assert io.first_bad_utf8(path, block) is None
    path.write_bytes(b"ok\n" + "€".encode()[:2])  # the file ends inside a character
    assert io.first_bad_utf8(path, block) == (3, 0xE2, 2)


def test_not_utf8_at_is_one_line_naming_the_file_the_byte_and_line_or_none(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes("id,name\n1,Zürich\n".encode() + b"2,caf\xe9\n")
    err = io.not_utf8_at("data/f.csv", path)
    offset = len("id,name\n1,Zürich\n2,caf".encode())
    assert str(err) == (
        f"data/f.csv: not UTF-8 (byte 0xe9 at offset {offset}, line 3); re-save the file as UTF-8"
    )
    path.write_bytes("id,name\n1,Zürich\n".encode())  # fixed since the reader failed
    assert io.not_utf8_at("data/f.csv", path) is None


def test_the_csv_header_is_the_first_non_blank_line_as_written(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"\xef\xbb\xbf\r\n\nid,plan,plan,\n1,a,b,\n")  # a BOM, two blank lines
    assert io.read_csv_header(path) == ["id", "plan", "plan", ""]
    path.write_text("\n\n")
    with pytest.raises(ChurnError, match=r"f.csv: file is empty$"):
        io.read_csv_header(path)
    path.write_bytes(b"id,caf\xe9\n")
    with pytest.raises(ChurnError, match=r"f.csv: not UTF-8; re-save the file as UTF-8$"):
        io.read_csv_header(path)
    # A quoted name keeps its line break as written (CRLF, not translated to LF).
    path.write_bytes(b'"a\r\nb",c\r\n1,2\r\n3,4\r\n')
    assert io.read_csv_header(path) == ["a\r\nb", "c"]
    assert io.csv_head_rows(path, 2) == [["a\r\nb", "c"], ["1", "2"]]
    assert io.csv_head_rows(path, 5) == [["a\r\nb", "c"], ["1", "2"], ["3", "4"]]


def test_the_csv_head_is_read_from_a_bounded_prefix(tmp_path, monkeypatch):
    """A stray quote in the header read the whole file as one record: 1.1 GB for 94 MB."""
    monkeypatch.setattr(io, "HEAD_BYTES", 64)
    path = tmp_path / "f.csv"
    reads = spy_reads(monkeypatch, "read")
    unended = (
        f'{path}: no end of line in the first 0 MiB: most likely a quote (") that is never '
        "closed, or a file with no line ends"
    )
    path.write_text('"id,plan\n' + "1,a\n" * 100)
    with pytest.raises(ChurnError) as err:
        io.read_csv_header(path)
    assert str(err.value) == unended
    assert max(reads) == 65
    path.write_bytes(b"id,plan\r" + b"1,a\r" * 100)  # lone CRs end lines, as for pandas
    assert io.csv_head_rows(path, 2) == [["id", "plan"], ["1", "a"]]
    path.write_text("id," + "x" * 70 + "\n1,a\n")
    with pytest.raises(ChurnError) as err:
        io.csv_head_rows(path, 1)
    assert str(err.value) == unended
    # Ended within the prefix: read, though the file goes on past it.
    path.write_text("id,plan\n" + "1,a\n" * 100)
    assert io.read_csv_header(path) == ["id", "plan"]
    assert io.csv_head_rows(path, 2) == [["id", "plan"], ["1", "a"]]
    # The last record asked for must end inside the prefix: one after it has begun there.
    path.write_text("i" * 30 + "\n" + "j" * 40 + "\n" + "k" * 30 + "\n")
    assert io.csv_head_rows(path, 1) == [["i" * 30]]
    with pytest.raises(ChurnError, match="no end of line"):
        io.csv_head_rows(path, 2)
    # A short file is read whole; a character cut at the prefix's end is not a decoding error.
    path.write_text("id,plan\n1,a")
    assert io.csv_head_rows(path, 5) == [["id", "plan"], ["1", "a"]]
    path.write_bytes(b"id,plans\n" + "é".encode() * 60)  # the prefix ends inside an é
    assert io.read_csv_header(path) == ["id", "plans"]
    # Exactly the prefix long: read whole, its last record ended by its last byte.
    path.write_text("id,plan\n" + "x" * 55 + "\n")
    assert path.stat().st_size == 64
    assert io.csv_head_rows(path, 2) == [["id", "plan"], ["x" * 55]]
    # The next record begun at the prefix's last byte shows the one before it ended.
    path.write_text("id," + "p" * 59 + "\nq,r\n")
    assert io.csv_head_rows(path, 1) == [["id", "p" * 59]]
    # One begun only past the prefix (its 65th byte) does not count.
    path.write_text("id," + "p" * 60 + "\nq,r\n")
    with pytest.raises(ChurnError, match="no end of line"):
        io.csv_head_rows(path, 1)


def test_the_csv_head_limit_is_said_in_mib(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b'"' + b"a" * io.HEAD_BYTES)
    with pytest.raises(ChurnError, match=r"f.csv: no end of line in the first 16 MiB: "):
        io.read_csv_header(path)


def test_a_fifo_or_a_character_device_is_written_through_not_replaced(tmp_path):
    """``--out /dev/stdout`` or a pipe gets the finished bytes; the node stays what it was."""
    import stat
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    io.write_text(fifo, "report\n")
    reader.join(timeout=10)
    assert got == ["report\n"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    with pytest.raises(ValueError, match="failed"), io.atomic_path(fifo):
        raise ValueError("failed")  # never opened: a reader would see nothing at all
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]
    io.write_text("/dev/null", "discarded\n")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert io.writes_through(Path("/dev/stdout"))  # a link into /proc, whatever stdout is
    assert not io.writes_through(tmp_path / "new.md")


def test_a_socket_is_no_file_to_write(tmp_path):
    import socket

    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(ChurnError, match=r"/s: a device or socket, not a file to write$"):
            io.write_text(path, "x")


def test_atomic_path_refuses_a_directory_before_any_work(tmp_path):
    """Said on entering, so no work is done and no temp file is left for a rename to fail."""
    (tmp_path / "out.json").mkdir()
    entered = []
    with pytest.raises(IsADirectoryError) as err, io.atomic_path(tmp_path / "out.json"):
        entered.append(True)
    assert err.value.filename == str(tmp_path / "out.json")
    assert (err.value.errno, err.value.strerror) == (errno.EISDIR, "Is a directory")
    assert entered == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (pd.Series(["a", "  ", "\t", None, " x "]), ["a", None, None, None, " x "]),
        (pd.Series(["a", " \u00a0", 1, None], dtype=object), ["a", None, 1, None]),
        (pd.Series(["29.85", "  "], dtype="string[pyarrow]"), ["29.85", None]),
        (pd.Series([1.5, np.nan]), [1.5, None]),  # numbers: untouched
        (pd.Series([[1], [2]]), [[1], [2]]),  # objects that are not text: untouched
    ],
    ids=["str", "object", "string[pyarrow]", "floats", "lists"],
)
def test_blank_as_missing_makes_whitespace_only_text_missing(values, expected):
    got = io.blank_as_missing(values)
    assert [
        None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else v
        for v in got.tolist()
    ] == expected


def test_blank_as_missing_drops_whitespace_only_categories():
    got = io.blank_as_missing(pd.Series(["a", "  ", "b", "a"], dtype="category"))
    assert got.cat.categories.tolist() == ["a", "b"]
    assert got.isna().tolist() == [False, True, False, False]


def test_a_directory_to_write_into_may_be_absent_but_not_a_file(tmp_path):
    io.require_directory_or_absent(tmp_path, "--out")
    io.require_directory_or_absent(tmp_path / "new", "--out")
    (tmp_path / "f").write_text("mine")
    with pytest.raises(ChurnError) as err:
        io.require_directory_or_absent(tmp_path / "f", "--images")
    assert str(err.value) == f"--images {tmp_path / 'f'}: not a directory"
    long = tmp_path / ("f" * 240)
    long.write_text("mine")
    with pytest.raises(ChurnError) as err:
        io.require_directory_or_absent(long, "--out")
    assert (
        str(err.value)
        == f"--out {str(long)[:200]}... ({len(str(long))} characters): not a directory"
    )


def test_file_targets_are_checked_before_any_write(tmp_path):
    """A contract path that was a directory failed prepare after train.parquet was replaced."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("mine")
    io.require_file_targets(tmp_path / "new/deeper/x.json", tmp_path / "file", tmp_path / "dir/x")
    with pytest.raises(ChurnError) as err:
        io.require_file_targets(tmp_path / "ok.json", tmp_path / "dir")
    assert str(err.value) == f"{tmp_path / 'dir'}: Is a directory (a file goes there)"
    with pytest.raises(ChurnError) as err:
        io.require_file_targets(tmp_path / "file/sub/x.json")
    assert str(err.value) == (
        f"{tmp_path / 'file'}: Not a directory ({tmp_path / 'file/sub/x.json'} goes in it)"
    )
    assert (tmp_path / "file").read_text() == "mine"
    assert not (tmp_path / "new").exists()  # a check, not a write


def test_a_file_to_read_that_is_something_else_is_not_called_missing(tmp_path):
    (tmp_path / "d.csv").mkdir()
    os.mkfifo(tmp_path / "f.jsonl")
    for name in ("d.csv", "f.jsonl"):
        with pytest.raises(ChurnError) as err:
            io.require_file(tmp_path / name)
        assert str(err.value) == f"{tmp_path / name}: not a regular file"
    with pytest.raises(ChurnError, match=r"x.csv: file not found \(run the stage"):
        io.require_file(tmp_path / "x.csv")
    (tmp_path / "x.csv").write_text("a\n")
    assert io.require_file(str(tmp_path / "x.csv")) == tmp_path / "x.csv"


def test_paths_in_these_messages_are_clipped_at_200_characters(tmp_path):
    deep = tmp_path / ("d" * 230)
    deep.mkdir()
    shown = f"{str(deep)[:200]}... ({len(str(deep))} characters)"
    with pytest.raises(ChurnError) as err:
        io.require_file(deep)
    assert str(err.value) == f"{shown}: not a regular file"
    with pytest.raises(ChurnError) as err:
        io.require_file_targets(deep)
    assert str(err.value) == f"{shown}: Is a directory (a file goes there)"
    afile = tmp_path / ("f" * 230)
    afile.write_text("mine")
    inside = afile / "x.json"
    with pytest.raises(ChurnError) as err:
        io.require_file_targets(inside)
    assert str(err.value) == (
        f"{str(afile)[:200]}... ({len(str(afile))} characters): Not a directory "
        f"({str(inside)[:200]}... ({len(str(inside))} characters) goes in it)"
    )


def test_a_command_reading_parquet_by_name_is_told_to_name_it_so():
    parquet = b"PAR1\x15\x04\x15\x00\x00"
    with pytest.raises(ChurnError) as err:
        io.refuse_not_text("b.csv", parquet, parquet_read=True)
    assert str(err.value) == "b.csv: not CSV text but a Parquet file: name it .parquet"
    with pytest.raises(ChurnError) as err:
        io.refuse_not_text("b.csv", parquet)
    assert str(err.value) == "b.csv: not CSV text but a Parquet file: save it as a UTF-8 CSV file"
    with pytest.raises(ChurnError) as err:  # other kinds are never "name it .parquet"
        io.refuse_not_text("b.jsonl", b"\x1f\x8b\x08", parquet_read=True, text="JSON lines")
    assert str(err.value) == (
        "b.jsonl: not JSON lines text but gzip-compressed data: save it as a UTF-8 JSON lines file"
    )
    long = "d/" * 200 + "b.csv"  # 405 characters: clipped at 300
    with pytest.raises(ChurnError) as err:
        io.refuse_not_text(long, b"\x1f\x8b")
    assert str(err.value).startswith(f"{long[:300]}... (405 characters): not CSV text")
    io.refuse_not_text("ok.csv", b"PAR1,x\n1,2\n")  # printable magic without a NUL: text


def test_bzip2_is_told_by_its_block_magic_after_the_level():
    assert io.not_text(b"BZh91AY&SY\x00") == "bzip2-compressed data"
    assert io.not_text(b"BZh9,x\n1,2\n") is None  # a header that starts so
    assert io.not_text(b"BZhx1AY&SY") is None


def test_a_link_to_nothing_is_no_directory_to_write_into(tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "good").symlink_to(target)
    io.require_directory_or_absent(tmp_path / "good", "--out")  # a link to a directory: fine
    long = tmp_path / ("x" * 250)
    long.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ChurnError) as err:
        io.require_directory_or_absent(long, "--out")
    shown = str(long)
    assert str(err.value) == (
        f"--out {shown[:200]}... ({len(shown)} characters): "
        "a symbolic link to nothing (or a loop of links)"
    )


def test_write_parquet_takes_a_table_made_already(tmp_path):
    frame = pd.DataFrame({"a": [1, 2]}, index=pd.Index([5, 6], name="id"))
    io.write_parquet(tmp_path / "frame.parquet", frame)
    io.write_parquet(tmp_path / "table.parquet", io.parquet_table(frame))
    assert (tmp_path / "frame.parquet").read_bytes() == (tmp_path / "table.parquet").read_bytes()


def test_a_file_lock_refuses_a_second_holder_and_is_listed_while_held(tmp_path):
    lock = tmp_path / "x.lock"
    assert io.held_locks() == ()
    with io.file_lock(lock):
        (fd,) = io.held_locks()
        assert os.readlink(f"/proc/self/fd/{fd}") == str(lock)
        with pytest.raises(BlockingIOError), io.file_lock(lock, wait=False):
            pass
        assert io.held_locks() == (fd,)
    assert io.held_locks() == ()
    with io.file_lock(lock, wait=False):  # free again
        assert len(io.held_locks()) == 1
    assert lock.read_text() == ""  # opened to append: never truncated, never written


@pytest.mark.parametrize(
    ("head", "utf16"),
    [
        ("id,a".encode("utf-16-le"), True),
        ("id,a".encode("utf-16-be"), True),
        ("i".encode("utf-16-le")[:1], False),  # no BOM, too short to call
        ("id,".encode("utf-16-le"), False),  # 3 pairs
        (b"id,a,b,c", False),
        (b"PAR1\x15\x04\x15\x00", False),  # Parquet: some NULs, not every other byte
        (b"\0" * 16, False),  # nothing but NULs is no text at all
        (b"", False),
        ("XXXX".encode("utf-16-le"), True),  # text of the very bytes stripped is still text
        ("XXXX".encode("utf-16-be"), True),
        (b"aXbXcXdX", False),  # every other byte an X is no NUL
        (b"XaXbXcXd", False),
        (b"\0\0\0\0\0\0\0\0e", False),  # an odd last byte is no pair: only NULs paired
        (b"a\0b\0c\0dXz", False),  # an X where a NUL should be, in the last pair
    ],
)
def test_utf16_is_a_bom_or_every_other_byte_nul(head, utf16):
    assert io.utf16_like(head) is utf16


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16", "utf-32"])
def test_text_in_utf16_is_named_so_by_every_reader(tmp_path, encoding):
    """Without a BOM, prepare said "control characters (U+0000)", check "not printable"."""
    path = tmp_path / "raw.csv"
    path.write_bytes("id,churn,plan\n1,Yes,a\n".encode(encoding))
    message = f"{path}: not UTF-8 text (it looks like UTF-16 or UTF-32): save it as UTF-8"
    with pytest.raises(ChurnError) as err:
        io.read_csv_header(path)
    assert str(err.value) == message
    with pytest.raises(ChurnError) as err:
        io.refuse_not_text(str(path), path.read_bytes()[: io.SNIFF_BYTES])
    assert str(err.value) == message


def test_the_utf16_message_names_a_long_path_to_300_characters():
    head = "id,churn".encode("utf-16-le")
    for name, shown in (
        ("d/" + "a" * 148, "d/" + "a" * 148),
        ("b" * 301, "b" * 300 + "... (301 characters)"),
    ):
        with pytest.raises(ChurnError) as err:
            io.refuse_not_text(name, head)
        assert str(err.value) == (
            f"{shown}: not UTF-8 text (it looks like UTF-16 or UTF-32): save it as UTF-8"
        )


def test_a_failed_write_takes_away_the_folders_it_made(tmp_path):
    """A failed churn score --output new/dir/s.parquet left new/dir behind, empty."""
    target = tmp_path / "new" / "dir" / "s.csv"

    def failed_write(theirs: str | None = None) -> None:
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            if theirs:  # something else put into the folder meanwhile
                (target.parent / theirs).write_text("kept")
            raise RuntimeError("the work failed")

    with pytest.raises(RuntimeError):
        failed_write()
    assert sorted(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        failed_write("theirs.txt")
    assert sorted(p.name for p in target.parent.iterdir()) == ["theirs.txt"]  # it stays
    with io.atomic_path(tmp_path / "made" / "s.csv") as tmp:  # on success they stay
        tmp.write_text("done")
    assert (tmp_path / "made" / "s.csv").read_text() == "done"
