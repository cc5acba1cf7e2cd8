"""Drift statistics of a batch against a reference, from counts that chunks add to.

A batch is summarized column by column as it is read (:class:`NumericSummary`,
:class:`CategoricalSummary`); the summaries' size depends on the reference alone. Every
statistic is the one computed on the whole batch at once:

- PSI needs counts per bin (numeric: the reference's deciles; categorical: categories);
- the two-sample Kolmogorov-Smirnov distance needs the batch's counts at and below each
  distinct reference value (:func:`ks_distance`), and is then ks_2samp's exactly;
- its p-value: up to ``EXACT_KS_ROWS`` values, where scipy computes it exactly, the
  values are kept and handed to ks_2samp; beyond, scipy's asymptotic formula, which
  ks_2samp uses there too (:func:`ks_pvalue`);
- the chi-square test, the missing, unseen and out-of-range shares need counts.

The rules are judged together (:func:`judge_all`): every p-value that gates a rule, of
every feature and of the predictions, is adjusted for the number of them
(Benjamini-Hochberg), so a batch drawn as the reference was is flagged with a chance of
about ``alpha`` (at most, for independent tests), not about ``alpha`` per feature.
"""

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from churn.core.contract import Column
from churn.core.markdown import percent, shown
from churn.core.params import MonitorParams

EPS = 1e-6  # keeps PSI finite when a bin is empty on one side
RARE_SHARE = 0.01  # a category under this share of both sides' rows: pooled for PSI
# scipy's ks_2samp computes an exact p-value while both samples have at most this many
# values, and Smirnov's asymptotic one beyond. Up to it the batch's values are kept (a
# bounded buffer) and handed to ks_2samp itself; past it, ks_pvalue is that formula.
EXACT_KS_ROWS = 10_000
# Distinct values outside a categorical feature's known categories counted one by one;
# past it their rows are one pooled category, so memory does not grow with the batch.
MAX_UNSEEN = 10_000


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
    unseen_pooled: int = 0  # rows of unseen values past MAX_UNSEEN distinct ones, as one
    # How likely each rule's reading is by chance alone, the batch drawn as the reference
    # was (None when not tested: the rule goes by its threshold alone).
    psi_p_value: float | None = None  # chi-square on PSI's own bins
    out_of_range_p_value: float | None = None  # binomial, at 2/(m+1), a new extreme's chance
    missing_p_value: float | None = None  # binomial, at the reference's missing rate
    # The gating p-values above after the family's correction (:func:`adjust`), keyed
    # by their field; a rule reads its adjusted value, or its own while none is set.
    adjusted_p_values: dict[str, float] = field(default_factory=dict)
    drifted: bool = False
    reasons: list[str] = field(default_factory=list)


def psi(reference: np.ndarray, batch: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins.

    A side with no values at all (a column missing in every row of the batch) has no
    distribution to compare: 0, where clipping its zero shares gave ~13 and "drift";
    the missing-rate check reports that change.
    """
    if not np.sum(reference) or not np.sum(batch):
        return 0.0
    ref = np.clip(reference, EPS, None)
    new = np.clip(batch, EPS, None)
    return float(np.sum((new - ref) * np.log(new / ref)))


def chi_square_p(reference_counts: np.ndarray, batch_counts: np.ndarray) -> float:
    """The p-value of the chi-square test that both count vectors share one distribution.

    PSI alone is no test: over 50 rows an empty decile (5 expected) clipped its log to
    PSI 1.2, and 80 % of samples of the test split itself "drifted".
    """
    table = np.vstack([reference_counts, batch_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or not table[0].sum() or not table[1].sum():
        return 1.0
    return float(stats.chi2_contingency(table).pvalue)


def binomial_p(count: int, n: int, rate: float, two_sided: bool = False) -> float:
    """The p-value of ``count`` or more of ``n`` at ``rate`` (two-sided: any as unlikely)."""
    if not n:
        return 1.0
    if two_sided:
        return float(stats.binomtest(count, n, rate).pvalue)
    return float(stats.binom.sf(count - 1, n, rate)) if count else 1.0


def outside_chance(reference_n: int) -> float:
    """The chance that one more draw of the reference's distribution falls outside its range.

    Of ``m`` values and one more, exchangeable, each is the smallest or the largest with
    chance 2/(m+1): at 100 rows one value past the training range (1 %) was "drift".
    """
    return min(1.0, 2 / (reference_n + 1))


def numeric_bins(reference: pd.Series, bins: int) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (duplicates dropped; none if it is empty).

    A value several quantiles fall on holds a share of its own (the 0 of a zero-inflated
    column, either value of a 0/1 one): an edge just above it gives it a bin alone. Else
    every value from it up shared one bin, and a 0/1 column going from 5 % to 19 % ones
    had a PSI of 0.
    """
    values = reference.dropna().to_numpy(dtype=float)
    if not len(values):
        return np.empty(0)
    cuts = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    edges, repeats = np.unique(cuts, return_counts=True)
    return np.unique(np.r_[edges, np.nextafter(edges[repeats > 1], np.inf)])


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
            with warnings.catch_warnings():
                # With ties scipy's exact method may give up for the asymptotic one, and
                # says so on stderr with its own file path: the p-value is still its.
                warnings.filterwarnings("ignore", "ks_2samp: Exact", RuntimeWarning)
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

    def psi_p_value(self) -> float:
        """The chi-square test on PSI's bins."""
        return chi_square_p(bin_counts(self.reference, self.edges), self.bins)

    def missing_p_value(self) -> float:
        """The binomial test of the batch's missing values at the reference's rate."""
        return binomial_p(self.missing, self.rows, self.reference_missing, two_sided=True)

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
            psi_p_value=self.psi_p_value(),
            out_of_range_p_value=binomial_p(
                self.outside, self.present, outside_chance(len(self.reference))
            ),
            missing_p_value=self.missing_p_value(),
        )


@dataclass
class CategoricalSummary:
    """A categorical column of the batch as counts per category (as text).

    ``known``: the categories the reference or the contract has, each counted. Values
    outside them are counted one by one up to ``MAX_UNSEEN`` distinct ones, the first the
    file holds; rows of any later one are ``pooled``. A batch of unique values (an id
    in a categorical column) grew the counts with the batch: 2.5 GB for a 330 MB file.
    """

    rows: int = 0
    missing: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    known: frozenset[str] = frozenset()
    unseen_kinds: int = 0
    pooled: int = 0

    def add(self, values: pd.Series) -> None:
        """Count a chunk of the batch's values."""
        present = values.dropna()
        self.rows += len(values)
        self.missing += len(values) - len(present)
        codes, uniques = pd.factorize(present.astype(str))  # in order of first appearance
        for value, count in zip(uniques, np.bincount(codes, minlength=len(uniques)), strict=True):
            if value not in self.counts and value not in self.known:
                if self.unseen_kinds >= MAX_UNSEEN:
                    self.pooled += int(count)
                    continue
                self.unseen_kinds += 1
            self.counts[value] = self.counts.get(value, 0) + int(count)


def categorical_summary(reference: pd.Series, column: Column | None = None) -> CategoricalSummary:
    """Empty counts for a categorical feature, knowing its contract's and reference's values."""
    known = set(reference.dropna().astype(str).unique())
    return CategoricalSummary(
        known=frozenset(known | set(column.categories or []) if column else known)
    )


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
    if batch.pooled:  # the unseen values past MAX_UNSEEN: one category
        ref_counts, new_counts = np.append(ref_counts, 0), np.append(new_counts, batch.pooled)
    table = np.vstack([ref_counts, new_counts])
    table = table[:, table.sum(axis=0) > 0]
    chi = stats.chi2_contingency(table) if table.shape[1] > 1 and new_counts.sum() else None
    present = batch.rows - batch.missing
    unseen = sum(n for value, n in batch.counts.items() if value not in known) + batch.pooled
    ref_missing = float(ref.isna().mean()) if len(ref) else 0.0
    return Check(
        name,
        "categorical",
        psi(*pooled_shares(ref_counts, new_counts)),
        "chi-square",
        float(chi.statistic) if chi else 0.0,
        float(chi.pvalue) if chi else 1.0,
        batch.missing / batch.rows - ref_missing if batch.rows else 0.0,
        unseen_share=unseen / present if present else 0.0,
        unseen_pooled=batch.pooled,
        psi_p_value=chi_square_p(*pooled_counts(ref_counts, new_counts)),
        missing_p_value=binomial_p(batch.missing, batch.rows, ref_missing, two_sided=True),
    )


def pooled_shares(ref_counts: np.ndarray, new_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each side's share per category; the categories rare on both sides share one bin.

    PSI sums a term per bin, and a bin that holds a row or two on either side adds noise
    (or, empty on one side, a clipped log): over 2,000 categories of a few rows each,
    the training file's own rows scored PSI 0.41, "drift". Pooled, the mass that moves
    into or out of rare categories still counts, and a category common on either side
    (a new one that takes half the batch) keeps its own bin.
    """
    ref, new = pooled_counts(ref_counts, new_counts)
    return ref / max(ref.sum(), 1), new / max(new.sum(), 1)


def pooled_counts(ref_counts: np.ndarray, new_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each side's count per category, the categories rare on both sides in one last bin."""
    ref = ref_counts / max(ref_counts.sum(), 1)
    new = new_counts / max(new_counts.sum(), 1)
    common = (ref >= RARE_SHARE) | (new >= RARE_SHARE)
    if common.all():
        return ref_counts, new_counts
    return (
        np.append(ref_counts[common], ref_counts[~common].sum()),
        np.append(new_counts[common], new_counts[~common].sum()),
    )


def compare_categorical(
    name: str, ref: pd.Series, new: pd.Series, column: Column | None = None
) -> Check:
    """:func:`categorical_check` of a whole batch column."""
    summary = categorical_summary(ref, column)
    summary.add(new)
    return categorical_check(name, ref, summary, column)


GATES = ("psi_p_value", "p_value", "out_of_range_p_value", "missing_p_value")


def gating(check: Check) -> dict[str, float]:
    """The p-values that gate a rule of ``check``, by field (``p_value``: a KS test's only).

    A categorical feature's chi-square over its raw categories is reported, not a rule:
    its PSI's own chi-square (``psi_p_value``) gates the PSI rule.
    """
    found = {name: getattr(check, name) for name in GATES}
    if check.test != "ks":
        del found["p_value"]
    return {name: float(value) for name, value in found.items() if value is not None}


def adjust(checks: list[Check]) -> list[Check]:
    """Set every check's ``adjusted_p_values``: Benjamini-Hochberg over all their gates.

    19 features each tested at ``alpha`` flagged 10 of 100 samples of 50 test-split rows;
    adjusted together, none. A batch with no drift is flagged with a chance of about
    ``alpha``, and of the rules that fire, the share firing by chance is at most ``alpha``
    on average. A NaN p-value counts as 1: it never fired before either.
    """
    gates = [(check, name, value) for check in checks for name, value in gating(check).items()]
    if not gates:
        return checks
    raw = np.array([value for _, _, value in gates])
    adjusted = stats.false_discovery_control(np.where(np.isnan(raw), 1.0, raw), method="bh")
    for (check, name, _), value in zip(gates, adjusted, strict=True):
        check.adjusted_p_values[name] = float(value)
    return checks


def judge_all(checks: list[Check], params: MonitorParams) -> list[Check]:
    """:func:`judge` each check after adjusting all their p-values together (:func:`adjust`)."""
    return [judge(check, params) for check in adjust(checks)]


def judge(check: Check, params: MonitorParams) -> Check:
    """Flag drift by the thresholds in params, saying which rule fired.

    A rule fires when its reading passes its threshold and, for PSI, KS, the range and
    the missing rate, is unlikely by chance (p < alpha): with thousands of rows a p-value
    alone flags trivial shifts, and with a few dozen a threshold alone flags noise. The
    p-values read are the adjusted ones where :func:`adjust` set them.
    """
    if check.psi >= params.psi and _unlikely(check, "psi_p_value", params):
        check.reasons.append(
            f"PSI {shown(check.psi, params.psi, '.3f')} >= {params.psi}"
            f"{_chance(check, 'psi_p_value', params)}"
        )
    if (
        check.test == "ks"
        and check.statistic >= params.ks_statistic
        and _unlikely(check, "p_value", params)
    ):
        check.reasons.append(
            f"KS {shown(check.statistic, params.ks_statistic, '.3f')} >= {params.ks_statistic}"
            f"{_chance(check, 'p_value', params)}"
        )
    if check.unseen_share >= params.unseen_share:  # no row of the reference is unseen
        check.reasons.append(
            f"unseen categories {shown(check.unseen_share, params.unseen_share, '.1%')} "
            f">= {percent(params.unseen_share)}"
        )
    check.reasons += _share_reasons(check, params)
    check.drifted = bool(check.reasons)
    return check


def _share_reasons(check: Check, params: MonitorParams) -> list[str]:
    """:func:`judge`'s range and missing-rate rules."""
    reasons = []
    limit = params.out_of_range_share
    if check.out_of_range_share >= limit and _unlikely(check, "out_of_range_p_value", params):
        reasons.append(
            f"outside the training range {shown(check.out_of_range_share, limit, '.1%')} "
            f">= {percent(limit)}{_chance(check, 'out_of_range_p_value', params)}"
        )
    change = check.missing_change
    if abs(change) >= params.missing_change and _unlikely(check, "missing_p_value", params):
        reasons.append(
            f"missing rate {shown(change, params.missing_change, '+.1%')} "
            f"(limit ±{percent(params.missing_change)}"
            f"{_chance(check, 'missing_p_value', params, ', ')})"
        )
    return reasons


def _gate(check: Check, name: str) -> float | None:
    """The p-value rule ``name`` reads: adjusted where :func:`adjust` set it (None: untested)."""
    return check.adjusted_p_values.get(name, getattr(check, name))


def _unlikely(check: Check, name: str, params: MonitorParams) -> bool:
    """Whether a rule's reading is unlikely by chance; an untested one (None) counts so."""
    p_value = _gate(check, name)
    return p_value is None or p_value < params.alpha


def _chance(check: Check, name: str, params: MonitorParams, lead: str = " (") -> str:
    """`` (p 0.003 < 0.01)`` for a tested rule (``adjusted p`` once adjusted); else nothing."""
    p_value = _gate(check, name)
    if p_value is None:
        return ""
    said = "adjusted p" if name in check.adjusted_p_values else "p"
    text = f"{said} {shown(p_value, params.alpha, '.2g')} < {params.alpha}"
    return f", {text}" if lead == ", " else f" ({text})"


def score_check(summary: NumericSummary) -> Check | None:
    """The scores' PSI and KS, to be judged with the features'; None without a score.

    Without scores there is nothing to compare: PSI 0 and p 1 read as "stable".
    """
    if not summary.present:
        return None
    statistic, p_value = summary.ks()
    return Check(
        "prediction",
        "score",
        summary.psi(),
        "ks",
        statistic,
        p_value,
        0.0,
        psi_p_value=summary.psi_p_value(),
    )


def compare_scores(reference: np.ndarray, batch: np.ndarray, params: MonitorParams) -> Check | None:
    """The model's score distribution on the batch against the test split's (none: None)."""
    summary = NumericSummary(pd.Series(reference, dtype=float), params.bins, -np.inf, np.inf)
    summary.add(batch)
    check = score_check(summary)
    return None if check is None else judge_all([check], params)[0]
