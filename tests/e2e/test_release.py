"""End to end: releases as git tags in a temporary repo with a local DVC remote."""

import hashlib
import json
import pickle
import re

import pytest
import yaml

from .conftest import free_port, reproduced_copy, sh

pytestmark = pytest.mark.e2e


def release(repo, *args: str, check: bool = False):
    return sh(repo, "python", "-m", "churn", "release", *args, check=check, PYTHONPATH="src")


def refused(repo, *args: str) -> str:
    result = release(repo, *args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.strip()


def hand_over(repo, tag: str) -> dict[str, str]:
    """Run release.yml's "Hand the files to publish" step for ``tag``; its outputs."""
    workflow = yaml.safe_load((repo / ".github/workflows/release.yml").read_text())
    step = next(s for s in workflow["jobs"]["verify"]["steps"] if s.get("id") == "files")
    outputs = repo.parent / "github-output"
    outputs.write_text("")
    back = sh(repo, "git", "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    if back == "HEAD":
        back = sh(repo, "git", "rev-parse", "HEAD").stdout.strip()
    sh(repo, "git", "checkout", "-q", f"{tag}^{{commit}}")  # as actions/checkout leaves it
    sh(repo, "dvc", "checkout", "-q", "--force")
    try:
        sh(
            repo,
            "bash",
            "--noprofile",
            "--norc",
            "-eo",
            "pipefail",
            "-c",
            step["run"],
            TAG=tag,
            GITHUB_OUTPUT=str(outputs),
            PYTHONPATH="src",
        )
    finally:
        (repo / "notes.md").unlink(missing_ok=True)
        sh(repo, "git", "checkout", "-q", back)
        sh(repo, "dvc", "checkout", "-q", "--force")
    return dict(line.split("=", 1) for line in outputs.read_text().splitlines())


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
        == "error: VERSION '1.0': expected MAJOR.MINOR.PATCH, e.g. 1.0.0 (each part 0 or up "
        "to 6 digits without a leading zero; a leading v is allowed)"
    )

    assert release(repo, "create", "1.0.0", check=True).stdout == "churn-model@v1.0.0\n"
    message = sh(repo, "git", "tag", "-l", "--format=%(contents)", "churn-model@v1.0.0").stdout
    assert message.startswith("churn-model v1.0.0\n\nroc_auc 0.8418 (floor 0.8); first release\n")
    assert "  roc_auc: 0.8418\n" in message
    assert "  brier: 0.1381\n" in message

    shown = json.loads(sh(repo, "gto", "show", "--json").stdout)
    assert shown["churn-model"]["version"] == "v1.0.0"

    assert refused(repo, "create", "1.0.0") == "error: version v1.0.0 is already released"


class _Trap:
    """Unpickling this creates a file: the proof that code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def churn(repo, *args: str, **env: str):
    # Bounded: a serve that wrongly loaded the model would otherwise run until stopped.
    command = ["timeout", "120", "python", "-m", "churn", *args]
    return sh(repo, *command, check=False, PYTHONPATH="src", **env)


def test_the_tag_records_the_md5_and_verify_and_gate_check_it(repo):
    tag = "churn-model@v1.0.0"
    md5 = hashlib.md5((repo / "models/model.pkl").read_bytes()).hexdigest()  # noqa: S324
    message = sh(repo, "git", "tag", "-l", "--format=%(contents)", tag).stdout
    assert re.findall(r"^model-md5: (\S+)$", message, re.MULTILINE) == [md5]
    assert release(repo, "verify", tag, check=True).stdout == f"{md5}\n"
    assert release(repo, "gate", tag, check=True).stdout == (
        "roc_auc 0.8418 (floor 0.8); first release\n"
    )
    # Tags made by hand, around `make release`: no md5, no metrics, or forged metrics.
    forged = message.replace("  roc_auc: 0.8418", "  roc_auc: 0.9999")
    for name, text in [("churn-model@v7.0.0", "by hand\n"), ("churn-model@v8.0.0", forged)]:
        sh(repo, "git", "tag", "-a", "-m", text, name)
    try:
        assert refused(repo, "gate", "churn-model@v7.0.0") == (
            "error: churn-model@v7.0.0: its message has no single 'model-md5: <hex>' line"
        )
        assert refused(repo, "verify", "churn-model@v7.0.0") == (
            "error: churn-model@v7.0.0: its message has no single 'model-md5: <hex>' line"
        )
        assert refused(repo, "gate", "churn-model@v8.0.0").startswith(
            "error: churn-model@v8.0.0: records roc_auc 0.9999, but metrics.json has 0.841"
        )
    finally:
        sh(repo, "git", "tag", "-d", "churn-model@v7.0.0", "churn-model@v8.0.0")
    assert refused(repo, "gate", "--", "--output=x") == (
        "error: TAG '--output=x': expected churn-model@vX.Y.Z or churn-model#<stage>#N"
    )
    assert not (repo / "x").exists()


def test_a_swapped_model_is_never_unpickled(repo, tmp_path):
    """A malicious pickle in place of the model: monitor, serve and verify refuse it unread."""
    model = repo / "models/model.pkl"
    good = model.read_bytes()
    trap = tmp_path / "code-ran"
    model.write_bytes(pickle.dumps(_Trap(str(trap))))
    try:
        runs = {
            "monitor": churn(repo, "monitor", "--input", "data/raw/wa_churn.csv", "--out", "m"),
            "serve": churn(repo, "serve", PORT=str(free_port())),
            "verify": churn(repo, "release", "verify"),
            "verify tag": churn(repo, "release", "verify", "churn-model@v1.0.0"),
        }
    finally:
        model.write_bytes(good)
    for name, result in runs.items():
        assert result.returncode in (1, 2), (name, result.stderr)
        assert result.stderr.splitlines()[-1].startswith("error: models/model.pkl: md5 "), name
        assert result.stderr.splitlines()[-1].endswith("in dvc.lock: refusing to unpickle it"), name
        assert "Traceback" not in result.stderr, name
    assert not trap.exists()
    assert not (repo / "m").exists()


def test_versions_must_increase(repo):
    sh(repo, "git", "commit", "-q", "--allow-empty", "-m", "later")
    assert refused(repo, "create", "0.9.0") == (
        "error: version v0.9.0 is not greater than the latest release v1.0.0"
    )
    assert refused(repo, "create", "v1.0.0") == "error: version v1.0.0 is already released"
    sh(repo, "git", "tag", "churn-model@v3.0.0")  # lightweight: no release, but the name
    try:
        assert refused(repo, "create", "3.0.0") == (
            "error: version v3.0.0: a tag that is no release (lightweight, or made by hand) of "
            "that name already exists"
        )
        assert refused(repo, "create", "2.0.0") == (
            "error: version v2.0.0 is not greater than v3.0.0, which a tag that is no release "
            "(lightweight, or made by hand) names"
        )
    finally:
        sh(repo, "git", "tag", "-d", "churn-model@v3.0.0")
    for bad in ("1.0.1234567", "1.0." + "9" * 5000, "1.0.0; touch x"):
        assert refused(repo, "create", bad).startswith(f"error: VERSION {bad[:12]!r}"[:-1])
    assert not (repo / "x").exists()


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
    # GTO's own line was cut mid-sentence and offered a --force flag churn has not.
    assert refused(repo, "promote", "1.0.0", "prod") == (
        "error: churn-model@v1.0.0 is already in stage prod"
    )
    # Named like a release, annotated, recording an md5, but on v1.0.0's commit: GTO
    # tags the stage, then fails (one version per commit); no stage tag is left behind.
    message = sh(repo, "git", "tag", "-l", "--format=%(contents)", "churn-model@v1.0.0").stdout
    sh(repo, "git", "tag", "-a", "-m", message, "churn-model@v1.0.5", "churn-model@v1.0.0^{}")
    try:
        assert "Multiple versions are not allowed on the same Git commit" in refused(
            repo, "promote", "1.0.5", "staging"
        )
        assert sh(repo, "git", "tag", "--list", "churn-model#staging#*").stdout == ""
    finally:
        sh(repo, "git", "tag", "-d", "churn-model@v1.0.5")
    sh(repo, "git", "tag", "-a", "-m", "by hand", "churn-model@v1.0.5", "churn-model@v1.0.0^{}")
    try:
        assert refused(repo, "promote", "1.0.5", "staging") == (
            "error: churn-model@v1.0.5: its message has no single 'model-md5: <hex>' line"
        )
    finally:
        sh(repo, "git", "tag", "-d", "churn-model@v1.0.5")
    assert refused(repo, "promote", "1.0.0", "prod-") == (
        "error: STAGE 'prod-': lowercase letters, digits and dashes, from a letter to a letter "
        "or digit, e.g. prod"
    )
    # The release workflow's hand-over step, run as GitHub runs it: for a stage tag it
    # names the release on the tag's commit (git tag --points-at did not peel the tag).
    for tag in ("churn-model#prod#1", "churn-model@v1.0.0"):
        assert hand_over(repo, tag)["version"] == "churn-model@v1.0.0"
    assert release(repo, "resolve", "churn-model#prod", check=True).stdout == (
        "churn-model@v1.0.0\n"
    )
    assert refused(repo, "resolve", "churn-model#prod!#9") == (
        "error: TAG 'churn-model#prod!#9': expected churn-model@vX.Y.Z or churn-model#<stage>#N"
    )
    # An annotated tag of a tree makes GTO fail on every tag with an AttributeError.
    sh(repo, "git", "tag", "-a", "-m", "by hand", "churn-model@v5.0.0", "HEAD^{tree}")
    try:
        assert refused(repo, "promote", "1.0.0", "staging") == (
            "error: churn-model@v5.0.0: a tag of a tree, not of a commit, and GTO cannot "
            "read the tags while it exists: git tag -d churn-model@v5.0.0"
        )
    finally:
        sh(repo, "git", "tag", "-d", "churn-model@v5.0.0")


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
        "error: dvc status is not clean (evaluate, train): stage(s) evaluate, train are stale: "
        "run dvc repro and commit"  # evaluate: its card states the train params
    )


def test_release_notes_add_tag_and_commit_to_the_card(repo):
    """The card as released, read at the tag through DVC: HEAD has moved on by now."""
    assert (
        sh(repo, "git", "rev-parse", "HEAD").stdout
        != sh(repo, "git", "rev-parse", "churn-model@v1.0.0^{commit}").stdout
    )
    (repo / "reports/model_card.md").write_text("# another commit's card\n")  # not the tag's
    notes = release(repo, "notes", "churn-model@v1.0.0", check=True).stdout
    commit = sh(repo, "git", "rev-list", "-n", "1", "churn-model@v1.0.0").stdout.strip()
    assert notes.startswith("# Model card: churn model\n")
    assert notes.endswith(f"## Release\n\n- Tag: `churn-model@v1.0.0`\n- Commit: `{commit}`\n")
    sh(repo, "dvc", "checkout", "-q", "--force")
    assert refused(repo, "notes", "v1.0.0") == (
        "error: TAG 'v1.0.0': expected churn-model@vX.Y.Z or churn-model#<stage>#N"
    )
    # Named like a release and nothing more: no notes, as verify and gate refuse it too.
    sh(repo, "git", "tag", "churn-model@v0.0.1", "churn-model@v1.0.0^{commit}")
    assert refused(repo, "notes", "churn-model@v0.0.1") == (
        "error: churn-model@v0.0.1: a lightweight tag; a release is an annotated tag with its md5"
    )
    # Annotated, with the model-md5 line, but not the md5 its dvc.lock records: no notes.
    sh(repo, "git", "tag", "-d", "churn-model@v0.0.1")
    message = f"by hand\n\nmodel-md5: {'0' * 32}\n"
    sh(repo, "git", "tag", "-a", "-m", message, "churn-model@v0.0.1", "churn-model@v1.0.0^{commit}")
    released = sh(repo, "git", "tag", "-l", "--format=%(contents)", "churn-model@v1.0.0").stdout
    md5 = re.findall(r"^model-md5: (\S+)$", released, re.MULTILINE)[0]
    assert refused(repo, "notes", "churn-model@v0.0.1") == (
        f"error: churn-model@v0.0.1: its message records model-md5 {'0' * 32}, but its dvc.lock "
        f"records {md5} for models/model.pkl: not made by make release"
    )
    sh(repo, "git", "tag", "-d", "churn-model@v0.0.1")
    sh(repo, "git", "tag", "churn-model@v0.0.1", "churn-model@v1.0.0^{commit}")


def test_one_version_per_commit_and_a_tag_of_a_blob_is_no_release(repo):
    sh(repo, "git", "checkout", "-q", "churn-model@v1.0.0")
    sh(repo, "dvc", "checkout", "-q")
    assert refused(repo, "create", "v1.0.2") == (
        "error: HEAD already carries churn-model@v0.0.1, churn-model@v1.0.0: one version per "
        "commit (GTO's rule); commit a change to release another"
    )
    assert sh(repo, "git", "tag", "--list", "churn-model@v1.0.2").stdout == ""
    assert json.loads(sh(repo, "gto", "show", "--json").stdout)  # GTO still reads every tag
    # Annotated, with an md5, named like a later release, but of a file: no release.
    blob = sh(repo, "git", "rev-parse", "HEAD:params.yaml").stdout.strip()
    message = f"by hand\n\nmodel-md5: {'0' * 32}\n"
    sh(repo, "git", "tag", "-a", "-m", message, "churn-model@v1.0.1", blob)
    sh(repo, "git", "commit", "-q", "--allow-empty", "-m", "the same model, a commit of its own")
    assert release(repo, "create", "v1.0.2", check=True).stdout == "churn-model@v1.0.2\n"
    assert sh(repo, "git", "tag", "--list", "churn-model@vv*").stdout == ""
    md5 = release(repo, "verify", "churn-model@v1.0.2", check=True).stdout
    assert (
        f"model-md5: {md5}"
        in sh(repo, "git", "tag", "-l", "--format=%(contents)", "churn-model@v1.0.2").stdout
    )
    assert release(repo, "gate", "churn-model@v1.0.2", check=True).stdout.startswith(
        "roc_auc 0.8418 (floor 0.8); vs churn-model@v1.0.0: +0.0000"
    )
    assert refused(repo, "notes", "churn-model@v1.0.1") == "error: churn-model@v1.0.1: no such tag"


def test_a_shallow_clone_cannot_release(repo, tmp_path):
    """Its earlier releases are not there: the version order and the gate would be skipped."""
    shallow = tmp_path / "shallow"
    sh(tmp_path, "git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow))
    said = refused(shallow, "create", "9.0.0")
    assert said == (
        "error: this clone is shallow: a release (the version order, the gate) needs the "
        "whole history and its tags (git fetch --unshallow --tags)"
    )
    assert sh(shallow, "git", "tag", "--list", "churn-model@v9*").stdout == ""


def test_a_hand_made_version_below_the_latest_is_not_judged_as_a_first_release(repo):
    """v0.0.1 made by hand had no release before it: a worse model passed as a first one."""
    latest = release(repo, "gate", "churn-model@v1.0.2", check=True)  # HEAD: v1.0.2's commit
    assert latest.returncode == 0
    message = sh(repo, "git", "tag", "-l", "--format=%(contents)", "churn-model@v1.0.2").stdout
    sh(repo, "git", "tag", "-a", "-m", message, "churn-model@v0.0.2")
    try:
        assert refused(repo, "gate", "churn-model@v0.0.2") == (
            "error: churn-model@v0.0.2: churn-model@v1.0.2 is a later version; the gate judges "
            "the latest release against the one before it, and churn release create makes no "
            "version below the latest"
        )
    finally:
        sh(repo, "git", "tag", "-d", "churn-model@v0.0.2")
