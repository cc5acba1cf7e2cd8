"""Stage ``featurize``: fit the feature transformer on the training split only."""

import logging

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from churn.core import entry, io
from churn.core.contract import Contract, read_contract
from churn.core.params import FeaturizeParams, load_params

log = logging.getLogger("churn.featurize")

MISSING_CATEGORY = "missing"


def build_featurizer(contract: Contract, params: FeaturizeParams) -> ColumnTransformer:
    """Impute and scale numbers; one-hot categories, ignoring ones unseen in training.

    The output is a sparse (CSR) matrix: a customer has one 1 per categorical column
    among dozens of one-hot columns, so ten million rows fit in a laptop's memory.
    """
    numeric_steps = [("impute", SimpleImputer(strategy=params.numeric_impute))]
    if params.scale:
        numeric_steps.append(("scale", StandardScaler()))
    # Plain pandas methods keep the pickle free of project code, so any consumer can
    # load the model. Training data arrive as pandas categories (which refuse a fill
    # value outside their categories), a service's as text with None or NaN, and
    # pandas' string NA breaks sklearn's imputers: as objects, fillna handles all.
    text = FunctionTransformer(
        pd.DataFrame.astype, kw_args={"dtype": object}, feature_names_out="one-to-one"
    )
    fill = FunctionTransformer(
        pd.DataFrame.fillna, kw_args={"value": MISSING_CATEGORY}, feature_names_out="one-to-one"
    )
    categorical = Pipeline(
        [
            ("text", text),
            ("fill", fill),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=True)),
        ]
    )
    return ColumnTransformer(
        [
            ("numeric", Pipeline(numeric_steps), list(contract.numeric)),
            ("categorical", categorical, list(contract.categorical)),
        ],
        remainder="drop",
        sparse_threshold=1.0,  # sparse whenever a part is: the default 0.3 would densify
        verbose_feature_names_out=False,
    )


def fit_featurizer(
    train: pd.DataFrame, contract: Contract, params: FeaturizeParams
) -> ColumnTransformer:
    """Fit the transformer on the training features."""
    return build_featurizer(contract, params).fit(train[contract.features])


def main() -> None:
    """Fit on ``paths.train`` and save to ``paths.featurizer``."""
    params = load_params()
    contract = read_contract(params.paths.contract)
    featurizer = fit_featurizer(io.read_parquet(params.paths.train), contract, params.featurize)
    io.write_pickle(params.paths.featurizer, featurizer)
    log.info(
        "featurizer: %d inputs -> %d features",
        len(contract.features),
        len(featurizer.get_feature_names_out()),
    )


if __name__ == "__main__":
    raise SystemExit(entry.run(main))
