"""Real DVC repositories: copies of this repo's tracked files, git-committed, in temp dirs."""

import functools
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from tools import sandbox

from conftest import free_port  # noqa: F401 (this package's tests import it from here)

REPO = Path(__file__).resolve().parents[2]
OUTPUT_DIRS = ("data", "models", "reports")


def dvc_env(**extra: str) -> dict[str, str]:
    """Environment for dvc/git: this venv first on PATH, a git identity, no telemetry.

    Under `make test`, coverage follows the Python processes started here; the
    ``python`` on PATH is then a shim that measures the `churn` commands (release,
    report, serve, ...). DVC's own processes and the stages it runs are left untraced:
    tracing costs them about 1.5x, and the stages are measured in-process by
    tests/test_pipeline.py.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    bin_dirs = [str(Path(sys.executable).parent)]
    coverage = tuple((k, env.pop(k)) for k in COVERAGE_VARS if k in env)
    if coverage:
        bin_dirs.insert(0, str(python_shim(coverage)))
    env["PATH"] = os.pathsep.join([*bin_dirs, env.get("PATH", "")])
    env.update(
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.com",
    )
    env.update(extra)
    return env


COVERAGE_VARS = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")


@functools.cache
def python_shim(coverage: tuple[tuple[str, str], ...]) -> Path:
    """A directory whose ``python`` runs this interpreter with coverage's variables set."""
    shim_dir = Path(tempfile.mkdtemp(prefix="churn-coverage-shim-"))
    assignments = " ".join(f"{name}={shlex.quote(value)}" for name, value in coverage)
    script = shim_dir / "python"
    python = shlex.quote(sys.executable)
    script.write_text(
        "#!/bin/sh\n"
        f'case "$2" in churn.stages.*) exec {python} "$@";; esac\n'
        f'exec env {assignments} {python} "$@"\n'
    )
    script.chmod(0o755)
    return shim_dir


def sh(repo: Path, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """Run a command in ``repo``; on failure show its output."""
    result = subprocess.run(
        list(args), cwd=repo, env=dvc_env(**env), capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def copy_repo(dest: Path) -> Path:
    """Copy the tracked files (as in the working tree) into a new, committed git repo.

    The same throw-away copy the benchmark and the example comment use; its DVC
    remote and site cache stay beside it, inside this test's temp dir.
    """
    sandbox.copy_repo(REPO, dest)
    sandbox.init_repo(dest, dest.parent, dvc_env())
    return dest


def output_hashes(repo: Path) -> dict[str, str]:
    """md5 of every pipeline output file under data/, models/, reports/."""
    hashes = {}
    for top in OUTPUT_DIRS:
        for path in sorted((repo / top).rglob("*")):
            if path.is_file() and path.name != ".gitignore":
                hashes[str(path.relative_to(repo))] = hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324
    return hashes


def read_metrics(repo: Path) -> dict:
    """The workspace metrics.json."""
    return json.loads((repo / "reports/metrics.json").read_text())


def reproduced_copy(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A fresh copy of the repo in its own temp dir, after one `dvc repro`."""
    repo = copy_repo(tmp_path_factory.mktemp(name) / "repo")
    sh(repo, "dvc", "repro")
    return repo


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory) -> Path:
    """A fresh copy of the repo after one `dvc repro` (shared; tests restore what they change)."""
    return reproduced_copy(tmp_path_factory, "first")


class MovedOn(NamedTuple):
    """A repo whose release churn-model@v0.1.0 the workspace has moved on from."""

    repo: Path
    md5: str  # the released model's
    metrics: dict  # the release's
    threshold: float  # the release's, as train chose it (max_profit) and recorded it


@pytest.fixture(scope="session")
def moved_on(tmp_path_factory) -> MovedOn:
    """Release v0.1.0, then commit a fixed threshold (0.3) and a narrower tenure rule (max 80).

    Shared: tests read it and may add untracked files, nothing else.
    """
    repo = reproduced_copy(tmp_path_factory, "moved-on")
    md5 = hashlib.md5((repo / "models/model.pkl").read_bytes()).hexdigest()  # noqa: S324
    released = json.loads((repo / "reports/metrics.json").read_text())
    threshold = json.loads((repo / "models/decision.json").read_text())["threshold"]
    sh(repo, "git", "tag", "-a", "churn-model@v0.1.0", "-m", f"test\n\nmodel-md5: {md5}")
    text = (repo / "params.yaml").read_text()
    text = text.replace("  threshold: max_profit ", "  threshold: 0.3 ", 1)
    text = text.replace(
        "tenure: {type: numeric, min: 0, max: 120}", "tenure: {type: numeric, min: 0, max: 80}"
    )
    (repo / "params.yaml").write_text(text)
    sh(repo, "dvc", "repro")
    sh(repo, "git", "commit", "-qam", "threshold 0.3, tenure up to 80")
    return MovedOn(repo, md5, released, threshold)


@contextmanager
def serving(repo: Path, port: int, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """``churn serve`` in ``repo`` until ``/ready`` answers (60 s at most); always stopped."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["python", "-m", "churn", "serve"], cwd=repo, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail(f"server did not become ready:\n{log.read_text()}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
