"""The only reader of ``params.yaml``: one typed, validated object per section.

Unknown keys, missing keys, wrong types and out-of-range values are rejected
here, before any stage does work, with the dotted key in the message.
"""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML, YAMLError

from churn.errors import ChurnError

PARAMS_FILE = "params.yaml"

Probability = Annotated[float, Field(gt=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(ge=1)]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]


class Section(BaseModel):
    """Base for every section: strict types, no unknown keys, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PathsParams(Section):
    """Where every stage reads and writes; dvc.yaml interpolates the same keys."""

    raw: str
    train: str
    test: str
    schema_: str = Field(alias="schema")
    featurizer: str
    model: str
    reports: str
    predictions: str


class SourceParams(Section):
    """The packaged dataset the fetch stage materializes."""

    package: str
    item: str
    out: str


class DataParams(Section):
    """How to read the raw table: target, id and the roles of the other columns."""

    target: str
    positive_label: str | int
    id: str | None
    categorical: list[str] | Literal["infer"]
    numeric: list[str] | Literal["infer"]


class PrepareParams(Section):
    """Train/test split."""

    test_size: Probability
    seed: Seed


class FeaturizeParams(Section):
    """Feature transformer fitted on the training split."""

    numeric_impute: Literal["median", "mean"]
    scale: bool


class LogisticRegressionParams(Section):
    """Hyperparameters of :class:`sklearn.linear_model.LogisticRegression`."""

    C: Annotated[float, Field(gt=0.0)]
    max_iter: PositiveInt


class RandomForestParams(Section):
    """Hyperparameters of :class:`sklearn.ensemble.RandomForestClassifier`."""

    n_estimators: PositiveInt
    max_depth: PositiveInt | None
    min_samples_leaf: PositiveInt
    max_features: Literal["sqrt", "log2"] | Annotated[float, Field(gt=0.0, le=1.0)]


class HistGradientBoostingParams(Section):
    """Hyperparameters of :class:`sklearn.ensemble.HistGradientBoostingClassifier`."""

    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)]
    max_iter: PositiveInt
    max_leaf_nodes: Annotated[int, Field(ge=2)]
    min_samples_leaf: PositiveInt
    l2_regularization: Annotated[float, Field(ge=0.0)]


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
    """Test-set evaluation: decision threshold and permutation importance."""

    threshold: Probability
    importance_repeats: PositiveInt
    importance_top: PositiveInt
    importance_max_rows: PositiveInt
    calibration_bins: Annotated[int, Field(ge=2, le=100)]
    seed: Seed


class Params(Section):
    """All of ``params.yaml``."""

    paths: PathsParams
    source: SourceParams
    data: DataParams
    prepare: PrepareParams
    featurize: FeaturizeParams
    train: TrainParams
    evaluate: EvaluateParams


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
    if not p.is_file():
        raise ChurnError(f"{p}: file not found")
    try:
        # YAML 1.2, as DVC reads and rewrites the file (`dvc exp run -S` drops quotes:
        # a YAML 1.1 reader would then see a bare Yes as a boolean).
        raw = YAML(typ="safe", pure=True).load(p.read_text(encoding="utf-8"))
    except YAMLError as err:
        raise ChurnError(f"{p}: not valid YAML ({' '.join(str(err).split())})") from None
    return parse_params(raw, str(p))


def describe(err: ValidationError) -> str:
    """Turn pydantic's first error into ``key: problem`` with the key dotted."""
    first = err.errors(include_url=False)[0]
    key = ".".join(str(part) for part in first["loc"] if not _is_union_tag(part))
    kind = first["type"]
    if kind == "missing":
        return f"{key}: missing key"
    if kind == "extra_forbidden":
        return f"{key}: unknown key (allowed: {', '.join(_allowed_keys(first['loc']))})"
    given = first.get("input")
    return f"{key}: {first['msg']} (got {given!r})"


def _is_union_tag(part: object) -> bool:
    # pydantic adds the union member it tried (e.g. "literal['infer']") to the path.
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool"})


def _allowed_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = Params
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    return sorted(f.alias or name for name, f in model.model_fields.items())
