"""A model version, whole: the model and everything needed to use it, read at one revision.

A release is self-contained. Serving and scoring a ``MODEL_REF`` read the model, the
data contract, the decision policy, the metrics and the model card at that
revision, never from the workspace: each file's md5 is checked against the
``dvc.lock`` of the same revision (the model also against its release tag's
``model-md5:`` line) before it is used. Without a ref, the same files come from the
workspace, checked against the workspace's ``dvc.lock``.

Only the keys a bundle needs are read from the revision's ``params.yaml`` (the paths,
the decision section), so a release made before a later params key existed still loads.
The threshold is the one train recorded in ``paths.decision``; a revision from before
that file existed has it in ``evaluate.threshold``.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from churn.core import io
from churn.core.contract import Contract
from churn.core.errors import ChurnError, clip
from churn.core.integrity import (
    LOCK_FILE,
    commit_of,
    git,
    md5_of,
    parse_model_ref,
    project_root,
    read_lock,
    read_tracked_bytes,
    release_at,
    resolve_model_ref,
    unpickle,
)
from churn.core.params import PARAMS_FILE, PathsParams, describe

Threshold = Annotated[float, Field(ge=0.0, le=1.0)]


class _Evaluate(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    threshold: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None  # before paths.decision


class _Policy(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    policy: str
    threshold: Threshold


class _BundlePaths(PathsParams):
    decision: str | None = None  # revisions from before train recorded the policy have none

    @model_validator(mode="after")
    def _outputs_apart_and_inside(self) -> "_BundlePaths":
        """A release is read as it was made: where its stages wrote is not for a reader to judge."""
        return self


class _BundleParams(BaseModel):
    """The part of a revision's params.yaml a bundle reads; other keys may differ by version."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    paths: _BundlePaths
    evaluate: _Evaluate = _Evaluate()
    decision: dict = {}  # the campaign's assumptions, stated by the service as they are


@dataclass(frozen=True)
class Bundle:
    """One usable model version."""

    model: Any
    md5: str  # the model file's
    version: str  # the ref, or workspace-<md5 prefix>
    commit: str
    threshold: float
    contract: Contract
    metrics: dict
    card: str
    decision: dict  # the policy train recorded (threshold, how chosen) and its assumptions


@dataclass(frozen=True)
class _Source:
    """Where a bundle's files come from: a revision's tree (``rev``) or the workspace."""

    rev: str | None
    root: Path
    lock: dict
    params: _BundleParams

    @property
    def where(self) -> str:
        return LOCK_FILE if self.rev is None else f"{self.rev}:{LOCK_FILE}"

    def read(self, path: str, expected: str | None = None, use: str = "use it") -> bytes:
        """The checked bytes of DVC output ``path`` (and of ``expected``, a tag's md5)."""
        return read_tracked_bytes(path, self.lock, self.where, self.rev, self.root, expected, use)


def params_at(rev: str | None, root: str | Path = ".", params_file: str = PARAMS_FILE) -> Any:
    """The paths and decision section of ``params.yaml`` in the workspace or at revision ``rev``."""
    if rev is None:
        origin = str(Path(root) / params_file)
        if not Path(origin).is_file():
            gone = "not a regular file" if Path(origin).exists() else "file not found"
            raise ChurnError(f"{origin}: {gone}")
        raw = io.read_yaml(origin)
    else:
        origin = f"{rev}:{params_file}"
        # A directory there would be shown as its listing, and read as one string.
        kind = git("cat-file", "-t", "--end-of-options", f"{rev}:./{params_file}", cwd=root)
        if kind.strip() != "blob":
            raise ChurnError(f"{origin}: not a file")
        shown = git("show", "--end-of-options", f"{rev}:./{params_file}", cwd=root)
        raw = io.parse_yaml(shown, origin)
    if not isinstance(raw, dict):
        raise ChurnError(f"{origin}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return _BundleParams.model_validate(raw)
    except ValidationError as err:
        raise ChurnError(f"{origin}: {describe(err)}") from None


def _require_repository(ref: str, root: Path) -> None:
    """``root`` is in a git repository (a ref names a commit of one); else one line.

    Only "not a git repository" is said so: git's other refusals (a repository of another
    owner, "dubious ownership") are passed on, in git's words, which say what to do.
    """
    try:
        git("rev-parse", cwd=root)
    except ChurnError as err:
        if "not a git repository" not in str(err):
            raise
        raise ChurnError(
            f"{root.absolute()}: not inside a git repository, which {clip(ref)} names"
        ) from None


def _source(ref: str | None, root: Path, params_file: str) -> tuple[_Source, str | None]:
    if ref:
        parse_model_ref(ref)  # its form first: an option-looking ref is named as one
        _require_repository(ref, root)
    rev, tag_md5 = resolve_model_ref(ref, root) if ref else (None, None)
    source = _Source(rev, root, read_lock(rev, root), params_at(rev, root, params_file))
    return source, tag_md5


def parse_contract(data: bytes, origin: str) -> Contract:
    """A contract file's bytes as a :class:`Contract`; one line naming ``origin`` if not one."""
    try:
        return Contract.from_dict(json.loads(data))
    except (ValueError, KeyError, TypeError) as err:
        raise ChurnError(f"{origin}: not a contract written by prepare ({err})") from None


def contract_at(
    ref: str | None, root: str | Path = ".", params_file: str = PARAMS_FILE
) -> Contract:
    """The checked data contract of model version ``ref`` (None: the workspace's)."""
    source, _ = _source(ref, project_root(root), params_file)
    path = source.params.paths.contract
    return parse_contract(source.read(path), _origin(source, path))


def _version(ref: str, commit: str, root: Path) -> str:
    """The version a ref names: a stage's is its release (``churn-model@v1.0.0``).

    Answers stored with ``churn-model#prod`` named no model once prod moved on.
    """
    if parse_model_ref(ref).kind != "stage":
        return ref
    return f"{release_at(commit, ref.partition('#')[0], root)} ({ref})"


def load_bundle(ref: str | None, root: str | Path = ".", params_file: str = PARAMS_FILE) -> Bundle:
    """Every file of model version ``ref`` (None: the workspace), each checked, then unpickled.

    Raises:
        ChurnError: One line naming the ref or file: an unknown ref, a file the lock
            records no md5 for, or bytes that differ from it (nothing is unpickled).
    """
    root = project_root(root)  # from a subfolder, the project's files, as DVC finds them
    source, tag_md5 = _source(ref, root, params_file)
    paths = source.params.paths
    model_bytes = source.read(paths.model, tag_md5, "unpickle it")
    metrics_path = f"{paths.reports}/metrics.json"
    contract = parse_contract(source.read(paths.contract), _origin(source, paths.contract))
    metrics = _json(source.read(metrics_path), _origin(source, metrics_path))
    card = source.read(paths.card).decode("utf-8", errors="replace")
    policy = _policy(source)
    md5 = md5_of(model_bytes)
    commit = commit_of(source.rev or "HEAD", root)
    model = unpickle(model_bytes, _origin(source, paths.model))  # md5s matched: safe
    check_model(model, contract, _origin(source, paths.model))
    return Bundle(
        model=model,
        md5=md5,
        version=_version(ref, commit, root) if ref else f"workspace-{md5[:12]}",
        commit=commit,
        threshold=policy["threshold"],
        contract=contract,
        metrics=metrics,
        card=card,
        decision=policy,
    )


def check_model(model: Any, contract: Contract, origin: str) -> None:
    """``model`` is a two-class classifier of the contract's features; else one line.

    ``dvc commit`` records any bytes: a dict, or the featurizer, saved where the model goes
    passed every md5 check. Score then stopped in a traceback, and the service said it was
    ready and answered every prediction with a 500. So did a model fitted on other columns
    than the contract of its revision.
    """
    if not callable(getattr(model, "predict_proba", None)):
        raise ChurnError(
            f"{origin}: holds a {clip(type(model).__name__)}, not a classifier (no predict_proba)"
        )
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise ChurnError(f"{origin}: a classifier never fitted (no classes_)")
    if len(classes) != 2:  # churn or not
        raise ChurnError(f"{origin}: a classifier of {len(classes)} classes, not of two")
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is None:
        return
    names = [str(name) for name in fitted]
    missing = [name for name in names if name not in contract.features]
    unused = [name for name in contract.features if name not in set(names)]
    if missing or unused:
        lacks = f"; the contract lacks {clip(', '.join(map(repr, missing)), 120)}"
        has = f"; the model does not read {clip(', '.join(map(repr, unused)), 120)}"
        raise ChurnError(
            f"{origin}: fitted on other columns than its revision's contract"
            f"{lacks if missing else ''}{has if unused else ''}"
        )


def _policy(source: _Source) -> dict:
    """The recorded decision policy with the assumptions behind it (or the old fixed threshold)."""
    path = source.params.paths.decision
    section = recorded_decision(source.lock) or source.params.decision
    assumptions = {k: v for k, v in section.items() if k != "threshold"}
    if path is None:
        threshold = source.params.evaluate.threshold
        if threshold is None:
            raise ChurnError(f"{_origin(source, PARAMS_FILE)}: no decision path and no threshold")
        return {"policy": "fixed", "threshold": threshold}
    origin = _origin(source, path)
    policy = _valid_policy(_json(source.read(path), origin), origin)
    return {**policy.model_dump(), "assumptions": assumptions}


def recorded_decision(lock: dict) -> dict | None:
    """The ``decision:`` section a stage recorded in ``lock`` as it ran (evaluate's, whole).

    The assumptions the threshold and the metrics were made with: params.yaml may have
    been edited since (a contact cost of 80 was stated beside a threshold chosen at 50).
    """
    for stage in _mapping(lock.get("stages")).values():
        recorded = _mapping(_mapping(_mapping(stage).get("params")).get(PARAMS_FILE))
        section = recorded.get("decision")
        if isinstance(section, dict):
            return section
    return None


def _mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def check_policy(raw: object, origin: str) -> dict:
    """``raw`` if it is a decision policy as train records it (a name, a threshold in 0..1)."""
    _valid_policy(raw, origin)
    return raw


def _valid_policy(raw: object, origin: str) -> _Policy:
    try:
        return _Policy.model_validate(raw)
    except ValidationError as err:
        raise ChurnError(f"{origin}: {describe(err)}") from None


def _origin(source: _Source, path: str) -> str:
    return path if source.rev is None else f"{source.rev}:{path}"


def _json(data: bytes, origin: str) -> dict:
    try:
        value = json.loads(data)
    except ValueError as err:
        raise ChurnError(f"{origin}: not JSON ({err})") from None
    if not isinstance(value, dict):
        raise ChurnError(f"{origin}: expected a JSON object")
    return value
