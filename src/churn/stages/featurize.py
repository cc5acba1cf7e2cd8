"""Stage ``featurize``: fit the feature transformer on the training split only."""

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from churn.core import entry, io
from churn.core.contract import Contract, read_contract
from churn.core.errors import ChurnError, clip
from churn.core.params import FeaturizeParams, load_params

log = logging.getLogger("churn.featurize")

CHUNK_ROWS = 1 << 18  # rows transformed at once: bounds the one-hot and imputed copies


def build_featurizer(contract: Contract, params: FeaturizeParams) -> FeatureUnion:
    """Impute and scale numbers; one-hot categories, ignoring ones unseen in training.

    A FeatureUnion of one pipeline per column type, each starting by picking its
    columns. Unlike a ColumnTransformer, whose fit transforms the whole training set
    and stacks the result (an 8M x 40 matrix, twice, at ten million rows), a union's
    fit only fits: the features are made where they are used, in blocks of rows.
    """
    numeric = [("impute", SimpleImputer(strategy=params.numeric_impute))]
    if params.scale:
        numeric.append(("scale", StandardScaler()))
    # Plain pandas methods keep the pickle free of project code, so any consumer can
    # load the model. Training data arrive as pandas categories, a service's as objects
    # with None, score's as text with pandas' NA. As objects, each missing marker becomes
    # NaN, which the encoder keeps as a category of its own ("region_nan"): a fill word
    # such as "missing" would merge with a real category of that name.
    text = FunctionTransformer(
        pd.DataFrame.astype, kw_args={"dtype": object}, feature_names_out="one-to-one"
    )
    fill = FunctionTransformer(
        pd.DataFrame.fillna, kw_args={"value": np.nan}, feature_names_out="one-to-one"
    )
    categorical = [
        ("text", text),
        ("fill", fill),
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ]
    parts = [
        (name, Pipeline([("select", _select(columns)), *steps]))
        for name, columns, steps in (
            ("numeric", contract.numeric, numeric),
            ("categorical", contract.categorical, categorical),
        )
        if columns  # a contract may have no numbers or no categories
    ]
    return FeatureUnion(parts, verbose_feature_names_out=False)


def _select(columns: tuple[str, ...]) -> ColumnTransformer:
    """Pass ``columns`` through as a DataFrame (dtypes kept), drop the rest."""
    select = ColumnTransformer(
        [("columns", "passthrough", list(columns))],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    return select.set_output(transform="pandas")


def fit_featurizer(
    train: pd.DataFrame, contract: Contract, params: FeaturizeParams
) -> FeatureUnion:
    """Fit the transformer on the training features.

    A frame of just those columns, in order, is fitted as it is: selecting them again
    would copy it (hundreds of MB at ten million rows).
    """
    features = list(contract.features)
    frame = train if list(train.columns) == features else train[features]
    with warnings.catch_warnings():  # numpy's overflow warnings: check_fitted words them
        warnings.simplefilter("ignore", RuntimeWarning)
        return build_featurizer(contract, params).fit(frame)


def check_fitted(featurizer: FeatureUnion, contract: Contract, source: str) -> None:
    """Refuse numbers the numeric part cannot learn from: a statistic that is not finite.

    Values near 1e300 pass every check of the contract (they are finite), but their
    mean or variance overflows float64; the features were then NaN, and train stopped
    with scikit-learn's traceback about missing values.
    """
    numeric = dict(featurizer.transformer_list).get("numeric")
    if numeric is None:
        return
    stats = [numeric.named_steps["impute"].statistics_]
    if "scale" in numeric.named_steps:
        scaler = numeric.named_steps["scale"]
        stats += [scaler.mean_, scaler.var_]
    finite = np.logical_and.reduce([np.isfinite(s) for s in stats])
    bad = [name for name, ok in zip(contract.numeric, finite, strict=True) if not ok]
    if bad:
        raise ChurnError(
            f"{source}: numeric column(s) {', '.join(map(repr, bad))}: values too large for "
            "float64 arithmetic (the mean or variance overflows); rescale them in the file"
        )


def feature_names(featurizer: FeatureUnion, contract: Contract, source: str) -> list[str]:
    """The model's feature names, each made once; one line naming a clash.

    A one-hot feature is named column_value: a column called ``plan_basic`` beside
    ``plan`` with the value ``basic`` (or ``a_b`` with ``c`` beside ``a`` with ``b_c``)
    made two features of one name, and scikit-learn's traceback after the featurizer
    was written.
    """
    parts = dict(featurizer.transformer_list)
    made = [(name, f"column {name!r}") for name in contract.numeric if "numeric" in parts]
    if "categorical" in parts:
        onehot = parts["categorical"].named_steps["onehot"]
        values = [
            (column, value)
            for column, categories in zip(contract.categorical, onehot.categories_, strict=True)
            for value in categories
        ]
        names = onehot.get_feature_names_out(list(contract.categorical))
        made += [
            (str(name), f"column {column!r} value {str(value)!r}")
            for name, (column, value) in zip(names, values, strict=True)
        ]
    first: dict[str, str] = {}
    for name, origin in made:
        if name in first:
            twice = f"by {clip(first[name])} and by {clip(origin)}"
            raise ChurnError(
                f"{source}: feature {clip(repr(name))} is made twice, {twice} (one-hot "
                "features are named column_value): rename a column in the file"
            )
        first[name] = origin
    return list(first)


def check_fitted_columns(fitted: Any, contract: Contract, path: str) -> None:
    """``fitted`` (the featurizer, or a model) learnt the contract's features, not a stale set.

    ``dvc repro -s train`` or ``-s evaluate`` after prepare had read another file ran the
    old featurizer or model on the new columns: scikit-learn's traceback, "columns are
    missing". Only names are compared: their order is the contract's to choose.
    """
    fitted_names = [str(c) for c in getattr(fitted, "feature_names_in_", contract.features)]
    missing = [c for c in contract.features if c not in fitted_names]
    extra = [c for c in fitted_names if c not in contract.features]
    if missing or extra:
        lacks = f"; it lacks {clip(', '.join(map(repr, missing)), 120)}" if missing else ""
        has = f"; it has {clip(', '.join(map(repr, extra)), 120)}" if extra else ""
        raise ChurnError(
            f"{path}: fitted on other columns than the contract's features{lacks}{has} "
            "(run the stages before it: dvc repro)"
        )


def transform_rows(
    featurizer: FeatureUnion, frame: pd.DataFrame, rows: int = CHUNK_ROWS
) -> np.ndarray:
    """``featurizer.transform(frame)``, ``rows`` at a time, into one preallocated array.

    Every step works row by row, so this is the whole-frame transform to the bit; only
    one block's intermediate copies (one-hot columns, imputed numbers) exist at once.
    """
    first = featurizer.transform(frame.iloc[:rows])
    out = np.empty((len(frame), first.shape[1]), dtype=first.dtype)
    out[: len(first)] = first
    for start in range(rows, len(frame), rows):
        out[start : start + rows] = featurizer.transform(frame.iloc[start : start + rows])
    return out


FEATURE_BYTES = 8  # float64: what the featurizer's transform gives
GB = 1e9


def check_matrix_size(
    featurizer: FeatureUnion,
    contract: Contract,
    shape: tuple[int, int],
    limit_gb: float,
    source: str,
) -> None:
    """Refuse a training matrix over ``featurize.max_matrix_gb``, naming the widest column.

    train transforms the training split whole (:func:`transform_rows`): a categorical
    column of thousands of values (a city, a free-text field) made one-hot columns by
    the thousand, and memory grew with rows times categories until the machine ran out.
    """
    rows, width = shape
    size = rows * width * FEATURE_BYTES
    if size <= limit_gb * GB:
        return
    parts = dict(featurizer.transformer_list)
    advice = ": raise the limit"
    if "categorical" in parts:
        found = parts["categorical"].named_steps["onehot"].categories_
        column, values = max(zip(contract.categorical, found, strict=True), key=lambda c: len(c[1]))
        advice = (
            f"; the widest column is {clip(repr(column))}, {len(values):,} categories: drop "
            "such a column from data.features, group its values, or raise the limit"
        )
    raise ChurnError(
        f"{source}: {rows:,} training rows x {width:,} features make a {size / GB:.3g} GB "
        f"matrix for train, over featurize.max_matrix_gb ({limit_gb:g}) in params.yaml{advice}"
    )


def main() -> None:
    """Fit on ``paths.train`` and save to ``paths.featurizer``."""
    params = load_params()
    contract = read_contract(params.paths.contract)
    # Only the feature columns, fitted as read: no copy of the training frame.
    features = io.read_parquet(params.paths.train, contract.features)
    featurizer = fit_featurizer(features, contract, params.featurize)
    check_fitted(featurizer, contract, params.paths.train)
    names = feature_names(featurizer, contract, params.paths.train)
    shape, limit = (len(features), len(names)), params.featurize.max_matrix_gb
    check_matrix_size(featurizer, contract, shape, limit, params.paths.train)
    io.write_pickle(params.paths.featurizer, featurizer)
    log.info("featurizer: %d inputs -> %d features", len(contract.features), len(names))


if __name__ == "__main__":
    entry.leave(entry.run(main))
