"""Metrics and the bootstrap, defined once for evaluate, the PR report and releases."""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from churn.core.errors import ChurnError, clip


@dataclass(frozen=True)
class Metric:
    """A test-set metric: how to compute it and which direction is better."""

    compute: Callable[[np.ndarray, np.ndarray, float], float]
    higher_is_better: bool
    threshold_free: bool  # depends only on the probabilities, not the decision threshold


def _flag(proba: np.ndarray, threshold: float) -> np.ndarray:
    return (proba >= threshold).astype(int)


METRICS: dict[str, Metric] = {
    "roc_auc": Metric(lambda y, p, t: skm.roc_auc_score(y, p), True, True),
    "average_precision": Metric(lambda y, p, t: skm.average_precision_score(y, p), True, True),
    "log_loss": Metric(lambda y, p, t: skm.log_loss(y, p, labels=[0, 1]), False, True),
    "brier": Metric(lambda y, p, t: skm.brier_score_loss(y, p), False, True),
    "precision": Metric(
        lambda y, p, t: skm.precision_score(y, _flag(p, t), zero_division=0), True, False
    ),
    "recall": Metric(
        lambda y, p, t: skm.recall_score(y, _flag(p, t), zero_division=0), True, False
    ),
    "f1": Metric(lambda y, p, t: skm.f1_score(y, _flag(p, t), zero_division=0), True, False),
    "accuracy": Metric(lambda y, p, t: skm.accuracy_score(y, _flag(p, t)), True, False),
}
HIGHER_IS_BETTER = {name: metric.higher_is_better for name, metric in METRICS.items()}
HEADLINE = ("roc_auc", "average_precision", "log_loss", "brier")  # judged by the bootstrap
# Decision metrics (churn.core.decision): higher is better for each; the report judges them too.
DECISION = ("profit", "lift_at_k", "capture_at_k")
DIRECTIONS = {**HIGHER_IS_BETTER, **dict.fromkeys(DECISION, True)}
# Below this many test rows of either class on a side, a bootstrap interval says nothing:
# no verdict is given (README, "Reviewing a pull request").
MIN_CLASS_ROWS = 10
TOO_FEW = f"too few test rows to judge (under {MIN_CLASS_ROWS} of a class)"


def score(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Every metric in :data:`METRICS` for one set of probabilities."""
    return {name: float(m.compute(y_true, proba, threshold)) for name, m in METRICS.items()}


def sample_rows(n_rows: int, cap: int, seed: int) -> np.ndarray:
    """All row positions, or a seeded sample of ``cap`` of them in ascending order.

    The one subsample rule for work that a bounded number of rows pins down (plots,
    intervals, the out-of-fold threshold): the same ``seed`` and size give the same rows.
    """
    if n_rows <= cap:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, cap, replace=False))


def sample_labelled(y: np.ndarray, cap: int, seed: int, key: str, least: int = 1) -> np.ndarray:
    """:func:`sample_rows` of labels ``y``, holding ``least`` rows of each class ``y`` has.

    Not stratified: a rare class can be drawn out of a sample by chance, and then the
    bootstrap said the test labels held one class, the out-of-fold threshold blamed the
    training split, and the ROC plot's rates were NaN with exit 0. Such a draw is refused,
    naming ``key``, the cap to raise.
    """
    rows = sample_rows(len(y), cap, seed)
    if len(rows) == len(y):
        return rows
    drawn, held = np.unique(y[rows], return_counts=True)
    have = dict(zip(drawn.tolist(), held.tolist(), strict=True))
    # Only a class the sample is short of is counted in all, after one hash pass over
    # the labels: counting every class sorted ten million of them (np.unique) to check
    # a sample that, but for a rare draw, holds them all.
    for kind in sorted(k for k in pd.unique(y).tolist() if have.get(k, 0) < least):
        total = int(np.count_nonzero(y == kind))
        if least <= total:  # fewer than ``least`` in all: the caller's own check
            raise ChurnError(
                f"params.yaml: {key}: the seeded sample of {cap:,} of {len(y):,} rows holds "
                f"{have.get(kind, 0)} of the {total:,} rows of class {clip(repr(kind))}, fewer "
                f"than {least}: raise {key}"
            )
    return rows


@dataclass(frozen=True)
class Scores:
    """The model's and the prior baseline's test metrics: computed once, logged and carded."""

    model: dict[str, float]
    baseline: dict[str, float]


@dataclass(frozen=True)
class Comparison:
    """Head minus base for one metric, with its bootstrap confidence interval."""

    metric: str
    base: float
    head: float
    low: float
    high: float
    paired: bool
    judged: bool = True  # False: a side has too few rows of a class for an interval to mean much

    @property
    def diff(self) -> float:
        """Head minus base."""
        return self.head - self.base

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` or ``no significant change``, direction-aware; or too few rows."""
        if not self.judged:
            return TOO_FEW
        higher = DIRECTIONS[self.metric]
        if self.low > 0:
            return "better" if higher else "worse"
        if self.high < 0:
            return "worse" if higher else "better"
        return "no significant change"


def _redraws(
    rng: np.random.Generator, n_rows: int, y: np.ndarray, resamples: int, block: int
) -> dict[int, np.ndarray]:
    """The resamples redrawn because they held one class, by number, and their new rows.

    Every resample is drawn in turn, ``block`` at a time, then each that holds one
    class is redrawn, in order, until it holds both (AUC needs them): the draws a
    whole (resamples, rows) matrix of picks made, which at 100,000 resamples of 20,000
    rows was 16 GB. numpy's generator gives the same numbers however a draw is split.
    """
    classes = np.unique(y)
    if len(classes) < 2:
        # No redraw could ever hold both: without this the loop below never ends.
        raise ChurnError(f"bootstrap: the test labels hold one class only ({classes.tolist()})")
    one_class = []
    for start in range(0, resamples, block):
        drawn = y[rng.integers(0, n_rows, size=(min(block, resamples - start), n_rows))]
        one_class += (start + np.flatnonzero(drawn.min(axis=1) == drawn.max(axis=1))).tolist()
    redrawn = {}
    for i in one_class:  # only plausible for tiny test sets
        picks = rng.integers(0, n_rows, size=n_rows)
        while len(np.unique(y[picks])) < 2:
            picks = rng.integers(0, n_rows, size=n_rows)
        redrawn[i] = picks
    return redrawn


def _block(n_rows: int) -> int:
    """Resamples per count matrix, so one block stays near 20 MB whatever the test size.

    The metrics make about eight temporaries of a block's size: at 160 MB a block (the
    old size) the card's bootstrap of 20,000 rows peaked near 2 GB, and took twice the
    CPU time of 20 MB blocks, whose temporaries stay in cache (measured: 7.5 s / 2.0 GB
    against 3.8 s / 0.57 GB). The draws do not depend on the block size.
    """
    return max(1, 2_500_000 // max(n_rows, 1))


def _weights(y: np.ndarray, resamples: int, seed: int, block: int) -> Iterator[np.ndarray]:
    """Bootstrap draws as row-count matrices, ``block`` resamples at a time.

    Row ``b`` of a block says how often each test row was drawn in resample
    ``b``; every resample holds both classes (AUC needs them). Seeded, and the
    same draws whatever the block size; memory is a block's, never all the picks.
    """
    n = len(y)
    redrawn = _redraws(np.random.default_rng(seed), n, y, resamples, block)
    rng = np.random.default_rng(seed)  # the same draws again, a block at a time
    for start in range(0, resamples, block):
        chunk = rng.integers(0, n, size=(min(block, resamples - start), n))
        for i in range(start, start + len(chunk)):
            if i in redrawn:
                chunk[i - start] = redrawn[i]
        counts = np.zeros((len(chunk), n))
        np.add.at(counts, (np.arange(len(chunk))[:, None], chunk), 1.0)
        yield counts


def weighted_scores(
    counts: np.ndarray, y: np.ndarray, proba: np.ndarray, threshold: float, names: Sequence[str]
) -> dict[str, np.ndarray]:
    """Every named metric for each row of ``counts`` (row weights), vectorized.

    The same definitions as :data:`METRICS` (sklearn's, with ``sample_weight``);
    a test checks them against sklearn. One matrix product per metric instead of
    one sklearn call per resample makes 1,000 resamples take a fraction of a second.
    """
    total = counts.sum(axis=1)
    out: dict[str, np.ndarray] = {}
    ranked = {"roc_auc", "average_precision"} & set(names)
    if ranked:
        out.update(_ranked_scores(counts, y, proba, ranked))
    clipped = np.clip(proba, np.finfo(float).eps, 1 - np.finfo(float).eps)
    if "log_loss" in names:
        loss = -(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))
        out["log_loss"] = counts @ loss / total
    if "brier" in names:
        out["brier"] = counts @ (proba - y) ** 2 / total
    flagged = (proba >= threshold).astype(float)
    tp, fp = counts @ (y * flagged), counts @ ((1 - y) * flagged)
    fn, tn = counts @ (y * (1 - flagged)), counts @ ((1 - y) * (1 - flagged))
    with np.errstate(divide="ignore", invalid="ignore"):
        thresholded = {
            "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0),
            "recall": np.where(tp + fn > 0, tp / (tp + fn), 0.0),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
            "accuracy": (tp + tn) / total,
        }
    out.update({k: v for k, v in thresholded.items() if k in names})
    return {name: out[name] for name in names}


def _ranked_scores(
    counts: np.ndarray, y: np.ndarray, proba: np.ndarray, names: set[str]
) -> dict[str, np.ndarray]:
    order = np.argsort(-proba, kind="stable")  # descending score, as sklearn's curves
    ys, ps = y[order], proba[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])  # one group per distinct score
    weights = counts[:, order]
    pos = np.add.reduceat(weights * ys, starts, axis=1)
    neg = np.add.reduceat(weights * (1 - ys), starts, axis=1)
    tps, fps = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    out = {}
    if "roc_auc" in names:
        # Each positive beats the negatives scored below it and ties half of its own group.
        below = fps[:, -1:] - fps
        out["roc_auc"] = (pos * (below + 0.5 * neg)).sum(axis=1) / (tps[:, -1] * fps[:, -1])
    if "average_precision" in names:
        seen = tps + fps
        precision = np.divide(tps, seen, out=np.zeros_like(tps), where=seen > 0)
        recall_step = pos / tps[:, -1:]
        out["average_precision"] = (recall_step * precision).sum(axis=1)
    return out


def _resampled(
    y: np.ndarray,
    proba: np.ndarray,
    names: Sequence[str],
    threshold: float,
    resamples: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Each metric over ``resamples`` seeded bootstrap draws of the rows."""
    return _over_draws(
        y,
        resamples,
        seed,
        names,
        lambda counts: weighted_scores(counts, y, proba, threshold, names),
    )


def _over_draws(
    y: np.ndarray,
    resamples: int,
    seed: int,
    names: Sequence[str],
    scorer: Callable[[np.ndarray], dict[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """``scorer`` over the seeded bootstrap draws of the rows, a block of count rows at a time."""
    blocks = [scorer(counts) for counts in _weights(y, resamples, seed, _block(len(y)))]
    return {name: np.concatenate([b[name] for b in blocks]) for name in names}


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def paired_bootstrap(
    y: np.ndarray,
    base: np.ndarray,
    head: np.ndarray,
    names: tuple[str, ...] = HEADLINE,
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    threshold: float = 0.5,
) -> list[Comparison]:
    """Compare two models on the SAME test rows: resample rows, score both on each draw.

    Pairing removes the row-to-row noise both models share, so small real
    differences show up. Returns one :class:`Comparison` per metric name.
    """
    # The same seed gives both models the same draws.
    old = _resampled(y, base, names, threshold, resamples, seed)
    new = _resampled(y, head, names, threshold, resamples, seed)
    points = (score(y, base, threshold), score(y, head, threshold))
    return _comparisons(names, points, old, new, confidence, True, enough_rows(y))


def unpaired_bootstrap(
    base: tuple[np.ndarray, np.ndarray],
    head: tuple[np.ndarray, np.ndarray],
    names: tuple[str, ...] = HEADLINE,
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    threshold: float = 0.5,
) -> list[Comparison]:
    """Compare two models scored on DIFFERENT test rows: resample each side on its own.

    ``base`` and ``head`` are ``(labels, probabilities)``. Wider intervals than
    the paired case, as they must be.
    """
    (yb, pb), (yh, ph) = base, head
    old = _resampled(yb, pb, names, threshold, resamples, seed)
    new = _resampled(yh, ph, names, threshold, resamples, seed + 1)
    points = (score(yb, pb, threshold), score(yh, ph, threshold))
    return _comparisons(names, points, old, new, confidence, False, enough_rows(yb, yh))


def enough_rows(*labels: np.ndarray) -> bool:
    """Whether every label array holds at least :data:`MIN_CLASS_ROWS` rows of each class.

    With fewer, the bootstrap redraws the same handful of rows of the rare class (a
    resample must hold both): the interval is narrow because it cannot vary, not
    because the difference is sure, and 2 test rows read as "significantly better".
    """
    return all(
        np.bincount(np.asarray(y, dtype=int), minlength=2).min() >= MIN_CLASS_ROWS for y in labels
    )


def _comparisons(
    names: Sequence[str],
    points: tuple[dict[str, float], dict[str, float]],
    old: dict[str, np.ndarray],
    new: dict[str, np.ndarray],
    confidence: float,
    paired: bool,
    judged: bool,
) -> list[Comparison]:
    """Head minus base per metric: point estimates and the interval of resampled differences."""
    base, head = points
    return [
        Comparison(
            name,
            base[name],
            head[name],
            *_interval(new[name] - old[name], confidence),
            paired,
            judged,
        )
        for name in names
    ]


def confidence_intervals(
    y: np.ndarray,
    proba: np.ndarray,
    threshold: float,
    names: Sequence[str] = tuple(METRICS),
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of each metric for one model."""
    values = _resampled(y, proba, names, threshold, resamples, seed)
    return {name: _interval(values[name], confidence) for name in names}


def metric_ci(
    y: np.ndarray,
    proba: np.ndarray,
    name: str,
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    threshold: float = 0.5,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of one metric on one model."""
    return confidence_intervals(
        y, proba, threshold, (name,), resamples=resamples, seed=seed, confidence=confidence
    )[name]


def decision_scores(
    counts: np.ndarray, y: np.ndarray, gain: np.ndarray, top: np.ndarray
) -> dict[str, np.ndarray]:
    """The decision metrics for each row of ``counts`` (row weights).

    ``gain`` is each row's contribution to the profit per 1,000 customers (zero for a
    row the policy does not contact); ``top`` marks the rows in the top share by score.
    A row of ones gives the plain values.
    """
    total = counts.sum(axis=1)
    churners, chosen = counts @ y, counts @ top
    reached = counts @ (y * top)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where(chosen > 0, reached * total / (chosen * churners), 0.0)
    return {"profit": counts @ gain / total, "lift_at_k": lift, "capture_at_k": reached / churners}


def _decision_resampled(
    y: np.ndarray, gain: np.ndarray, top: np.ndarray, resamples: int, seed: int
) -> dict[str, np.ndarray]:
    yf, tf = y.astype(float), top.astype(float)
    return _over_draws(
        y, resamples, seed, DECISION, lambda counts: decision_scores(counts, yf, gain, tf)
    )


def decision_points(y: np.ndarray, gain: np.ndarray, top: np.ndarray) -> dict[str, float]:
    """The decision metrics of one policy's rows (``gain``, ``top``: see ``policy_rows``)."""
    ones = np.ones((1, len(y)))
    values = decision_scores(ones, y.astype(float), gain, top.astype(float))
    return {name: float(v[0]) for name, v in values.items()}


def decision_intervals(
    y: np.ndarray,
    gain: np.ndarray,
    top: np.ndarray,
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of each decision metric for one policy."""
    values = _decision_resampled(y, gain, top, resamples, seed)
    return {name: _interval(values[name], confidence) for name in DECISION}


def paired_decision_bootstrap(
    y: np.ndarray,
    base: tuple[np.ndarray, np.ndarray],
    head: tuple[np.ndarray, np.ndarray],
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> list[Comparison]:
    """Head minus base on the decision metrics, same rows, same draws; sides are ``(gain, top)``."""
    old = _decision_resampled(y, *base, resamples, seed)
    new = _decision_resampled(y, *head, resamples, seed)
    points = (decision_points(y, *base), decision_points(y, *head))
    return _comparisons(DECISION, points, old, new, confidence, True, enough_rows(y))


def unpaired_decision_bootstrap(
    base: tuple[np.ndarray, np.ndarray, np.ndarray],
    head: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> list[Comparison]:
    """Head minus base on different rows; sides are ``(labels, gain, top)``, resampled alone."""
    old = _decision_resampled(*base, resamples, seed)
    new = _decision_resampled(*head, resamples, seed + 1)
    points = (decision_points(*base), decision_points(*head))
    return _comparisons(
        DECISION, points, old, new, confidence, False, enough_rows(base[0], head[0])
    )
