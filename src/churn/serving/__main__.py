"""``python -m churn.serving``: the same as ``churn serve`` (the container's command).

Settings come from the environment only: ``--port 9000`` was ignored without a word,
and the service answered on PORT (8000).
"""

import sys

from churn.core import entry
from churn.core.errors import clip

if len(sys.argv) > 1:
    print(  # noqa: T201 (the one-line message is the interface)
        f"error: python -m churn.serving takes no arguments (got {clip(' '.join(sys.argv[1:]))}); "
        "settings come from the environment: PORT=9000 python -m churn.serving",
        file=sys.stderr,
    )
    raise SystemExit(2)

from churn.serving.app import main  # not loaded for a usage error

raise SystemExit(entry.run(main))
