"""Integration: the stage ``main()`` functions chained in a temp dir, in one process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from churn.core import entry, io
from churn.core.contract import read_contract
from churn.stages import evaluate, featurize, prepare, train
from conftest import REPO
from synthetic import CUSTOM_DATA, make_custom_dataset

STAGES = (prepare.main, featurize.main, train.main, evaluate.main)


def setup_workdir(workdir: Path, params: dict, raw: pd.DataFrame) -> None:
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    raw_path = workdir / params["paths"]["raw"]
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    raw.to_csv(raw_path, index=False)


def run_all(workdir: Path, monkeypatch) -> dict:
    monkeypatch.chdir(workdir)
    for main in STAGES:
        assert entry.run(main) == 0, main.__module__
    return json.loads(Path("reports/metrics.json").read_text())


def test_full_telco_meets_the_quality_floor(tmp_path, monkeypatch, params_dict, telco):
    setup_workdir(tmp_path, params_dict, telco)
    metrics = run_all(tmp_path, monkeypatch)
    assert metrics["roc_auc"] >= 0.80
    assert metrics["roc_auc"] - metrics["baseline"]["roc_auc"] > 0.25
    assert metrics["average_precision"] > metrics["baseline"]["average_precision"] + 0.25
    assert metrics["log_loss"] < metrics["baseline"]["log_loss"]
    assert metrics["brier"] < metrics["baseline"]["brier"]

    preds = pd.read_csv(tmp_path / "reports/predictions.csv")
    test = io.read_parquet(tmp_path / "data/prepared/test.parquet")
    assert len(preds) == 1409
    assert preds["id"].tolist() == test.index.tolist()
    assert preds["label"].tolist() == test["churn"].tolist()
    model = io.read_pickle(tmp_path / "models/model.pkl")
    features = test.drop(columns="churn")
    np.testing.assert_array_equal(
        preds["probability"].to_numpy(), model.predict_proba(features)[:, 1]
    )

    importance = json.loads((tmp_path / "reports/plots/custom/importance.json").read_text())
    assert len(importance) == 10
    assert [row["importance"] for row in importance] == sorted(
        (row["importance"] for row in importance), reverse=True
    )
    assert {row["feature"] for row in importance} <= set(features.columns)


@pytest.mark.parametrize("model", ["random_forest", "hist_gradient_boosting"])
def test_other_models_chain_on_a_sample(tmp_path, monkeypatch, params_dict, telco, model):
    params_dict["train"]["model"] = model
    params_dict["evaluate"]["importance_repeats"] = 1
    setup_workdir(tmp_path, params_dict, telco.sample(2000, random_state=0))
    metrics = run_all(tmp_path, monkeypatch)
    assert metrics["roc_auc"] > 0.78
    assert metrics["baseline"]["roc_auc"] == 0.5


def test_own_dataset_needs_only_params(tmp_path, monkeypatch, params_dict, custom_dataset):
    params_dict["paths"]["raw"] = "data/raw/accounts.csv"
    params_dict["data"] = dict(CUSTOM_DATA)
    params_dict["evaluate"]["slices"] = ["plan"]  # the model card's groups are columns too
    params_dict["decision"]["value_column"] = "usage_minutes"  # so is the customer value
    setup_workdir(tmp_path, params_dict, custom_dataset)
    metrics = run_all(tmp_path, monkeypatch)
    assert metrics["roc_auc"] > 0.7
    contract = read_contract(tmp_path / "data/prepared/contract.json")
    assert (contract.target, contract.positive_label, contract.id) == ("status", "left", "account")
    assert contract.numeric == ("usage_minutes", "support_calls")
    assert contract.categorical == ("plan", "region")
    preds = pd.read_csv(tmp_path / "reports/predictions.csv")
    assert len(preds) == 120
    assert preds["id"].str.match(r"A\d{5}$").all()
    assert (
        preds["label"].sum()
        == (custom_dataset.set_index("account").loc[preds["id"], "status"] == "left").sum()
    )


def run_stage(stage: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "churn.stages", stage],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_missing_raw_file_fails_in_one_line_before_any_work(tmp_path, params_dict):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_dict))
    result = run_stage("prepare", tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        "error: data/raw/wa_churn.csv: file not found "
        "(run the stage that makes it, or `dvc pull`)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_bad_param_fails_in_one_line(tmp_path, params_dict, telco):
    params_dict["train"]["n_estimtors"] = 5
    setup_workdir(tmp_path, params_dict, telco.head(50))
    result = run_stage("prepare", tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: params.yaml: train.n_estimtors: unknown key (allowed: ")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "data/prepared").exists()


def test_the_chosen_threshold_never_reads_a_test_row(tmp_path, monkeypatch, params_dict):
    """Poisoned test rows (labels flipped, numbers scrambled) leave the threshold unchanged.

    train chooses ``max_profit`` on out-of-fold predictions of the training split; the
    test split only measures it. A second run is byte-identical (seeded folds).
    """
    params_dict["paths"]["raw"] = "data/raw/accounts.csv"
    params_dict["data"] = dict(CUSTOM_DATA)
    params_dict["evaluate"]["slices"] = ["plan"]
    params_dict["decision"]["value_column"] = "usage_minutes"
    setup_workdir(tmp_path, params_dict, make_custom_dataset(1200))
    run_all(tmp_path, monkeypatch)
    recorded = Path("models/decision.json").read_bytes()
    assert json.loads(recorded)["policy"] == "max_profit"
    test_path = Path("data/prepared/test.parquet")
    test = io.read_parquet(test_path)
    poisoned = test.assign(
        status=1 - test["status"],
        usage_minutes=test["usage_minutes"].to_numpy()[::-1] * 7,
        support_calls=test["support_calls"].to_numpy()[::-1],
    )
    io.write_parquet(test_path, poisoned)
    assert entry.run(train.main) == 0
    assert Path("models/decision.json").read_bytes() == recorded
    # The metrics measure the recorded threshold on the (poisoned) test rows.
    assert entry.run(evaluate.main) == 0
    metrics = json.loads(Path("reports/metrics.json").read_text())
    assert metrics["decision"]["threshold"] == json.loads(recorded)["threshold"]


def test_evaluate_writes_the_decision_metrics_and_curves(tmp_path, monkeypatch, params_dict):
    params_dict["paths"]["raw"] = "data/raw/accounts.csv"
    params_dict["data"] = dict(CUSTOM_DATA)
    params_dict["evaluate"]["slices"] = ["plan"]
    params_dict["decision"].update(value_column=None, value=500.0, threshold=0.4, top_share=0.2)
    setup_workdir(tmp_path, params_dict, make_custom_dataset(1200))
    metrics = run_all(tmp_path, monkeypatch)
    assert json.loads(Path("models/decision.json").read_text()) == {
        "policy": "fixed",
        "threshold": 0.4,
    }
    preds = pd.read_csv("reports/predictions.csv")
    y, proba = preds["label"].to_numpy(), preds["probability"].to_numpy()
    assert (preds["value"] == 500.0).all()
    # By hand: the top 20 % (ceil), and the contacted rows at or above 0.4.
    k = int(np.ceil(0.2 * len(y)))
    top = np.argsort(-proba, kind="stable")[:k]
    assert metrics["capture_at_k"] == pytest.approx(y[top].sum() / y.sum())
    assert metrics["lift_at_k"] == pytest.approx(y[top].mean() / y.mean())
    d = params_dict["decision"]
    rows = y * d["retention_rate"] * (500.0 - d["incentive_cost"]) - d["contact_cost"]
    assert metrics["profit"] == pytest.approx(1000 * np.mean(rows * (proba >= 0.4)))
    assert (
        metrics["decision"]["profit_low"] < metrics["profit"] < metrics["decision"]["profit_high"]
    )
    assert metrics["decision"]["contact_share"] == pytest.approx(np.mean(proba >= 0.4))
    curve = np.r_[0.0, np.cumsum(rows[np.argsort(-proba, kind="stable")])]
    assert metrics["decision"]["best_share"] == np.argmax(curve) / len(y)
    assert metrics["decision"]["max_profit"] == pytest.approx(curve.max() / len(y) * 1000)
    plots = Path("reports/plots/custom")
    gains = json.loads((plots / "gains.json").read_text())
    assert (gains[0], gains[-1]) == (
        {"contact_share": 0.0, "churners_reached": 0.0},
        {"contact_share": 1.0, "churners_reached": 1.0},
    )
    assert len(json.loads((plots / "lift.json").read_text())) == 100
    assert json.loads((plots / "profit.json").read_text())[-1]["profit_per_1000"] == (
        pytest.approx(1000 * rows.mean())
    )
    card = Path("reports/model_card.md").read_text()
    assert "- Threshold **0.4000**, fixed in params.yaml (`decision.threshold`)." in card
