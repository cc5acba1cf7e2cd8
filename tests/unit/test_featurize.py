import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import OneHotEncoder

from churn.core.contract import resolve_contract
from churn.core.errors import ChurnError
from churn.core.params import DataParams, FeaturizeParams
from churn.stages.featurize import (
    build_featurizer,
    check_fitted,
    check_fitted_columns,
    check_matrix_size,
    feature_names,
    fit_featurizer,
    transform_rows,
)
from synthetic import CUSTOM_DATA


def dense(matrix) -> np.ndarray:
    """The featurizer's output, which must be a plain float64 array."""
    assert isinstance(matrix, np.ndarray)
    assert matrix.dtype == np.float64
    return matrix


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
        "region_north",
        "region_south",
        "region_west",
        "region_nan",
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
    assert out[0, 5:].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]  # missing region
    assert out[1, 5:].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]  # east


def test_plain_object_columns_from_a_request_work_too(fitted):
    _, frame, featurizer = fitted
    rows = frame.iloc[:3].astype({"plan": object, "region": object})
    rows.loc[rows.index[0], "region"] = None
    out = dense(featurizer.transform(rows))
    np.testing.assert_array_equal(out[1:], dense(featurizer.transform(frame.iloc[:3]))[1:])
    # The None row: its region one-hot is the missing column alone, as for pandas' NA.
    missing = frame.iloc[:1].astype({"region": "string"})
    missing.loc[missing.index[0], "region"] = pd.NA
    np.testing.assert_array_equal(out[:1], dense(featurizer.transform(missing)))
    region = [n.startswith("region_") for n in featurizer.get_feature_names_out()]
    assert out[0, region].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]  # region_nan


def test_a_category_named_missing_is_not_a_missing_value(custom_dataset):
    """A real category keeps a column of its own: the old fill word merged them.

    The NA words ("nan", "None", "NA", ...) never reach the encoder as text: prepare and
    score read them as missing, and the service refuses text outside the contract.
    """
    word = "missing"
    frame = custom_dataset.astype({"plan": "string", "region": "string"})
    frame.loc[frame.index[:40], "region"] = word
    contract = resolve_contract(DataParams(**CUSTOM_DATA), frame, "custom.csv")
    featurizer = fit_featurizer(
        frame, contract, FeaturizeParams(numeric_impute="median", scale=True)
    )
    names = list(featurizer.get_feature_names_out())
    known = sorted(f"region_{r}" for r in ("east", "north", "south", "west", word))
    assert names[5:] == [*known, "region_nan"]
    rows = frame.iloc[:2].copy()
    rows["region"] = pd.array([word, None], dtype="string")
    out = dense(featurizer.transform(rows))
    assert out[0, 5:].tolist() == [float(n == f"region_{word}") for n in names[5:]]
    assert out[1, 5:].tolist() == [float(n == "region_nan") for n in names[5:]]


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
    steps = {name: list(part.named_steps) for name, part in featurizer.transformer_list}
    assert steps == {
        "numeric": ["select", "impute", "scale"],
        "categorical": ["select", "text", "fill", "onehot"],
    }
    assert featurizer.get_params()["numeric__impute__strategy"] == "median"


@pytest.fixture
def regions_only(custom_dataset):
    """The dataset's one categorical column as the whole contract, and the frame."""
    data = DataParams(
        **{**CUSTOM_DATA, "features": {"region": {"type": "categorical", "nullable": True}}}
    )
    frame = custom_dataset[["account", "region", "status"]]
    return frame, resolve_contract(data, frame, "custom.csv")


def test_a_contract_without_numbers_has_no_numeric_part(regions_only):
    """A branch with no columns would fail to fit; it is left out."""
    frame, contract = regions_only
    featurizer = fit_featurizer(
        frame, contract, FeaturizeParams(numeric_impute="median", scale=False)
    )
    assert [name for name, _ in featurizer.transformer_list] == ["categorical"]
    out = dense(featurizer.transform(frame.head(3)))
    assert out.sum(axis=1).tolist() == [1.0, 1.0, 1.0]


def test_categories_strings_and_objects_give_the_same_rows(fitted):
    """Categories (prepare), objects with None (a service), text (score): the same rows.

    Each form must give the very same features, the missing one included.
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
    assert expected[0, region].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]  # region_nan


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


@pytest.mark.parametrize("rows", [1, 7, 599, 600, 10_000])
def test_transform_rows_is_the_whole_transform_to_the_bit(fitted, rows):
    _, frame, featurizer = fitted
    expected = featurizer.transform(frame)
    got = transform_rows(featurizer, frame, rows)
    assert got.dtype == expected.dtype
    assert got.flags.c_contiguous
    assert got.tobytes() == expected.tobytes()


def test_transform_rows_hands_the_featurizer_blocks_of_at_most_rows(fitted):
    """The bound on memory: no call sees more than ``rows`` rows."""
    _, frame, featurizer = fitted
    seen = []

    class Spy:
        def transform(self, part):
            seen.append(len(part))
            return featurizer.transform(part)

    transform_rows(Spy(), frame, 250)
    assert seen == [250, 250, 100]


def test_transform_rows_keeps_the_featurizers_dtype(fitted):
    """A float32 featurizer gets a float32 array, not float64 with the same numbers."""
    _, frame, featurizer = fitted

    class Narrow:
        def transform(self, part):
            return featurizer.transform(part).astype(np.float32)

    got = transform_rows(Narrow(), frame, 250)
    assert got.dtype == np.float32
    assert got.tobytes() == featurizer.transform(frame).astype(np.float32).tobytes()


def test_the_pickled_structure_is_pinned(custom_dataset):
    """Names and flags inside the featurizer are bytes of models/featurizer.pkl (dvc.lock)."""
    contract = resolve_contract(DataParams(**CUSTOM_DATA), custom_dataset, "custom.csv")
    union = build_featurizer(contract, FeaturizeParams(numeric_impute="median", scale=True))
    assert union.verbose_feature_names_out is False
    assert [name for name, _ in union.transformer_list] == ["numeric", "categorical"]
    for name, part in union.transformer_list:
        select = part.named_steps["select"]
        assert select.transformers == [("columns", "passthrough", list(getattr(contract, name)))]
        assert (select.remainder, select.verbose_feature_names_out) == ("drop", False)


def test_fitting_does_not_transform_the_training_set(custom_dataset, monkeypatch):
    """A ColumnTransformer's fit makes the whole feature matrix; the union's must not."""
    contract = resolve_contract(DataParams(**CUSTOM_DATA), custom_dataset, "custom.csv")
    calls = []
    original = OneHotEncoder.transform

    def counting(self, X):
        calls.append(len(X))
        return original(self, X)

    monkeypatch.setattr(OneHotEncoder, "transform", counting)
    fit_featurizer(custom_dataset, contract, FeaturizeParams(numeric_impute="median", scale=True))
    assert calls == []


@pytest.mark.parametrize(
    ("scale", "factor", "refused"),
    [(True, 1e300, True), (True, 1e200, True), (True, 1e150, False), (False, 1e300, False)],
)
def test_numbers_too_large_for_float64_statistics_are_named(custom_dataset, scale, factor, refused):
    """Finite, so the contract passes them; their variance overflowed, and train crashed."""
    frame = custom_dataset.assign(usage_minutes=custom_dataset["usage_minutes"] * factor)
    contract = resolve_contract(DataParams(**CUSTOM_DATA), frame, "custom.csv")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        featurizer = fit_featurizer(
            frame, contract, FeaturizeParams(numeric_impute="median", scale=scale)
        )
    if not refused:
        check_fitted(featurizer, contract, "train.parquet")
        return
    with pytest.raises(ChurnError) as err:
        check_fitted(featurizer, contract, "train.parquet")
    assert str(err.value) == (
        "train.parquet: numeric column(s) 'usage_minutes': values too large for float64 "
        "arithmetic (the mean or variance overflows); rescale them in the file"
    )


def test_every_column_too_large_is_named(custom_dataset):
    frame = custom_dataset.assign(
        usage_minutes=custom_dataset["usage_minutes"] * 1e300,
        support_calls=custom_dataset["support_calls"] * 1e300,
    )
    contract = resolve_contract(DataParams(**CUSTOM_DATA), frame, "custom.csv")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        featurizer = fit_featurizer(
            frame, contract, FeaturizeParams(numeric_impute="median", scale=True)
        )
    with pytest.raises(ChurnError, match=r"column\(s\) 'usage_minutes', 'support_calls': values"):
        check_fitted(featurizer, contract, "train.parquet")


def test_a_contract_of_categories_only_has_nothing_to_check(regions_only):
    frame, contract = regions_only
    featurizer = fit_featurizer(
        frame, contract, FeaturizeParams(numeric_impute="median", scale=True)
    )
    check_fitted(featurizer, contract, "train.parquet")


def test_a_frame_of_just_the_features_is_fitted_as_it_is(custom_dataset, monkeypatch):
    """The stage reads only the feature columns: selecting them again copied the frame."""
    from churn.stages import featurize

    contract = resolve_contract(DataParams(**CUSTOM_DATA), custom_dataset, "custom.csv")
    fitted_on = []

    class Recorder:
        def fit(self, frame):
            fitted_on.append(frame)
            return self

    monkeypatch.setattr(featurize, "build_featurizer", lambda contract, params: Recorder())
    params = FeaturizeParams(numeric_impute="median", scale=True)
    only = custom_dataset[list(contract.features)]
    fit_featurizer(only, contract, params)
    assert fitted_on[-1] is only
    fit_featurizer(custom_dataset, contract, params)  # target and id too: the features picked
    assert list(fitted_on[-1].columns) == list(contract.features)
    reordered = only[list(reversed(contract.features))]
    fit_featurizer(reordered, contract, params)
    assert list(fitted_on[-1].columns) == list(contract.features)


def test_fitting_numbers_too_large_for_float64_warns_nothing(custom_dataset):
    """The overflow warnings NumPy gives are check_fitted's to word, once, as an error."""
    contract = resolve_contract(DataParams(**CUSTOM_DATA), custom_dataset, "custom.csv")
    huge = custom_dataset.assign(usage_minutes=1e300 * np.arange(1, len(custom_dataset) + 1))
    params = FeaturizeParams(numeric_impute="mean", scale=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        featurizer = fit_featurizer(huge, contract, params)
    with pytest.raises(ChurnError, match="'usage_minutes': values too large"):
        check_fitted(featurizer, contract, "custom.csv")


def test_only_overflow_warnings_are_held_back(custom_dataset):
    """Another of scikit-learn's warnings still reaches the user: a column with no number."""
    contract = resolve_contract(DataParams(**CUSTOM_DATA), custom_dataset, "custom.csv")
    empty = custom_dataset.assign(usage_minutes=np.nan)
    params = FeaturizeParams(numeric_impute="median", scale=True)
    with pytest.warns(UserWarning, match="Skipping features without any observed values"):
        fit_featurizer(empty, contract, params)


def _model_on(columns: list[str]):
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    frame = pd.DataFrame({c: [0.0, 1.0] for c in columns})
    return Pipeline([("m", DummyClassifier())]).fit(frame, [0, 1])


def test_a_model_or_featurizer_of_other_columns_is_named_before_any_work():
    """A stale model or featurizer on new columns was scikit-learn's 'columns are missing'."""
    from churn.core.contract import Column, Contract

    contract = Contract(
        "y", 1, None, "row_id", False, {"a": Column("numeric"), "b": Column("numeric")}
    )
    check_fitted_columns(_model_on(["b", "a"]), contract, "m.pkl")  # order is free
    with pytest.raises(ChurnError) as err:
        check_fitted_columns(_model_on(["a", "old"]), contract, "m.pkl")
    assert str(err.value) == (
        "m.pkl: fitted on other columns than the contract's features; it lacks 'b'; it has "
        "'old' (run the stages before it: dvc repro)"
    )
    with pytest.raises(ChurnError, match=r"^m.pkl: .*; it lacks 'b' \(run"):
        check_fitted_columns(_model_on(["a"]), contract, "m.pkl")
    with pytest.raises(ChurnError) as err:
        check_fitted_columns(_model_on(["a", "b", "c"]), contract, "m.pkl")
    assert str(err.value) == (
        "m.pkl: fitted on other columns than the contract's features; it has 'c' "
        "(run the stages before it: dvc repro)"
    )
    many = [f"column_{i:02d}" for i in range(12)]  # 12 x 11 + 11 x 2 = 154 characters
    with pytest.raises(ChurnError) as err:
        check_fitted_columns(_model_on(many), contract, "m.pkl")
    listed = ", ".join(map(repr, many))
    assert f"; it has {listed[:120]}... ({len(listed)} characters) (run" in str(err.value)
    wide = Contract("y", 1, None, "row_id", False, {c: Column("numeric") for c in many})
    with pytest.raises(ChurnError) as err:
        check_fitted_columns(_model_on(["a"]), wide, "m.pkl")
    assert f"; it lacks {listed[:120]}... ({len(listed)} characters); it has 'a' (" in str(
        err.value
    )
    from sklearn.dummy import DummyClassifier  # fitted on an array: no names to compare

    check_fitted_columns(DummyClassifier().fit([[0.0], [1.0]], [0, 1]), contract, "m")


def test_a_fitted_featurizer_is_checked_by_its_column_names(fitted):
    """The train stage reads these names: a FeatureUnion of column selections has them."""
    contract, _, featurizer = fitted
    check_fitted_columns(featurizer, contract, "f.pkl")
    first = contract.features[0]
    columns = {(n + "_new" if n == first else n): c for n, c in contract.columns.items()}
    renamed = dataclasses.replace(contract, columns=columns)
    with pytest.raises(ChurnError) as err:
        check_fitted_columns(featurizer, renamed, "f.pkl")
    assert str(err.value) == (
        f"f.pkl: fitted on other columns than the contract's features; it lacks "
        f"'{first}_new'; it has '{first}' (run the stages before it: dvc repro)"
    )


def test_feature_names_are_the_featurizers_in_order(fitted, regions_only):
    contract, _, featurizer = fitted
    assert feature_names(featurizer, contract, "t.parquet") == list(
        featurizer.get_feature_names_out()
    )
    frame, contract = regions_only
    only = fit_featurizer(frame, contract, FeaturizeParams(numeric_impute="median", scale=False))
    assert feature_names(only, contract, "t.parquet")[-1] == "region_nan"


@pytest.mark.parametrize(
    ("columns", "clash"),
    [
        (
            {"plan": ["basic", "pro", "basic"], "plan_basic": [1.0, 2.0, 3.0]},
            "'plan_basic' is made twice, by column 'plan_basic' and by column 'plan' value 'basic'",
        ),
        (
            {"a": ["b_c", "d", "d"], "a_b": ["c", "e", "e"]},
            "'a_b_c' is made twice, by column 'a' value 'b_c' and by column 'a_b' value 'c'",
        ),
        (
            {"plan": ["basic", None, "pro"], "plan_nan": [1.0, 2.0, 3.0]},
            "'plan_nan' is made twice, by column 'plan_nan' and by column 'plan' value 'nan'",
        ),
    ],
)
def test_two_features_of_one_name_are_refused_naming_both(columns, clash):
    """scikit-learn's traceback came after the featurizer was written."""
    frame = pd.DataFrame({**columns, "status": ["yes", "no", "no"]})
    features = {
        name: {
            "type": "numeric" if isinstance(values[0], float) else "categorical",
            "nullable": True,
        }
        for name, values in columns.items()
    }
    data = DataParams(target="status", positive_label="yes", id=None, features=features)
    contract = resolve_contract(data, frame, "own.csv")
    params = FeaturizeParams(numeric_impute="median", scale=True)
    featurizer = fit_featurizer(frame, contract, params)
    with pytest.raises(ChurnError) as err:
        feature_names(featurizer, contract, "t.parquet")
    assert str(err.value) == (
        f"t.parquet: feature {clash} (one-hot features are named column_value): "
        "rename a column in the file"
    )


def test_a_training_matrix_over_the_limit_is_refused_naming_the_widest_column(fitted):
    """A column of thousands of categories made train's memory grow with rows x categories."""
    contract, frame, featurizer = fitted
    shape = (len(frame), len(feature_names(featurizer, contract, "custom.csv")))
    assert shape == (600, 10)
    check_matrix_size(featurizer, contract, shape, 600 * 10 * 8 / 1e9, "custom.csv")  # at it
    with pytest.raises(ChurnError) as err:
        check_matrix_size(featurizer, contract, shape, 4.79e-5, "custom.csv")
    assert str(err.value) == (
        "custom.csv: 600 training rows x 10 features make a 4.8e-05 GB matrix for train, over "
        "featurize.max_matrix_gb (4.79e-05) in params.yaml; the widest column is 'region', "
        "5 categories: drop such a column from data.features, group its values, or raise the "
        "limit"
    )
    with pytest.raises(ChurnError, match=r"^custom\.csv: 10,000,000 training rows x 10 features"):
        check_matrix_size(featurizer, contract, (10_000_000, 10), 0.8 - 1e-10, "custom.csv")
    check_matrix_size(featurizer, contract, (10_000_000, 10), 0.8, "custom.csv")


def test_the_widest_column_is_the_one_of_most_categories_not_the_last_by_name():
    frame = pd.DataFrame(
        {
            "status": ["left", "stayed"] * 6,
            "account": [f"a{i}" for i in range(12)],
            "area": [f"x{i % 6}" for i in range(12)],
            "zone": ["n", "s"] * 6,
        }
    )
    contract = resolve_contract(DataParams(**CUSTOM_DATA), frame, "f.csv")
    featurizer = fit_featurizer(frame, contract, FeaturizeParams(numeric_impute="mean", scale=True))
    with pytest.raises(ChurnError, match=r"the widest column is 'area', 6 categories"):
        check_matrix_size(featurizer, contract, (12, 8), 1e-12, "f.csv")


def test_without_categories_the_limit_names_no_column(custom_dataset):
    data = DataParams(**{**CUSTOM_DATA, "features": {"usage_minutes": {"type": "numeric"}}})
    frame = custom_dataset[["account", "usage_minutes", "status"]]
    contract = resolve_contract(data, frame, "custom.csv")
    featurizer = fit_featurizer(frame, contract, FeaturizeParams(numeric_impute="mean", scale=True))
    with pytest.raises(ChurnError) as err:
        check_matrix_size(featurizer, contract, (600, 1), 1e-9, "custom.csv")
    assert str(err.value) == (
        "custom.csv: 600 training rows x 1 features make a 4.8e-06 GB matrix for train, over "
        "featurize.max_matrix_gb (1e-09) in params.yaml: raise the limit"
    )


def test_the_default_limit_is_4_gb():
    assert FeaturizeParams(numeric_impute="median", scale=True).max_matrix_gb == 4.0
