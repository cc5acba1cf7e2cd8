"""Customer-churn prediction as a reproducible DVC pipeline.

Layers (imports point down only; ``make lint`` checks it with import-linter):
``churn.cli`` (the ``churn`` command) over ``churn.ops``, ``churn.serving`` and
``churn.stages``, all over ``churn.core``.
"""

import os
import sys


def _same_kernels_on_every_x86_cpu() -> None:
    """Pin OpenBLAS and NumPy to their AVX2 kernels, so outputs match across x86-64 CPUs.

    Both pick kernels by CPU at load time, and the AVX-512 ones round differently:
    a model trained on an AVX-512 machine differs in the last bits from one trained on
    an AVX2 machine, and the committed dvc.lock would not reproduce. This must run
    before NumPy is first imported (a stage's process imports ``churn`` first); a
    value the user already set wins, and CPUs without AVX2 are left alone.
    """
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        return
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
        has_avx2 = " avx2" in flags
    except OSError:
        return
    if has_avx2:
        os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
        os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "X86_V4 AVX512_ICL AVX512_SPR")


_same_kernels_on_every_x86_cpu()
