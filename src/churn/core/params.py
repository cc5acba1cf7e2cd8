"""The only reader of ``params.yaml``: one typed, validated object per section.

Unknown keys, missing keys, wrong types and out-of-range values are rejected
here, before any stage does work, with the dotted key in the message.
"""

import posixpath
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from churn.core import io
from churn.core.errors import ChurnError, clip

PARAMS_FILE = "params.yaml"

Probability = Annotated[float, Field(gt=0.0, lt=1.0)]
# A count of rows, leaves or levels. scikit-learn's trees keep these in C integers, where
# 1e29 raised OverflowError from inside joblib; no table or tree reaches 2**31 anyway.
COUNT_MAX = 2**31 - 1
PositiveInt = Annotated[int, Field(ge=1, le=COUNT_MAX)]
RowCap = Annotated[int, Field(ge=1000, le=COUNT_MAX)]  # rows sampled for a plot or a bound
# Loops of work a typo should not turn into a run that never ends (1e12 repeats or trees).
Iterations = Annotated[int, Field(ge=1, le=1_000_000)]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
# A bound or a floor must be a real number: .nan compares false to everything, .inf makes
# a contract or a metrics file that is no longer JSON.
Finite = Annotated[float, Field(allow_inf_nan=False)]
# Money per customer or contact. Bounded well inside float range: summed over ten million
# customers and scaled per 1,000, 1e308 would overflow the profit to infinity.
MAX_MONEY = 1e12
Money = Annotated[float, Field(ge=0.0, le=MAX_MONEY, allow_inf_nan=False)]
# A path, a column name or a label: an empty one names nothing (and a path "" is ".").
Name = Annotated[str, Field(min_length=1)]


class Section(BaseModel):
    """Base for every section: strict types, no unknown keys, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PathsParams(Section):
    """Where every stage reads and writes; dvc.yaml interpolates the same keys."""

    raw: Name
    train: Name
    test: Name
    contract: Name
    featurizer: Name
    model: Name
    reports: Name
    predictions: Name
    card: Name
    decision: Name  # the decision policy train records next to the model

    @model_validator(mode="after")
    def _outputs_apart_and_inside(self) -> "PathsParams":
        """Each output its own file, inside the project, and none over the input.

        A test split written over the training split trained and scored the model on the
        same rows (metrics too good, exit 0); an output outside the project was written
        before DVC refused it; metrics.json and plots/ are evaluate's in ``reports``.
        """
        _printable("raw", self.raw)
        seen: dict[str, str] = {}
        for key in OUTPUT_KEYS:
            path = output_path(key, getattr(self, key))
            if path in seen:
                raise ValueError(f"{key}: the same file as paths.{seen[path]}")
            seen[path] = key
        reports = posixpath.normpath(self.reports)
        # evaluate's own files in paths.reports; the other outputs may sit beside them.
        taken = {f"{reports}/metrics.json": "reports", f"{reports}/plots": "reports"}
        within = {path: key for path, key in seen.items() if key != "reports"} | taken
        for path, key in seen.items():
            for other, owner in within.items():
                if owner != key and _within(path, other):
                    what = "evaluate's, in paths.reports" if other in taken else f"paths.{owner}"
                    raise ValueError(f"{key}: {clip(path)} collides with {other} ({what})")
        if posixpath.normpath(self.raw) in seen:
            raise ValueError(f"raw: the same file as paths.{seen[posixpath.normpath(self.raw)]}")
        return self


# The files that define the run: a stage writing one (params.yaml as Parquet) broke the
# pipeline before DVC could refuse the output.
PIPELINE_FILES = (PARAMS_FILE, "dvc.yaml", "dvc.lock")


def output_path(key: str, value: str) -> str:
    """``value`` normalized, if a stage may write there; else ValueError naming ``key``.

    Inside the project, in no hidden folder (``.git``, ``.dvc``: a ``.git/config`` of
    Parquet broke the repository) and none of the pipeline's own files.
    """
    _printable(key, value)
    path = posixpath.normpath(value)
    parts = path.split("/")
    if posixpath.isabs(path) or path == "." or parts[0] == "..":
        raise ValueError(f"{key}: {clip(value)} is not inside the project")
    hidden = [part for part in parts if part.startswith(".")]
    if hidden:
        raise ValueError(f"{key}: {clip(value)} is in a hidden folder or file ({clip(hidden[0])})")
    if path in PIPELINE_FILES:
        raise ValueError(f"{key}: {clip(value)} is one of the files that define the pipeline")
    return path


def _printable(key: str, value: str) -> None:
    # A newline in a path split an error into lines, the second one free to say anything.
    if not value.isprintable():
        raise ValueError(f"{key}: {clip(repr(value))} has a control character")


# Every path a stage writes (raw is read).
OUTPUT_KEYS = (
    "train", "test", "contract", "featurizer", "model", "reports", "predictions", "card",
    "decision",
)  # fmt: skip


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent + "/")


class SourceParams(Section):
    """The packaged dataset the fetch stage materializes."""

    package: Name
    item: Name
    out: Name


class FeatureRule(Section):
    """The contract of one feature column: its type and what values it may take."""

    type: Literal["numeric", "categorical"]
    nullable: bool = False
    min: Finite | None = None
    max: Finite | None = None
    # An empty list would allow no value at all; to allow any, leave categories out.
    categories: Annotated[list[Name], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _rules_fit_the_type(self) -> "FeatureRule":
        if self.type == "categorical" and (self.min is not None or self.max is not None):
            raise ValueError("min/max apply to numeric columns only")
        if self.type == "numeric" and self.categories is not None:
            raise ValueError("categories apply to categorical columns only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        repeated = _first_repeated(self.categories or [])
        if repeated is not None:  # a typo more often than not
            raise ValueError(f"categories lists {clip(repr(repeated))} twice")
        return self


def _first_repeated(values: list[str]) -> str | None:
    """The first value of ``values`` given a second time, or None."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


class DataParams(Section):
    """The raw table's contract: target, id and every feature, or ``infer`` for the features."""

    target: Name
    positive_label: Name | int
    labels: list[Name | int] | None = None
    id: Name | None
    features: Annotated[dict[Name, FeatureRule], Field(min_length=1)] | Literal["infer"]

    @model_validator(mode="after")
    def _labels_are_two_including_the_positive(self) -> "DataParams":
        if self.labels is not None and (
            len(set(map(str, self.labels))) != 2
            or str(self.positive_label) not in map(str, self.labels)
        ):
            given = clip(repr(self.positive_label))
            raise ValueError(
                f"labels must be two different values including positive_label {given}"
            )
        return self

    @model_validator(mode="after")
    def _target_id_and_features_are_distinct(self) -> "DataParams":
        if self.id is not None and self.id == self.target:
            raise ValueError(
                f"id and target are both {clip(repr(self.id))}: two columns are needed"
            )
        if isinstance(self.features, dict):
            for role, name in (("target", self.target), ("id", self.id)):
                if name in self.features:
                    raise ValueError(f"features: {clip(repr(name))} is the {role}, not a feature")
        return self


class PrepareParams(Section):
    """Train/test split."""

    test_size: Probability
    seed: Seed


class FeaturizeParams(Section):
    """Feature transformer fitted on the training split."""

    numeric_impute: Literal["median", "mean"]
    scale: bool
    # train holds the training split's features whole (rows x features, float64): a
    # column of thousands of categories made that grow with rows times categories.
    max_matrix_gb: Annotated[float, Field(gt=0.0, le=1e6, allow_inf_nan=False)] = 4.0


class LogisticRegressionParams(Section):
    """Hyperparameters of :class:`sklearn.linear_model.LogisticRegression`."""

    # inf is scikit-learn's own spelling of "no penalty", so it stays allowed here.
    C: Annotated[float, Field(gt=0.0)]
    max_iter: Iterations


class RandomForestParams(Section):
    """Hyperparameters of :class:`sklearn.ensemble.RandomForestClassifier`."""

    n_estimators: Annotated[int, Field(ge=1, le=10_000)]
    max_depth: PositiveInt | None
    min_samples_leaf: PositiveInt
    max_features: Literal["sqrt", "log2"] | Annotated[float, Field(gt=0.0, le=1.0)]


class HistGradientBoostingParams(Section):
    """Hyperparameters of :class:`sklearn.ensemble.HistGradientBoostingClassifier`."""

    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)]
    max_iter: Iterations
    max_leaf_nodes: Annotated[int, Field(ge=2, le=COUNT_MAX)]
    min_samples_leaf: PositiveInt
    l2_regularization: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


ModelName = Literal["logistic_regression", "random_forest", "hist_gradient_boosting"]


class TrainParams(Section):
    """Which classifier to fit, and every classifier's hyperparameters."""

    model: ModelName
    seed: Seed
    class_weight: Literal["balanced"] | None
    logistic_regression: LogisticRegressionParams
    random_forest: RandomForestParams
    hist_gradient_boosting: HistGradientBoostingParams


class EvaluateParams(Section):
    """Test-set evaluation: permutation importance, calibration, intervals, group table."""

    # Each repeat shuffles every feature once and scores the sample again.
    importance_repeats: Annotated[int, Field(ge=1, le=1_000)]
    importance_top: PositiveInt
    importance_max_rows: RowCap  # 3 rows gave NaN importances: a sample without a class
    calibration_bins: Annotated[int, Field(ge=2, le=100)]
    ci_resamples: Annotated[int, Field(ge=100, le=100_000)]
    ci_max_rows: RowCap
    plot_max_rows: RowCap
    slices: list[Name]
    seed: Seed

    @field_validator("slices")
    @classmethod
    def _each_slice_once(cls, slices: list[str]) -> list[str]:
        twice = sorted({s for s in slices if slices.count(s) > 1})
        if twice:
            raise ValueError(f"listed more than once: {clip(', '.join(map(repr, twice)))}")
        return slices


class DecisionParams(Section):
    """Whom to contact: the campaign's economics and the probability threshold.

    Value of keeping a customer: ``value``, or ``value`` times the numeric feature
    ``value_column`` (e.g. 12 x monthly_charges). ``threshold`` is a fixed probability
    or ``max_profit``: chosen by train on cross-validated out-of-fold predictions of
    the training split.
    """

    top_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.10
    value: Money
    value_column: str | None = None
    contact_cost: Money
    retention_rate: Annotated[float, Field(ge=0.0, le=1.0)]
    incentive_cost: Money = 0.0
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] | Literal["max_profit"]
    cv_folds: Annotated[int, Field(ge=2, le=20)] = 5
    cv_max_rows: RowCap = 200_000

    @field_validator("threshold", mode="before")
    @classmethod
    def _probability_or_max_profit(cls, value: object) -> object:
        if isinstance(value, bool) or (isinstance(value, str) and value != "max_profit"):
            raise ValueError(f"must be a probability or max_profit (got {clip(repr(value))})")
        return value


class ReportParams(Section):
    """The pull-request report's bootstrap."""

    resamples: Annotated[int, Field(ge=100, le=100_000)]
    seed: Seed
    confidence: Probability


SHARE_METRICS = ("roc_auc", "average_precision", "capture_at_k")  # between 0 and 1


class ReleaseParams(Section):
    """The gate a model must pass to be released."""

    metric: Literal["roc_auc", "average_precision", "lift_at_k", "capture_at_k", "profit"]
    minimum: Finite

    @model_validator(mode="after")
    def _minimum_fits_the_metric(self) -> "ReleaseParams":
        if self.metric in SHARE_METRICS and not 0.0 < self.minimum < 1.0:
            raise ValueError(
                f"minimum must be between 0 and 1 for {self.metric} (got {self.minimum})"
            )
        return self


class MonitorParams(Section):
    """Drift thresholds for `make monitor`."""

    bins: Annotated[int, Field(ge=2, le=100)]
    psi: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    ks_statistic: Probability
    alpha: Probability
    unseen_share: Probability
    out_of_range_share: Probability
    missing_change: Probability
    min_rows: PositiveInt


class Params(Section):
    """All of ``params.yaml``."""

    paths: PathsParams
    source: SourceParams
    data: DataParams
    prepare: PrepareParams
    featurize: FeaturizeParams
    train: TrainParams
    evaluate: EvaluateParams
    decision: DecisionParams
    report: ReportParams
    release: ReleaseParams
    monitor: MonitorParams

    @model_validator(mode="after")
    def _source_out_apart(self) -> "Params":
        """The file fetch writes: where an output may go, and not over another stage's."""
        path = output_path("source.out", self.source.out)
        for key in OUTPUT_KEYS:
            other = posixpath.normpath(getattr(self.paths, key))
            if _within(path, other) or _within(other, path):
                raise ValueError(f"source.out: {clip(path)} collides with paths.{key}")
        return self

    @model_validator(mode="after")
    def _value_column_is_a_numeric_feature(self) -> "Params":
        column, features = self.decision.value_column, self.data.features
        if column is None or features == "infer":
            return self  # checked against the inferred contract by prepare, train, evaluate
        rule = features.get(column)
        if rule is None or rule.type != "numeric":
            raise ValueError(
                f"decision.value_column: {clip(repr(column))} is not a numeric feature in "
                "data.features"
            )
        return self


def parse_params(raw: object, origin: str = PARAMS_FILE) -> Params:
    """Validate an already-parsed mapping; the first problem becomes one line."""
    if not isinstance(raw, dict):
        raise ChurnError(f"{origin}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ChurnError(f"{origin}: {describe(err)}") from None


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Read and validate ``params.yaml``."""
    p = Path(path)
    if p.is_dir():
        raise ChurnError(f"{p}: a directory, not a params file")
    if not p.is_file():
        raise ChurnError(f"{p}: file not found{_root_hint(p)}")
    return parse_params(io.read_yaml(p), str(p))


def _root_hint(path: Path) -> str:
    """Where the project is, when ``path`` is relative and a folder above the cwd has it."""
    if path.is_absolute():
        return ""
    for parent in Path.cwd().parents:
        if (parent / path).is_file() and (parent / "dvc.yaml").is_file():
            return f" here; the project is {parent}: run churn there"
    return ""


def describe(err: ValidationError) -> str:
    """Turn pydantic's first error into ``key: problem`` with the key dotted."""
    errors = err.errors(include_url=False)
    first = errors[0]
    key = clip(".".join(map(str, _key_parts(first["loc"]))), 200)
    kind = first["type"]
    if not key:  # a check across sections names its key itself
        return first["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return f"{key}: missing key"
    if kind == "extra_forbidden":
        return f"{key}: unknown key (allowed: {', '.join(_allowed_keys(first['loc']))})"
    if kind == "value_error":
        return f"{key}: {first['msg'].removeprefix('Value error, ')}"
    given = first.get("input")
    # pydantic names the one type tried; a key that may also be null says so, for the fix.
    nullable = "; null is allowed too" if _nullable(first["loc"]) and given is not None else ""
    return f"{key}: {_either(errors, first)} (got {clip(repr(given))}{nullable})"


def _either(errors: list, first: dict) -> str:
    """The first error's message, with the other forms a union key takes.

    ``max_features: 2`` said only "Input should be 'sqrt' or 'log2'", never that a
    fraction up to 1 is allowed too; ``threshold: null`` never named max_profit.
    """
    same = _key_parts(first["loc"])
    messages = [error["msg"] for error in errors if _key_parts(error["loc"]) == same]
    return ", or: ".join(dict.fromkeys(messages))  # in pydantic's order, each once


def _key_parts(loc: tuple) -> list:
    """A pydantic error path without the union members it tried: the params key's parts."""
    return [part for part in loc if not _is_union_tag(part)]


def _nullable(loc: tuple) -> bool:
    """Whether the key at ``loc`` (pydantic's path) may be null."""
    model: type[BaseModel] | None = Params
    field = None
    for part in loc:
        if model is None:
            return False
        field = model.model_fields.get(str(part))
        if field is None:
            continue  # a union tag or a mapping key (a feature name): same model goes on
        model = _model_in(field.annotation)
    return field is not None and type(None) in get_args(field.annotation)


def _is_union_tag(part: object) -> bool:
    # pydantic adds the union member it tried (e.g. "literal['infer']") to the path.
    return isinstance(part, str) and (
        "[" in part or part.startswith("constrained-") or part in {"str", "int", "float", "bool"}
    )


def _allowed_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = Params
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None:
            continue  # a union tag or a mapping key (a feature name): same model goes on
        nested = _model_in(field.annotation)
        if nested is None:
            break
        model = nested
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The model class inside an annotation such as ``dict[str, M] | Literal[...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
