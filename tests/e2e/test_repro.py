"""End to end: `dvc repro` in fresh copies reproduces the committed dvc.lock, bit for bit."""

import json
import shutil
from pathlib import Path

import pytest

from .conftest import copy_repo, output_hashes, read_metrics, sh

pytestmark = pytest.mark.e2e


def test_fresh_copy_reproduces_the_committed_lock(reproduced):
    assert sh(reproduced, "git", "status", "--porcelain").stdout == ""
    assert "Data and pipelines are up to date." in sh(reproduced, "dvc", "status").stdout
    metrics = read_metrics(reproduced)
    assert metrics["roc_auc"] >= 0.83
    assert metrics["baseline"]["roc_auc"] == 0.5


def test_noop_repro_runs_nothing(reproduced):
    out = sh(reproduced, "dvc", "repro").stdout
    assert "Running stage" not in out
    assert out.count("didn't change, skipping") == 5


def test_two_copies_give_identical_outputs(reproduced, tmp_path):
    other = copy_repo(tmp_path / "repo")
    # A different thread count must not change a single byte.
    sh(other, "dvc", "repro", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    first, second = output_hashes(reproduced), output_hashes(other)
    assert sorted(first) == [
        "data/prepared/contract.json",
        "data/prepared/test.parquet",
        "data/prepared/train.parquet",
        "data/raw/wa_churn.csv",
        "models/decision.json",
        "models/featurizer.pkl",
        "models/model.pkl",
        "reports/metrics.json",
        "reports/model_card.md",
        "reports/plots/custom/gains.json",
        "reports/plots/custom/importance.json",
        "reports/plots/custom/lift.json",
        "reports/plots/custom/profit.json",
        "reports/plots/sklearn/calibration.json",
        "reports/plots/sklearn/confusion_matrix.json",
        "reports/plots/sklearn/precision_recall.json",
        "reports/plots/sklearn/roc.json",
        "reports/predictions.csv",
    ]
    assert first == second
    assert sh(other, "git", "status", "--porcelain").stdout == ""


def test_push_empty_pull_restores_identical_files(reproduced):
    before = output_hashes(reproduced)
    sh(reproduced, "dvc", "push")
    shutil.rmtree(reproduced / ".dvc" / "cache")
    for rel in before:
        (reproduced / rel).unlink()
    assert output_hashes(reproduced) == {}
    sh(reproduced, "dvc", "pull")
    assert output_hashes(reproduced) == before
    assert "Data and pipelines are up to date." in sh(reproduced, "dvc", "status").stdout


def test_metrics_and_plots_are_declared(reproduced):
    shown = json.loads(sh(reproduced, "dvc", "metrics", "show", "--json").stdout)
    workspace = shown[""]["data"]["reports/metrics.json"]["data"]
    assert workspace == read_metrics(reproduced)
    plots = json.loads(sh(reproduced, "dvc", "plots", "show", "--json").stdout)
    assert "errors" not in plots
    assert sorted(plots["data"]) == [
        "reports/plots/custom/gains.json",
        "reports/plots/custom/importance.json",
        "reports/plots/custom/lift.json",
        "reports/plots/custom/profit.json",
        "reports/plots/sklearn/calibration.json",
        "reports/plots/sklearn/confusion_matrix.json",
        "reports/plots/sklearn/precision_recall.json",
        "reports/plots/sklearn/roc.json",
    ]
    roc = plots["data"]["reports/plots/sklearn/roc.json"][0]["content"]["data"]["values"]
    assert roc[-1]["fpr"] == 1.0
    assert roc[-1]["tpr"] == 1.0


def test_bad_raw_file_under_dvc_repro_keeps_prepared_outputs(reproduced):
    before = output_hashes(reproduced)
    bad = Path(__file__).parents[1] / "data" / "bad" / "negative_tenure.csv"
    shutil.copyfile(bad, reproduced / "data/raw/incoming.csv")
    params = reproduced / "params.yaml"
    params.write_text(
        params.read_text().replace("raw: data/raw/wa_churn.csv", "raw: data/raw/incoming.csv")
    )
    result = sh(reproduced, "dvc", "repro", check=False)
    assert result.returncode != 0
    assert "  tenure: >= 0: 2 bad row(s) (row 4: -1, row 12: -12)" in result.stderr
    after = output_hashes(reproduced)
    assert after.pop("data/raw/incoming.csv")
    assert after == before
    sh(reproduced, "git", "checkout", "--", "params.yaml")
    (reproduced / "data/raw/incoming.csv").unlink()
    assert "Data and pipelines are up to date." in sh(reproduced, "dvc", "status").stdout
