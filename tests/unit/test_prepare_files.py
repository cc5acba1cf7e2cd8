"""Known answers for the raw-file checks in prepare, on few-line CSVs written to tmp_path.

A refused file must be named in one exact line that says what is wrong and where
(line numbers count the header as line 1, data rows count from 1); an accepted
file must come back exactly as pandas reads it. The row-width counter is also
called directly on bytes whose lines and fields are counted by hand.
"""

import bz2
import gzip
import lzma

import numpy as np
import pandas as pd
import pytest

from churn.core import io
from churn.core.errors import ChurnError
from churn.stages import prepare
from churn.stages.prepare import _check_last_line, _uneven_rows_unquoted, read_raw


def write(tmp_path, content: str | bytes):
    path = tmp_path / "raw.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# Six one-field rows (lines 2 to 7) under a two-field header: all counted, five listed.
SIX_SHORT = (
    "6 line(s) do not have the header's 2 fields (line 2: 1 fields, line 3: 1 fields, "
    "line 4: 1 fields, line 5: 1 fields, line 6: 1 fields)"
)

# file content -> the message after "<path>: "
REFUSED = {
    "empty": ("", "file is empty"),
    # A quoted newline passes the byte checks (LF ends lines), not the name check.
    "a newline in a name": (
        '"a\nb",c\n1,2\n',
        "header: column 1 (a\\nb) has a character that is not printable text (U+000A)",
    ),
    "header only": ("a,b,c\n", "header only, no data rows"),
    # Given encoding="utf-8", pandas decodes cell by cell and reports the offset inside
    # the cell ("caf\xe9" -> 3): the message gives the byte's offset in the file.
    "latin-1": (
        b"id,name\n1,caf\xe9\n",
        "not UTF-8 (byte 0xe9 at offset 13, line 2); re-save the file as UTF-8",
    ),
    # pandas' own message ends in a newline: it must be folded onto the one line.
    "a row too long": (
        "a,b\n1,2\n3,4,5\n",
        "cannot parse as CSV (Error tokenizing data. C error: Expected 2 fields in line 3, saw 3)",
    ),
    # pandas would take the first field as the index and shift every column left.
    "rows longer than a short header": (
        "a,b\n0,2,3\n1,5,6\n",
        "data rows have more fields than the header",
    ),
    "bare CR line ends": (
        "a,b,c\r1,2,3\r4,5,6\r",
        "lines end in a bare carriage return (CR); re-save the file with LF or CRLF line ends",
    ),
    "semicolons": ("a;b;c\n1;2;3\n", "columns are separated by semicolons; expected commas"),
    # pandas first saw rows wider than the header (1;2,5 is two fields to it).
    "semicolons and decimal commas": (
        "a;b;c\n1;2,5;3\n",
        "columns are separated by semicolons; expected commas",
    ),
    "tabs": ("a\tb\n1\t2\n", "columns are separated by tabs; expected commas"),
    "pipes": ("a|b\n1|2\n", "columns are separated by pipes; expected commas"),
    # The cut line holds a space: the line is split on newlines, not on whitespace.
    "cut mid-write": (
        "id,city,y\n1,Paris,No\n2,New York",
        "last line has 2 of 3 fields and no line end: the file looks truncated",
    ),
    "one short row": (
        "a,b,c\n1,2,3\n4,5\n6,7,8\n",
        "1 line(s) do not have the header's 3 fields (line 3: 2 fields)",
    ),
    # Short by 4 commas in all, which is (3 - 1) * (3 - 1) and (3 - 2) * (3 + 1): the
    # quick comma count must compare with exactly (columns - 1) * (rows + 1).
    "every row short": (
        "a,b,c\n1,2\n3,4\n50\n",
        "3 line(s) do not have the header's 3 fields "
        "(line 2: 2 fields, line 3: 2 fields, line 4: 1 fields)",
    ),
    # Two-byte lines ("10\n") are rows, not the blank lines pandas skips.
    "six short rows, five listed": (
        "a,b\n10\n20\n30\n40\n50\n60\n",
        SIX_SHORT,
    ),
    "six short quoted rows, five listed": (
        'a,b\n"10"\n"20"\n"30"\n"40"\n"50"\n"60"\n',
        SIX_SHORT,
    ),
    # A quoted field holds a comma and a newline: line 4 is the short one.
    "a short row in a quoted file": (
        'a,b,c\n"1","x, y\nz",3\n"4","5"\n6,7,8\n',
        "1 line(s) do not have the header's 3 fields (line 4: 2 fields)",
    ),
    # Blank lines (an empty CRLF line included) are skipped by pandas, so not short,
    # but they still count in the line numbers.
    "a short row after a blank line": (
        "a,b,c\r\n1,2,3\r\n\r\n4,5\r\n",
        "1 line(s) do not have the header's 3 fields (line 4: 2 fields)",
    ),
    "a short row after a blank line, quoted": (
        'a,b,c\r\n"1",2,3\r\n\r\n4,5\r\n',
        "1 line(s) do not have the header's 3 fields (line 4: 2 fields)",
    ),
    # A first data line one empty field too long makes pandas drop that field on every
    # line: the long line and the short one balance the comma count between them.
    "a trailing comma on the first row and a short row": (
        "a,b,c\n1,2,3,\n4,5\n",
        "2 line(s) do not have the header's 3 fields (line 2: 4 fields, line 3: 2 fields)",
    ),
    "a trailing comma on every data row": (
        "a,b,c\n1,2,3,\n4,5,6,\n",
        "2 line(s) do not have the header's 3 fields (line 2: 4 fields, line 3: 4 fields)",
    ),
    "a trailing comma on the first row after blank lines": (
        "a,b,c\n\n\n1,2,3,\n4,5,6\n",
        "1 line(s) do not have the header's 3 fields (line 4: 4 fields)",
    ),
    "a trailing comma on the first row, quoted": (
        'a,b,c\n"1",2,3,\n4,5,6\n',
        "1 line(s) do not have the header's 3 fields (line 2: 4 fields)",
    ),
    "a repeated header": ("id,x\n1,a\nid,x\n2,b\n", "the header is repeated as data row(s) 2"),
    # Two exports joined: the second header starts with its byte order mark.
    "a repeated header with its BOM": (
        "\ufeffid,x\n1,a\n\ufeffid,x\n2,b\n",
        "the header is repeated as data row(s) 2",
    ),
    "a header repeated six times": (
        "id,name\n" + "id,name\n" * 6 + "1,a\n",
        "the header is repeated as data row(s) 1, 2, 3, 4, 5",
    ),
    # pandas would read these as 'plan.1' and 'Unnamed: 1': names the file never had.
    "a name twice": ("id,plan,plan\n1,a,b\n", "header: column 'plan' appears 2 times"),
    "a name twice, quoted": (
        '"id","plan","plan"\n1,a,b\n',
        "header: column 'plan' appears 2 times",
    ),
    "a column without a name": ("id,,plan\n1,a,b\n", "header: column 2 has no name"),
    "trailing commas": ("id,plan,,\n1,a,,\n", "header: column 3 has no name (and 1 more)"),
    "a blank name": ("id, ,plan\n1,a,b\n", "header: column 2 has no name"),
}


@pytest.mark.parametrize(("content", "message"), REFUSED.values(), ids=REFUSED)
def test_a_bad_file_is_refused_with_one_exact_line(tmp_path, content, message):
    """Guards each file-level check: it must fire, and name the file, line and counts."""
    path = write(tmp_path, content)
    with pytest.raises(ChurnError) as err:
        read_raw(path)
    assert str(err.value) == f"{path}: {message}"


# file content -> the frame read, as {column: values}
ACCEPTED = {
    "no newline after a full last row": (
        "a,b,c\n1,2,3\n4,5,6",
        {"a": [1, 4], "b": [2, 5], "c": [3, 6]},
    ),
    # pandas skips a whitespace-only line, so it is no short row; the comma count
    # matches a valid file's, and the row walk must not be asked.
    "a whitespace-only line": ("a,b\n1,2\n  \n3,4\n", {"a": [1, 3], "b": [2, 4]}),
    "one column, no delimiter": ("name\nx\ny\n", {"name": ["x", "y"]}),
    "a semicolon inside a comma-separated header": ("a;b,c\n1,2\n", {"a;b": [1], "c": [2]}),
    "quoted commas and newlines": (
        'a,b,c\n1,"x, y\nz",3\n',
        {"a": [1], "b": ["x, y\nz"], "c": [3]},
    ),
    # No text column to probe for a repeated header.
    "numbers only": ("a,b\n1,2\n3,4\n", {"a": [1, 3], "b": [2, 4]}),
    "one text column": (
        "id,x,y\n1,3.5,Yes\n2,4.0,No\n",
        {"id": [1, 2], "x": [3.5, 4.0], "y": ["Yes", "No"]},
    ),
    # Numeric columns cannot hold a repeated header (it would make them text): a row of
    # numbers equal to number-named columns is data.
    "numbers equal to the column names": (
        "2023,2024\n2023,2024\n5,7\n",
        {"2023": [2023, 5], "2024": [2024, 7]},
    ),
    # Whitespace-only cells are missing like empty ones: the numbers stay numbers, and no
    # category "" appears (categories read as such, or text).
    "whitespace-only cells": (
        "id,q,x,c\n1,u,2.5,a\n2,v,  ,\t\n3,w,4,b\n",
        {"id": [1, 2, 3], "q": ["u", "v", "w"], "x": [2.5, None, 4.0], "c": ["a", None, "b"]},
    ),
    # pandas skips blank lines before the header; so does the check of its names.
    "blank lines before the header": ("\n\nid,x\n1,2\n", {"id": [1], "x": [2]}),
    # The probed column equals its name, but the row as a whole is not the header.
    "a cell equal to its column's name": (
        "id,name\n1,name\n2,x\n",
        {"id": [1, 2], "name": ["name", "x"]},
    ),
}


@pytest.mark.parametrize(("content", "expected"), ACCEPTED.values(), ids=ACCEPTED)
def test_a_good_file_is_read_as_is(tmp_path, content, expected):
    """Guards against false alarms: valid shapes each check could mistake for a bad file."""
    got = read_raw(write(tmp_path, content)).astype(object)
    assert got.where(got.notna(), None).to_dict("list") == expected


def test_quoted_rows_are_walked_as_utf8_whatever_the_locale(tmp_path, ascii_locale):
    """The quoted-file walk must decode UTF-8 itself, not in the locale's encoding."""
    path = write(tmp_path, 'id,city\n1,"Z\u00fcrich, ZH"\n22\n')
    with pytest.raises(ChurnError) as err:
        read_raw(path)
    assert str(err.value) == (
        f"{path}: 1 line(s) do not have the header's 2 fields (line 3: 1 fields)"
    )


def test_the_first_data_row_is_read_as_utf8_whatever_the_locale(tmp_path, ascii_locale):
    """The width check reads the first data row itself: UTF-8, not the locale's encoding."""
    frame = read_raw(write(tmp_path, "id,city\n1,Z\u00fcrich\n2,Bern\n"))
    assert frame["city"].tolist() == ["Z\u00fcrich", "Bern"]


def test_a_quoted_field_longer_than_the_csv_modules_limit_is_walked(tmp_path):
    """Csv refuses fields over 131,072 characters unless told; pandas reads them."""
    long = "a, b " * 40_000
    path = write(tmp_path, f'id,note\n1,"{long}"\n2,x\n3\n')
    with pytest.raises(ChurnError) as err:
        read_raw(path)
    assert str(err.value) == (
        f"{path}: 1 line(s) do not have the header's 2 fields (line 4: 1 fields)"
    )
    path = write(tmp_path, f'id,note\n1,"{long}"\n2,x\n')
    assert read_raw(path)["note"].str.len().tolist() == [len(long), 1]


@pytest.mark.parametrize("cell", [" ", "", "NA"])
def test_blank_and_na_cells_are_missing(tmp_path, cell):
    """A whitespace cell, an empty cell and pandas' NA all become missing values."""
    frame = read_raw(write(tmp_path, f"id,x\n1,{cell}\n2,3.5\n"))
    assert frame["x"].isna().tolist() == [True, False]


@pytest.mark.parametrize(
    ("content", "fields"),
    [
        # Seen from byte 1 it would read 'x,y",z': three fields.
        ('"x,y",z', 2),
        # Cut inside the two bytes of "é": still counted, not a decode error.
        (b"a,b,c\n1,caf\xc3", 2),
    ],
    ids=["a single line", "cut inside a character"],
)
def test_a_cut_last_line_is_read_from_its_first_byte(tmp_path, content, fields):
    """The last line's fields are counted from its start, whatever bytes it ends in."""
    path = write(tmp_path, content)
    with pytest.raises(ChurnError) as err:
        _check_last_line(path, 3)
    assert str(err.value) == (
        f"{path}: last line has {fields} of 3 fields and no line end: the file looks truncated"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a,b", ([(1, 2)], 1)),  # no line end at all
        (b"a,b,c\n1,2", ([(2, 2)], 1)),  # the last line has no line end
        (b"12\na,b,c\n", ([(1, 1)], 1)),  # the first line counts like any other
    ],
)
def test_uneven_rows_unquoted_counts_every_line(data, expected):
    """Lines and fields counted by hand; a line without a line end is still a line."""
    assert _uneven_rows_unquoted(np.frombuffer(data, dtype=np.uint8), 3) == expected


def test_blocks_of_rows_read_as_one_file(tmp_path, monkeypatch):
    """Parsed two rows at a time: categories united, integers compact, ids kept as written."""
    monkeypatch.setattr(prepare, "READ_ROWS", 2)
    path = write(
        tmp_path,
        "id,plan,n,x,churn\n1,b,1,0.5,No\n2,a,2,,Yes\n3,c,300,1.5,No\n4,a,4,2.5,Yes\n5,,5,3,No\n",
    )
    frame = read_raw(path, ["plan", "churn"], ["id"])
    assert frame.index.tolist() == [0, 1, 2, 3, 4]
    assert frame["id"].tolist() == [1, 2, 3, 4, 5]  # integers as int() writes them
    assert frame["id"].dtype == np.int64  # not downcast
    assert frame["n"].dtype == np.int16  # 300 does not fit int8
    assert frame["n"].tolist() == [1, 2, 300, 4, 5]
    assert frame["x"].isna().tolist() == [False, True, False, False, False]
    assert frame["plan"].cat.categories.tolist() == ["a", "b", "c"]
    assert frame["plan"].astype(object).tolist()[:4] == ["b", "a", "c", "a"]
    assert frame["plan"].isna().tolist() == [False, False, False, False, True]
    assert frame["churn"].cat.categories.tolist() == ["No", "Yes"]


def test_an_id_past_64_bits_is_kept_as_its_digits(tmp_path, monkeypatch):
    """Pandas leaves such a column as Python objects, which no Parquet type holds."""
    monkeypatch.setattr(prepare, "READ_ROWS", 2)  # ints in one block, the long one in another
    rows = "1,5,1\n2,6,2\n12345678901234567890123,7,3\n,8,99999999999999999999\n"
    path = write(tmp_path, "id,n,big\n" + rows)
    frame = read_raw(path, [], ["id"])
    assert frame["big"].tolist() == [1.0, 2.0, 3.0, 1e20]  # not the id: a number, as a float
    assert frame["id"].tolist()[:3] == ["1", "2", "12345678901234567890123"]
    assert frame["id"].isna().tolist() == [False, False, False, True]  # missing, for the contract
    assert frame["n"].tolist() == [5, 6, 7, 8]  # not an id: untouched
    io.write_parquet(tmp_path / "out.parquet", frame)  # was an OverflowError
    assert pd.read_parquet(tmp_path / "out.parquet")["id"].tolist()[2] == "12345678901234567890123"


@pytest.mark.parametrize("rows", [2, 100])
def test_integers_past_64_bits_are_read_as_floats(tmp_path, monkeypatch, rows):
    """As pandas reads them beside a decimal point, not as text or Python ints.

    Inferred, such a column was categorical (each number a category); declared numeric,
    the Parquet writer failed on it.
    """
    monkeypatch.setattr(prepare, "READ_ROWS", rows)  # also with the long one in a block alone
    path = write(
        tmp_path,
        "id,wide,signed,word,mixed,code\n"
        "1,10,-5,a,1,7\n"
        "2,1180591620717411303424,18446744073709551615,b,x,8\n"
        "3,,3, ,3,9\n"
        "4,5,-9223372036854775809,c,4,18446744073709551616\n"
        f"5,{10**400},1,d,5,9\n",  # past float64 too: inf, which the contract names
    )
    frame = read_raw(path, ["code"], ["id"])
    assert frame["wide"].dtype == np.float64
    assert frame["wide"].tolist()[:2] == [10.0, 2.0**70]
    assert frame["wide"].tolist()[4] == np.inf
    assert frame["wide"].isna().tolist() == [False, False, True, False, False]
    assert frame["signed"].dtype == np.float64
    assert frame["signed"].tolist() == [-5.0, 2.0**64, 3.0, -(2.0**63), 1.0]
    assert frame["word"].tolist()[:2] == ["a", "b"]  # words stay text
    assert frame["mixed"].astype(str).tolist() == ["1", "x", "3", "4", "5"]  # the stray check's
    assert frame["code"].cat.categories.tolist() == ["18446744073709551616", "7", "8", "9"]
    io.write_parquet(tmp_path / "out.parquet", frame.drop(columns="mixed"))  # "x" stops prepare


def test_wide_integers_as_floats_leaves_other_columns_alone():
    for values in (
        pd.Series([True, False, None], dtype=object),
        pd.Series(["1", "1_000"], dtype="str"),
        pd.Series(["abc", "12"], dtype="str"),
        pd.Series([None, None], dtype=object),
        pd.Series([1, 2], dtype=np.int64),
        # Other scripts' digits and spaces: float() reads them, score and the service do not.
        pd.Series(["\u0663\u0664", "12"], dtype="str"),  # Arabic-Indic 34
        pd.Series(["\u00a034", "12"], dtype="str"),  # a no-break space before 34
        pd.Series(["12", "\uff13"], dtype="str"),  # fullwidth 3, in a later row
        pd.Series(["12", "3\u3000"], dtype="str"),  # an ideographic space after 3
    ):
        assert prepare.wide_integers_as_floats(values) is values


def test_read_raw_leaves_other_scripts_numbers_as_text_for_the_contract(tmp_path):
    """Read as 34 and trained on, they were refused as "is a number" by score and the service."""
    path = write(tmp_path, "id,n,m\n1,\u0663\u0664,1\n2,\u00a034,\t2 \n3,5,3\n")
    frame = read_raw(path, [], ["id"])
    assert frame["n"].tolist() == ["\u0663\u0664", "\u00a034", "5"]
    assert frame["m"].tolist() == [1, 2, 3]  # ASCII blanks around digits: a number


def test_compact_downcasts_integers_only():
    block = pd.DataFrame({"i": [1, -2], "big": [1, 2**40], "f": [1.0, 2.0], "plan": ["b", "a"]})
    out = prepare.compact(block)
    assert out.dtypes.astype(str).tolist() == ["int8", "int64", "float64", "str"]
    assert out["big"].tolist() == [1, 2**40]


def test_concat_blocks_unites_categories_sorted():
    blocks = [
        pd.DataFrame({"c": pd.Categorical(["z", "x"]), "n": [1, 2]}),
        pd.DataFrame({"c": pd.Categorical(["y", None]), "n": [3, 4]}, index=[2, 3]),
    ]
    out = prepare.concat_blocks(blocks)
    assert out["c"].cat.categories.tolist() == ["x", "y", "z"]
    assert out["c"].astype(object).tolist()[:3] == ["z", "x", "y"]
    assert out["n"].tolist() == [1, 2, 3, 4]
    assert out.index.tolist() == [0, 1, 2, 3]


def test_whitespace_only_cells_of_a_categorical_column_are_missing(tmp_path):
    """Read as categories: '  ' and a tab are no categories (stripped, they would be '')."""
    frame = read_raw(write(tmp_path, "id,plan\n1,basic\n2,  \n3,\t\n4,pro\n"), ["plan"], ["id"])
    assert frame["plan"].cat.categories.tolist() == ["basic", "pro"]
    assert frame["plan"].isna().tolist() == [False, True, True, False]


def test_text_is_read_as_written_where_the_contract_compares_text(tmp_path):
    """Declared categories, the target and the id keep their text; true/false is not guessed.

    pandas made "01234" the number 1234 and "TRUE"/"true" the boolean True, while the
    service, churn score and churn monitor compare the text as sent.
    """
    path = write(
        tmp_path,
        "id,zip,flag,guessed,n,churn\n"
        "0004,01234,TRUE,true,1,true\n4,1234,true,False,2,False\n4.0,01234,False,TRUE,3,true\n",
    )
    frame = read_raw(path, ["zip", "flag", "churn"], ["id"])
    assert frame["id"].tolist() == ["0004", "4", "4.0"]  # three ids, not one
    assert [str(frame[name].dtype) for name in ("id", "guessed")] == ["str", "str"]
    assert frame["zip"].cat.categories.tolist() == ["01234", "1234"]
    assert frame["flag"].cat.categories.tolist() == ["False", "TRUE", "true"]
    assert frame["churn"].cat.categories.tolist() == ["False", "true"]
    assert frame["guessed"].tolist() == ["true", "False", "TRUE"]  # read again as written
    assert frame["n"].tolist() == [1, 2, 3]


def test_a_column_of_booleans_in_some_blocks_only_is_read_as_written(tmp_path, monkeypatch):
    """Block by block, pandas makes an all-true/false block booleans and keeps the others text."""
    monkeypatch.setattr(prepare, "READ_ROWS", 2)
    path = write(tmp_path, "id,flag\n1,True\n2,FALSE\n3,maybe\n4,True\n")
    assert read_raw(path, [], ["id"])["flag"].tolist() == ["True", "FALSE", "maybe", "True"]


def test_numbers_then_text_in_one_block_read_without_pandas_warning(tmp_path):
    """The DtypeWarning of pandas (mixed types in its own read chunks) is noise: none."""
    import warnings

    rows = [f"{i},{i % 7}" for i in range(300_000)] + ["300000,n/k"]
    path = write(tmp_path, "id,x\n" + "\n".join(rows) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = read_raw(path, [], ["id"])
    # As a small file reads: text, as written (the contract names "n/k" if x is numeric).
    assert frame["x"].iloc[[0, 6, -1]].tolist() == ["0", "6", "n/k"]


def test_codes_pandas_typed_in_one_chunk_of_a_block_keep_their_text(tmp_path):
    """Each chunk of 2**20 / columns rows is typed alone by pandas: "01" became 1 beside "X".

    One code was then two categories ("01" and "1"), and a code seen only in the first
    chunk was missing from the contract, which refused the rows of the file it came from.
    """
    rows = [f"{i},{('01', '02', '3.10')[i % 3]}" for i in range(300_000)]
    rows += [f"{300_000 + i},{('02', 'X')[i % 2]}" for i in range(10)]
    path = write(tmp_path, "id,code\n" + "\n".join(rows) + "\n")
    frame = read_raw(path, [], ["id"])
    assert sorted(frame["code"].unique()) == ["01", "02", "3.10", "X"]
    assert frame["code"].iloc[[0, 2, -1]].tolist() == ["01", "3.10", "X"]


def test_a_file_changed_while_read_still_names_the_byte(tmp_path, monkeypatch):
    """first_bad_utf8 finds nothing only if the file changed after pandas read it."""
    path = tmp_path / "raw.csv"
    path.write_bytes(b"id,x\n1,caf\xe9\n")
    monkeypatch.setattr(prepare.io, "first_bad_utf8", lambda _path: None)
    with pytest.raises(ChurnError) as err:
        read_raw(path)
    assert str(err.value) == f"{path}: not UTF-8 (byte 0xe9); re-save the file as UTF-8"


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["1", "-7", "0", "123456789012345678"], [1, -7, 0, 123456789012345678]),
        (["1", "0004"], ["1", "0004"]),  # a leading zero: the text is the id
        (["1", "+2"], ["1", "+2"]),
        (["1", "2.0"], ["1", "2.0"]),
        (["1", "-0"], ["1", "-0"]),
        (["1", "1234567890123456789"], ["1", "1234567890123456789"]),  # 19 digits: text
        (["1", None], ["1", None]),  # missing: left for the contract to name
        (["a1", "2"], ["a1", "2"]),
    ],
)
def test_ids_are_numbers_only_where_the_numbers_print_back_as_written(ids, expected):
    values = pd.Series(ids, dtype="str")
    got = prepare.integers_as_written(values)
    assert (got.dtype == np.int64) == all(isinstance(v, int) for v in expected)
    assert [None if pd.isna(v) else v for v in got.tolist()] == expected


def test_blank_cells_in_ids_and_retyped_columns_are_missing_not_numbers(tmp_path, monkeypatch):
    """Two rows a block: the flag is true/false (and a missing cell) in the first, not after."""
    monkeypatch.setattr(prepare, "READ_ROWS", 2)
    path = write(
        tmp_path,
        "id,flag,plan,churn\n1,TRUE,01,No\n2,,02,Yes\n  ,false,\t,No\n4,  ,02,No\n",
    )
    frame = read_raw(path, ["plan", "churn"], ["id"])
    shown = {name: [None if pd.isna(v) else v for v in frame[name]] for name in ("id", "flag")}
    assert shown == {"id": ["1", "2", None, "4"], "flag": ["TRUE", None, "false", None]}
    assert frame["plan"].cat.categories.tolist() == ["01", "02"]
    assert frame["plan"].isna().tolist() == [False, False, True, False]


def test_a_file_of_text_categories_is_parsed_once(tmp_path, monkeypatch):
    """The second, slower read is only for columns pandas retyped."""
    calls = []
    real = prepare._parsed_blocks
    monkeypatch.setattr(
        prepare, "_parsed_blocks", lambda *a, **k: calls.append(k.get("columns")) or real(*a, **k)
    )
    path = write(tmp_path, "id,plan,zip,churn\n1,basic,01234,No\n2,pro,94105,Yes\n")
    frame = read_raw(path, ["plan", "churn"], ["id"])
    assert calls == [None]
    assert frame["plan"].cat.categories.tolist() == ["basic", "pro"]
    assert read_raw(path, ["plan", "zip", "churn"], ["id"])["zip"].tolist() == ["01234", "94105"]
    assert calls == [None, None, ["zip"]]


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (gzip.compress, "gzip-compressed data"),
        (bz2.compress, "bzip2-compressed data"),
        (lzma.compress, "xz-compressed data"),
        (lambda data: b"\x28\xb5\x2f\xfd\x24\x00" + data, "zstd-compressed data"),
        (lambda data: b"PK\x03\x04\x14\x00" + data, "a zip archive (an Excel .xlsx file is one)"),
        (lambda data: b"PAR1\x15\x04\x15\x00" + data, "a Parquet file"),
        (lambda data: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + data, "an old Excel .xls file (OLE2)"),
        (lambda data: b"ARROW1\x00\x00" + data, "an Arrow or Feather file"),
        (lambda data: b"\xff\xff\xff\xff\x10\x00" + data, "an Arrow stream"),
        (lambda data: b"7z\xbc\xaf\x27\x1c\x00\x04" + data, "a 7-Zip archive"),
    ],
)
def test_a_raw_file_that_is_no_text_is_named_so(tmp_path, make, kind):
    """A gzip file named .csv was "not UTF-8", with no word of compression."""
    path = tmp_path / "raw.csv"
    path.write_bytes(make(b"id,x\n1,a\n2,b\n"))
    for read in (read_raw, io.read_csv_header):
        with pytest.raises(ChurnError) as err:
            read(path)
        assert str(err.value) == f"{path}: not CSV text but {kind}: save it as a UTF-8 CSV file"


@pytest.mark.parametrize(
    "head", [b"PAR1,x\n1,2\n", b"BZh,x\n1,2\n", b"(\xc2\xb5s),x\n1,2\n", b"PK,x\n", b""]
)
def test_text_that_starts_like_a_magic_number_is_text(head):
    assert io.not_text(head) is None


def test_a_plain_csv_named_like_a_compressed_file_is_read_as_the_text_it_is(tmp_path):
    """The reader took the compression from the name: BadGzipFile, LZMAError tracebacks."""
    for name in ("raw.csv.gz", "raw.csv.xz", "raw.csv.bz2", "raw.csv.zip"):
        path = tmp_path / name
        path.write_text("id,x\n1,a\n2,b\n3,a\n4,b\n")
        assert read_raw(path)["x"].tolist() == ["a", "b", "a", "b"]


def test_a_quote_left_open_over_whole_rows_is_refused_with_its_line(tmp_path):
    """A stray quote swallowed rows 5 to 9 into one id, and prepare kept 4 rows fewer."""
    rows = [f"{i},{'Yes' if i % 3 else 'No'},{i % 4},plan{i % 2}" for i in range(1, 13)]
    rows[4] = '"' + rows[4]  # line 6: the quote opens at the start of row 5
    rows[8] = rows[8].replace(",", '",', 1)  # line 10: and closes inside row 9
    path = write(tmp_path, "id,churn,calls,plan\n" + "\n".join(rows) + "\n")
    with pytest.raises(ChurnError) as err:
        read_raw(path, [], ["id"])
    assert str(err.value) == (
        f"{path}: line 6: the quoted value of column 'id' runs on over 3 line(s) that read as "
        "whole rows of 4 fields: a quote left open (or a stray one)? Fix the quoting"
    )


def test_a_quoted_value_over_lines_that_are_no_rows_is_kept(tmp_path):
    rows = ['1,Yes,3,"plan\nA"', '2,No,4,"x, y\nz"', '3,No,1,"a\nb,c,d"', "4,No,1,plan"]
    path = write(tmp_path, "id,churn,calls,plan\n" + "\n".join(rows) + "\n")
    frame = read_raw(path, [], ["id"])
    assert frame["plan"].tolist() == ["plan\nA", "x, y\nz", "a\nb,c,d", "plan"]  # 2 commas: no row


def test_a_quote_left_open_over_one_row_is_refused(tmp_path):
    """A field of two lines, the second a whole row, is found too."""
    rows = [f"{i},{'Yes' if i % 3 else 'No'},{i % 4},plan{i % 2}" for i in range(1, 9)]
    rows[4] = '"' + rows[4]  # line 6
    rows[5] = rows[5] + '",No,1,plan'  # line 7: the row the quote swallowed
    path = write(tmp_path, "id,churn,calls,plan\n" + "\n".join(rows) + "\n")
    with pytest.raises(
        ChurnError, match=r": line 6: the quoted value of column 'id' runs on over 1 "
    ):
        read_raw(path, [], ["id"])


def test_the_first_field_holding_rows_is_named_whatever_follows(tmp_path):
    """A later line break that holds no row must not clear what was found."""
    rows = [f"{i},{'Yes' if i % 3 else 'No'},{i % 4},plan{i % 2}" for i in range(1, 13)]
    rows[4] = '"' + rows[4]
    rows[8] = rows[8].replace(",", '",', 1)
    rows[10] = '11,No,1,"two\nlines"'
    path = write(tmp_path, "id,churn,calls,plan\n" + "\n".join(rows) + "\n")
    with pytest.raises(ChurnError, match=r": line 6: the quoted value of column 'id' runs on"):
        read_raw(path, [], ["id"])


def test_a_field_past_the_header_is_named_by_its_place():
    row = ["1", "Yes", "3", "plan", "x\n1,2,3,4"]
    assert prepare._swallowed_in(row, ["id", "churn", "calls", "plan"], 7, 4) == (7, "#5", 1)
    assert prepare._swallowed_in(row[:4], ["id", "churn", "calls", "plan"], 7, 4) is None
