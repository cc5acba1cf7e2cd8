"""End to end: experiments with `dvc exp run -S` in real repos (own data: test_own_data.py)."""

import json

import pytest

from .conftest import read_metrics, reproduced_copy, sh

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return reproduced_copy(tmp_path_factory, "exp")


def test_exp_run_changes_metrics_and_leaves_the_commit_alone(repo):
    head = sh(repo, "git", "rev-parse", "HEAD").stdout
    committed_lock = sh(repo, "git", "show", "HEAD:dvc.lock").stdout
    before = read_metrics(repo)

    out = sh(
        repo, "dvc", "exp", "run", "-n", "weak-c", "-S", "train.logistic_regression.C=0.001"
    ).stdout
    # Only the stages that read train.* rerun.
    assert "Running stage 'train'" in out
    assert "Running stage 'evaluate'" in out
    assert "Running stage 'prepare'" not in out
    assert "Running stage 'featurize'" not in out

    after = read_metrics(repo)
    assert after["roc_auc"] != before["roc_auc"]
    # The prior baseline ranks no one; its thresholded metrics follow the threshold the new
    # model's training chose (decision.threshold: max_profit), the rest cannot move.
    ranked = ("roc_auc", "average_precision", "log_loss", "brier")
    assert {k: after["baseline"][k] for k in ranked} == {k: before["baseline"][k] for k in ranked}
    assert after["decision"]["threshold"] != before["decision"]["threshold"]

    diff = json.loads(sh(repo, "dvc", "metrics", "diff", "HEAD", "--json").stdout)
    change = diff["reports/metrics.json"]["roc_auc"]
    assert change == {
        "old": before["roc_auc"],
        "new": after["roc_auc"],
        "diff": pytest.approx(after["roc_auc"] - before["roc_auc"]),
    }

    shown = json.loads(sh(repo, "dvc", "exp", "show", "--json").stdout)
    exps = {
        exp["name"]: exp
        for entry in shown
        for exp in [entry, *(e for run in entry.get("experiments") or [] for e in run["revs"])]
    }
    weak = exps["weak-c"]["data"]
    assert weak["params"]["params.yaml"]["data"]["train"]["logistic_regression"]["C"] == 0.001
    assert weak["metrics"]["reports/metrics.json"]["data"]["roc_auc"] == after["roc_auc"]

    assert sh(repo, "git", "rev-parse", "HEAD").stdout == head
    assert sh(repo, "git", "show", "HEAD:dvc.lock").stdout == committed_lock


def test_a_dearer_contact_changes_the_chosen_threshold(repo):
    """`dvc exp run -S decision.contact_cost=...` moves the threshold train chooses up.

    train (it chooses the threshold) and evaluate rerun: fewer customers are worth a dearer call.
    """
    before = read_metrics(repo)
    out = sh(repo, "dvc", "exp", "run", "-n", "dear", "-S", "decision.contact_cost=150.0").stdout
    assert "Running stage 'train'" in out
    assert "Running stage 'featurize'" not in out
    after = read_metrics(repo)
    assert after["roc_auc"] == before["roc_auc"]  # the same model
    assert after["decision"]["threshold"] > before["decision"]["threshold"]
    assert after["profit"] != before["profit"]
    sh(repo, "git", "checkout", "--", "params.yaml", "dvc.lock")
    sh(repo, "dvc", "checkout", "-q")


def test_a_report_only_decision_key_reruns_evaluate_alone(repo):
    out = sh(repo, "dvc", "exp", "run", "-n", "top-20", "-S", "decision.top_share=0.2").stdout
    assert "Running stage 'evaluate'" in out
    assert "Running stage 'train'" not in out
    sh(repo, "git", "checkout", "--", "params.yaml", "dvc.lock")
    sh(repo, "dvc", "checkout", "-q")


def test_typo_in_a_param_is_refused_by_name(repo):
    # DVC itself refuses `-S` on an unknown key; `+key` (or a hand edit) adds it,
    # and then the stage refuses it before doing any work.
    result = sh(repo, "dvc", "exp", "run", "-S", "+train.logistic_regression.c=0.5", check=False)
    assert result.returncode != 0
    assert (
        "params.yaml: train.logistic_regression.c: unknown key (allowed: C, max_iter)"
        in result.stderr
    )
    sh(repo, "git", "checkout", "--", "params.yaml")


def test_a_queued_experiment_runs_the_code_of_its_own_copy(repo):
    # .venv has this checkout's churn installed; a queued experiment runs in a temporary
    # copy of `repo` and must run THAT copy's stage code (PYTHONPATH=src in dvc.yaml).
    evaluate = repo / "src/churn/stages/evaluate.py"
    original = evaluate.read_text()
    anchor = "    for name, value in scores.model.items():\n"
    marker = '    live.log_metric("code_of_the_copy", 1.0, plot=False)\n'
    assert anchor in original
    evaluate.write_text(original.replace(anchor, marker + anchor, 1))
    sh(repo, "git", "commit", "-qam", "evaluate: log a marker metric")
    try:
        sh(repo, "dvc", "exp", "run", "--queue", "-n", "marked", "-S", "evaluate.seed=7")
        sh(repo, "dvc", "exp", "run", "--run-all", "-j", "1")
        shown = json.loads(sh(repo, "dvc", "exp", "show", "--json").stdout)
        exps = {
            exp["name"]: exp
            for entry in shown
            for run in entry.get("experiments") or []
            for exp in run["revs"]
        }
        metrics = exps["marked"]["data"]["metrics"]["reports/metrics.json"]["data"]
        assert metrics["code_of_the_copy"] == 1.0
        assert metrics["roc_auc"] > 0.8
    finally:
        sh(repo, "git", "reset", "-q", "--hard", "HEAD~1")
        sh(repo, "dvc", "checkout", "--force")
