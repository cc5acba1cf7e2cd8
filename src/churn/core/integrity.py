"""Facts about artifacts: md5s, what a dvc.lock records, git, and the check before unpickling.

Unpickling runs code, so nothing outside the pipeline's own stages (which DVC
feeds their inputs) unpickles ``model.pkl`` without :func:`load_model`: the bytes
are read once, their md5 compared with the one ``dvc.lock`` records (the
workspace's, or the lock at a git revision), and only then loaded. Every git and
tool call goes through :func:`command`, which fails in one way: a
:class:`ChurnError` naming the command and its last line of output.
"""

import hashlib
import pickle
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churn.core import io
from churn.core.errors import ChurnError

LOCK_FILE = "dvc.lock"


def md5_of(data: bytes) -> str:
    """md5 of bytes, as DVC records it."""
    return hashlib.md5(data).hexdigest()  # noqa: S324 (DVC's hash)


def file_md5(path: str | Path) -> str:
    """md5 of a file's bytes, as DVC records it."""
    return md5_of(io.require_file(path).read_bytes())


def recorded_md5(lock: dict, path: str) -> str | None:
    """The md5 a parsed dvc.lock records for output ``path``, or None."""
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            if out.get("path") == path:
                return out.get("md5")
    return None


class ProgramMissing(ChurnError):
    """The program itself could not be run (e.g. no git, as in the container image)."""


def command(*cmd: str, cwd: str | Path | None = None) -> str:
    """Output of a command; a failure (or a missing program) is one line naming it."""
    try:
        result = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as err:
        raise ProgramMissing(f"`{' '.join(cmd)}`: {err.strerror}") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        last = detail[-1] if detail else f"exit {result.returncode}"
        raise ChurnError(f"`{' '.join(cmd)}` failed: {last}")
    return result.stdout


def git(*args: str, cwd: str | Path | None = None) -> str:
    """Output of a git command, or a one-line :class:`ChurnError`."""
    return command("git", *args, cwd=cwd)


def git_or_none(*args: str, cwd: str | Path | None = None) -> str | None:
    """Output of a git command, or None when it fails (e.g. a path absent at a revision).

    A missing git is still an error: "no such revision" would send the user the wrong way.
    """
    try:
        return git(*args, cwd=cwd)
    except ProgramMissing:
        raise
    except ChurnError:
        return None


def is_revision(rev: str, cwd: str | Path | None = None) -> bool:
    """Whether ``rev`` names a commit; never read as an option, whatever it starts with."""
    return (
        git_or_none(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", cwd=cwd
        )
        is not None
    )


def commit_of(rev: str = "HEAD", cwd: str | Path | None = None) -> str:
    """The full commit hash ``rev`` points at, or ``unknown`` where git cannot say."""
    try:
        found = git_or_none(
            "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}", cwd=cwd
        )
    except ProgramMissing:  # no git at all, as in the container image
        return "unknown"
    return found.strip() if found else "unknown"


@dataclass(frozen=True)
class ModelBytes:
    """A model file's bytes, checked against the md5 its dvc.lock records."""

    data: bytes
    md5: str
    path: str
    rev: str | None  # None: the workspace


def read_lock(rev: str | None = None, root: str | Path = ".") -> dict:
    """The parsed dvc.lock of the workspace at ``root``, or of git revision ``rev``."""
    if rev is None:
        path = Path(root) / LOCK_FILE
        if not path.is_file():
            raise ChurnError(f"{path}: file not found; cannot check the model before loading it")
        return io.read_yaml(path)
    if not is_revision(rev, cwd=root):
        raise ChurnError(
            f"{rev}: no such git revision (a tag like churn-model@v1.0.0, or a commit)"
        )
    return io.parse_yaml(git("show", f"{rev}:{LOCK_FILE}", cwd=root), f"{rev}:{LOCK_FILE}")


def read_model_bytes(model_path: str, rev: str | None = None, root: str | Path = ".") -> ModelBytes:
    """Read ``model_path`` (in the workspace at ``root``, or through DVC at ``rev``); check its md5.

    Raises a one-line :class:`ChurnError` when the lock records no md5 for the
    model or the bytes differ from it: such a file is never unpickled.
    """
    lock = read_lock(rev, root)
    where = LOCK_FILE if rev is None else f"{rev}:{LOCK_FILE}"
    expected = recorded_md5(lock, model_path)
    if not expected:
        raise ChurnError(f"{where} records no md5 for {model_path}: refusing to unpickle it")
    data = _model_data(model_path, rev, Path(root))
    actual = md5_of(data)
    if actual != expected:
        raise ChurnError(
            f"{model_path}: md5 {actual} does not match {expected} in {where}: "
            "refusing to unpickle it"
        )
    return ModelBytes(data=data, md5=actual, path=model_path, rev=rev)


def _model_data(model_path: str, rev: str | None, root: Path) -> bytes:
    if rev is None:
        path = root / model_path
        if not path.is_file():
            raise ChurnError(f"{model_path}: file not found (run dvc repro or dvc pull)")
        return path.read_bytes()
    import dvc.api  # only a released model needs DVC
    from dvc.exceptions import DvcException

    try:
        return dvc.api.read(model_path, repo=str(root), rev=rev, mode="rb")
    except (DvcException, FileNotFoundError, OSError) as err:
        raise ChurnError(
            f"{rev}:{model_path}: cannot read it through DVC ({type(err).__name__})"
        ) from None


def load_model(
    model_path: str, rev: str | None = None, root: str | Path = "."
) -> tuple[Any, ModelBytes]:
    """The unpickled model and its checked bytes; refuses any file dvc.lock does not vouch for."""
    checked = read_model_bytes(model_path, rev, root)
    return pickle.loads(checked.data), checked  # safe only because the md5 matched the lock
