"""Throw-away copies of this repository: a committed git repo whose DVC remote stays inside.

Used by the benchmark and by the example PR comment, so neither touches the
working tree, its DVC cache or its remote.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from churn.core.errors import ChurnError

REPO_ROOT = Path(__file__).resolve().parents[1]


def tool_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for every command: this interpreter's bin dir first, no analytics."""
    env = dict(os.environ if base is None else base)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env["DVC_NO_ANALYTICS"] = "1"
    env["PYTHONPATH"] = str(REPO_ROOT / "src")
    return env


def quiet(cmd: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
    """Run a set-up command, failing with its output if it fails."""
    done = subprocess.run(cmd, cwd=cwd, env=dict(env), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ChurnError(f"`{' '.join(cmd)}` exited {done.returncode}: {done.stderr.strip()}")


def copy_repo(src: Path, dst: Path) -> Path:
    """Copy the files git tracks in ``src`` (as they are in the working tree) to ``dst``."""
    listed = subprocess.run(
        ["git", "-C", str(src), "ls-files", "-z"], capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = src / rel
        if source.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dst / rel, follow_symlinks=False)
    return dst


def init_repo(repo: Path, scratch: Path, env: Mapping[str, str]) -> None:
    """Make ``repo`` a one-commit git repo; its DVC remote and site cache live in ``scratch``."""
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.email", "sandbox@example.invalid"],
        ["git", "config", "user.name", "churn sandbox"],
        ["git", "config", "commit.gpgsign", "false"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "snapshot of the churn repository"],
        ["dvc", "remote", "modify", "--local", "local", "url", str(scratch / "storage")],
        ["dvc", "config", "--local", "core.site_cache_dir", str(scratch / "site-cache")],
    ):
        quiet(cmd, repo, env)
