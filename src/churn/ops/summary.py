"""Print the test metrics next to the baseline's: ``churn summary``."""

import json
import logging
from pathlib import Path

from churn.core import io
from churn.core.errors import ChurnError, clip
from churn.core.integrity import LOCK_FILE, read_lock
from churn.core.params import load_params
from churn.core.stats import HIGHER_IS_BETTER
from churn.ops.results import finite_number, locked_text, mapping, metrics_of

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


def read_metrics(path: str, text: str | None = None) -> dict:
    """metrics.json with every headline metric a finite number, and the baseline's too.

    A hand-edited or truncated file gave a traceback (a list, a NaN, a string). ``text``:
    the file's text, already read (and checked against dvc.lock).
    """
    data = io.read_json(path) if text is None else io.parse_json(text, path)
    metrics = metrics_of(data, path, required=True)
    baseline = mapping(metrics.get("baseline", {}), f"{path}: baseline")
    for name in HIGHER_IS_BETTER:
        value = baseline.get(name)
        if value is not None and not finite_number(value):
            shown = clip(json.dumps(value), 40)
            raise ChurnError(f"{path}: baseline.{name}: {shown} is not a finite number")
    return metrics


def main() -> None:
    """Print the table for ``<paths.reports>/metrics.json``, once dvc.lock vouches for it.

    After ``git checkout`` without ``dvc checkout`` (or a hand edit), the file was another
    commit's, shown as this one's metrics; ``churn report`` refused the same file.
    """
    params = load_params()
    path = f"{params.paths.reports}/metrics.json"
    io.require_file(path)
    if not Path(LOCK_FILE).is_file():  # nothing vouches for the file: report refuses it too
        raise ChurnError(
            f"{LOCK_FILE}: file not found: {path} cannot be checked against it (dvc repro)"
        )
    text = locked_text(Path(), path, mapping(read_lock(), LOCK_FILE))
    print(metrics_table(read_metrics(path, text)))  # noqa: T201 (the table is the output)
