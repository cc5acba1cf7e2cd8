import warnings

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from churn.core import stats
from churn.core.errors import ChurnError
from churn.core.stats import (
    HEADLINE,
    METRICS,
    Comparison,
    confidence_intervals,
    metric_ci,
    paired_bootstrap,
    sample_rows,
    score,
    unpaired_bootstrap,
    weighted_scores,
)


def synthetic(n: int = 1500, seed: int = 3):
    """Labels and two calibrated models: the weak one sees the signal through more noise."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    signal = y + rng.normal(0, 1.0, n)
    noisy = signal + rng.normal(0, 1.2, n)
    prior = np.log(0.3 / 0.7)

    def posterior(s, variance):
        return 1 / (1 + np.exp(-((s - 0.5) / variance + prior)))

    return y, posterior(noisy, 2.44), posterior(signal, 1.0)


def test_clearly_better_head_is_better_with_a_ci_excluding_zero():
    y, weak, strong = synthetic()
    result = {c.metric: c for c in paired_bootstrap(y, weak, strong, resamples=300, seed=1)}
    assert set(result) == set(HEADLINE)
    auc = result["roc_auc"]
    assert auc.base == pytest.approx(roc_auc_score(y, weak))
    assert auc.head == pytest.approx(roc_auc_score(y, strong))
    assert auc.low > 0
    assert auc.verdict == "better"
    assert result["log_loss"].high < 0  # lower is better
    assert result["log_loss"].verdict == "better"
    assert all(c.paired for c in result.values())


def test_swapped_models_are_worse():
    y, weak, strong = synthetic()
    result = {c.metric: c.verdict for c in paired_bootstrap(y, strong, weak, resamples=200)}
    assert result == dict.fromkeys(HEADLINE, "worse")


def test_identical_models_are_no_significant_change():
    y, weak, _ = synthetic()
    for c in paired_bootstrap(y, weak, weak.copy(), resamples=100):
        assert (c.low, c.high, c.verdict) == (0.0, 0.0, "no significant change")


def test_bootstrap_is_seeded():
    y, weak, strong = synthetic()
    first = paired_bootstrap(y, weak, strong, ("roc_auc",), resamples=100, seed=7)
    again = paired_bootstrap(y, weak, strong, ("roc_auc",), resamples=100, seed=7)
    other = paired_bootstrap(y, weak, strong, ("roc_auc",), resamples=100, seed=8)
    assert first == again
    assert first != other


def test_pairing_narrows_the_interval():
    y, weak, _ = synthetic()
    rng = np.random.default_rng(0)
    nudged = np.clip(weak + rng.normal(0, 0.01, len(weak)), 0.001, 0.999)
    paired = paired_bootstrap(y, weak, nudged, ("roc_auc",), resamples=300)[0]
    unpaired = unpaired_bootstrap((y, weak), (y, nudged), ("roc_auc",), resamples=300)[0]
    assert not unpaired.paired
    assert (paired.high - paired.low) * 3 < unpaired.high - unpaired.low


def test_verdict_reads_the_metric_direction():
    assert Comparison("brier", 0.2, 0.1, -0.12, -0.08, True).verdict == "better"
    assert Comparison("roc_auc", 0.8, 0.7, -0.12, -0.08, True).verdict == "worse"
    assert Comparison("roc_auc", 0.8, 0.81, -0.01, 0.03, True).verdict == "no significant change"


def test_too_few_rows_of_a_class_give_no_verdict():
    """2 test rows once read as 'significantly better': a resample cannot vary, so no verdict."""
    from churn.core.stats import (
        MIN_CLASS_ROWS,
        TOO_FEW,
        enough_rows,
        paired_decision_bootstrap,
        unpaired_decision_bootstrap,
    )

    assert TOO_FEW == "too few test rows to judge (under 10 of a class)"
    assert MIN_CLASS_ROWS == 10
    ten, nine = np.r_[np.zeros(10), np.ones(10)], np.r_[np.zeros(30), np.ones(9)]
    assert enough_rows(ten)
    assert not enough_rows(nine)
    assert not enough_rows(np.r_[np.ones(9), np.zeros(30)][::-1])
    assert not enough_rows(ten, nine)  # every side must have them
    assert not enough_rows(np.ones(40))
    assert not enough_rows(np.zeros(40))
    y, weak, strong = synthetic()
    few = np.r_[np.flatnonzero(y == 1)[:9], np.flatnonzero(y == 0)[:200]]
    tiny = paired_bootstrap(y[few], weak[few], strong[few], ("roc_auc",), resamples=50)[0]
    assert (tiny.judged, tiny.verdict) == (False, TOO_FEW)
    side = (y[few], weak[few])
    for sides in (((y, weak), side), (side, (y, weak))):  # either side may be the small one
        apart = unpaired_bootstrap(*sides, ("roc_auc",), resamples=50)[0]
        assert (apart.judged, apart.verdict) == (False, TOO_FEW)
    gain, top = np.ones(len(few)), np.ones(len(few), dtype=bool)
    decided = paired_decision_bootstrap(y[few], (gain, top), (gain, top), resamples=20)
    assert {c.verdict for c in decided} == {TOO_FEW}
    whole = (y, np.ones(len(y)), np.ones(len(y), dtype=bool))
    for sides in (((y[few], gain, top), whole), (whole, (y[few], gain, top))):
        apart = unpaired_decision_bootstrap(*sides, resamples=20)
        assert {(c.paired, c.judged, c.verdict) for c in apart} == {(False, False, TOO_FEW)}
    judged = unpaired_decision_bootstrap(whole, whole, resamples=20)
    assert {(c.paired, c.judged) for c in judged} == {(False, True)}
    assert paired_bootstrap(y, weak, strong, ("roc_auc",), resamples=50)[0].judged


def test_metric_ci_brackets_the_estimate():
    y, _, strong = synthetic()
    low, high = metric_ci(y, strong, "roc_auc", resamples=200)
    assert low < roc_auc_score(y, strong) < high
    assert high - low < 0.06


def test_every_metric_has_a_direction():
    assert {name: m.higher_is_better for name, m in METRICS.items()} == {
        "roc_auc": True,
        "average_precision": True,
        "log_loss": False,
        "brier": False,
        "precision": True,
        "recall": True,
        "f1": True,
        "accuracy": True,
    }


def test_vectorized_scores_equal_sklearn_with_sample_weights():
    from sklearn import metrics as skm

    from churn.core.stats import _weights, weighted_scores

    y, weak, _ = synthetic(n=300)
    proba = np.round(weak, 2)  # ties, as real scores have
    counts = next(_weights(y, 20, seed=4, block=20))
    got = weighted_scores(counts, y, proba, 0.4, tuple(METRICS))
    flagged = (proba >= 0.4).astype(int)
    for i, w in enumerate(counts):
        expected = {
            "roc_auc": skm.roc_auc_score(y, proba, sample_weight=w),
            "average_precision": skm.average_precision_score(y, proba, sample_weight=w),
            "log_loss": skm.log_loss(y, proba, sample_weight=w),
            "brier": skm.brier_score_loss(y, proba, sample_weight=w),
            "precision": skm.precision_score(y, flagged, sample_weight=w, zero_division=0),
            "recall": skm.recall_score(y, flagged, sample_weight=w, zero_division=0),
            "f1": skm.f1_score(y, flagged, sample_weight=w, zero_division=0),
            "accuracy": skm.accuracy_score(y, flagged, sample_weight=w),
        }
        for name, value in expected.items():
            assert got[name][i] == pytest.approx(value, abs=1e-12), name


def test_blocks_do_not_change_the_draws():
    from churn.core.stats import _weights

    y, _, _ = synthetic(n=50)
    whole = np.vstack(list(_weights(y, 30, seed=2, block=30)))
    pieces = np.vstack(list(_weights(y, 30, seed=2, block=7)))
    np.testing.assert_array_equal(whole, pieces)
    assert whole.sum(axis=1).tolist() == [50.0] * 30


@pytest.mark.parametrize(
    ("y", "resamples"), [([0, 0, 0, 1], 40), ([1, 0, 0, 0, 0, 0, 0], 25), ([1, 1, 1, 0], 40)]
)
def test_the_draws_are_all_picks_drawn_at_once_then_one_class_ones_redrawn(y, resamples):
    """Drawn a block at a time (memory: a block's), the draws are the whole matrix's.

    The reference here is the rule itself, written out: every resample drawn, then each
    holding one class redrawn in order until it holds both (a 4-row set redraws often).
    """
    from churn.core.stats import _weights

    y = np.array(y)
    rng = np.random.default_rng(11)
    picks = rng.integers(0, len(y), size=(resamples, len(y)))
    redrawn = 0
    for i in range(resamples):
        while len(np.unique(y[picks[i]])) < 2:
            picks[i] = rng.integers(0, len(y), size=len(y))
            redrawn += 1
    assert redrawn > 3  # the case is exercised
    expected = np.stack([np.bincount(row, minlength=len(y)) for row in picks]).astype(float)
    for block in (1, 3, resamples):
        got = np.vstack(list(_weights(y, resamples, seed=11, block=block)))
        np.testing.assert_array_equal(got, expected)


def test_a_block_holds_about_two_and_a_half_million_counts_and_at_least_one_resample():
    """The bootstrap's memory: a count matrix of ~20 MB, whatever the test size."""
    from churn.core.stats import _block

    assert _block(20_000) == 125  # the card's 20,000 rows: 125 resamples a block
    assert _block(1409) == 1774  # the real test split: 1,000 resamples fit one block
    assert _block(10_000_000) == 1
    assert _block(0) == 2_500_000


# Known answers, worked out by hand (issue #17: mutants these must kill).


def test_percentile_interval_cuts_half_the_tail_on_each_side():
    from churn.core.stats import _interval

    values = np.arange(101.0)  # the q-th percentile of 0..100 is q itself
    assert _interval(values, 0.90) == pytest.approx((5.0, 95.0))
    assert _interval(values, 0.80) == pytest.approx((10.0, 90.0))


def test_thresholded_metrics_on_a_hand_counted_confusion_matrix():
    # y:  1    1    1    0    0      flagged at 0.5: rows 0, 3 and 4 (0.5 is flagged: >=)
    y = np.array([1, 1, 1, 0, 0])
    p = np.array([0.9, 0.2, 0.1, 0.8, 0.5])
    got = score(y, p, 0.5)
    # TP 1 (row 0), FP 2 (rows 3, 4), FN 2 (rows 1, 2), TN 0
    assert got["precision"] == pytest.approx(1 / 3)
    assert got["recall"] == pytest.approx(1 / 3)
    assert got["f1"] == pytest.approx(1 / 3)
    assert got["accuracy"] == pytest.approx(1 / 5)
    at = score(np.array([1, 0]), np.array([0.5, 0.2]), 0.5)  # exactly at the threshold
    assert (at["precision"], at["recall"], at["accuracy"]) == (1.0, 1.0, 1.0)
    counts = np.ones((1, 5))
    weighted = weighted_scores(counts, y, p, 0.5, ["precision", "recall", "f1", "accuracy"])
    assert {k: float(v[0]) for k, v in weighted.items()} == pytest.approx(
        {"precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3, "accuracy": 1 / 5}
    )


def test_precision_and_recall_differ_where_they_should():
    y = np.array([1, 1, 1, 0])
    p = np.array([0.9, 0.2, 0.1, 0.8])  # TP 1, FP 1, FN 2
    got = score(y, p, 0.5)
    assert (got["precision"], got["recall"]) == pytest.approx((1 / 2, 1 / 3))
    weighted = weighted_scores(np.ones((1, 4)), y, p, 0.5, ["precision", "recall"])
    assert (float(weighted["precision"][0]), float(weighted["recall"][0])) == pytest.approx(
        (1 / 2, 1 / 3)
    )


def test_difference_is_head_minus_base():
    c = Comparison("roc_auc", base=0.80, head=0.90, low=0.05, high=0.15, paired=True)
    assert c.diff == pytest.approx(0.10)
    assert c.verdict == "better"
    loss = Comparison("log_loss", base=0.40, head=0.50, low=0.05, high=0.15, paired=True)
    assert loss.diff == pytest.approx(0.10)
    assert loss.verdict == "worse"


def test_unpaired_draws_each_side_on_its_own():
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.4).astype(int)
    p = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, 300), 0.01, 0.99)
    paired = paired_bootstrap(y, p, p, ("roc_auc",), resamples=200, seed=4)[0]
    unpaired = unpaired_bootstrap((y, p), (y, p), ("roc_auc",), resamples=200, seed=4)[0]
    assert (paired.paired, unpaired.paired) == (True, False)
    assert (paired.low, paired.high) == (0.0, 0.0)  # same draws, same model: no difference
    assert unpaired.low < 0 < unpaired.high  # different draws per side: a real spread
    again = unpaired_bootstrap((y, p), (y, p), ("roc_auc",), resamples=200, seed=4)[0]
    other = unpaired_bootstrap((y, p), (y, p), ("roc_auc",), resamples=200, seed=5)[0]
    assert (again.low, again.high) == (unpaired.low, unpaired.high)
    assert (other.low, other.high) != (unpaired.low, unpaired.high)


def test_every_row_can_be_drawn_and_each_resample_has_n_rows():
    from churn.core.stats import _weights

    y = np.array([0, 1] * 5)
    counts = np.vstack(list(_weights(y, resamples=400, seed=0, block=400)))
    assert counts.shape == (400, 10)
    assert (counts.sum(axis=1) == 10).all()
    assert (counts.sum(axis=0) > 0).all()  # row 0 and the last row too
    assert counts.mean() == pytest.approx(1.0)
    assert abs(counts[:, 0].mean() - 1.0) < 0.15  # row 0 is drawn as often as any


# An independent bootstrap, written from the documented procedure: `resamples` draws of
# n rows with replacement from numpy's default_rng(seed), a draw holding one class only
# being redrawn; the interval is the percentile one. Small inputs keep it fast.

Y8 = np.array([0, 0, 0, 1, 0, 0, 1, 0])  # two positives in eight: many draws get redrawn
BASE8 = np.array([0.2, 0.6, 0.1, 0.7, 0.4, 0.3, 0.45, 0.55])
HEAD8 = np.array([0.1, 0.3, 0.2, 0.9, 0.6, 0.2, 0.8, 0.35])


def oracle_draws(y, resamples, seed):
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(y), size=(resamples, len(y)))
    for row in picks:
        while len(set(y[row])) < 2:
            row[:] = rng.integers(0, len(y), size=len(y))
    return picks


def oracle_values(y, proba, name, threshold, draws):
    if name == "accuracy":
        return np.array([np.mean((proba[d] >= threshold) == y[d]) for d in draws])
    if name == "brier":
        return np.array([np.mean((proba[d] - y[d]) ** 2) for d in draws])
    # AUC by its definition: the share of (positive, negative) pairs ranked right, ties half.
    aucs = []
    for d in draws:
        pos, neg = proba[d][y[d] == 1][:, None], proba[d][y[d] == 0][None, :]
        aucs.append(np.mean((pos > neg) + 0.5 * (pos == neg)))
    return np.array(aucs)


def oracle_interval(values, confidence):
    tail = (1 - confidence) / 2 * 100
    return tuple(np.percentile(values, [tail, 100 - tail]))


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("accuracy", {}, {"resamples": 1000, "seed": 0, "confidence": 0.95, "threshold": 0.5}),
        ("roc_auc", {}, {"resamples": 1000, "seed": 0, "confidence": 0.95, "threshold": 0.5}),
        # Brier takes many distinct values on 8 rows: its interval moves with any change of
        # the draws, where accuracy's and AUC's coarse steps may not.
        ("brier", {}, {"resamples": 1000, "seed": 0, "confidence": 0.95, "threshold": 0.5}),
        (
            "accuracy",
            {"resamples": 300, "seed": 5, "confidence": 0.8, "threshold": 0.35},
            {"resamples": 300, "seed": 5, "confidence": 0.8, "threshold": 0.35},
        ),
    ],
)
def test_metric_ci_is_the_documented_percentile_bootstrap(name, kwargs, expected):
    """Defaults 1000 resamples, seed 0, 95 %, threshold 0.5; each argument reaches the draws."""
    draws = oracle_draws(Y8, expected["resamples"], expected["seed"])
    values = oracle_values(Y8, BASE8, name, expected["threshold"], draws)
    want = oracle_interval(values, expected["confidence"])
    assert metric_ci(Y8, BASE8, name, **kwargs) == pytest.approx(want, abs=1e-12)
    from churn.core.stats import confidence_intervals

    rest = {k: v for k, v in kwargs.items() if k != "threshold"}
    got = confidence_intervals(Y8, BASE8, expected["threshold"], **rest)[name]
    assert got == pytest.approx(want, abs=1e-12)


def test_paired_and_unpaired_defaults_and_draws():
    """Paired: both models on the same draws. Unpaired: base on seed's draws, head on seed + 1's.

    Defaults as for metric_ci; accuracy makes the threshold count, Brier the draws.
    """
    draws = {seed: oracle_draws(Y8, 1000, seed) for seed in (0, 1)}
    paired = paired_bootstrap(Y8, BASE8, HEAD8, ("accuracy", "brier"))
    unpaired = unpaired_bootstrap((Y8, BASE8), (Y8, HEAD8), ("accuracy", "brier"))
    for name, same, own in zip(("accuracy", "brier"), paired, unpaired, strict=True):
        base = oracle_values(Y8, BASE8, name, 0.5, draws[0])
        same_rows = oracle_values(Y8, HEAD8, name, 0.5, draws[0]) - base
        assert (same.low, same.high) == pytest.approx(oracle_interval(same_rows, 0.95))
        own_rows = oracle_values(Y8, HEAD8, name, 0.5, draws[1]) - base
        assert (own.low, own.high) == pytest.approx(oracle_interval(own_rows, 0.95))
    assert (
        (paired[0].base, paired[0].head) == (unpaired[0].base, unpaired[0].head) == (5 / 8, 7 / 8)
    )


def test_thresholded_scores_on_edge_resamples_match_sklearn_without_warnings():
    """Resamples with nothing flagged, no positives, a single row, or fractional weights.

    Each must give sklearn's value (zero_division=0), and no RuntimeWarning may leak
    from the 0/0 cases into the logs.
    """
    from sklearn import metrics as skm

    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.2, 0.8, 0.1])  # a TP, an FN, an FP and a TN at 0.5
    counts = np.array(
        [
            [0, 0, 0, 1],  # a true negative only: nothing flagged, no positive
            [1, 0, 0, 0],  # a true positive only
            [1, 3, 0, 0],  # TP 1, FN 3
            [1, 0, 3, 0],  # TP 1, FP 3
            [0.5, 0, 0, 0],  # half a true positive
            [0, 1, 1, 0],  # an FN and an FP
        ]
    )
    names = ("precision", "recall", "f1", "accuracy", "log_loss", "brier")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = weighted_scores(counts, y, p, 0.5, names)
    flagged = (p >= 0.5).astype(int)
    for i, w in enumerate(counts):
        expected = {
            "precision": skm.precision_score(y, flagged, sample_weight=w, zero_division=0),
            "recall": skm.recall_score(y, flagged, sample_weight=w, zero_division=0),
            "f1": skm.f1_score(y, flagged, sample_weight=w, zero_division=0),
            "accuracy": skm.accuracy_score(y, flagged, sample_weight=w),
            "log_loss": skm.log_loss(y, p, sample_weight=w, labels=[0, 1]),
            "brier": skm.brier_score_loss(y, p, sample_weight=w),
        }
        assert {k: float(v[i]) for k, v in got.items()} == pytest.approx(expected), i


def test_log_loss_clips_certain_wrong_answers_like_sklearn():
    """A probability of exactly 0 or 1 on the wrong class is a finite loss, not inf."""
    from sklearn import metrics as skm

    y = np.array([1, 0, 1, 0])
    p = np.array([1.0, 0.0, 0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = weighted_scores(np.ones((1, 4)), y, p, 0.5, ["log_loss"])["log_loss"][0]
    assert got == pytest.approx(skm.log_loss(y, p))
    assert got == pytest.approx(-np.log(np.finfo(float).eps) / 2)


def test_auc_counts_a_positive_in_the_lowest_scored_group():
    # positives 0.6 and 0.1; negatives 0.9 and 0.4: of the 4 pairs only 0.6 > 0.4 is won.
    y = np.array([0, 1, 0, 1])
    p = np.array([0.9, 0.6, 0.4, 0.1])
    got = weighted_scores(np.ones((1, 4)), y, p, 0.5, ["roc_auc"])["roc_auc"][0]
    assert got == pytest.approx(1 / 4)


@pytest.mark.parametrize(("y", "shown"), [([0, 0, 0], "[0]"), ([1], "[1]"), ([], "[]")])
def test_one_class_labels_are_an_error_not_an_endless_redraw(y, shown):
    """Every resample must hold both classes; with one class in y none ever can."""
    y = np.array(y, dtype=int)
    with pytest.raises(ChurnError) as err:
        confidence_intervals(y, np.full(len(y), 0.5), 0.5, resamples=10, seed=0)
    assert str(err.value) == f"bootstrap: the test labels hold one class only ({shown})"


# --- decision metrics (issue 16) -----------------------------------------------------------

from churn.core.stats import (  # noqa: E402
    DECISION,
    DIRECTIONS,
    decision_intervals,
    decision_scores,
    paired_decision_bootstrap,
    unpaired_decision_bootstrap,
)

Y4 = np.array([1.0, 0.0, 1.0, 0.0])
GAIN4 = np.array([40.0, -10.0, 0.0, 0.0])  # rows 0 and 1 contacted
TOP4 = np.array([1.0, 0.0, 0.0, 0.0])


def test_decision_scores_are_weighted_sums_by_hand():
    counts = np.array([[1.0, 1.0, 1.0, 1.0], [2.0, 1.0, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0]])
    got = decision_scores(counts, Y4, GAIN4, TOP4)
    # Plain rows: profit 30 / 4; top 1 of 4 rows holds 1 of 2 churners: lift (1/1)/(2/4) = 2.
    # Row 0 twice: profit 70 / 4; the top is 2 of 4 draws, both churners of 2: lift 2, capture 1.
    # Row 0 not drawn: profit -10 / 3; nobody in the top: lift 0, capture 0.
    np.testing.assert_allclose(got["profit"], [7.5, 17.5, -10 / 3])
    np.testing.assert_allclose(got["lift_at_k"], [2.0, 2.0, 0.0])
    np.testing.assert_allclose(got["capture_at_k"], [0.5, 1.0, 0.0])
    assert list(got) == list(DECISION)


def test_decision_metrics_are_higher_is_better():
    assert all(DIRECTIONS[name] for name in DECISION)
    assert Comparison("profit", 1.0, 2.0, 0.5, 1.5, True).verdict == "better"
    assert Comparison("profit", 2.0, 1.0, -1.5, -0.5, True).verdict == "worse"
    assert Comparison("log_loss", 2.0, 1.0, -1.5, -0.5, True).verdict == "better"


def test_decision_intervals_are_seeded_and_bracket_the_value():
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.3).astype(float)
    gain = np.where(y == 1, 400.0, -100.0) * (rng.random(300) < 0.5)
    top = (rng.random(300) < 0.1).astype(float)
    first = decision_intervals(y, gain, top, resamples=200, seed=3)
    assert first == decision_intervals(y, gain, top, resamples=200, seed=3)
    assert first != decision_intervals(y, gain, top, resamples=200, seed=4)
    low, high = first["profit"]
    assert low < gain.mean() < high
    narrow = decision_intervals(y, gain, top, resamples=200, seed=3, confidence=0.5)["profit"]
    assert low < narrow[0] < narrow[1] < high


def test_paired_decision_bootstrap_of_a_model_against_itself_is_exactly_zero():
    rng = np.random.default_rng(2)
    y = (rng.random(200) < 0.3).astype(float)
    side = (np.where(y == 1, 300.0, -50.0), (rng.random(200) < 0.1).astype(float))
    found = paired_decision_bootstrap(y, side, side, resamples=100, seed=0)
    assert [c.metric for c in found] == list(DECISION)
    assert all((c.diff, c.low, c.high, c.paired) == (0.0, 0.0, 0.0, True) for c in found)
    better = (side[0] + 10.0, side[1])
    [profit] = [
        c for c in paired_decision_bootstrap(y, side, better, resamples=100) if c.metric == "profit"
    ]
    assert (profit.diff, profit.low, profit.high) == pytest.approx((10.0, 10.0, 10.0))
    assert profit.verdict == "better"


def test_unpaired_decision_bootstrap_resamples_each_side_on_its_own():
    rng = np.random.default_rng(3)
    y = (rng.random(200) < 0.3).astype(float)
    side = (y, np.where(y == 1, 300.0, -50.0), (rng.random(200) < 0.1).astype(float))
    found = unpaired_decision_bootstrap(side, side, resamples=100, seed=0)
    assert [c.diff for c in found] == [0.0, 0.0, 0.0]
    assert not any(c.paired for c in found)
    assert all(c.low < 0 < c.high for c in found)  # different draws for the two sides


def test_sample_labelled_refuses_a_draw_short_of_a_class_naming_the_key():
    """A 1,000-row sample of 12 churners in 5,000 rows can hold none: NaN ROC rates, exit 0."""
    y = np.zeros(5000, dtype=int)
    y[[10, 2000, 4000]] = 1
    rows = sample_rows(5000, 1000, 3)
    held = int(y[rows].sum())
    assert held < 3  # the seeded draw itself, independent of the code under test
    with pytest.raises(ChurnError) as err:
        stats.sample_labelled(y, 1000, 3, "evaluate.plot_max_rows", least=held + 1)
    assert str(err.value) == (
        f"params.yaml: evaluate.plot_max_rows: the seeded sample of 1,000 of 5,000 rows holds "
        f"{held} of the 3 rows of class 1, fewer than {held + 1}: raise evaluate.plot_max_rows"
    )
    assert stats.sample_labelled(y, 1000, 3, "k", least=held).tolist() == rows.tolist()
    assert stats.sample_labelled(y, 5000, 3, "k", least=9).tolist() == list(range(5000))
    # A class with fewer rows in all than asked for is the caller's own check, not the cap's.
    assert stats.sample_labelled(y, 1000, 3, "k", least=4).tolist() == rows.tolist()
    # A class with exactly as many rows in all as asked for: the sample needs them all.
    assert stats.sample_labelled(y, 1000, 3, "k", least=3 if held == 3 else 1).size == 1000
    if held < 3:
        with pytest.raises(ChurnError, match=r"holds \d of the 3 rows of class 1, fewer than 3:"):
            stats.sample_labelled(y, 1000, 3, "k", least=3)
    labels = np.array(["No"] * 4990 + ["Yes"] * 10)
    none = next(s for s in range(100) if "Yes" not in labels[sample_rows(5000, 100, s)])
    with pytest.raises(ChurnError, match=r"holds 0 of the 10 rows of class 'Yes', fewer than 1:"):
        stats.sample_labelled(labels, 100, none, "k")


def test_sample_rows_all_below_the_cap_else_a_seeded_sorted_sample():
    assert sample_rows(5, 5, 0).tolist() == [0, 1, 2, 3, 4]
    sample = sample_rows(100_000, 1000, 7)
    assert len(sample) == 1000
    assert len(np.unique(sample)) == 1000
    assert (np.diff(sample) > 0).all()
    assert sample.tolist() == sample_rows(100_000, 1000, 7).tolist()
    assert sample.tolist() != sample_rows(100_000, 1000, 8).tolist()
    assert sample.max() > 90_000  # drawn from the whole range
