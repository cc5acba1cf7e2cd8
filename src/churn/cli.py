"""Shared entry-point plumbing: logging set-up and one-line errors."""

import logging
import sys
from collections.abc import Callable

from threadpoolctl import threadpool_limits

from churn.errors import ChurnError

log = logging.getLogger("churn")


def run(main: Callable[[], None]) -> int:
    """Run a stage's ``main`` and turn a :class:`ChurnError` into a one-line message.

    Returns the process exit status: 0 on success, 1 on bad input. Anything else
    is a bug and keeps its traceback.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        # Multi-threaded BLAS may sum in a different order per thread count; one
        # thread keeps every output bit-identical across machines and runs.
        with threadpool_limits(limits=1, user_api="blas"):
            main()
    except ChurnError as err:
        print(f"error: {err}", file=sys.stderr)  # noqa: T201 (the one-line message is the interface)
        return 1
    return 0
