"""``churn check``: params.yaml and the raw file's header, checked in a second, nothing run.

The same checks the stages make before any work (every key of params.yaml; the
target, id and declared features in the file; ``evaluate.slices`` and
``decision.value_column`` naming features),
on the raw file's first line only, so a typo is found before ``dvc repro`` or
``dvc exp run`` deletes a stage's outputs to rerun it.
"""

import posixpath
from pathlib import Path

from churn.core import integrity, io
from churn.core.contract import check_header, check_slices, check_value_column_named
from churn.core.errors import ChurnError, clip
from churn.core.params import OUTPUT_KEYS, PARAMS_FILE, Params, load_params


def check(params_file: str = PARAMS_FILE) -> str:
    """Validate; return a one-line summary. Raises ChurnError on the first problem."""
    params = load_params(params_file)
    raw = Path(params.paths.raw)
    if not raw.is_file():
        if raw.exists():  # a directory: "not found" sent the user looking for it
            raise ChurnError(f"{clip(raw, 200)}: not a regular file (paths.raw names a CSV file)")
        raise ChurnError(f"{raw}: file not found (dvc pull, or dvc repro to fetch it)")
    check_untracked(params, params_file)
    features = check_header(params.data, io.read_csv_header(raw), str(raw))
    check_slices(params.evaluate.slices, features, str(raw))
    check_value_column_named(params.decision.value_column, features, str(raw))
    how = "inferred" if params.data.features == "infer" else "declared"
    return (
        f"ok: {params_file} and {raw}: {len(features)} {how} feature column(s), "
        f"target {params.data.target!r}, id {params.data.id or 'none (rows numbered)'}"
    )


def check_untracked(params: Params, params_file: str = PARAMS_FILE) -> None:
    """No stage output is, or holds, a file git tracks.

    DVC refuses such an output, but only after the stage has written over the file
    (README.md as a model card). Outside a git work tree, or without git, there is
    nothing to ask.
    """
    outputs = {"source.out": params.source.out}
    outputs |= {f"paths.{key}": getattr(params.paths, key) for key in OUTPUT_KEYS}
    for key, path in outputs.items():
        try:
            names = integrity.tracked_files(path)
        except integrity.ProgramMissing:
            return
        # DVC's own .gitignore beside the outputs it keeps is no output of a stage.
        tracked = [name for name in names if posixpath.basename(name) != ".gitignore"]
        if tracked:
            held = "" if tracked == [path] else f" holds files git tracks ({clip(tracked[0])})"
            raise ChurnError(
                f"{params_file}: {key}: {clip(path)}{held or ' is a file git tracks'}; "
                "outputs go through DVC, not git: choose another path"
            )
