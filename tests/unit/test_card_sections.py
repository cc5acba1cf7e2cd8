"""Known-answer tests of each model card section, on inputs small enough to score by hand.

Every expected line below was worked out on paper from the handful of rows in the test;
none is read back from the code under test.
"""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from churn.core import stats
from churn.core.contract import Column, Contract
from churn.core.decision import Measured
from churn.core.errors import ChurnError
from churn.core.params import LogisticRegressionParams, RandomForestParams
from churn.core.stats import TOO_FEW, Scores, score
from churn.stages import card

CONTRACT = Contract(
    target="churn",
    positive_label="Yes",
    labels=("No", "Yes"),
    id="rownames",
    id_in_data=True,
    columns={
        "tenure": Column("numeric"),
        "plan": Column("categorical"),
        "monthly_charges": Column("numeric"),
    },
)


def _with(params, section: str, **changes):
    """``params`` with some keys of one section replaced."""
    return params.model_copy(update={section: getattr(params, section).model_copy(update=changes)})


# --- Model -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("train", "classifier"),
    [
        (
            {
                "model": "logistic_regression",
                "class_weight": None,
                "seed": 7,
                "logistic_regression": LogisticRegressionParams(C=0.25, max_iter=300),
            },
            "- Classifier: `logistic_regression` (C=0.25, max_iter=300); class weight: none; "
            "seed 7.",
        ),
        (
            {
                "model": "random_forest",
                "class_weight": "balanced",
                "seed": 3,
                "random_forest": RandomForestParams(
                    n_estimators=50, max_depth=None, min_samples_leaf=2, max_features="log2"
                ),
            },
            "- Classifier: `random_forest` (n_estimators=50, max_depth=None, min_samples_leaf=2, "
            "max_features=log2); class weight: balanced; seed 3.",
        ),
    ],
    ids=["logistic-unweighted", "forest-balanced"],
)
def test_model_section_names_the_chosen_classifier_and_its_settings(params, train, classifier):
    """The card describes the classifier actually configured, not another one.

    Its own hyperparameters, its class weight ('none' when unset), the contract's column
    counts and the decision threshold.
    """
    configured = _with(params, "train", **train)
    configured = _with(
        configured,
        "paths",
        contract="out/contract.json",
        model="out/model.pkl",
        decision="out/decision.json",
    )
    assert card._model_section(configured, CONTRACT, 0.35) == [
        "## Model",
        "",
        classifier,
        "- Input: 3 raw columns (2 numeric, 1 categorical, see `out/contract.json`); output: "
        "the probability that the customer churns (`churn` = `Yes`).",
        "- One artifact: `out/model.pkl`, a scikit-learn Pipeline of the fitted feature "
        "transformer and the classifier.",
        "- Decision threshold: 0.35 (`out/decision.json`).",
        "",
    ]


def test_model_section_says_when_the_contract_was_inferred(params):
    inferred = replace(CONTRACT, inferred=True)
    section = card._model_section(params, inferred, 0.5)
    assert section[4] == (
        "- The data contract was inferred from the file (`features: infer`): types, "
        "nullability and categories from all its rows, numeric ranges from the training "
        "split; `churn contract --freeze` prints it as params to declare."
    )
    assert len(section) == len(card._model_section(params, CONTRACT, 0.5)) + 1


# --- Data ------------------------------------------------------------------------------


def test_data_section_counts_rows_and_churn_and_fingerprints_the_training_file(
    params, tmp_path, monkeypatch
):
    """Row counts and churn shares of each split, and the md5 of the training file on disk.

    Counts carry thousands separators; the md5 is of ``paths.train``, not some other path.
    """
    monkeypatch.chdir(tmp_path)
    configured = _with(params, "paths", raw="in/raw.csv", train="in/train.parquet")
    configured = _with(configured, "prepare", test_size=0.25, seed=11)
    (tmp_path / "in").mkdir()
    (tmp_path / "in/train.parquet").write_bytes(b"training bytes")
    y_train = pd.Series([1] * 250 + [0] * 750)  # 1,000 rows, 25 % churn
    y_test = np.array([1] * 3 + [0] * 5)  # 8 rows, 37.5 % churn
    assert card._data_section(configured, y_train, y_test) == [
        "## Data",
        "",
        "- Raw file: `in/raw.csv`; stratified split, test size 0.25, seed 11.",
        # md5 of b"training bytes", computed outside the code under test (md5sum).
        "- Training split: 1,000 rows, 25.0% churn; md5 `04ee6033369237668cf680003791080c`.",
        "- Test split: 8 rows, 37.5% churn.",
        "",
    ]


# --- Test metrics ----------------------------------------------------------------------

# Four rows, perfectly separated, every row scored 0.2 away from its label: each metric is
# the same on every bootstrap draw, so each interval collapses onto the point value.
# log loss = -ln 0.8 = 0.2231, brier = 0.2 ** 2 = 0.04.
# The prior baseline scores everyone 0.5 = the churn rate: AUC 0.5, average precision 0.5,
# log loss ln 2 = 0.6931, brier 0.25; at threshold 0.5 all four are flagged: precision 0.5,
# recall 1, F1 = 2 * 0.5 / 1.5 = 0.6667, accuracy 0.5.
METRIC_ROWS = [
    "| roc_auc | 1.0000 | [1.0000, 1.0000] | 0.5000 | higher |",
    "| average_precision | 1.0000 | [1.0000, 1.0000] | 0.5000 | higher |",
    "| log_loss | 0.2231 | [0.2231, 0.2231] | 0.6931 | lower |",
    "| brier | 0.0400 | [0.0400, 0.0400] | 0.2500 | lower |",
    "| precision | 1.0000 | [1.0000, 1.0000] | 0.5000 | higher |",
    "| recall | 1.0000 | [1.0000, 1.0000] | 1.0000 | higher |",
    "| f1 | 1.0000 | [1.0000, 1.0000] | 0.6667 | higher |",
    "| accuracy | 1.0000 | [1.0000, 1.0000] | 0.5000 | higher |",
]


def test_metrics_section_gives_model_interval_baseline_and_direction_per_metric(params):
    """Each metric's row: model value, interval, baseline value and the better direction.

    The baseline column must show the baseline's score, not the model's again; the title
    states the number of resamples.
    """
    configured = _with(params, "evaluate", ci_resamples=200)
    y = np.repeat([0, 0, 1, 1], 10)  # 20 of each class: enough to judge
    proba = np.repeat([0.2, 0.2, 0.8, 0.8], 10)
    baseline = np.full(40, 0.5)
    scores = Scores(score(y, proba, 0.5), score(y, baseline, 0.5))
    assert card._metrics_section(y, proba, scores, configured, 0.5) == [
        "## Test metrics (95 % bootstrap intervals, 200 resamples)",
        "",
        "| metric | model | 95 % CI | prior baseline | better |",
        "|---|---:|---|---:|---|",
        *METRIC_ROWS,
        "",
    ]


def test_too_few_rows_of_a_class_give_no_interval(params):
    """Two test rows gave "roc_auc 1.0000 [1.0000, 1.0000]": a certainty they cannot give."""
    configured = _with(params, "evaluate", ci_resamples=200)
    y = np.array([0, 0, 1, 1] * 2 + [0] * 12)  # 4 churners: under 10
    proba = np.where(y == 1, 0.8, 0.2)
    scores = Scores(score(y, proba, 0.5), score(y, np.full(len(y), 0.5), 0.5))
    lines = card._metrics_section(y, proba, scores, configured, 0.5)
    assert lines[4] == "| roc_auc | 1.0000 | — | 0.5000 | higher |"
    assert all(" | — | " in line for line in lines[4:12])
    assert lines[12:] == ["", f"_No intervals: {TOO_FEW}._", ""]


def _rows_behind_the_intervals(params, monkeypatch, n_rows, cap, seed):
    """The title line, and what ``confidence_intervals`` was called with, on ``n_rows`` rows.

    Every row has its own probability, and the label is a function of it, so a row is
    identified by its probability and a label swapped between rows would show.
    """
    seen = {}
    real = card.confidence_intervals

    def spy(y, proba, threshold, **kwargs):
        seen.update(y=y, proba=proba, threshold=threshold, **kwargs)
        return real(y, proba, threshold, **kwargs)

    monkeypatch.setattr(card, "confidence_intervals", spy)
    configured = _with(params, "evaluate", ci_max_rows=cap, ci_resamples=100, seed=seed)
    proba = np.arange(1, n_rows + 1) / (n_rows + 1)
    y = (np.arange(1, n_rows + 1) % 3 == 0).astype(int)
    scores = Scores(score(y, proba, 0.5), score(y, np.full(n_rows, 1 / 3), 0.5))
    lines = card._metrics_section(y, proba, scores, configured, 0.5)
    return lines[0], seen


@pytest.mark.parametrize(("n_rows", "cap", "subsampled"), [(1500, 1000, True), (1000, 1000, False)])
def test_intervals_use_distinct_rows_in_order_and_all_rows_up_to_the_cap(
    params, monkeypatch, n_rows, cap, subsampled
):
    """Above ``ci_max_rows`` the intervals come from that many distinct rows, in order.

    No row is drawn twice and labels stay matched to their probabilities; at the cap every
    row is used and the title says nothing about a subsample.
    """
    title, seen = _rows_behind_the_intervals(params, monkeypatch, n_rows, cap, seed=5)
    sampled = f", on 1,000 of {n_rows:,} rows" if subsampled else ""
    assert title == f"## Test metrics (95 % bootstrap intervals, 100 resamples{sampled})"
    assert len(seen["proba"]) == cap
    assert np.all(np.diff(seen["proba"]) > 0)  # distinct and in the original order
    rows = np.rint(seen["proba"] * (n_rows + 1)).astype(int)
    np.testing.assert_array_equal(seen["y"], (rows % 3 == 0).astype(int))
    assert (seen["threshold"], seen["resamples"], seen["seed"]) == (0.5, 100, 5)


def test_the_subsample_is_drawn_from_evaluate_seed(params, monkeypatch):
    """The same seed picks the same rows on every run, another seed other rows.

    Guards against an unseeded draw (the card, tracked by DVC, would change on every run)
    and against a seed that is not the configured one.
    """
    drawn = [
        _rows_behind_the_intervals(params, monkeypatch, 1500, 1000, seed)[1]["proba"]
        for seed in (5, 5, 6)
    ]
    np.testing.assert_array_equal(drawn[0], drawn[1])
    assert not np.array_equal(drawn[0], drawn[2])


# --- Threshold -------------------------------------------------------------------------

# Eight rows (probability, label); two sit exactly on a threshold (0.3 and 0.5), where a
# customer is flagged: the rule is probability >= threshold.
THRESHOLD_PROBA = np.array([0.1, 0.3, 0.35, 0.5, 0.5, 0.6, 0.7, 0.9])
THRESHOLD_Y = np.array([0, 0, 1, 0, 1, 1, 0, 1])
# t    flagged       TP FP  precision  recall (of 4 churners)
# 0.3  7 = 87.5 %    4  3   0.571      1.000
# 0.4  5 = 62.5 %    3  2   0.600      0.750   (0.45 and 0.5 flag the same five)
# 0.6  3 = 37.5 %    2  1   0.667      0.500
# 0.7  2 = 25.0 %    1  1   0.500      0.250
THRESHOLD_ROWS = {
    0.3: "87.5% | 0.571 | 1.000 |",
    0.4: "62.5% | 0.600 | 0.750 |",
    0.45: "62.5% | 0.600 | 0.750 |",
    0.5: "62.5% | 0.600 | 0.750 |",
    0.6: "37.5% | 0.667 | 0.500 |",
    0.7: "25.0% | 0.500 | 0.250 |",
}


@pytest.mark.parametrize(
    ("used", "listed"),
    [(0.5, (0.3, 0.4, 0.5, 0.6, 0.7)), (0.45, (0.3, 0.4, 0.45, 0.5, 0.6, 0.7))],
    ids=["used-is-a-standard-one", "used-is-extra"],
)
def test_threshold_table_flags_at_or_above_each_threshold_and_marks_the_one_used(used, listed):
    """One row per standard threshold plus the one in use: once, in order, marked.

    A customer scored exactly at a threshold counts as flagged.
    """
    rows = [f"| {t:.2f}{' (used)' if t == used else ''} | {THRESHOLD_ROWS[t]}" for t in listed]
    assert card._threshold_section(THRESHOLD_Y, THRESHOLD_PROBA, used) == [
        "## The threshold and what it trades",
        "",
        "Lowering the threshold flags more customers: more churners caught (recall), more "
        "retention effort spent on customers who would have stayed (lower precision).",
        "",
        "| threshold | flagged | precision | recall |",
        "|---:|---:|---:|---:|",
        *rows,
        "",
    ]


# --- Calibration -----------------------------------------------------------------------


def test_calibration_bins_by_tenths_including_both_ends():
    """Rows fall in [k/10, (k+1)/10), a probability of exactly 1.0 in the last band.

    0.05 lands in the first band, 0.5 in 0.5 to 0.6, and 1.0 is not lost off the top;
    empty bands are left out.
    """
    proba = np.array([0.05, 0.15, 0.15, 0.35, 0.5, 0.58, 0.95, 1.0])
    y = np.array([0, 0, 1, 0, 0, 1, 1, 1])
    # Squared errors: .0025 + .0225 + .7225 + .1225 + .25 + .1764 + .0025 + 0 = 1.2989;
    # / 8 = 0.16236 -> 0.1624.
    assert card._calibration_section(y, proba, 10) == [
        "## Calibration",
        "",
        "Brier score 0.1624. Within each band of predicted probability, the share that "
        "actually churned:",
        "",
        "| predicted | customers | mean predicted | observed churn |",
        "|---|---:|---:|---:|",
        "| 0.0 to 0.1 | 1 | 0.050 | 0.000 |",
        "| 0.1 to 0.2 | 2 | 0.150 | 0.500 |",
        "| 0.3 to 0.4 | 1 | 0.350 | 0.000 |",
        "| 0.5 to 0.6 | 2 | 0.540 | 0.500 |",
        "| 0.9 to 1.0 | 2 | 0.975 | 1.000 |",
        "",
    ]


def test_calibration_counts_use_thousands_separators():
    """1,200 customers in one band read as 1,200."""
    proba = np.full(1200, 0.25)
    y = np.array([1] * 300 + [0] * 900)
    # Brier: 300 * 0.75 ** 2 + 900 * 0.25 ** 2 = 168.75 + 56.25 = 225; / 1200 = 0.1875.
    lines = card._calibration_section(y, proba, 10)
    assert lines[2].startswith("Brier score 0.1875.")
    assert lines[6:] == ["| 0.2 to 0.3 | 1,200 | 0.250 | 0.250 |", ""]


# --- Performance by group --------------------------------------------------------------

#      proba  churn  plan  senior
GROUP_ROWS = [
    (0.9, 1, "a", 0),
    (0.6, 0, "a", 1),
    (0.7, 1, "a", 0),
    (0.2, 0, "a", 0),
    (0.55, 1, "a", 1),
    (0.3, 0, "b", 0),
    (0.8, 0, "b", 1),
    (0.1, 0, "b", 0),
    (0.5, 1, None, 1),
    (0.45, 0, None, 0),
]
# plan = a: 5 rows, 3 churn (60 %). Positives .9 .7 .55 against negatives .6 .2: 5 of 6
#   pairs ordered right, AUC 0.833. Flagged at 0.5: .9 .6 .7 .55, 3 TP 1 FP: precision
#   0.750, recall 3/3.
# plan = b: 3 rows, no churn: AUC, precision and recall are undefined.
# plan missing: not a group.
# senior = 0: 6 rows, 2 churn (33.3 %); positives .9 .7 above every negative: AUC 1;
#   flagged .9 .7: precision 1, recall 1.
# senior = 1: 4 rows, 2 churn (50 %); positives .55 .5 below both negatives .6 .8: AUC 0;
#   all four flagged (0.5 included): precision 0.5, recall 1.
GROUP_TABLE = [
    "| plan = a | 5 | 60.0% | 0.833 | 0.750 | 1.000 |",
    "| plan = b | 3 | 0.0% | — | — | — |",
    "| plan missing | 2 | 50.0% | 1.000 | 1.000 | 1.000 |",
    "| senior = 0 | 6 | 33.3% | 1.000 | 1.000 | 1.000 |",
    "| senior = 1 | 4 | 50.0% | 0.000 | 0.500 | 1.000 |",
]


def test_group_table_scores_each_group_and_leaves_single_class_groups_blank():
    """Each group is scored on its own rows only; a one-class group gets dashes.

    Dashes instead of a crash or a made-up AUC; rows with the value missing are a group
    of their own, last: left out, the groups did not add up to the test split.
    """
    proba, y, plan, senior = zip(*GROUP_ROWS, strict=True)
    test = pd.DataFrame({"plan": plan, "senior": senior, "churn": y})
    lines = card._slice_section(test, np.array(y), np.array(proba), ["plan", "senior"], 0.5)
    assert lines == [
        "## Performance by group",
        "",
        "Unequal numbers here mean the model serves some customers worse than others.",
        "",
        "| group | customers | churn rate | ROC AUC | precision | recall |",
        "|---|---:|---:|---:|---:|---:|",
        *GROUP_TABLE,
        "",
    ]


def test_group_values_of_mixed_types_are_listed_in_text_order():
    """A column mixing numbers and text gets its groups in text order, not a TypeError.

    Say a code column read as objects: sorting its values as they are compares int and str.
    """
    test = pd.DataFrame({"code": pd.Series([10, 2, "x", 2], dtype=object)})
    y = np.array([0, 1, 0, 0])
    lines = card._slice_section(test, y, np.full(4, 0.4), ["code"], 0.5)
    assert lines[6:] == [
        "| code = 10 | 1 | 0.0% | — | — | — |",
        "| code = 2 | 2 | 50.0% | 0.500 | 0.000 | 0.000 |",
        "| code = x | 1 | 0.0% | — | — | — |",
        "",
    ]


def test_a_group_value_with_a_pipe_stays_in_its_cell():
    """'| plan = a|b |' was a table row of one column more."""
    test = pd.DataFrame({"plan": ["a|b", "a|b"]})
    lines = card._slice_section(test, np.array([0, 1]), np.array([0.2, 0.8]), ["plan"], 0.5)
    assert lines[6] == "| plan = a\\|b | 2 | 50.0% | 1.000 | 1.000 | 1.000 |"


def test_a_numeric_slice_of_many_values_is_five_groups_in_numeric_order():
    """Tenure would be 73 one-customer rows in text order ('10' before '9'): five groups."""
    tenure = pd.Series([*range(73), np.nan])
    groups = card.slice_groups("tenure", tenure)
    assert [(label, int(rows.sum())) for label, rows in groups] == [
        ("tenure 0 to 14", 15),
        ("tenure 15 to 28", 14),
        ("tenure 29 to 43", 15),
        ("tenure 44 to 57", 14),
        ("tenure 58 to 72", 15),
        ("tenure missing", 1),
    ]
    assert sum(rows for _, rows in groups).tolist() == [1] * 74  # each row in one group
    few = pd.Series([float(v % 10) for v in range(40)])  # ten values: one group each
    assert [label for label, _ in card.slice_groups("k", few)][:3] == [
        "k = 0.0",
        "k = 1.0",
        "k = 2.0",
    ]
    assert len(card.slice_groups("k", few)) == 10
    # Half the rows one value: quantile edges repeat, and groups are merged, not refused.
    lumpy = pd.Series([1.5] * 50 + [float(v) for v in range(3, 23)])
    assert [label for label, _ in card.slice_groups("x", lumpy)] == ["x 1.5 to 8", "x 9 to 22"]
    # Text of many values: one group each (only numbers are cut into ranges).
    names = pd.Series([f"n{v:02d}" for v in range(12)])
    assert len(card.slice_groups("name", names)) == 12


# --- Intended use and the whole card ---------------------------------------------------


def test_limitations_name_the_raw_file_and_the_group_columns(params):
    """The limitations name the raw file used and the columns the group table covers."""
    configured = _with(params, "paths", raw="in/customers.csv")
    configured = _with(configured, "evaluate", slices=["plan", "region"])
    text = card._use_section(configured)
    assert text.startswith("## Intended use\n\nRank existing customers")
    assert "- Trained on one snapshot of customers (`in/customers.csv`); customers" in text
    assert "the group table (`plan`, `region`) shows where the model\n  does worse." in text


@pytest.mark.parametrize("seed", range(5))
def test_precision_recall_are_scikit_learns_to_the_bit(seed):
    from sklearn.metrics import precision_score, recall_score

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    flagged = rng.random(500) < 0.3
    precision, recall = card.precision_recall(y, flagged)
    assert precision == precision_score(y, flagged.astype(int))
    assert recall == recall_score(y, flagged.astype(int))


def test_precision_recall_are_zero_where_undefined():
    assert card.precision_recall(np.array([1, 0]), np.array([False, False])) == (0.0, 0.0)
    assert card.precision_recall(np.array([0, 0]), np.array([True, False])) == (0.0, 0.0)
    assert card.precision_recall(np.array([1, 0, 1]), np.array([True, True, False])) == (0.5, 0.5)


# --- In money: the campaign (issue 16) -----------------------------------------------------

# Four rows, two churners ranked first; each worth 1,000. With params.yaml's economics a
# contacted churner earns 0.3 * (1,000 - 100) - 50 = 220, a stayer costs 50: contacting the
# top 1, 2, 3, 4 rows earns 220, 440, 390, 340 -> per 1,000 customers 55,000, 110,000,
# 97,500, 85,000. Contact shares become rows by ceil(share * 4): 5-20 % -> 1, 30-50 % -> 2,
# 75 % -> 3, 100 % -> 4. Lift at 3 rows: (2/3) / (2/4) = 1.33.
MONEY_Y = np.array([1, 1, 0, 0])
MONEY_PROBA = np.array([0.9, 0.8, 0.3, 0.1])
MONEY_METRICS = {
    "profit": 1234.5,
    "lift_at_k": 2.0,
    "capture_at_k": 0.5,
    "decision/contact_share": 0.5,
    "decision/profit_low": 1000.0,
    "decision/profit_high": 1500.0,
    "decision/best_share": 0.5,
    "decision/max_profit": 110000.0,
    "decision/max_profit_low": 90000.0,
    "decision/max_profit_high": 120000.0,
}


def test_decision_section_states_the_policy_its_profit_and_the_curves(params):
    policy = {
        "policy": "max_profit",
        "threshold": 0.55,
        "folds": 5,
        "seed": 42,
        "train_profit_per_1000": 98765.4,
    }
    measured = Measured(policy, np.full(4, 1000.0), MONEY_METRICS)
    assert card._decision_section(MONEY_Y, MONEY_PROBA, measured, params) == [
        "### In money: the campaign",
        "",
        "Assumptions (`decision:` in params.yaml): a contact costs 50; an offer keeps a "
        "customer who would leave with probability 0.3, who is then worth 12 x "
        "`monthly_charges` less an incentive of 100.",
        "",
        "- Threshold **0.5500**, chosen by train for the highest profit on 5-fold out-of-fold "
        "predictions of the training split (seed 42; 98,765 per 1,000 there), never on the "
        "test split.",
        "- On the test split it contacts 50.0% of the customers; expected profit **1,234 per "
        f"1,000 customers** (95 % bootstrap interval —, {TOO_FEW}).",
        "- Contacting the riskiest 10% reaches 50.0% of the churners: lift 2.00.",
        "- In hindsight the best share on the test split is 50.0%, 110,000 per 1,000 "
        f"(—, {TOO_FEW}): the ceiling a threshold could reach here.",
        "",
        "Gains and profit by contact share, riskiest first (plots: `gains`, `lift`, `profit`):",
        "",
        "| contacted | churners reached | lift | profit per 1,000 |",
        "|---:|---:|---:|---:|",
        "| 5% | 50.0% | 2.00 | 55,000 |",
        "| 10% | 50.0% | 2.00 | 55,000 |",
        "| 20% | 50.0% | 2.00 | 55,000 |",
        "| 30% | 100.0% | 2.00 | 110,000 |",
        "| 40% | 100.0% | 2.00 | 110,000 |",
        "| 50% | 100.0% | 2.00 | 110,000 |",
        "| 75% | 100.0% | 1.33 | 97,500 |",
        "| 100% | 100.0% | 1.00 | 85,000 |",
        "",
    ]


def test_money_intervals_from_enough_rows_are_shown():
    enough = np.repeat(MONEY_Y, 10)
    assert card._interval(MONEY_METRICS, "decision/profit", enough) == "[1,000, 1,500]"
    assert card._interval(MONEY_METRICS, "decision/max_profit", enough) == "[90,000, 120,000]"
    assert card._interval(MONEY_METRICS, "decision/profit", MONEY_Y) == f"—, {TOO_FEW}"


def test_money_intervals_are_judged_on_the_rows_evaluate_bootstrapped(params):
    """12 churners in the split, a few in the ``ci_max_rows`` sample: no interval shown.

    The card judged "too few rows" on the whole split, while evaluate drew the money
    intervals from the sample; the same cap over every row shows them.
    """
    y = np.zeros(5000, dtype=int)
    y[np.arange(12) * 400 + 7] = 1
    held = int(y[stats.sample_rows(5000, 1000, 5)].sum())
    assert 1 <= held < 10  # the seeded draw itself, independent of the code under test
    proba = np.where(y == 1, 0.9, 0.1)
    measured = Measured({"policy": "fixed", "threshold": 0.5}, np.full(5000, 1.0), MONEY_METRICS)
    capped = _with(params, "evaluate", ci_max_rows=1000, seed=5)
    lines = card._decision_section(y, proba, measured, capped)
    assert lines[5].endswith(f"(95 % bootstrap interval —, {TOO_FEW}).")
    assert lines[7].endswith(f"(—, {TOO_FEW}): the ceiling a threshold could reach here.")
    whole = _with(params, "evaluate", ci_max_rows=5000, seed=5)
    lines = card._decision_section(y, proba, measured, whole)
    assert lines[5].endswith("(95 % bootstrap interval [1,000, 1,500]).")
    assert lines[7].endswith("([90,000, 120,000]): the ceiling a threshold could reach here.")


@pytest.mark.parametrize(
    ("threshold", "top_share", "said", "brief", "listed", "share"),
    [
        (0.99999, 0.004, "0.99999", "0.99999", "0.99999", "0.4%"),
        (0.00001, 0.125, "0.00001", "1e-05", "0.00001", "12.5%"),
        (0.5, 0.1, "0.5000", "0.5", "0.50", "10%"),
        (1.0, 1.0, "1.0000", "1", "1.00", "100%"),
    ],
)
def test_a_threshold_or_share_is_never_rounded_to_what_it_is_not(
    params, threshold, top_share, said, brief, listed, share
):
    """0.99999 read "Threshold 1" (a cut it does not make); a top share of 0.004 "0%"."""
    shared = _with(params, "decision", top_share=top_share)
    measured = Measured({"policy": "fixed", "threshold": threshold}, np.full(4, 1.0), MONEY_METRICS)
    lines = card._decision_section(MONEY_Y, MONEY_PROBA, measured, shared)
    assert lines[4].startswith(f"- Threshold **{said}**, ")
    assert lines[6].startswith(f"- Contacting the riskiest {share} reaches ")
    model = card._model_section(params, CONTRACT, threshold)
    assert f"- Decision threshold: {brief} (`models/decision.json`)." in model
    table = card._threshold_section(THRESHOLD_Y, THRESHOLD_PROBA, threshold)
    (used,) = [row for row in table if "(used)" in row]
    assert used.startswith(f"| {listed} (used) |")


def test_a_fixed_threshold_and_a_constant_value_are_said_as_such(params):
    constant = _with(params, "decision", value=750.0, value_column=None)
    measured = Measured({"policy": "fixed", "threshold": 0.3}, np.full(4, 750.0), MONEY_METRICS)
    lines = card._decision_section(MONEY_Y, MONEY_PROBA, measured, constant)
    assert lines[2].endswith("who is then worth 750 less an incentive of 100.")
    assert lines[4] == "- Threshold **0.3000**, fixed in params.yaml (`decision.threshold`)."


def test_a_threshold_of_three_decimals_shows_four():
    lines = card._threshold_section(THRESHOLD_Y, THRESHOLD_PROBA, 0.255)
    (used,) = [row for row in lines if "(used)" in row]
    assert used.startswith("| 0.2550 (used) |")


def test_the_cards_interval_sample_short_of_a_class_names_its_cap(params):
    """The card's bootstrap said the test labels held one class; the cap is what to raise."""
    configured = _with(params, "evaluate", ci_max_rows=1000, ci_resamples=100, seed=5)
    y = np.zeros(5000, dtype=int)
    y[[10, 2000, 4000]] = 1
    assert y[stats.sample_rows(5000, 1000, 5)].sum() == 0  # seed 5 draws no churner
    proba = np.where(y == 1, 0.9, 0.1)
    scores = Scores(score(y, proba, 0.5), score(y, np.full(5000, 0.5), 0.5))
    with pytest.raises(ChurnError) as err:
        card._metrics_section(y, proba, scores, configured, 0.5)
    assert str(err.value) == (
        "params.yaml: evaluate.ci_max_rows: the seeded sample of 1,000 of 5,000 rows holds 0 "
        "of the 3 rows of class 1, fewer than 1: raise evaluate.ci_max_rows"
    )


def test_a_chosen_threshold_shows_four_decimals_the_standard_ones_two():
    lines = card._threshold_section(THRESHOLD_Y, THRESHOLD_PROBA, 0.2634)
    assert [line.split(" |")[0] for line in lines[6:12]] == [
        "| 0.2634 (used)",
        "| 0.30",
        "| 0.40",
        "| 0.50",
        "| 0.60",
        "| 0.70",
    ]
