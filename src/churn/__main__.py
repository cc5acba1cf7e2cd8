"""``python -m churn``: the same as the ``churn`` command."""

from churn.cli import console

console()
