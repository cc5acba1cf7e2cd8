"""The service's two body parsers agree: the fast one never accepts what the schema refuses.

``Service.parse`` tries a msgspec decoder first and falls back to the pydantic
request model, which the OpenAPI document shows and which words every 422. That is
only sound if whatever msgspec accepts, pydantic accepts too, with the same
values. Hypothesis writes raw JSON text, token by token, to reach what
``json.dumps`` never produces: duplicate keys, numbers that overflow a float,
``NaN``, quoted numbers, booleans, missing and unknown fields.
"""

import json
from collections import Counter
from pathlib import Path

import msgspec
import pandas as pd
import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from churn.core import io
from churn.core.contract import Column, Contract, read_contract
from churn.serving.app import VALIDATE_SLICE, Service, with_rest
from churn.serving.parsing import (
    each_name_once,
    example_customer,
    fast_decoder,
    read_loosely,
    to_frame,
)
from churn.serving.settings import Settings

ODD_TOKENS = ["true", "false", "null", '"1.5"', '"x"', "1e400", "-1e400", "NaN", "Infinity"]
ODD_TOKENS += ["[]", "{}", "0.5e1", "1E-400", "-0", "12345678901234567890123"]
# Bytes that are not UTF-8, written as surrogate escapes and encoded back to raw bytes.
ODD_TOKENS += ['"N\udcffo"', '"\udcc0\udcaf"', '"\udced\udca0\udc80"']


@pytest.fixture(scope="module")
def service(trained: Path) -> Service:
    """A service on the trained work dir's contract (no model needed to parse)."""
    contract = read_contract(trained / "data/prepared/contract.json")
    return Service(Settings(), contract, loaded=None)


def valid_tokens(column: Column) -> st.SearchStrategy[str]:
    """What the contract allows for this column, as JSON text."""
    if column.type == "categorical":
        tokens = st.sampled_from(column.categories or ("x",)).map(json.dumps)
    else:
        low = column.min if column.min is not None else -1e6
        high = column.max if column.max is not None else 1e6
        tokens = st.floats(low, high).map(repr) | st.integers(int(low), int(high)).map(str)
    return tokens | st.just("null") if column.nullable else tokens


def odd_tokens(column: Column) -> st.SearchStrategy[str]:
    """Out of range, of another type, lax ("12", true), overflowing, or not JSON at all."""
    anything = st.floats(allow_nan=False, allow_infinity=False).map(repr)
    text = st.text(max_size=5).map(json.dumps)
    lax = st.integers(0, 1).map(lambda n: json.dumps(str(n))) | st.sampled_from(["true", "false"])
    if column.type == "categorical":
        lax = st.sampled_from(column.categories or ("x",)).map(lambda c: json.dumps(c.lower()))
    return st.one_of(st.sampled_from(ODD_TOKENS), anything, text, lax)


@st.composite
def customer_text(draw, columns: dict[str, Column]) -> str:
    """One customer object as JSON text: valid, or with a field or two made odd."""
    pairs = [(name, draw(valid_tokens(column))) for name, column in columns.items()]
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        at = draw(st.integers(0, len(pairs) - 1))
        name = pairs[at][0]
        change = draw(st.sampled_from(["odd", "odd", "drop", "twice", "unknown"]))
        if name not in columns and change != "drop":  # an unknown field added before
            pairs.append((name, "1"))
        elif change == "odd":
            pairs[at] = (name, draw(odd_tokens(columns[name])))
        elif change == "drop":
            pairs.pop(at)
        elif change == "twice":  # a repeated name: the fast path leaves it to pydantic
            pairs.append((name, draw(valid_tokens(columns[name]) | odd_tokens(columns[name]))))
        else:
            pairs.append((draw(st.sampled_from(["promo", "Tenure", "id"])), "1"))
    order = draw(st.permutations(range(len(pairs))))
    return "{" + ",".join(f'"{pairs[i][0]}":{pairs[i][1]}' for i in order) + "}"


@st.composite
def body_text(draw, columns: dict[str, Column]) -> bytes:
    customers = draw(st.lists(customer_text(columns), min_size=1, max_size=2))
    if draw(st.integers(0, 19)) == 0:
        customers = []  # at least one customer is required
    extra = ',"x":1' if draw(st.integers(0, 19)) == 0 else ""
    text = '{"customers":[' + ",".join(customers) + "]" + extra + "}"
    return text.encode("utf-8", errors="surrogateescape")


def outcome(service: Service, body: bytes) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(frame from the fast parser, frame from the pydantic model); None where refused."""
    fast = service.parse_fast(body)
    try:
        slow = service.parse_checked(body)
    except RequestValidationError:
        slow = None
    return (
        None if fast is None else to_frame(fast, service.contract),
        None if slow is None else to_frame(slow, service.contract),
    )


def test_fast_parser_never_accepts_more_than_the_schema(service: Service) -> None:
    seen: Counter[str] = Counter()

    @settings(
        max_examples=800,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=body_text(service.contract.columns))
    def check(body: bytes) -> None:
        fast, slow = outcome(service, body)
        seen["fast" if fast is not None else "slow" if slow is not None else "refused"] += 1
        if fast is not None:
            assert slow is not None, body
            pd.testing.assert_frame_equal(fast, slow, check_exact=True)
            # ...nor what the full path's own checks refuse: a repeated name is a 422.
            service.check_fields(read_loosely(body).customers)

    check()
    # Not vacuous: valid bodies take the fast path, lax ones the slow one, bad ones a 422.
    # (The split moved between runs of the full suite despite derandomize: 21 to 30+ slow.)
    assert seen["fast"] >= 150, seen
    assert seen["slow"] >= 15, seen
    assert seen["refused"] >= 150, seen


def test_the_test_split_takes_the_fast_path_with_the_schemas_values(service, trained) -> None:
    test = io.read_parquet(trained / "data/prepared/test.parquet")[service.contract.features]
    test = test.reset_index(drop=True)
    body = json.dumps({"customers": json.loads(test.to_json(orient="records"))}).encode()
    # The whole split in one body: more rows than the default MAX_BATCH.
    service = Service(Settings(max_batch=len(test)), service.contract, loaded=None)
    fast, slow = outcome(service, body)
    assert fast is not None
    assert slow is not None
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    expected = test.astype(dict.fromkeys(service.contract.numeric, float))
    expected = expected.astype(dict.fromkeys(service.contract.categorical, object))
    pd.testing.assert_frame_equal(fast, expected, check_exact=True)


@pytest.mark.parametrize(
    "repeat",
    [
        '"tenure": 2',  # a valid value: msgspec kept the last one, a 200
        '"tenure": "2"',  # a lax value: pydantic's path, a 422
        '"ten\\u0075re": 2',  # the same name spelled with an escape
    ],
)
@pytest.mark.parametrize("without", [None, "total_charges"])
def test_a_repeated_name_is_a_422_whatever_its_values(service, trained, repeat, without) -> None:
    """Also in a customer that leaves out a nullable field: as many members as the contract."""
    test = io.read_parquet(trained / "data/prepared/test.parquet")[service.contract.features]
    row = json.loads(test.head(1).to_json(orient="records"))[0]
    row.pop(without, None)
    text = json.dumps({"customers": [row]})
    assert service.parse_fast(text.encode()) is not None  # the fast path, as written
    body = text.replace('"tenure": ', repeat + ', "tenure": ', 1).encode()
    assert service.parse_fast(body) is None
    with pytest.raises(RequestValidationError) as caught:
        service.parse(body)
    assert caught.value.errors()[0]["type"] == "extra_forbidden"
    twice = text.replace('{"customers"', '{"customers": [], "customers"', 1).encode()
    assert service.parse_fast(twice) is None  # the last list won in msgspec
    with pytest.raises(RequestValidationError) as caught:
        service.parse(twice)
    assert caught.value.errors() == [
        {
            "loc": ("body",),
            "msg": "Extra inputs are not permitted (1 repeated names)",
            "type": "extra_forbidden",
        }
    ]


def test_each_name_once_counts_the_members() -> None:
    assert each_name_once(b'{"customers":[{"a":1,"b":"x"},{"b":"y","a":2}]}', [2, 2])
    assert each_name_once(b'{"customers" : [{"b":"x"},{"b":"y","a":2}]}', [1, 2])
    assert not each_name_once(b'{"customers":[{"b":"x"},{"a":1,"a":2,"b":"y"}]}', [1, 2])
    assert not each_name_once(b'{"customers":[{"a":1,"b":"x"}],"customers":[]}', [1, 1])
    assert not each_name_once(b'{"customers":[{"a":1,"b":"x:y"}]}', [1, 1])  # a false alarm


def test_parse_answers_422_with_pydantic_paths(service: Service) -> None:
    with pytest.raises(RequestValidationError) as caught:
        service.parse(b'{"customers":[{"tenure":-1}]}')
    locs = {tuple(e["loc"]) for e in caught.value.errors()}
    assert ("body", "customers", 0, "tenure") in locs
    assert ("body", "customers", 0, "contract") in locs  # every error, not just the first


def test_fast_decoder_mirrors_the_contract(service: Service) -> None:
    decoder = fast_decoder(service.contract)
    schema = msgspec.json.schema(decoder.type)
    customer = schema["$defs"]["Customer"]
    assert list(customer["properties"]) == list(service.contract.columns)
    nullable = [name for name, col in service.contract.columns.items() if col.nullable]
    assert sorted(customer["required"]) == sorted(set(service.contract.columns) - set(nullable))


def test_fast_decoder_refuses_a_batch_over_max_batch() -> None:
    # Every field optional (as with an inferred contract): ``{}`` is a valid customer,
    # so only the length bound keeps 200,000 of them from becoming rows.
    contract = Contract("y", "Yes", None, "id", False, {"x": Column("numeric", nullable=True)})
    decoder = fast_decoder(contract, max_batch=3)
    assert len(decoder.decode(b'{"customers":[{},{},{}]}').customers) == 3
    with pytest.raises(msgspec.ValidationError, match="length <= 3"):
        decoder.decode(b'{"customers":[{},{},{},{}]}')


@pytest.mark.parametrize("raw", [b"DS\xff", b"\xc0\xaf", b"\xed\xa0\x80"])
def test_bytes_that_are_not_utf8_are_a_422_not_a_crash(service: Service, raw: bytes) -> None:
    body = b'{"customers":[{"internet_service":"' + raw + b'"}]}'
    assert service.parse_fast(body) is None
    with pytest.raises(RequestValidationError) as caught:
        service.parse(body)
    assert caught.value.errors()[0]["type"] == "json_invalid"


def test_column_names_need_not_be_identifiers() -> None:
    columns = {
        "total charges": Column("numeric", nullable=True, min=0.0),
        "1st": Column("categorical", nullable=False, categories=("a", "b")),
        "class": Column("numeric", nullable=False, min=0.0, max=1.0),
    }
    contract = Contract("y", "Yes", None, "id", False, columns)
    service = Service(Settings(), contract, loaded=None)
    body = b'{"customers":[{"1st":"b","class":1},{"total charges":2.5,"1st":"a","class":0}]}'
    assert service.parse_fast(body) == [(None, "b", 1.0), (2.5, "a", 0.0)]
    assert service.parse_checked(body) == service.parse_fast(body)
    frame = to_frame(service.parse(body), contract)
    assert list(frame.columns) == ["total charges", "class", "1st"]
    assert service.parse_fast(b'{"customers":[{"1st":"b","class":1,"f0":1}]}') is None


def test_column_names_msgspec_cannot_rename_are_read_by_pydantic_alone() -> None:
    """A quote or backslash in a CSV header took the service down at start-up."""
    columns = {
        'say "hi"': Column("categorical", nullable=False, categories=("a", "b")),
        "a\\b": Column("numeric", nullable=True, min=0.0),
        "tab\there": Column("numeric", nullable=False),
    }
    contract = Contract("y", "Yes", None, "id", False, columns)
    assert fast_decoder(contract) is None
    service = Service(Settings(), contract, loaded=None)
    body = json.dumps({"customers": [{'say "hi"': "b", "tab\there": 2}]}).encode()
    assert service.parse_fast(body) is None
    assert service.parse(body) == [("b", None, 2.0)]
    frame = to_frame(service.parse(body), contract)
    assert list(frame.columns) == ["a\\b", "tab\there", 'say "hi"']
    with pytest.raises(RequestValidationError):
        service.parse(json.dumps({"customers": [{'say "hi"': "c", "tab\there": 2}]}).encode())


@pytest.mark.parametrize("value", ["true", "false"])
def test_a_boolean_where_a_number_goes_is_a_422_as_everywhere_else(service, trained, value):
    """The lax float of pydantic read true as 1.0; churn score and prepare refuse it."""
    test = io.read_parquet(trained / "data/prepared/test.parquet").drop(columns="churn")
    row = json.loads(test.head(1).to_json(orient="records"))[0]
    body = json.dumps({"customers": [row]}).replace(
        f'"tenure": {row["tenure"]}', f'"tenure": {value}'
    )
    assert f'"tenure": {value}' in body
    assert service.parse_fast(body.encode()) is None
    with pytest.raises(RequestValidationError) as caught:
        service.parse(body.encode())
    errors = caught.value.errors()
    assert [(e["loc"], e["msg"]) for e in errors] == [
        (("body", "customers", 0, "tenure"), "Input should be a valid number, not a boolean")
    ]


@pytest.mark.parametrize("digits", [310, 400, 4_300])
def test_an_integer_past_a_double_is_not_finite_as_1e400_is(service, trained, digits):
    """1 and 309 zeros was "a valid number" (float_type); 1e400 was "a finite number"."""
    test = io.read_parquet(trained / "data/prepared/test.parquet").drop(columns="churn")
    row = json.loads(test.head(1).to_json(orient="records"))[0]
    big = "1" + "0" * (digits - 1)
    body = json.dumps({"customers": [row]}).replace(
        f'"monthly_charges": {row["monthly_charges"]}', f'"monthly_charges": -{big}'
    )
    assert f'"monthly_charges": -{big}' in body
    with pytest.raises(RequestValidationError) as caught:
        service.parse(body.encode())
    assert [(e["loc"], e["type"], e["msg"]) for e in caught.value.errors()] == [
        (
            ("body", "customers", 0, "monthly_charges"),
            "finite_number",
            "Input should be a finite number",
        )
    ]
    # Just inside a double's range, a number like any other.
    within = json.dumps({"customers": [{**row, "monthly_charges": 10**308}]}).encode()
    assert len(service.parse(within)) == 1


def test_the_shape_beside_a_nan_literal_names_members_as_written():
    """NaN and Infinity were replaced inside names too: "BaNaNa" came back as "Ba0.0a"."""
    from churn.serving.parsing import read_shape

    body = b'{"customers":[{"x":NaN,"BaNaNa":[1],"Infinityplan":-Infinity,"s":"NaN\\""}],"NaN":1}'
    shape = read_shape(body)
    assert shape is not None
    assert shape.names == ["customers", "NaN"]
    assert shape.nested == [
        ((0, "BaNaNa"), "Input should be a single value, not an array or object")
    ]


@pytest.mark.parametrize("tail", [b"", b"\\"])
def test_the_shape_read_of_a_string_left_open_is_linear(tail):
    """Each quote in an open string restarted the scan: 80 KB of escaped quotes took a minute."""
    import time

    from churn.serving.parsing import read_shape

    body = b'{"customers":[{"x":NaN}],"b":"' + b'\\"' * 400_000 + tail
    started = time.monotonic()
    assert read_shape(body) is None  # unreadable even so: pydantic words why
    assert time.monotonic() - started < 10  # was hours (quadratic in the body's 800 KB)


def test_the_literal_scan_keeps_no_state_per_character():
    """A 4 MB string in any refused body cost 450 MB of the regex engine's backtracking state.

    The same answers as the plain pattern on strings, escapes and open strings alike.
    """
    import random
    import re
    import tracemalloc

    from churn.serving.parsing import NON_FINITE, _as_number, read_shape

    plain = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|NaN|Infinity', re.DOTALL)
    pieces = [b'"', b"\\", b"\\\\", b'\\"', b"NaN", b"Infinity", b"a", b" ", b"N"]
    draw = random.Random(5)  # noqa: S311 - a fixed draw of test strings
    for _ in range(2_000):
        text = b"".join(draw.choice(pieces) for _ in range(draw.randrange(12)))
        assert NON_FINITE.sub(_as_number, text) == plain.sub(_as_number, text), text
    body = b'{"customers":[{"contract":"' + b"a" * 1_000_000 + b'", "x": NaN}], "y": [}'
    tracemalloc.start()
    try:
        assert read_shape(body) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * len(body)  # the body's copies; the plain pattern: ~115 bytes a character


def whole_body_errors(service: Service, body: bytes) -> list[dict] | None:
    """The 422's errors from one pydantic call on the whole body (None: it is valid)."""
    try:
        service.request_model.model_validate_json(body)
    except ValidationError as err:
        limit = service.settings.max_errors
        errors = [
            {"loc": ("body", *e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in err.errors(include_url=False)[:limit]
        ]
        return with_rest(errors, err.error_count(), limit)
    return None


class RawCustomers(msgspec.Struct):
    """A body's customers, each left as its bytes (read past what pydantic refuses)."""

    customers: list[msgspec.Raw]


class CountingModel:
    """The request model, counting the customers pydantic is given per call."""

    def __init__(self, model: type) -> None:
        self.model, self.sizes = model, []

    def model_validate_json(self, body: bytes):
        """Count, then validate as the model does."""
        try:  # past bytes pydantic refuses
            customers = msgspec.json.decode(body, type=RawCustomers).customers
        except msgspec.DecodeError:  # a NaN literal
            customers = json.loads(body)["customers"]
        self.sizes.append(len(customers))
        return self.model.model_validate_json(body)


def sliced_errors(service: Service, body: bytes, monkeypatch) -> tuple[list | None, list[int]]:
    """parse_checked's 422 errors (None: accepted) and the customers per pydantic call."""
    counting = CountingModel(service.request_model)
    monkeypatch.setattr(service, "request_model", counting)
    try:
        service.parse_checked(body)
    except RequestValidationError as err:
        errors = [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in err.errors()]
        return errors, counting.sizes
    finally:
        monkeypatch.undo()
    return None, counting.sizes


def test_the_schema_sees_at_most_a_slice_of_customers_and_words_the_whole_body(
    service: Service, monkeypatch
) -> None:
    """1,000 customers of unknown fields alone (3.8 MB): 221 MB of pydantic errors at once.

    Validated VALIDATE_SLICE customers at a time, the 422 lists the same errors, in the
    same order, with the same count, as one call on the whole body.
    """
    good = example_customer(service.contract)
    customers = [dict(good) for _ in range(120)]
    del customers[7][next(iter(good))]  # a missing field, in the first slice
    customers[55]["unknown"] = 1  # in the second
    numeric = next(n for n, c in service.contract.columns.items() if c.type == "numeric")
    customers[101][numeric] = "many"  # in the third
    body = json.dumps({"customers": customers}).encode()
    errors, sizes = sliced_errors(service, body, monkeypatch)
    assert errors == whole_body_errors(service, body)
    assert [e["loc"][2] for e in errors] == [7, 55, 101]
    assert sizes == [VALIDATE_SLICE, VALIDATE_SLICE, 20]
    # Every customer wrong: the first MAX_ERRORS named, the rest counted, over all slices.
    wide = {f"u{i}": "x" * 190 for i in range(len(service.contract.columns))}
    body = json.dumps({"customers": [wide] * 1000}).encode()
    errors, sizes = sliced_errors(service, body, monkeypatch)
    assert errors == whole_body_errors(service, body)
    assert errors[-1]["msg"].endswith(" in all; MAX_ERRORS=20)")
    assert max(sizes) == VALIDATE_SLICE
    assert sum(sizes) == 1000
    # Valid: the same rows as the fast reader's.
    body = json.dumps({"customers": [good] * 120}).encode()
    assert service.parse_checked(body) == service.parse_fast(body)
    # A NaN literal (msgspec cannot slice it): pydantic reads the whole body, as before.
    body = (
        json.dumps({"customers": [good] * 60})
        .replace(f'"{numeric}": {json.dumps(good[numeric])}', f'"{numeric}": NaN', 1)
        .encode()
    )
    errors, sizes = sliced_errors(service, body, monkeypatch)
    assert errors == whole_body_errors(service, body)
    assert sizes == [60]


@pytest.mark.parametrize("odd", [b'"\xff"', b"1" * 5000], ids=["not-utf8", "5000-digits"])
def test_a_slice_pydantic_cannot_read_makes_the_whole_body_one_error(
    service: Service, monkeypatch, odd: bytes
) -> None:
    """Bytes msgspec cuts around and pydantic cannot read: one JSON error for the body.

    Each slice gave its own, at a column of the slice, beside the other slices' errors.
    """
    good = json.dumps(example_customer(service.contract)).encode()
    numeric = next(n for n, c in service.contract.columns.items() if c.type == "numeric")
    bad = json.dumps({**example_customer(service.contract), numeric: "many"}).encode()
    strange = good[:-1] + b', "note": ' + odd + b"}"
    body = b'{"customers":[' + b",".join([bad, *[good] * 59, strange, *[good] * 50, strange])
    body += b"]}"
    errors, sizes = sliced_errors(service, body, monkeypatch)
    expected = whole_body_errors(service, body)
    assert errors == expected
    assert [e["type"] for e in expected] == ["json_invalid"]
    assert sizes[-1] == 112  # the whole body, once the second slice could not be read
