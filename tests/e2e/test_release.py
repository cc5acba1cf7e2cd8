"""End to end: releases as git tags in a temporary repo with a local DVC remote."""

import hashlib
import json

import pytest

from .conftest import reproduced_copy, sh

pytestmark = pytest.mark.e2e


def release(repo, *args: str, check: bool = False):
    return sh(repo, "python", "-m", "churn", "release", *args, check=check, PYTHONPATH="src")


def refused(repo, *args: str) -> str:
    result = release(repo, *args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return reproduced_copy(tmp_path_factory, "release")


def test_refused_until_pushed_then_tagged_with_metrics(repo):
    assert refused(repo, "create", "1.0.0").startswith(
        "error: outputs are not on the default DVC remote ("
    )
    sh(repo, "dvc", "push")
    (repo / "notes.txt").write_text("scratch")
    assert refused(repo, "create", "1.0.0").startswith(
        "error: working tree is not clean (1 path(s), e.g. notes.txt)"
    )
    (repo / "notes.txt").unlink()
    assert (
        refused(repo, "create", "1.0")
        == "error: VERSION '1.0': expected MAJOR.MINOR.PATCH, e.g. 1.0.0"
    )

    assert release(repo, "create", "1.0.0", check=True).stdout == "churn-model@v1.0.0\n"
    message = sh(repo, "git", "tag", "-l", "--format=%(contents)", "churn-model@v1.0.0").stdout
    assert message.startswith("churn-model v1.0.0\n\nroc_auc 0.8418 (floor 0.8); first release\n")
    assert "  roc_auc: 0.8418\n" in message
    assert "  brier: 0.1381\n" in message

    shown = json.loads(sh(repo, "gto", "show", "--json").stdout)
    assert shown["churn-model"]["version"] == "v1.0.0"

    assert refused(repo, "create", "1.0.0") == "error: version v1.0.0 is already released"


def test_versions_must_increase(repo):
    sh(repo, "git", "commit", "-q", "--allow-empty", "-m", "later")
    assert refused(repo, "create", "0.9.0") == (
        "error: version v0.9.0 is not greater than the latest release v1.0.0"
    )


def test_promote_assigns_a_stage(repo):
    assert release(repo, "promote", "1.0.0", "prod", check=True).stdout == "churn-model#prod#1\n"
    tagged = sh(repo, "git", "rev-list", "-n", "1", "churn-model#prod#1").stdout
    assert tagged == sh(repo, "git", "rev-list", "-n", "1", "churn-model@v1.0.0").stdout
    shown = json.loads(sh(repo, "gto", "show", "churn-model", "--json").stdout)
    assert any(
        v["stages"] == ["prod"] for v in shown if v["version"] == "v1.0.0"
    ) or "prod" in json.dumps(shown)
    assert refused(repo, "promote", "9.9.9", "prod") == (
        "error: churn-model@v9.9.9 does not exist: make release VERSION=9.9.9 first"
    )


def test_fetching_by_tag_returns_the_recorded_model(repo, tmp_path):
    out = tmp_path / "model.pkl"
    sh(
        repo,
        "dvc",
        "get",
        str(repo),
        "models/model.pkl",
        "--rev",
        "churn-model@v1.0.0",
        "-o",
        str(out),
    )
    lock = sh(repo, "git", "show", "churn-model@v1.0.0:dvc.lock").stdout
    assert f"md5: {hashlib.md5(out.read_bytes()).hexdigest()}" in lock  # noqa: S324
    assert release(repo, "verify", check=True).stdout.strip() in lock
    by_name = tmp_path / "artifact.pkl"
    sh(
        repo,
        "dvc",
        "artifacts",
        "get",
        str(repo),
        "churn-model",
        "--rev",
        "v1.0.0",
        "-o",
        str(by_name),
    )
    assert by_name.read_bytes() == out.read_bytes()


def test_floor_and_worse_than_previous_are_refused(repo):
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("  minimum: 0.80 ", "  minimum: 0.95 "))
    sh(repo, "git", "commit", "-q", "-am", "raise the floor")
    assert refused(repo, "create", "1.1.0") == (
        "error: roc_auc 0.8418 is below the release floor 0.95 (release.minimum in params.yaml)"
    )
    text = (
        params.read_text()
        .replace("  minimum: 0.95 ", "  minimum: 0.80 ")
        .replace("    C: 1.0", "    C: 0.001")
    )
    params.write_text(text)
    sh(repo, "dvc", "repro")
    sh(repo, "git", "commit", "-q", "-am", "a much weaker model")
    sh(repo, "dvc", "push")
    assert refused(repo, "create", "1.1.0").startswith(
        "error: roc_auc is significantly worse than churn-model@v1.0.0 (-0.0091, 95 % CI [-0.0"
    )


def test_unreproduced_commit_is_refused(repo):
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("    C: 0.001", "    C: 0.0105"))
    sh(repo, "git", "commit", "-q", "-am", "change a param, forget dvc repro")
    assert refused(repo, "create", "1.2.0").startswith(
        "error: dvc status is not clean (train): run dvc repro and commit"
    )


def test_release_notes_add_tag_and_commit_to_the_card(repo):
    notes = release(repo, "notes", "churn-model@v1.0.0", check=True).stdout
    commit = sh(repo, "git", "rev-list", "-n", "1", "churn-model@v1.0.0").stdout.strip()
    assert notes.startswith("# Model card: churn model\n")
    assert notes.endswith(f"## Release\n\n- Tag: `churn-model@v1.0.0`\n- Commit: `{commit}`\n")
