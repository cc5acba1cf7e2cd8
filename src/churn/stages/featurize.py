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
    """Impute and scale numbers; one-hot categories, ignoring ones unseen in training."""
    numeric_steps = [("impute", SimpleImputer(strategy=params.numeric_impute))]
    if params.scale:
        numeric_steps.append(("scale", StandardScaler()))
    categorical = Pipeline(
        [
            # pandas' string NA breaks sklearn's imputers; a plain pandas method keeps
            # the pickle free of project code, so any consumer can load the model.
            (
                "fill",
                FunctionTransformer(
                    pd.DataFrame.fillna,
                    kw_args={"value": MISSING_CATEGORY},
                    feature_names_out="one-to-one",
                ),
            ),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    return ColumnTransformer(
        [
            ("numeric", Pipeline(numeric_steps), list(contract.numeric)),
            ("categorical", categorical, list(contract.categorical)),
        ],
        remainder="drop",
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
