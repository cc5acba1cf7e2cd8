"""``churn monitor --input batch.csv``: did incoming customers drift away from the training data?

Not a pipeline stage: it runs on batches that arrive after training (a CSV or
Parquet file with the raw columns, or the service's prediction log, ``.jsonl``).
The batch is read a chunk at a time (``--chunk-rows``), never whole: each chunk is
validated against the data contract, then added to per-column counts whose size
depends on the training data alone (:mod:`churn.ops.drift`). The counts are
compared with the pipeline's DVC-tracked outputs: the training split (features)
and the test split's predictions (scores).

- numeric features: PSI on bins cut at the reference's deciles, and the
  two-sample Kolmogorov-Smirnov test;
- numeric features: also the share of values outside the range seen in training
  (the contract's observed range; the service does not refuse them);
- categorical features: PSI over the categories, a chi-square test, and the
  share of values outside the contract's categories (the service answers 422
  for those rows, so they are counted here and left out of the scores);
- every feature: the change in its missing rate;
- predictions: the model's score distribution on the batch rows the service
  would accept, against the test split's (PSI and KS); with no such row, not computed.

Every statistic is the one computed on the whole batch at once.

Thresholds live in ``params.yaml`` (``monitor:``). Writes ``drift.json``,
``summary.md`` and a PNG per drifted feature to ``--out``; exits 0 when nothing
drifted, 1 when something did, 2 when the batch is invalid.
"""

import functools
import hashlib
import json
import logging
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from churn.core import io
from churn.core.contract import (
    NUMBER_TEXT,
    SCORE,
    Contract,
    one_of,
    read_contract,
    require_columns,
    validate_features,
)
from churn.core.errors import ChurnError, clip, escape
from churn.core.integrity import file_md5, load_model, read_lock, recorded_md5, refuse_kept
from churn.core.markdown import cell, shown
from churn.core.params import MonitorParams, load_params
from churn.ops import score as scoring
from churn.ops.drift import (
    CategoricalSummary,
    Check,
    NumericSummary,
    categorical_check,
    categorical_summary,
    judge_all,
    numeric_summary,
    score_check,
)
from churn.ops.results import NOT_LOCKED, locked_text, predictions_of

log = logging.getLogger("churn.monitor")

SCORE_COLUMN = SCORE  # as the service writes it to its prediction log
CHUNK_ROWS = scoring.CHUNK_ROWS  # rows read, validated and counted at a time
PLOT_BINS = 30
# A feature name used as is for its plot's file; others are made plain (see plot_file).
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
PLAIN_BYTES = 80
T = TypeVar("T")
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}
LONG_LINE = (
    f"longer than the reader's block ({scoring.JSON_BLOCK_BYTES >> 20} MiB): one JSON object "
    "per line (a JSON array saved as .jsonl is one line)"
)


Summary = NumericSummary | CategoricalSummary


class Batch:
    """The whole batch as it is read: per-feature summaries, the scores' summary, the counts."""

    def __init__(
        self,
        reference: pd.DataFrame,
        test_scores: np.ndarray,
        contract: Contract,
        params: MonitorParams,
    ) -> None:
        self.reference, self.contract, self.params = reference, contract, params
        self.features: dict[str, Summary] = {
            name: numeric_summary(reference[name], params, contract.columns[name])
            if contract.columns[name].type == "numeric"
            else categorical_summary(reference[name], contract.columns[name])
            for name in contract.features
        }
        scores = pd.Series(test_scores, dtype=float)
        self.scores = NumericSummary(scores, params.bins, -np.inf, np.inf)
        self.rows = self.refused = 0

    def add(self, frame: pd.DataFrame) -> None:
        """Count one chunk of features (already validated)."""
        self.rows += len(frame)
        for name, summary in self.features.items():
            if isinstance(summary, NumericSummary):
                summary.add(numbers(frame[name]))
            else:
                summary.add(frame[name])

    def add_scores(self, scores: np.ndarray) -> None:
        """Count one chunk of the model's scores."""
        self.scores.add(scores)

    def judged(self) -> tuple[list[Check], Check | None]:
        """Each feature's check, in contract order, and the scores' (None: none scored).

        Judged together (:func:`judge_all`): their p-values are adjusted as one family.
        """
        features = []
        for name, summary in self.features.items():
            if isinstance(summary, NumericSummary):
                features.append(summary.check(name))
            else:
                column = self.contract.columns[name]
                features.append(categorical_check(name, self.reference[name], summary, column))
        prediction = score_check(self.scores)
        judge_all([*features, *([prediction] if prediction is not None else [])], self.params)
        return features, prediction

    def checks(self) -> list[Check]:
        """:meth:`judged`'s feature checks."""
        return self.judged()[0]

    def prediction(self) -> Check | None:
        """:meth:`judged`'s check of the scores; None when no row was scored."""
        return self.judged()[1]


def compare(
    reference: pd.DataFrame, batch: pd.DataFrame, contract: Contract, params: MonitorParams
) -> list[Check]:
    """One judged check per feature of a whole batch, in contract order."""
    summaries = Batch(reference, np.empty(0), contract, params)
    summaries.add(batch)
    return summaries.checks()


def numbers(values: pd.Series) -> np.ndarray:
    """A validated numeric column as floats (a column read as text is parsed here)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class BatchFile:
    """An input batch: its kind and whether it carries the service's logged scores."""

    path: Path
    kind: str  # "csv", "parquet" or "jsonl"
    logged_scores: bool


def open_batch(path: Path, contract: Contract) -> BatchFile:
    """The batch's kind and header, checked: every feature there."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ChurnError(
            f"{path}: the batch must be .csv, .parquet or .jsonl "
            f"(got {path.suffix or 'no suffix'!r})"
        )
    if kind != "jsonl":
        scoring.open_input(str(path), contract, with_id=False)
        return BatchFile(path, kind, False)
    with io.require_file(path, hint="").open("rb") as fh:  # the user's batch: no stage makes it
        io.refuse_not_text(str(path), fh.read(io.SNIFF_BYTES), parquet_read=True, text="JSON lines")
        fh.seek(0)
        number, first = next(
            ((n, line) for n, line in enumerate(json_lines(fh), start=1) if line.strip()),
            (0, b""),
        )  # blank lines are skipped
    if len(first) > scoring.JSON_BLOCK_BYTES:
        raise ChurnError(f"{path}: line {number}: {LONG_LINE}")
    if not first:
        raise ChurnError(f"{path}: no data rows")
    try:
        header = json.loads(first)
    except (ValueError, RecursionError) as err:
        raise ChurnError(f"{path}: not JSON lines (first line: {clip(err, 200)})") from None
    if not isinstance(header, dict):
        raise ChurnError(f"{path}: not JSON lines (the first line is not an object)")
    require_columns(contract.features, list(header), str(path))
    return BatchFile(path, kind, SCORE_COLUMN in header)


def _json_tables(batch: BatchFile, contract: Contract, chunk_rows: int) -> Iterator[pa.Table]:
    # The features' types from the contract (numbers as float), so that every block of the
    # file reads alike; other fields but the logged score are skipped.
    fields = [
        pa.field(name, pa.float64() if col.type == "numeric" else pa.string())
        for name, col in contract.columns.items()
    ]
    if batch.logged_scores:
        fields.append(pa.field(SCORE_COLUMN, pa.float64()))
    try:
        reader = pajson.open_json(
            batch.path,
            read_options=pajson.ReadOptions(block_size=scoring.JSON_BLOCK_BYTES),
            parse_options=pajson.ParseOptions(
                explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore"
            ),
        )
        for table in scoring.rebatch(reader, chunk_rows):
            # pyarrow's JSON reader leaves bytes that are not UTF-8 inside strings as they
            # are; pandas then raised UnicodeDecodeError (a traceback, and exit 1: "drift").
            table.validate(full=True)
            # As the CSV and Parquet reader does: a blank category is missing, not a category.
            yield scoring.blank_as_null(table)
    except pa.ArrowException as err:
        # pyarrow counts rows from 0 within a 16 MiB block: find the line for the message.
        kinds = {field.name: "number" if field.type == pa.float64() else "text" for field in fields}
        where = first_bad_line(batch.path, kinds) or f"not JSON lines ({scoring.one_line(err)})"
        raise ChurnError(f"{batch.path}: {where}") from None


def json_lines(fh: BinaryIO) -> Iterator[bytes]:
    """The lines of ``fh``, none read past one reader's block and a byte.

    A JSON array saved as ``.jsonl`` is one line as long as the file: read whole (and
    parsed), a 172 MB file took 1 GB before its one-line error. A longer line is yielded
    cut, one byte past the block, and ends the lines: the reader refuses it anyway.
    """
    while line := fh.readline(scoring.JSON_BLOCK_BYTES + 1):
        yield line
        if len(line) > scoring.JSON_BLOCK_BYTES:
            return


def first_bad_line(path: Path, kinds: dict[str, str]) -> str | None:
    """``line N: what is wrong`` for the first line :func:`json_line_problem` refuses."""
    with path.open("rb") as fh:
        for number, line in enumerate(json_lines(fh), start=1):
            if len(line) > scoring.JSON_BLOCK_BYTES:
                return f"line {number}: {LONG_LINE}"
            if line.strip() and (problem := json_line_problem(line, kinds)) is not None:
                return f"line {number}: {problem}"
    return None


class _Object(dict[str, Any]):
    """A JSON object with its keys given more than once, in the order they came again.

    ``json.loads`` keeps a repeated key's last value without a word.
    """

    repeated: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    row = _Object(pairs)
    if len(row) < len(pairs):  # a key given twice: only then are the keys walked
        seen: set[str] = set()
        again = []
        for key, _ in pairs:
            if key in seen:
                again.append(key)
            seen.add(key)
        row.repeated = tuple(again)
    return row


def json_line_problem(line: bytes, kinds: dict[str, str]) -> str | None:
    """Why the batch reader refuses one JSON line, or None.

    ``kinds`` maps each field read to "number" or "text"; null is always allowed,
    true/false never (as the service and prepare refuse them).
    """
    too_big: list[_TooBig] = []  # the first number pyarrow refuses, if any
    try:
        # NaN and Infinity too, as pyarrow reads them.
        row = json.loads(
            line.rstrip(b"\r\n"),
            parse_float=functools.partial(_double, too_big),
            parse_int=_integer,
            object_pairs_hook=_object,
        )
    except json.JSONDecodeError as err:
        return f"not JSON ({err.msg} at character {err.pos + 1})"
    except (ValueError, RecursionError) as err:  # bytes that are not UTF-8, nesting depth
        return f"not JSON ({clip(err, 200)})"
    if not isinstance(row, dict):
        return f"{_json_kind(row)}, not a JSON object"
    if too_big:  # in any field, even one the reader skips
        where = _field_of(row, too_big[0])
        field = "" if where is None else f"'{clip(where, 80)}': "
        return f"{field}the number {clip(too_big[0].text, 40)} is out of a double's range"
    return _field_problem(row, kinds)


def _field_problem(row: _Object, kinds: dict[str, str]) -> str | None:
    """A field read (one of ``kinds``) that is given twice or holds the wrong kind; or None."""
    # pyarrow refuses a repeated key only among the fields it reads, nested ones never.
    repeated = next((key for key in row.repeated if key in kinds), None)
    if repeated is not None:
        return f"the key {repeated!r} is repeated"
    for name, kind in kinds.items():
        value = row.get(name)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is None or (number if kind == "number" else isinstance(value, str)):
            continue
        return f"{name!r} is {_json_kind(value)}, not {'a number' if kind == 'number' else 'text'}"
    return None


MAX_EXPONENT = 308  # a double's largest power of ten: pyarrow refuses none written up to it


class _TooBig(float):
    """A number pyarrow refuses, as Python reads it, with ``text`` as written."""

    __slots__ = ("text",)
    text: str


def _double(too_big: list[_TooBig], text: str) -> float:
    """A JSON number with a fraction or exponent as a float; one pyarrow refuses is marked.

    pyarrow's reader stops at a number whose written exponent is over 308 (plus its
    fraction digits), even ``0e400``, naming a row it counts from 0 within a block.
    Python reads such numbers as infinity or 0 without a word. Only pyarrow itself says
    exactly which it refuses, so it is asked, once per such number until one is refused
    (only the first is reported; 20,000 of them took seconds): a line of ``2e308``
    (infinity to both) asks nothing.
    """
    _, _, exponent = text.lower().partition("e")
    if not too_big and exponent.lstrip("+").isdigit() and int(exponent) > MAX_EXPONENT:
        if _refused_by_pyarrow(text):
            marked = _TooBig(text)
            marked.text = text
            too_big.append(marked)
            return marked
    return float(text)


def _field_of(row: dict, number: _TooBig) -> str | None:
    """Where in ``row`` the object ``number`` is, as a path; None if a repeated key lost it.

    The path reads ``x.y[0]`` for ``{"x": {"y": [1e400]}}``. The walk keeps its own
    stack of iterators, one per open container, and builds the path only once found:
    ``json.loads`` accepts nesting nearly as deep as Python's recursion limit, and a
    stack of every child with its path took 415 MB for the 0.2 MB line of
    ``test_finding_the_field_costs_no_memory_per_value``.
    """
    stack: list[tuple[str | int, Iterator[tuple[Any, Any]]]] = [("", iter(row.items()))]
    while stack:
        for key, value in stack[-1][1]:
            if value is number:
                return _field_path([*(k for k, _ in stack[1:]), key])
            if isinstance(value, dict | list):
                items = value.items() if isinstance(value, dict) else enumerate(value)
                stack.append((key, iter(items)))
                break
        else:
            stack.pop()
    return None


# A key written bare in a field path; any other (empty, holding . [ ] " or a control
# character) goes in ["..."], as JSON writes it.
BARE_KEY = re.compile(r'[^.\[\]"]+')


def _field_path(path: list[str | int]) -> str:
    """``["x", "y", 0, "a.b"]`` as ``x.y[0]["a.b"]``: one reading, whatever the keys hold."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif BARE_KEY.fullmatch(part) and part.isprintable():
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


@functools.lru_cache(maxsize=256)
def _refused_by_pyarrow(number: str) -> bool:
    try:
        pajson.read_json(pa.BufferReader(f'{{"x": {number}}}\n'.encode()))
    except pa.ArrowInvalid:
        return True
    return False


def _integer(text: str) -> int | float:
    """A JSON whole number; past Python's digit limit for int(), a float (as pyarrow reads it)."""
    try:
        return int(text)
    except ValueError:  # over 4,300 digits: pyarrow reads it, as infinity
        return float(text)


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    kinds = ((str, "text"), (int | float, "a number"), (list, "an array"), (dict, "an object"))
    return next(word for kind, word in kinds if isinstance(value, kind))


def tables(
    batch: BatchFile, contract: Contract, chunk_rows: int, columns: list[str] | None = None
) -> Iterator[pa.Table]:
    """The batch's features (``columns``: some of them) ``chunk_rows`` rows at a time."""
    if batch.kind == "jsonl":
        yield from _json_tables(batch, contract, chunk_rows)
        return
    names = columns or contract.features
    source = scoring.Source(str(batch.path), batch.kind, names, pa.int64(), None)
    yield from scoring.local_tables(source, chunk_rows)


def typed(table: pa.Table, contract: Contract) -> pd.DataFrame:
    """The chunk as a frame: a numeric column as integers, else floats, else as text.

    A CSV is read as text; a column that does not parse as numbers stays text, for the
    contract's check to name the bad rows (as prepare's reader leaves such a column).
    """
    columns = {}
    for name in table.column_names:
        values = table[name]
        if name in contract.columns and contract.columns[name].type == "numeric":
            values = _as_numbers(values)
        columns[name] = values
    return pa.table(columns).to_pandas()


# What a numeric feature's column may hold: numbers, text (parsed, see _as_numbers) or
# nothing at all. pyarrow's cast also makes True a 1 and a date, time or duration a count
# since the epoch; churn score and the contract refuse those ("is a number").
NUMBER_TYPES = (
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_decimal,
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_null,
)


def require_number_types(schema: pa.Schema, contract: Contract, path: Path) -> None:
    """Each numeric feature's column holds numbers or text: not True/False, dates or durations.

    A Parquet type is the whole column's, so one line says it (a dictionary's values decide).
    """
    for field in schema:
        if field.name not in contract.numeric:
            continue
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if not any(is_number(kind) for is_number in NUMBER_TYPES):
            raise ChurnError(
                f"{path}: {clip(field.name)}: not a number: the column holds "
                f"{clip(field.type, 60)} values"
            )


def _as_numbers(values: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(values.type):  # a Parquet category: judged by its values
        values = values.cast(values.type.value_type)
    if pa.types.is_integer(values.type) or values.type == pa.float64():
        return values
    if pa.types.is_floating(values.type):
        # A float32 read as score reads it: values at a decile edge or the training
        # maximum crossed it, and the training file saved as float32 drifted from itself.
        return scoring.float_as_written(values)
    if pa.types.is_decimal(values.type):
        # pyarrow's decimal-to-float cast is not correctly rounded (89.10 came out
        # 89.10000000000001, and the training file drifted from itself); its text is exact,
        # and text is read to the nearest float, as score reads the same Decimal.
        values = pc.cast(values, pa.string())
    # pyarrow's cast also reads "0x1F" and other forms the contract refuses: such a
    # column stays text, for the contract's check to name its rows.
    text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    if text and pc.all(pc.match_substring_regex(values, f"^{NUMBER_TEXT}$")).as_py() is False:
        return values
    for kind in (pa.int64(), pa.float64()):
        try:
            return pc.cast(values, kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return values


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """``items``, each next one made in a thread while the caller works on the current one.

    pyarrow parses a chunk without holding the GIL, so on two cores the reading hides
    behind the checks and the model. At most two items exist at a time.
    """
    end = object()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-read") as pool:
        pending = pool.submit(next, items, end)
        while (item := pending.result()) is not end:
            pending = pool.submit(next, items, end)
            yield item  # type: ignore[misc]


def chunks(
    batch: BatchFile, contract: Contract, chunk_rows: int, columns: list[str] | None = None
) -> Iterator[tuple[pd.DataFrame, np.ndarray | None]]:
    """Typed frames indexed by row position from 0, with the logged scores (or None)."""
    start = 0
    for table in tables(batch, contract, chunk_rows, columns):
        scores = None
        if SCORE_COLUMN in table.column_names:
            scores = table[SCORE_COLUMN].to_numpy(zero_copy_only=False).astype(float)
            table = table.drop_columns([SCORE_COLUMN])
        require_number_types(table.schema, contract, batch.path)
        try:
            frame = typed(table, contract)
        except (pa.ArrowException, UnicodeDecodeError) as err:  # e.g. binary that is not UTF-8
            raise ChurnError(f"{batch.path}: cannot read ({scoring.one_line(err)})") from None
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yield frame, scores


# --------------------------------------------------------------------------- output


def summary_markdown(
    checks: list[Check], prediction: Check | None, rows: int, warning: str, params: MonitorParams
) -> str:
    """Drifted features first, each with its statistic and the threshold it crossed.

    Each number is shown on its side of its threshold (:func:`churn.core.markdown.shown`).
    """
    drifted = [c for c in checks if c.drifted]
    lines = ["# Drift report", ""]
    if warning:
        lines += [f"> {warning}", ""]
    verdict = (
        f"{len(drifted)} of {len(checks)} features drifted" if drifted else "No feature drifted"
    )
    lines += [
        f"{verdict} ({rows:,} rows). Predictions: {prediction_verdict(prediction)}.",
        "",
    ]
    lines.append(
        "| feature | kind | PSI | test | statistic | p | missing Δ | unseen | out of range "
        "| because |"
    )
    lines += ["|---|---|---:|---|---:|---:|---:|---:|---:|---|"]
    ordered = sorted(checks, key=lambda c: (not c.drifted, -c.psi))
    ordered += [prediction] if prediction is not None else []
    for c in ordered:
        lines.append(f"| {cell(c.name)} | {c.kind} | {check_cells(c, params)} |")
    return "\n".join(lines) + "\n"


def check_cells(c: Check, params: MonitorParams) -> str:
    """A check's numbers in summary.md's table, each on its side of its threshold.

    The KS limits judge a KS test only: a chi-square statistic and p are shown as they round.
    """
    ks = c.test == "ks"
    return " | ".join(
        (
            shown(c.psi, params.psi, ".3f"),
            c.test,
            shown(c.statistic, params.ks_statistic, ".3f") if ks else f"{c.statistic:.3f}",
            shown(c.p_value, params.alpha, ".2g") if ks else f"{c.p_value:.2g}",
            shown(c.missing_change, params.missing_change, "+.1%"),
            shown(c.unseen_share, params.unseen_share, ".1%"),
            shown(c.out_of_range_share, params.out_of_range_share, ".1%"),
            "; ".join(c.reasons) or "—",
        )
    )


def prediction_verdict(prediction: Check | None) -> str:
    """The predictions' line in summary.md: drifted, stable, or not computed."""
    if prediction is None:
        return "not computed (0 rows scored)"
    return "drifted" if prediction.drifted else "stable"


def prediction_json(prediction: Check | None) -> dict[str, Any]:
    """drift.json's ``prediction``: with no row scored, its statistics and verdict are null.

    The same keys either way; null ``drifted`` is neither drift nor stable.
    """
    if prediction is not None:
        return asdict(prediction)
    empty = asdict(Check("prediction", "score", 0.0, "ks", 0.0, 1.0, 0.0))
    return {**empty, "psi": None, "statistic": None, "p_value": None, "drifted": None}


def plot_edges(ref: pd.Series, batch: NumericSummary) -> np.ndarray:
    """``PLOT_BINS`` equal bins over the range of both, as np.histogram cuts them."""
    ends = [v for v in (ref.min(), ref.max(), batch.minimum, batch.maximum) if np.isfinite(v)]
    return np.histogram_bin_edges(np.array(ends or [0.0], dtype=float), bins=PLOT_BINS)


def histograms(
    source: BatchFile, contract: Contract, chunk_rows: int, edges: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The batch's counts per plot bin of the numeric features in ``edges`` (a second pass)."""
    counts = {name: np.zeros(len(e) - 1, dtype=np.int64) for name, e in edges.items()}
    for frame, _ in chunks(source, contract, chunk_rows, columns=list(edges)):
        for name, e in edges.items():
            values = numbers(frame[name])
            counts[name] += np.histogram(values[~np.isnan(values)], bins=e)[0]
    return counts


def plot_numeric(
    name: str, ref: pd.Series, edges: np.ndarray, counts: np.ndarray, path: Path
) -> Path:
    """Training vs batch densities of a numeric feature; the batch given as counts per bin."""
    fig, ax = _figure()
    ax.hist(ref.dropna(), bins=edges, density=True, alpha=0.5, label="training")
    if counts.sum():  # a batch without one value of the column has no histogram to draw
        ax.hist(edges[:-1], bins=edges, weights=counts, density=True, alpha=0.5, label="batch")
    ax.set_ylabel("density")
    ax.legend()
    return _save(fig, ax, name, path)


def plot_categorical(name: str, ref: pd.Series, batch: CategoricalSummary, path: Path) -> Path:
    """Training vs batch shares per category."""
    fig, ax = _figure()
    bar_shares(ref, batch).plot.bar(ax=ax)
    ax.set_ylabel("share")
    return _save(fig, ax, name, path)


# A batch of free text as a category had 100,000 bars to draw, and a 2 MB category a
# 2 MB tick label: matplotlib took minutes. The plot shows the largest shares, clipped.
PLOT_BARS = 30
POOLED_LABEL = "(more unseen values)"  # drift.CategoricalSummary.pooled: past MAX_UNSEEN
LABEL_CHARS = 30  # a rotated tick label longer than this leaves the bars no room


def bar_shares(ref: pd.Series, batch: CategoricalSummary) -> pd.DataFrame:
    """Training and batch share per category, at most ``PLOT_BARS`` rows, labels clipped.

    Past the limit, the categories with the largest share on either side are kept and
    the rest are one row, "other (N)"; a longer label is cut to ``LABEL_CHARS``, ending
    in "…", its control characters shown escaped.
    """
    present = max(batch.rows - batch.missing, 1)
    both = pd.DataFrame(
        {
            "training": ref.dropna().astype(str).value_counts(normalize=True),
            "batch": pd.Series(batch.counts, dtype=float) / present,
        }
    ).fillna(0.0)
    if batch.pooled:
        both.loc[POOLED_LABEL] = (0.0, batch.pooled / present)
    if len(both) > PLOT_BARS:
        largest = both.max(axis=1).sort_values(ascending=False, kind="stable").index
        keep = both.loc[largest[: PLOT_BARS - 1]]
        rest = both.drop(index=keep.index).sum().rename(f"other ({len(both) - len(keep)})")
        both = pd.concat([keep, rest.to_frame().T])
    both.index = [_short(escape(label)) for label in both.index]
    return both


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 3.5), dpi=100)


def _save(fig: Any, ax: Any, name: str, path: Path) -> Path:
    """The figure, titled ``name``, as PNG at ``path`` (no version stamp), written atomically."""
    import matplotlib.pyplot as plt

    ax.set_title(name)
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    return path


def plot_file(feature: str, clashes: bool = False) -> str:
    """The PNG's file name for ``feature``: the name itself when it is a plain one.

    A feature name is a CSV header: it may hold a '/', be '..', or be longer than a file
    name may be. Any other name, or one that ``clashes`` with another feature's but for
    case (see :func:`plot_files`), is its plain characters, cut to PLAIN_BYTES of UTF-8
    (80 letters of a CJK script are 240 bytes, and a file name may have 255), and a hash
    of the whole, so that every file lands in ``--out`` and two names never share one.
    """
    if PLAIN_NAME.fullmatch(feature) and not clashes:
        return f"{feature}.png"
    plain = re.sub(r"[^\w-]+", "_", feature).encode("utf-8")  # no surrogate is a \w
    # Cut by bytes; a letter cut in half is dropped.
    plain = plain[:PLAIN_BYTES].decode("utf-8", "ignore").strip("_-")
    digest = hashlib.sha256(feature.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return f"{plain}-{digest}.png" if plain else f"{digest}.png"


def plot_files(features: Iterable[str]) -> dict[str, str]:
    """Each feature's PNG file name (:func:`plot_file`), no two the same but for case.

    On a case-insensitive file system, as macOS's and Windows' usually are, the plots of
    'Age' and 'age' shared a file: features whose files differ only in case all get the
    hashed name (the hash in lower case), so that a contract's plot files never depend
    on what else drifted.
    """
    files = {name: plot_file(name) for name in features}
    folded = Counter(file.casefold() for file in files.values())
    return {
        name: plot_file(name, clashes=True) if folded[file.casefold()] > 1 else file
        for name, file in files.items()
    }


def write_plots(
    drifted: list[Check], batch: Batch, source: BatchFile, chunk_rows: int, out: Path
) -> None:
    """A PNG per drifted feature; numeric ones need a second pass over the batch for bins."""
    files = plot_files(batch.contract.features)
    edges = {}
    for c in drifted:
        summary = batch.features[c.name]
        if isinstance(summary, NumericSummary):
            edges[c.name] = plot_edges(batch.reference[c.name], summary)
        else:
            plot_categorical(c.name, batch.reference[c.name], summary, out / files[c.name])
    if edges:
        counts = histograms(source, batch.contract, chunk_rows, edges)
        for name, bins in edges.items():
            plot_numeric(name, batch.reference[name], bins, counts[name], out / files[name])


def refused_rows(batch: pd.DataFrame, contract: Contract) -> np.ndarray:
    """Rows the service would answer 422 for: a category outside the contract's."""
    refused = np.zeros(len(batch), dtype=bool)
    for name in contract.categorical:
        allowed = contract.columns[name].categories
        if allowed:
            values = batch[name]
            refused |= (values.notna() & ~one_of(values, allowed)).to_numpy()
    return refused


def check_logged_scores(scores: np.ndarray, rows: pd.Index, path: Path, unit: str = "row") -> None:
    """A logged score is a probability: present and within 0..1 on every line."""
    bad = ~((scores >= 0) & (scores <= 1))  # NaN (a line without one) is bad too
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ChurnError(
            f"{path}: {SCORE_COLUMN}: not a probability in 0..1: {int(bad.sum())} bad row(s) "
            f"({unit} {rows[first] + 1}: {float(scores[first])!r})"
        )


def check_chunk(
    frame: pd.DataFrame, logged: np.ndarray | None, source: BatchFile, contract: Contract
) -> None:
    """:func:`validate_features` and the logged scores' check of one chunk.

    A JSON-lines file's records are named by their line, as a line JSON cannot read is:
    with blank lines in it, the value on line 11 was "row 8". The lines are found only
    when a chunk is refused, and the chunk is checked again under them; where a line
    holds more than one record, the records are named by count, as before.
    """
    try:
        validate_features(frame, contract, str(source.path))
        if logged is not None:
            check_logged_scores(logged, frame.index, source.path)
    except ChurnError:
        lines = record_lines(source.path, frame.index) if source.kind == "jsonl" else None
        if lines is None:
            raise
        lined = frame.set_axis(lines)
        validate_features(lined, contract, str(source.path), unit="line")
        if logged is not None:
            check_logged_scores(logged, lined.index, source.path, unit="line")
        raise


def record_lines(path: Path, records: pd.Index) -> pd.Index | None:
    """The 0-based lines of the JSON-lines file's 0-based ``records`` (consecutive ones).

    Blank lines hold no record, as the reader skips them. Only the lines of the records
    asked for are kept: a chunk's, however far into the file. None unless each line up
    to the last of them holds one record: the reader takes ``{...}{...}`` on one line
    as two, which the reader itself, counting the records of those lines, tells.
    """
    first, last = int(records.min()), int(records.max())
    found: list[int] = []
    record, end = -1, 0
    with path.open("rb") as fh:
        for number, line in enumerate(json_lines(fh)):
            end += len(line)
            if not line.strip():
                continue
            record += 1
            if record >= first:
                found.append(number)
            if record == last:
                break
    if record != last or records_in(path, end) != last + 1:
        return None
    return pd.Index(np.asarray(found)[records.to_numpy() - first])


def records_in(path: Path, end: int) -> int:
    """How many records the JSON reader finds in the file's first ``end`` bytes."""
    options = pajson.ParseOptions(explicit_schema=pa.schema([]), unexpected_field_behavior="ignore")
    with pa.memory_map(str(path)) as source:
        head = pa.BufferReader(source.read_buffer(end))
        read = pajson.ReadOptions(block_size=scoring.JSON_BLOCK_BYTES)
        return sum(batch.num_rows for batch in pajson.open_json(head, read, options))


def read(batch: Batch, source: BatchFile, model: Any, chunk_rows: int) -> None:
    """One pass over the batch: each chunk validated, counted and (unless logged) scored."""
    contract = batch.contract
    for frame, logged in read_ahead(chunks(source, contract, chunk_rows)):
        check_chunk(frame, logged, source, contract)
        batch.add(frame)
        scores = logged
        if scores is None:
            refused = refused_rows(frame, contract)
            batch.refused += int(refused.sum())
            accepted = frame.loc[~refused]
            scores = (
                model.predict_proba(scoring.model_input(accepted, contract))[:, 1]
                if len(accepted)
                else np.empty(0)
            )
        batch.add_scores(scores)
    if not batch.rows:
        raise ChurnError(f"{source.path}: no data rows")
    if batch.refused:
        log.warning(
            "%d of %d rows have a category outside the contract (the service refuses them); "
            "scoring the other %d",
            batch.refused,
            batch.rows,
            batch.rows - batch.refused,
        )


def earlier_plots(out: Path) -> set[str]:
    """The PNGs an earlier report in ``out`` drew: its drift.json's drifted features.

    Only those may be removed; a file of the user's named like a feature is not ours.
    Both of a name's files are: the hashed one is drawn when the name clashes with
    another feature's but for case (:func:`plot_files`), and the contract may have changed.
    """
    try:
        drifted = json.loads((out / "drift.json").read_text(encoding="utf-8"))["drifted"]
    except (OSError, ValueError, TypeError, KeyError):  # none, or not one of ours
        return set()
    if not isinstance(drifted, list):
        return set()
    names = [name for name in drifted if isinstance(name, str)]
    return {plot_file(name, clashes) for name in names for clashes in (False, True)}


def publish(report: Path, out: Path, ours: set[str]) -> None:
    """Move a finished report's files into ``out``; drop plots of ours it no longer has.

    Every name is checked before the first is moved, so a directory where a file goes
    stops the run with nothing replaced; a plot from an earlier run whose feature no
    longer drifts would otherwise sit beside a report that says it did not. A name that
    is one of the files just written is kept: on a case-insensitive file system
    'Age.png' is the new 'age.png'.
    """
    written = sorted(p.name for p in report.iterdir())
    for name in written:
        io.refuse_directory(out / name)
    for name in written:
        os.replace(report / name, out / name)
    for name in sorted(ours - set(written)):
        path = out / name
        if path.is_file() and not any(path.samefile(out / new) for new in written):
            path.unlink()


def _staging(out: Path) -> tempfile.TemporaryDirectory:
    """``out``, made if absent, and a directory in it where the report is written first.

    A read-only ``out`` was named by the staging directory's random name.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=".report-", dir=out)
    except OSError as err:
        raise ChurnError(f"--out {clip(out, 200)}: {err.strerror or err}") from None


def check_references(contract: str, train: str, predictions: str) -> np.ndarray:
    """The test split's scores, once the contract, training split and predictions are checked.

    Each must be the file dvc.lock records: a predictions.csv of another commit (or
    another command's output) gave a KeyError traceback, or a verdict of drift, exit 1.
    """
    lock = read_lock()
    for path in (contract, train):
        expected = recorded_md5(lock, path)
        if expected and file_md5(io.require_file(path)) != expected:
            raise ChurnError(f"{path}: {NOT_LOCKED}")
    text = locked_text(Path("."), predictions, lock)
    return predictions_of(text, predictions)["probability"].to_numpy(dtype=float)


def run(input_path: Path, out: Path, chunk_rows: int = CHUNK_ROWS) -> int:
    """Validate, compare, write the outputs; return the exit status (0 or 1)."""
    if chunk_rows < 1:
        raise ChurnError(f"--chunk-rows {chunk_rows}: must be at least 1")
    io.require_directory_or_absent(out, "--out")
    refuse_kept(out, "--out")  # drift.json and PNGs among the code, or over DVC's outputs
    params = load_params()
    test_scores = check_references(
        params.paths.contract, params.paths.train, params.paths.predictions
    )
    contract = read_contract(params.paths.contract)
    source = open_batch(input_path, contract)
    # md5-checked against dvc.lock before unpickling; a log carries its own scores.
    model = None if source.logged_scores else load_model(params.paths.model)[0]
    reference = io.read_parquet(params.paths.train)
    batch = Batch(reference, test_scores, contract, params.monitor)
    read(batch, source, model, chunk_rows)
    checks, prediction = batch.judged()
    warning = ""
    if batch.rows < params.monitor.min_rows:
        warning = (
            f"Only {batch.rows} rows (fewer than {params.monitor.min_rows}): the tests have "
            "little power; a real shift may go unflagged, and with a handful of rows what is "
            "flagged may be chance."
        )
        log.warning("%s", warning)
    staging = _staging(out)
    drifted = [c for c in checks if c.drifted]
    result = {
        "input": str(input_path),
        "rows": batch.rows,
        "scored_rows": batch.scores.rows,  # the rows the service would accept
        "warning": warning,
        "drifted": [c.name for c in drifted],
        "prediction": prediction_json(prediction),
        "features": [asdict(c) for c in checks],
    }
    with staging as made:
        report = Path(made)
        write_plots(drifted, batch, source, chunk_rows, report)
        io.write_json(report / "drift.json", result)
        summary = summary_markdown(checks, prediction, batch.rows, warning, params.monitor)
        io.write_text(report / "summary.md", summary)
        publish(report, out, ours=earlier_plots(out))
    log.info("%d of %d features drifted; report in %s", len(drifted), len(checks), out)
    return 1 if drifted or (prediction is not None and prediction.drifted) else 0
