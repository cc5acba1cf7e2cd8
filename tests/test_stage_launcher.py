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
    found = imported(stage, {})
    del found["openblas"]  # the tests below
    real = LOADED_AT_IMPORT.get(stage, [])
    assert found == {"real": real, "stats_py": False, "sklearn": True, "main": True}


# evaluate's permutation_importance imports sklearn.inspection, whose partial dependence
# imports sklearn.ensemble and so sklearn.tree, whose Cython modules cimport
# scipy.special: loaded there at import, deferred in featurize (which never uses it) and
# train (which loads it while it fits, through scipy.optimize).
LOADED_AT_IMPORT = {"evaluate": ["scipy.special"]}


# Each of these sets OpenBLAS's thread count; the tests start from none of them set.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def imported(stage: str, env: dict[str, str]) -> dict:
    """What DEFERRED_AFTER_IMPORT reports for ``stage``, in a process with ``env`` added."""
    return python_json(DEFERRED_AFTER_IMPORT, [stage], env)


def python_json(code: str, args: list[str], env: dict[str, str]) -> dict:
    """The JSON ``code`` prints in a fresh interpreter on src/, with ``env`` added."""
    base = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env={**base, "PYTHONPATH": str(REPO / "src"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


# OpenBLAS starts at most a thread per usable CPU: with one, every count reads 1.
MULTICORE = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="needs two usable CPUs to tell 1 thread from many"
)


@MULTICORE
def test_a_stage_process_starts_openblas_on_one_thread():
    """NumPy's and SciPy's OpenBLAS (a copy each, or one shared): one thread, not one per CPU."""
    pools = imported("train", {})["openblas"]
    assert pools
    assert set(pools) == {1}


@MULTICORE
def test_a_stage_process_keeps_the_openblas_threads_a_user_asked_for():
    """OPENBLAS_NUM_THREADS set by the user wins; the work still runs one (entry.run)."""
    assert set(imported("train", {"OPENBLAS_NUM_THREADS": "2"})["openblas"]) == {2}


# After featurize's import, the names scikit-learn bound from deferred modules are used
# as scikit-learn uses them; each must give SciPy's own answer and load the real module.
USED_AFTER_IMPORT = """
import json, math, sys
from types import ModuleType
from churn.core import deferred
from churn.stages.__main__ import import_stage
import_stage("featurize")
from sklearn._loss import loss
from sklearn.metrics import _ranking, pairwise
from sklearn.model_selection import _split
from sklearn.preprocessing import _data
import numpy as np
print(json.dumps({
    "xlogy": float(loss.xlogy(2.0, math.e)),
    "comb": int(_split.comb(5, 2, exact=True)),
    "boxcox": _data.boxcox(np.array([1.0, math.e]), 0.0).tolist(),
    "cdist": pairwise.distance.cdist([[0.0, 0.0]], [[3.0, 4.0]]).tolist(),
    "rankdata": _ranking.rankdata([30, 10, 20]).tolist(),
    "standins": sorted(n for n in ("scipy.special", "scipy.spatial", "scipy.spatial.distance",
                                   "scipy.stats") if isinstance(sys.modules[n], deferred.Standin)),
    "modules": all(type(sys.modules[n]) is ModuleType for n in ("scipy.special", "scipy.spatial")),
}))
"""


def test_names_bound_from_deferred_modules_give_scipys_answers_and_load_it():
    """xlogy, comb, boxcox, distance and rankdata, as scikit-learn bound them in a stage."""
    assert python_json(USED_AFTER_IMPORT, [], {}) == {
        "xlogy": 2.0,
        "comb": 10,
        "boxcox": [0.0, 1.0],
        "cdist": [[5.0]],
        "rankdata": [3.0, 1.0, 2.0],
        "standins": [],
        "modules": True,
    }
