import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from churn.core import decision, stats
from churn.core.contract import resolve_contract
from churn.core.errors import ChurnError
from churn.core.params import DataParams, DecisionParams, FeaturizeParams, TrainParams
from churn.stages import train
from churn.stages.featurize import fit_featurizer
from churn.stages.prepare import clean
from churn.stages.train import build_classifier, fit_model
from synthetic import CUSTOM_DATA, make_custom_dataset


@pytest.fixture(scope="module")
def prepared():
    raw = make_custom_dataset(1200, seed=3)
    contract = resolve_contract(DataParams(**CUSTOM_DATA), raw, "custom.csv")
    frame = clean(raw, contract, "custom.csv")
    featurizer = fit_featurizer(
        frame, contract, FeaturizeParams(numeric_impute="median", scale=True)
    )
    return contract, frame, featurizer


def train_params(params, **changes) -> TrainParams:
    return params.train.model_copy(update=changes)


def estimator(classifier):
    """The estimator itself: a forest comes behind its float32 clip."""
    return classifier.steps[-1][1] if isinstance(classifier, Pipeline) else classifier


@pytest.mark.parametrize(
    ("model", "cls"),
    [
        ("logistic_regression", LogisticRegression),
        ("random_forest", RandomForestClassifier),
        ("hist_gradient_boosting", HistGradientBoostingClassifier),
    ],
)
def test_each_model_is_built_from_its_params(params, model, cls):
    clf = estimator(
        build_classifier(train_params(params, model=model, seed=11, class_weight="balanced"))
    )
    assert isinstance(clf, cls)
    assert clf.get_params()["random_state"] == 11
    assert clf.get_params()["class_weight"] == "balanced"


@pytest.mark.parametrize(
    ("model", "section", "expected"),
    [
        ("logistic_regression", {"C": 0.25, "max_iter": 7}, {}),
        (
            "random_forest",
            {"n_estimators": 17, "max_depth": 3, "min_samples_leaf": 4, "max_features": 0.5},
            {},
        ),
        (
            "hist_gradient_boosting",
            {
                "learning_rate": 0.3,
                "max_iter": 9,
                "max_leaf_nodes": 5,
                "min_samples_leaf": 6,
                "l2_regularization": 0.5,
            },
            # A validation split would silently shrink the training data.
            {"early_stopping": False},
        ),
    ],
)
def test_every_hyperparameter_reaches_the_estimator(params, model, section, expected):
    """A hyper-parameter dropped on the way is silently replaced by sklearn's default.

    Every value here differs from that default, so each one must have come from params.
    """
    hyper = getattr(params.train, model).model_copy(update=section)
    clf = build_classifier(
        train_params(params, model=model, seed=11, class_weight="balanced", **{model: hyper})
    )
    got = estimator(clf).get_params()
    want = {**section, **expected, "class_weight": "balanced", "random_state": 11}
    assert {key: got[key] for key in want} == want


@pytest.mark.parametrize(
    "model", ["logistic_regression", "random_forest", "hist_gradient_boosting"]
)
def test_pipeline_learns_from_raw_frames(params, prepared, model):
    contract, frame, featurizer = prepared
    pipe = fit_model(featurizer, frame, contract, train_params(params, model=model))
    assert isinstance(pipe, Pipeline)
    assert pipe.named_steps["features"] is featurizer
    proba = pipe.predict_proba(frame[contract.features])[:, 1]
    assert roc_auc_score(frame[contract.target], proba) > 0.75
    if model == "random_forest":
        assert estimator(pipe.named_steps["classifier"]).n_jobs is None


def test_a_forest_takes_numbers_past_float32(params, prepared):
    """Finite, so the contract lets them through; a forest's float32 cast refused them."""
    contract, frame, _ = prepared
    column = contract.numeric[0]
    big = frame.copy()
    big.loc[big.index[:5], column] = [1e39, -1e39, 1e300, 3e38, -3e38]
    unscaled = FeaturizeParams(numeric_impute="median", scale=False)
    plain = fit_featurizer(big, contract, unscaled)
    pipe = fit_model(plain, big, contract, train_params(params, model="random_forest"))
    limit = float(np.finfo(np.float32).max)
    clipped = big.copy()
    clipped.loc[clipped.index[:3], column] = [limit, -limit, limit]
    got = pipe.predict_proba(big[contract.features])
    assert np.array_equal(got, pipe.predict_proba(clipped[contract.features]))
    assert [name for name, _ in pipe.named_steps["classifier"].steps] == ["float32", "forest"]


@pytest.mark.parametrize(
    "model", ["random_forest", "hist_gradient_boosting", "logistic_regression"]
)
def test_result_does_not_depend_on_thread_count(params, prepared, model):
    contract, frame, featurizer = prepared
    runs = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            pipe = fit_model(featurizer, frame, contract, train_params(params, model=model))
            runs.append(pipe.predict_proba(frame[contract.features])[:, 1])
    np.testing.assert_array_equal(runs[0], runs[1])


# --- the decision threshold (issue 16) ---------------------------------------------------


def decision_params(params, **changes) -> DecisionParams:
    """The repository's economics, valued by the generated data's usage column."""
    return params.decision.model_copy(update={"value_column": "usage_minutes", **changes})


def test_a_fixed_threshold_is_recorded_as_given_without_cross_validation(
    params, prepared, monkeypatch
):
    contract, frame, featurizer = prepared
    pipe = fit_model(featurizer, frame, contract, train_params(params))

    def refuse(*args):
        raise AssertionError("a fixed threshold needs no out-of-fold predictions")

    monkeypatch.setattr(train, "out_of_fold", refuse)
    policy = train.decide(pipe, frame, contract, decision_params(params, threshold=0.35), 1)
    assert policy == {"policy": "fixed", "threshold": 0.35}


def test_out_of_fold_scores_come_from_seeded_stratified_folds(params, prepared):
    """Every training row scored once by a pipeline fitted on the other folds, reproducibly."""
    contract, frame, featurizer = prepared
    pipe = fit_model(featurizer, frame, contract, train_params(params))
    first = train.out_of_fold(pipe, frame, contract, 4, 7)
    assert first.shape == (len(frame),)
    assert first.tobytes() == train.out_of_fold(pipe, frame, contract, 4, 7).tobytes()
    assert first.tobytes() != train.out_of_fold(pipe, frame, contract, 4, 8).tobytes()
    assert first.tobytes() != train.out_of_fold(pipe, frame, contract, 3, 7).tobytes()
    # Not the in-sample scores of the model fitted on every row.
    in_sample = pipe.predict_proba(frame[contract.features])[:, 1]
    assert not np.allclose(first, in_sample)
    assert roc_auc_score(frame[contract.target], first) > 0.7


def test_max_profit_is_chosen_on_training_rows_only_and_reproducibly(params, prepared, monkeypatch):
    contract, frame, featurizer = prepared
    pipe = fit_model(featurizer, frame, contract, train_params(params))
    seen = []
    real = train.out_of_fold

    def spy(model, rows, *args):
        seen.append(rows)
        return real(model, rows, *args)

    monkeypatch.setattr(train, "out_of_fold", spy)
    chosen = decision_params(params, cv_folds=4)
    policy = train.decide(pipe, frame, contract, chosen, 7)
    assert seen[0] is frame  # the training frame, nothing else
    scores = real(pipe, frame, contract, 4, 7)
    profits = decision.row_profit(
        frame[contract.target].to_numpy(), decision.customer_value(frame, chosen), chosen
    )
    threshold, per_customer = decision.choose_threshold(scores, profits)
    assert policy == {
        "policy": "max_profit",
        "threshold": threshold,
        "folds": 4,
        "seed": 7,
        "train_rows": len(frame),
        "train_contact_share": float(np.mean(scores >= threshold)),
        "train_profit_per_1000": per_customer * 1000,
    }
    assert 0.0 < threshold < 1.0
    assert train.decide(pipe, frame, contract, chosen, 7) == policy  # bit for bit


def test_a_dearer_contact_raises_the_chosen_threshold(params, prepared):
    contract, frame, featurizer = prepared
    pipe = fit_model(featurizer, frame, contract, train_params(params))
    cheap = train.decide(pipe, frame, contract, decision_params(params, contact_cost=5.0), 7)
    dear = train.decide(pipe, frame, contract, decision_params(params, contact_cost=60.0), 7)
    assert dear["threshold"] > cheap["threshold"]
    assert dear["train_contact_share"] < cheap["train_contact_share"]


def test_a_value_column_outside_the_contract_is_refused(params, prepared):
    contract, frame, featurizer = prepared
    pipe = fit_model(featurizer, frame, contract, train_params(params))
    with pytest.raises(ChurnError, match=r"decision.value_column: 'plan' is not a numeric"):
        train.decide(pipe, frame, contract, decision_params(params, value_column="plan"), 7)


def test_cv_rows_all_below_the_cap_else_a_seeded_sample_in_order():
    from churn.stages.train import cv_rows

    frame = pd.DataFrame(
        {"x": range(5000), "y": np.arange(5000) % 2}, index=[f"r{i}" for i in range(5000)]
    )
    assert cv_rows(frame, 5000, 0, "y", 5) is frame
    sample = cv_rows(frame, 1000, 7, "y", 5)
    assert len(sample) == 1000
    assert sample.index.is_unique
    assert (np.diff(sample["x"].to_numpy()) > 0).all()  # training order kept
    assert sample.index.tolist() == cv_rows(frame, 1000, 7, "y", 5).index.tolist()
    assert sample.index.tolist() != cv_rows(frame, 1000, 8, "y", 5).index.tolist()


def test_cv_rows_refuse_a_sample_short_of_a_class_naming_its_cap():
    """12 churners in 5,186 rows: a 1,000-row sample held 2, and train blamed the split."""
    from churn.stages.train import cv_rows

    y = np.zeros(5000, dtype=int)
    y[:12] = 1
    frame = pd.DataFrame({"x": range(5000), "y": y})
    rows = stats.sample_rows(5000, 1000, 7)
    drawn = int(y[rows].sum())
    assert drawn < 5  # the seeded draw, independent of the code under test
    with pytest.raises(ChurnError) as err:
        cv_rows(frame, 1000, 7, "y", 5)
    assert str(err.value) == (
        f"params.yaml: decision.cv_max_rows: the seeded sample of 1,000 of 5,000 rows holds "
        f"{drawn} of the 12 rows of class 1, fewer than 5: raise decision.cv_max_rows"
    )
    assert len(cv_rows(frame, 1000, 7, "y", drawn)) == 1000  # as many as the folds need


@pytest.mark.parametrize(("y", "folds"), [([1, 1, 0, 0, 0, 0], 3), ([1] * 5 + [0] * 4, 5)])
def test_out_of_fold_scores_need_a_row_of_each_class_per_fold(y, folds):
    y = np.array(y)
    positives, others = int(y.sum()), int(len(y) - y.sum())
    with pytest.raises(ChurnError) as err:
        train.check_folds(y, folds)
    assert str(err.value) == (
        f"params.yaml: decision.cv_folds: {folds} folds need {folds} rows of each class, and "
        f"the training split has {positives} churner(s) and {others} other(s): use more data, "
        "fewer folds or a fixed decision.threshold"
    )
    train.check_folds(y, min(positives, others))  # exactly enough: no error
    train.check_folds(np.array([True, True, False, False]), 2)  # booleans count too
