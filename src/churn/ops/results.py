"""One revision's results: params, dvc.lock, metrics and per-row test predictions.

The PR report compares the workspace with a base revision; a release compares it
with the previous release. Both read the two sides here: the workspace as
reproduced, and a revision through DVC (local cache or remote) or, when its
outputs cannot be fetched, by reproducing it in a temporary git worktree.
"""

import hashlib
import json
import logging
import math
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn.core import decision, io
from churn.core.errors import ChurnError, clip
from churn.core.integrity import (
    LOCK_FILE,
    check_dvc_config,
    git_or_none,
    md5_of,
    recorded_md5,
    remote_errors,
)
from churn.core.params import DecisionParams, ReportParams
from churn.core.stats import (
    DIRECTIONS,
    HIGHER_IS_BETTER,
    Comparison,
    decision_points,
    paired_bootstrap,
    paired_decision_bootstrap,
    score,
    unpaired_bootstrap,
    unpaired_decision_bootstrap,
)

log = logging.getLogger("churn.results")


@dataclass
class Side:
    """One revision's results; ``metrics`` is None when it has none."""

    label: str
    params: dict = field(default_factory=dict)
    lock: dict = field(default_factory=dict)
    metrics: dict | None = None
    predictions: pd.DataFrame | None = None
    raw_rows: int | None = None
    note: str = ""


def paths_of(params: dict) -> dict:
    """The ``paths`` section of a raw params mapping (``{}`` when absent)."""
    return mapping(params.get("paths", {}), "params.yaml: paths")


def mapping(value: object, origin: str) -> dict:
    """``value`` if it is a mapping with text keys; a revision's file may hold anything."""
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise ChurnError(f"{origin}: expected a mapping of names, found {type(value).__name__}")
    return value


def metrics_of(raw: object, origin: str, required: bool) -> dict:
    """metrics.json as evaluate writes it: each metric a finite number, ``decision`` a mapping.

    ``required``: every headline metric is there (the workspace's, which the tables
    show); a revision from before a metric existed may lack it and shows a dash.
    """
    metrics = mapping(raw, origin)
    for name in DIRECTIONS:
        if name not in metrics:
            if required and name in HIGHER_IS_BETTER:
                raise ChurnError(f"{origin}: {name}: missing (run dvc repro)")
            continue
        value = metrics[name]
        if not finite_number(value):
            raise ChurnError(
                f"{origin}: {name}: {clip(json.dumps(value), 40)} is not a finite number"
            )
    policy = mapping(metrics.get("decision", {}), f"{origin}: decision")
    threshold = policy.get("threshold")
    if threshold is not None and not _probability(threshold):
        raise ChurnError(
            f"{origin}: decision.threshold: {clip(json.dumps(threshold), 40)} is not in 0..1"
        )
    return metrics


def finite_number(value: object) -> bool:
    """A JSON number that is a number: not true/false, not NaN or infinite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _probability(value: object) -> bool:
    return finite_number(value) and 0 <= value <= 1


PREDICTION_COLUMNS = ("id", "label", "probability")


def predictions_of(text: str, origin: str) -> pd.DataFrame:
    """predictions.csv as evaluate writes it: id, 0/1 label, probability in 0..1 (and value)."""
    try:
        frame = pd.read_csv(StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError) as err:
        raise ChurnError(f"{origin}: cannot read as CSV ({clip(err, 120)})") from None
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ChurnError(f"{origin}: missing column(s) {', '.join(map(repr, missing))}")
    if not frame["label"].isin([0, 1]).all():
        raise ChurnError(f"{origin}: label: not 0 or 1 in every row")
    numbers = pd.to_numeric(frame["probability"], errors="coerce")
    if not numbers.between(0, 1).all():
        raise ChurnError(f"{origin}: probability: not a number in 0..1 in every row")
    if "value" in frame and not pd.to_numeric(frame["value"], errors="coerce").notna().all():
        raise ChurnError(f"{origin}: value: not a number in every row")
    return frame


def load_head(root: Path) -> Side:
    """The workspace: params, dvc.lock, metrics and predictions as reproduced."""
    params = mapping(io.read_yaml(root / "params.yaml"), "params.yaml")
    paths = paths_of(params)
    side = Side("this branch", params=params)
    lock_path = root / LOCK_FILE
    if lock_path.exists():
        side.lock = mapping(io.read_yaml(lock_path), LOCK_FILE)
    reports = paths.get("reports", "reports")
    metrics = root / reports / "metrics.json"
    if not metrics.exists() and recorded_md5(side.lock or {}, f"{reports}/metrics.json"):
        # The report said "this branch has no metrics: dvc repro did not evaluate a model",
        # exit 0, of a clone where dvc.lock says it did and nothing was pulled.
        raise ChurnError(
            f"{reports}/metrics.json: recorded in {LOCK_FILE} but missing: dvc pull, "
            "dvc checkout or dvc repro first"
        )
    if metrics.exists():
        if not side.lock:  # nothing to check the files against: they may be any commit's
            raise ChurnError(
                f"{LOCK_FILE}: file not found: {reports}/metrics.json cannot be checked "
                "against it (dvc repro)"
            )
        text = locked_text(root, f"{reports}/metrics.json", side.lock)
        side.metrics = metrics_of(io.parse_json(text, str(metrics)), str(metrics), required=True)
        text = locked_text(root, paths["predictions"], side.lock)
        side.predictions = predictions_of(text, str(root / paths["predictions"]))
    raw = root / paths.get("raw", "")
    side.raw_rows = count_rows(raw, str(raw)) if raw.is_file() else None
    return side


NOT_LOCKED = (
    f"not the output {LOCK_FILE} records (another commit's?): dvc checkout, or dvc repro, first"
)


def locked_text(root: Path, output: str, lock: dict) -> str:
    """The workspace's ``output`` as text, once its bytes are the file dvc.lock records.

    After ``git checkout`` without ``dvc checkout``, the files are another commit's: a
    report would show them as this branch's results. A file the lock does not record
    is read as it is.
    """
    path = root / output
    data = io.require_file(path).read_bytes()
    expected = recorded_md5(lock, output)
    if expected and md5_of(data) != expected:
        raise ChurnError(f"{output}: {NOT_LOCKED}")
    return io.decode_utf8(data, str(path))


def count_rows(source: Path | Any, origin: str) -> int | None:
    """The raw file's data rows for the report's data line, a block at a time; None if unreadable.

    Informational only: a raw file prepare would refuse is prepare's to name, not a
    traceback of the report's.
    """
    try:
        with pd.read_csv(
            source, usecols=[0], chunksize=1_000_000, encoding="utf-8", compression=None
        ) as reader:
            return sum(len(block) for block in reader)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError, ValueError) as err:
        log.warning("%s: rows not counted (%s)", origin, clip(" ".join(str(err).split()), 120))
        return None


def load_base(root: Path, rev: str) -> Side:
    """The revision's results, fetched through DVC or reproduced in a worktree."""
    side = Side(rev, params=yaml_at(root, rev, "params.yaml"))
    side.lock = yaml_at(root, rev, LOCK_FILE)
    if "evaluate" not in mapping(side.lock.get("stages", {}), f"{rev}:{LOCK_FILE}: stages"):
        side.note = f"{rev} has no evaluated pipeline in its dvc.lock"
        side.lock = {}
        return side
    paths = paths_of(side.params)
    metrics_path = f"{paths.get('reports', 'reports')}/metrics.json"
    if not isinstance(paths.get("predictions"), str):
        side.note = f"{rev}:params.yaml names no paths.predictions: nothing to compare with"
        return side
    wanted = [metrics_path, paths["predictions"]]
    texts = read_through_dvc(root, rev, wanted, side.lock) or reproduce_in_worktree(
        root, rev, wanted, side.lock
    )
    if texts is None:
        side.note = (
            f"could not get {rev}'s outputs: not in the DVC cache or remote, and "
            f"reproducing it in a temporary worktree failed or gave other bytes than its "
            f"{LOCK_FILE} records"
        )
        return side
    origin = f"{rev}:{metrics_path}"
    side.metrics = metrics_of(io.parse_json(texts[0], origin), origin, required=False)
    side.predictions = predictions_of(texts[1], f"{rev}:{paths.get('predictions')}")
    side.raw_rows = rows_through_dvc(root, rev, str(paths.get("raw", "")), side.lock)
    return side


class _Hashing:
    """A binary stream's reader that hashes what it reads (md5, as dvc.lock records)."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.md5 = stream, hashlib.md5()  # noqa: S324 (DVC's own hash)

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.md5.update(data)
        return data

    def rest(self) -> str:
        """The md5 of the whole stream, once what the reader left is read too."""
        while self.read(1 << 20):
            pass
        return self.md5.hexdigest()


def rows_through_dvc(root: Path, rev: str, path: str, lock: dict) -> int | None:
    """The data rows of raw file ``path`` at ``rev``, streamed through DVC; None if unknown.

    Streamed and counted a block at a time (the whole text of a 10M-row file in memory
    cost about six times its size), and hashed as it goes: bytes other than ``rev``'s
    dvc.lock records are no count of its.
    """
    import dvc.api

    expected = recorded_md5(lock, path)
    if not expected:
        return None
    origin = f"{rev}:{path}"
    try:
        with dvc.api.open(path, repo=str(root), rev=rev, mode="rb") as stream:
            reader = _Hashing(stream)
            rows = count_rows(reader, origin)
            md5 = reader.rest()
    except remote_errors() as err:
        log.info("%s: not available through DVC (%s)", origin, type(err).__name__)
        return None
    if md5 != expected:
        log.warning(
            "%s: md5 %s, not the %s its %s records: rows not counted",
            origin,
            md5,
            expected,
            LOCK_FILE,
        )
        return None
    return rows


def yaml_at(root: Path, rev: str, path: str) -> dict:
    """The YAML mapping in ``path`` at git revision ``rev`` (``{}`` when the file is absent)."""
    # --end-of-options: a rev like "--output=x" is a name, never an option of git show.
    text = git_or_none("show", "--end-of-options", f"{rev}:./{path}", cwd=root)
    return mapping(io.parse_yaml(text, f"{rev}:{path}"), f"{rev}:{path}")


def read_through_dvc(root: Path, rev: str, paths: list[str], lock: dict) -> list[str] | None:
    """The text of DVC-tracked files at ``rev`` (cache or remote), or None.

    Each file's bytes must match the md5 ``lock`` (``rev``'s dvc.lock) records: a cache
    or remote is storage anyone with write access can change, and these bytes become a
    report, a release gate's verdict or release notes. A file the lock does not record
    cannot be checked and counts as not available.
    """
    import dvc.api

    expected = [recorded_md5(lock, p) for p in paths]
    if None in expected:
        log.info("%s: %s records no md5 for %s", rev, LOCK_FILE, paths[expected.index(None)])
        return None
    try:
        raw = [dvc.api.read(p, repo=str(root), rev=rev, mode="rb") for p in paths]
    except remote_errors() as err:
        check_dvc_config(root)  # a broken config file is the user's to fix, not a note
        log.info("%s: outputs not available through DVC (%s)", rev, type(err).__name__)
        return None
    for path, data, md5 in zip(paths, raw, expected, strict=True):
        if md5_of(data) != md5:
            raise ChurnError(
                f"{rev}:{path}: md5 {md5_of(data)} does not match {md5} in {rev}:{LOCK_FILE}: "
                "the DVC cache or remote holds other bytes; refusing to use them"
            )
    # UTF-8 whatever the locale; a stray byte is one line naming the file, not a traceback.
    return [io.decode_utf8(data, f"{rev}:{p}") for p, data in zip(paths, raw, strict=True)]


def reproduce_in_worktree(root: Path, rev: str, paths: list[str], lock: dict) -> list[str] | None:
    """Reproduce ``rev`` in a temporary git worktree and read ``paths`` there, or None.

    Each file must be the one ``lock`` (``rev``'s dvc.lock) records: reproduced with
    other libraries, or a seed the code does not take, it is results ``rev`` never had.
    """
    log.warning("%s: reproducing the base in a temporary git worktree", rev)
    with tempfile.TemporaryDirectory(prefix="churn-base-") as tmp:
        tree = Path(tmp) / "base"
        if git_or_none("worktree", "add", "--detach", str(tree), rev, cwd=root) is None:
            return None
        try:
            returncode, stderr = run_group(["dvc", "repro"], tree)
            if returncode != 0:
                log.warning("%s: dvc repro failed: %s", rev, stderr.strip()[-500:])
                return None
            data = [(tree / p).read_bytes() for p in paths]
            for path, got in zip(paths, data, strict=True):
                if md5_of(got) != recorded_md5(lock, path):
                    log.warning(
                        "%s: reproduced %s is not the file its %s records", rev, path, LOCK_FILE
                    )
                    return None
            return [io.decode_utf8(got, f"{rev}:{p}") for p, got in zip(paths, data, strict=True)]
        finally:
            git_or_none("worktree", "remove", "--force", str(tree), cwd=root)


def run_group(cmd: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``cmd`` in a process group of its own: its status and stderr.

    If this command is stopped (Ctrl-C, SIGTERM), the whole group goes: killing only
    ``dvc`` left its running stage orphaned, working on in a deleted worktree.
    """
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        encoding="utf-8",
        errors="replace",  # only logged
        start_new_session=True,
    )
    try:
        _, stderr = proc.communicate()
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return proc.returncode, stderr


def same_rows(base: pd.DataFrame, head: pd.DataFrame) -> bool:
    """Both evaluated on the very same test rows (ids and labels)?"""
    key = ["id", "label"]
    return (
        base[key]
        .sort_values(key)
        .reset_index(drop=True)
        .equals(head[key].sort_values(key).reset_index(drop=True))
    )


def threshold_of(side: Side) -> float | None:
    """The decision threshold a side's model was measured at (None if it records none).

    Evaluate records it in the metrics (``decision/threshold``); revisions from
    before that had it in ``evaluate.threshold`` of their params.
    """
    recorded = (side.metrics or {}).get("decision", {}).get("threshold")
    if recorded is None:
        recorded = (side.params.get("evaluate") or {}).get("threshold")
    return None if recorded is None else float(recorded)


def own_points(side: Side, policy: DecisionParams | None = None) -> dict[str, float]:
    """``side``'s metrics on its own rows, in their own order: what evaluate computed.

    Not :func:`compare`'s head values, which, paired, follow the base's row order: where
    scores tie at the top share, lift_at_k and capture_at_k then took other rows.
    """
    frame = side.predictions
    y, p = frame["label"].to_numpy(), frame["probability"].to_numpy()
    threshold = threshold_of(side)
    points = score(y, p, threshold if threshold is not None else 0.5)
    if policy is not None and threshold is not None and "value" in frame:
        value = frame["value"].to_numpy(dtype=float)
        points |= decision_points(y, *decision.policy_rows(y, p, value, threshold, policy))
    return points


def compare(
    base: Side, head: Side, params: ReportParams, policy: DecisionParams | None = None
) -> list[Comparison]:
    """Bootstrap head minus base on the headline metrics; paired when the rows match.

    With ``policy`` (the head's ``decision:`` params), also on the decision metrics:
    each side contacts the customers at or above its own recorded threshold, and both
    are valued with the head's assumptions, so the difference is what the change is worth.
    Sides without a recorded threshold or customer values get the headline metrics only.
    """
    options = {"resamples": params.resamples, "seed": params.seed, "confidence": params.confidence}
    b, h = base.predictions, head.predictions
    thresholds = (threshold_of(base), threshold_of(head))
    cut = thresholds[1] if thresholds[1] is not None else 0.5  # thresholded metrics: not judged
    decide = policy is not None and None not in thresholds
    if same_rows(b, h):
        joined = b.merge(h, on=["id", "label"], suffixes=("_base", "_head"))
        y = joined["label"].to_numpy()
        pb, ph = joined["probability_base"].to_numpy(), joined["probability_head"].to_numpy()
        found = paired_bootstrap(y, pb, ph, **options, threshold=cut)
        # The head's values for both: the same customers, valued by one yardstick.
        value = joined.get("value_head", joined.get("value"))
        if not decide or value is None:
            return found
        sides = [
            decision.policy_rows(y, p, value.to_numpy(dtype=float), t, policy)
            for p, t in ((pb, thresholds[0]), (ph, thresholds[1]))
        ]
        return found + paired_decision_bootstrap(y, *sides, **options)
    found = unpaired_bootstrap(
        (b["label"].to_numpy(), b["probability"].to_numpy()),
        (h["label"].to_numpy(), h["probability"].to_numpy()),
        **options,
        threshold=cut,
    )
    if not decide or "value" not in b or "value" not in h:
        return found
    # Other customers: the base's values, as its own assumptions made them, restated
    # under the head's (a changed decision.value once read as a better model).
    base_value = restated_values(b, base.params, policy)
    if base_value is None:
        return found
    sides = [
        _rows(b, base_value, thresholds[0], policy),
        _rows(h, h["value"].to_numpy(dtype=float), thresholds[1], policy),
    ]
    return found + unpaired_decision_bootstrap(*sides, **options)


# The decision params a decision metric's value depends on, beside the model's scores:
# all but how the threshold is chosen (a new assumption counts until said otherwise).
CHOOSING_KEYS = ("threshold", "cv_folds", "cv_max_rows")
VALUATION_KEYS = tuple(key for key in DecisionParams.model_fields if key not in CHOOSING_KEYS)


def same_valuation(base_params: dict, head_params: dict) -> bool:
    """Whether both sides measured their decision metrics under the same assumptions."""
    sides = [params.get("decision") for params in (base_params, head_params)]
    base, head = (side if isinstance(side, dict) else {} for side in sides)
    return all(base.get(key) == head.get(key) for key in VALUATION_KEYS)


def restated_values(frame: pd.DataFrame, params: dict, policy: DecisionParams) -> np.ndarray | None:
    """The customer values of ``frame`` under ``policy``, from those its ``params`` gave them.

    A value is ``decision.value`` times one column (or alone): the same column, or none
    on both sides, rescales; another column, or a recorded value of 0, cannot be undone
    from the values alone, so None (the decision metrics are then not compared).
    """
    recorded = params.get("decision")
    recorded = recorded if isinstance(recorded, dict) else {}
    value, column = recorded.get("value"), recorded.get("value_column")
    if column != policy.value_column or not finite_number(value) or value == 0:
        return None
    return frame["value"].to_numpy(dtype=float) * (policy.value / value)


def _rows(
    frame: pd.DataFrame, value: np.ndarray, threshold: float, policy: DecisionParams
) -> tuple:
    """``(labels, gain, top)`` of one side's predictions, its customers worth ``value``."""
    y, proba = frame["label"].to_numpy(), frame["probability"].to_numpy()
    return (y, *decision.policy_rows(y, proba, value, threshold, policy))
