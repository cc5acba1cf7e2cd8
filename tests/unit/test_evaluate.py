import json

import numpy as np
import pandas as pd
import pytest

from churn.core.stats import HIGHER_IS_BETTER, score
from churn.stages.evaluate import baseline_proba, predictions_frame, write_reports

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


def test_predictions_frame_keeps_ids_and_order():
    frame = predictions_frame(
        pd.Index([7, 3], name="rownames"), np.array([1, 0]), np.array([0.7, 0.2])
    )
    assert frame.to_dict("list") == {"id": [7, 3], "label": [1, 0], "probability": [0.7, 0.2]}


def test_write_reports_makes_metrics_and_plots(tmp_path, params):
    reports = tmp_path / "reports"
    (reports / "plots").mkdir(parents=True)
    (reports / "plots" / "stale.json").write_text("{}")
    top = [{"feature": "tenure", "importance": 0.05}, {"feature": "contract", "importance": 0.02}]
    write_reports(reports, Y, P, baseline_proba(Y, len(Y)), top, params.evaluate)
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["roc_auc"] == pytest.approx(13 / 15)
    assert metrics["baseline"]["roc_auc"] == 0.5
    files = sorted(str(p.relative_to(reports)) for p in reports.rglob("*") if p.is_file())
    assert files == [
        "metrics.json",
        "plots/custom/importance.json",
        "plots/sklearn/calibration.json",
        "plots/sklearn/confusion_matrix.json",
        "plots/sklearn/precision_recall.json",
        "plots/sklearn/roc.json",
    ]
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
