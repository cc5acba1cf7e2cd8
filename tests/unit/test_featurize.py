import numpy as np
import pandas as pd
import pytest

from churn.core.contract import resolve_contract
from churn.core.params import DataParams, FeaturizeParams
from churn.stages.featurize import MISSING_CATEGORY, fit_featurizer
from synthetic import CUSTOM_DATA


@pytest.fixture
def fitted(custom_dataset):
    contract = resolve_contract(DataParams(**CUSTOM_DATA), custom_dataset, "custom.csv")
    frame = custom_dataset.astype({"plan": "string", "region": "string"})
    featurizer = fit_featurizer(
        frame, contract, FeaturizeParams(numeric_impute="median", scale=True)
    )
    return contract, frame, featurizer


def test_output_columns_are_scaled_numbers_then_one_hot(fitted):
    _, frame, featurizer = fitted
    names = list(featurizer.get_feature_names_out())
    assert names == [
        "usage_minutes",
        "support_calls",
        "plan_basic",
        "plan_plus",
        "plan_pro",
        "region_east",
        f"region_{MISSING_CATEGORY}",
        "region_north",
        "region_south",
        "region_west",
    ]
    out = featurizer.transform(frame)
    assert out.shape == (600, 10)
    assert not np.isnan(out).any()
    np.testing.assert_allclose(out[:, :2].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out[:, :2].std(axis=0), 1.0, atol=1e-12)


def test_missing_number_gets_the_training_median(fitted):
    _, frame, featurizer = fitted
    median = frame["usage_minutes"].median()
    row = frame.iloc[[0]].copy()
    row["usage_minutes"] = np.nan
    with_median = row.copy()
    with_median["usage_minutes"] = median
    np.testing.assert_array_equal(featurizer.transform(row), featurizer.transform(with_median))


def test_unseen_category_is_all_zero_and_missing_is_its_own(fitted):
    _, frame, featurizer = fitted
    rows = frame.iloc[[0, 1]].copy()
    rows["plan"] = pd.array(["platinum", "basic"], dtype="string")
    rows["region"] = pd.array([None, "east"], dtype="string")
    out = featurizer.transform(rows)
    assert out[0, 2:5].tolist() == [0.0, 0.0, 0.0]
    assert out[1, 2:5].tolist() == [1.0, 0.0, 0.0]
    assert out[0, 5:].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]  # missing region
    assert out[1, 5:].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]  # east


def test_plain_object_columns_from_a_request_work_too(fitted):
    _, frame, featurizer = fitted
    rows = frame.iloc[:3].astype({"plan": object, "region": object})
    rows.loc[rows.index[0], "region"] = None
    out = featurizer.transform(rows)
    np.testing.assert_array_equal(out[1:], featurizer.transform(frame.iloc[:3])[1:])
    # The None row: its region one-hot is the "missing" column alone, as for pandas' NA.
    missing = frame.iloc[:1].astype({"region": "string"})
    missing.loc[missing.index[0], "region"] = pd.NA
    np.testing.assert_array_equal(out[:1], featurizer.transform(missing))
    region = [n.startswith("region_") for n in featurizer.get_feature_names_out()]
    assert out[0, region].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]  # region_missing


def test_no_scaling_keeps_raw_numbers(custom_dataset):
    contract = resolve_contract(DataParams(**CUSTOM_DATA), custom_dataset, "custom.csv")
    featurizer = fit_featurizer(
        custom_dataset, contract, FeaturizeParams(numeric_impute="mean", scale=False)
    )
    out = featurizer.transform(custom_dataset.iloc[:5])
    np.testing.assert_array_equal(out[:, 1], custom_dataset["support_calls"].iloc[:5].to_numpy())


def test_step_names_are_the_featurizers_interface(fitted):
    """Renaming a step breaks whatever addresses it, and changes the pickle's bytes.

    Steps are addressed by name: `numeric__impute__strategy` in set_params, or
    `named_transformers_` when inspecting a model.
    """
    _, _, featurizer = fitted
    steps = {
        name: list(featurizer.named_transformers_[name].named_steps)
        for name in featurizer.named_transformers_
        if name != "remainder"
    }
    assert steps == {"numeric": ["impute", "scale"], "categorical": ["fill", "onehot"]}
    assert featurizer.get_params()["numeric__impute__strategy"] == "median"


def test_output_is_dense_even_when_mostly_one_hot_zeros(custom_dataset):
    """A one-hot encoder's default sparse output turns the whole matrix sparse below 30 % non-zeros.

    The classifiers and permutation importance downstream are fed plain arrays.
    """
    data = DataParams(
        **{**CUSTOM_DATA, "features": {"region": {"type": "categorical", "nullable": True}}}
    )
    frame = custom_dataset[["account", "region", "status"]]
    contract = resolve_contract(data, frame, "custom.csv")
    featurizer = fit_featurizer(
        frame, contract, FeaturizeParams(numeric_impute="median", scale=False)
    )
    out = featurizer.transform(frame.head(3))
    assert isinstance(out, np.ndarray)
    assert out.sum(axis=1).tolist() == [1.0, 1.0, 1.0]
