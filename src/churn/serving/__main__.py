"""``python -m churn.serving``: the same as ``churn serve`` (the container's command)."""

from churn.core import entry
from churn.serving.app import main

raise SystemExit(entry.run(main))
