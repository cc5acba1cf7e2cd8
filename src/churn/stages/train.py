"""Stage ``train``: fit the classifier chosen in params on the featurized train split.

Saves ONE inference artifact: ``Pipeline(features, classifier)``, so whatever
serves the model applies exactly the transform that was fitted in featurize.
"""

import logging

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from churn.core import decision, entry, io
from churn.core.contract import Contract, read_contract
from churn.core.errors import ChurnError
from churn.core.params import DecisionParams, TrainParams, load_params
from churn.core.stats import sample_labelled
from churn.stages.featurize import check_fitted_columns, transform_rows

log = logging.getLogger("churn.train")


def build_classifier(params: TrainParams) -> ClassifierMixin | Pipeline:
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
        forest = RandomForestClassifier(
            n_estimators=rf.n_estimators,
            max_depth=rf.max_depth,
            min_samples_leaf=rf.min_samples_leaf,
            max_features=rf.max_features,
            class_weight=params.class_weight,
            random_state=params.seed,
            n_jobs=-1,
        )
        return Pipeline([("float32", float32_range()), ("forest", forest)])
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


def float32_range() -> FunctionTransformer:
    """Features cast to float32 and clipped into its range, where scikit-learn's trees compare them.

    A forest casts its input to float32: a number past 3.4e38, which the contract lets
    through (it is finite), was "too large for dtype('float32')" in train, evaluate,
    score and the service. Cast (to infinity) and clipped, it lies beyond every split,
    as it would unclipped; every other value is the float32 the forest made of it.
    The float32 result is the copy the forest made itself: no float64 copy beside it.
    """
    limit = float(np.finfo(np.float32).max)
    return FunctionTransformer(
        np.clip, kw_args={"a_min": -limit, "a_max": limit, "dtype": np.float32}
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
    # Trees are fitted in parallel deterministically, but parallel predict_proba sums
    # tree outputs in thread order; one job keeps predictions bit-stable.
    jobs = [key for key in classifier.get_params() if key == "n_jobs" or key.endswith("__n_jobs")]
    classifier.set_params(**dict.fromkeys(jobs))
    return Pipeline([("features", featurizer), ("classifier", classifier)])


def out_of_fold(
    model: Pipeline, train: pd.DataFrame, contract: Contract, folds: int, seed: int
) -> np.ndarray:
    """Churn probabilities of the training rows, each from a copy of ``model`` fitted without it.

    Stratified, shuffled, seeded folds; every fold refits the whole pipeline
    (featurizer too), so no row's own label shapes its score.
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(
        clone(model),
        train[contract.features],
        train[contract.target].to_numpy(),
        cv=splitter,
        method="predict_proba",
    )
    return proba[:, 1]


def cv_rows(train: pd.DataFrame, cap: int, seed: int, target: str, folds: int) -> pd.DataFrame:
    """All training rows, or a seeded sample of ``cap`` of them in their order.

    Five refits of the whole pipeline on ten million rows would cost five trainings
    and several times the memory; a threshold is pinned down by far fewer rows. The
    sample needs ``folds`` rows of each class, as the whole split does (:func:`check_folds`).
    """
    if len(train) <= cap:
        return train
    y = train[target].to_numpy()
    return train.iloc[sample_labelled(y, cap, seed, "decision.cv_max_rows", folds)]


def check_folds(y: np.ndarray, folds: int) -> None:
    """Each class needs a row in every fold, or the out-of-fold scores cannot be made."""
    positives = int(np.count_nonzero(y))
    fewest = min(positives, len(y) - positives)
    if fewest < folds:
        raise ChurnError(
            f"params.yaml: decision.cv_folds: {folds} folds need {folds} rows of each class, "
            f"and the training split has {positives} churner(s) and {len(y) - positives} "
            "other(s): use more data, fewer folds or a fixed decision.threshold"
        )


def decide(
    model: Pipeline, train: pd.DataFrame, contract: Contract, params: DecisionParams, seed: int
) -> dict:
    """The decision policy to record with the model: its threshold and where it came from.

    ``max_profit`` chooses the threshold on out-of-fold predictions of the TRAINING
    split only (this function never sees another row); a fixed threshold is recorded as given.
    """
    if params.threshold != "max_profit":
        return {"policy": "fixed", "threshold": float(params.threshold)}
    decision.check_value_column(params, contract)
    train = cv_rows(train, params.cv_max_rows, seed, contract.target, params.cv_folds)
    check_folds(train[contract.target].to_numpy(), params.cv_folds)
    scores = out_of_fold(model, train, contract, params.cv_folds, seed)
    profits = decision.row_profit(
        train[contract.target].to_numpy(), decision.customer_value(train, params), params
    )
    threshold, per_customer = decision.choose_threshold(scores, profits)
    return {
        "policy": "max_profit",
        "threshold": threshold,
        "folds": params.cv_folds,
        "seed": seed,
        "train_rows": len(train),
        "train_contact_share": float(np.mean(scores >= threshold)),
        "train_profit_per_1000": per_customer * decision.PER,
    }


def main() -> None:
    """Fit and save ``paths.model``; record the decision policy in ``paths.decision``."""
    params = load_params()
    io.require_file_targets(params.paths.model, params.paths.decision)
    contract = read_contract(params.paths.contract)
    featurizer = io.read_pickle(params.paths.featurizer)
    check_fitted_columns(featurizer, contract, params.paths.featurizer)
    # The value column of a decision is a feature (check_value_column): nothing else is read.
    train = io.read_parquet(params.paths.train, [*contract.features, contract.target])
    y = train[contract.target].to_numpy()
    # decide() sees at most cv_max_rows rows: keep those, not the whole frame, beside
    # the feature matrix while the model fits.
    # A fixed threshold reads no rows: its sample is none, and never refused.
    fixed = params.decision.threshold != "max_profit"
    sample = (
        train.iloc[:0]
        if fixed
        else cv_rows(
            train,
            params.decision.cv_max_rows,
            params.train.seed,
            contract.target,
            params.decision.cv_folds,
        )
    )
    features = transform_rows(featurizer, train[contract.features])
    del train
    model = fit_classifier(featurizer, features, y, params.train)
    del features  # the largest object here: gone before the out-of-fold fits
    policy = decide(model, sample, contract, params.decision, params.train.seed)
    # The policy first: of the two, it is the one its content can fail (not JSON).
    io.write_json(params.paths.decision, policy)
    io.write_pickle(params.paths.model, model)
    log.info(
        "trained %s; decision threshold %.4f (%s)",
        params.train.model,
        policy["threshold"],
        policy["policy"],
    )


if __name__ == "__main__":
    entry.leave(entry.run(main))
