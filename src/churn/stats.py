"""Metrics and the bootstrap, defined once for evaluate, the PR report and releases."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm


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


def score(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Every metric in :data:`METRICS` for one set of probabilities."""
    return {name: float(m.compute(y_true, proba, threshold)) for name, m in METRICS.items()}


@dataclass(frozen=True)
class Comparison:
    """Head minus base for one metric, with its bootstrap confidence interval."""

    metric: str
    base: float
    head: float
    low: float
    high: float
    paired: bool

    @property
    def diff(self) -> float:
        """Head minus base."""
        return self.head - self.base

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` or ``no significant change``, direction-aware."""
        higher = METRICS[self.metric].higher_is_better
        if self.low > 0:
            return "better" if higher else "worse"
        if self.high < 0:
            return "worse" if higher else "better"
        return "no significant change"


def _resampled(
    compute: Callable[[np.ndarray, np.ndarray], float],
    y: np.ndarray,
    proba: np.ndarray,
    picks: np.ndarray,
) -> np.ndarray:
    return np.array([compute(y[idx], proba[idx]) for idx in picks])


def _picks(rng: np.random.Generator, n_rows: int, y: np.ndarray, resamples: int) -> np.ndarray:
    """Row indices per resample; redrawn until each holds both classes (AUC needs them)."""
    picks = rng.integers(0, n_rows, size=(resamples, n_rows))
    for i in range(resamples):
        while len(np.unique(y[picks[i]])) < 2:  # only plausible for tiny test sets
            picks[i] = rng.integers(0, n_rows, size=n_rows)
    return picks


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
    rng = np.random.default_rng(seed)
    picks = _picks(rng, len(y), y, resamples)
    out = []
    for name in names:
        fn = METRICS[name].compute

        def compute(yy: np.ndarray, pp: np.ndarray, fn=fn) -> float:
            return fn(yy, pp, threshold)

        diffs = _resampled(compute, y, head, picks) - _resampled(compute, y, base, picks)
        out.append(_comparison(name, compute(y, base), compute(y, head), diffs, confidence, True))
    return out


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
    rng = np.random.default_rng(seed)
    (yb, pb), (yh, ph) = base, head
    picks_b = _picks(rng, len(yb), yb, resamples)
    picks_h = _picks(rng, len(yh), yh, resamples)
    out = []
    for name in names:
        fn = METRICS[name].compute

        def compute(yy: np.ndarray, pp: np.ndarray, fn=fn) -> float:
            return fn(yy, pp, threshold)

        diffs = _resampled(compute, yh, ph, picks_h) - _resampled(compute, yb, pb, picks_b)
        out.append(_comparison(name, compute(yb, pb), compute(yh, ph), diffs, confidence, False))
    return out


def _comparison(
    name: str, base: float, head: float, diffs: np.ndarray, confidence: float, paired: bool
) -> Comparison:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return Comparison(name, float(base), float(head), float(low), float(high), paired)


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
    rng = np.random.default_rng(seed)
    fn = METRICS[name].compute
    values = _resampled(
        lambda yy, pp: fn(yy, pp, threshold), y, proba, _picks(rng, len(y), y, resamples)
    )
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
