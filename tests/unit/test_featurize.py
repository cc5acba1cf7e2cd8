import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from churn.core.contract import resolve_contract
from churn.core.params import DataParams, FeaturizeParams
from churn.stages.featurize import MISSING_CATEGORY, fit_featurizer
from synthetic import CUSTOM_DATA


def dense(matrix) -> np.ndarray:
    """The featurizer's CSR output as an array, refusing anything but CSR."""
    assert sparse.issparse(matrix)
    assert matrix.format == "csr"
    return matrix.toarray()


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
    out = dense(featurizer.transform(frame))
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
    np.testing.assert_array_equal(
        dense(featurizer.transform(row)), dense(featurizer.transform(with_median))
    )


def test_unseen_category_is_all_zero_and_missing_is_its_own(fitted):
    _, frame, featurizer = fitted
    rows = frame.iloc[[0, 1]].copy()
    rows["plan"] = pd.array(["platinum", "basic"], dtype="string")
    rows["region"] = pd.array([None, "east"], dtype="string")
    out = dense(featurizer.transform(rows))
    assert out[0, 2:5].tolist() == [0.0, 0.0, 0.0]
    assert out[1, 2:5].tolist() == [1.0, 0.0, 0.0]
    assert out[0, 5:].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]  # missing region
    assert out[1, 5:].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]  # east


def test_plain_object_columns_from_a_request_work_too(fitted):
    _, frame, featurizer = fitted
    rows = frame.iloc[:3].astype({"plan": object, "region": object})
    rows.loc[rows.index[0], "region"] = None
    out = dense(featurizer.transform(rows))
    np.testing.assert_array_equal(out[1:], dense(featurizer.transform(frame.iloc[:3]))[1:])
    # The None row: its region one-hot is the "missing" column alone, as for pandas' NA.
    missing = frame.iloc[:1].astype({"region": "string"})
    missing.loc[missing.index[0], "region"] = pd.NA
    np.testing.assert_array_equal(out[:1], dense(featurizer.transform(missing)))
    region = [n.startswith("region_") for n in featurizer.get_feature_names_out()]
    assert out[0, region].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]  # region_missing


def test_no_scaling_keeps_raw_numbers(custom_dataset):
    contract = resolve_contract(DataParams(**CUSTOM_DATA), custom_dataset, "custom.csv")
    featurizer = fit_featurizer(
        custom_dataset, contract, FeaturizeParams(numeric_impute="mean", scale=False)
    )
    out = dense(featurizer.transform(custom_dataset.iloc[:5]))
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
    assert steps == {"numeric": ["impute", "scale"], "categorical": ["text", "fill", "onehot"]}
    assert featurizer.get_params()["numeric__impute__strategy"] == "median"


def test_output_is_sparse_even_when_mostly_dense(custom_dataset):
    """The output stays CSR however dense: ten million dense rows would not fit a laptop.

    ColumnTransformer's default would turn it dense above 30 % non-zeros.
    """
    data = DataParams(
        **{**CUSTOM_DATA, "features": {"region": {"type": "categorical", "nullable": True}}}
    )
    frame = custom_dataset[["account", "region", "status"]]
    contract = resolve_contract(data, frame, "custom.csv")
    featurizer = fit_featurizer(
        frame, contract, FeaturizeParams(numeric_impute="median", scale=False)
    )
    out = dense(featurizer.transform(frame.head(3)))
    assert out.sum(axis=1).tolist() == [1.0, 1.0, 1.0]


def test_categories_strings_and_objects_give_the_same_rows(fitted):
    """Categories (prepare), objects with None (a service), text (score): the same rows.

    Each form must give the very same features, the "missing" one included.
    """
    _, frame, featurizer = fitted
    rows = frame.iloc[:6].copy()
    rows.loc[rows.index[0], "region"] = pd.NA
    as_text = rows.astype({"plan": "str", "region": "str"})
    as_objects = rows.astype({"plan": object, "region": object})
    as_objects.loc[as_objects.index[0], "region"] = None
    as_categories = rows.astype({"plan": "category", "region": "category"})
    expected = dense(featurizer.transform(rows))
    for variant in (as_text, as_objects, as_categories):
        np.testing.assert_array_equal(dense(featurizer.transform(variant)), expected)
    region = [n.startswith("region_") for n in featurizer.get_feature_names_out()]
    assert expected[0, region].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]  # region_missing


def test_fitting_on_categories_learns_the_same_featurizer(custom_dataset):
    contract = resolve_contract(DataParams(**CUSTOM_DATA), custom_dataset, "custom.csv")
    params = FeaturizeParams(numeric_impute="median", scale=True)
    text = custom_dataset.astype({"plan": "string", "region": "string"})
    categories = custom_dataset.astype({"plan": "category", "region": "category"})
    on_text = fit_featurizer(text, contract, params)
    on_categories = fit_featurizer(categories, contract, params)
    assert list(on_text.get_feature_names_out()) == list(on_categories.get_feature_names_out())
    np.testing.assert_array_equal(
        dense(on_text.transform(text)), dense(on_categories.transform(categories))
    )
