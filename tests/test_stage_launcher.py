"""python -m churn.stages <stage> as a process: usage errors, and what a stage imports."""

import json
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


DEFERRED_AFTER_IMPORT = """
import json, sys
from churn.core import deferred
from churn.stages.__main__ import import_stage
stage = import_stage(sys.argv[1])
from threadpoolctl import threadpool_info
print(json.dumps({
    "real": sorted(n for n in deferred.STAGE_DEFERRED
                   if not isinstance(sys.modules.get(n), deferred.Standin)),
    "stats_py": "scipy.stats._stats_py" in sys.modules,
    "sklearn": "sklearn" in sys.modules,
    "main": callable(stage.main),
    "openblas": sorted(pool["num_threads"] for pool in threadpool_info()
                       if pool["internal_api"] == "openblas"),
}))
"""


@pytest.mark.parametrize("stage", ["featurize", "train", "evaluate"])
def test_a_stage_import_leaves_the_deferred_scipy_modules_unloaded(stage):
    """The saving of churn.core.deferred, held: scikit-learn is imported, SciPy's stats not.

    Fails when scikit-learn starts using another name of a deferred module at import
    (that name then belongs in STAGE_DEFERRED) or imports one some other way.
    """
    assert imported(stage, {}) == {
        "real": [],
        "stats_py": False,
        "sklearn": True,
        "main": True,
        "openblas": [1, 1],  # NumPy's and SciPy's, each started on one thread
    }


def imported(stage: str, env: dict[str, str]) -> dict:
    """What DEFERRED_AFTER_IMPORT reports for ``stage``, in a process with ``env`` added."""
    base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    result = subprocess.run(
        [sys.executable, "-c", DEFERRED_AFTER_IMPORT, stage],
        cwd=REPO,
        env={**base, "PYTHONPATH": str(REPO / "src"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def test_a_stage_process_keeps_the_openblas_threads_a_user_asked_for():
    """OPENBLAS_NUM_THREADS set by the user wins; the work still runs one (entry.run)."""
    assert imported("train", {"OPENBLAS_NUM_THREADS": "2"})["openblas"] == [2, 2]
