"""Run one pipeline stage as ``python -m churn.stages <stage>``: each command in dvc.yaml.

The stage is imported by :func:`import_stage`: with OpenBLAS started on one thread
(:func:`churn.core.entry.one_blas_thread`), with the SciPy modules scikit-learn imports
and no stage uses deferred (:mod:`churn.core.deferred`), and through
:func:`churn.core.entry.import_frozen`, so the objects its imports leave are not walked by
the garbage collector again. It ends through :func:`churn.core.entry.leave`, so the
interpreter's teardown is skipped.
"""

import argparse
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from churn.core import deferred, entry

STAGES = ("fetch", "prepare", "featurize", "train", "evaluate")  # dvc.yaml's, in its order


def import_stage(stage: str) -> ModuleType:
    """Import ``churn.stages.<stage>`` as its process does: one BLAS thread, SciPy deferred."""
    entry.one_blas_thread()  # first: deferring imports SciPy's root, and that NumPy
    deferred.defer_all(deferred.STAGE_DEFERRED)
    return entry.import_frozen(f"churn.stages.{stage}")


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Parse the stage name, import it frozen, run its ``main()`` and leave with its status."""
    parser = argparse.ArgumentParser(
        prog="python -m churn.stages", description="Run one stage of dvc.yaml."
    )
    parser.add_argument("stage", choices=STAGES, help="the stage, as named in dvc.yaml")
    args = parser.parse_args(argv)
    try:
        stage = import_stage(args.stage)
    except KeyboardInterrupt:  # the imports take a second; nothing is written yet
        entry.leave(entry.interrupted())
    entry.leave(entry.run(stage.main))


if __name__ == "__main__":
    main()
