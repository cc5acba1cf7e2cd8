"""core.integrity: md5s as DVC records them, lock look-ups, git, and the check before unpickling."""

import pickle
import subprocess

import pytest
import yaml

from churn.core import integrity
from churn.core.errors import ChurnError

MODEL = "models/model.pkl"


def workspace(tmp_path, data: bytes, md5: str | None) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / MODEL).write_bytes(data)
    outs = [{"path": MODEL, **({"md5": md5} if md5 else {})}, {"path": "other", "md5": "x"}]
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"stages": {"train": {"outs": outs}}}))


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


def test_load_model_unpickles_what_the_lock_vouches_for(tmp_path):
    data = pickle.dumps({"a": 1})
    workspace(tmp_path, data, integrity.md5_of(data))
    model, checked = integrity.load_model(MODEL, root=tmp_path)
    assert model == {"a": 1}
    assert (checked.md5, checked.path, checked.rev) == (integrity.md5_of(data), MODEL, None)


def test_a_changed_model_is_refused_before_unpickling(tmp_path):
    workspace(tmp_path, pickle.dumps("tampered"), "0" * 32)
    with pytest.raises(ChurnError) as err:
        integrity.load_model(MODEL, root=tmp_path)
    assert str(err.value) == (
        f"{MODEL}: md5 {integrity.md5_of(pickle.dumps('tampered'))} does not match "
        f"{'0' * 32} in dvc.lock: refusing to unpickle it"
    )


def test_a_model_the_lock_does_not_record_is_refused(tmp_path):
    workspace(tmp_path, b"x", None)
    with pytest.raises(ChurnError, match=r"^dvc.lock records no md5 for models/model.pkl"):
        integrity.read_model_bytes(MODEL, root=tmp_path)


def test_missing_lock_or_model_is_one_line(tmp_path):
    with pytest.raises(ChurnError, match=r"dvc.lock: file not found; cannot check the model"):
        integrity.read_model_bytes(MODEL, root=tmp_path)
    (tmp_path / "dvc.lock").write_text(
        yaml.safe_dump({"stages": {"t": {"outs": [{"path": MODEL, "md5": "1"}]}}})
    )
    with pytest.raises(ChurnError, match=r"^models/model.pkl: file not found"):
        integrity.read_model_bytes(MODEL, root=tmp_path)


def test_git_failures_are_one_line_and_never_options(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with pytest.raises(ChurnError) as err:
        integrity.git("show", "HEAD:nothing", cwd=tmp_path)
    assert str(err.value).startswith("`git show HEAD:nothing` failed: ")
    assert "\n" not in str(err.value)
    assert integrity.git_or_none("show", "HEAD:nothing", cwd=tmp_path) is None
    out = tmp_path / "x"
    assert integrity.is_revision(f"--output={out}", cwd=tmp_path) is False
    assert not out.exists()
    assert integrity.commit_of("HEAD", cwd=tmp_path) == "unknown"  # no commit yet
    with pytest.raises(ChurnError, match=r"^v9: no such git revision"):
        integrity.read_lock("v9", root=tmp_path)


def test_a_missing_program_is_one_line():
    with pytest.raises(ChurnError, match=r"^`no-such-program-here --x`: No such file"):
        integrity.command("no-such-program-here", "--x")
