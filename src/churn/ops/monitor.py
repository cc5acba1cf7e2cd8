"""``churn monitor --input batch.csv``: did incoming customers drift away from the training data?

Not a pipeline stage: it runs on batches that arrive after training (a CSV or
Parquet file with the raw columns, or the service's prediction log, ``.jsonl``).
The batch is read a chunk at a time (``--chunk-rows``), never whole: each chunk is
validated against the data contract, then added to per-column counts whose size
depends on the training data alone (see :class:`NumericSummary`). The counts are
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
  would accept, against the test split's (PSI and KS).

Every statistic is the one computed on the whole batch at once (the KS distance
too: it only needs the batch's counts below and at each distinct training value).

Thresholds live in ``params.yaml`` (``monitor:``). Writes ``drift.json``,
``summary.md`` and a PNG per drifted feature to ``--out``; exits 0 when nothing
drifted, 1 when something did, 2 when the batch is invalid.
"""

import json
import logging
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from scipy import stats

from churn.core import io
from churn.core.contract import (
    Column,
    Contract,
    read_contract,
    require_columns,
    validate_features,
)
from churn.core.errors import ChurnError, clip
from churn.core.integrity import load_model
from churn.core.params import MonitorParams, load_params
from churn.ops import score as scoring

log = logging.getLogger("churn.monitor")

EPS = 1e-6  # keeps PSI finite when a bin is empty on one side
SCORE_COLUMN = "churn_probability"  # as the service writes it to its prediction log
CHUNK_ROWS = scoring.CHUNK_ROWS  # rows read, validated and counted at a time
# scipy's ks_2samp computes an exact p-value while both samples have at most this many
# values, and Smirnov's asymptotic one beyond. Up to it the batch's values are kept (a
# bounded buffer) and handed to ks_2samp itself; past it, ks_pvalue is that formula.
EXACT_KS_ROWS = 10_000
PLOT_BINS = 30
JSON_BLOCK_BYTES = 16 * 1024 * 1024
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}


@dataclass
class Check:
    """One feature's (or the predictions') comparison with the reference."""

    name: str
    kind: str
    psi: float
    test: str
    statistic: float
    p_value: float
    missing_change: float
    unseen_share: float = 0.0
    out_of_range_share: float = 0.0
    drifted: bool = False
    reasons: list[str] = field(default_factory=list)


def psi(reference: np.ndarray, batch: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    ref = np.clip(reference, EPS, None)
    new = np.clip(batch, EPS, None)
    return float(np.sum((new - ref) * np.log(new / ref)))


def numeric_bins(reference: pd.Series, bins: int) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (duplicates dropped; none if it is empty)."""
    values = reference.dropna().to_numpy(dtype=float)
    if not len(values):
        return np.empty(0)
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Count of ``values`` per bin delimited by ``edges`` (open-ended outer bins)."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` per bin delimited by ``edges`` (open-ended outer bins)."""
    counts = bin_counts(values, edges)
    return counts / max(counts.sum(), 1)


def ks_distance(
    reference_at_or_below: np.ndarray,
    reference_n: int,
    at_or_below: np.ndarray,
    below: np.ndarray,
    n: int,
) -> float:
    """Two-sample KS distance from counts at the reference's sorted distinct values.

    ``reference_at_or_below[i]`` counts reference values <= the i-th distinct value;
    ``at_or_below[i]`` and ``below[i]`` count batch values <= and < it. Between two
    distinct reference values the reference's ECDF is flat and the batch's rises, so
    the largest gap is at a distinct value (reference above) or just below the next one
    (batch above): the same maximum, from the same fractions, as ks_2samp's over every
    value of both samples.
    """
    ref = reference_at_or_below / reference_n
    ref_before = np.concatenate([[0.0], ref[:-1]])  # the reference's ECDF just below
    above = ref - at_or_below / n
    under = ref_before - below / n
    return float(max(above.max(initial=0.0), -above.min(initial=0.0), -under.min(initial=0.0)))


def ks_pvalue(distance: float, n1: int, n2: int) -> float:
    """Two-sided p-value as ks_2samp computes it for large samples (Smirnov's asymptotic)."""
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(stats.kstwo.sf(distance, np.round(m * n / (m + n))), 0, 1))


class NumericSummary:
    """A numeric column of the batch as counts: chunks add to them, in any order and size.

    The memory is fixed by the reference (its distinct values and deciles), never by the
    batch: per PSI bin, per distinct reference value (for KS), the missing and the
    out-of-range values, the minimum and maximum, and the first ``EXACT_KS_ROWS`` values.
    """

    def __init__(self, reference: pd.Series, bins: int, low: float, high: float) -> None:
        values = reference.dropna().to_numpy(dtype=float)
        self.reference = np.sort(values)
        self.reference_missing = float(reference.isna().mean()) if len(reference) else 0.0
        self.edges = numeric_bins(reference, bins)
        self.support = np.unique(self.reference)
        self.reference_at_or_below = np.searchsorted(self.reference, self.support, side="right")
        self.low, self.high = low, high
        self.rows = self.missing = self.outside = 0
        self.minimum, self.maximum = math.inf, -math.inf
        self.bins = np.zeros(len(self.edges) + 1, dtype=np.int64)
        # Batch values <= and < each distinct reference value (the batch's ECDF there).
        self.at_or_below = np.zeros(len(self.support), dtype=np.int64)
        self.below = np.zeros(len(self.support), dtype=np.int64)
        self.kept: list[np.ndarray] | None = []

    @property
    def present(self) -> int:
        """Values seen that were not missing."""
        return self.rows - self.missing

    def add(self, values: np.ndarray) -> None:
        """Count a chunk of the batch's values (NaN is missing).

        The chunk is sorted once, and the reference's few points are looked up in it:
        faster than looking up each of the chunk's values among the reference's points.
        """
        values = np.asarray(values, dtype=float)
        ordered = np.sort(values[~np.isnan(values)])
        n = len(ordered)
        self.rows += len(values)
        self.missing += len(values) - n
        if not n:
            return
        cut = np.searchsorted(ordered, self.edges, side="left")  # values below each edge
        self.bins += np.diff(cut, prepend=0, append=n)
        self.at_or_below += np.searchsorted(ordered, self.support, side="right")
        self.below += np.searchsorted(ordered, self.support, side="left")
        low = np.searchsorted(ordered, self.low, side="left")
        self.outside += int(low + n - np.searchsorted(ordered, self.high, side="right"))
        self.minimum = min(self.minimum, float(ordered[0]))
        self.maximum = max(self.maximum, float(ordered[-1]))
        if self.kept is not None:
            self.kept.append(ordered)
            if self.present > EXACT_KS_ROWS:
                self.kept = None  # past scipy's exact range: the counts suffice

    def ks(self) -> tuple[float, float]:
        """KS distance and p-value, as ks_2samp gives them on the whole batch (none: 0, 1)."""
        if not self.present or not len(self.reference):
            return 0.0, 1.0
        if self.kept is not None:
            result = stats.ks_2samp(self.reference, np.concatenate(self.kept))
            return float(result.statistic), float(result.pvalue)
        distance = ks_distance(
            self.reference_at_or_below,
            len(self.reference),
            self.at_or_below,
            self.below,
            self.present,
        )
        return distance, ks_pvalue(distance, len(self.reference), self.present)

    def psi(self) -> float:
        """PSI over the reference's decile bins."""
        return psi(shares(self.reference, self.edges), self.bins / max(self.bins.sum(), 1))

    def missing_change(self) -> float:
        """The batch's missing rate minus the reference's."""
        return self.missing / self.rows - self.reference_missing if self.rows else 0.0

    def check(self, name: str) -> Check:
        """The feature's check: PSI, KS, missing rate and the share outside the range."""
        statistic, p_value = self.ks()
        return Check(
            name,
            "numeric",
            self.psi(),
            "ks",
            statistic,
            p_value,
            self.missing_change(),
            out_of_range_share=self.outside / self.present if self.present else 0.0,
        )


@dataclass
class CategoricalSummary:
    """A categorical column of the batch as counts per category (as text)."""

    rows: int = 0
    missing: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, values: pd.Series) -> None:
        """Count a chunk of the batch's values."""
        present = values.dropna()
        self.rows += len(values)
        self.missing += len(values) - len(present)
        for value, count in present.astype(str).value_counts(sort=False).items():
            self.counts[value] = self.counts.get(value, 0) + int(count)


def numeric_summary(
    reference: pd.Series, params: MonitorParams, column: Column | None = None
) -> NumericSummary:
    """Empty counts for a numeric feature, with the range that counts as outside."""
    present = reference.dropna().to_numpy(dtype=float)
    return NumericSummary(reference, params.bins, *observed_range(present, column))


def compare_numeric(
    name: str, ref: pd.Series, new: pd.Series, params: MonitorParams, column: Column | None = None
) -> Check:
    """PSI on reference deciles, the KS test, and the share outside the training range."""
    summary = numeric_summary(ref, params, column)
    summary.add(new.to_numpy(dtype=float))
    return summary.check(name)


def observed_range(reference: np.ndarray, column: Column | None) -> tuple[float, float]:
    """The contract's observed training range; a contract without one: the reference's."""
    if column is not None and column.observed_min is not None and column.observed_max is not None:
        return column.observed_min, column.observed_max
    if not len(reference):
        return -np.inf, np.inf
    return float(reference.min()), float(reference.max())


def categorical_check(
    name: str, ref: pd.Series, batch: CategoricalSummary, column: Column | None = None
) -> Check:
    """PSI over categories, chi-square, and the share outside the contract's categories.

    A contract without categories (or none given): outside the training data's.
    """
    r = ref.dropna().astype(str)
    known = set(column.categories) if column is not None and column.categories else set(r)
    categories = sorted(set(r) | set(batch.counts))
    ref_counts = r.value_counts().reindex(categories, fill_value=0).to_numpy()
    new_counts = np.array([batch.counts.get(c, 0) for c in categories], dtype=np.int64)
    table = np.vstack([ref_counts, new_counts])
    table = table[:, table.sum(axis=0) > 0]
    chi = stats.chi2_contingency(table) if table.shape[1] > 1 and new_counts.sum() else None
    present = batch.rows - batch.missing
    unseen = sum(n for value, n in batch.counts.items() if value not in known)
    return Check(
        name,
        "categorical",
        psi(ref_counts / max(ref_counts.sum(), 1), new_counts / max(new_counts.sum(), 1)),
        "chi-square",
        float(chi.statistic) if chi else 0.0,
        float(chi.pvalue) if chi else 1.0,
        batch.missing / batch.rows - float(ref.isna().mean()) if batch.rows else 0.0,
        unseen_share=unseen / present if present else 0.0,
    )


def compare_categorical(
    name: str, ref: pd.Series, new: pd.Series, column: Column | None = None
) -> Check:
    """:func:`categorical_check` of a whole batch column."""
    summary = CategoricalSummary()
    summary.add(new)
    return categorical_check(name, ref, summary, column)


def judge(check: Check, params: MonitorParams) -> Check:
    """Flag drift by the thresholds in params, saying which rule fired."""
    if check.psi >= params.psi:
        check.reasons.append(f"PSI {check.psi:.3f} >= {params.psi}")
    if (
        check.test == "ks"
        and check.statistic >= params.ks_statistic
        and check.p_value < params.alpha
    ):
        check.reasons.append(
            f"KS {check.statistic:.3f} >= {params.ks_statistic} "
            f"(p {check.p_value:.2g} < {params.alpha})"
        )
    if check.unseen_share >= params.unseen_share:
        check.reasons.append(
            f"unseen categories {check.unseen_share:.1%} >= {params.unseen_share:.1%}"
        )
    if check.out_of_range_share >= params.out_of_range_share:
        check.reasons.append(
            f"outside the training range {check.out_of_range_share:.1%} "
            f">= {params.out_of_range_share:.1%}"
        )
    if abs(check.missing_change) >= params.missing_change:
        check.reasons.append(
            f"missing rate {check.missing_change:+.1%} (limit ±{params.missing_change:.1%})"
        )
    check.drifted = bool(check.reasons)
    return check


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
            else CategoricalSummary()
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

    def checks(self) -> list[Check]:
        """One judged check per feature, in contract order."""
        out = []
        for name, summary in self.features.items():
            if isinstance(summary, NumericSummary):
                check = summary.check(name)
            else:
                column = self.contract.columns[name]
                check = categorical_check(name, self.reference[name], summary, column)
            out.append(judge(check, self.params))
        return out

    def prediction(self) -> Check:
        """The scores' judged check."""
        return score_check(self.scores, self.params)


def compare(
    reference: pd.DataFrame, batch: pd.DataFrame, contract: Contract, params: MonitorParams
) -> list[Check]:
    """One judged check per feature of a whole batch, in contract order."""
    summaries = Batch(reference, np.empty(0), contract, params)
    summaries.add(batch)
    return summaries.checks()


def score_check(summary: NumericSummary, params: MonitorParams) -> Check:
    """The scores' PSI and KS (no scores: no test)."""
    statistic, p_value = summary.ks()
    check = Check(
        "prediction",
        "score",
        summary.psi() if summary.present else 0.0,
        "ks",
        statistic,
        p_value,
        0.0,
    )
    return judge(check, params)


def compare_scores(reference: np.ndarray, batch: np.ndarray, params: MonitorParams) -> Check:
    """The model's score distribution on the batch against the test split's (none: no test)."""
    summary = NumericSummary(pd.Series(reference, dtype=float), params.bins, -np.inf, np.inf)
    summary.add(batch)
    return score_check(summary, params)


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
    with io.require_file(path).open("rb") as fh:
        first = fh.readline()
    try:
        header = json.loads(first) if first.strip() else None
    except ValueError as err:
        raise ChurnError(f"{path}: not JSON lines (line 1: {clip(err, 200)})") from None
    if not isinstance(header, dict):
        raise ChurnError(f"{path}: not JSON lines (line 1 is not an object)")
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
            read_options=pajson.ReadOptions(block_size=JSON_BLOCK_BYTES),
            parse_options=pajson.ParseOptions(
                explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore"
            ),
        )
        yield from scoring.rebatch(reader, chunk_rows)
    except pa.ArrowException as err:
        raise ChurnError(f"{batch.path}: not JSON lines ({clip(err, 200)})") from None


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


def _as_numbers(values: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        return values
    for kind in (pa.int64(), pa.float64()):
        try:
            return pc.cast(values, kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return values


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
        frame = typed(table, contract)
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yield frame, scores


# --------------------------------------------------------------------------- output


def summary_markdown(checks: list[Check], prediction: Check, rows: int, warning: str) -> str:
    """Drifted features first, each with its statistic and the threshold it crossed."""
    drifted = [c for c in checks if c.drifted]
    lines = ["# Drift report", ""]
    if warning:
        lines += [f"> {warning}", ""]
    verdict = (
        f"{len(drifted)} of {len(checks)} features drifted" if drifted else "No feature drifted"
    )
    lines += [
        f"{verdict} ({rows:,} rows). Predictions: {'drifted' if prediction.drifted else 'stable'}.",
        "",
    ]
    lines.append(
        "| feature | kind | PSI | test | statistic | p | missing Δ | unseen | out of range "
        "| because |"
    )
    lines += ["|---|---|---:|---|---:|---:|---:|---:|---:|---|"]
    ordered = [*sorted(checks, key=lambda c: (not c.drifted, -c.psi)), prediction]
    for c in ordered:
        lines.append(
            f"| {c.name} | {c.kind} | {c.psi:.3f} | {c.test} | {c.statistic:.3f} | {c.p_value:.2g} "
            f"| {c.missing_change:+.1%} | {c.unseen_share:.1%} | {c.out_of_range_share:.1%} "
            f"| {'; '.join(c.reasons) or '—'} |"
        )
    return "\n".join(lines) + "\n"


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
    name: str, ref: pd.Series, edges: np.ndarray, counts: np.ndarray, out: Path
) -> Path:
    """Training vs batch densities of a numeric feature; the batch given as counts per bin."""
    fig, ax = _figure()
    ax.hist(ref.dropna(), bins=edges, density=True, alpha=0.5, label="training")
    ax.hist(edges[:-1], bins=edges, weights=counts, density=True, alpha=0.5, label="batch")
    ax.set_ylabel("density")
    ax.legend()
    return _save(fig, ax, name, out)


def plot_categorical(name: str, ref: pd.Series, batch: CategoricalSummary, out: Path) -> Path:
    """Training vs batch shares per category."""
    fig, ax = _figure()
    present = max(batch.rows - batch.missing, 1)
    both = pd.DataFrame(
        {
            "training": ref.dropna().astype(str).value_counts(normalize=True),
            "batch": pd.Series(batch.counts, dtype=float) / present,
        }
    ).fillna(0.0)
    both.plot.bar(ax=ax)
    ax.set_ylabel("share")
    return _save(fig, ax, name, out)


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 3.5), dpi=100)


def _save(fig: Any, ax: Any, name: str, out: Path) -> Path:
    """The figure as PNG (no version stamp), written atomically."""
    import matplotlib.pyplot as plt

    ax.set_title(name)
    fig.tight_layout()
    path = out / f"{name}.png"
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    return path


def write_plots(
    drifted: list[Check], batch: Batch, source: BatchFile, chunk_rows: int, out: Path
) -> None:
    """A PNG per drifted feature; numeric ones need a second pass over the batch for bins."""
    edges = {}
    for c in drifted:
        summary = batch.features[c.name]
        if isinstance(summary, NumericSummary):
            edges[c.name] = plot_edges(batch.reference[c.name], summary)
        else:
            plot_categorical(c.name, batch.reference[c.name], summary, out)
    if edges:
        counts = histograms(source, batch.contract, chunk_rows, edges)
        for name, bins in edges.items():
            plot_numeric(name, batch.reference[name], bins, counts[name], out)


def refused_rows(batch: pd.DataFrame, contract: Contract) -> np.ndarray:
    """Rows the service would answer 422 for: a category outside the contract's."""
    refused = np.zeros(len(batch), dtype=bool)
    for name in contract.categorical:
        allowed = contract.columns[name].categories
        if allowed:
            values = batch[name]
            refused |= (values.notna() & ~values.astype(str).isin(allowed)).to_numpy()
    return refused


def read(batch: Batch, source: BatchFile, model: Any, chunk_rows: int) -> None:
    """One pass over the batch: each chunk validated, counted and (unless logged) scored."""
    contract = batch.contract
    for frame, logged in chunks(source, contract, chunk_rows):
        validate_features(frame, contract, str(source.path))
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


def run(input_path: Path, out: Path, chunk_rows: int = CHUNK_ROWS) -> int:
    """Validate, compare, write the outputs; return the exit status (0 or 1)."""
    if chunk_rows < 1:
        raise ChurnError(f"--chunk-rows {chunk_rows}: must be at least 1")
    params = load_params()
    contract = read_contract(params.paths.contract)
    source = open_batch(input_path, contract)
    # md5-checked against dvc.lock before unpickling; a log carries its own scores.
    model = None if source.logged_scores else load_model(params.paths.model)[0]
    reference = io.read_parquet(params.paths.train)
    test_scores = pd.read_csv(params.paths.predictions)["probability"].to_numpy()
    batch = Batch(reference, test_scores, contract, params.monitor)
    read(batch, source, model, chunk_rows)
    checks, prediction = batch.checks(), batch.prediction()
    warning = ""
    if batch.rows < params.monitor.min_rows:
        warning = (
            f"Only {batch.rows} rows (fewer than {params.monitor.min_rows}): the tests have "
            "little power; a real shift may go unflagged."
        )
        log.warning("%s", warning)
    out.mkdir(parents=True, exist_ok=True)
    drifted = [c for c in checks if c.drifted]
    write_plots(drifted, batch, source, chunk_rows, out)
    result = {
        "input": str(input_path),
        "rows": batch.rows,
        "scored_rows": batch.scores.rows,  # the rows the service would accept
        "warning": warning,
        "drifted": [c.name for c in drifted],
        "prediction": asdict(prediction),
        "features": [asdict(c) for c in checks],
    }
    io.write_json(out / "drift.json", result)
    io.write_text(out / "summary.md", summary_markdown(checks, prediction, batch.rows, warning))
    log.info("%d of %d features drifted; report in %s", len(drifted), len(checks), out)
    return 1 if drifted or prediction.drifted else 0
