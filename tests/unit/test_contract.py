import json
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from churn.core.contract import (
    NUMBER_TEXT,
    ROW_ID,
    Column,
    Contract,
    check_header,
    check_header_names,
    check_output_names,
    check_slices,
    contract_text,
    describe_failures,
    distinct_texts,
    markdown_table,
    one_of,
    read_contract,
    require_columns,
    resolve_contract,
    score_problems,
    validate,
    validate_features,
)
from churn.core.errors import ChurnError
from churn.core.params import DataParams, parse_params
from conftest import REPO
from synthetic import CUSTOM_DATA


@pytest.fixture(scope="module")
def telco_contract(params, telco):
    return resolve_contract(params.data, telco, "raw.csv")


def test_telco_contract_is_declared_in_params(telco_contract):
    c = telco_contract
    assert (c.target, c.id, c.id_in_data, c.labels) == ("churn", "rownames", True, ("No", "Yes"))
    assert c.numeric == (
        "female",
        "senior_citizen",
        "partner",
        "dependents",
        "tenure",
        "phone_service",
        "paperless_billing",
        "monthly_charges",
        "total_charges",
    )
    assert len(c.categorical) == 10
    assert (c.columns["tenure"].min, c.columns["tenure"].max) == (0, 120)
    assert c.columns["total_charges"].nullable is True
    assert c.columns["contract"].categories == ("Month-to-month", "One year", "Two year")
    assert c.features == [*c.numeric, *c.categorical]


def test_inferred_features_follow_dtypes(custom_dataset):
    c = resolve_contract(DataParams(**CUSTOM_DATA), custom_dataset, "custom.csv")
    assert c.numeric == ("usage_minutes", "support_calls")
    assert c.categorical == ("plan", "region")
    assert all(col.nullable for col in c.columns.values())


def test_no_id_numbers_the_rows(custom_dataset):
    frame = custom_dataset.drop(columns=["account"])
    c = resolve_contract(DataParams(**{**CUSTOM_DATA, "id": None}), frame, "x.csv")
    assert (c.id, c.id_in_data) == (ROW_ID, False)
    assert list(c.columns) == ["plan", "usage_minutes", "region", "support_calls"]


def test_missing_columns_are_named_with_the_file(params, telco):
    with pytest.raises(ChurnError) as err:
        resolve_contract(params.data, telco.drop(columns=["churn", "tenure"]), "raw.csv")
    assert str(err.value).startswith(
        "raw.csv: missing column(s) 'churn', 'tenure' (found: rownames,"
    )


def test_unexpected_column_is_refused_when_features_are_declared(params, telco):
    with pytest.raises(ChurnError, match=r"raw\.csv: unexpected column\(s\) 'promo_code': add"):
        resolve_contract(params.data, telco.assign(promo_code="X"), "raw.csv")


def test_unexpected_column_is_a_feature_when_inferred(custom_dataset):
    c = resolve_contract(DataParams(**CUSTOM_DATA), custom_dataset.assign(score=1.5), "x.csv")
    assert c.numeric[-1] == "score"


def test_contract_round_trips_through_json_in_order(tmp_path, telco_contract):
    (tmp_path / "contract.json").write_text(contract_text(telco_contract))
    back = read_contract(tmp_path / "contract.json")
    assert back == telco_contract
    assert list(back.columns) == list(telco_contract.columns)


def test_real_data_passes(telco_contract, telco):
    validate(telco, telco_contract, "raw.csv")  # raises on any failed check


def failing(frame, contract, source: str = "raw.csv") -> list[str]:
    with pytest.raises(ChurnError) as err:
        validate(frame, contract, source)
    return str(err.value).splitlines()


def test_each_failed_check_is_a_line_with_count_rows_and_values(telco_contract, telco):
    bad = telco.head(20).copy()
    bad.loc[3, "tenure"] = -1
    bad.loc[8, "tenure"] = -5
    bad.loc[4, "monthly_charges"] = np.nan
    bad.loc[6, "rownames"] = bad.loc[5, "rownames"]
    bad.loc[9, "churn"] = "Maybe"
    lines = failing(bad, telco_contract)
    assert lines[0] == "raw.csv: 4 data contract check(s) failed"
    assert "  tenure: >= 0: 2 bad row(s) (row 4: -1, row 9: -5)" in lines
    assert "  monthly_charges: not null: 1 bad row(s) (row 5: nan)" in lines
    assert "  rownames: unique: 2 bad row(s) (row 6: 6, row 7: 6)" in lines
    assert "  churn: one of ['No', 'Yes']: 1 bad row(s) (row 10: 'Maybe')" in lines


def test_text_in_a_numeric_column(telco_contract, telco):
    bad = telco.head(10).astype({"tenure": object})
    bad.loc[2, "tenure"] = "twelve"
    assert (
        failing(bad, telco_contract)[1] == "  tenure: is a number: 1 bad row(s) (row 3: 'twelve')"
    )


@pytest.mark.parametrize("value", ["inf", "-inf", "1e999", "Infinity", "nan"])
def test_an_infinite_number_is_not_a_number(telco_contract, telco, value):
    """No bound catches inf where a column has none, and no JSON can hold its range."""
    bad = telco.head(10).astype({"monthly_charges": object})
    bad.loc[2, "monthly_charges"] = value
    assert failing(bad, telco_contract)[1] == (
        f"  monthly_charges: is a number: 1 bad row(s) (row 3: {value!r})"
    )


def test_an_infinite_float_is_not_a_number(telco_contract, telco):
    bad = telco.head(10).copy()
    bad.loc[2, "monthly_charges"] = np.inf
    assert failing(bad, telco_contract)[1] == (
        "  monthly_charges: is a number: 1 bad row(s) (row 3: inf)"
    )


def test_examples_stop_at_five(telco_contract, telco):
    bad = telco.head(30).copy()
    bad.loc[:9, "tenure"] = -1
    line = failing(bad, telco_contract)[1]
    assert line.startswith("  tenure: >= 0: 10 bad row(s) (row 1: -1")
    assert line.count("row ") == 5


def test_single_class_target_cannot_train(telco_contract, telco):
    lines = failing(telco[telco["churn"] == "No"].head(50), telco_contract)
    assert lines[1] == "  churn: two classes needed to train and evaluate, found only ['No']"


def test_a_category_outside_the_declared_set_is_an_error(telco_contract, telco):
    # The service answers 422 for it; prepare agrees and stops.
    frame = telco.head(40).copy()
    frame.loc[[1, 7, 30], "payment_method"] = "Crypto"
    assert failing(frame, telco_contract) == [
        "raw.csv: 1 data contract check(s) failed",
        "  payment_method: one of 'Bank transfer (automatic)', 'Credit card (automatic)', "
        "'Electronic check', 'Mailed check': 3 bad row(s) "
        "(row 2: 'Crypto', row 8: 'Crypto', row 31: 'Crypto')",
    ]


def test_readme_data_table_is_generated_from_the_contract(params):
    readme = (REPO / "README.md").read_text()
    match = re.search(r"<!-- contract:start -->\n(.*?)\n<!-- contract:end -->", readme, re.S)
    assert match, "README lacks the generated data table"
    assert match.group(1) == markdown_table(params.data)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"type": "numeric", "categories": ["a"]}, "categories apply to categorical columns only"),
        ({"type": "categorical", "min": 0}, "min/max apply to numeric columns only"),
        ({"type": "numeric", "min": 5, "max": 1}, "min 5.0 is greater than max 1.0"),
        ({"type": "text"}, "Input should be 'numeric' or 'categorical'"),
    ],
)
def test_bad_feature_rules_name_the_feature(params_dict, rule, message):
    params_dict["data"]["features"]["tenure"] = rule
    with pytest.raises(
        ChurnError,
        match=re.escape("params.yaml: data.features.tenure") + ".*" + re.escape(message),
    ):
        parse_params(params_dict)


def test_unknown_rule_key_lists_the_allowed_ones(params_dict):
    params_dict["data"]["features"]["tenure"]["maximum"] = 3
    with pytest.raises(ChurnError) as err:
        parse_params(params_dict)
    assert str(err.value) == (
        "params.yaml: data.features.tenure.maximum: unknown key "
        "(allowed: categories, max, min, nullable, type)"
    )


def test_labels_must_include_the_positive_label(params_dict):
    params_dict["data"]["labels"] = ["No", "Maybe"]
    with pytest.raises(ChurnError) as err:
        parse_params(params_dict)
    assert str(err.value) == (
        "params.yaml: data: labels must be two different values including positive_label 'Yes'"
    )


def test_target_only_table_has_no_features():
    data = DataParams(target="y", positive_label=1, id=None, features="infer")
    with pytest.raises(ChurnError, match="no feature columns"):
        resolve_contract(data, pd.DataFrame({"y": [0, 1]}), "t.csv")


# Known answers (issue #17: mutants these must kill).


def test_max_bound_is_checked_and_inclusive(telco_contract, telco):
    rows = telco.head(10).copy()
    rows.loc[2, "tenure"] = 120  # the declared max itself is allowed
    validate(rows, telco_contract, "raw.csv")
    rows.loc[2, "tenure"] = 121
    assert failing(rows, telco_contract)[1:] == ["  tenure: <= 120: 1 bad row(s) (row 3: 121)"]


def test_target_and_id_may_not_be_missing(telco_contract, telco):
    rows = telco.head(10).copy()
    rows.loc[1, "churn"] = None
    rows.loc[4, "rownames"] = None
    lines = failing(rows, telco_contract)
    assert "  churn: not null: 1 bad row(s) (row 2: None)" in lines
    assert "  rownames: not null: 1 bad row(s) (row 5: nan)" in lines


def test_a_missing_category_is_an_error_unless_nullable(params_dict, telco):
    rows = telco.head(10).copy()
    rows.loc[6, "contract"] = None
    declared = resolve_contract(parse_params(params_dict).data, rows, "raw.csv")
    assert failing(rows, declared)[1:] == ["  contract: not null: 1 bad row(s) (row 7: None)"]
    params_dict["data"]["features"]["contract"]["nullable"] = True
    allowed = resolve_contract(parse_params(params_dict).data, rows, "raw.csv")
    validate(rows, allowed, "raw.csv")  # raises on any failed check


def test_validate_features_checks_a_batch_without_target_or_id(telco_contract, telco):
    batch = telco.head(10).drop(columns=["churn", "rownames"])
    validate_features(batch, telco_contract, "batch.csv")  # no target, no id: fine
    bad = batch.copy()
    bad.loc[0, "monthly_charges"] = -3.0
    with pytest.raises(ChurnError) as err:
        validate_features(bad, telco_contract, "batch.csv")
    assert str(err.value) == (
        "batch.csv: 1 data contract check(s) failed\n"
        "  monthly_charges: >= 0: 1 bad row(s) (row 1: -3.0)"
    )
    with pytest.raises(ChurnError, match=r"^batch.csv: missing column\(s\) 'tenure' \(found: "):
        validate_features(batch.drop(columns=["tenure"]), telco_contract, "batch.csv")
    # A JSON-lines batch indexed by line: its examples are named by line, not row.
    lined = bad.set_axis(range(10, 20))
    with pytest.raises(ChurnError) as err:
        validate_features(lined, telco_contract, "log.jsonl", unit="line")
    assert str(err.value).splitlines()[1] == "  monthly_charges: >= 0: 1 bad row(s) (line 11: -3.0)"


def test_an_inferred_contract_is_validated_too(custom_dataset):
    contract = resolve_contract(DataParams(**CUSTOM_DATA), custom_dataset, "custom.csv")
    validate(custom_dataset, contract, "custom.csv")  # raises on any failed check
    bad = custom_dataset.astype({"support_calls": object})
    bad.loc[3, "support_calls"] = "many"
    bad.loc[5, "status"] = None
    lines = failing(bad, contract, source="custom.csv")
    assert lines[0] == "custom.csv: 2 data contract check(s) failed"
    assert "  support_calls: is a number: 1 bad row(s) (row 4: 'many')" in lines
    assert "  status: not null: 1 bad row(s) (row 6: nan)" in lines


@pytest.fixture
def tiny_contract() -> Contract:
    """Declared order b (numeric) then a (categorical): not alphabetical, on purpose."""
    return Contract(
        target="y",
        positive_label="1",
        labels=("0", "1"),
        id="k",
        id_in_data=True,
        columns={
            "b": Column("numeric", nullable=False, min=0.0, max=5.0),
            "a": Column("categorical", nullable=False, categories=("x", "z")),
        },
    )


def test_contract_file_is_the_documented_json(tmp_path, tiny_contract):
    """Other tools (and a model server) read contract.json: its keys are the interface."""
    inferred = Contract(
        "y",
        1,
        None,
        ROW_ID,
        False,
        {"n": Column("numeric", observed_min=-1.5, observed_max=2.0)},
        True,
    )
    expected = {
        "target": "y",
        "positive_label": "1",
        "labels": ["0", "1"],
        "id": "k",
        "id_in_data": True,
        "columns": [
            {
                "name": "b",
                "type": "numeric",
                "nullable": False,
                "min": 0.0,
                "max": 5.0,
                "categories": None,
                "observed_min": None,
                "observed_max": None,
            },
            {
                "name": "a",
                "type": "categorical",
                "nullable": False,
                "min": None,
                "max": None,
                "categories": ["x", "z"],
                "observed_min": None,
                "observed_max": None,
            },
        ],
        "inferred": False,
    }
    for contract, want in (
        (tiny_contract, expected),
        (
            inferred,
            {
                **expected,
                "positive_label": 1,
                "labels": None,
                "id": ROW_ID,
                "id_in_data": False,
                "columns": [
                    {
                        "name": "n",
                        "type": "numeric",
                        "nullable": True,
                        "min": None,
                        "max": None,
                        "categories": None,
                        "observed_min": -1.5,
                        "observed_max": 2.0,
                    }
                ],
                "inferred": True,
            },
        ),
    ):
        (tmp_path / "contract.json").write_text(contract_text(contract))
        assert json.loads((tmp_path / "contract.json").read_text()) == want
        assert read_contract(tmp_path / "contract.json") == contract


def test_a_file_that_is_not_a_contract_is_named(tmp_path):
    path = tmp_path / "contract.json"
    path.write_text('{"target": "y"}')
    with pytest.raises(ChurnError) as err:
        read_contract(path)
    assert str(err.value) == f"{path}: not a contract written by prepare ('columns')"


def test_a_bool_column_is_inferred_categorical(custom_dataset):
    """Pandas counts bool as numeric; a flag must be one-hot encoded, not scaled."""
    frame = custom_dataset.assign(promo=[True, False] * (len(custom_dataset) // 2))
    c = resolve_contract(DataParams(**CUSTOM_DATA), frame, "x.csv")
    assert c.categorical == ("plan", "region", "promo")


def test_every_unexpected_column_is_listed(params, telco):
    with pytest.raises(ChurnError) as err:
        resolve_contract(params.data, telco.assign(promo_code="X", coupon=1), "raw.csv")
    assert str(err.value) == (
        "raw.csv: unexpected column(s) 'promo_code', 'coupon': "
        "add them to data.features in params.yaml or remove them from the file"
    )


def test_failures_are_listed_in_schema_order_and_a_missing_column_too(tiny_contract):
    """One line per failed check, in the contract's column order (not sorted by name).

    A column absent from the frame has no rows to show: pandera reports it without a
    column or an index, and it must still count as a failed check.
    """
    frame = pd.DataFrame({"k": [1, 2, 3], "y": ["0", "1", "1"], "b": [1.0, 9.0, None]})
    with pytest.raises(ChurnError) as err:
        validate(frame.assign(a=["x", None, "z"]), tiny_contract, "f.csv")
    assert str(err.value) == (
        "f.csv: 3 data contract check(s) failed\n"
        "  b: not null: 1 bad row(s) (row 3: nan)\n"
        "  b: <= 5: 1 bad row(s) (row 2: 9.0)\n"
        "  a: not null: 1 bad row(s) (row 2: nan)"
    )
    with pytest.raises(ChurnError) as err:
        validate(frame.drop(columns=["b"]).assign(a="x"), tiny_contract, "f.csv")
    assert str(err.value) == (
        "f.csv: 1 data contract check(s) failed\n  nan: column_in_dataframe: 1 bad row(s) ('b')"
    )


def test_an_unknown_category_is_refused_but_a_missing_one_is_not_a_category(tiny_contract):
    frame = pd.DataFrame({"k": [1, 2], "y": ["0", "1"], "b": [1.0, 2.0], "a": ["x", "q"]})
    assert failing(frame, tiny_contract, "f.csv")[1:] == [
        "  a: one of 'x', 'z': 1 bad row(s) (row 2: 'q')"
    ]


def test_a_batch_may_carry_unknown_categories_for_monitoring_to_count(tiny_contract):
    batch = pd.DataFrame({"b": [1.0, 2.0], "a": ["x", "q"]})
    validate_features(batch, tiny_contract, "batch.csv")  # no error: monitoring counts it


def test_a_batch_may_carry_extra_columns_but_not_lack_features(tiny_contract):
    batch = pd.DataFrame({"k": [1, 2], "note": ["hi", "yo"], "b": [1.0, 9.0], "a": [None, "x"]})
    with pytest.raises(ChurnError) as err:
        validate_features(batch, tiny_contract, "batch.csv")
    assert str(err.value) == (
        "batch.csv: 2 data contract check(s) failed\n"
        "  b: <= 5: 1 bad row(s) (row 2: 9.0)\n"
        "  a: not null: 1 bad row(s) (row 1: nan)"
    )
    validate_features(batch.assign(b=1.0, a="x"), tiny_contract, "batch.csv")
    with pytest.raises(ChurnError) as err:
        validate_features(batch.drop(columns=["a", "b"]), tiny_contract, "batch.csv")
    assert str(err.value) == "batch.csv: missing column(s) 'b', 'a' (found: k, note)"


@pytest.mark.parametrize(
    ("rule", "allowed"),
    [
        ({"type": "numeric"}, "any number"),
        ({"type": "numeric", "min": 0}, "0 … ∞"),
        ({"type": "numeric", "max": 2.5}, "-∞ … 2.5"),
        ({"type": "numeric", "min": -1, "max": 1e6}, "-1 … 1e+06"),
        ({"type": "categorical", "nullable": True, "categories": ["a b", "c"]}, "`a b`, `c`"),
        ({"type": "categorical"}, "any value"),  # it said "any number"
        ({"type": "categorical", "categories": ["|pipe", "`t`"]}, "`\\|pipe`, `` `t` ``"),
    ],
)
def test_readme_row_of_each_kind_of_rule(rule, allowed):
    data = DataParams(target="y", positive_label=1, id=None, features={"f": rule})
    nullable = "yes" if rule.get("nullable") else "no"
    assert markdown_table(data).splitlines()[-1] == (
        f"| `f` | feature | {rule['type']} | {nullable} | {allowed} |"
    )


@pytest.mark.parametrize(
    ("labels", "allowed"),
    [
        (None, "any two (positive: `left`)"),
        (["stayed", "left"], "`stayed`, `left` (positive: `left`)"),
    ],
)
def test_readme_row_of_the_target_and_id(labels, allowed):
    """Without labels it said `left` alone, the one value the target could not only have."""
    data = DataParams(
        target="sta|tus",
        positive_label="left",
        labels=labels,
        id="acc`t",
        features={"f": {"type": "numeric"}},
    )
    rows = markdown_table(data).splitlines()
    assert rows[2] == "| ``acc`t`` | id | any | no | unique |"
    assert rows[3] == f"| `sta\\|tus` | target | label | no | {allowed} |"


def test_readme_says_when_features_are_inferred():
    data = DataParams(target="y", positive_label=1, id=None, features="infer")
    assert (
        markdown_table(data)
        == "_features: infer (`churn contract --freeze` prints the rules prepare inferred)_"
    )


def test_a_long_category_list_is_clipped_in_the_message():
    categories = tuple(f"plan-{i:02d}" for i in range(30))
    contract = Contract(
        "y", "1", None, ROW_ID, False, {"k": Column("categorical", False, categories=categories)}
    )
    frame = pd.DataFrame({"y": ["0", "1"], "k": ["plan-00", "gold"]})
    line = failing(frame, contract, "f.csv")[1]
    listed = ", ".join(map(repr, categories))
    assert (
        line
        == f"  k: one of {listed[:120]}... ({len(listed)} characters): 1 bad row(s) (row 2: 'gold')"
    )


@pytest.mark.parametrize("as_category", [False, True])
def test_one_of_judges_text_and_keeps_the_index(as_category):
    values = pd.Series(["Yes", "No", "Maybe", "Yes", None], index=[5, 4, 3, 2, 1])
    if as_category:
        values = values.astype("category")
    got = one_of(values, ["No", "Yes"])
    assert got.index.tolist() == [5, 4, 3, 2, 1]
    assert got.tolist()[:4] == [True, True, False, True]
    if as_category:
        assert got.tolist()[4] is True  # missing: pandera's not_nullable judges it


def test_one_of_compares_numbers_as_their_text():
    assert one_of(pd.Series([1, 2]), ["1"]).tolist() == [True, False]
    codes = pd.Series(pd.Categorical([1, 2, 1]))
    assert one_of(codes, ["1"]).tolist() == [True, False, True]


def test_distinct_texts_sorted_without_missing():
    assert distinct_texts(pd.Series(["b", None, "a", "b"])) == ["a", "b"]
    assert distinct_texts(
        pd.Series(pd.Categorical(["y", "x", None], categories=["z", "y", "x"]))
    ) == ["x", "y"]
    assert distinct_texts(pd.Series([2, 1, 2])) == ["1", "2"]
    assert distinct_texts(pd.Series([None, None], dtype=object)) == []


DECLARED = {
    "target": "churn",
    "positive_label": "Yes",
    "id": "cid",
    "features": {"plan": {"type": "categorical"}, "minutes": {"type": "numeric"}},
}


def test_check_header_declared_gives_the_declared_features_in_order():
    data = DataParams(**DECLARED)
    assert check_header(data, ["cid", "minutes", "plan", "churn"], "f.csv") == ["plan", "minutes"]


def test_check_header_inferred_gives_every_column_but_target_and_id():
    data = DataParams(**{**DECLARED, "features": "infer"})
    header = ["cid", "b", "churn", "a"]
    assert check_header(data, header, "f.csv") == ["b", "a"]


@pytest.mark.parametrize(
    ("changes", "header", "taken"),
    [
        ({"id": "reason"}, ["reason", "minutes", "plan", "churn"], "'reason'"),
        ({"features": "infer"}, ["cid", "row", "churn", "a"], "'row'"),
        (
            {"id": None, "features": "infer"},
            ["churn", "churn_probability", "reason"],
            "'churn_probability', 'reason'",
        ),
    ],
)
def test_check_header_refuses_what_prepare_refuses_an_output_name(changes, header, taken):
    """Churn check said ok to a file whose id prepare then refused as an output's name."""
    data = DataParams(**{**DECLARED, **changes})
    with pytest.raises(ChurnError) as err:
        check_header(data, header, "f.csv")
    assert str(err.value).startswith(f"f.csv: {taken}: a name churn's outputs give their own")


def test_without_an_id_column_the_header_check_passes_the_stand_in_id():
    data = DataParams(**{**DECLARED, "id": None, "features": "infer"})
    assert check_header(data, ["churn", "a"], "f.csv") == ["a"]


def test_without_an_id_column_no_feature_may_take_the_row_numbers_name():
    """Score's output held row numbers 0, 1, 2 as 'row_id' over the file's own row_id."""
    message = (
        "f.csv: 'row_id' is the name churn gives the row numbers when data.id is null; "
        "rename the column, or set data.id: row_id if it is the customer id"
    )
    inferred = DataParams(**{**DECLARED, "id": None, "features": "infer"})
    with pytest.raises(ChurnError) as err:
        check_header(inferred, ["churn", "row_id", "a"], "f.csv")
    assert str(err.value) == message
    frame = pd.DataFrame(
        {"churn": ["Yes", "No"] * 3, "row_id": [46, 36, 7, 9, 11, 3], "a": [1.0, 2.0] * 3}
    )
    with pytest.raises(ChurnError) as err:
        resolve_contract(inferred, frame, "f.csv")
    assert str(err.value) == message
    declared = DataParams(**{**DECLARED, "id": None, "features": {"row_id": {"type": "numeric"}}})
    with pytest.raises(ChurnError) as err:
        check_header(declared, ["churn", "row_id"], "f.csv")
    assert str(err.value) == message
    other_id = DataParams(**{**DECLARED, "id": "cid", "features": "infer"})  # rows not numbered
    assert check_header(other_id, ["cid", "churn", "row_id"], "f.csv") == ["row_id"]
    keyed = frame.assign(cid=[f"c{i}" for i in range(6)], row_id=[1, 2] * 3)
    assert list(resolve_contract(other_id, keyed, "f.csv").columns) == ["row_id", "a"]
    named = DataParams(**{**DECLARED, "id": "row_id", "features": "infer"})
    assert check_header(named, ["churn", "row_id", "a"], "f.csv") == ["a"]  # the id itself
    assert resolve_contract(named, frame, "f.csv").id == ROW_ID


def test_an_output_name_check_takes_the_advice_it_is_given():
    with pytest.raises(ChurnError) as err:
        check_output_names(["id", "churn"], "v1's contract", "retrain with a new name for")
    assert str(err.value) == (
        "v1's contract: 'churn': a name churn's outputs give their own columns (churn_probability,"
        " churn, row, reason) beside the id and the features; retrain with a new name for it"
    )
    check_output_names(["id", "plan"], "v1's contract")  # nothing taken: no error


def test_check_header_clips_the_columns_it_lists():
    """A 100,000-column header (or one 50 MB name) must not become a message that size."""
    data = DataParams(**DECLARED)
    extra = [f"x{i}" for i in range(100_000)]
    with pytest.raises(ChurnError) as err:
        check_header(data, ["cid", "minutes", "plan", "churn", *extra], "f.csv")
    listed = ", ".join(repr(c) for c in extra)
    assert str(err.value) == (
        f"f.csv: unexpected column(s) {listed[:200]}... (988888 characters): add them to "
        "data.features in params.yaml or remove them from the file"
    )
    found = [f"col{i}" for i in range(100)]
    with pytest.raises(ChurnError) as err:
        check_header(data, found, "f.csv")
    shown = ", ".join(found)
    assert str(err.value) == (
        "f.csv: missing column(s) 'cid', 'churn', 'plan', 'minutes' "
        f"(found: {shown[:200]}... ({len(shown)} characters))"
    )
    with pytest.raises(ChurnError) as err:  # one 1 MB name: a cell, not a name
        check_header(data, ["cid", "a" * 10**6], "f.csv")
    assert str(err.value) == (
        f"f.csv: header: column 2 ({'a' * 80}... (1000000 characters)) has a name longer "
        "than 256 characters"
    )


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("a\nb", "column 2 (a\\nb) has a character that is not printable text (U+000A)"),
        ("a\x00b", "column 2 (a\\x00b) has a character that is not printable text (U+0000)"),
        ("a\u2028b", "column 2 (a\\u2028b) has a character that is not printable text "
         "(U+2028 LINE SEPARATOR)"),
        ("a\xa0b", "column 2 (a\\xa0b) has a character that is not printable text "
         "(U+00A0 NO-BREAK SPACE)"),
        ("a\tb", "column 2 (a\\tb) has a tab: columns are separated by commas"),
        ("n" * 257, f"column 2 ({'n' * 80}... (257 characters)) has a name longer than 256 "
         "characters"),
    ],
)  # fmt: skip
def test_check_header_refuses_names_that_are_not_one_line_of_text(name, says):
    data = DataParams(**{**DECLARED, "features": "infer"})
    with pytest.raises(ChurnError) as err:
        check_header(data, ["cid", name, "churn"], "f.csv")
    assert str(err.value) == f"f.csv: header: {says}"
    assert check_header(data, ["cid", "n" * 256, "café plan", "churn"], "f.csv") == [
        "n" * 256,
        "café plan",
    ]
    many = DataParams(**{**DECLARED, "features": {f"f{i}": {"type": "numeric"} for i in range(99)}})
    with pytest.raises(ChurnError) as err:
        check_header(many, ["cid", "churn"], "f.csv")
    wanted = ", ".join(repr(f"f{i}") for i in range(99))
    assert str(err.value) == (
        f"f.csv: missing column(s) {wanted[:200]}... ({len(wanted)} characters) (found: cid, churn)"
    )


def test_check_header_inferred_without_id_keeps_every_other_column():
    data = DataParams(**{**DECLARED, "id": None, "features": "infer"})
    assert check_header(data, ["cid", "churn", "a"], "f.csv") == ["cid", "a"]


@pytest.mark.parametrize(
    ("header", "features", "message"),
    [
        (
            ["cid", "plan", "churn"],
            None,
            "f.csv: missing column(s) 'minutes' (found: cid, plan, churn)",
        ),
        (
            ["plan", "minutes", "churn"],
            None,
            "f.csv: missing column(s) 'cid' (found: plan, minutes, churn)",
        ),
        (
            ["cid", "plan", "minutes"],
            None,
            "f.csv: missing column(s) 'churn' (found: cid, plan, minutes)",
        ),
        (
            ["cid", "plan", "minutes", "churn", "extra", "more"],
            None,
            "f.csv: unexpected column(s) 'extra', 'more': add them to data.features in "
            "params.yaml or remove them from the file",
        ),
        (["cid", "churn"], "infer", "f.csv: no feature columns besides the target and id"),
    ],
    ids=["a declared feature", "the id", "the target", "extra columns", "nothing to infer"],
)
def test_check_header_refusals_name_the_file_and_columns(header, features, message):
    data = DataParams(**({**DECLARED, "features": features} if features else DECLARED))
    with pytest.raises(ChurnError) as err:
        check_header(data, header, "f.csv")
    assert str(err.value) == message


def test_check_header_checks_the_names_first_and_names_the_file():
    data = DataParams(**{**DECLARED, "features": "infer"})
    with pytest.raises(ChurnError) as err:
        check_header(data, ["cid", "churn", "x", "x"], "f.csv")
    assert str(err.value) == "f.csv: header: column 'x' appears 2 times"


def test_check_header_inferred_allows_any_extra_column():
    data = DataParams(**{**DECLARED, "features": "infer"})
    assert check_header(data, ["cid", "churn", "x", "y"], "f.csv") == ["x", "y"]


def test_check_slices_passes_features_and_names_the_rest():
    check_slices(["plan"], ["plan", "minutes"], "f.csv")
    check_slices([], ["plan"], "f.csv")
    with pytest.raises(ChurnError) as one:
        check_slices(["plan", "region"], ["plan", "minutes"], "f.csv")
    assert str(one.value) == (
        "params.yaml: evaluate.slices: 'region' is not a feature of f.csv (features: plan, minutes)"
    )
    with pytest.raises(ChurnError) as two:
        check_slices(["a", "b"], ["plan"], "g.csv")
    assert str(two.value) == (
        "params.yaml: evaluate.slices: 'a', 'b' are not features of g.csv (features: plan)"
    )
    # 3,000 unknown names made a 26 KB line.
    names = [f"x{i}" for i in range(3_000)]
    with pytest.raises(ChurnError) as many:
        check_slices(names, ["plan"], "g.csv")
    listed = ", ".join(map(repr, names))
    assert str(many.value) == (
        f"params.yaml: evaluate.slices: {listed[:200]}... ({len(listed)} characters) are not "
        "features of g.csv (features: plan)"
    )


def test_check_slices_clips_a_long_feature_list():
    features = [f"feature_{i:03d}" for i in range(40)]
    with pytest.raises(ChurnError) as err:
        check_slices(["nope"], features, "f.csv")
    listed = str(err.value).split("(features: ", 1)[1]
    assert listed.startswith("feature_000, feature_001")
    assert listed.endswith("(518 characters))")  # clipped: the whole list is 518 characters
    assert "feature_039" not in listed


SCORING = Contract(
    target="churn",
    positive_label="Yes",
    labels=None,
    id="cid",
    id_in_data=True,
    columns={
        "plan": Column("categorical", nullable=False, categories=("basic", "pro")),
        "minutes": Column("numeric", min=0, max=100),
    },
)


def test_score_problems_one_reason_per_bad_row_by_label():
    frame = pd.DataFrame(
        {
            "plan": ["basic", "gold", "pro", None, "gold"],
            "minutes": [5.0, 3.0, -1.0, 7.0, 500.0],
            "churn": ["x"] * 5,  # extra columns are ignored
        },
        index=[10, 11, 12, 13, 14],
    )
    reasons = score_problems(frame, SCORING, "batch.csv")
    assert reasons.index.tolist() == [11, 12, 13, 14]
    assert reasons.to_dict() == {
        11: "plan: one of 'basic', 'pro' ('gold')",
        12: "minutes: >= 0 (-1.0)",
        13: "plan: not null",
        14: "plan: one of 'basic', 'pro' ('gold'); minutes: <= 100 (500.0)",
    }


@pytest.mark.parametrize(
    "dtype", ["str", "object", "string[pyarrow]", "string[python]"], ids=lambda d: d
)
def test_score_problems_judges_every_row_of_a_text_column_whatever_its_string_dtype(dtype):
    """A nullable string column made <NA> of 'x', and pandera then passed the whole range check."""
    frame = pd.DataFrame(
        {"plan": "basic", "minutes": pd.Series(["5", "150", "x", None, "-1"], dtype=dtype)}
    )
    assert score_problems(frame, SCORING, "batch.csv").to_dict() == {
        1: "minutes: <= 100 ('150')",
        2: "minutes: is a number ('x')",
        4: "minutes: >= 0 ('-1')",
    }


def test_score_problems_clips_each_shown_value_at_40_characters():
    """A reason per row goes into the output file: a 10 kB cell must not go in whole."""
    frame = pd.DataFrame({"plan": ["p" * 38, "p" * 39], "minutes": [5.0, 5.0]})
    reasons = score_problems(frame, SCORING, "batch.csv")
    assert reasons[0] == "plan: one of 'basic', 'pro' ('" + "p" * 38 + "')"  # 40 with quotes
    assert reasons[1] == "plan: one of 'basic', 'pro' ('" + "p" * 39 + "... (41 characters))"


def test_numbers_are_plain_numpy_and_left_alone_when_they_already_are():
    """The checks compare these: float64 with NaN, never nullable; no copy of plain numbers."""
    from churn.core.contract import _numbers

    small = pd.Series([1, 2], dtype="int8")
    assert _numbers(small) is small  # ten million rows: no float copy
    for values in (
        pd.Series([1, 2], dtype="Int64"),
        pd.Series([1.5, None], dtype="Float64"),
        pd.Series(["1", "x", None], dtype="string[pyarrow]"),
    ):
        got = _numbers(values)
        assert got.dtype == np.float64
        assert got.index.equals(values.index)
    assert _numbers(pd.Series(["1", "x", None], dtype="string[pyarrow]")).isna().tolist() == [
        False,
        True,
        True,
    ]
    flags = _numbers(pd.Series([True, False], index=[7, 9]))
    assert flags.dtype == np.float64
    assert flags.isna().all()
    assert flags.index.tolist() == [7, 9]


@pytest.mark.parametrize(
    "minutes",
    [
        pd.Series([True, False, None], dtype="boolean"),
        pd.Series([True, False, True]),
        pd.Series([True, False, True], dtype=object),
        pd.Series(pd.to_timedelta([1, 2, 3], unit="s")),
        pd.Series(pd.to_datetime(["2026-01-01"] * 3)),
        # As pyarrow gives a Parquet column with a null: objects, which to_numeric made 1.0/0.0.
        pd.Series([True, None, False], dtype=object),
        pd.Series([pd.Timestamp("2026-01-01"), None, pd.Timestamp(0)], dtype=object),
        pd.Series([pd.Timedelta(seconds=1), None, pd.Timedelta(0)], dtype=object),
    ],
    ids=[
        "nullable bool",
        "bool",
        "object bools",
        "durations",
        "dates",
        "object bools with a null",
        "object timestamps with a null",
        "object durations with a null",
    ],
)
def test_score_problems_refuses_true_false_dates_and_durations_as_numbers(minutes):
    """Not numbers, though pandas would make 1/0 or nanoseconds of them (a CSV's 'True' neither)."""
    frame = pd.DataFrame({"plan": "basic", "minutes": minutes})
    reasons = score_problems(frame, SCORING, "batch.csv")
    present = minutes.notna()
    assert reasons.index.tolist() == minutes.index[present].tolist()
    assert all(r.startswith("minutes: is a number (") for r in reasons)


def test_score_problems_with_ids_refuses_a_row_without_its_id_but_not_a_repeat():
    frame = pd.DataFrame(
        {"cid": ["a", None, "a", np.nan], "plan": ["basic", "basic", "pro", "gold"], "minutes": 1.0}
    )
    assert score_problems(frame, SCORING, "batch.csv").to_dict() == {
        3: "plan: one of 'basic', 'pro' ('gold')"
    }
    assert score_problems(frame, SCORING, "batch.csv", ids=True).to_dict() == {
        1: "cid: not null",
        3: "cid: not null; plan: one of 'basic', 'pro' ('gold')",
    }
    with pytest.raises(ChurnError, match=r"batch.csv: missing column\(s\) 'cid'"):
        score_problems(frame.drop(columns="cid"), SCORING, "batch.csv", ids=True)
    no_id = replace(SCORING, id="row", id_in_data=False)  # ids are row numbers: none missing
    assert score_problems(frame.drop(columns="cid"), no_id, "batch.csv", ids=True).to_dict() == {
        3: "plan: one of 'basic', 'pro' ('gold')"
    }


def test_failure_lines_and_missing_columns_clip_what_they_echo():
    cases = pd.DataFrame(
        {
            "column": ["c" * 500],
            "check": ["one of 'a'"],
            "index": [3],
            "failure_case": ["v" * 10**5],
        }
    )
    (line,) = describe_failures(cases)
    value = "'" + "v" * 39 + "... (100002 characters)"  # repr() adds the quotes: 40 shown
    assert line == f"{'c' * 80}... (500 characters): one of 'a': 1 bad row(s) (row 4: {value})"
    (whole,) = describe_failures(cases.assign(index=[np.nan]))  # a check of the whole column
    assert whole.endswith(f"1 bad row(s) ({value})")
    with pytest.raises(ChurnError) as err:
        require_columns(["i" * 300], ["h" * 10**5, "other"], "f.csv")
    wanted = "'" + "i" * 199 + "... (302 characters)"
    assert str(err.value) == (
        f"f.csv: missing column(s) {wanted} (found: {'h' * 200}... (100007 characters))"
    )


def test_every_header_column_has_a_name_of_its_own():
    check_header_names(["id", "plan", "Plan"], "f.csv")  # names differ by case: fine
    for header, says in [
        (["id", "plan", "plan", "plan"], "f.csv: header: column 'plan' appears 3 times"),
        (["id", " ", "plan"], "f.csv: header: column 2 has no name"),
        (["", "x", "", ""], "f.csv: header: column 1 has no name (and 2 more)"),
        (
            ["a" * 100, "a" * 100],
            f"f.csv: header: column '{'a' * 80}... (100 characters)' appears 2 times",
        ),
    ]:
        with pytest.raises(ChurnError) as err:
            check_header_names(header, "f.csv")
        assert str(err.value) == says


def test_score_problems_empty_when_every_row_passes():
    frame = pd.DataFrame({"plan": ["basic"], "minutes": [1.0]})
    reasons = score_problems(frame, SCORING, "batch.csv")
    assert reasons.empty
    assert reasons.dtype == object or str(reasons.dtype).startswith("str")


def test_score_problems_clips_long_values_and_needs_every_feature():
    frame = pd.DataFrame({"plan": ["x" * 100], "minutes": [1.0]})
    reason = score_problems(frame, SCORING, "b.csv").iloc[0]
    assert reason.startswith("plan: one of 'basic', 'pro' ('xxxx")
    assert len(reason) < 100
    with pytest.raises(ChurnError, match=r"b.csv: missing column\(s\) 'minutes'"):
        score_problems(frame[["plan"]], SCORING, "b.csv")


@pytest.mark.parametrize(
    ("values", "ok"),
    [
        (pd.Series([1, pd.NA, 3], dtype="Int64"), [True, True, True]),
        (pd.Series([1.5, pd.NA, np.inf], dtype="Float64"), [True, True, False]),
        (
            pd.Series(["1", None, "inf", "x", "1e999"], dtype=object),
            [True, True, False, False, False],
        ),
        (pd.Series(["2", pd.NA, "-Infinity"], dtype="string"), [True, True, False]),
        (pd.Series([0.5, np.nan, -np.inf]), [True, True, False]),
    ],
)
def test_finite_or_missing_reads_every_dtype_a_reader_gives(values, ok):
    """Nullable integers and floats, text, pandas strings: a missing value passes here."""
    from churn.core.contract import _finite_or_missing

    result = _finite_or_missing(values)
    assert result.tolist() == ok
    assert result.index.equals(values.index)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["a", "b\nc", None, "d\re"], [True, False, True, False]),
        ([1, 2], [True, True]),
        (pd.array(["q\n", None], dtype="string[pyarrow]"), [False, True]),
        (pd.Series(["x", "y\n"], dtype="str"), [True, False]),
    ],
)
def test_an_id_is_one_line(values, expected):
    from churn.core.contract import single_line

    assert single_line(pd.Series(values)).tolist() == expected


def test_an_id_holding_a_line_break_is_a_bad_row_to_score():
    """A stray quote made rows 5 to 9 one id, scored with row 9's features, and said nothing."""
    frame = pd.DataFrame(
        {"cid": ["a", "5,No,3\n6,Yes,4\n9", "c", 7], "plan": "basic", "minutes": 5.0}
    )
    assert score_problems(frame, SCORING, "batch.csv", ids=True).to_dict() == {
        1: "cid: one line (a line break: a quote left open, holding the rows after it?) "
        "('5,No,3\\n6,Yes,4\\n9')"
    }
    assert score_problems(frame, SCORING, "batch.csv").empty  # the id unread: no rule


def test_a_lone_failing_categorical_column_gives_reasons_not_a_traceback():
    """Pandera kept the category dtype of a lone failing column: "+" of text raised TypeError."""
    frame = pd.DataFrame(
        {
            "plan": pd.Series(["basic", "gold", "pro", "gold"], dtype="category"),
            "minutes": [5.0, 5.0, 5.0, 5.0],
        }
    )
    assert score_problems(frame, SCORING, "batch.parquet").to_dict() == {
        1: "plan: one of 'basic', 'pro' ('gold')",
        3: "plan: one of 'basic', 'pro' ('gold')",
    }


@pytest.mark.parametrize(
    ("header", "name"), [("cid;churn;plan", "semicolons"), ("cid\tchurn", "tabs"), ("a|b", "pipes")]
)
def test_the_header_check_names_another_delimiter(header, name):
    """`churn check` said "missing column(s) ... (found: cid;churn;plan)"; prepare said this."""
    with pytest.raises(ChurnError) as err:
        check_header(DataParams(**DECLARED), [header], "f.csv")
    assert str(err.value) == f"f.csv: columns are separated by {name}; expected commas"


def test_one_column_of_no_other_delimiter_is_left_to_the_column_check():
    with pytest.raises(ChurnError, match=r"^f\.csv: missing column"):
        check_header(DataParams(**DECLARED), ["cid churn"], "f.csv")
    with pytest.raises(ChurnError, match=r"^f\.csv: missing column"):  # two names: no sniffing
        check_header(DataParams(**DECLARED), ["cid;x", "churn"], "f.csv")


def test_a_training_id_with_a_line_break_breaks_the_contract():
    contract = replace(SCORING, labels=("No", "Yes"))
    frame = pd.DataFrame(
        {"cid": ["a", "b\nc"], "churn": ["Yes", "No"], "plan": "basic", "minutes": 5.0}
    )
    with pytest.raises(ChurnError) as err:
        validate(frame, contract, "raw.csv")
    assert str(err.value).splitlines()[1:] == [
        "  cid: one line (a line break: a quote left open, holding the rows after it?): 1 bad "
        "row(s) (row 2: 'b\\nc')"
    ]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("34", True),
        (" \t34\r\n", True),
        ("\v12\f", True),  # ASCII blanks, as pandas' to_numeric skips them
        ("-1.5e-3", True),
        (".5", True),
        ("5.", True),
        ("\u0663\u0664", False),  # Arabic-Indic digits
        ("\u0967\u0968", False),  # Devanagari
        ("\uff11\uff12", False),  # fullwidth
        ("\u00a034", False),  # a no-break space
        ("34\u2003", False),  # an em space
        ("3\u0664", False),  # one foreign digit among ASCII ones
        ("1_0", False),
        ("0x1F", False),
        ("", False),
    ],
)
def test_number_text_reads_alike_in_python_and_pyarrow(text, number):
    """Prepare (Python's re), the service (re.ASCII) and score and monitor (RE2) agree."""
    import pyarrow as pa
    import pyarrow.compute as pc

    assert bool(re.fullmatch(NUMBER_TEXT, text)) is number
    assert bool(re.compile(NUMBER_TEXT, re.ASCII).fullmatch(text)) is number
    matched = pc.match_substring_regex(pa.array([text]), f"^{NUMBER_TEXT}$")
    assert matched.to_pylist() == [number]
    parsed = pd.to_numeric(pd.Series([text], dtype=object), errors="coerce")
    assert bool(parsed.notna().all()) is number  # and as the pipeline reads one
