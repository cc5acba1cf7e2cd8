import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from dvclive import Live

from churn.core.decision import Measured
from churn.core.errors import ChurnError
from churn.core.stats import HIGHER_IS_BETTER, sample_rows, score
from churn.stages import evaluate
from churn.stages.evaluate import baseline_proba, log_reports, predictions_frame, write_reports

Y = np.array([0, 0, 1, 1, 0, 1, 0, 0])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.05])


def test_score_matches_hand_computed_values():
    m = score(Y, P, threshold=0.5)
    assert set(m) == set(HIGHER_IS_BETTER)
    # 3 positives x 5 negatives = 15 pairs; 0.35 loses to 0.4 and 0.6 -> 13/15.
    assert m["roc_auc"] == pytest.approx(13 / 15)
    # predicted positive at 0.5: 0.8, 0.9, 0.6 -> TP=2, FP=1, FN=1, TN=4
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["brier"] == pytest.approx(np.mean((P - Y) ** 2))
    expected_ll = -np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P))
    assert m["log_loss"] == pytest.approx(expected_ll)


def test_perfect_and_threshold_edge():
    m = score(np.array([0, 1]), np.array([0.0, 1.0]), threshold=0.5)
    assert (m["roc_auc"], m["brier"], m["accuracy"]) == (1.0, 0.0, 1.0)
    # probability equal to the threshold counts as flagged
    assert score(np.array([0, 1]), np.array([0.2, 0.5]), threshold=0.5)["recall"] == 1.0


def test_baseline_is_the_training_prior():
    proba = baseline_proba(np.array([1, 0, 0, 0]), 3)
    assert proba.tolist() == [0.25, 0.25, 0.25]
    m = score(Y, baseline_proba(Y, len(Y)), threshold=0.5)
    assert m["roc_auc"] == 0.5
    assert m["recall"] == 0.0
    assert m["accuracy"] == pytest.approx(5 / 8)


@pytest.mark.parametrize("y", [[0, 1], [1, 0, 0, 1, 1, 1, 0], [0] * 994 + [1] * 7043])
def test_baseline_is_dummy_classifiers_prior_to_the_bit(y):
    from sklearn.dummy import DummyClassifier

    y = np.array(y)
    dummy = DummyClassifier(strategy="prior").fit(np.zeros((len(y), 1)), y)
    expected = dummy.predict_proba(np.zeros((5, 1)))[:, 1]
    assert baseline_proba(y, 5).tobytes() == expected.tobytes()


def test_predictions_frame_keeps_ids_and_order():
    frame = predictions_frame(
        pd.Index([7, 3], name="rownames"),
        np.array([1, 0]),
        np.array([0.7, 0.2]),
        np.array([120.0, 30.0]),
    )
    assert frame.to_dict("list") == {
        "id": [7, 3],
        "label": [1, 0],
        "probability": [0.7, 0.2],
        "value": [120.0, 30.0],
    }


def measured(params, y, proba, threshold=0.5) -> Measured:
    """A fixed-threshold policy measured as evaluate does, every customer worth 100."""
    value = np.full(len(y), 100.0)
    metrics = evaluate.decision_metrics(
        y, proba, value, threshold, params.decision, params.evaluate
    )
    return Measured({"policy": "fixed", "threshold": threshold}, value, metrics)


def reports_of(reports, y, proba, baseline, top, params):
    return write_reports(
        reports,
        y,
        proba,
        baseline,
        top,
        params.evaluate,
        measured(params, y, proba),
        params.decision,
    )


PLOTS = [
    "plots/custom/gains.json",
    "plots/custom/importance.json",
    "plots/custom/lift.json",
    "plots/custom/profit.json",
    "plots/sklearn/calibration.json",
    "plots/sklearn/confusion_matrix.json",
    "plots/sklearn/precision_recall.json",
    "plots/sklearn/roc.json",
]


def test_write_reports_makes_metrics_and_plots(tmp_path, params, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reports = tmp_path / "reports"
    (reports / "plots").mkdir(parents=True)
    (reports / "plots" / "stale.json").write_text("{}")
    top = [{"feature": "tenure", "importance": 0.05}, {"feature": "contract", "importance": 0.02}]
    reports_of(reports, Y, P, baseline_proba(Y, len(Y)), top, params)
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["roc_auc"] == pytest.approx(13 / 15)
    assert metrics["baseline"]["roc_auc"] == 0.5
    assert metrics["decision"]["threshold"] == 0.5
    files = sorted(str(p.relative_to(reports)) for p in reports.rglob("*") if p.is_file())
    assert files == ["metrics.json", *PLOTS]
    importance = json.loads((reports / "plots/custom/importance.json").read_text())
    assert importance == top
    confusion = json.loads((reports / "plots/sklearn/confusion_matrix.json").read_text())
    assert len(confusion) == len(Y)


def test_summary_table_lists_model_and_baseline():
    from churn.ops.summary import metrics_table

    metrics = {**score(Y, P, 0.5), "baseline": score(Y, baseline_proba(Y, len(Y)), 0.5)}
    lines = metrics_table(metrics).splitlines()
    assert lines[0].split() == ["metric", "model", "baseline", "better"]
    assert lines[1].split() == ["roc_auc", f"{13 / 15:.4f}", "0.5000", "higher"]
    assert lines[3].split()[0] == "log_loss"
    assert lines[3].split()[-1] == "lower"
    assert len(lines) == 1 + len(HIGHER_IS_BETTER)


# Six test rows: three churners; one probability sits exactly on the 0.5 threshold.
Y6 = np.array([0, 0, 1, 0, 1, 1])
P6 = np.array([0.1, 0.3, 0.4, 0.5, 0.7, 0.9])
BASE6 = np.full(6, 0.5)
TOP = [{"feature": "tenure", "importance": 0.25}, {"feature": "contract", "importance": 0.125}]
# By hand. Flagged at >= 0.5: 0.5 (no churn), 0.7, 0.9 -> TP 2, FP 1, FN 1 (0.4), TN 2.
# AUC: of 9 churner/stayer pairs only 0.4 < 0.5 is misordered -> 8/9. AP: ranked
# + + - + - -, precision at each churner 1, 1, 3/4 -> 11/12.
MODEL_METRICS = {
    "roc_auc": 8 / 9,
    "average_precision": 11 / 12,
    "log_loss": -(2 * math.log(0.9) + 2 * math.log(0.7) + math.log(0.5) + math.log(0.4)) / 6,
    "brier": (0.1**2 + 0.3**2 + 0.6**2 + 0.5**2 + 0.3**2 + 0.1**2) / 6,
    "precision": 2 / 3,
    "recall": 2 / 3,
    "f1": 2 / 3,
    "accuracy": 4 / 6,
}
# A constant 0.5 flags everyone and ranks no one.
BASELINE_METRICS = {
    "roc_auc": 0.5,
    "average_precision": 0.5,
    "log_loss": math.log(2),
    "brier": 0.25,
    "precision": 0.5,
    "recall": 1.0,
    "f1": 2 / 3,
    "accuracy": 0.5,
}


@pytest.fixture
def logged(tmp_path, monkeypatch, params):
    """log_reports into a Live that also writes dvc.yaml, so the plot settings can be read.

    Function-scoped on purpose: mutmut credits a call to the test whose setup made it, so a
    shared fixture would hide log_reports from every test but the first.
    """
    evaluate_params = params.evaluate.model_copy(update={"calibration_bins": 3})
    monkeypatch.chdir(tmp_path)
    with Live(dir="live", dvcyaml="dvc.yaml", save_dvc_exp=False, report=None) as live:
        returned = log_reports(live, Y6, P6, BASE6, TOP, evaluate_params, 0.5)
    return tmp_path, returned


def read_json(root: Path, name: str):
    return json.loads((root / "live" / name).read_text())


def test_log_reports_logs_model_and_baseline_metrics_once(logged):
    """Guards against wrong metric names or values, and model and baseline swapped.

    Also against a per-step metric history (plots/metrics) for what is one evaluation.
    """
    root, returned = logged
    assert returned.model == pytest.approx(MODEL_METRICS)
    assert returned.baseline == pytest.approx(BASELINE_METRICS)
    metrics = read_json(root, "metrics.json")
    assert metrics.pop("baseline") == pytest.approx(BASELINE_METRICS)
    assert metrics == pytest.approx(MODEL_METRICS)
    assert sorted(p.name for p in (root / "live" / "plots").iterdir()) == ["custom", "sklearn"]


def test_confusion_matrix_flags_at_or_above_the_threshold_as_integers(logged):
    """Guards against `>` for `>=` and against float flags in the confusion matrix.

    0.5 at threshold 0.5 is flagged; a flag of "1.0" would be a third class next to "1".
    """
    rows = read_json(logged[0], "plots/sklearn/confusion_matrix.json")
    predicted = ["0", "0", "0", "1", "1", "1"]
    assert rows == [{"actual": str(a), "predicted": p} for a, p in zip(Y6, predicted, strict=True)]


def test_calibration_uses_calibration_bins(logged):
    """Guards against the bin count falling back to scikit-learn's default of 5.

    3 bins split at 1/3 and 2/3: {0.1, 0.3} no churn, {0.4, 0.5} one of two, {0.7, 0.9} both.
    """
    rows = read_json(logged[0], "plots/sklearn/calibration.json")["calibration"]
    assert rows == [
        {"prob_true": 0.0, "prob_pred": pytest.approx(0.2)},
        {"prob_true": 0.5, "prob_pred": pytest.approx(0.45)},
        {"prob_true": 1.0, "prob_pred": pytest.approx(0.8)},
    ]


def test_curves_plot_the_model_probabilities_and_importance_the_top_rows(logged):
    """Guards against plotting the baseline or the 0/1 flags instead of the probabilities."""
    root = logged[0]
    curve = read_json(root, "plots/sklearn/precision_recall.json")["precision_recall"]
    assert [row["threshold"] for row in curve] == P6.tolist()
    assert read_json(root, "plots/custom/importance.json") == TOP


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("sklearn/roc.json", {"title": "ROC (test)"}),
        ("sklearn/precision_recall.json", {"title": "Precision-recall (test)"}),
        ("sklearn/confusion_matrix.json", {"title": "Confusion matrix at threshold 0.5"}),
        ("sklearn/calibration.json", {"title": "Calibration (test)"}),
        (
            "custom/importance.json",
            {
                "template": "bar_horizontal_sorted",
                "x": "importance",
                "y": "feature",
                "title": "Permutation importance (ROC AUC drop, test)",
            },
        ),
    ],
)
def test_plot_titles_axes_and_template(logged, path, expected):
    """Guards against dvclive's generic titles and an importance plot DVC cannot draw.

    What `dvc plots show` renders: our titles; the bar chart needs its axes and template.
    """
    dvcyaml = yaml.safe_load((logged[0] / "dvc.yaml").read_text())
    plots = {key: config for entry in dvcyaml["plots"] for key, config in entry.items()}
    config = plots[f"live/plots/{path}"]
    if path.startswith("custom/"):
        assert config == expected
    else:
        assert config["title"] == expected["title"]


def test_write_reports_touches_nothing_outside_reports(tmp_path, params, monkeypatch):
    """Guards against a missing parent dir failing the stage and against litter in the cwd.

    Run from the repo root, a dvc.yaml written by dvclive would overwrite the project's own.
    """
    monkeypatch.chdir(tmp_path)
    reports_of(Path("out", "reports"), Y6, P6, BASE6, TOP, params)
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["out/reports/metrics.json", *(f"out/reports/{p}" for p in PLOTS)]


def test_dvclive_writes_into_a_hidden_temp_dir_inside_reports(tmp_path, params, monkeypatch):
    """Guards against staging dvclive output outside reports or under a visible name.

    In the system temp dir the final move is no longer a same-filesystem rename; a visible
    name is what a killed run would leave among the reports.
    """
    monkeypatch.chdir(tmp_path)
    seen: list[Path] = []

    def spy(live, *args):
        seen.append(Path(live.dir))
        return log_reports(live, *args)

    monkeypatch.setattr(evaluate, "log_reports", spy)
    reports = tmp_path / "reports"
    reports_of(reports, Y6, P6, BASE6, TOP, params)
    [staging] = seen
    assert staging.parent == reports
    assert staging.name.startswith(".live-")
    assert not staging.exists()


def test_write_reports_saves_no_dvc_experiment(tmp_path, params, monkeypatch):
    """Guards against dvclive saving an experiment when the stage runs outside `dvc repro`.

    In a git repo with a commit, save_dvc_exp would commit the workspace to refs/exps.
    """
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "base"], check=True)
    (tmp_path / ".dvc").mkdir()  # a DVC project, as the stage's repo is
    monkeypatch.chdir(tmp_path)
    reports_of(tmp_path / "reports", Y6, P6, BASE6, TOP, params)
    refs = subprocess.run([*git, "for-each-ref", "refs/exps"], capture_output=True, text=True)
    assert (refs.returncode, refs.stdout) == (0, "")


def test_predict_rows_asks_blocks_of_at_most_rows_and_keeps_their_order():
    seen = []

    class Model:
        def predict_proba(self, part):
            seen.append(part.index.tolist())
            p = part["x"].to_numpy() / 10
            return np.column_stack([1 - p, p])

    features = pd.DataFrame({"x": np.arange(7.0)}, index=list("abcdefg"))
    proba = evaluate.predict_rows(Model(), features, rows=3)
    assert proba.tolist() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert seen == [["a", "b", "c"], ["d", "e", "f"], ["g"]]


def test_subsampled_plots_say_so_in_their_titles(tmp_path, monkeypatch, params):
    """A curve drawn on a sample names it: the reader must not take it for every test row."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    p = rng.random(3000)
    capped = params.evaluate.model_copy(update={"plot_max_rows": 1000})
    with Live(dir="live", dvcyaml="dvc.yaml", save_dvc_exp=False, report=None) as live:
        log_reports(live, y, p, np.full(3000, 0.5), TOP, capped, 0.5)
    dvcyaml = yaml.safe_load(Path("dvc.yaml").read_text())
    titles = {
        key.rsplit("/", 1)[-1]: config.get("title")
        for entry in dvcyaml["plots"]
        for key, config in entry.items()
    }
    assert titles["roc.json"] == "ROC (test, 1,000 of 3,000 rows)"
    assert titles["precision_recall.json"] == "Precision-recall (test, 1,000 of 3,000 rows)"
    assert (
        titles["confusion_matrix.json"] == "Confusion matrix at threshold 0.5 (1,000 of 3,000 rows)"
    )
    assert titles["calibration.json"] == "Calibration (test, 1,000 of 3,000 rows)"


def test_per_row_plots_draw_at_most_plot_max_rows(tmp_path, params, monkeypatch):
    """Metrics on every row; the confusion matrix's records and the curves on the sample."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    p = np.clip(y * 0.3 + rng.random(3000) * 0.7, 0, 1)
    capped = params.model_copy(
        update={"evaluate": params.evaluate.model_copy(update={"plot_max_rows": 1000})}
    )
    top = [{"feature": "x", "importance": 0.1}]
    metrics = reports_of(tmp_path / "reports", y, p, baseline_proba(y, 3000), top, capped)
    assert metrics.model["accuracy"] == score(y, p, 0.5)["accuracy"]
    plots = tmp_path / "reports" / "plots" / "sklearn"
    confusion = json.loads((plots / "confusion_matrix.json").read_text())
    assert len(confusion) == 1000
    rows = sample_rows(3000, 1000, capped.evaluate.seed)
    assert [r["actual"] for r in confusion] == y[rows].astype(str).tolist()
    flagged = (p[rows] >= 0.5).astype(int).astype(str)
    assert [r["predicted"] for r in confusion] == flagged.tolist()


def test_a_plot_sample_short_of_a_class_names_plot_max_rows(tmp_path, params, monkeypatch):
    """The ROC plot's rates were NaN, exit 0, when the sample drew no churner."""
    from churn.core.errors import ChurnError

    monkeypatch.chdir(tmp_path)
    y = np.zeros(5000, dtype=int)
    y[[10, 2000, 4000]] = 1
    capped = params.model_copy(
        update={"evaluate": params.evaluate.model_copy(update={"plot_max_rows": 1000, "seed": 5})}
    )
    assert y[sample_rows(5000, 1000, 5)].sum() == 0  # seed 5 draws no churner
    p = np.where(y == 1, 0.9, 0.1)
    top = [{"feature": "x", "importance": 0.1}]
    with pytest.raises(ChurnError) as err:
        reports_of(tmp_path / "reports", y, p, baseline_proba(y, 5000), top, capped)
    assert str(err.value) == (
        "params.yaml: evaluate.plot_max_rows: the seeded sample of 1,000 of 5,000 rows holds 0 "
        "of the 3 rows of class 1, fewer than 1: raise evaluate.plot_max_rows"
    )


# --- decision metrics (issue 16) -----------------------------------------------------------

# Five customers worth 100 each; an offer keeps a leaver with chance 0.5, a contact costs 10:
# a contacted churner earns 0.5 * 100 - 10 = 40, a stayer costs 10. Threshold 0.7 (one score
# sits on it) contacts the first two: (40 - 10) / 5 per customer = 6,000 per 1,000. The
# profit curve 0, 40, 30, 70, 60, 50 peaks at 3 contacts: share 0.6, 70 / 5 -> 14,000.
# The top 20 % is the first customer, a churner: capture 1/2, lift (1/1) / (2/5) = 2.5.
DY = np.array([1, 0, 1, 0, 0])
DP = np.array([0.9, 0.7, 0.6, 0.3, 0.1])
DV = np.full(5, 100.0)


def decision_params(params):
    return params.decision.model_copy(
        update={
            "retention_rate": 0.5,
            "contact_cost": 10.0,
            "incentive_cost": 0.0,
            "top_share": 0.2,
            "value_column": None,
        }
    )


def test_decision_metrics_by_hand(params):
    from churn.core.stats import decision_intervals

    chosen = decision_params(params)
    evaluation = params.evaluate.model_copy(update={"ci_resamples": 200, "seed": 3})
    got = evaluate.decision_metrics(DY, DP, DV, 0.7, chosen, evaluation)
    top = np.array([True, False, False, False, False])
    at_threshold = decision_intervals(
        DY, np.array([40_000.0, -10_000.0, 0, 0, 0]), top, resamples=200, seed=3
    )["profit"]
    at_best = decision_intervals(
        DY, np.array([40_000.0, -10_000.0, 40_000.0, 0, 0]), top, resamples=200, seed=3
    )["profit"]
    assert at_threshold != at_best
    assert got == {
        "lift_at_k": 2.5,
        "capture_at_k": 0.5,
        "profit": 6000.0,
        "decision/threshold": 0.7,
        "decision/contact_share": 0.4,
        "decision/profit_low": at_threshold[0],
        "decision/profit_high": at_threshold[1],
        "decision/best_share": 0.6,
        "decision/max_profit": 14000.0,
        "decision/max_profit_low": at_best[0],
        "decision/max_profit_high": at_best[1],
    }
    assert at_threshold[0] < at_threshold[1]
    assert at_best[0] < at_best[1]


def test_log_decision_logs_the_metrics_and_three_drawable_curves(tmp_path, monkeypatch, params):
    monkeypatch.chdir(tmp_path)
    metrics = {"profit": 6000.0, "decision/threshold": 0.7}
    with Live(dir="live", dvcyaml="dvc.yaml", save_dvc_exp=False, report=None) as live:
        evaluate.log_decision(live, DY, DP, DV, metrics, decision_params(params))
    assert read_json(tmp_path, "metrics.json") == {"profit": 6000.0, "decision": {"threshold": 0.7}}
    dvcyaml = yaml.safe_load((tmp_path / "dvc.yaml").read_text())
    plots = {key: config for entry in dvcyaml["plots"] for key, config in entry.items()}
    assert plots["live/plots/custom/gains.json"] == {
        "template": "simple",
        "x": "contact_share",
        "y": "churners_reached",
        "title": "Cumulative gains (test)",
    }
    assert plots["live/plots/custom/lift.json"] == {
        "template": "simple",
        "x": "contact_share",
        "y": "lift",
        "title": "Lift (test)",
    }
    assert plots["live/plots/custom/profit.json"] == {
        "template": "simple",
        "x": "contact_share",
        "y": "profit_per_1000",
        "title": "Expected campaign profit per 1,000 customers (test)",
    }
    profit = read_json(tmp_path, "plots/custom/profit.json")
    assert profit[60] == {"contact_share": 0.6, "profit_per_1000": 14000.0}
    assert read_json(tmp_path, "plots/custom/gains.json")[20] == {
        "contact_share": 0.2,
        "churners_reached": 0.5,
    }
    assert read_json(tmp_path, "plots/custom/lift.json")[19] == {"contact_share": 0.2, "lift": 2.5}


def test_write_reports_logs_the_customer_values(tmp_path, params, monkeypatch):
    """The profit curve is drawn with the measured policy's values, not any others."""
    monkeypatch.chdir(tmp_path)
    chosen = decision_params(params)
    metrics = evaluate.decision_metrics(DY, DP, DV, 0.7, chosen, params.evaluate)
    measured = Measured({"policy": "fixed", "threshold": 0.7}, DV, metrics)
    write_reports("reports", DY, DP, np.full(5, 0.4), TOP, params.evaluate, measured, chosen)
    profit = json.loads(Path("reports/plots/custom/profit.json").read_text())
    assert profit[60]["profit_per_1000"] == 14000.0


def test_decision_intervals_use_at_most_ci_max_rows(params):
    """Above ci_max_rows the profit interval is the bootstrap of the seeded subsample."""
    from churn.core import decision
    from churn.core.stats import decision_intervals

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 3000)
    proba = rng.random(3000)
    value = np.full(3000, 100.0)
    chosen = decision_params(params)
    evaluation = params.evaluate.model_copy(update={"ci_max_rows": 1000, "ci_resamples": 100})
    got = evaluate.decision_metrics(y, proba, value, 0.5, chosen, evaluation)
    gain, top = decision.policy_rows(y, proba, value, 0.5, chosen)
    rows = sample_rows(3000, 1000, evaluation.seed)
    expected = decision_intervals(
        y[rows], gain[rows], top[rows], resamples=100, seed=evaluation.seed
    )
    assert (got["decision/profit_low"], got["decision/profit_high"]) == expected["profit"]
    assert got["profit"] == gain.sum() / 3000  # the point estimate uses every row


@pytest.mark.parametrize(
    ("policy", "says"),
    [
        ({"policy": "max_profit", "threshold": "x"}, "threshold: Input should be a valid number"),
        ({"policy": "max_profit", "threshold": 1.5}, "threshold: Input should be less than"),
        ({"threshold": 0.5}, "policy: missing key"),
        ([0.5], "Input should be a valid dictionary"),
    ],
)
def test_a_decision_file_of_the_wrong_shape_is_one_line(policy, says):
    from churn.core.bundle import check_policy

    with pytest.raises(ChurnError) as err:
        check_policy(policy, "models/decision.json")
    assert str(err.value).startswith(f"models/decision.json: {says}")
    good = {"policy": "fixed", "threshold": 0.5, "profit_per_1000": 12.0}
    assert check_policy(good, "models/decision.json") is good  # read as written
