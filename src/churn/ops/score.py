"""``churn score``: every customer of a file scored by one model version, chunk by chunk.

The model version is a bundle (:mod:`churn.core.bundle`): a release tag read whole at
its revision, or the workspace. The input, CSV or Parquet, is read with pyarrow a
chunk at a time (never the whole file); each chunk is checked against the bundle's
data contract with the rules the service applies (:func:`churn.core.contract.score_problems`),
then its valid rows go through the model. One function scores a chunk
(:class:`Scorer`), whichever engine runs it: this process (``local``) or the
partitions of a Dask dataframe (``dask``).

The output holds the id (the contract's id column, or the row number from 0 when the
data has none, as prepare numbers rows), ``churn_probability`` and ``churn`` at the
bundle's threshold. Its row groups have a fixed size, so the same input and model
give the same bytes whatever the chunk size or engine. With ``--on-error reject``,
bad rows go to ``<output>.rejects.csv`` (row number from 1, id, reason); with
``fail`` the first bad chunk stops the run and no file appears.
"""

import contextlib
import functools
import io as stdio
import json
import logging
import os
import re
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from threadpoolctl import threadpool_limits

from churn.core import entry, io
from churn.core.bundle import Bundle, load_bundle
from churn.core.contract import (
    DECISION,
    REASON,
    ROW,
    SCORE,
    Contract,
    check_output_names,
    require_columns,
    score_problems,
)
from churn.core.errors import ChurnError, clip
from churn.core.integrity import refuse_kept

log = logging.getLogger("churn.score")

# Rows go through the model in blocks of this size at fixed places (Scorer.probabilities);
# a chunk size that is a multiple of it wastes no work.
BLOCK_ROWS = 64 * 1024
# One prediction block's feature matrix at most (float64): a model with thousands of
# one-hot features gets blocks of fewer rows, or scoring 50 rows took 3 GB.
BLOCK_BYTES = 64 * 1024 * 1024
MIN_BLOCK_ROWS = 1024
CHUNK_ROWS = 2 * BLOCK_ROWS
# Output row groups are cut at this many rows, never at chunk or partition edges: the
# file's bytes then depend on the data alone.
ROW_GROUP_ROWS = 128 * 1024
CSV_BLOCK_BYTES = 4 * 1024 * 1024
JSON_BLOCK_BYTES = 16 * 1024 * 1024  # churn monitor's, for JSON lines
STRADDLING = "straddling object straddles two block boundaries"
# A quoted field may hold line breaks (as prepare and pandas read it); the reader then
# cuts blocks at rows, not at any newline.
PARSE = pacsv.ParseOptions(newlines_in_values=True)
PARQUET_BUFFER_BYTES = 1024 * 1024
# Cells read as missing, as prepare's pandas reader does (its defaults and a lone space).
NULLS = [
    "", " ", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")  # a scheme: s3://, file://, memory://
FLAG = DECISION  # the output's column of the decision
META, REJECTS = ".meta.json", ".rejects.csv"  # the sidecars' suffixes, after OUTPUT
SIDECARS = (META, REJECTS)
# Where scores can be kept: this machine's disk and the object stores and file servers
# fsspec writes to. The others are in-process (memory://), read-only (data://, github://,
# zip://) or wrappers (reference://, dir://, simplecache::) that keep nothing of their own.
STORAGE = frozenset(
    {"file", "local", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "hdfs", "webhdfs"}
    | {"sftp", "ssh", "ftp", "smb", "oci", "oss", "wasb", "wasbs"}
)
EXAMPLES = 3  # bad rows quoted in the --on-error fail message
DASK_WORKERS = 2  # a local cluster's worker processes, one thread each
DASK_MEMORY = "1GiB"  # a local cluster's memory per worker
DASK_WINDOW = 4  # partitions in flight per worker: results are collected in order
PARQUET_BATCH_ROWS = 1 << 16  # rows a Dask partition decodes at a time


@dataclass(frozen=True)
class Source:
    """An input file: its kind, the columns read, their count of rows (Parquet) and the id type."""

    path: str
    kind: str  # "parquet" or "csv"
    columns: list[str]
    id_type: pa.DataType
    rows: int | None
    id_name: str | None = None  # the id column, when the data has one


def pandas_frame(table: pa.Table, id_name: str | None) -> pd.DataFrame:
    """``table`` as pandas, an integer id column exact beside a missing id.

    pandas makes an int64 column with a null float64: ids past 2**53 then lost their
    last digits (scores written against other customers' ids) or overflowed int64 on
    the way back. Such an id column stays Arrow-backed.
    """
    frame = table.to_pandas()
    if id_name in table.column_names:
        ids = table.column(id_name)
        if pa.types.is_integer(ids.type) and ids.null_count:
            frame[id_name] = pd.Series(pd.arrays.ArrowExtensionArray(ids), index=frame.index)
    return frame


@dataclass(frozen=True)
class Scorer:
    """Scores one chunk: the same code in this process and on every Dask worker."""

    model: Any
    contract: Contract
    threshold: float
    source: str
    block_rows: int = BLOCK_ROWS  # see block_rows(); fixed per model

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` indexed by row position from 0: row, id, probability, flag, reason."""
        reasons = score_problems(frame, self.contract, self.source, ids=True)
        reasons = reasons.reindex(frame.index)
        good = reasons.isna().to_numpy()
        proba = np.full(len(frame), np.nan)
        if good.any():
            positions = frame.index.to_numpy(dtype="int64")[good]
            proba[good] = self.probabilities(self.model_input(frame[good]), positions)
        contract = self.contract
        ids = frame[contract.id] if contract.id_in_data else frame.index.to_series()
        return pd.DataFrame(
            {
                ROW: frame.index.to_numpy(dtype="int64") + 1,
                contract.id: ids.array,  # as read: an Arrow-backed id stays exact
                SCORE: proba,
                FLAG: proba >= self.threshold,
                REASON: reasons.to_numpy(dtype=object),
            },
            index=frame.index,
        )

    def probabilities(self, rows: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
        """The model's probabilities, each computed as row ``position % block_rows`` of a block.

        BLAS kernels sum a row's terms in an order that depends on the matrix shape
        and the row's place in it (1-ulp differences otherwise). Every row goes
        through ``predict_proba`` in a ``block_rows`` block at the same place, whatever
        the chunk it came in; the free places hold a copy of a row of the block.
        """
        size = self.block_rows
        out = np.empty(len(rows))
        groups = positions // size
        with threadpool_limits(limits=1, user_api="blas"):  # as entry.run: same sums anywhere
            for group in np.unique(groups):
                members = np.flatnonzero(groups == group)
                slots = positions[members] - group * size
                take = np.full(size, members[0])
                take[slots] = members
                block = self.model.predict_proba(rows.iloc[take])[:, 1]
                out[members] = block[slots]
        return out

    def model_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Numbers as float and categories as text, whatever types the file had."""
        return model_input(frame, self.contract)


def block_rows(model: Any) -> int:
    """Rows per prediction block: ``BLOCK_ROWS``, halved while its features pass ``BLOCK_BYTES``.

    It depends on the model alone (its feature count), so every chunk size and both
    engines cut the same blocks and get the same bits.
    """
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    width = int(getattr(final, "n_features_in_", 1))
    rows = BLOCK_ROWS
    while rows > MIN_BLOCK_ROWS and rows * width * 8 > BLOCK_BYTES:
        rows //= 2
    return rows


def model_input(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The model's input columns: numbers as float and categories as text (monitor uses it too)."""
    numbers = {c: pd.to_numeric(frame[c], errors="coerce") for c in contract.numeric}
    texts = {c: frame[c].astype("str") for c in contract.categorical}
    return pd.DataFrame({**numbers, **texts}).astype(dict.fromkeys(numbers, "float64"))


# --------------------------------------------------------------------------- input


def _fs(path: str) -> tuple[Any, str]:
    """The filesystem of ``path`` (local, or a URL such as s3://bucket/key) and its path there.

    Only a name that starts with a scheme (``s3://``) is a URL. Anything else is a local
    file name as written: fsspec alone reads ``a::b.csv`` as a chain whose file is ``a``
    (which the run then overwrote and deleted) and ``data:x.csv`` as a data URL.
    """
    if not URL.match(path):
        return LocalFileSystem(), os.path.abspath(path)
    try:
        return fsspec.core.url_to_fs(path)
    # An unknown protocol, one not installed, or one whose library cannot load (hdfs://
    # without a Java runtime: OSError "Unable to load libjvm"); and the protocols that
    # need arguments no URL gives (github://, reference://, dir://: TypeError,
    # AttributeError). Whatever a filesystem raises as it is made, the URL was the cause.
    except Exception as err:
        raise ChurnError(f"{clip(path, 300)}: {one_line(err)}") from None


def _kind(path: str, what: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise ChurnError(f"{path}: the {what} must be .csv or .parquet (got {suffix or 'no suffix'!r})")


def open_input(path: str, contract: Contract, with_id: bool = True) -> Source:
    """The input's kind and header, checked: every feature (and the id, if in the data) there.

    ``with_id=False``: the features only (monitoring needs no id).
    """
    kind = _kind(path, "input")
    fs, where = _fs(path)
    if not fs.isfile(where):
        if fs.exists(where):  # a directory: "not found" sent the user looking for it
            raise ChurnError(f"{clip(path, 300)}: not a regular file")
        if isinstance(fs, LocalFileSystem) and Path(where).is_symlink():
            raise ChurnError(f"{clip(path, 300)}: {io.DANGLING}")
        raise ChurnError(f"{path}: file not found")
    with_id = with_id and contract.id_in_data
    wanted = ([contract.id] if with_id else []) + contract.features
    if kind == "csv":
        with fs.open(where, "rb") as fh:
            head = fh.read(io.SNIFF_BYTES)
        io.refuse_not_text(path, head, parquet_read=True)  # UTF-16 too
    with fs.open(where, "rb") as fh:
        if kind == "parquet":
            try:
                meta = pq.ParquetFile(fh).metadata
            except (pa.ArrowException, OSError) as err:  # OSError: a footer that is not Thrift
                raise ChurnError(f"{path}: not a Parquet file ({one_line(err)})") from None
            schema, rows = meta.schema.to_arrow_schema(), meta.num_rows
        else:
            schema, rows = _csv_header(fh, path), None
    require_columns(wanted, schema.names, path)
    check_columns(schema, wanted, path)
    id_type = schema.field(contract.id).type if with_id else pa.int64()
    if kind == "csv" and with_id:
        id_type = pa.string()  # as written: "0012" stays "0012"
    else:
        id_type = plain_text(id_type)  # as as_text reads the column
    return Source(path, kind, wanted, id_type, rows, contract.id if with_id else None)


def plain_text(kind: pa.DataType) -> pa.DataType:
    """The text type a column of bytes or of a text view is read as; others unchanged.

    Some Parquet writers store text as plain binary, newer ones as views (string_view,
    binary_view), which pyarrow's filter and CSV writer do not take.
    """
    if pa.types.is_large_binary(kind):
        return pa.large_string()
    if pa.types.is_binary(kind) or pa.types.is_string_view(kind) or pa.types.is_binary_view(kind):
        return pa.string()
    return kind


def check_columns(schema: pa.Schema, wanted: list[str], path: str) -> None:
    """Each column read is in the file once and holds plain values: no lists, records or bytes.

    Of two columns with one name, which one a reader takes is not the user's choice;
    a nested value (a Parquet list, struct or map) is no number and no category.
    """
    for name in wanted:
        found = schema.get_all_field_indices(name)
        if len(found) > 1:
            raise ChurnError(f"{path}: column {clip(name)!r} appears {len(found)} times")
        kind = schema.field(found[0]).type
        if pa.types.is_nested(kind):
            raise ChurnError(
                f"{path}: column {clip(name)!r} holds {clip(kind, 60)} values, not numbers or text"
            )
        if isinstance(kind, pa.BaseExtensionType) or pa.types.is_fixed_size_binary(kind):
            # A UUID or other fixed-size bytes: no text to compare, and no CSV can hold it
            # (the rejects file is CSV): an ArrowInvalid traceback as the output was opened.
            raise ChurnError(
                f"{path}: column {clip(name)!r} holds {clip(kind, 60)} values (raw bytes, "
                "not text or numbers); store it as text (a UUID in its 36-character form)"
            )


def one_line(err: Exception) -> str:
    """A library's error message on one line, clipped, control characters escaped.

    pyarrow's may end in a newline, quote a row with a newline in it, or quote the
    binary bytes of a file that is not CSV at all.
    """
    text = " ".join(str(err).split())
    if STRADDLING in text:  # pyarrow's words ask for a setting the user does not have
        # A quoted CSV field may hold line breaks, so an opening quote never closed reads
        # on to the end of the block: the likelier cause than a field that long.
        text = (
            f"a row longer than the reader's block ({CSV_BLOCK_BYTES >> 20} MiB for CSV, "
            f'{JSON_BLOCK_BYTES >> 20} MiB for JSON lines): most likely a quote (") that is '
            "never closed, or a field that long"
        )
    return clip(text, 200)  # which shows control characters escaped


class LastLineEnded(stdio.RawIOBase):
    """A binary file read with a line end after its last byte, if it had none.

    pyarrow's CSV reader calls a file of one header line without its newline empty
    ("cannot infer number of columns"), where the same header with a newline is a file
    of no rows; any other file reads the same with or without a final newline.
    """

    def __init__(self, raw: Any) -> None:
        super().__init__()
        self.raw, self.last, self.ended = raw, b"\n", False

    def readable(self) -> bool:
        """A read-only stream."""
        return True

    def readinto(self, buffer: Any) -> int:
        """The next bytes of the file, then a line end once if the file did not end a line.

        Arrow takes a short read for the end of the file, so the buffer is filled unless
        the file ends first.
        """
        view, size = memoryview(buffer).cast("B"), 0
        while size < len(view) and (data := self.raw.read(len(view) - size)):
            view[size : size + len(data)] = data
            size += len(data)
            self.last = data[-1:]
        if size < len(view) and not self.ended and self.last not in (b"\n", b"\r"):
            self.ended = True
            view[size] = ord("\n")
            size += 1
        return size


def _csv_header(fh: Any, path: str) -> pa.Schema:
    try:
        # One whole read block: a header of 20,000 columns is longer than 64 KiB. Read in
        # this thread: a reader left behind must not be reading from a closed file.
        options = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False)
        reader = pacsv.open_csv(LastLineEnded(fh), read_options=options, parse_options=PARSE)
    except pa.ArrowException as err:
        raise ChurnError(f"{path}: cannot read as CSV ({one_line(err)})") from None
    return reader.schema


def _csv_options(columns: list[str]) -> dict:
    # Every column as text: a number column with a word in it is a row to refuse, not a
    # file the reader gives up on; the contract's checks turn text into numbers.
    return {
        "read_options": pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        "parse_options": PARSE,
        "convert_options": pacsv.ConvertOptions(
            column_types=dict.fromkeys(columns, pa.string()),
            include_columns=columns,
            null_values=NULLS,
            strings_can_be_null=True,
        ),
    }


def _batches(source: Source, fh: Any) -> Iterator[pa.RecordBatch]:
    if source.kind == "parquet":
        # Pages streamed through a small buffer, not whole column chunks pre-read: the memory
        # then follows the chunk size, never the size of the file's row groups.
        reader = pq.ParquetFile(fh, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
        yield from reader.iter_batches(
            batch_size=CHUNK_ROWS, columns=source.columns, use_threads=False
        )
        return
    reader = pacsv.open_csv(LastLineEnded(fh), **_csv_options(source.columns))
    try:
        yield from reader
    except pa.ArrowException as err:
        raise ChurnError(f"{source.path}: cannot read as CSV ({one_line(err)})") from None


def rebatch(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows (the last may be shorter) from batches of any size."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending)


def as_text(table: pa.Table, path: str) -> pa.Table:
    """``table`` with each binary or view column as text; bytes that are not UTF-8 name it.

    Some Parquet writers store text as plain binary. Left as bytes, a category would be
    compared as b'...' and an id written to CSV as raw bytes; a byte that is not UTF-8
    was a UnicodeDecodeError traceback deep in the scoring.
    """
    for i, field in enumerate(table.schema):
        text = plain_text(field.type)
        if text != field.type:
            try:
                table = table.set_column(i, field.name, table.column(i).cast(text))
            except pa.ArrowInvalid:
                raise ChurnError(
                    f"{path}: column {clip(field.name)!r} holds bytes that are not UTF-8 text"
                ) from None
    return table


def float_as_written(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """A float32 column as the float64 of its shortest text, a float16 as its exact float64.

    A float32's nearest double is not the number written (29.85 is 29.850000381...): the
    model scored that, where the service and a CSV give it 29.85, and the range checks
    compared in float32. Its shortest text is the number (``churn monitor`` reads it so).
    pyarrow writes a float16 as its double's text, so it is widened as it is.
    """
    if values.type == pa.float32():
        return pc.cast(pc.cast(values, pa.string()), pa.float64())
    if values.type == pa.float16():
        return pc.cast(values, pa.float64())
    return values


def floats_as_written(table: pa.Table) -> pa.Table:
    """``table`` with each float32 or float16 column read as :func:`float_as_written` does."""
    for i, field in enumerate(table.schema):
        values = float_as_written(table.column(i))
        if values.type != field.type:
            table = table.set_column(i, field.name, values)
    return table


def blank_as_null(table: pa.Table) -> pa.Table:
    """``table`` with each empty or whitespace-only text null, as prepare reads such a cell.

    The CSV reader's null values are exact texts ("", " ", "NA", ...); "  " or a tab, or
    an empty text in Parquet (which has no such list), would otherwise be a number that
    does not parse, a category the contract lacks, or an id that is no id.
    """
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            values = table.column(i)
            # utf8_is_space is false for "": a string needs a character to be all space.
            blank = pc.or_(pc.utf8_is_space(values), pc.equal(pc.utf8_length(values), 0))
            if pc.any(blank).as_py():
                nulls = pa.nulls(len(values), field.type)
                table = table.set_column(i, field.name, pc.if_else(blank, nulls, values))
    return table


def local_tables(source: Source, chunk_rows: int) -> Iterator[pa.Table]:
    """The input's columns ``source.columns`` as tables of ``chunk_rows`` rows, one at a time."""
    fs, where = _fs(source.path)
    with fs.open(where, "rb") as fh:
        try:
            for table in rebatch(_batches(source, fh), chunk_rows):
                yield blank_as_null(floats_as_written(as_text(table, source.path)))
        except (pa.ArrowException, UnicodeDecodeError, OSError) as err:
            # Past the header probe: a row of the wrong width, bytes that are not UTF-8, a
            # damaged Parquet page (an OSError naming no file).
            raise unreadable(source.path, err) from None


def unreadable(path: str, err: BaseException) -> ChurnError:
    """The one line for an input that cannot be read past its header.

    Bytes that are not UTF-8 are named by offset and line, as prepare names them:
    pyarrow only said "In CSV column #18: ... invalid UTF8 data", counting from 0.
    """
    if isinstance(err, UnicodeDecodeError) or "invalid UTF8" in str(err):
        fs, where = _fs(path)
        found = io.not_utf8_at(path, where) if isinstance(fs, LocalFileSystem) else None
        if found is not None:
            return found
    return ChurnError(f"{path}: cannot read ({clip(one_line(err), 300)})")


def local_chunks(source: Source, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The input's chunks as frames indexed by row position, read one at a time."""
    start = 0
    for table in local_tables(source, chunk_rows):
        frame = pandas_frame(table, source.id_name)
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yield frame


# --------------------------------------------------------------------------- output


@contextlib.contextmanager
def _published(path: str) -> Iterator[Path]:
    """A local temp path that becomes ``path`` only on success (a URL: uploaded once complete)."""
    fs, where = _fs(path)
    if isinstance(fs, LocalFileSystem):
        with io.atomic_path(where) as tmp:
            yield tmp
        return
    with tempfile.TemporaryDirectory(prefix="churn-score-") as tmp_dir:
        tmp = Path(tmp_dir) / "part"
        yield tmp
        fs.put_file(str(tmp), where)  # an object store shows the object only once complete


class Writer:
    """Parquet in fixed-size row groups, or CSV; rows arrive in order, any number at a time."""

    def __init__(self, path: Path, kind: str, schema: pa.Schema) -> None:
        self.kind = kind
        self.schema = schema
        self.pending: list[pa.Table] = []
        self.held = 0
        self.rows = 0
        if kind == "parquet":
            self.out: Any = pq.ParquetWriter(path, schema)
        else:
            self.out = pacsv.CSVWriter(path, schema)

    def write(self, table: pa.Table) -> None:
        """Add rows; a Parquet row group is written each time ``ROW_GROUP_ROWS`` are held."""
        self.rows += table.num_rows
        if self.kind == "csv":
            self.out.write_table(table)
            return
        self.pending.append(table)
        self.held += table.num_rows
        while self.held >= ROW_GROUP_ROWS:
            whole = pa.concat_tables(self.pending)
            self._group(whole.slice(0, ROW_GROUP_ROWS))
            rest = whole.slice(ROW_GROUP_ROWS)
            self.pending, self.held = [rest], rest.num_rows

    def _group(self, table: pa.Table) -> None:
        # One contiguous chunk per column: the pages then never depend on how rows arrived.
        self.out.write_table(table.combine_chunks(), row_group_size=ROW_GROUP_ROWS)

    def close(self) -> None:
        """Write the last, shorter row group and the footer."""
        if self.kind == "parquet" and (self.held or not self.rows):
            self._group(
                pa.concat_tables(self.pending) if self.pending else self.schema.empty_table()
            )
        self.out.close()


@dataclass
class Counts:
    """What a run did, for the closing line."""

    scored: int = 0
    rejected: int = 0


class Sink:
    """The output file (and the rejects file): written as chunks come, in input order."""

    def __init__(self, out: Writer, rejects: Writer | None, source: Source, id_name: str):
        self.out, self.rejects, self.source, self.id_name = out, rejects, source, id_name
        self.counts = Counts()

    def add(self, part: pd.DataFrame) -> None:
        """One scored chunk: fail on a bad row (no rejects file), or write it to the rejects."""
        bad = part[REASON].notna().to_numpy()
        if bad.any() and self.rejects is None:
            raise ChurnError(fail_message(self.source.path, part[bad]))
        # from_pandas: a rejected row's missing id is a null, not NaN or None to convert.
        ids = pa.array(part[self.id_name], type=self.source.id_type, from_pandas=True)
        good = pa.array(~bad)
        self.out.write(
            pa.table(
                [
                    ids.filter(good),
                    pa.array(part[SCORE].to_numpy()[~bad]),
                    pa.array(part[FLAG].to_numpy()[~bad]),
                ],
                schema=self.out.schema,
            )
        )
        self.counts.scored += int((~bad).sum())
        if self.rejects is not None and bad.any():
            self.rejects.write(
                pa.table(
                    [
                        pa.array(part[ROW].to_numpy()[bad]),
                        ids.filter(pa.array(bad)),
                        pa.array(part[REASON].to_numpy()[bad].astype(str)),
                    ],
                    schema=self.rejects.schema,
                )
            )
            self.counts.rejected += int(bad.sum())


def fail_message(source: str, bad: pd.DataFrame) -> str:
    """One line: how many rows of the chunk break the contract, the first few and why."""
    first, last = int(bad[ROW].iloc[0]), int(bad[ROW].iloc[-1])
    shown = "; ".join(
        f"row {row}: {reason}"
        for row, reason in zip(bad[ROW].head(EXAMPLES), bad[REASON].head(EXAMPLES), strict=True)
    )
    more = f"; and {len(bad) - EXAMPLES} more" if len(bad) > EXAMPLES else ""
    span = f"row {first}" if first == last else f"rows {first}..{last}"
    return (
        f"{source}: {len(bad)} row(s) break the data contract ({span}): {shown}{more}; "
        "nothing written (--on-error reject scores the others)"
    )


def output_schema(bundle: Bundle, id_type: pa.DataType) -> pa.Schema:
    """id, probability, flag; the model version and md5 in the file's metadata."""
    fields = [
        pa.field(bundle.contract.id, id_type),
        pa.field(SCORE, pa.float64()),
        pa.field(FLAG, pa.bool_()),
    ]
    return pa.schema(fields, metadata={f"churn.{k}": v for k, v in model_metadata(bundle).items()})


def model_metadata(bundle: Bundle) -> dict[str, str]:
    """What the output says about the model that made it."""
    return {
        "model_version": bundle.version,
        "model_md5": bundle.md5,
        "model_commit": bundle.commit,
        "threshold": repr(bundle.threshold),
    }


@contextlib.contextmanager
def sink(output: str, bundle: Bundle, source: Source, on_error: str) -> Iterator[Sink]:
    """The output (and rejects) writers on temp files, published together only on success."""
    kind = _kind(output, "output")
    schema = output_schema(bundle, source.id_type)
    rejects_schema = pa.schema(
        [
            pa.field(ROW, pa.int64()),
            pa.field(bundle.contract.id, source.id_type),
            pa.field(REASON, pa.string()),
        ]
    )
    with contextlib.ExitStack() as stack:
        # The sidecars are entered first so the output, entered last, is published first:
        # an output that cannot be (a directory in its place) takes its sidecars down with it.
        rejects = meta = None
        if kind == "csv":
            meta = stack.enter_context(_published(output + META))
        if on_error == "reject":
            path = stack.enter_context(_published(output + REJECTS))
            rejects = Writer(path, "csv", rejects_schema)
        out = Writer(stack.enter_context(_published(output)), kind, schema)
        if meta is not None:
            text = json.dumps(model_metadata(bundle), indent=2, sort_keys=True) + "\n"
            meta.write_text(text, encoding="utf-8")
        result = Sink(out, rejects, source, bundle.contract.id)
        yield result
        out.close()
        if rejects is not None:
            rejects.close()
    if on_error != "reject":  # an earlier run's rejects must not sit beside this output
        _remove(output + REJECTS)


def _not_the_input(input_path: str, output: str) -> None:
    """Refuse an output that is the input file, or an address nothing can be written to.

    The rename at the end would replace the input with its scores; its sidecars would
    replace it with a header or, for the rejects file, remove it.
    """
    out_fs, write_at = _fs(output)
    if "http" in out_fs.protocol:  # a name or a tuple of names
        raise ChurnError(f"--output {clip(output, 300)}: an HTTP URL can be read, not written")
    if not set(_protocols(out_fs)) & STORAGE:
        # memory:// said "300 rows scored -> memory://x.parquet", and the scores were gone
        # when the process ended; data:// failed only after every row was scored.
        raise ChurnError(
            f"--output {clip(output, 300)}: {_protocols(out_fs)[0]}:// keeps nothing past this "
            "run (in-process, or read-only); write a local path or an object store URL (s3://)"
        )
    if isinstance(out_fs, LocalFileSystem):
        # Else the first sidecar written (OUTPUT.meta.json) is what the error names.
        written = _resolved(write_at, "--output")
        if any(parent.exists() and not parent.is_dir() for parent in written.parents):
            raise ChurnError(f"--output {clip(output, 300)}: Not a directory")
        for suffix in ("", *SIDECARS):
            refuse_kept(write_at + suffix, "--output", shown=output + suffix)
    for path in (output, *(output + suffix for suffix in SIDECARS)):
        if _same_file(input_path, path):
            which = "" if path == output else f"its sidecar {clip(path, 300)} "
            raise ChurnError(
                f"--output {clip(output, 300)}: {which}is the input file; scores go elsewhere"
            )


def _protocols(fs: Any) -> tuple[str, ...]:
    """A filesystem's protocol names (fsspec gives a name or a tuple of them)."""
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)


def _same_file(input_path: str, path: str) -> bool:
    """Whether writing ``path`` would write over the file ``input_path``."""
    (in_fs, read_at), (out_fs, write_at) = _fs(input_path), _fs(path)
    if isinstance(in_fs, LocalFileSystem) and isinstance(out_fs, LocalFileSystem):
        a, b = _resolved(read_at, "--input"), _resolved(write_at, "--output")
        return a == b or (a.exists() and b.exists() and a.samefile(b))
    return bool(in_fs.unstrip_protocol(read_at) == out_fs.unstrip_protocol(write_at))


def _resolved(path: str, option: str) -> Path:
    """``path`` with every link followed; a loop of links is one line naming the option."""
    try:
        return Path(path).resolve()
    except RuntimeError:  # Python 3.11's Path.resolve on a loop (3.13 raises OSError)
        raise ChurnError(f"{option} {clip(path, 300)}: a loop of symbolic links") from None


def _remove(path: str) -> None:
    """Delete the file ``path`` (local or a URL) if there is one."""
    fs, where = _fs(path)
    if fs.isfile(where):
        fs.rm_file(where)


# --------------------------------------------------------------------------- engines


def local_parts(source: Source, scorer: Scorer, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Each chunk scored in this process."""
    for frame in local_chunks(source, chunk_rows):
        yield scorer(frame)


def parquet_slice(
    path: str, columns: list[str], start: int, stop: int, id_name: str | None = None
) -> pd.DataFrame:
    """Rows ``start``..``stop`` of a Parquet file, indexed by position: one Dask partition."""
    fs, where = _fs(path)
    with fs.open(where, "rb") as fh:
        pf = pq.ParquetFile(fh)
        groups, first, offset = [], None, 0
        for i in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(i).num_rows
            if offset < stop and offset + n > start:
                groups.append(i)
                first = offset if first is None else first
            offset += n
        if groups:
            table = _rows(pf, groups, columns, start - (first or 0), stop - start)
        else:  # an empty file, or the empty frame Dask takes the column types from
            table = pf.schema_arrow.empty_table().select(columns)
    frame = pandas_frame(blank_as_null(floats_as_written(as_text(table, path))), id_name)
    frame.index = pd.RangeIndex(start, stop)
    return frame


def _rows(
    pf: pq.ParquetFile, groups: list[int], columns: list[str], skip: int, count: int
) -> pa.Table:
    """``count`` rows of row groups ``groups`` after their first ``skip``, a batch at a time.

    Reading the groups whole made a partition of a file written as one row group of
    millions of rows (Spark sizes groups by bytes) hold all of them: the workers
    paused at their memory limit, and the run hung. A partition now holds its own
    rows and one batch.
    """
    size = max(1, min(count, PARQUET_BATCH_ROWS))
    batches, seen = [], 0
    for batch in pf.iter_batches(batch_size=size, row_groups=groups, columns=columns):
        if seen + len(batch) > skip:
            batches.append(batch.slice(max(skip - seen, 0)))
        seen += len(batch)
        if seen >= skip + count:
            break
    return pa.Table.from_batches(batches, schema=batches[0].schema).slice(0, count)


def dask_frame(source: Source, chunk_rows: int):
    """A Dask dataframe over the input whose partitions are indexed by row position."""
    import dask
    import dask.dataframe as dd

    if source.kind == "parquet":
        spans = [
            (s, min(s + chunk_rows, source.rows)) for s in range(0, source.rows or 0, chunk_rows)
        ]
        spans = spans or [(0, 0)]
        meta = parquet_slice(source.path, source.columns, 0, 0)
        read = functools.partial(_span, source.path, source.columns, source.id_name)
        return dd.from_map(read, spans, meta=meta)
    if "::" in source.path:  # fsspec, under dask's CSV reader, would split the name there
        raise ChurnError(
            f"{clip(source.path, 300)}: --engine dask cannot read a CSV whose name holds '::'; "
            "rename it or use --engine local"
        )
    if any(magic in source.path for magic in "*?["):
        # dask's reader globs its path: 'x*.csv' read xA.csv as well, 305 rows of 300.
        raise ChurnError(
            f"{clip(source.path, 300)}: --engine dask reads a CSV name holding '*', '?' or "
            "'[' as a pattern of names; rename it or use --engine local"
        )
    try:
        raw = dd.read_csv(
            source.path,
            usecols=source.columns,
            dtype=str,
            keep_default_na=False,
            na_values=NULLS,
            blocksize=CSV_BLOCK_BYTES * 16,
            sample=CSV_BLOCK_BYTES,  # as the local reader's header: a wide one fits
        )
        # Row numbers need each partition's length first: one pass to count, then the
        # offsets. It reads every byte, so what pandas cannot read shows here.
        lengths = raw.map_partitions(len).compute()
    except ValueError as err:  # bytes that are not UTF-8, rows pandas cannot parse
        raise unreadable(source.path, err) from None
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    meta = raw._meta.set_axis(pd.RangeIndex(0, 0), axis=0)
    parts = [
        dask.delayed(_positioned)(part, int(offsets[i])) for i, part in enumerate(raw.to_delayed())
    ]
    return dd.from_delayed(parts, meta=meta, verify_meta=False)


def _span(
    path: str, columns: list[str], id_name: str | None, span: tuple[int, int]
) -> pd.DataFrame:
    return parquet_slice(path, columns, *span, id_name=id_name)


def _positioned(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    # As blank_as_null does for pyarrow's reader.
    frame = pd.DataFrame({c: io.blank_as_missing(frame[c]) for c in frame.columns})
    return frame.set_axis(pd.RangeIndex(start, start + len(frame)), axis=0)


QUIET = ("distributed", "tornado", "asyncio")  # loggers a local cluster's life goes to
HOST_PORT_SCHEMES = ("tcp", "tls", "ws", "wss")  # distributed's host:port address schemes


def not_an_address(scheduler: str, err: Exception) -> ChurnError:
    """The one-line error for a ``--scheduler`` that cannot name a Dask scheduler."""
    return ChurnError(
        f"--scheduler {clip(scheduler)}: not a Dask scheduler address "
        f"({one_line(err)}); e.g. tcp://10.0.0.5:8786"
    )


def check_scheduler(scheduler: str) -> None:
    """Refuse an address no scheduler can have before a client is built.

    ``Client()`` starts its IO loop before it looks at the address, and on a busy machine
    that start can outlast distributed's own 10 s wait: a typo then read as a crash.
    """
    from distributed.comm import registry
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(scheduler, strict=False)
        registry.get_backend(scheme)  # an unknown scheme (http://) is a ValueError
        if scheme in HOST_PORT_SCHEMES:
            host, port = parse_host_port(location)  # no port is a ValueError
            if not host:
                raise ValueError(f"no host in address {location!r}")
            if not 0 < port < 65536:
                raise ValueError(f"port {port} is not in 1-65535")
    except ValueError as err:
        raise not_an_address(scheduler, err) from None


@contextlib.contextmanager
def dask_client(scheduler: str | None) -> Iterator[Any]:
    """A client of the cluster at ``scheduler``, or of a small local cluster on 127.0.0.1."""
    from distributed import Client, LocalCluster

    if scheduler:
        check_scheduler(scheduler)
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as err:
            raise ChurnError(f"--scheduler {clip(scheduler)}: cannot connect ({err})") from None
        except (ValueError, TypeError, OverflowError) as err:  # what the check cannot see
            raise not_an_address(scheduler, err) from None
        with client:
            yield client
        return
    # Silent: its INFO records reached the root handler churn's entry sets up (30 lines of
    # cluster life a run); what goes wrong reaches this process as an exception (a dead
    # worker as _result's one line), and an interrupted run made distributed, tornado and
    # asyncio log the cancelled work with tracebacks, in this process and the workers'.
    levels = {name: logging.getLogger(name).level for name in QUIET}
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    ending = False
    try:
        with contextlib.ExitStack() as stack:
            with entry.stops_deferred():  # a cluster stopped while it starts cannot close
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=DASK_WORKERS,
                        threads_per_worker=1,
                        host="127.0.0.1",
                        # None still serves the scheduler's HTTP routes on :8787, and a
                        # second run (or a user's own cluster) printed "Port 8787 is
                        # already in use".
                        dashboard_address="127.0.0.1:0",
                        memory_limit=DASK_MEMORY,
                        silence_logs=logging.CRITICAL,  # the worker processes' handlers
                    )
                )
                client = stack.enter_context(Client(cluster))
            yield client
    except (KeyboardInterrupt, SystemExit):
        ending = True  # the process ends: what is still collected or reaped stays quiet
        raise
    finally:
        if not ending:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def dask_parts(
    source: Source, scorer: Scorer, chunk_rows: int, client: Any
) -> Iterator[pd.DataFrame]:
    """Each partition scored on the cluster with the same :class:`Scorer`, returned in order.

    A bounded window of partitions is in flight, so the driver never holds the whole result.
    """
    import dask

    # Dask turns object columns into its string dtype by default: a date where a number
    # goes was then refused as '1970-01-02', where the local engine says
    # datetime.date(1970, 1, 2). The graph is fixed by to_delayed.
    with dask.config.set({"dataframe.convert-string": False}):
        frame = dask_frame(source, chunk_rows)
        scored = frame.map_partitions(scorer, meta=scorer(frame._meta))
        parts = iter(scored.to_delayed())
    pending: deque = deque()
    window = DASK_WINDOW * max(1, len(client.scheduler_info().get("workers", {})))
    for part in parts:
        pending.append(client.compute(part))
        if len(pending) >= window:
            yield _result(pending.popleft(), source)
    while pending:
        yield _result(pending.popleft(), source)


def _result(future: Any, source: Source) -> pd.DataFrame:
    """A scored partition; a worker that kept dying on it (most often memory) is one line."""
    from distributed import KilledWorker
    from distributed.comm import CommClosedError

    try:
        return future.result()
    # Both are OSErrors too, and about the cluster, not the input.
    except (CommClosedError, TimeoutError) as err:
        raise ChurnError(
            f"{source.path}: lost the Dask scheduler while scoring ({one_line(err)}); "
            "is the cluster still running?"
        ) from None
    # The partition is read on the worker: a corrupt page is the input's, not the output's
    # (which the sink around this loop would have named).
    except (OSError, pa.ArrowException) as err:
        raise unreadable(source.path, err) from None
    except KilledWorker:
        raise ChurnError(
            f"{source.path}: Dask workers died scoring a partition (most often out of memory: "
            f"a local worker has {DASK_MEMORY}); give workers more memory or lower --chunk-rows"
        ) from None


# --------------------------------------------------------------------------- the command


def _progress(source: Source, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=source.rows,
        unit=" rows",
        unit_scale=True,
        disable=not enabled,
        file=sys.stderr,
        desc="scoring",
    )


def run(
    input_path: str,
    output: str,
    model_ref: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    on_error: str = "fail",
    engine: str = "local",
    scheduler: str | None = None,
    root: str | Path = ".",
) -> Counts:
    """Score ``input_path`` into ``output``; the closing line counts scored and rejected rows."""
    if chunk_rows < 1:
        raise ChurnError(f"--chunk-rows {chunk_rows}: must be at least 1")
    if scheduler and engine != "dask":  # else silently scored here, not on that cluster
        raise ChurnError(f"--scheduler {clip(scheduler)}: only with --engine dask")
    if str(output).endswith(("/", os.sep)):  # its sidecars would go in a directory made so
        raise ChurnError(f"--output {clip(output, 300)}: a file name, not a directory")
    _kind(output, "output")
    _kind(str(input_path), "input")  # usage mistakes first, before the model is read
    _not_the_input(str(input_path), str(output))
    started = time.monotonic()
    bundle = load_bundle(model_ref, root)
    # A release made before prepare refused these names: its ids would be overwritten.
    # Only the id: score writes no feature beside its columns.
    check_output_names(
        [bundle.contract.id], f"{bundle.version}'s contract", "retrain with a new name for"
    )
    source = open_input(str(input_path), bundle.contract)
    rows = block_rows(bundle.model)
    scorer = Scorer(bundle.model, bundle.contract, bundle.threshold, source.path, rows)
    # The output is published as the sink closes, after the engine's: a local cluster
    # takes seconds to shut down, and a Ctrl-C then said "interrupted" (exit 130) of an
    # output already replaced. Now it leaves the old one, as at any other moment.
    with sink(str(output), bundle, source, on_error) as out:
        with contextlib.ExitStack() as stack:
            if engine == "dask":
                client = stack.enter_context(dask_client(scheduler))
                parts: Iterator[pd.DataFrame] = dask_parts(source, scorer, chunk_rows, client)
            else:
                parts = local_parts(source, scorer, chunk_rows)
            bar = stack.enter_context(_progress(source, sys.stderr.isatty()))
            for part in parts:
                out.add(part)
                bar.update(len(part))
    counts = out.counts
    seconds = max(time.monotonic() - started, 1e-9)
    total = counts.scored + counts.rejected
    rejected = f"{output}{REJECTS}" if on_error == "reject" else "none"
    log.info(
        "%s: %d rows scored, %d rejected (%s) -> %s with %s (md5 %s), %s engine, "
        "%.1f s, %.0f rows/s",
        input_path,
        counts.scored,
        counts.rejected,
        rejected,
        output,
        bundle.version,
        bundle.md5,
        engine,
        seconds,
        total / seconds,
    )
    return counts
