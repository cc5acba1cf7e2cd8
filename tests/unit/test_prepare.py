import numpy as np
import pandas as pd
import pytest

from churn.core.contract import Column, Contract, resolve_contract
from churn.core.errors import ChurnError
from churn.core.params import DataParams, PrepareParams
from churn.stages.prepare import (
    approximate_mode,
    as_category,
    check_features_have_values,
    check_row_count,
    check_split,
    clean,
    encode_target,
    read_raw,
    split,
    stratified_indices,
)
from synthetic import CUSTOM_DATA


@pytest.fixture(scope="module")
def telco_clean(params, telco):
    contract = resolve_contract(params.data, telco, "raw.csv")
    return contract, clean(telco, contract, "raw.csv")


def test_blank_total_charges_become_missing(tmp_path, telco):
    path = tmp_path / "raw.csv"
    telco.to_csv(path, index=False)
    frame = read_raw(path)
    assert frame["total_charges"].isna().sum() == 11
    assert frame.shape == (7043, 21)


def test_whitespace_cells_are_missing(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_text("id,x,y\n1, ,Yes\n2,3.5,No\n")
    assert read_raw(path)["x"].isna().tolist() == [True, False]


def test_clean_types_target_and_index(telco_clean):
    contract, frame = telco_clean
    assert frame.index.name == "rownames"
    assert frame.index.is_unique
    assert "rownames" not in frame.columns
    assert frame["churn"].dtype == np.int64
    assert frame["churn"].sum() == 1869
    assert frame["female"].dtype == np.int8  # the smallest integer that holds 0/1
    assert set(frame["female"].unique()) == {0, 1}
    assert frame["tenure"].dtype == np.int8  # 0..72 months
    assert frame["total_charges"].dtype == np.float64  # floats keep every bit
    assert isinstance(frame["contract"].dtype, pd.CategoricalDtype)
    assert frame["contract"].cat.categories.tolist() == ["Month-to-month", "One year", "Two year"]
    assert frame["contract"].value_counts().tolist() == [3875, 1695, 1473]
    assert list(frame.columns) == [*contract.features, "churn"]


@pytest.mark.parametrize(
    ("labels", "found"),
    [
        (["Yes", "No", "Maybe"], "'Maybe', 'No', 'Yes'"),
        (["No", "No"], "'No'"),
        (["No", "Maybe"], "'Maybe', 'No'"),
        (["left ", "stayed"], "'left ', 'stayed'"),  # the space shows
        (
            [f"c{i:03}" for i in range(100)],
            ", ".join(f"'c{i:03}'" for i in range(25)) + ", ... (798 characters)",
        ),
    ],
    ids=["a third label", "one label", "no positive label", "a space", "a label per row"],
)
def test_encode_target_needs_two_labels_including_the_positive_one(labels, found):
    """Guards both halves of the rule, and the sorted label list the message shows."""
    with pytest.raises(ChurnError) as err:
        encode_target(pd.Series(labels, name="churn"), "Yes", "raw.csv")
    assert str(err.value) == (
        f"raw.csv: target 'churn' must have two labels including 'Yes' (found: {found})"
    )


def test_encode_target_with_numeric_labels():
    assert encode_target(pd.Series([1, 0, 1], name="y"), 1, "raw.csv").tolist() == [1, 0, 1]


def test_duplicate_ids_are_rejected(custom_dataset):
    custom_dataset.loc[3, "account"] = custom_dataset.loc[2, "account"]
    contract = resolve_contract(DataParams(**CUSTOM_DATA), custom_dataset, "custom.csv")
    with pytest.raises(ChurnError) as err:
        clean(custom_dataset, contract, "custom.csv")
    assert str(err.value) == (
        "custom.csv: id column 'account' must be unique and present (0 missing, 1 duplicated)"
    )


def test_text_in_numeric_column_names_it(custom_dataset):
    custom_dataset["support_calls"] = custom_dataset["support_calls"].astype(str)
    custom_dataset.loc[5, "support_calls"] = "many"
    features = {
        "plan": {"type": "categorical"},
        "usage_minutes": {"type": "numeric", "nullable": True},
        "region": {"type": "categorical", "nullable": True},
        "support_calls": {"type": "numeric"},
    }
    data = DataParams.model_validate({**CUSTOM_DATA, "features": features})
    contract = resolve_contract(data, custom_dataset, "custom.csv")
    with pytest.raises(ChurnError) as err:
        clean(custom_dataset, contract, "custom.csv")
    assert str(err.value) == (
        "custom.csv: numeric column 'support_calls': Unable to parse string 'many' at position 5"
    )


def test_split_is_stratified_sized_and_seeded(telco_clean):
    _, frame = telco_clean
    train, test = split(frame, "churn", PrepareParams(test_size=0.2, seed=42))
    assert (len(train), len(test)) == (5634, 1409)
    assert train.index.intersection(test.index).empty
    assert abs(train["churn"].mean() - test["churn"].mean()) < 0.002
    again, _ = split(frame, "churn", PrepareParams(test_size=0.2, seed=42))
    assert train.index.equals(again.index)
    other, _ = split(frame, "churn", PrepareParams(test_size=0.2, seed=1))
    assert not train.index.equals(other.index)


def test_split_needs_two_rows_per_class():
    frame = pd.DataFrame({"x": [1, 2, 3], "y": [0, 0, 1]})
    with pytest.raises(ChurnError) as err:
        split(frame, "y", PrepareParams(test_size=0.3, seed=0))
    assert str(err.value) == "target 'y': each class needs at least 2 rows to split"


@pytest.mark.parametrize("rows", [1, 3])
def test_a_file_too_short_to_split_is_refused_before_its_columns_are_judged(rows):
    """With one row, every column was 'unique': inference called it a row id or key."""
    frame = pd.DataFrame({"plan": ["basic", "plus", "pro"][:rows], "y": ["yes", "no", "no"][:rows]})
    with pytest.raises(ChurnError) as err:
        check_row_count(frame, "data/raw/x.csv")
    assert str(err.value) == (
        f"data/raw/x.csv: {rows} data row(s): too few to split into train and test "
        "(at least 4, 2 of each class)"
    )
    check_row_count(pd.concat([frame] * 4).head(4), "data/raw/x.csv")


def test_two_rows_per_class_are_enough_to_split():
    """The minimum is two rows per class, not three: one of each class goes to each side."""
    frame = pd.DataFrame({"x": range(4), "y": [0, 0, 1, 1]})
    train, test = split(frame, "y", PrepareParams(test_size=0.5, seed=0))
    assert sorted(train["y"]) == sorted(test["y"]) == [0, 1]


def test_empty_and_missing_files_are_named(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ChurnError, match=r"empty\.csv: file is empty"):
        read_raw(empty)
    header = tmp_path / "header.csv"
    header.write_text("a,b,c\n")
    with pytest.raises(ChurnError, match=r"header\.csv: header only, no data rows"):
        read_raw(header)
    with pytest.raises(ChurnError, match=r"absent\.csv: file not found"):
        read_raw(tmp_path / "absent.csv")


# Known answers (issue #17: mutants these must kill).


def test_every_seed_splits_the_classes_exactly_in_proportion():
    # 4 positives in 20 rows, half to test: stratified, every seed puts exactly 2 on each
    # side. An unstratified draw does so with probability C(4,2)C(16,8)/C(20,10) = 0.42,
    # so ten seeds in a row would not.
    frame = pd.DataFrame({"x": range(20), "y": [1] * 4 + [0] * 16})
    for seed in range(10):
        train, test = split(frame, "y", PrepareParams(test_size=0.5, seed=seed))
        assert (int(train["y"].sum()), int(test["y"].sum())) == (2, 2), seed


def side(n: int, positives: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {"y": [1] * positives + [0] * (n - positives)}, index=range(start, start + n)
    )


@pytest.mark.parametrize("drifting", ["train", "test"])
def test_check_split_allows_two_points_of_drift_and_no_more(drifting):
    """Either side may drift 2 points from the whole's rate; the message names the side."""

    def sides(positives):  # the drifting side has 100 rows, the other 900 at the whole's rate
        small, big = side(100, positives), side(900, 450, start=100)
        return (small, big) if drifting == "train" else (big, small)

    whole = side(1000, 500)
    check_split(whole, *sides(49), "y")  # 1 point: fine
    with pytest.raises(ChurnError) as err:
        check_split(whole, *sides(47), "y")  # 3 points
    assert str(err.value) == (
        f"split: {drifting} positive rate 0.470 is 3.0 points from the whole's 0.500 (limit 2)"
    )


def test_check_split_tolerates_one_rows_worth_on_tiny_sides():
    whole = side(20, 10)
    check_split(whole, side(10, 5), side(10, 4, start=10), "y")  # 10 points, one row of ten
    # Exactly one row's worth (0.25 of 4 rows, exact in binary) is still within the limit.
    check_split(side(8, 4), side(4, 3), side(4, 1, start=4), "y")
    with pytest.raises(ChurnError, match=r"^split: test positive rate 0\.300 is 20\.0 points"):
        check_split(whole, side(10, 5), side(10, 3, start=10), "y")


@pytest.mark.parametrize(
    ("train", "test", "expected"),
    [
        # 2 churners in 100: a test side of 20 with none is 2 points off, within the limit.
        (side(80, 2), side(20, 0, start=80), "test has no positive 'y' rows (of 20)"),
        (side(80, 0), side(20, 2, start=80), "train has no positive 'y' rows (of 80)"),
        (side(80, 78), side(20, 20, start=80), "test has no negative 'y' rows (of 20)"),
    ],
    ids=["test without positives", "train without positives", "test without negatives"],
)
def test_check_split_needs_both_classes_on_each_side(train, test, expected):
    """A rare class can be missing from one side within the rate's tolerance."""
    whole = pd.concat([train, test])
    with pytest.raises(ChurnError) as err:
        check_split(whole, train, test, "y")
    assert str(err.value) == (
        f"split: {expected}: each side needs both classes; add rows or change prepare.test_size"
    )


def test_check_split_refuses_an_id_on_both_sides():
    with pytest.raises(ChurnError) as err:
        check_split(side(4, 2), side(2, 1), side(2, 1, start=1), "y")
    assert str(err.value) == "split: 1 id(s) in both train and test (e.g. 1)"


def test_without_an_id_column_rows_are_numbered(custom_dataset):
    data = DataParams(**{**CUSTOM_DATA, "id": None})
    frame = custom_dataset.drop(columns=["account"])
    contract = resolve_contract(data, frame, "custom.csv")
    out = clean(frame, contract, "custom.csv")
    assert out.index.name == "row_id"
    assert out.index.equals(pd.RangeIndex(len(frame), name="row_id"))
    assert "account" not in out.columns


# A contract declared by hand: categorical before numeric, to see the order imposed.
SMALL = Contract(
    target="churn",
    positive_label="Yes",
    labels=None,
    id="id",
    id_in_data=True,
    columns={"plan": Column("categorical"), "minutes": Column("numeric")},
)


def small_raw(**columns) -> pd.DataFrame:
    """Three raw rows as read from a CSV, with some columns replaced."""
    base = {
        "id": ["c1", "c2", "c3"],
        "plan": [" basic", "pro ", None],
        "minutes": ["1.5", "2", None],
        "churn": ["Yes", "No", "No"],
    }
    return pd.DataFrame({**base, **columns})


def test_clean_known_answer():
    """Numbers parsed, categories as written in sorted text categories, target 0/1, id as index.

    Features come numeric first whatever the declared order, then the target.
    """
    out = clean(small_raw(), SMALL, "raw.csv")
    plan = pd.Categorical(
        [" basic", "pro ", None], categories=pd.Index([" basic", "pro "], dtype="str")
    )
    expected = pd.DataFrame(
        {"minutes": [1.5, 2.0, np.nan], "plan": plan, "churn": [1, 0, 0]},
        index=pd.Index(["c1", "c2", "c3"], name="id"),
    )
    pd.testing.assert_frame_equal(out, expected)


@pytest.mark.parametrize(
    ("values", "categories", "codes"),
    [
        ([" b", "a", "b ", None, "a", "b"], [" b", "a", "b", "b "], [0, 1, 3, -1, 1, 2]),
        (pd.Categorical(["z", " y", None]), [" y", "z"], [1, 0, -1]),  # already categories
        ([3, 1, 3], ["1", "3"], [1, 0, 1]),  # numbers become their text
        ([True, False], ["False", "True"], [1, 0]),
        ([None, None], [], [-1, -1]),
    ],
    ids=["as written", "categorical", "numbers", "booleans", "all missing"],
)
def test_as_category_sorts_the_distinct_texts_as_written(values, categories, codes):
    out = as_category(pd.Series(values))
    assert out.categories.tolist() == categories
    assert str(out.categories.dtype) == "str"  # text, also with no category at all
    assert out.codes.tolist() == codes
    assert not out.ordered


def test_encode_target_reads_categories_and_keeps_the_index():
    values = pd.Series(pd.Categorical(["No", "Yes", "Yes"]), index=[7, 3, 5], name="churn")
    out = encode_target(values, "Yes", "raw.csv")
    assert out.tolist() == [0, 1, 1]
    assert out.index.tolist() == [7, 3, 5]
    assert out.name == "churn"
    assert out.dtype == np.int64


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            {"id": ["c1", None, "c1"]},
            "id column 'id' must be unique and present (1 missing, 1 duplicated)",
        ),
        (
            {"id": ["c1", None, "c3"]},
            "id column 'id' must be unique and present (1 missing, 0 duplicated)",
        ),
        ({"churn": ["Yes", None, "No"]}, "column 'churn' has 1 missing values"),
        (
            {"minutes": ["1", "lots", "2"]},
            "numeric column 'minutes': Unable to parse string 'lots' at position 1",
        ),
    ],
    ids=["missing and duplicated ids", "a missing id", "a missing target", "text in a number"],
)
def test_clean_refuses_with_the_file_named(columns, message):
    """Each refusal names the source file, the column and the counts."""
    with pytest.raises(ChurnError) as err:
        clean(small_raw(**columns), SMALL, "raw.csv")
    assert str(err.value) == f"raw.csv: {message}"


@pytest.mark.parametrize("seed", [0, 1, 42])
@pytest.mark.parametrize("test_size", [0.1, 0.2, 0.25, 0.333, 0.5, 0.7])
@pytest.mark.parametrize(("rows", "positive"), [(4, 0.5), (7, 0.3), (33, 0.1), (1001, 0.27)])
def test_stratified_indices_are_scikit_learns_split(rows, positive, test_size, seed):
    """Draw for draw the split that scikit-learn's train_test_split(stratify=...) makes.

    prepare used to call it: the committed split did not move when scikit-learn left.
    """
    from sklearn.model_selection import train_test_split

    y = (np.random.RandomState(seed + rows).rand(rows) < positive).astype(int)
    y[:2], y[-2:] = 0, 1  # two of each class at least
    try:
        expected = train_test_split(
            np.arange(rows), test_size=test_size, random_state=seed, stratify=y
        )
    except ValueError:  # too few rows for this test_size: prepare refuses it too
        with pytest.raises(ChurnError, match="cannot hold each of 2 classes"):
            stratified_indices(y, test_size, seed)
        return
    train, test = stratified_indices(y, test_size, seed)
    assert train.tolist() == expected[0].tolist()
    assert test.tolist() == expected[1].tolist()


def test_stratified_indices_three_classes_and_remainder_ties():
    from sklearn.model_selection import train_test_split

    y = np.repeat([0, 1, 2], [5, 5, 5])  # equal remainders: the tie is drawn from the seed
    for seed in range(5):
        expected = train_test_split(np.arange(15), test_size=0.2, random_state=seed, stratify=y)
        got = stratified_indices(y, 0.2, seed)
        assert [g.tolist() for g in got] == [e.tolist() for e in expected]


def test_approximate_mode_known_answers():
    """scikit-learn's documented examples of the helper."""
    rng = np.random.RandomState
    assert approximate_mode(np.array([4, 2]), 3, rng(0)).tolist() == [2, 1]
    assert approximate_mode(np.array([5, 2]), 4, rng(0)).tolist() == [3, 1]
    assert approximate_mode(np.array([2, 2, 2, 1]), 2, rng(0)).tolist() == [0, 1, 1, 0]
    assert approximate_mode(np.array([2, 2, 2, 1]), 2, rng(42)).tolist() == [1, 1, 0, 0]
    assert approximate_mode(np.array([6, 3]), 3, rng(0)).tolist() == [2, 1]  # exact: no draw


def test_a_feature_without_a_value_in_the_file_or_the_training_split_is_refused():
    contract = Contract(
        "y", 1, None, "row_id", False, {"a": Column("numeric"), "b": Column("categorical")}
    )
    whole = pd.DataFrame({"a": [1.0, np.nan, 2.0], "b": pd.Categorical(["x", None, None]),
                          "y": [0, 1, 0]})  # fmt: skip
    check_features_have_values(whole, whole.iloc[:1], contract, "f.csv")  # a value each
    with pytest.raises(ChurnError) as err:
        check_features_have_values(whole, whole.iloc[1:], contract, "f.csv")
    assert str(err.value) == (
        "f.csv: 'b': no value in the training split (2 rows), nothing to learn from; "
        "list data.features without it"
    )
    empty = whole.assign(a=np.nan, b=pd.Categorical([None] * 3))
    with pytest.raises(ChurnError) as err:
        check_features_have_values(empty, empty, contract, "f.csv")
    assert str(err.value) == (
        "f.csv: 'a', 'b': no value in the file (3 rows), nothing to learn from; "
        "list data.features without them"
    )


def test_many_empty_features_are_named_clipped():
    names = [f"empty_{i:03d}" for i in range(30)]
    contract = Contract("y", 1, None, "row_id", False, {n: Column("numeric") for n in names})
    frame = pd.DataFrame({**dict.fromkeys(names, [np.nan] * 2), "y": [0, 1]})
    with pytest.raises(ChurnError) as err:
        check_features_have_values(frame, frame, contract, "f.csv")
    listed = ", ".join(map(repr, names))
    assert str(err.value).startswith(f"f.csv: {listed[:200]}... ({len(listed)} characters): ")


def test_clean_indexes_by_the_id_also_without_categories():
    contract = Contract("y", "yes", None, "account", True, {"n": Column("numeric")})
    raw = pd.DataFrame({"account": ["a7", "b3"], "n": [1.5, 2.5], "y": ["yes", "no"]})
    out = clean(raw, contract, "f.csv")
    assert out.index.tolist() == ["a7", "b3"]
    assert out.index.name == "account"


def test_clean_builds_the_same_frame_for_many_columns_without_a_warning(recwarn):
    """Column by column, pandas warned of fragmentation past 100 columns."""
    names = [f"n{i}" for i in range(150)]
    columns = {name: Column("numeric") for name in names} | {"c": Column("categorical")}
    contract = Contract("y", "yes", None, "row_id", False, columns)
    raw = pd.DataFrame({**{n: [1, 2] for n in names}, "c": ["p", "q"], "y": ["yes", "no"]})
    out = clean(raw, contract, "f.csv")
    assert list(out.columns) == [*names, "c", "y"]
    assert out["n0"].dtype == np.int8
    assert out["c"].tolist() == ["p", "q"]
    assert out["y"].tolist() == [1, 0]
    assert [w for w in recwarn if "fragmented" in str(w.message)] == []
