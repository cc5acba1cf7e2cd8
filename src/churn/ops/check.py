"""``churn check``: params.yaml and the raw file's header, checked in a second, nothing run.

The same checks the stages make before any work (every key of params.yaml; the
target, id and declared features in the file; ``evaluate.slices`` and
``decision.value_column`` naming features),
on the raw file's first line only, so a typo is found before ``dvc repro`` or
``dvc exp run`` deletes a stage's outputs to rerun it.
"""

from pathlib import Path

from churn.core import io
from churn.core.contract import check_header, check_slices, check_value_column_named
from churn.core.errors import ChurnError
from churn.core.params import PARAMS_FILE, load_params


def check(params_file: str = PARAMS_FILE) -> str:
    """Validate; return a one-line summary. Raises ChurnError on the first problem."""
    params = load_params(params_file)
    raw = Path(params.paths.raw)
    if not raw.is_file():
        raise ChurnError(f"{raw}: file not found (dvc pull, or dvc repro to fetch it)")
    features = check_header(params.data, io.read_csv_header(raw), str(raw))
    check_slices(params.evaluate.slices, features, str(raw))
    check_value_column_named(params.decision.value_column, features, str(raw))
    how = "inferred" if params.data.features == "infer" else "declared"
    return (
        f"ok: {params_file} and {raw}: {len(features)} {how} feature column(s), "
        f"target {params.data.target!r}, id {params.data.id or 'none (rows numbered)'}"
    )
