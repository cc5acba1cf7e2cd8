"""python -m churn.stages <stage> as a process: a usage error exits 2 and writes nothing."""

import os
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize("args", [["nope"], ["card"], [], ["train", "extra"]])
def test_anything_but_one_stage_name_is_a_usage_error(tmp_path, args):
    """card.py is a module of evaluate, not a stage; nothing is imported or written."""
    result = subprocess.run(
        [sys.executable, "-m", "churn.stages", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: python -m churn.stages [-h]")
    assert result.stderr.splitlines()[-1].startswith("python -m churn.stages: error: ")
    assert list(tmp_path.iterdir()) == []
