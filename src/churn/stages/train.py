"""Stage ``train``: fit the classifier chosen in params on the featurized train split.

Saves ONE inference artifact: ``Pipeline(features, classifier)``, so whatever
serves the model applies exactly the transform that was fitted in featurize.
"""

import logging

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.pipeline import FeatureUnion, Pipeline

from churn.core import entry, io
from churn.core.contract import Contract, read_contract
from churn.core.params import TrainParams, load_params
from churn.stages.featurize import transform_rows

log = logging.getLogger("churn.train")


def build_classifier(params: TrainParams) -> ClassifierMixin:
    """The unfitted classifier named by ``params.model``, seeded.

    Each is imported only when chosen: scikit-learn's ensembles cost a logistic
    regression's training run a tenth of a second of imports for nothing.
    """
    if params.model == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        lr = params.logistic_regression
        return LogisticRegression(
            C=lr.C, max_iter=lr.max_iter, class_weight=params.class_weight, random_state=params.seed
        )
    if params.model == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        rf = params.random_forest
        return RandomForestClassifier(
            n_estimators=rf.n_estimators,
            max_depth=rf.max_depth,
            min_samples_leaf=rf.min_samples_leaf,
            max_features=rf.max_features,
            class_weight=params.class_weight,
            random_state=params.seed,
            n_jobs=-1,
        )
    from sklearn.ensemble import HistGradientBoostingClassifier

    hgb = params.hist_gradient_boosting
    return HistGradientBoostingClassifier(
        learning_rate=hgb.learning_rate,
        max_iter=hgb.max_iter,
        max_leaf_nodes=hgb.max_leaf_nodes,
        min_samples_leaf=hgb.min_samples_leaf,
        l2_regularization=hgb.l2_regularization,
        class_weight=params.class_weight,
        early_stopping=False,  # a validation split would silently shrink the training data
        random_state=params.seed,
    )


def fit_model(
    featurizer: FeatureUnion, train: pd.DataFrame, contract: Contract, params: TrainParams
) -> Pipeline:
    """Fit the classifier on features from the already-fitted featurizer."""
    features = transform_rows(featurizer, train[contract.features])
    return fit_classifier(featurizer, features, train[contract.target].to_numpy(), params)


def fit_classifier(
    featurizer: FeatureUnion, features: np.ndarray, y: np.ndarray, params: TrainParams
) -> Pipeline:
    """Fit the classifier on ``features`` (the featurizer's output) and ``y``."""
    classifier = build_classifier(params)
    classifier.fit(features, y)
    if "n_jobs" in classifier.get_params():
        # Trees are fitted in parallel deterministically, but parallel predict_proba
        # sums tree outputs in thread order; one job keeps predictions bit-stable.
        classifier.set_params(n_jobs=None)
    return Pipeline([("features", featurizer), ("classifier", classifier)])


def main() -> None:
    """Fit and save ``paths.model``."""
    params = load_params()
    contract = read_contract(params.paths.contract)
    featurizer = io.read_pickle(params.paths.featurizer)
    y = io.read_parquet(params.paths.train, [contract.target])[contract.target].to_numpy()
    # The feature columns only, transformed as read, then dropped: the matrix is what stays.
    features = transform_rows(featurizer, io.read_parquet(params.paths.train, contract.features))
    model = fit_classifier(featurizer, features, y, params.train)
    del features
    io.write_pickle(params.paths.model, model)
    log.info("trained %s", params.train.model)


if __name__ == "__main__":
    raise SystemExit(entry.run(main))
