"""Stage ``prepare``: validate the raw table against the contract, type it, split it.

The raw file is checked before anything is transformed (see ``contract.py``).
Then blank numbers become missing values, categorical columns become strings,
the target becomes 0/1 (1 = the positive label) and the id column becomes the
index, so it is carried along for the per-row predictions without ever being
a feature. Outputs are Parquet so the dtypes survive.
"""

import csv
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from churn.core import entry, io
from churn.core.contract import (
    Contract,
    check_slices,
    observe,
    resolve_contract,
    validate,
    write_contract,
)
from churn.core.errors import ChurnError
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


def read_raw(path: str | Path) -> pd.DataFrame:
    """Read the raw CSV (UTF-8, comma-separated) and run the file-level checks.

    Whitespace-only cells count as missing. File-level problems (empty, header
    only, not UTF-8, another delimiter, short or cut lines, a header repeated
    mid-file) stop here with a message naming the file.
    """
    p = io.require_file(path)
    frame = parse_csv(p)
    check_file(frame, p)
    return frame


def parse_csv(path: Path) -> pd.DataFrame:
    """Parse with pandas; its errors become one line naming the file."""
    try:
        with warnings.catch_warnings():
            # Left to itself, pandas reads rows one field longer than the header by taking
            # the first field as the index, shifting every column left; index_col=False
            # makes that a warning instead, and the warning an error here.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                path, na_values=[" "], keep_default_na=True, encoding="utf-8", index_col=False
            )
    except pd.errors.ParserWarning:
        raise ChurnError(f"{path}: data rows have more fields than the header") from None
    except pd.errors.EmptyDataError:
        raise ChurnError(f"{path}: file is empty") from None
    except UnicodeDecodeError as err:
        raise ChurnError(
            f"{path}: not UTF-8 (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
            "re-save the file as UTF-8"
        ) from None
    except pd.errors.ParserError as err:
        raise ChurnError(f"{path}: cannot parse as CSV ({' '.join(str(err).split())})") from None


def check_file(frame: pd.DataFrame, path: Path) -> None:
    """The checks pandas does not make: delimiter, rows, line ends, row widths, header."""
    _check_delimiter(frame, path)
    if frame.empty:
        raise ChurnError(f"{path}: header only, no data rows")
    _check_line_ends(path)
    _check_control_characters(path)
    _check_last_line(path, len(frame.columns))
    _check_row_widths(path, len(frame), len(frame.columns))
    _check_repeated_header(frame, path)


def _check_control_characters(path: Path) -> None:
    """Refuse control characters but tab, LF and CRLF anywhere in the (UTF-8) file.

    A few vectorized passes over the bytes; lines are counted by LF, as an editor shows
    them (the header is line 1).
    """
    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    after = np.append(data[1:], np.uint8(0))  # each byte's successor
    bad = CONTROL_BYTES[data]
    bad |= (data == CR) & (after != LF)
    bad |= (data == C1_LEAD) & (after >= 0x80) & (after <= 0x9F)
    where = np.flatnonzero(bad)
    if not len(where):
        return
    lines = np.searchsorted(np.flatnonzero(data == LF), where) + 1
    bad_lines, first = np.unique(lines, return_index=True)
    listed = ", ".join(
        f"line {line}: {_code_point(data, where[i])}"
        for line, i in zip(bad_lines[:EXAMPLES], first[:EXAMPLES], strict=True)
    )
    raise ChurnError(
        f"{path}: {len(bad_lines)} line(s) have control characters ({listed}); "
        "only tab and LF or CRLF line ends are allowed"
    )


def _code_point(data: np.ndarray, at: int) -> str:
    """The control character starting at byte ``at``, as U+XXXX (C1 takes two bytes)."""
    code = int(data[at + 1]) if data[at] == C1_LEAD else int(data[at])
    return f"U+{code:04X}"


def _check_delimiter(frame: pd.DataFrame, path: Path) -> None:
    if len(frame.columns) != 1:
        return
    header = str(frame.columns[0])
    for delimiter, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
        if delimiter in header:
            raise ChurnError(f"{path}: columns are separated by {name}; expected commas")


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
    fields = next(csv.reader([last_line]), [])
    if len(fields) < n_columns:
        raise ChurnError(
            f"{path}: last line has {len(fields)} of {n_columns} fields and no line end: "
            "the file looks truncated"
        )


def _check_row_widths(path: Path, n_rows: int, n_columns: int) -> None:
    """Refuse lines with fewer fields than the header: pandas would pad them with NaN.

    pandas already refuses lines with too many fields, so in an unquoted file the
    total comma count tells at once whether any line is short; only then is each
    line counted, to name them. A file with quotes, where commas and newlines may
    sit inside fields, is walked with the csv module instead.
    """
    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    if np.count_nonzero(data == ord('"')):
        examples, count = _short_rows_quoted(path, n_columns)
    elif np.count_nonzero(data == ord(",")) == (n_columns - 1) * (n_rows + 1):
        return
    else:
        examples, count = _short_rows_unquoted(data, n_columns)
    if count:
        listed = ", ".join(f"line {line}: {n} fields" for line, n in examples)
        raise ChurnError(
            f"{path}: {count} line(s) have fewer than the header's {n_columns} fields ({listed})"
        )


def _short_rows_unquoted(data: np.ndarray, n_columns: int) -> tuple[list[tuple[int, int]], int]:
    ends = np.flatnonzero(data == ord("\n"))
    if len(ends) == 0 or ends[-1] != len(data) - 1:
        ends = np.append(ends, len(data))
    fields = np.diff(np.searchsorted(np.flatnonzero(data == ord(",")), ends), prepend=0) + 1
    starts = np.concatenate(([0], ends[:-1] + 1))
    blank = (ends - starts) <= 1  # pandas skips empty lines (maybe a lone \r)
    bad = np.flatnonzero((fields < n_columns) & ~blank)
    return [(int(i) + 1, int(fields[i])) for i in bad[:EXAMPLES]], len(bad)


def _short_rows_quoted(path: Path, n_columns: int) -> tuple[list[tuple[int, int]], int]:
    examples, count = [], 0
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        for row in reader:
            if row and len(row) < n_columns:
                count += 1
                if len(examples) < EXAMPLES:
                    examples.append((reader.line_num, len(row)))
    return examples, count


def _check_repeated_header(frame: pd.DataFrame, path: Path) -> None:
    # A repeated header turns every column into text, so probing one text column
    # finds candidates cheaply; the whole row is compared only for those.
    text_columns = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if not text_columns:
        return
    probe = text_columns[0]
    candidates = frame.index[frame[probe].astype("string") == str(probe)]
    header = [str(c) for c in frame.columns]
    rows = [i for i in candidates if frame.loc[i].astype(str).tolist() == header]
    if rows:
        listed = ", ".join(str(i + 1) for i in rows[:5])
        raise ChurnError(f"{path}: the header is repeated as data row(s) {listed}")


def encode_target(values: pd.Series, positive_label: str | int, source: str) -> pd.Series:
    """Map the target to 0/1 ints; exactly two labels, the positive one among them."""
    if values.isna().any():
        raise ChurnError(
            f"{source}: column {values.name!r} has {values.isna().sum()} missing values"
        )
    labels = sorted(values.astype(str).unique())
    positive = str(positive_label)
    if len(labels) != 2 or positive not in labels:
        raise ChurnError(
            f"{source}: target {values.name!r} must have two labels including "
            f"{positive!r} (found: {', '.join(labels)})"
        )
    return (values.astype(str) == positive).astype("int64")


def clean(frame: pd.DataFrame, contract: Contract, source: str) -> pd.DataFrame:
    """Typed features and 0/1 target, indexed by the id, in contract order."""
    out = pd.DataFrame(index=_index(frame, contract, source))
    for col in contract.numeric:
        try:
            out[col] = pd.to_numeric(frame[col]).to_numpy()
        except (ValueError, TypeError) as err:
            raise ChurnError(f"{source}: numeric column {col!r}: {err}") from None
    for col in contract.categorical:
        # One string dtype for every categorical column, whatever the CSV reader guessed.
        out[col] = frame[col].astype("string").str.strip().to_numpy()
    out[contract.target] = encode_target(
        frame[contract.target], contract.positive_label, source
    ).to_numpy()
    return out


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
    return pd.Index(ids.to_numpy(), name=contract.id)


def split(
    frame: pd.DataFrame, target: str, params: PrepareParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified, seeded train/test split."""
    counts = frame[target].value_counts()
    if counts.min() < 2:
        raise ChurnError(f"target {target!r}: each class needs at least 2 rows to split")
    train, test = train_test_split(
        frame, test_size=params.test_size, random_state=params.seed, stratify=frame[target]
    )
    return train, test


def check_split(whole: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, target: str) -> None:
    """No id on both sides; each side's positive rate within 2 points of the whole's.

    A tiny split cannot get closer than one row's worth (1/rows), so that is the
    floor of the tolerance.
    """
    shared = train.index.intersection(test.index)
    if len(shared):
        raise ChurnError(f"split: {len(shared)} id(s) in both train and test (e.g. {shared[0]!r})")
    rate = whole[target].mean()
    for name, part in (("train", train), ("test", test)):
        drift = abs(part[target].mean() - rate)
        if drift > max(MAX_SPLIT_DRIFT, 1 / len(part)):
            raise ChurnError(
                f"split: {name} positive rate {part[target].mean():.3f} is {drift * 100:.1f} "
                f"points from the whole's {rate:.3f} (limit {MAX_SPLIT_DRIFT * 100:.0f})"
            )


def main() -> None:
    """Validate the raw CSV, write the train/test Parquet files and the contract."""
    params = load_params()
    raw_path = params.paths.raw
    raw = read_raw(raw_path)
    contract = resolve_contract(params.data, raw, raw_path)
    check_slices(params.evaluate.slices, list(contract.columns), raw_path)  # evaluate's, said now
    validate(raw, contract, raw_path)
    frame = clean(raw, contract, raw_path)
    train, test = split(frame, contract.target, params.prepare)
    check_split(frame, train, test, contract.target)
    io.write_parquet(params.paths.train, train)
    io.write_parquet(params.paths.test, test)
    # The rules come from the training split only: the test split stays unseen.
    contract = observe(contract, train)
    write_contract(params.paths.contract, contract)
    log.info(
        "train %d rows, test %d rows, positive rate %.3f; %d numeric + %d categorical features",
        len(train),
        len(test),
        train[contract.target].mean(),
        len(contract.numeric),
        len(contract.categorical),
    )


if __name__ == "__main__":
    raise SystemExit(entry.run(main))
