"""``features: infer``: rules from the file; keys, dates and text numbers refused; the YAML."""

import numpy as np
import pandas as pd
import pytest

from churn.core import contract, io
from churn.core.contract import (
    DATE_MAX_CHARS,
    KEY_MIN_ROWS,
    OUTPUT_NAMES,
    ROW_ID,
    Column,
    Contract,
    check_value_column_named,
    date_like,
    formatted_number_like,
    freeze_yaml,
    key_like,
    observe,
    resolve_contract,
    stray_text_like,
)
from churn.core.errors import ChurnError
from churn.core.params import DataParams


def data(**overrides) -> DataParams:
    return DataParams(
        **{"target": "y", "positive_label": "yes", "id": None, "features": "infer", **overrides}
    )


def frame(n: int = 30, **extra) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    out = pd.DataFrame(
        {
            "plan": rng.choice(["a", "b", "c"], n),
            "usage": rng.normal(10, 2, n).round(2),
            "y": rng.choice(["yes", "no"], n),
        }
    )
    for name, values in extra.items():
        out[name] = values
    return out


@pytest.mark.parametrize(
    ("values", "why"),
    [
        (list(range(1, 31)), "row numbers 1..30"),
        (list(range(30)), "row numbers 0..29"),
        (list(reversed(range(100, 130))), "row numbers 100..129"),  # any order, any start
        ([float(i) for i in range(30)], "row numbers 0..29"),  # read as floats
        ([f"C{i:04d}" for i in range(30)], "30 distinct values in 30 rows"),
        ([f"C{i}" for i in range(29)] + ["C0"], "29 distinct values in 30 rows"),  # near-unique
        # Exact past 2**53: ":.0f" printed 9223372036854775808..9223372036854775808.
        (
            np.arange(2**63, 2**63 + 200, dtype=np.uint64),
            "row numbers 9223372036854775808..9223372036854776007",
        ),
    ],
)
def test_row_numbers_and_keys_are_key_like(values, why):
    assert key_like(pd.Series(values)) == why


@pytest.mark.parametrize(
    "values",
    [
        list(range(0, 60, 2)),  # unique integers with gaps: a count, a price in cents
        [1.5 + i for i in range(30)],  # unique but not whole numbers: a measurement
        [*list(range(29)), 28],  # one repeat: not a row number
        [*range(29), None],  # a missing value: not every row has one
        ["a", "b"] * 15,  # a category
        [f"C{i}" for i in range(27)] + ["C0"] * 3,  # 28 of 30 distinct: below the share
        [True, False] * 15,  # booleans are categories, never row numbers
        [7],  # one row proves nothing
    ],
)
def test_features_are_not_key_like(values):
    assert key_like(pd.Series(values)) is None


def test_a_short_text_column_needs_every_value_distinct():
    short = [f"C{i}" for i in range(KEY_MIN_ROWS - 2)]
    assert key_like(pd.Series([*short, short[0]])) is None  # 18 of 19: too few rows to say
    assert key_like(pd.Series(short)) == f"{len(short)} distinct values in {len(short)} rows"


@pytest.mark.parametrize(
    ("values", "first"),
    [
        (["2024-01-15", None, "2023-12-31"], "2024-01-15"),
        (["01/15/2024", "12/31/2023"], "01/15/2024"),
        (["15.01.2024", "31.12.2023"], "15.01.2024"),  # day first
        (["2024-01", "2023-12"], "2024-01"),  # months of a year
        ([" 2024-01-15T10:00:00Z", "2024-02-01T00:00:00Z"], "2024-01-15T10:00:00Z"),
        (["Jan 15, 2024", "Feb 1, 2024"], "Jan 15, 2024"),
        (["January 15, 2024", "March 1, 2024"], "January 15, 2024"),
        # The longest a date is looked for: ISO with nanoseconds and an offset.
        (["2024-01-15T10:00:00.123456789+01:00"], "2024-01-15T10:00:00.123456789+01:00"),
    ],
)
def test_text_of_dates_is_date_like(values, first):
    assert date_like(pd.Series(values, dtype="string")) == f"dates like {first}"


@pytest.mark.parametrize(
    "values",
    [
        ["Jan", "Feb"],  # months without a year: a category
        ["2024", "2023"],  # a year alone (as text): a code as much as a date
        ["2024-01-15", "unknown"],  # one value is no date
        ["2024-01-15", "15.01.2024"],  # another layout than the first value's
        ["basic", "pro"],
        ["10:30", "11:00"],  # times of day
        ["2024-01-15" + " " * 40 + "x"],  # too long for a date
        ["2024-01-15T10:00:00.1234567891+01:00"],  # a character over DATE_MAX_CHARS
        [None, None],
    ],
)
def test_other_text_is_not_date_like(values):
    assert date_like(pd.Series(values, dtype="string")) is None


def test_the_length_limit_is_the_longest_iso_timestamp():
    assert DATE_MAX_CHARS == len("2024-01-15T10:00:00.123456789+01:00")


def test_numbers_and_booleans_are_never_date_like():
    assert date_like(pd.Series([20240115, 20231231])) is None
    assert date_like(pd.Series([True, False])) is None


def test_a_date_column_stops_inference_naming_it_and_the_fix():
    dates = frame(signup=[f"2024-01-{1 + i % 28:02d}" for i in range(30)])
    with pytest.raises(ChurnError) as err:
        resolve_contract(data(), dates, "data/raw/x.csv")
    assert str(err.value) == (
        "data/raw/x.csv: 'signup' (dates like 2024-01-01) is a date, not a category (the "
        "service would refuse every later date): list data.features in params.yaml without "
        "it, and give the file a number made from it (days since, say)"
    )
    two = frame(a=["2024-01"] * 30, b=["01/02/2024"] * 30)
    with pytest.raises(
        ChurnError,
        match=r"'a' \(dates like 2024-01\), 'b' \(dates like "
        r"01/02/2024\) are dates, .* without them, and give the file a number "
        r"made from them \(days since, say\)$",
    ):
        resolve_contract(data(), two, "x.csv")


def test_past_five_flagged_columns_the_message_says_how_many_more():
    seven = frame(**{f"d{i}": [f"2024-01-{1 + j % 28:02d}" for j in range(30)] for i in range(7)})
    with pytest.raises(ChurnError) as err:
        resolve_contract(data(), seven, "x.csv")
    assert str(err.value).startswith(
        "x.csv: 'd0' (dates like 2024-01-01), 'd1' (dates like 2024-01-01), 'd2' (dates like "
        "2024-01-01), 'd3' (dates like 2024-01-01), 'd4' (dates like 2024-01-01), and 2 more "
        "are dates, not a category"
    )
    six = frame(**{f"d{i}": [f"2024-01-{1 + j % 28:02d}" for j in range(30)] for i in range(6)})
    with pytest.raises(ChurnError, match=r"'d4' \(dates like 2024-01-01\), and 1 more are dates"):
        resolve_contract(data(), six, "x.csv")
    five = frame(**{f"d{i}": [f"2024-01-{1 + j % 28:02d}" for j in range(30)] for i in range(5)})
    with pytest.raises(ChurnError, match=r"'d4' \(dates like 2024-01-01\) are dates"):
        resolve_contract(data(), five, "x.csv")


@pytest.mark.parametrize(
    ("values", "first"),
    [
        (["1,234", "12", None], "1,234"),  # thousands separators; a small one has none
        (["12", "1,234.50", "1,234,567"], "1,234.50"),  # the first value that is written
        (["1.234,5", "12,5", "1.234.567"], "1.234,5"),  # decimal comma, point between groups
        (["1'234", "1\u00a0234", "1\u202f234,5"], "1'234"),  # other group separators
        (["12,34,567", "1,000"], "12,34,567"),  # Indian grouping
        (["$5", "$1,200.50", "€ 12,50", "12 €", "£3", "¥100", "₹1,00,000", "R$ 5", "₩1,000"], "$5"),
        (["12%", "3.5%", " 100 % "], "12%"),
        (["(1,234)", "(5)", "+7", "\u22125%"], "(1,234)"),  # negatives as accountants write
        (["$-5", "-$5", "$ -5"], "$-5"),
        (["(5)", "3", "$2"], "$2"),  # parentheses alone are no sign; a currency is
        (["$1,200", "-", "\u2014", "$5"], "$1,200"),  # dashes for zero
        (["\u22125"], "\u22125"),  # a minus sign the reader does not take
    ],
)
def test_numbers_written_for_people_are_formatted_number_like(values, first):
    for dtype in ("string", "category", "object"):
        assert formatted_number_like(pd.Series(values, dtype=dtype)) == (
            f"numbers written like {first}"
        )


@pytest.mark.parametrize(
    "values",
    [
        ["12", "13.5"],  # plain numbers: the reader's to type
        ["100.200"],  # read as 100.2
        ["1,2", "2,3", "1"],  # options: a decimal comma alone is no sign
        ["12,5", "1,2345"],  # nor are other decimal commas
        ["(212)", "(415)"],  # area codes: parentheses alone are no sign
        ["1.100.2", "2.200.0", "10.100.1"],  # versions: the decimal mark is the separator
        ["1,234.567.890"],  # two separators
        ["612 345 678", "12 345"],  # a plain space: phone numbers, postcodes
        ["1)", "2)"],  # list markers
        ["(5", "$3"],  # an open parenthesis
        ["1,2,3"],  # not groups of three
        ["1,234", "unknown"],  # one value is no number
        ["Yes", "No"],
        ["1-2 years", "3+ years"],
        ["2024-01-15"],
        ["0x1F"],
        ["$", "%"],  # signs without digits
        ["12%%"],
        ["((5))"],
        ["--5", "$5"],
        ["$\n5"],  # no line break inside a number (nor in the message)
        ["\u0661\u0662,\u0663\u0664\u0665"],  # other scripts' digits: text to the reader
        ["USD 5", "CHF 1'234.50"],  # currency codes, not signs
        ["-", "\u2014"],  # dashes alone
        ["$" + "1," * 30 + "000"],  # longer than a number a person writes
        [None, None],
    ],
)
def test_other_text_is_not_formatted_number_like(values):
    assert formatted_number_like(pd.Series(values, dtype="string")) is None


def test_a_long_run_of_blanks_cannot_make_the_check_slow():
    """Leading blanks are stripped and long values skipped: no backtracking over them."""
    for value in (" " * 100_000 + "x", "1" + " " * 100_000 + "x", "$" + " " * 100_000 + "5"):
        assert formatted_number_like(pd.Series([value], dtype="string")) is None
    padded = pd.Series([" " * 30 + "$1,234", " " * 30 + "$5"], dtype="string")  # aligned
    assert formatted_number_like(padded) == "numbers written like $1,234"


def test_only_the_first_rows_are_tried_when_they_are_no_numbers(monkeypatch):
    """A column of ids stops after FORMATTED_FIRST rows: the rest is never hashed."""
    seen = []
    real = contract._stripped
    monkeypatch.setattr(contract, "_stripped", lambda v: seen.append(len(v)) or real(v))
    ids = pd.Series([f"C{i}" for i in range(5_000)], dtype="string")
    assert formatted_number_like(ids) is None
    assert seen == [contract.FORMATTED_FIRST]
    seen.clear()  # amounts, then one value that is no number, past the first rows
    amounts = pd.Series([f"${i % 2_000:,}" for i in range(3_000)] + ["n/a?"], dtype="string")
    assert formatted_number_like(amounts) is None
    assert seen == [contract.FORMATTED_FIRST, 2_001]  # the first rows, then every distinct
    assert formatted_number_like(amounts[:-1]) == "numbers written like $0"


def test_the_longest_number_a_person_writes_is_forty_characters():
    longest = "$1" + ",000" * 8 + ".00000"  # 40 characters
    assert len(longest) == contract.FORMATTED_MAX_CHARS
    assert formatted_number_like(pd.Series([longest], dtype="string")) == (
        f"numbers written like {longest}"
    )
    assert formatted_number_like(pd.Series([longest + "0"], dtype="string")) is None


def test_numbers_and_booleans_are_never_formatted_number_like():
    assert formatted_number_like(pd.Series([1234, 12])) is None
    assert formatted_number_like(pd.Series([-1.5, np.nan, np.inf, 1e20])) is None
    assert formatted_number_like(pd.Series([True, False])) is None


def test_written_numbers_stop_inference_naming_them_and_the_fix():
    amounts = frame(charges=[f"${1000 + 7 * i:,}.50" for i in range(30)])  # a value a row
    with pytest.raises(ChurnError) as err:
        resolve_contract(data(), amounts, "data/raw/x.csv")
    assert str(err.value) == (  # a number, not "a row id or key" for its 30 distinct values
        "data/raw/x.csv: 'charges' (numbers written like $1,000.50) is a number, not a "
        "category (each value would be a column of its own): write it as plain numbers "
        "(1234.5) in the file, or list data.features in params.yaml with it as categorical"
    )
    two = frame(a=["12%"] * 30, b=["1,000"] * 30)
    with pytest.raises(
        ChurnError,
        match=r"'a' \(numbers written like 12%\), 'b' \(numbers written like 1,000\) are "
        r"numbers, not a category .*: write them as plain numbers \(1234.5\) in the file, or "
        r"list data.features in params.yaml with them as categorical$",
    ):
        resolve_contract(data(), two, "x.csv")


def test_declared_features_are_never_number_checked():
    declared = data(features={"band": {"type": "categorical"}})
    bands = pd.DataFrame({"band": ["1,000", "5,000"] * 15, "y": ["yes", "no"] * 15})
    assert list(resolve_contract(declared, bands, "x").columns) == ["band"]  # their call


def test_declared_features_are_never_date_checked():
    declared = data(features={"signup": {"type": "categorical"}})
    dates = pd.DataFrame({"signup": ["2024-01-01", "2024-01-02"] * 15, "y": ["yes", "no"] * 15})
    assert list(resolve_contract(declared, dates, "x").columns) == ["signup"]  # their call


def test_a_row_number_column_stops_inference_naming_it_and_the_fix():
    with pytest.raises(ChurnError) as err:
        resolve_contract(data(), frame(rownames=range(1, 31)), "data/raw/x.csv")
    assert str(err.value) == (
        "data/raw/x.csv: 'rownames' (row numbers 1..30) looks like a row id or key, "
        "not a feature: set data.id: rownames in params.yaml, or list data.features without it"
    )


def test_several_keys_are_named_together():
    keys = frame(rownames=range(30), email=[f"u{i}@x" for i in range(30)])
    with pytest.raises(ChurnError) as err:
        resolve_contract(data(), keys, "x.csv")
    assert str(err.value) == (
        "x.csv: 'rownames' (row numbers 0..29), 'email' (30 distinct values in 30 rows) look "
        "like a row id or key, not a feature: list data.features in params.yaml without them"
    )


def test_a_second_key_next_to_the_declared_id_is_refused_too():
    keys = frame(account=[f"A{i}" for i in range(30)], rownames=range(30))
    with pytest.raises(ChurnError) as err:
        resolve_contract(data(id="account"), keys, "x.csv")
    assert str(err.value).endswith(": list data.features in params.yaml without it")
    assert "'rownames'" in str(err.value)
    assert "'account'" not in str(err.value)


def test_the_declared_id_and_declared_features_are_never_key_checked():
    keys = frame(account=[f"A{i}" for i in range(30)])
    assert "account" not in resolve_contract(data(id="account"), keys, "x.csv").columns
    declared = data(features={"n": {"type": "numeric"}})
    c = resolve_contract(declared, pd.DataFrame({"n": range(30), "y": ["yes", "no"] * 15}), "x")
    assert list(c.columns) == ["n"]  # the user listed it: their call


def test_observe_gives_an_inferred_contract_the_files_rules_and_the_training_range():
    train = pd.DataFrame(
        {
            "plan": pd.array(["b", "a", None, "b"], dtype="string"),
            "region": pd.array(["n", "s", "n", "s"], dtype="string"),
            "usage": [3.5, -1.0, np.nan, 7.0],
            "calls": [0, 2, 1, 5],
            "tier": pd.array(["x", "y", "x", "y"], dtype="string"),
        }
    )
    # The test split alone has a category, a missing value and the widest numbers.
    test = pd.DataFrame(
        {
            "plan": pd.array(["c"], dtype="string"),
            "region": pd.array(["n"], dtype="string"),
            "usage": [99.0],
            "calls": [-4],
            "tier": pd.array([None], dtype="string"),
        }
    )
    whole = pd.concat([train, test], ignore_index=True)
    base = resolve_contract(data(), whole.assign(y=["yes", "no", "no", "yes", "no"]), "x.csv")
    assert all(col.nullable and col.categories is None for col in base.columns.values())
    c = observe(base, whole, train)
    assert c.inferred is True
    assert c.columns == {
        "plan": Column("categorical", nullable=True, categories=("a", "b", "c")),
        "region": Column("categorical", nullable=False, categories=("n", "s")),
        "usage": Column("numeric", nullable=True, observed_min=-1.0, observed_max=7.0),
        "calls": Column("numeric", nullable=False, observed_min=0.0, observed_max=5.0),
        "tier": Column("categorical", nullable=True, categories=("x", "y")),
    }


def test_observe_keeps_a_declared_contracts_rules_and_adds_the_range():
    declared = Contract(
        "y",
        "yes",
        None,
        "row_id",
        False,
        {
            "n": Column("numeric", nullable=False, min=0.0),
            "c": Column("categorical", nullable=True, categories=("p", "q", "r")),
        },
    )
    train = pd.DataFrame({"n": [4.0, 2.0], "c": ["p", "p"]})
    c = observe(declared, pd.concat([train, train.assign(c="q", n=99.0)]), train)
    assert c.columns["n"] == Column(
        "numeric", nullable=False, min=0.0, observed_min=2.0, observed_max=4.0
    )
    assert c.columns["c"] == declared.columns["c"]  # declared categories, not the seen ones
    assert c.inferred is False


def test_an_all_missing_numeric_column_has_no_observed_range():
    gaps = frame(gap=np.nan)
    c = observe(resolve_contract(data(), gaps, "x"), gaps, gaps)
    assert (c.columns["gap"].observed_min, c.columns["gap"].observed_max) == (None, None)
    assert c.columns["gap"].nullable is True


def test_freeze_is_yaml_that_declares_the_same_contract():
    c = Contract(
        "churned",
        "Yes",
        ("No", "Yes"),
        "row_id",
        False,
        {
            "tenure months": Column("numeric", nullable=False, observed_min=0.0, observed_max=72.0),
            "charges": Column(
                "numeric", nullable=True, min=0.0, observed_min=1.5, observed_max=9.0
            ),
            "plan": Column("categorical", nullable=False, categories=("No", "on", "null", "1")),
        },
        inferred=True,
    )
    text = freeze_yaml(c, "data/raw/x.csv")
    assert text.splitlines() == [
        "# The data contract prepare resolved from data/raw/x.csv (inferred).",
        "# Paste it over the data: section of params.yaml to declare it.",
        "data:",
        "  target: churned",
        "  positive_label: 'Yes'",
        "  labels: ['No', 'Yes']",
        "  id: null",
        "  features:",
        "    tenure months: {type: numeric}  # seen in training: 0 … 72",
        "    charges: {type: numeric, nullable: true, min: 0.0}  # seen in training: 1.5 … 9",
        "    plan: {type: categorical, categories: ['No', 'on', 'null', '1']}",
    ]
    # YAML 1.1 words (No, on, null) and digits stay strings; the result is valid params,
    # read as params.yaml is.
    parsed = DataParams(**io.parse_yaml(text)["data"])
    assert parsed.positive_label == "Yes"
    assert parsed.labels == ["No", "Yes"]
    assert parsed.features["plan"].categories == ["No", "on", "null", "1"]
    assert parsed.features["tenure months"].nullable is False
    assert parsed.features["charges"].min == 0.0


def test_freeze_writes_text_yaml_1_2_would_read_as_a_number_as_json():
    """PyYAML left 1E1 and 0o17 bare (text in YAML 1.1): pasted back, they were numbers."""
    odd = ("1E1", "2e-3", "-.5", "0o17", "0x1F", ".inf", "B7", "café")
    c = Contract(
        "y",
        "0o17",
        None,
        "row_id",
        False,
        {
            "1e3": Column("numeric", nullable=False),
            "code": Column("categorical", nullable=False, categories=odd),
        },
    )
    text = freeze_yaml(c, "x.csv")
    assert '  positive_label: "0o17"\n' in text
    assert '    "1e3": {type: numeric}\n' in text
    assert '    code: {"type": "categorical", "categories": ["1E1", "2e-3", "-.5", "0o17", ' in text
    assert '".inf", "B7", "café"]}' in text  # JSON, but the text as written
    parsed = DataParams(**io.parse_yaml(text)["data"])
    assert parsed.positive_label == "0o17"
    assert list(parsed.features) == ["1e3", "code"]
    assert parsed.features["code"].categories == list(odd)


def test_freeze_names_the_declared_id():
    c = Contract("y", 1, None, "account", True, {"n": Column("numeric", nullable=False)})
    text = freeze_yaml(c, "x.csv")
    assert "  id: account" in text.splitlines()
    assert "  positive_label: 1" in text.splitlines()
    assert "(declared)" in text.splitlines()[0]


def test_two_rows_can_be_row_numbers_and_one_cannot():
    assert key_like(pd.Series([2, 1])) == "row numbers 1..2"
    assert key_like(pd.Series([1])) is None


def test_the_near_unique_share_is_inclusive_at_exactly_key_min_rows():
    n = KEY_MIN_ROWS  # 20 rows, 19 distinct: 19 >= 0.95 * 20, the boundary itself
    values = [f"C{i}" for i in range(n - 1)] + ["C0"]
    assert key_like(pd.Series(values)) == f"{n - 1} distinct values in {n} rows"


def test_a_contract_file_from_before_inference_rules_reads_as_declared():
    declared = Contract("y", 1, None, "row_id", False, {"n": Column("numeric")})
    raw = declared.to_dict()
    del raw["inferred"]
    for column in raw["columns"]:
        del column["observed_min"], column["observed_max"]
    assert Contract.from_dict(raw) == declared
    assert Contract.from_dict({**raw, "inferred": True}).inferred is True


def test_freeze_keeps_a_long_category_list_on_one_line():
    many = tuple(f"category number {i}" for i in range(12))
    c = Contract(
        "y", 1, None, "row_id", False, {"k": Column("categorical", False, categories=many)}
    )
    line = freeze_yaml(c, "x.csv").splitlines()[-1]
    assert line == "    k: {type: categorical, categories: [" + ", ".join(many) + "]}"


def test_a_contract_too_large_for_params_yaml_is_refused_naming_its_source():
    """Its YAML would be over the limit params.yaml is read with; the message said "YAML"."""
    many = tuple(f"category {i:012d}" for i in range(60_000))  # ~1.4 MB as one flow list
    c = Contract("y", 1, None, "row_id", False, {"k": Column("categorical", categories=many)})
    with pytest.raises(ChurnError) as err:
        freeze_yaml(c, "data/raw/x.csv")
    assert str(err.value) == (
        "data/raw/x.csv: the frozen contract: over the 1048576-byte limit for YAML"
    )


def test_a_half_recorded_observed_range_is_not_shown():
    half = Contract("y", 1, None, "row_id", False, {"n": Column("numeric", observed_min=1.0)})
    assert freeze_yaml(half, "x.csv").splitlines()[-1] == "    n: {type: numeric, nullable: true}"


@pytest.mark.parametrize("name", ["churn_probability", "churn", "row", "reason"])
def test_an_id_or_feature_named_like_an_output_column_is_refused(name):
    """An id 'reason' came out empty: churn score wrote it beside columns of these names."""
    as_id = frame(**{name: [f"C{i}" for i in range(30)]})
    with pytest.raises(ChurnError) as err:
        resolve_contract(data(id=name), as_id, "x.csv")
    assert str(err.value) == (
        f"x.csv: {name!r}: a name churn's outputs give their own columns (churn_probability, "
        "churn, row, reason) beside the id and the features; rename it"
    )
    with pytest.raises(ChurnError, match=rf"^x.csv: {name!r}: a name churn's outputs"):
        resolve_contract(data(), frame(**{name: [0.5, 1.5] * 15}), "x.csv")  # a feature
    two = frame(row=[1.0, 2.0] * 15, reason=["a", "b"] * 15)
    with pytest.raises(ChurnError, match=r"^x.csv: 'row', 'reason': a name .*; rename them$"):
        resolve_contract(data(), two, "x.csv")


def test_the_stand_in_id_is_no_output_name():
    """A file without an id is indexed by ROW_ID, which sits beside the outputs too."""
    assert ROW_ID not in OUTPUT_NAMES


def test_a_target_named_like_an_output_column_is_fine():
    """Telco's target is 'churn': the target is never in an output beside the decision."""
    telco = pd.DataFrame({"n": [1.5, 2.5] * 15, "churn": ["yes", "no"] * 15})
    contract = resolve_contract(data(target="churn"), telco, "x.csv")
    assert (contract.target, list(contract.columns)) == ("churn", ["n"])


def test_a_long_list_of_features_is_clipped_at_200_characters():
    features = [f"feature_{i:03d}" for i in range(20)]  # 20 x 11 + 19 x 2 = 258 characters
    with pytest.raises(ChurnError) as err:
        check_value_column_named("spend", features, "x.csv")
    listed = ", ".join(features)
    assert str(err.value).endswith(f"(features: {listed[:200]}... (258 characters))")
    for length, shown in ((200, "x" * 200), (201, "x" * 200 + "... (201 characters)")):
        with pytest.raises(ChurnError) as err:
            check_value_column_named("spend", ["x" * length], "x.csv")
        assert str(err.value).endswith(f"(features: {shown})")


def test_the_value_column_must_be_among_the_files_features():
    check_value_column_named(None, ["plan"], "x.csv")
    check_value_column_named("usage", ["plan", "usage"], "x.csv")
    with pytest.raises(ChurnError) as err:
        check_value_column_named("monthly_charges", ["plan", "usage"], "x.csv")
    assert str(err.value) == (
        "params.yaml: decision.value_column: 'monthly_charges' is not a feature of x.csv "
        "(features: plan, usage)"
    )


def numbers_with(n: int, strays: dict[int, str]) -> list[str]:
    """``n`` distinct numbers as text, with ``strays`` put in at their positions."""
    values = [str(10 * i) for i in range(n)]
    for at, text in sorted(strays.items()):
        values.insert(at, text)
    return values


@pytest.mark.parametrize("dtype", ["string", "category", object])
@pytest.mark.parametrize(
    "stray",
    # Other scripts' spaces and digits: no plain number to a reader, as NUMBER_TEXT says.
    ["abc", "0x10", "1_000", "1,5", "12 kg", "\u00a034", "34\u2003", "\u0663\u0664"],
)
def test_numbers_with_a_stray_text_are_stray_text_like(dtype, stray):
    values = pd.Series(numbers_with(40, {5: stray}), dtype=dtype)
    assert stray_text_like(values) == f"numbers but {stray!r} in row 6, 1 of 41 distinct values"


def test_the_first_stray_in_the_file_is_named_and_the_rows_counted_from_one():
    values = [*numbers_with(100, {0: "n/a", 30: "x", 31: "n/a"}), " 12 ", None, "x"]
    assert stray_text_like(pd.Series(values, dtype="string")) == (
        "numbers but 'n/a' in row 1, 2 of 103 distinct values"  # ' 12 ' is a number
    )


def test_at_least_twenty_distinct_numbers_and_at_most_five_percent_text():
    def why(n: int, strays: int) -> str | None:
        texts = {1 + i: f"t{i}" for i in range(strays)}
        return stray_text_like(pd.Series(numbers_with(n, texts), dtype="string"))

    assert why(20, 1) == "numbers but 't0' in row 2, 1 of 21 distinct values"
    assert why(19, 1) is None  # 1, 2, 3, X: codes, a category
    assert why(57, 3) == "numbers but 't0' in row 2, 3 of 60 distinct values"  # 5 % exactly
    assert why(56, 3) is None  # over 5 %: text with numbers in it, a category
    assert why(40, 0) is None  # every value a number: nothing stray (the reader's to type)


def test_a_column_that_starts_with_text_is_not_hashed_whole(monkeypatch):
    names = pd.Series([f"name {i}" for i in range(2_000)] + numbers_with(40, {}))
    monkeypatch.setattr(pd.Series, "unique", lambda self: pytest.fail("hashed whole"))
    assert stray_text_like(names) is None
    head = numbers_with(949, {}) + [f"t{i}" for i in range(51)]  # 5.1 % of the first 1,000
    assert stray_text_like(pd.Series(head)) is None


def test_the_first_thousand_rows_may_hold_five_percent_text():
    head = numbers_with(950, {}) + ["t"] * 50 + numbers_with(1_000, {})
    assert stray_text_like(pd.Series(head, dtype="string")) == (
        "numbers but 't' in row 951, 1 of 1,001 distinct values"
    )


def test_numbers_booleans_and_empty_columns_are_never_stray_text_like():
    assert stray_text_like(pd.Series([1.5, np.nan, 3.0] * 10)) is None
    assert stray_text_like(pd.Series([True, False] * 20)) is None
    assert stray_text_like(pd.Series([None] * 30, dtype="string")) is None


def test_stray_text_stops_inference_naming_the_cell_and_the_fix():
    usage = numbers_with(29, {4: "abc"})  # 30 rows: 29 numbers and one stray, no key
    with pytest.raises(ChurnError) as err:
        resolve_contract(data(), frame(usage=usage), "data/raw/x.csv")
    assert str(err.value) == (  # a number column, not "a row id or key" for its 30 values
        "data/raw/x.csv: 'usage' (numbers but 'abc' in row 5, 1 of 30 distinct values) is a "
        "number with stray text, not a category (each number would be a column of its own): "
        "correct those cells or leave them empty (missing), or list data.features in "
        "params.yaml with it as categorical"
    )
    declared = data(features={"usage": {"type": "categorical"}, "plan": {"type": "categorical"}})
    assert list(resolve_contract(declared, frame(usage=usage), "x").columns) == ["usage", "plan"]


def test_a_missing_cell_before_the_stray_is_not_it_and_a_long_stray_is_clipped():
    values = numbers_with(40, {0: None, 3: "x" * 100})
    why = stray_text_like(pd.Series(values, dtype="string"))
    assert why == (
        f"numbers but {repr('x' * 100)[:60]}... (102 characters) in row 4, 1 of 41 distinct values"
    )
