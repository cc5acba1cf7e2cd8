"""End to end: `make report`'s module in real git repos with real DVC runs."""

import re
import shutil

import pytest

from .conftest import copy_repo, read_metrics, reproduced_copy, sh

pytestmark = pytest.mark.e2e


def report(repo, *extra: str) -> str:
    sh(
        repo,
        "python",
        "-m",
        "churn",
        "report",
        "--base",
        "main",
        "--out",
        "report.md",
        *extra,
        PYTHONPATH="src",
    )
    return (repo / "report.md").read_text()


def branch_with(repo, name: str, *sets: str) -> None:
    # Every edit here changes the file's size: an edit of equal size within the same
    # second as git's index can look unchanged to git ("racy git") and leak across
    # checkouts.
    sh(repo, "git", "checkout", "-q", "-b", name, "main")
    for assignment in sets:
        key, value = assignment.split("=")
        text = (repo / "params.yaml").read_text()
        leaf = key.rsplit(".", 1)[-1]
        text, n = re.subn(rf"(\n\s+{leaf}: )[^\s#]+", rf"\g<1>{value}", text, count=1)
        assert n == 1, key
        (repo / "params.yaml").write_text(text)
    sh(repo, "dvc", "repro")
    sh(repo, "git", "commit", "-q", "-am", f"try {' '.join(sets)}")


def back_to_main(repo) -> None:
    """Leave the shared repo on main with main's outputs, for the next test."""
    sh(repo, "git", "checkout", "-q", "-f", "main")
    sh(repo, "dvc", "checkout", "-q")


@pytest.fixture(scope="module")
def main_repo(tmp_path_factory):
    return reproduced_copy(tmp_path_factory, "report")


def test_changed_param_shows_numbers_params_and_verdict(main_repo):
    repo = main_repo
    branch_with(repo, "weaker", "train.logistic_regression.C=0.001")
    text = report(repo)
    back_to_main(repo)
    assert text.startswith("## Model report\n")
    assert "| `train.logistic_regression.C` | `1.0` | `0.001` |" in text
    assert re.search(r"\| roc_auc \| 0\.8418 \| 0\.8327 \| -0\.0091 \| -1\.09 % \| 🔴 ↓ \|", text)
    assert re.search(r"\| recall \| 0\.7861 \| 0\.\d{4} \|", text)  # at each side's threshold
    row = re.search(r"\| roc_auc \| (-0\.\d+) \| \[(-?0\.\d+), (-?0\.\d+)\] \| (.+?) \|", text)
    diff, low, high, verdict = float(row[1]), float(row[2]), float(row[3]), row[4]
    assert low < diff < high
    assert verdict == ("❌ worse" if high < 0 else "⚪ no significant change")
    assert "Paired bootstrap, 1000 resamples" in text
    assert text.count("```mermaid") == 3
    assert "stale" not in text


def test_a_dearer_contact_moves_the_threshold_and_the_report_prices_it(main_repo):
    """`decision.contact_cost` up: a higher threshold, and the report says what it is worth.

    Profit head vs base, both valued at the new cost, with a verdict.
    """
    repo = main_repo
    before = read_metrics(repo)
    branch_with(repo, "dear-contact", "decision.contact_cost=150.0")
    after = read_metrics(repo)
    text = report(repo)
    back_to_main(repo)
    assert after["decision"]["threshold"] > before["decision"]["threshold"]
    assert after["decision"]["contact_share"] < before["decision"]["contact_share"]
    assert "| `decision.contact_cost` | `50.0` | `150.0` |" in text
    verdict = re.search(r"\*\*Verdict against main:\*\* (.+)\.", text)[1]
    assert re.search(r"profit (better|worse|no significant change), lift_at_k ", verdict)
    row = re.search(r"\| profit \| ([+-][\d,.]+) \| \[([+-][\d,.]+), ([+-][\d,.]+)\] \|", text)
    diff, low, high = (float(v.replace(",", "")) for v in row.groups())
    assert low <= diff <= high
    # At the dearer contact, the old (lower) threshold contacts too many: the new one earns more.
    assert diff > 0
    # lift_at_k ranks the same model: no change at all.
    assert "| lift_at_k | +0.0000 | [+0.0000, +0.0000] | ⚪ no significant change |" in text


def test_identical_model_is_no_significant_change(main_repo):
    repo = main_repo
    branch_with(repo, "more-importance", "evaluate.importance_repeats=10")
    text = report(repo)
    back_to_main(repo)
    assert "| `evaluate.importance_repeats` | `5` | `10` |" in text
    for metric in ("roc_auc", "average_precision", "log_loss", "brier"):
        assert f"| {metric} | +0.0000 | [+0.0000, +0.0000] | ⚪ no significant change |" in text


def test_same_commit_says_no_changes(main_repo):
    text = report(main_repo)
    if "**No changes**" not in text:  # say what differed
        from churn.core.integrity import lock_outputs
        from churn.ops.report import params_diff
        from churn.ops.results import load_base, load_head

        base, head = load_base(main_repo, "main"), load_head(main_repo)
        old, new = lock_outputs(base.lock), lock_outputs(head.lock)
        diff = {
            k: (old.get(k), new.get(k)) for k in set(old) | set(new) if old.get(k) != new.get(k)
        }
        status = sh(main_repo, "git", "status", "--porcelain").stdout
        pytest.fail(f"params {params_diff(base.params, head.params)} outs {diff} status {status!r}")


def test_stale_lock_is_called_out(main_repo):
    repo = main_repo
    sh(repo, "git", "checkout", "-q", "-b", "forgot-repro", "main")
    text = (repo / "params.yaml").read_text().replace("    C: 1.0", "    C: 0.25")
    (repo / "params.yaml").write_text(text)
    sh(repo, "git", "commit", "-q", "-am", "change C but do not reproduce")
    sh(repo, "dvc", "repro")  # what CI does
    out = report(repo)
    back_to_main(repo)
    assert "The committed `dvc.lock` is stale" in out
    assert "| `train.logistic_regression.C` | `1.0` | `0.25` |" in out


def test_main_without_metrics_has_no_baseline(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    # main as it was before the pipeline ever ran: no dvc.lock at all.
    sh(repo, "git", "rm", "-q", "dvc.lock")
    sh(repo, "git", "commit", "-q", "-m", "no results yet")
    sh(repo, "git", "checkout", "-q", "-b", "first-pr")
    sh(repo, "dvc", "repro")
    text = report(repo)
    assert "**No baseline on main**" in text
    assert re.search(r"\| roc_auc \| 0\.84\d\d \|", text)
    assert text.count("```mermaid") == 3


def test_base_outputs_missing_everywhere_are_reproduced_in_a_worktree(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    branch_with(repo, "weaker", "train.logistic_regression.C=0.001")  # computes everything
    # main's outputs are neither in the cache nor on a remote.
    shutil.rmtree(repo / ".dvc" / "cache")
    sh(repo, "dvc", "commit", "-f", "-q")  # puts the branch's own outputs back in the cache
    text = report(repo)
    assert "| `train.logistic_regression.C` | `1.0` | `0.001` |" in text
    assert re.search(r"\| roc_auc \| 0\.8418 \| 0\.8327 \|", text)
    assert sh(repo, "git", "worktree", "list").stdout.count("\n") == 1  # cleaned up
    # A base whose reproduction gives other bytes than its dvc.lock records (here: a lock
    # edited by hand; elsewhere other library versions) is results main never had.
    sh(repo, "git", "checkout", "-q", "main")
    lock = (repo / "dvc.lock").read_text()
    md5 = re.search(r"path: reports/predictions.csv\n\s+hash: md5\n\s+md5: (\w+)", lock)[1]
    (repo / "dvc.lock").write_text(lock.replace(md5, "0" * 32) + "# edited by hand\n")
    sh(repo, "git", "commit", "-q", "-am", "a lock that recorded other predictions")
    sh(repo, "git", "checkout", "-q", "weaker")
    sh(repo, "dvc", "checkout", "-q", "--force")
    text = report(repo)
    assert "**Cannot compare with main** (could not get main's outputs" in text
    assert "gave other bytes than its dvc.lock records" in text
    assert sh(repo, "git", "worktree", "list").stdout.count("\n") == 1
