"""Print the test metrics next to the baseline's: ``churn summary``."""

import logging

from churn.core import io
from churn.core.params import load_params
from churn.core.stats import HIGHER_IS_BETTER

log = logging.getLogger("churn.summary")


def metrics_table(metrics: dict) -> str:
    """A fixed-width table: one metric a row, model and prior baseline side by side."""
    baseline = metrics.get("baseline", {})
    lines = [f"{'metric':<18} {'model':>8} {'baseline':>9}  better"]
    for name, higher in HIGHER_IS_BETTER.items():
        base = baseline.get(name)
        base_text = f"{base:>9.4f}" if base is not None else f"{'-':>9}"
        lines.append(
            f"{name:<18} {metrics[name]:>8.4f} {base_text}  {'higher' if higher else 'lower'}"
        )
    return "\n".join(lines)


def main() -> None:
    """Print the table for ``<paths.reports>/metrics.json``."""
    params = load_params()
    print(metrics_table(io.read_json(f"{params.paths.reports}/metrics.json")))  # noqa: T201 (the table is the output)
