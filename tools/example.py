"""Regenerate ``docs/example-pr-comment.md``: real output of the report command.

In a throw-away copy of this repository, main is reproduced as committed; a
branch switches ``train.model`` to histogram gradient boosting and is
reproduced too; then the report compares the branch with main. Everything is
seeded, so the file changes only when the pipeline or the report does.
"""

import logging
import sys
import tempfile
from pathlib import Path

from churn.core import entry, io
from churn.core.errors import ChurnError
from tools.sandbox import REPO_ROOT, copy_repo, init_repo, quiet, tool_env

log = logging.getLogger("churn.example")

OUT = REPO_ROOT / "docs" / "example-pr-comment.md"
CHANGE = ("  model: logistic_regression", "  model: hist_gradient_boosting")


def branch_report(scratch: Path) -> str:
    """Report of a model-type change against main, made in ``scratch``."""
    env = tool_env()
    repo = copy_repo(REPO_ROOT, scratch / "repo")
    init_repo(repo, scratch, env)
    quiet(["dvc", "repro"], repo, env)
    quiet(["git", "checkout", "-q", "-b", "try-boosting"], repo, env)
    params = repo / "params.yaml"
    text = params.read_text(encoding="utf-8")
    if CHANGE[0] not in text:
        raise ChurnError(f"params.yaml: expected {CHANGE[0].strip()!r} to change for the example")
    params.write_text(text.replace(CHANGE[0], CHANGE[1], 1), encoding="utf-8")
    quiet(["dvc", "repro"], repo, env)
    quiet(["git", "commit", "-q", "-am", "Try histogram gradient boosting"], repo, env)
    quiet(
        [sys.executable, "-m", "churn", "report", "--base", "main", "--out", "report.md"], repo, env
    )
    return (repo / "report.md").read_text(encoding="utf-8")


def main() -> None:
    """Write the example comment."""
    with tempfile.TemporaryDirectory(prefix="churn-example-") as tmp:
        text = branch_report(Path(tmp))
    io.write_text(OUT, text)
    log.info("wrote %s", OUT.relative_to(REPO_ROOT))


if __name__ == "__main__":
    raise SystemExit(entry.run(main))
