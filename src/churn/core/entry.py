"""Entry-point plumbing shared by every command: logging, one thread of BLAS, one-line errors."""

import logging
import sys
from collections.abc import Callable

from threadpoolctl import threadpool_limits

from churn.core.errors import ChurnError

log = logging.getLogger("churn")


def run(main: Callable[[], int | None], error_status: int = 1) -> int:
    """Run ``main`` and turn a :class:`ChurnError` into one line on stderr.

    Returns the process exit status: what ``main`` returns (0 when it returns
    None), or ``error_status`` on bad input. Anything else is a bug and keeps
    its traceback.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        # Multi-threaded BLAS may sum in a different order per thread count; one
        # thread keeps every output bit-identical across machines and runs.
        with threadpool_limits(limits=1, user_api="blas"):
            status = main()
    except ChurnError as err:
        print(f"error: {err}", file=sys.stderr)  # noqa: T201 (the one-line message is the interface)
        return error_status
    return status or 0
