"""Reading a revision's outputs through DVC for the PR report: text is UTF-8, always."""

import subprocess
import sys
from pathlib import Path

import pytest

from churn.core.errors import ChurnError
from churn.ops.results import read_through_dvc


def run(repo: Path, *cmd: str) -> None:
    subprocess.run(cmd, cwd=repo, check=True, capture_output=True)


@pytest.fixture
def tracked(tmp_path) -> Path:
    """A committed DVC repo tracking one clean UTF-8 file and one with a stray byte."""
    run(tmp_path, "git", "init", "-q")
    run(tmp_path, sys.executable, "-m", "dvc", "init", "-q")
    (tmp_path / "good.json").write_bytes('{"name": "modèle"}\n'.encode())
    (tmp_path / "bad.json").write_bytes(b'{"a": 1}\n{"b": "caf\xe9"}\n')
    run(tmp_path, sys.executable, "-m", "dvc", "add", "-q", "good.json", "bad.json")
    run(tmp_path, "git", "add", "-A")
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(tmp_path, "git", *identity, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "one")
    return tmp_path


def test_outputs_read_as_utf8_and_a_stray_byte_is_one_line(tracked, ascii_locale):
    """Guards against the locale deciding the decoding, and a traceback for a stray byte."""
    assert read_through_dvc(tracked, "HEAD", ["good.json"]) == ['{"name": "modèle"}\n']
    with pytest.raises(ChurnError) as err:
        read_through_dvc(tracked, "HEAD", ["good.json", "bad.json"])
    assert (
        str(err.value) == "HEAD:bad.json: line 2: not UTF-8 (byte 0xe9); re-save the file as UTF-8"
    )


def test_a_rev_that_looks_like_an_option_is_a_name_not_a_git_option(tmp_path):
    """``churn report --base=--output=FILE`` once made ``git show`` write FILE."""
    import subprocess

    from churn.ops.results import _yaml_at

    repo, out = tmp_path / "repo", tmp_path / "injected"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q")
    (repo / "params.yaml").write_text("train: {C: 1.0}\n")
    git("add", "params.yaml")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    git("update-ref", f"refs/tags/--output={out}", "HEAD")
    assert _yaml_at(repo, f"--output={out}", "params.yaml") == {"train": {"C": 1.0}}
    assert not list(tmp_path.glob("injected*"))
