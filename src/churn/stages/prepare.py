"""Stage ``prepare``: validate the raw table against the contract, type it, split it.

The raw file is checked before anything is transformed (see ``contract.py``).
Then blank numbers become missing values, categorical columns become strings,
the target becomes 0/1 (1 = the positive label) and the id column becomes the
index, so it is carried along for the per-row predictions without ever being
a feature. Outputs are Parquet so the dtypes survive.
"""

import contextlib
import csv
import logging
import math
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn.core import entry, io
from churn.core.contract import (
    NUMBER_TEXT,
    Contract,
    check_delimiter,
    check_header_names,
    check_name_text,
    check_slices,
    contract_text,
    observe,
    resolve_contract,
    validate,
)
from churn.core.decision import check_value_column
from churn.core.errors import ChurnError, clip
from churn.core.params import PrepareParams, load_params

log = logging.getLogger("churn.prepare")

MAX_SPLIT_DRIFT = 0.02  # a split's positive rate may differ from the whole by 2 points
TAIL_BYTES = 65536  # enough of the file's end to hold its last line
EXAMPLES = 5  # offending lines shown in a message
# Unicode's control characters (category Cc) except tab, LF and the CR of a CRLF: C0
# (0x00-0x1F), DEL (0x7F) and C1 (U+0080-U+009F). Invisible in an editor, never part of a
# customer record: a NUL or an escape sequence in a field is a corrupt or hostile file,
# and pandas ends a row at a bare CR, splitting the line in two.
CONTROL_BYTES = np.zeros(256, dtype=bool)
CONTROL_BYTES[[*range(0x20), 0x7F]] = True
CONTROL_BYTES[[ord("\t"), ord("\n"), ord("\r")]] = False
CR, LF = ord("\r"), ord("\n")
C1_LEAD = 0xC2  # in UTF-8, U+0080-U+009F are 0xC2 followed by 0x80-0x9F
READ_ROWS = 1 << 20  # the CSV is parsed a million rows at a time
BLOCK_BYTES = 1 << 24  # the byte checks stream the file in 16 MiB blocks: memory flat in its size


def read_raw(
    path: str | Path, categorical: Iterable[str] = (), text: Iterable[str] = ()
) -> pd.DataFrame:
    """Read the raw CSV (UTF-8, comma-separated) and run the file-level checks.

    Empty and whitespace-only cells count as missing. Columns named in ``categorical`` are
    pandas categories of their text as written: one small code per row instead of one
    string per row. Those in ``text`` (the id) are kept as text as written. Integer
    columns take the smallest integer dtype that holds them. File-level problems (empty,
    header only, not UTF-8, another delimiter, lines of another width, a cut last line,
    a header repeated mid-file) stop here with a message naming the file.
    """
    p = io.require_file(path)
    with p.open("rb") as fh:
        io.refuse_not_text(str(p), fh.read(io.SNIFF_BYTES))
    frame = parse_csv(p, categorical, text)
    # pandas has renamed a repeated or empty name by now: the names as written decide.
    header = io.read_csv_header(p)
    check_header_names(header, str(p))
    check_file(frame, p)
    check_name_text(header, str(p))  # after the byte checks, which name the line
    return frame


def parse_csv(
    path: Path, categorical: Iterable[str] = (), text: Iterable[str] = ()
) -> pd.DataFrame:
    """Parse with pandas, ``READ_ROWS`` rows at a time, the text as written (see ``read_raw``).

    pandas' own categories are the fast way (it keeps each distinct text once as it
    parses), but it turns them into numbers or true/false when they all look like it
    ('01234' becomes 1234, 'TRUE' and 'true' both True), and so it does with any column of
    true/false words. The contract compares the text as sent, so only such columns are
    read a second time, as text. Each block is made compact (small integers) before the
    next is read: the peak is about twice the compact table, not pandas' 8 bytes a cell.
    """
    categories, written = set(categorical), set(categorical) | set(text)
    dtypes = {**dict.fromkeys(text, "str"), **dict.fromkeys(categories, "category")}
    blocks = _parsed_blocks(path, dtypes, written)
    typed = sorted({name for block in blocks for name in block.columns if retyped(block[name])})
    if typed:
        again = _parsed_blocks(path, dict.fromkeys(typed, "str"), set(typed), columns=typed)
        for block, as_written in zip(blocks, again, strict=True):
            for name in typed:
                values = as_written[name]
                block[name] = values.astype("category") if name in categories else values
    frame = concat_blocks(blocks)
    for name in set(text) & set(frame.columns):
        frame[name] = integers_as_written(frame[name])
    for name in [name for name in frame.columns if name not in written]:
        frame[name] = wide_integers_as_floats(frame[name])
    return frame


def wide_integers_as_floats(values: pd.Series) -> pd.Series:
    """A column of numbers pandas left untyped, as float64; any other column as it is.

    An integer that fits neither int64 nor, beside a negative one, uint64 (2**70,
    -2**63-1) leaves pandas' column Python ints or text: inferred, each number was a
    category of its own, and declared numeric it broke the Parquet writer. Beside a
    decimal point pandas reads the same integer as a float, and so it is read here.
    """
    if not (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)):
        return values
    present = values.dropna()  # objects: Python ints, beside text in another block
    if present.empty or not re.fullmatch(NUMBER_TEXT, str(present.iloc[0])):
        return values  # a column of words fails at its first
    if not present.astype(str).str.fullmatch(NUMBER_TEXT).all():
        return values
    # Through text: a Python int of 309 digits or more is past float64 (inf here, which
    # the contract's finite check names); float() of the int itself raised OverflowError.
    return values.astype("str").astype("float64")


# An integer as int() writes it: no sign but "-", no leading zero, at most 18 digits (int64).
CANONICAL_INTEGER = r"0|-?[1-9][0-9]{0,17}"


def integers_as_written(values: pd.Series) -> pd.Series:
    """Text ``values`` as int64 if each is an integer written the one way int() prints it.

    Then no two texts share a number and each number prints back as its text, so
    nothing of what was written is lost, and ids hash and compare as numbers (text ids
    cost prepare a third more time at 2M rows). Anything else ('0004', '4.0', a
    missing id) keeps the whole column as text.
    """
    if values.isna().any() or not values.str.fullmatch(CANONICAL_INTEGER).all():
        return values
    return values.astype("int64")


def retyped(values: pd.Series) -> bool:
    """Whether pandas made some of a block's text other values: numbers, true/false.

    Within one block pandas makes a column true/false only if every present cell is
    such a word: dtype bool, or objects True/False beside missing cells. And it types
    its own chunks of a block (2**20 cells / columns rows, 32,768 at 21 columns) one by
    one: a chunk of "01" and "02" became the ints 1 and 2 beside a later chunk's text
    "02" and "X", one code read as two categories. Any column of text beside other
    values is read again, as written.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):  # Python ints past 64 bits are objects
        return pd.api.types.infer_dtype(values.cat.categories) != "string"
    if values.dtype == bool:
        return True
    return values.dtype == object and any(not isinstance(v, str) for v in values.dropna().unique())


def _parsed_blocks(
    path: Path, dtypes: dict[str, str], written: set[str], columns: list[str] | None = None
) -> list[pd.DataFrame]:
    """The file's blocks as pandas parses them with ``dtypes`` (of ``columns``: all by default)."""
    try:
        with warnings.catch_warnings():
            # A column of numbers and text within one block is pandas' DtypeWarning; the
            # contract names such rows itself, so the warning is noise on stderr.
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            # Left to itself, pandas reads rows one field longer than the header by taking
            # the first field as the index, shifting every column left; index_col=False
            # makes that a warning instead, and the warning an error here.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            with pd.read_csv(
                path,
                usecols=columns,
                na_values=[" "],
                keep_default_na=True,
                encoding="utf-8",
                compression=None,  # the bytes decide (io.refuse_not_text), not a .gz name
                index_col=False,
                dtype=dtypes,  # names absent from the file: ignored
                chunksize=READ_ROWS,
            ) as reader:
                return [compact(blank_cells(block, written)) for block in reader]
    except pd.errors.ParserWarning:
        check_delimiter(io.read_csv_header(path), path)
        raise ChurnError(f"{path}: data rows have more fields than the header") from None
    except pd.errors.EmptyDataError:
        raise ChurnError(f"{path}: file is empty") from None
    except UnicodeDecodeError as err:
        # pandas reports the byte's offset inside the piece it decoded: find it in the file.
        found = io.not_utf8_at(str(path), path)
        if found is None:  # the file changed since pandas read it: what pandas saw
            byte = err.object[err.start]
            raise ChurnError(
                f"{path}: not UTF-8 (byte 0x{byte:02x}); re-save the file as UTF-8"
            ) from None
        raise found from None
    except pd.errors.ParserError as err:
        raise ChurnError(f"{path}: cannot parse as CSV ({' '.join(str(err).split())})") from None


def blank_cells(block: pd.DataFrame, written: set[str]) -> pd.DataFrame:
    """``block`` with whitespace-only cells missing, in every column.

    pandas took "" and " " as missing but "  " or a tab as text, so one such cell made
    a numeric column text (and an inferred contract call it categorical). A column that
    was text only because of them is read as numbers, as pandas would have read it,
    unless it is one of ``written`` (read as written).
    """
    for name in block.columns:
        column = block[name]  # pandas makes a new Series at each block[name]
        values = io.blank_as_missing(column)
        if values is column:
            continue
        if name not in written:
            with contextlib.suppress(ValueError):  # text that is not numbers stays text
                values = pd.to_numeric(values)
        block[name] = values
    return block


def compact(block: pd.DataFrame) -> pd.DataFrame:
    """``block`` with each 64-bit integer column downcast to the smallest that holds it."""
    for name in block.columns:
        if block[name].dtype == np.int64:
            block[name] = pd.to_numeric(block[name], downcast="integer")
    return block


def concat_blocks(blocks: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame from the parsed blocks (a header-only file gives one empty block).

    pandas would turn categories that differ between blocks into objects: each
    categorical column first gets the union of all blocks' categories, sorted.
    """
    for name in blocks[0].columns:
        if isinstance(blocks[0][name].dtype, pd.CategoricalDtype):
            union = set().union(*(set(b[name].cat.categories) for b in blocks))
            for b in blocks:
                b[name] = b[name].cat.set_categories(sorted(union))
    return pd.concat(blocks, ignore_index=True)


def check_file(frame: pd.DataFrame, path: Path) -> None:
    """The checks pandas does not make: delimiter, rows, line ends, row widths, header."""
    _check_delimiter(frame, path)
    if frame.empty:
        raise ChurnError(f"{path}: header only, no data rows")
    _check_line_ends(path)
    scan = scan_bytes(path)
    _check_control_characters(path, scan)
    _check_last_line(path, len(frame.columns))
    _check_row_widths(path, len(frame), len(frame.columns), scan)
    _check_repeated_header(frame, path)


@dataclass
class ByteScan:
    """What one streaming pass over the file's bytes found."""

    commas: int = 0
    quoted: bool = False
    line_ends: int = 0  # LF bytes before the current block
    bad_lines: int = 0  # lines with a control character
    last_bad: int = 0  # the last of them, so a line cut by a block boundary counts once
    examples: list[tuple[int, str]] = field(default_factory=list)  # (line, U+XXXX)


def file_blocks(path: Path, size: int = BLOCK_BYTES) -> Iterator[tuple[np.ndarray, int]]:
    """The file's bytes in blocks of ``size``, each with the byte after it (0 after the last)."""
    with path.open("rb") as fh:
        block = fh.read(size)
        while block:
            following = fh.read(size)
            yield np.frombuffer(block, dtype=np.uint8), following[0] if following else 0
            block = following


def scan_bytes(path: Path, size: int = BLOCK_BYTES) -> ByteScan:
    """Count commas, find quotes and control characters, one block at a time."""
    scan = ByteScan()
    for data, following in file_blocks(path, size):
        _scan_block(scan, data, following)
    return scan


def _scan_block(scan: ByteScan, data: np.ndarray, following: int) -> None:
    """Fold one block into ``scan``; lines are counted by LF, as an editor shows them."""
    ends = np.flatnonzero(data == LF)
    where = np.flatnonzero(_control_mask(data, following))
    lines = np.searchsorted(ends, where) + 1 + scan.line_ends
    new = lines > scan.last_bad
    new_lines, first = np.unique(lines[new], return_index=True)
    if len(new_lines):
        scan.bad_lines += len(new_lines)
        scan.last_bad = int(new_lines[-1])
        room = EXAMPLES - len(scan.examples)
        scan.examples += [
            (int(line), _code_point(data, where[new][i], following))
            for line, i in zip(new_lines[:room], first[:room], strict=True)
        ]
    scan.line_ends += len(ends)
    scan.commas += int(np.count_nonzero(data == ord(",")))
    scan.quoted = scan.quoted or bool(np.count_nonzero(data == ord('"')))


def _control_mask(data: np.ndarray, following: int) -> np.ndarray:
    """True at each byte that starts a refused control character."""
    after = np.append(data[1:], np.uint8(following))  # each byte's successor
    bad = CONTROL_BYTES[data]
    bad |= (data == CR) & (after != LF)
    bad |= (data == C1_LEAD) & (after >= 0x80) & (after <= 0x9F)
    return bad


def _check_control_characters(path: Path, scan: ByteScan | None = None) -> None:
    """Refuse control characters but tab, LF and CRLF anywhere in the (UTF-8) file."""
    scan = scan or scan_bytes(path)
    if not scan.bad_lines:
        return
    listed = ", ".join(f"line {line}: {code}" for line, code in scan.examples)
    raise ChurnError(
        f"{path}: {scan.bad_lines} line(s) have control characters ({listed}); "
        "only tab and LF or CRLF line ends are allowed"
    )


def _code_point(data: np.ndarray, at: int, following: int = 0) -> str:
    """The control character starting at byte ``at``, as U+XXXX (C1 takes two bytes)."""
    if data[at] != C1_LEAD:
        return f"U+{int(data[at]):04X}"
    return f"U+{int(data[at + 1]) if at + 1 < len(data) else following:04X}"


def _check_delimiter(frame: pd.DataFrame, path: Path) -> None:
    check_delimiter([str(name) for name in frame.columns], path)


def _check_line_ends(path: Path) -> None:
    """Lines ended by a bare CR (classic Mac) would be counted as one long line."""
    with path.open("rb") as fh:
        head = fh.read(TAIL_BYTES)
    if b"\r" in head and b"\n" not in head:
        raise ChurnError(
            f"{path}: lines end in a bare carriage return (CR); re-save the file with LF "
            "or CRLF line ends"
        )


def _check_last_line(path: Path, n_columns: int) -> None:
    """A file cut mid-write ends without a newline in a row that is short of fields."""
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - TAIL_BYTES))
        tail = fh.read()
    if tail.endswith(b"\n"):
        return
    last_line = tail.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
    with io.csv_fields_of_any_size():
        fields = next(csv.reader([last_line]), [])
    if len(fields) < n_columns:
        raise ChurnError(
            f"{path}: last line has {len(fields)} of {n_columns} fields and no line end: "
            "the file looks truncated"
        )


def _check_row_widths(path: Path, n_rows: int, n_columns: int, scan: ByteScan) -> None:
    """Refuse lines with other than the header's number of fields.

    pandas pads a short line with NaN, and once the first data line ends in one extra,
    empty field it drops that field on every line that has it. Otherwise it refuses
    longer lines itself, so in an unquoted file whose first data line has the header's
    width the total comma count tells at once whether every line is right (a short
    line and a long one cannot cancel out); only then is each line counted, to name
    them. A file with quotes, where commas and newlines may sit inside fields, is
    walked with the csv module instead.
    """
    if scan.quoted:
        walk = _walk_quoted(path, n_columns)
        _check_swallowed_rows(path, walk.swallowed, n_columns)
        examples, count = walk.examples, walk.count
    elif scan.commas == (n_columns - 1) * (n_rows + 1) and _first_row_width(path) == n_columns:
        return
    else:  # a bad file: reading it whole to name the lines is fine
        data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
        examples, count = _uneven_rows_unquoted(data, n_columns)
    if count:
        listed = ", ".join(f"line {line}: {n} fields" for line, n in examples)
        raise ChurnError(
            f"{path}: {count} line(s) do not have the header's {n_columns} fields ({listed})"
        )


def _first_row_width(path: Path) -> int:
    """Fields on the first non-blank line after the header (check_file has seen data rows)."""
    return len(io.csv_head_rows(path, 2)[1])


def _uneven_rows_unquoted(data: np.ndarray, n_columns: int) -> tuple[list[tuple[int, int]], int]:
    ends = np.flatnonzero(data == ord("\n"))
    if len(ends) == 0 or ends[-1] != len(data) - 1:
        ends = np.append(ends, len(data))
    fields = np.diff(np.searchsorted(np.flatnonzero(data == ord(",")), ends), prepend=0) + 1
    starts = np.concatenate(([0], ends[:-1] + 1))
    blank = (ends - starts) <= 1  # pandas skips empty lines (maybe a lone \r)
    bad = np.flatnonzero((fields != n_columns) & ~blank)
    return [(int(i) + 1, int(fields[i])) for i in bad[:EXAMPLES]], len(bad)


Swallowed = tuple[int, str, int]  # a field's first line, its column, the rows inside it


def _check_swallowed_rows(path: Path, swallowed: Swallowed | None, n_columns: int) -> None:
    """Refuse a quoted field whose lines read as whole rows: a quote left open.

    Such a file has rows of the right width everywhere, and parses: the field ran on
    over the rows after it, whose customers vanished into one value (a new category, or
    an id), with no word said. A field's line with the header's number of fields is
    taken for a row; a free-text field of that many commas on one line is not a
    customer feature this pipeline reads.
    """
    if swallowed:
        line, name, rows = swallowed
        raise ChurnError(
            f"{path}: line {line}: the quoted value of column {clip(repr(name))} runs on "
            f"over {rows} line(s) that read as whole rows of {n_columns} fields: a quote left "
            "open (or a stray one)? Fix the quoting"
        )


@dataclass
class QuotedWalk:
    """What one pass of the csv module over a quoted file found."""

    examples: list[tuple[int, int]] = field(default_factory=list)  # (line, fields) of bad rows
    count: int = 0  # rows of another width than the header's
    swallowed: Swallowed | None = None  # see _swallowed_in


def _walk_quoted(path: Path, n_columns: int) -> QuotedWalk:
    """Rows of another width, and the first field holding whole rows, in one pass."""
    walk = QuotedWalk()
    with io.csv_fields_of_any_size(), path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header, last = next(reader, []), reader.line_num
        for row in reader:
            if row and len(row) != n_columns:
                walk.count += 1
                if len(walk.examples) < EXAMPLES:
                    walk.examples.append((reader.line_num, len(row)))
            # Only a row that took more than one line holds a line break: the rest cost
            # one comparison each.
            if reader.line_num - last > 1 and walk.swallowed is None:
                walk.swallowed = _swallowed_in(row, header, last + 1, n_columns)
            last = reader.line_num
    return walk


def _swallowed_in(row: list[str], header: list[str], line: int, n_columns: int) -> Swallowed | None:
    """(``line``, column, lines of ``n_columns`` fields) of the row's first such field."""
    for i, value in enumerate(row):
        rows = sum(text.count(",") >= n_columns - 1 for text in value.splitlines()[1:])
        if rows:
            return line, header[i] if i < len(header) else f"#{i + 1}", rows
    return None


BOM = "\ufeff"


def _cells(row: pd.Series) -> list[str]:
    """A row's cells as text, the first without a byte order mark."""
    cells = row.astype(str).tolist()
    return [cells[0].removeprefix(BOM), *cells[1:]]  # a frame has a column at least


def _check_repeated_header(frame: pd.DataFrame, path: Path) -> None:
    # A repeated header turns every column into text, so probing one text column
    # finds candidates cheaply; the whole row is compared only for those.
    text_columns = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if not text_columns:
        return
    probe = text_columns[0]
    # Two exports joined: the second header starts with its byte order mark.
    candidates = frame.index[frame[probe].isin([str(probe), BOM + str(probe)])]
    header = [str(c) for c in frame.columns]
    rows = [i for i in candidates if _cells(frame.loc[i]) == header]
    if rows:
        listed = ", ".join(str(i + 1) for i in rows[:5])
        raise ChurnError(f"{path}: the header is repeated as data row(s) {listed}")


def encode_target(values: pd.Series, positive_label: str | int, source: str) -> pd.Series:
    """Map the target to 0/1 ints; exactly two labels, the positive one among them."""
    if values.isna().any():
        raise ChurnError(
            f"{source}: column {values.name!r} has {values.isna().sum()} missing values"
        )
    cat = values.astype("category").array  # each label compared once, not each row
    texts = [str(label) for label in cat.categories]
    labels = sorted(set(texts))
    positive = str(positive_label)
    if len(labels) != 2 or positive not in labels:
        raise ChurnError(
            f"{source}: target {values.name!r} must have two labels including "
            # Quoted: "left , stayed" hid a trailing space; clipped: a key as the target
            # had a label per row.
            f"{positive!r} (found: {clip(', '.join(map(repr, labels)), 200)})"
        )
    is_positive = np.array([text == positive for text in texts], dtype="int64")
    return pd.Series(is_positive.take(cat.codes), index=values.index, name=values.name)


def clean(frame: pd.DataFrame, contract: Contract, source: str) -> pd.DataFrame:
    """Typed features and 0/1 target, indexed by the id, in contract order.

    Integers take the smallest integer dtype that holds them (a 0/1 flag is one
    byte, not eight); categorical columns are pandas categories of their text as written,
    which Parquet stores as a dictionary and every later stage reads back as is.
    """
    index = _index(frame, contract, source)
    # Gathered first, framed once: column by column, pandas warned of fragmentation
    # past 100 columns, and copied the frame to consolidate it.
    columns: dict[str, Any] = {}
    for col in contract.numeric:
        try:
            columns[col] = pd.to_numeric(frame[col], downcast="integer").to_numpy()
        except (ValueError, TypeError) as err:
            raise ChurnError(f"{source}: numeric column {col!r}: {err}") from None
    for col in contract.categorical:
        columns[col] = pd.Series(as_category(frame[col]), index=index)
    columns[contract.target] = encode_target(
        frame[contract.target], contract.positive_label, source
    ).to_numpy()
    return pd.DataFrame(columns, index=index)


def as_category(values: pd.Series) -> pd.Categorical:
    """``values`` as categories of their text as written, sorted; missing stays missing.

    Only the distinct values are turned into text (a few per column), never each row.
    Nothing is stripped or folded: the service, ``churn score`` and ``churn monitor``
    compare the text as sent, so " basic" is not "basic" anywhere.
    """
    cat = values.astype("category").array
    texts = cat.categories.astype(str).to_numpy(dtype=object)
    categories, recode = np.unique(texts, return_inverse=True)
    codes = np.append(recode, -1).take(cat.codes)  # code -1 (missing) takes the appended -1
    return pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype="str"))


def _index(frame: pd.DataFrame, contract: Contract, source: str) -> pd.Index:
    if not contract.id_in_data:
        return pd.RangeIndex(len(frame), name=contract.id)
    ids = frame[contract.id]
    duplicated = ids[ids.duplicated()]
    if ids.isna().any() or not duplicated.empty:
        raise ChurnError(
            f"{source}: id column {contract.id!r} must be unique and present "
            f"({ids.isna().sum()} missing, {len(duplicated)} duplicated)"
        )
    return pd.Index(ids.array, name=contract.id)  # text ids stay Arrow strings, not objects


MIN_ROWS = 4  # a stratified split needs 2 rows of each of the 2 classes


def check_row_count(frame: pd.DataFrame, path: str) -> None:
    """Refuse a file too short to split, before its columns are judged.

    With one row every column was "unique": inference called it a row id or key.
    """
    if len(frame) < MIN_ROWS:
        raise ChurnError(
            f"{path}: {len(frame)} data row(s): too few to split into train and test "
            f"(at least {MIN_ROWS}, 2 of each class)"
        )


def split(
    frame: pd.DataFrame, target: str, params: PrepareParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified, seeded train/test split."""
    counts = frame[target].value_counts()
    if counts.min() < 2:
        raise ChurnError(f"target {target!r}: each class needs at least 2 rows to split")
    train, test = stratified_indices(frame[target].to_numpy(), params.test_size, params.seed)
    return frame.take(train), frame.take(test)


def stratified_indices(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of a stratified shuffle split, draw for draw as scikit-learn's.

    ``train_test_split(stratify=y, test_size=..., random_state=seed)`` makes exactly
    this split (a unit test holds it to that); done in NumPy here so that prepare
    does not import scikit-learn and SciPy (a second per stage run) for one split.
    """
    n_test = math.ceil(test_size * len(y))
    n_train = len(y) - n_test
    _, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    if min(n_train, n_test) < len(class_counts):
        raise ChurnError(
            f"prepare.test_size {test_size}: {n_train} train and {n_test} test rows "
            f"cannot hold each of {len(class_counts)} classes"
        )
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = approximate_mode(class_counts, n_train, rng)
    t_i = approximate_mode(class_counts - n_i, n_test, rng)
    train, test = [], []
    for indices, n, t in zip(class_indices, n_i, t_i, strict=True):
        shuffled = indices.take(rng.permutation(len(indices)))
        train.append(shuffled[:n])
        test.append(shuffled[n : n + t])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def approximate_mode(
    class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState
) -> np.ndarray:
    """Rows to draw per class: the floor of each share, the rest by largest remainder.

    Ties among equal remainders are broken by ``rng``, as scikit-learn does.
    """
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    remainder = continuous - floored
    for value in np.sort(np.unique(remainder))[::-1]:
        if need <= 0:
            break
        (tied,) = np.where(remainder == value)
        take = min(len(tied), need)
        floored[rng.choice(tied, size=take, replace=False)] += 1
        need -= take
    return floored.astype(int)


def check_split(whole: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, target: str) -> None:
    """No id on both sides; both classes on each; each side's positive rate near the whole's.

    Within 2 points; a tiny split cannot get closer than one row's worth (1/rows), so
    that is the floor of the tolerance. A side without one class passes that on a rare
    enough class, but nothing can be trained or measured on it.
    """
    shared = train.index.intersection(test.index)
    if len(shared):
        raise ChurnError(f"split: {len(shared)} id(s) in both train and test (e.g. {shared[0]!r})")
    rate = whole[target].mean()
    for name, part in (("train", train), ("test", test)):
        for label, kind in ((1, "positive"), (0, "negative")):
            if not (part[target] == label).any():
                raise ChurnError(
                    f"split: {name} has no {kind} {target!r} rows (of {len(part)}): each side "
                    "needs both classes; add rows or change prepare.test_size"
                )
        drift = abs(part[target].mean() - rate)
        if drift > max(MAX_SPLIT_DRIFT, 1 / len(part)):
            raise ChurnError(
                f"split: {name} positive rate {part[target].mean():.3f} is {drift * 100:.1f} "
                f"points from the whole's {rate:.3f} (limit {MAX_SPLIT_DRIFT * 100:.0f})"
            )


def check_features_have_values(
    frame: pd.DataFrame, train: pd.DataFrame, contract: Contract, source: str
) -> None:
    """Refuse a feature without a single value in the file, or in the training split.

    The imputers drop such a column (scikit-learn warns in every stage that uses the
    model, then the service ignores the field): the model silently has one input fewer.
    """
    for where, part in (("the file", frame), ("the training split", train)):
        empty = [c for c in contract.features if not part[c].notna().any()]
        if empty:
            which = "it" if len(empty) == 1 else "them"
            raise ChurnError(
                f"{source}: {clip(', '.join(map(repr, empty)), 200)}: no value in {where} "
                f"({len(part):,} rows), nothing to learn from; list data.features without "
                f"{which}"
            )


def main() -> None:
    """Validate the raw CSV, write the train/test Parquet files and the contract."""
    params = load_params()
    io.require_file_targets(params.paths.train, params.paths.test, params.paths.contract)
    raw_path = params.paths.raw
    declared = params.data.features
    categorical = (
        [] if declared == "infer" else [n for n, r in declared.items() if r.type == "categorical"]
    )
    raw = read_raw(raw_path, [*categorical, params.data.target], [params.data.id])
    check_row_count(raw, raw_path)
    contract = resolve_contract(params.data, raw, raw_path)
    check_slices(params.evaluate.slices, list(contract.columns), raw_path)  # evaluate's, said now
    check_value_column(params.decision, contract)  # train's, said now (an inferred type too)
    validate(raw, contract, raw_path)
    frame = clean(raw, contract, raw_path)
    del raw  # the typed copy is all that is needed from here on
    train, test = split(frame, contract.target, params.prepare)
    check_split(frame, train, test, contract.target)
    check_features_have_values(frame, train, contract, raw_path)
    # Everything that can fail on the data fails before the first file is replaced: the
    # three outputs are of one run. An inferred contract's rules describe the file
    # (frozen, they must accept it again); its numeric ranges are the training split's.
    tables = io.parquet_table(train), io.parquet_table(test)
    contract = observe(contract, frame, train)
    text = contract_text(contract)
    io.write_parquet(params.paths.train, tables[0])
    io.write_parquet(params.paths.test, tables[1])
    io.write_text(params.paths.contract, text)
    log.info(
        "train %d rows, test %d rows, positive rate %.3f; %d numeric + %d categorical features",
        len(train),
        len(test),
        train[contract.target].mean(),
        len(contract.numeric),
        len(contract.categorical),
    )


if __name__ == "__main__":
    entry.leave(entry.run(main))
