"""core.integrity: md5s as DVC records them, lock look-ups, git, and the check before unpickling.

Git is always the real program, run in a throwaway repository; the tests run from
an empty directory outside it (``elsewhere``), so a call that forgets its ``cwd``
or ``root`` fails instead of silently asking the repository the tests live in.
"""

import hashlib
import locale
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from churn.core import integrity, io
from churn.core.errors import ChurnError
from churn.core.integrity import ModelBytes, ProgramMissing
from conftest import REPO

MODEL = "models/model.pkl"
RELEASED = {"weights": [1, 2, 3]}
GOOD = pickle.dumps(RELEASED)
GOOD_MD5 = hashlib.md5(GOOD).hexdigest()  # noqa: S324 (DVC's hash)
TAMPERED_MD5 = hashlib.md5(b"tampered").hexdigest()  # noqa: S324 (DVC's hash)
TAG = "churn-model@v1.0.0"
WRONG_TAG_MD5 = "churn-model@v2.0.0"  # its tag records another md5 than lock and model
NO_TAG_MD5 = "churn-model@v3.0.0"  # its tag message has no model-md5 line
BROKEN_YAML = (
    'not valid YAML (mapping values are not allowed here in "<unicode string>", '
    "line 1, column 5: a: b: c ^ (line: 1))"
)


def lock_of(md5: str | None, path: str = MODEL) -> dict:
    """A dvc.lock recording ``md5`` for ``path`` (none when None), beside another output."""
    outs = [{"path": path, **({"md5": md5} if md5 else {})}, {"path": "other", "md5": "x"}]
    return {"stages": {"train": {"outs": outs}}}


def lock_bytes(md5: str | None) -> bytes:
    return yaml.safe_dump(lock_of(md5)).encode()


# One tree per way a model can be (or fail to be) vouched for; each is a tag in `history`
# and, for the workspace tests, the files of the working directory.
TREES = {
    TAG: {MODEL: GOOD, "dvc.lock": lock_bytes(GOOD_MD5)},
    WRONG_TAG_MD5: {MODEL: GOOD, "dvc.lock": lock_bytes(GOOD_MD5), "v": b"2"},
    NO_TAG_MD5: {MODEL: GOOD, "dvc.lock": lock_bytes(GOOD_MD5), "v": b"3"},
    "no-md5": {MODEL: GOOD, "dvc.lock": lock_bytes(None)},
    "tampered": {MODEL: b"tampered", "dvc.lock": lock_bytes(GOOD_MD5)},
    "no-model": {"dvc.lock": lock_bytes(GOOD_MD5)},
    "broken-lock": {MODEL: GOOD, "dvc.lock": b"a: b: c\n"},
    "no-lock": {MODEL: GOOD},
}


TAG_MESSAGES = {
    TAG: f"churn-model v1.0.0\n\nTest metrics:\n  roc_auc: 0.8400\n\nmodel-md5: {GOOD_MD5}\n",
    WRONG_TAG_MD5: f"churn-model v2.0.0\n\nmodel-md5: {TAMPERED_MD5}\n",
    NO_TAG_MD5: "churn-model v3.0.0\n",
}


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def sh_git(repo: Path, *args: str) -> str:
    """The test's own git, to build a repository (never the code under test)."""
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    signing = ["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]
    return subprocess.run(
        ["git", *identity, *signing, *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


class History(NamedTuple):
    """The repository the `history` fixture builds."""

    root: Path
    shas: dict[str, str]  # tag -> the full hash of the commit it names


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    """A git repo with one annotated tag per tree in TREES, and a tag named ``-x``.

    The working directory is left with neither a dvc.lock nor a model, so anything
    read at a revision cannot come from the workspace. HEAD is the last tree, no-lock.
    """
    root = tmp_path_factory.mktemp("history")
    sh_git(root, "init", "-q")
    shas = {}
    for tag, files in TREES.items():
        sh_git(root, "rm", "-rq", "--ignore-unmatch", ".")
        write_tree(root, files)
        sh_git(root, "add", "-A")
        sh_git(root, "commit", "-q", "--allow-empty", "-m", tag)
        sh_git(root, "tag", "-a", "-m", TAG_MESSAGES.get(tag, f"release {tag}"), tag)
        shas[tag] = sh_git(root, "rev-parse", "HEAD").strip()
    # `git tag` refuses a name starting with a dash; a ref can still have one.
    sh_git(root, "update-ref", "refs/tags/-x", shas["no-md5"])
    sh_git(root, "tag", "churn-model@v4.0.0", shas["tampered"])  # lightweight
    # GTO's stage tags: #1 on the release whose tag disagrees, #2 (the newest) on the good one.
    sh_git(root, "tag", "-a", "-m", "prod", "churn-model#prod#1", shas[WRONG_TAG_MD5])
    sh_git(root, "tag", "-a", "-m", "prod", "churn-model#prod#2", shas[TAG])
    sh_git(root, "tag", "-a", "-m", "dev", "churn-model#dev#1", shas["no-md5"])
    sh_git(root, "rm", "-rq", ".")
    return History(root, shas)


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """Run from an empty directory that is neither a git nor a DVC repository."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_md5_matches_md5sum(tmp_path):
    # Known answers (md5sum of the same bytes), not computed by the code under test.
    assert integrity.md5_of(b"") == "d41d8cd98f00b204e9800998ecf8427e"
    (tmp_path / "f").write_bytes(b"training bytes")
    assert integrity.file_md5(tmp_path / "f") == "04ee6033369237668cf680003791080c"


def test_recorded_md5_finds_the_output_in_any_stage():
    lock = {"stages": {"a": {"outs": [{"path": "x", "md5": "1"}]}, "b": {"deps": []}}}
    assert integrity.recorded_md5(lock, "x") == "1"
    assert integrity.recorded_md5(lock, "y") is None
    assert integrity.recorded_md5({}, "x") is None


def test_tracked_files_lists_what_git_tracks_at_a_path_taken_literally(tmp_path, monkeypatch):
    sh_git(tmp_path, "init", "-q")
    (tmp_path / "reports").mkdir()
    for name in ("README.md", "reports/a.md", "reports/b c.md", "*.md", "-x.md", "untracked.md"):
        (tmp_path / name).write_text("x")
    sh_git(tmp_path, "add", "README.md", "reports", ":(literal)*.md", "--", "-x.md")
    monkeypatch.chdir(tmp_path)
    assert integrity.tracked_files("README.md") == ["README.md"]
    assert integrity.tracked_files(Path("reports")) == ["reports/a.md", "reports/b c.md"]
    assert integrity.tracked_files("*.md") == ["*.md"]  # a name, not a pattern
    assert integrity.tracked_files("-x.md") == ["-x.md"]  # a name, not an option
    assert integrity.tracked_files("untracked.md") == []
    assert integrity.tracked_files("missing") == []
    monkeypatch.chdir(tmp_path / "reports")
    assert integrity.tracked_files("a.md") == ["a.md"]  # relative to here, as git prints them


def test_tracked_files_outside_a_work_tree_are_none(elsewhere):
    (elsewhere / "README.md").write_text("x")
    assert integrity.tracked_files("README.md") == []


def test_recorded_md5_skips_other_outputs_and_names_the_path_however_written():
    lock = {
        "stages": {
            "a": {"outs": [{"path": "y", "md5": "2"}, {"path": "out/x", "md5": "1"}]},
            "b": "not a stage",
        }
    }
    assert integrity.recorded_md5(lock, "./out/x") == "1"
    assert integrity.recorded_md5(lock, "y") == "2"
    assert integrity.recorded_md5(lock, "out") is None


@pytest.mark.parametrize(
    "stages",
    [
        [1],
        {"a": [1]},
        {"a": {"outs": {"path": "x", "md5": "1"}}},
        {"a": {"outs": ["x"]}},
        {"a": {"outs": [{"path": "x", "md5": 1}]}},
        {"a": {"outs": [{"path": "x"}]}},
        {"a": "x"},
        {"a": {"outs": "x"}},
        {"a": {"outs": [{"path": "x", "md5": ["1"]}]}},
    ],
)
def test_recorded_md5_of_a_lock_in_another_shape_is_none(stages):
    """A lock at a revision may be hand-edited into anything: it records nothing, no traceback."""
    assert integrity.recorded_md5({"stages": stages}, "x") is None


def test_load_model_unpickles_what_the_lock_vouches_for(tmp_path):
    write_tree(tmp_path, TREES[TAG])
    model, checked = integrity.load_model(MODEL, root=tmp_path)
    assert model == RELEASED
    assert checked == ModelBytes(data=GOOD, md5=GOOD_MD5, path=MODEL, rev=None)


def test_the_default_root_is_the_current_directory(tmp_path, monkeypatch):
    """Serving runs from the project directory without naming it: "." must mean the cwd."""
    write_tree(tmp_path, TREES[TAG])
    monkeypatch.chdir(tmp_path)
    assert integrity.read_lock() == lock_of(GOOD_MD5)
    assert integrity.read_model_bytes(MODEL) == ModelBytes(GOOD, GOOD_MD5, MODEL, None)
    assert integrity.load_model(MODEL)[0] == RELEASED


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ("no-lock", "{root}/dvc.lock: file not found; cannot check the model before loading it"),
        ("broken-lock", "{root}/dvc.lock: " + BROKEN_YAML),
        ("no-md5", "dvc.lock records no md5 for models/model.pkl: refusing to unpickle it"),
        ("no-model", "models/model.pkl: file not found (run dvc repro or dvc pull)"),
        (
            "tampered",
            f"models/model.pkl: md5 {TAMPERED_MD5} does not match {GOOD_MD5} in dvc.lock: "
            "refusing to unpickle it",
        ),
    ],
)
def test_a_workspace_model_the_lock_does_not_vouch_for_is_refused(tmp_path, tree, message):
    """Never unpickle a file dvc.lock does not vouch for; say which file and why, on one line."""
    write_tree(tmp_path, TREES[tree])
    with pytest.raises(ChurnError) as err:
        integrity.load_model(MODEL, root=tmp_path)
    assert str(err.value) == message.format(root=tmp_path)


def test_dvc_lock_is_read_as_utf8_whatever_the_locale(tmp_path, ascii_locale):
    """DVC writes dvc.lock in UTF-8: a non-ASCII output path must not depend on the locale."""
    assert locale.getencoding() != "utf-8"
    lock = lock_of(GOOD_MD5, path="models/modèle.pkl")
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock, allow_unicode=True), "utf-8")
    assert integrity.read_lock(root=tmp_path) == lock


def test_committed_text_is_read_as_utf8_and_stray_bytes_named_on_one_line(tmp_path, ascii_locale):
    """The output of git is UTF-8 whatever the locale; a file with a stray byte is one line.

    Guards against decoding git's output by the locale (an ASCII one fails on any accent)
    and against a decode error escaping as a traceback where one line naming the file,
    its line and the byte is promised.
    """
    sh_git(tmp_path, "init", "-q")
    (tmp_path / "ok.yaml").write_bytes("name: modèle\n".encode())
    (tmp_path / "dvc.lock").write_bytes(b"schema: '2.0'\nstages: {}\n# caf\xe9\n")
    sh_git(tmp_path, "add", "-A")
    sh_git(tmp_path, "commit", "-q", "-m", "one")
    shown = integrity.git("show", "HEAD:ok.yaml", cwd=tmp_path)
    assert io.parse_yaml(shown, "HEAD:ok.yaml") == {"name": "modèle"}
    with pytest.raises(ChurnError) as err:
        integrity.read_lock("HEAD", root=tmp_path)
    assert str(err.value) == (
        "HEAD:dvc.lock: line 3: not UTF-8 (byte 0xe9); re-save the file as UTF-8"
    )


def test_a_failing_command_with_stray_bytes_in_its_message_is_one_line(history):
    """Git echoes a missing path in its error; stray bytes in it must not raise."""
    with pytest.raises(ChurnError) as err:
        integrity.git("show", f"{TAG}:caf\udce9.yaml", cwd=history.root)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"`git show {TAG}:caf")
    assert "caf\ufffd.yaml" in message


def test_load_model_at_a_tag_reads_the_lock_and_model_of_that_revision(history, elsewhere):
    """A released model is checked against the lock committed with it, read at the tag.

    Not the workspace's files (here there are none), not the cwd's repository.

    DVC reads a git-tracked file at a revision as it reads its outputs, so the committed
    model keeps the test free of a DVC cache.
    """
    model, checked = integrity.load_model(MODEL, rev=TAG, root=history.root)
    assert model == RELEASED
    assert checked == ModelBytes(data=GOOD, md5=GOOD_MD5, path=MODEL, rev=TAG)
    assert integrity.read_lock(TAG, root=history.root) == lock_of(GOOD_MD5)


@pytest.mark.parametrize(
    ("rev", "message"),
    [
        ("v9", "v9: no such git revision (a tag like churn-model@v1.0.0, or a commit)"),
        (
            "no-lock",
            "no-lock: its commit has no dvc.lock: no model of this pipeline",
        ),
        ("broken-lock", "broken-lock:dvc.lock: " + BROKEN_YAML),
        ("no-md5", "no-md5:dvc.lock records no md5 for models/model.pkl: refusing to unpickle it"),
        (  # "cannot read it through DVC (PathMissingError)" read as no such path
            "no-model",
            "no-model:models/model.pkl: in neither the DVC cache nor the remote: dvc pull, or "
            "dvc push where it was released",
        ),
        (
            "tampered",
            f"models/model.pkl: md5 {TAMPERED_MD5} does not match {GOOD_MD5} in "
            "tampered:dvc.lock: refusing to unpickle it",
        ),
    ],
)
def test_a_release_the_lock_does_not_vouch_for_is_refused(history, elsewhere, rev, message):
    """At a revision too: the message names the revision, the file and the reason, on one line."""
    with pytest.raises(ChurnError) as err:
        integrity.read_model_bytes(MODEL, rev=rev, root=history.root)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("rev", "commit"),
    [
        (TAG, TAG),  # an annotated tag: the commit it names, not the tag object
        ("HEAD", "no-lock"),
        ("-x", "no-md5"),  # a name starting with a dash is still a revision
        ("HEAD~1..HEAD", None),  # a range is two commits
        ("HEAD^{tree}", None),
        (f"{TAG}:dvc.lock", None),  # a blob
        ("v9", None),
        ("--output=hijacked", None),  # never an option
    ],
)
def test_only_a_name_of_one_commit_is_a_revision(history, elsewhere, rev, commit):
    """commit_of records which commit a model came from; is_revision guards read_lock."""
    expected = history.shas[commit] if commit else "unknown"
    assert integrity.commit_of(rev, cwd=history.root) == expected
    assert integrity.is_revision(rev, cwd=history.root) is (commit is not None)
    assert not (history.root / "hijacked").exists()
    assert not (elsewhere / "hijacked").exists()


def test_commit_of_defaults_to_head(history, elsewhere):
    assert integrity.commit_of(cwd=history.root) == history.shas["no-lock"]
    assert integrity.commit_of(cwd=elsewhere) == "unknown"  # not a repository


def test_without_git_the_commit_is_unknown_but_a_revision_is_an_error(tmp_path, monkeypatch):
    """The container image has no git: its metadata says "unknown".

    But asking for a released model must say git is missing, not that no such revision exists.
    """
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no git on PATH
    assert integrity.commit_of(cwd=tmp_path) == "unknown"
    message = "`git rev-parse --verify --quiet --end-of-options v1^{commit}`: "
    with pytest.raises(ProgramMissing) as err:
        integrity.read_lock("v1", root=tmp_path)
    assert str(err.value) == message + "No such file or directory"


def test_a_missing_program_is_one_line():
    with pytest.raises(ProgramMissing) as err:
        integrity.command("no-such-program-here", "--x")
    assert str(err.value) == "`no-such-program-here --x`: No such file or directory"


def test_a_command_returns_its_stdout_as_text():
    script = "import sys; print('out'); sys.stderr.write('noise')"
    assert integrity.command(sys.executable, "-c", script) == "out\n"


@pytest.mark.parametrize(
    ("script", "last"),
    [
        ("import sys; sys.stderr.write('warning: a\\nfatal: b\\n'); sys.exit(2)", "fatal: b"),
        ("print('usage: x'); print('see --help'); raise SystemExit(1)", "see --help"),
        ("import sys; print('out'); sys.stderr.write('fatal: err'); sys.exit(1)", "fatal: err"),
        ("raise SystemExit(3)", "exit 3"),
        ("print(); print('   '); raise SystemExit(4)", "exit 4"),
    ],
    ids=["stderr", "stdout-only", "stderr-first", "silent", "blank"],
)
def test_a_failed_command_is_one_line_its_last_line_of_output(script, last):
    """The user sees which command failed and its last word (stderr first), or its status."""
    with pytest.raises(ChurnError) as err:
        integrity.command(sys.executable, "-c", script)
    assert str(err.value) == f"`{sys.executable} -c {script}` failed: {last}"


def test_a_failed_command_with_a_multi_line_argument_is_still_one_line():
    """A tag message (-m) made the error eight lines long."""
    message = "churn-model v6.0.0\n\nroc_auc 0.84\n  roc_auc: 0.8418\n"
    with pytest.raises(ChurnError) as err:
        integrity.command(sys.executable, "-c", "raise SystemExit(5)", message)
    assert str(err.value) == (
        f"`{sys.executable} -c raise SystemExit(5) churn-model v6.0.0 ...` failed: exit 5"
    )
    assert "\n" not in str(err.value)
    long = integrity.shown_command(("git", "tag", "-m", "x" * 500))
    assert long == "git tag -m " + "x" * 189 + "... (511 characters)"


def test_git_failures_are_one_line(history, elsewhere):
    with pytest.raises(ChurnError) as err:
        integrity.git("show", "v9:dvc.lock", cwd=history.root)
    assert str(err.value) == "`git show v9:dvc.lock` failed: fatal: invalid object name 'v9'."
    assert integrity.git_or_none("show", "v9:dvc.lock", cwd=history.root) is None
    head = integrity.git_or_none("rev-parse", "HEAD", cwd=history.root)
    assert head == history.shas["no-lock"] + "\n"


# --- versions and model references: parsed before git sees them -----------------------

PART = st.one_of(st.just(0), st.integers(1, 999_999))


@given(PART, PART, PART, st.booleans())
def test_every_short_semver_parses_with_or_without_v(major, minor, patch, v):
    text = f"{'v' if v else ''}{major}.{minor}.{patch}"
    assert integrity.parse_version(text) == (major, minor, patch)
    assert integrity.version_text((major, minor, patch)) == text.removeprefix("v")


@given(st.text(max_size=30))
def test_anything_else_is_a_one_line_version_error(text):
    stripped = text.removeprefix("v")
    parts = stripped.split(".")
    valid = (
        len(parts) == 3
        and all(p.isascii() and p.isdigit() and len(p) <= 6 for p in parts)
        and all(p == "0" or not p.startswith("0") for p in parts)
    )
    if valid:
        assert integrity.version_text(integrity.parse_version(text)) == stripped
        return
    with pytest.raises(ChurnError) as err:
        integrity.parse_version(text)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("VERSION ")


@pytest.mark.parametrize(
    "text",
    [
        "1.0.1234567",
        "1234567.0.0",
        "01.0.0",
        "1.00.0",
        "vv1.0.2",
        "1.0.2 ",
        "1.0.0; touch x",
        "1.0.٣",
        "1.0",
        "1.0.0.0",
        "-1.0.0",
        "1.0.0-rc1",
        "",
    ],
)
def test_versions_out_of_the_strict_form_are_refused(text):
    with pytest.raises(ChurnError, match=r"expected MAJOR\.MINOR\.PATCH, e\.g\. 1\.0\.0 "):
        integrity.parse_version(text)


def test_a_5000_digit_version_is_one_short_line():
    text = "1.0." + "9" * 5000
    with pytest.raises(ChurnError) as err:
        integrity.parse_version(text)
    message = str(err.value)
    assert message.startswith("VERSION '1.0.99999")
    assert "... (5004 characters): expected MAJOR.MINOR.PATCH" in message
    assert len(message) < 200


@pytest.mark.parametrize(
    ("text", "kind", "artifact"),
    [
        ("churn-model@v1.0.0", "release", "churn-model"),
        ("other-model@v0.12.999999", "release", "other-model"),
        ("churn-model#prod", "stage", "churn-model"),
        ("other-model#prod#12", "stage", "other-model"),
        ("abcdef0", "commit", ""),
        ("0123456789abcdef0123456789abcdef01234567", "commit", ""),
    ],
)
def test_the_three_forms_of_a_model_ref(text, kind, artifact):
    assert integrity.parse_model_ref(text) == integrity.ModelRef(text, kind, artifact)


def test_tag_message_of_a_missing_tag_names_it(history):
    with pytest.raises(ChurnError, match=r"^churn-model@v9\.0\.0: no such tag$"):
        integrity.tag_message("churn-model@v9.0.0", cwd=history.root)


def test_latest_stage_tag_is_the_highest_assignment_number(tmp_path):
    """GTO's numbers compare as numbers (#10 is above #9, which text order inverts).

    Guards against a tag with a number GTO never writes (a leading zero) winning on its
    value, a lightweight tag (GTO skips it) counting, and a stage name that looks like
    an option being read as one.
    """
    sh_git(tmp_path, "init", "-q")
    sh_git(tmp_path, "commit", "-q", "--allow-empty", "-m", "one")
    for tag in ("churn-model#prod#9", "churn-model#prod#10", "churn-model#prod#0100"):
        sh_git(tmp_path, "tag", "-a", "-m", "gto", tag)
    sh_git(tmp_path, "tag", "-a", "-m", "gto", "churn-model#dev#11")
    sh_git(tmp_path, "tag", "churn-model#prod#12")  # lightweight: not GTO's
    assert integrity.latest_stage_tag("churn-model", "prod", cwd=tmp_path) == "churn-model#prod#10"
    with pytest.raises(ChurnError, match=r"^churn-model#staging: no such stage tag"):
        integrity.latest_stage_tag("churn-model", "staging", cwd=tmp_path)
    with pytest.raises(ChurnError, match=r"^-n#prod: no such stage tag"):
        integrity.latest_stage_tag("-n", "prod", cwd=tmp_path)


def test_a_stage_is_the_last_assigned_version_not_since_unassigned(tmp_path):
    """``gto unassign`` (a ``#prod!#N`` tag) takes a version out; the one before serves again."""
    sh_git(tmp_path, "init", "-q")
    for name in ("one", "two", "three"):
        sh_git(tmp_path, "commit", "-q", "--allow-empty", "-m", name)
        sh_git(tmp_path, "tag", name)

    def event(tag: str, commit: str) -> str:
        sh_git(tmp_path, "tag", "-a", "-m", "gto", tag, commit)
        return integrity.latest_stage_tag("churn-model", "prod", cwd=tmp_path)

    assert event("churn-model#prod#1", "one") == "churn-model#prod#1"
    assert event("churn-model#prod#2", "two") == "churn-model#prod#2"
    assert event("churn-model#prod!#3", "two") == "churn-model#prod#1"  # two unassigned
    assert event("churn-model#prod#4", "three") == "churn-model#prod#4"
    assert event("churn-model#prod#5", "one") == "churn-model#prod#5"  # one assigned again
    assert event("churn-model#prod!#6", "one") == "churn-model#prod#4"
    assert event("churn-model#staging!#7", "three") == "churn-model#prod#4"  # another stage
    assert event("churn-model#prod#8", "two") == "churn-model#prod#8"  # two assigned again
    event("churn-model#prod!#9", "two")
    with pytest.raises(ChurnError) as err:
        event("churn-model#prod!#10", "three")
    assert str(err.value) == (
        "churn-model#prod: no version is in stage prod now (churn-model#prod!#10 took the last out)"
    )


def test_a_deregistered_version_or_a_deprecated_artifact_is_in_no_stage(tmp_path):
    """`gto deprecate ARTIFACT VERSION` tags @vX.Y.Z!#N; `gto deprecate ARTIFACT` @deprecated."""
    sh_git(tmp_path, "init", "-q")
    for name in ("one", "two"):
        sh_git(tmp_path, "commit", "-q", "--allow-empty", "-m", name)
        sh_git(tmp_path, "tag", name)

    def event(tag: str, commit: str) -> str:
        sh_git(tmp_path, "tag", "-a", "-m", "gto", tag, commit)
        return integrity.latest_stage_tag("churn-model", "prod", cwd=tmp_path)

    sh_git(tmp_path, "tag", "-a", "-m", "gto", "churn-model@v1.0.1", "one")
    sh_git(tmp_path, "tag", "-a", "-m", "gto", "churn-model@v1.0.2", "two")
    assert event("churn-model#prod#3", "one") == "churn-model#prod#3"
    assert event("churn-model#prod#4", "two") == "churn-model#prod#4"
    assert event("churn-model@v1.0.2!#5", "two") == "churn-model#prod#3"  # two deregistered
    with pytest.raises(ChurnError) as err:
        event("churn-model@v1.0.1!#6", "one")
    assert str(err.value) == (
        "churn-model#prod: no version is in stage prod now "
        "(churn-model#prod#4's version is deregistered)"
    )
    with pytest.raises(ChurnError) as err:
        event("churn-model@deprecated#7", "two")
    assert str(err.value) == (
        "churn-model#prod: churn-model is deprecated (churn-model@deprecated#7)"
    )


def test_release_at_picks_the_highest_version_of_that_artifact(tmp_path):
    """Versions compare as numbers (v1.10.0 is above v1.9.0, which text order inverts).

    Guards against another artifact's tag on the same commit, a tag shaped like a
    release whose version is not X.Y.Z, which would make the comparison fail, and tags
    named like a release that record no model md5 (verify would refuse them).
    """
    sh_git(tmp_path, "init", "-q")
    sh_git(tmp_path, "commit", "-q", "--allow-empty", "-m", "one")
    for tag in ("churn-model@v1.9.0", "churn-model@v1.10.0", "other-model@v9.0.0"):
        sh_git(tmp_path, "tag", "-a", "-m", f"{tag}\n\nmodel-md5: {'0' * 32}", tag)
    sh_git(tmp_path, "tag", "churn-model@v1.2.3.4")
    # Named like releases, made by hand: no md5 recorded, or no message at all.
    sh_git(tmp_path, "tag", "-a", "-m", "by hand", "churn-model@v1.11.0")
    sh_git(tmp_path, "tag", "churn-model@v1.12.0")
    head = sh_git(tmp_path, "rev-parse", "HEAD").strip()
    assert integrity.release_at(head, "churn-model", cwd=tmp_path) == "churn-model@v1.10.0"
    assert integrity.release_at(head, "other-model", cwd=tmp_path) == "other-model@v9.0.0"
    with pytest.raises(ChurnError, match=r"carries no third-model@vX\.Y\.Z release tag"):
        integrity.release_at(head, "third-model", cwd=tmp_path)
    # An artifact that looks like an option stays a pattern: git never reads it as one.
    with pytest.raises(ChurnError, match=r"carries no -n@vX\.Y\.Z release tag"):
        integrity.release_at(head, "-n", cwd=tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        "--output=/tmp/x",
        "-x",
        "HEAD",
        "main",
        "HEAD~1",
        "churn-model@v1.0",
        "churn-model@vv1.0.0",
        "churn-model@v1.0.1234567",
        "churn-model#prod#0",
        "churn-model#prod#",
        "churn-model#Prod",
        "abcdef",  # 6 hex digits: too short to name a commit safely
        "ABCDEG0",
        "0123456789abcdef0123456789abcdef012345678",  # 41
        "churn-model@v1.0.0:dvc.lock",
        "churn-model@v1.0.0^{tree}",
        "churn-model@v1.0.0\n",
        "",
    ],
)
def test_any_other_model_ref_is_refused_before_git(text):
    with pytest.raises(ChurnError) as err:
        integrity.parse_model_ref(text)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("MODEL_REF ") or str(err.value).startswith("VERSION ")


@given(st.text(max_size=60))
def test_a_parsed_model_ref_never_looks_like_an_option_or_a_path(text):
    try:
        ref = integrity.parse_model_ref(text)
    except ChurnError as err:
        message = str(err)
    else:
        message = ""
        assert not ref.text.startswith("-")
        assert not {":", "/", "^", "~", " ", "\n"} & set(ref.text)
        assert ".." not in ref.text
    assert "\n" not in message


def test_the_md5_line_of_a_tag_message():
    md5 = "0123456789abcdef0123456789abcdef"
    assert integrity.md5_in_message(f"v1\n\nmodel-md5: {md5}\n") == md5
    assert integrity.md5_in_message("v1\n") is None
    assert integrity.md5_in_message(f"model-md5: {md5}\nmodel-md5: {md5}\n") is None  # twice
    assert integrity.md5_in_message(f" model-md5: {md5}\n") is None
    assert integrity.md5_in_message(f"model-md5: {md5.upper()}\n") is None


def test_a_release_ref_is_checked_against_its_tag_md5_too(history, elsewhere):
    model, _ = integrity.load_model(MODEL, rev=TAG, root=history.root)
    assert model == RELEASED
    assert integrity.release_tag_md5(TAG, cwd=history.root) == GOOD_MD5


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            WRONG_TAG_MD5,
            f"models/model.pkl: md5 {GOOD_MD5} does not match {TAMPERED_MD5} in the release "
            "tag: refusing to unpickle it",
        ),
        (NO_TAG_MD5, f"{NO_TAG_MD5}: its message has no single 'model-md5: <hex>' line"),
        (
            "churn-model@v4.0.0",
            "churn-model@v4.0.0: a lightweight tag; a release is an annotated tag with its md5",
        ),
        (
            "churn-model@v9.0.0",
            "churn-model@v9.0.0: no such git revision (a tag like churn-model@v1.0.0, or a commit)",
        ),
        (
            "churn-model#prod#1",
            f"models/model.pkl: md5 {GOOD_MD5} does not match {TAMPERED_MD5} in the release "
            "tag: refusing to unpickle it",
        ),
        ("churn-model#staging", "churn-model#staging: no such stage tag (make promote first)"),
        ("churn-model#prod#3", "churn-model#prod#3: no such stage tag"),
        ("churn-model#dev", "commit {no-md5} carries no churn-model@vX.Y.Z release tag"),
        (
            "--output=hijacked",
            "MODEL_REF '--output=hijacked': expected <artifact>@vX.Y.Z, <artifact>#<stage>[#N] "
            "or a commit hash (7-40 hex digits)",
        ),
    ],
)
def test_a_model_ref_its_tag_does_not_vouch_for_is_refused(history, elsewhere, ref, message):
    with pytest.raises(ChurnError) as err:
        integrity.load_model(MODEL, rev=ref, root=history.root)
    assert str(err.value) == message.replace("{no-md5}", history.shas["no-md5"][:12])
    assert not (history.root / "hijacked").exists()
    assert not (elsewhere / "hijacked").exists()


def test_a_stage_ref_loads_the_newest_assignment_and_a_commit_its_lock(history, elsewhere):
    model, checked = integrity.load_model(MODEL, rev="churn-model#prod", root=history.root)
    assert (model, checked.rev) == (RELEASED, "churn-model#prod#2")
    model, checked = integrity.load_model(MODEL, rev="churn-model#prod#2", root=history.root)
    assert model == RELEASED
    sha = history.shas[TAG]
    for commit in (sha, sha[:7], sha[:9].upper()):  # git takes either case
        model, checked = integrity.load_model(MODEL, rev=commit, root=history.root)
        assert (model, checked.rev) == (RELEASED, sha)
    # A branch named like the short hash names another commit; the hash is the commit's.
    other = history.shas[WRONG_TAG_MD5]
    sh_git(history.root, "branch", sha[:7], other)
    sh_git(history.root, "tag", sha[:8], other)
    try:
        for commit in (sha[:7], sha[:8]):
            assert integrity.load_model(MODEL, rev=commit, root=history.root)[1].rev == sha
    finally:
        sh_git(history.root, "branch", "-D", sha[:7])
        sh_git(history.root, "tag", "-d", sha[:8])


@pytest.mark.parametrize(
    ("output", "why"),
    [
        # DVC: the ERROR line, not the support banner after it.
        (
            "ERROR: failed to push data to the cloud - remote 'x' doesn't exist\n\nHaving any "
            "troubles? Hit us up at https://dvc.org/support, we are always happy to help!\n",
            "ERROR: failed to push data to the cloud - remote 'x' doesn't exist",
        ),
        # GTO: the cross-marked line, not "report it here" and the issues link.
        (
            "\N{CROSS MARK} Unexpected error: . is not a git repository\nPlease report it here "
            "running with '--traceback' flag: \n<https://github.com/iterative/gto/issues>\n",
            "\N{CROSS MARK} Unexpected error: . is not a git repository",
        ),
        ("warning: a\nerror: b\nerror: c\n", "error: b"),  # the first error line
        ("some detail\nHaving any troubles? see https://dvc.org/support\n", "some detail"),
        ("Please report it here\n", "exit 7"),
        ("the cause\n<https://github.com/iterative/gto/issues>\n", "the cause"),
        ("x" * 1000, "x" * 300 + "... (1000 characters)"),
    ],
    ids=["dvc", "gto", "first-error", "banner-last", "banner-only", "issues-link", "clipped"],
)
def test_the_failure_line_is_the_one_that_says_why(output, why):
    assert integrity.failure_line(output, 7) == why


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (pickle.dumps({"a": [1, 2, 3]})[:-5], "UnpicklingError"),  # cut short
        (b"", "EOFError"),
        (b"cno_such_module_here\nModel\n.", "ModuleNotFoundError"),  # a class since moved
        (b"cbuiltins\nno_such_name\n.", "AttributeError"),  # or renamed
    ],
    ids=["cut", "empty", "moved", "renamed"],
)
def test_bytes_that_do_not_unpickle_are_one_line_naming_the_file(data, error):
    with pytest.raises(ChurnError) as err:
        integrity.unpickle(data, "v1:models/model.pkl")
    message = str(err.value)
    assert message.startswith(f"v1:models/model.pkl: cannot be unpickled ({error}: ")
    assert message.endswith(
        "): made with other versions of its libraries (see requirements.txt), or damaged"
    )
    assert "\n" not in message
    assert integrity.unpickle(pickle.dumps({"a": [1, 2]}), "x") == {"a": [1, 2]}


def test_the_unpickling_error_is_quoted():
    with pytest.raises(ChurnError) as err:
        integrity.unpickle(b"cno_such_module_here\nModel\n.", "m.pkl")
    assert "(ModuleNotFoundError: No module named 'no_such_module_here'): made" in str(err.value)


def test_a_dvc_project_in_a_subfolder_of_its_git_repo_reads_its_own_files(tmp_path):
    """A ``dvc init --subdir`` project: 'rev:dvc.lock' is the git root's; 'rev:./dvc.lock'."""
    from churn.core.bundle import params_at
    from churn.ops.results import yaml_at

    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (sub / "params.yaml").write_text((REPO / "params.yaml").read_text())
    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    assert integrity.read_lock("HEAD", root=sub) == {"schema": "2.0", "stages": {}}
    assert yaml_at(sub, "HEAD", "params.yaml")["paths"]["model"] == "models/model.pkl"
    assert params_at("HEAD", root=sub).paths.model == "models/model.pkl"


def test_a_shallow_clone_is_refused_where_the_history_is_needed(tmp_path):
    def git(*args: str, cwd: Path = tmp_path / "full") -> None:
        subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)

    (tmp_path / "full").mkdir()
    git("init", "-q")
    for n in (1, 2):
        (tmp_path / "full" / "f.txt").write_text(str(n))
        git("add", "f.txt")
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", str(n))
    integrity.check_full_history("a release", cwd=tmp_path / "full")
    full = f"file://{tmp_path / 'full'}"
    git("clone", "-q", "--depth", "1", full, str(tmp_path / "shallow"), cwd=tmp_path)
    with pytest.raises(ChurnError) as err:
        integrity.check_full_history("a release", cwd=tmp_path / "shallow")
    assert str(err.value) == (
        "this clone is shallow: a release needs the whole history and its tags "
        "(git fetch --unshallow --tags)"
    )


def test_a_release_behind_a_broken_dvc_config_names_the_file(tmp_path, elsewhere):
    """Not "cannot read it through DVC (ConfigError)": which of DVC's config files, and why."""
    sh_git(tmp_path, "init", "-q")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    write_tree(tmp_path, {"dvc.lock": yaml.safe_dump(lock_of(GOOD_MD5)).encode(), MODEL: GOOD})
    sh_git(tmp_path, "add", "-A")
    sh_git(tmp_path, "commit", "-q", "-m", "one")
    assert integrity.read_model_bytes(MODEL, rev="HEAD", root=tmp_path).md5 == GOOD_MD5
    (tmp_path / ".dvc/config.local").write_text("[core]\nremote = \n[[nested\n")
    with pytest.raises(ChurnError) as err:
        integrity.read_model_bytes(MODEL, rev="HEAD", root=tmp_path)
    assert str(err.value).startswith(
        f"{tmp_path}/.dvc/config.local: DVC cannot read this config file ("
    )


@pytest.fixture
def dvc_levels(tmp_path, monkeypatch) -> Path:
    """A project's .dvc folder, and the global and system config folders, all empty."""
    (tmp_path / ".dvc").mkdir()
    for level in ("global", "system"):
        (tmp_path / level).mkdir()
        monkeypatch.setenv(f"DVC_{level.upper()}_CONFIG_DIR", str(tmp_path / level))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("where", "text", "why"),
    [
        (".dvc/config.local", "[core\n", "A line that is neither a section nor a key = value "
         "at line 1."),
        (".dvc/config", "[core]\nbogus = 1\n", "extra keys not allowed @ data['core']['bogus']"),
        ("global/config", "[core]\nx\ny\n", "Parsing failed with several errors. First error "
         "at line 2."),
        ("system/config", "[core]\nremote = 1\nremote = 2\n", "Duplicate keyword name at "
         "line 3."),
    ],
)  # fmt: skip
def test_the_dvc_config_file_dvc_cannot_read_is_named(dvc_levels, where, text, why):
    (dvc_levels / where).write_text(text)
    with pytest.raises(ChurnError) as err:
        integrity.check_dvc_config()
    assert str(err.value) == f"{where}: DVC cannot read this config file ({why})"
    elsewhere = dvc_levels.parent / f"{dvc_levels.name}-elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)  # the project named by its root, from outside it: the whole path
    with pytest.raises(ChurnError) as err:
        integrity.check_dvc_config(dvc_levels)
    assert str(err.value) == f"{dvc_levels / where}: DVC cannot read this config file ({why})"


def test_readable_or_absent_dvc_config_files_pass(dvc_levels):
    integrity.check_dvc_config()  # none at all
    (dvc_levels / ".dvc/config").write_text("[core]\n    remote = local\n")
    (dvc_levels / "global/config").write_text("[core]\n    analytics = false\n")
    integrity.check_dvc_config()
    (dvc_levels / ".dvc").rename(dvc_levels / "not-dvc")
    (dvc_levels / "not-dvc/config").write_text("[core\n")
    integrity.check_dvc_config()  # not a DVC project: not this check's to say


def test_a_long_reason_from_dvc_is_clipped(dvc_levels):
    key = "k" * 250
    (dvc_levels / ".dvc/config").write_text(f"[core]\n{key} = 1\n")
    with pytest.raises(ChurnError) as err:
        integrity.check_dvc_config()
    why = f"extra keys not allowed @ data['core']['{key}']"
    assert str(err.value) == (
        f".dvc/config: DVC cannot read this config file ({why[:200]}... ({len(why)} characters))"
    )


def test_a_dvc_config_that_cannot_be_opened_is_named(dvc_levels):
    (dvc_levels / ".dvc/config.local").mkdir()  # a directory where the file goes
    with pytest.raises(ChurnError) as err:
        integrity.check_dvc_config()
    assert str(err.value) == ".dvc/config.local: cannot read this DVC config file (Is a directory)"


def made_from_lock(tmp_path, monkeypatch) -> dict:
    """A contract made from raw.csv, as dvc.lock records it; the working directory tmp_path."""
    monkeypatch.chdir(tmp_path)
    Path("raw.csv").write_text("a,b\n1,2\n")
    Path("out").mkdir()
    Path("out/contract.json").write_text("{}")
    entry = {"path": "raw.csv", "md5": integrity.file_md5("raw.csv"), "size": 8}
    made = {"path": "out/contract.json", "md5": integrity.file_md5("out/contract.json")}
    return {
        "stages": {
            "fetch": {"outs": [{"path": "raw.csv"}]},
            "prepare": {"deps": [entry], "outs": [made]},
        }
    }


def test_an_output_made_from_its_source_as_it_is_passes(tmp_path, monkeypatch):
    lock = made_from_lock(tmp_path, monkeypatch)
    integrity.check_made_from("out/contract.json", "raw.csv", lock)
    integrity.check_made_from("./out/contract.json", "out/../raw.csv", lock)  # paths normalised


def test_an_output_not_made_from_its_source_as_it_is_is_named(tmp_path, monkeypatch):
    lock = made_from_lock(tmp_path, monkeypatch)
    again = "run dvc repro first"
    with pytest.raises(ChurnError) as err:
        integrity.check_made_from("out/contract.json", "other.csv", lock)
    assert str(err.value) == f"out/contract.json: made from another file than other.csv: {again}"
    Path("raw.csv").write_text("a,b\n1,3\n")  # the same size: the md5 tells
    with pytest.raises(ChurnError) as err:
        integrity.check_made_from("out/contract.json", "raw.csv", lock)
    assert str(err.value) == f"raw.csv: changed since out/contract.json was made from it: {again}"
    Path("raw.csv").write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(ChurnError, match=r"^raw\.csv: changed since"):
        integrity.check_made_from("out/contract.json", "raw.csv", lock)
    Path("raw.csv").write_text("a,b\n1,2\n")
    Path("out/contract.json").write_text("{ }")
    with pytest.raises(ChurnError) as err:
        integrity.check_made_from("out/contract.json", "raw.csv", lock)
    assert str(err.value) == f"out/contract.json: not the file dvc.lock records: {again}"
    with pytest.raises(ChurnError, match=r"^out/contract\.json: not the file dvc\.lock records"):
        integrity.check_made_from("out/contract.json", "raw.csv", {"stages": {}})


def test_a_file_md5_is_read_in_blocks_and_is_dvcs(tmp_path, monkeypatch):
    monkeypatch.setattr(integrity, "MD5_BLOCK", 3)
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    assert integrity.file_md5(path) == integrity.md5_of(b"0123456789")
    path.write_bytes(b"")
    assert integrity.file_md5(path) == "d41d8cd98f00b204e9800998ecf8427e"


def test_a_commit_without_a_lock_is_named_so(tmp_path):
    """The message of git was "fatal: path 'dvc.lock' exists on disk, but not in ..."."""
    sh_git(tmp_path, "init", "-q")
    (tmp_path / "dvc.lock").write_text("stages: {}\n")  # on disk, not committed
    sh_git(tmp_path, "commit", "-q", "--allow-empty", "-m", "no lock")
    sha = sh_git(tmp_path, "rev-parse", "HEAD").strip()
    with pytest.raises(ChurnError) as err:
        integrity.read_lock(sha, root=tmp_path)
    assert str(err.value) == f"{sha}: its commit has no dvc.lock: no model of this pipeline"


@pytest.mark.parametrize(
    ("repo_config", "local", "named"),
    [
        # The endpoint alone in config.local, the url in config: valid as DVC merges them.
        ("['remote \"s\"']\n    url = s3://b/c\n", "['remote \"s\"']\n    endpointurl = h\n", None),
        # An error that config brings and config.local leaves as it is: config's.
        ("['remote \"s\"']\n    endpointurl = h\n", "[core]\n    autostage = true\n", "config"),
        # config's error mended by config.local, which brings its own: config.local's.
        (
            "['remote \"s\"']\n    endpointurl = h\n",
            "[core]\n    autostage = tru\n['remote \"s\"']\n    url = s3://b/c\n",
            "config.local",
        ),
    ],
)
def test_dvc_config_files_are_judged_merged(tmp_path, monkeypatch, repo_config, local, named):
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("DVC_SYSTEM_CONFIG_DIR", str(tmp_path / "none"))
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(repo_config)
    (tmp_path / ".dvc" / "config.local").write_text(local)
    monkeypatch.chdir(tmp_path)
    if named is None:
        integrity.check_dvc_config()
        return
    with pytest.raises(ChurnError) as err:
        integrity.check_dvc_config()
    assert str(err.value).startswith(f".dvc/{named}: DVC cannot read this config file (")


def test_a_commit_prefix_names_one_commit_or_is_refused(tmp_path):
    sh_git(tmp_path, "init", "-q")
    sh_git(tmp_path, "commit", "-q", "--allow-empty", "-m", "one")
    sha = sh_git(tmp_path, "rev-parse", "HEAD").strip()
    assert integrity.commit_named(sha[:7], cwd=tmp_path) == sha
    tree = sh_git(tmp_path, "rev-parse", "HEAD^{tree}").strip()
    (tmp_path / "f").write_text("x\n")
    blob = sh_git(tmp_path, "hash-object", "-w", "f").strip()
    sh_git(tmp_path, "tag", "-a", "-m", "annotated", "t")
    tag = sh_git(tmp_path, "rev-parse", "t").strip()  # the tag object's own hash
    for prefix, said in [
        (tree[:10], "a git tree object, not a commit"),
        (blob.upper(), "a git blob object, not a commit"),
        (tag, "a git tag object, not a commit"),
        ("0" * 12, "no such git revision"),
    ]:
        with pytest.raises(ChurnError) as err:
            integrity.commit_named(prefix, cwd=tmp_path)
        assert str(err.value) == f"{prefix}: {said} (a tag like churn-model@v1.0.0, or a commit)"


def test_a_command_run_under_a_file_lock_holds_it_until_it_ends(tmp_path):
    """Killed with kill -9, churn freed the release lock while the gto it ran went on."""
    import signal

    lock = tmp_path / "x.lock"
    with io.file_lock(lock):
        # The command leaves a sleep behind, as a killed churn leaves its gto or dvc.
        pid = int(integrity.command("sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"))
    try:
        with pytest.raises(BlockingIOError), io.file_lock(lock, wait=False):
            pass
    finally:
        os.kill(pid, signal.SIGKILL)
    assert lock_frees(lock)  # once the command is gone (its files close as it exits)


def lock_frees(lock: Path, seconds: float = 30) -> bool:
    """Whether ``lock`` can be taken within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with io.file_lock(lock, wait=False):
                return True
        except BlockingIOError:
            time.sleep(0.01)
    return False


def test_a_tree_with_changes_or_new_files_is_not_committed(tmp_path):
    """Release and sweep run HEAD: any change or untracked file is named, with the advice."""
    sh_git(tmp_path, "init", "-q")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    (tmp_path / ".gitignore").write_text("ignored.txt\n")
    sh_git(tmp_path, "add", "-A")
    sh_git(tmp_path, "commit", "-qm", "params")
    (tmp_path / "ignored.txt").write_text("x\n")
    integrity.check_committed(cwd=tmp_path)  # clean, the ignored file aside
    (tmp_path / "new.py").write_text("x = 1\n")
    with pytest.raises(ChurnError) as err:
        integrity.check_committed(cwd=tmp_path)
    assert str(err.value) == "working tree is not clean (1 path(s), e.g. new.py): commit first"
    (tmp_path / "params.yaml").write_text("a: 2\n")
    with pytest.raises(ChurnError) as err:
        integrity.check_committed("stash it", cwd=tmp_path)
    assert str(err.value) == "working tree is not clean (2 path(s), e.g. params.yaml): stash it"


def test_a_release_dvc_cannot_read_for_another_reason_names_the_error(history, monkeypatch):
    """Only a file in neither cache nor remote gets that advice; other errors are named."""
    import dvc.api

    def fails(*_args, **_kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(dvc.api, "read", fails)
    with pytest.raises(ChurnError) as err:
        integrity.read_model_bytes(MODEL, rev=TAG, root=history.root)
    assert str(err.value) == f"{TAG}:{MODEL}: cannot read it through DVC (OSError)"


def test_kept_by_repository_names_what_a_write_would_replace(tmp_path, monkeypatch):
    """Scores over the raw data, a report over the model, a drift report among the code."""
    monkeypatch.chdir(tmp_path)
    integrity.git("init", "-q")
    for name in ("src/a.py", "models/model.pkl", "data/raw/own.csv", "data/prepared/t.parquet"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "data/raw/own.csv.dvc").write_text("outs: []\n")
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  train:\n    cmd: x\n    outs:\n"
        "    - path: models/model.pkl\n      md5: 1\n    - path: data/prepared\n      md5: 2\n"
    )
    integrity.git("add", "src/a.py")
    kept = integrity.kept_by_repository
    assert kept("src/a.py") == "a file git tracks"
    assert kept("src") == "holds files git tracks"
    assert kept(".") == "holds files git tracks"
    assert kept("models/model.pkl") == "a DVC output (models/model.pkl)"
    assert (
        kept(tmp_path / "models" / ".." / "models/model.pkl") == "a DVC output (models/model.pkl)"
    )
    assert kept("models") == "holds a DVC output (models/model.pkl)"
    assert kept("data/prepared/t.parquet") == "a DVC output (data/prepared)"
    assert kept("data/prepared/new/x.csv") == "a DVC output (data/prepared)"
    assert kept("data/raw/own.csv") == "tracked by DVC (own.csv.dvc)"
    assert kept(".git/x.csv") == "inside git's or DVC's own folder"
    assert kept(".dvc/tmp/x") == "inside git's or DVC's own folder"
    (tmp_path / "link.csv").symlink_to(tmp_path / "models/model.pkl")
    assert kept("link.csv") == "a DVC output (models/model.pkl)"
    for free in (
        "scores.csv",
        "data/raw/other.csv",
        "monitoring",
        "models.pkl",
        str(tmp_path.parent / "elsewhere"),
    ):
        assert kept(free) is None, free
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert kept("loop") is None  # the write itself names a loop
    with pytest.raises(ChurnError) as err:
        integrity.refuse_kept("models/model.pkl", "--out", shown="./models/model.pkl")
    assert str(err.value) == (
        "--out ./models/model.pkl: a DVC output (models/model.pkl); write elsewhere"
    )
    integrity.refuse_kept("scores.csv", "--out")


def test_kept_by_repository_without_git_still_keeps_dvc_outputs(tmp_path, monkeypatch):
    """The container image has no git: the lock's outputs are still kept."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.lock").write_text(
        "stages:\n  s:\n    outs:\n    - path: out.csv\n  bad: 3\n  odd:\n    outs: [1]\n"
    )
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert integrity.kept_by_repository("out.csv") == "a DVC output (out.csv)"
    assert integrity.kept_by_repository("other.csv") is None
    (tmp_path / "dvc.lock").write_text("- a list\n")
    assert integrity.kept_by_repository("out.csv") is None
    (tmp_path / "dvc.lock").unlink()  # no lock: nothing DVC keeps, and no error
    assert integrity.kept_by_repository("out.csv") is None
    long = "d/" * 120 + "out.csv"
    (tmp_path / "dvc.lock").write_text(f"stages:\n  s:\n    outs:\n    - path: {long}\n")
    with pytest.raises(ChurnError) as err:
        integrity.refuse_kept(long, "--out")
    assert str(err.value).startswith(f"--out {long[:200]}... ({len(long)} characters): ")


def test_lock_outputs_maps_each_output_to_its_md5():
    """The report compares two commits' outputs by these: a path without an md5 reads ""."""
    lock = {
        "stages": {
            "prepare": {"outs": [{"path": "data/prepared", "md5": "a.dir"}, {"path": "c.json"}]},
            "train": {"outs": [{"path": "models/model.pkl", "md5": "b"}, "odd", {"md5": "x"}]},
            "odd": [1],
        }
    }
    assert integrity.lock_outputs(lock) == {
        "data/prepared": "a.dir",
        "c.json": "",
        "models/model.pkl": "b",
    }
    assert integrity.lock_outputs({"stages": [1]}) == {}
    assert integrity.lock_outputs(None) == {}
