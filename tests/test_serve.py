"""The prediction service in-process (TestClient): every status code, schema, loading safety."""

import gzip
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from churn.core import io
from churn.core.contract import read_contract
from churn.core.errors import ChurnError
from churn.serving.app import create_app
from churn.serving.model import load
from churn.serving.parsing import customer_model, example_customer
from churn.serving.settings import Settings

JSON = {"content-type": "application/json"}


@pytest.fixture
def workdir(trained) -> Path:
    """The shared trained work dir (tests/conftest.py)."""
    return trained


@pytest.fixture
def client(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    with TestClient(create_app(Settings(max_batch=50))) as c:
        yield c


@pytest.fixture
def rows(workdir) -> list[dict]:
    test = io.read_parquet(workdir / "data/prepared/test.parquet").drop(columns="churn")
    return json.loads(test.to_json(orient="records"))


def recorded_threshold(workdir: Path) -> float:
    """The threshold train chose and recorded next to the model (models/decision.json)."""
    return json.loads((workdir / "models/decision.json").read_text())["threshold"]


def test_health_ready_and_model(client, workdir, params):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["model_version"].startswith("workspace-")
    info = client.get("/v1/model").json()
    threshold = recorded_threshold(workdir)
    assert 0.0 < threshold < 1.0
    assert info["threshold"] == threshold
    # The decision policy: how the threshold was chosen, and the campaign it assumes.
    decision = info["decision"]
    assert (decision["policy"], decision["threshold"], decision["folds"]) == (
        "max_profit",
        threshold,
        params.decision.cv_folds,
    )
    assumptions = params.decision.model_dump(exclude={"threshold"})
    assert decision["assumptions"] == assumptions
    assert info["metrics"]["profit"] > 0
    assert info["max_batch"] == 50
    assert info["metrics"]["roc_auc"] > 0.7
    assert set(info["input_schema"]["properties"]) >= {"tenure", "contract", "total_charges"}
    assert info["input_schema"]["additionalProperties"] is False


def test_predictions_equal_the_pipeline_and_count_by_label(client, workdir, rows):
    response = client.post("/v1/predict", json={"customers": rows[:40]})
    assert response.status_code == 200
    body = response.json()
    expected = pd.read_csv(workdir / "reports/predictions.csv")["probability"].to_numpy()[:40]
    got = np.array([p["churn_probability"] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    threshold = recorded_threshold(workdir)
    assert body["threshold"] == threshold
    assert [p["churn"] for p in body["predictions"]] == (expected >= threshold).tolist()
    assert body["request_id"] == response.headers["x-request-id"]
    metrics = client.get("/metrics").text
    churned = float((expected >= threshold).sum())
    assert f'churn_predictions_total{{label="churn"}} {churned}' in metrics
    assert 'churn_requests_total{path="/v1/predict",status="200"} 1.0' in metrics
    assert 'churn_request_seconds_bucket{le="0.001",path="/v1/predict"}' in metrics


@pytest.mark.parametrize(
    ("change", "loc", "kind"),
    [
        ({"tenure": -3}, ["body", "customers", 0, "tenure"], "greater_than_equal"),
        ({"contract": "Weekly"}, ["body", "customers", 0, "contract"], "literal_error"),
        ({"monthly_charges": "lots"}, ["body", "customers", 0, "monthly_charges"], "float_parsing"),
        ({"promo": 1}, ["body", "customers", 0, "promo"], "extra_forbidden"),
        ({"tenure": None}, ["body", "customers", 0, "tenure"], "float_type"),
    ],
)
def test_bad_fields_are_422_with_their_path(client, rows, change, loc, kind):
    response = client.post("/v1/predict", json={"customers": [{**rows[0], **change}]})
    assert response.status_code == 422
    assert {"loc": loc, "type": kind} in [
        {"loc": d["loc"], "type": d["type"]} for d in response.json()["detail"]
    ]


def test_missing_field_and_empty_batch_are_422(client, rows):
    partial = {k: v for k, v in rows[0].items() if k != "tenure"}
    missing = client.post("/v1/predict", json={"customers": [partial]}).json()["detail"]
    assert missing[0]["loc"] == ["body", "customers", 0, "tenure"]
    assert missing[0]["type"] == "missing"
    assert client.post("/v1/predict", json={"customers": []}).status_code == 422
    bad_json = client.post("/v1/predict", content=b"{not json", headers=JSON)
    assert bad_json.status_code == 422
    assert bad_json.json()["detail"][0]["loc"] == ["body"]
    assert bad_json.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/evil+json",
        "application/ld+json",
        "text/json",
        "application/x-json",
        "application/jsonx",
        "application/json-seq",
        "application/json; charset=latin-1",
        "application/json, text/plain",
    ],
)
def test_a_body_that_is_not_json_is_415(client, rows, content_type):
    headers = {"content-type": content_type} if content_type else {}
    body = json.dumps({"customers": rows[:1]}).encode()
    response = client.post("/v1/predict", content=body, headers=headers)
    assert response.status_code == 415
    assert response.json()["detail"] == "content-type must be application/json"


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate", "identity, gzip", "x-custom"])
def test_a_compressed_body_is_415_naming_the_coding_accepted(client, rows, encoding):
    """A gzip body read as JSON would be a 422 about bytes: the client is told what to send."""
    body = gzip.compress(json.dumps({"customers": rows[:1]}).encode())
    headers = {"content-type": "application/json", "content-encoding": encoding}
    response = client.post("/v1/predict", content=body, headers=headers)
    assert response.status_code == 415
    assert (
        response.json()["detail"] == "content-encoding must be identity: send the JSON uncompressed"
    )
    assert response.headers["accept-encoding"] == "identity"
    plain = json.dumps({"customers": rows[:1]}).encode()
    headers["content-encoding"] = "identity"
    assert client.post("/v1/predict", content=plain, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        'Application/JSON; charset="UTF-8"',
        " application/json ;charset=utf8",
        "application/json; version=2",
    ],
)
def test_json_media_types_are_read(client, rows, content_type):
    body = json.dumps({"customers": rows[:1]}).encode()
    response = client.post("/v1/predict", content=body, headers={"content-type": content_type})
    assert response.status_code == 200


def test_a_body_over_the_limit_is_413_before_it_is_read(workdir, monkeypatch, rows):
    monkeypatch.chdir(workdir)
    body = json.dumps({"customers": rows[:3]}).encode()
    with TestClient(create_app(Settings(max_body_bytes=len(body) - 1))) as c:
        response = c.post("/v1/predict", content=body, headers=JSON)
        assert response.status_code == 413
        assert response.json()["detail"] == f"request body exceeds MAX_BODY_BYTES={len(body) - 1}"
        chunked = c.post("/v1/predict", content=iter([body[:100], body[100:]]), headers=JSON)
        assert chunked.status_code == 413  # no content-length: counted as it arrives
        assert c.post("/v1/predict", content=body[: len(body) - 1], headers=JSON).status_code == 422
    assert Settings(max_batch=10).body_limit == 40960


def test_lax_values_take_the_pydantic_path_and_score_the_same(client, rows):
    """What the fast parser refuses but the schema allows ("12", true) is still served."""
    exact = {**rows[0], "tenure": 12, "female": 1}
    lax = {**rows[0], "tenure": "12", "female": True}
    answers = [
        client.post("/v1/predict", json={"customers": [row]}).json()["predictions"]
        for row in (exact, lax)
    ]
    assert answers[0] == answers[1]


def test_nullable_field_takes_null(client, rows):
    response = client.post("/v1/predict", json={"customers": [{**rows[0], "total_charges": None}]})
    assert response.status_code == 200


def test_batch_over_the_limit_is_413(client, rows):
    response = client.post("/v1/predict", json={"customers": rows[:51]})
    assert response.status_code == 413
    assert response.json()["detail"] == "batch of 51 exceeds MAX_BATCH=50"


@pytest.mark.parametrize("row", [{}, {"tenure": "x"}, 1, None])
def test_a_bad_batch_over_the_limit_is_413_before_any_row_is_checked(client, row):
    """Counted first: 51 bad rows (or 200,000) are no 422 listing each one."""
    response = client.post("/v1/predict", json={"customers": [row] * 51})
    assert response.status_code == 413
    assert response.json()["detail"] == "batch of 51 exceeds MAX_BATCH=50"


def test_a_422_lists_the_first_max_errors_and_counts_the_rest(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    with TestClient(create_app(Settings(max_errors=3))) as c:
        response = c.post("/v1/predict", json={"customers": [{}] * 1000})
    detail = response.json()["detail"]
    assert response.status_code == 422
    contract = read_contract(workdir / "data/prepared/contract.json")
    fields = sum(not column.nullable for column in contract.columns.values())  # each missing
    assert [d["loc"] for d in detail[:3]] == [
        ["body", "customers", 0, "female"],
        ["body", "customers", 0, "senior_citizen"],
        ["body", "customers", 0, "partner"],
    ]
    assert detail[3] == {
        "loc": ["body"],
        "msg": f"and {1000 * fields - 3} more errors ({1000 * fields} in all; MAX_ERRORS=3)",
        "type": "too_many_errors",
    }
    assert len(detail) == 4
    assert len(response.content) < 2000


def test_a_422_under_the_cap_has_no_summary(client, rows):
    response = client.post("/v1/predict", json={"customers": [{**rows[0], "tenure": -1}]})
    assert [d["type"] for d in response.json()["detail"]] == ["greater_than_equal"]


@pytest.mark.parametrize(
    ("body", "count"),
    [
        (b'{"customers": [{}, 1, "x", null, []]}', 5),
        (b'{"customers": []}', 0),
        (b'{"customers": {}}', None),
        (b'{"customers": [1,]}', None),
        (b"[]", None),
        (b'{"other": 1}', None),
        (b'{"customers": ["\xff"]}', 1),  # not UTF-8 inside a row: counted, pydantic says
    ],
)
def test_count_customers_reads_only_the_list(body, count):
    from churn.serving.parsing import count_customers

    assert count_customers(body) == count


def test_not_loaded_is_503(workdir, monkeypatch, rows):
    monkeypatch.chdir(workdir)
    plain = TestClient(create_app(Settings()))  # no `with`: the lifespan never loads
    assert plain.get("/health").status_code == 200
    assert plain.get("/ready").status_code == 503
    response = plain.post("/v1/predict", json={"customers": rows[:1]})
    assert response.status_code == 503
    assert response.json()["detail"] == "model not loaded"


def test_unexpected_error_is_500_with_request_id_and_no_trace(workdir, monkeypatch, rows):
    monkeypatch.chdir(workdir)

    class Broken:
        def predict_proba(self, frame):
            raise RuntimeError("secret internals")

    broken = replace(load(Settings()), model=Broken())
    with TestClient(create_app(Settings(), loaded=broken), raise_server_exceptions=False) as c:
        response = c.post(
            "/v1/predict", json={"customers": rows[:1]}, headers={"x-request-id": "abc"}
        )
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error", "request_id": "abc"}
    assert "secret" not in response.text


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("abc-123", True), ("trace.id:7_x", True), ("", False), ("a b", False), ("x" * 129, False)],
)
def test_request_id_is_the_callers_only_if_it_is_a_plain_token(client, sent, kept):
    response = client.get("/health", headers={"x-request-id": sent})
    echoed = response.headers["x-request-id"]
    assert (echoed == sent) is kept
    if not kept:
        assert len(echoed) == 32
        assert int(echoed, 16) >= 0  # a fresh uuid4 hex


def test_cors_is_off_unless_configured(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    origin = {"origin": "https://dashboard.example", "access-control-request-method": "POST"}
    with TestClient(create_app(Settings())) as c:
        assert "access-control-allow-origin" not in c.options("/v1/predict", headers=origin).headers
    with TestClient(create_app(Settings(cors_origins=["https://dashboard.example"]))) as c:
        allowed = c.options("/v1/predict", headers=origin).headers
        assert allowed["access-control-allow-origin"] == "https://dashboard.example"


def test_tampered_model_is_refused_before_unpickling(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    model = workdir / "models/model.pkl"
    original = model.read_bytes()
    model.write_bytes(original + b"\n")
    try:
        with pytest.raises(
            ChurnError, match=r"models/model\.pkl: md5 \w+ does not match \w+ in dvc\.lock"
        ):
            load(Settings())
        with pytest.raises(ChurnError), TestClient(create_app(Settings())):
            pass  # the lifespan refuses: the server never starts
    finally:
        model.write_bytes(original)


def test_docs_example_is_a_valid_request(client):
    schema = client.get("/openapi.json").json()
    body = schema["components"]["schemas"]["PredictRequest"]
    example = body["examples"][0]
    assert client.post("/v1/predict", json=example).status_code == 200
    assert client.get("/docs").status_code == 200


def test_openapi_documents_the_body_the_route_reads_itself(client):
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/v1/predict"]["post"]
    content = operation["requestBody"]["content"]["application/json"]
    assert content["schema"] == {"$ref": "#/components/schemas/PredictRequest"}
    schemas = document["components"]["schemas"]
    customers = schemas["PredictRequest"]["properties"]["customers"]
    assert customers["items"] == {"$ref": "#/components/schemas/Customer"}
    assert customers["minItems"] == 1
    assert schemas["Customer"]["additionalProperties"] is False
    assert schemas["Customer"]["properties"]["tenure"]["maximum"] == 120
    assert {"200", "408", "413", "415", "422", "500", "503"} <= set(operation["responses"])
    error = operation["responses"]["422"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(schemas["ErrorBody"]["required"]) == {"detail", "request_id"}


def test_bytes_that_are_not_utf8_get_a_422(client):
    body = b'{"customers":[{"internet_service":"DS\xff"}]}'
    response = client.post("/v1/predict", content=body, headers=JSON)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert 'churn_errors_total{kind="internal"}' not in client.get("/metrics").text


def test_a_declared_length_that_is_not_ascii_digits_is_not_a_crash():
    import asyncio

    from starlette.requests import Request

    from churn.serving.app import read_body

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    headers = [(b"content-length", "\u00b2".encode("latin-1"))]  # superscript 2: isdigit() is True
    request = Request({"type": "http", "headers": headers}, receive)
    assert asyncio.run(read_body(request, limit=10)) == b"{}"


def test_customer_model_mirrors_the_contract(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    contract = load(Settings()).contract
    adapter = TypeAdapter(customer_model(contract))
    assert list(adapter.json_schema()["properties"]) == list(contract.columns)
    assert adapter.validate_python(example_customer(contract))["tenure"] == 0


def test_an_empty_model_ref_serves_the_workspace_model(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("MODEL_REF", "")  # e.g. `docker run -e MODEL_REF=`
    loaded = load(Settings())
    assert loaded.version.startswith("workspace-")
    assert loaded.metrics["roc_auc"] > 0.8


def test_every_setting_is_in_the_readme_table():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"| `{name.upper()}` |" not in readme]
    assert missing == []


def test_limits_come_from_the_environment_and_a_bad_one_is_one_line(monkeypatch):
    from churn.serving.settings import load_settings

    monkeypatch.setenv("BODY_TIMEOUT", "1.5")
    monkeypatch.setenv("MAX_CONCURRENT", "3")
    settings = load_settings()
    assert (settings.body_timeout, settings.max_concurrent, settings.header_timeout) == (1.5, 3, 10)
    monkeypatch.setenv("MAX_HEADER_BYTES", "10")
    with pytest.raises(ChurnError, match=r"^MAX_HEADER_BYTES: Input should be greater than"):
        load_settings()


@pytest.fixture
def inferred_client(trained_inferred, monkeypatch):
    monkeypatch.chdir(trained_inferred)
    with TestClient(create_app(Settings(max_batch=50))) as c:
        yield c


def test_an_inferred_contract_is_enforced_like_a_declared_one(inferred_client, trained_inferred):
    contract = read_contract(trained_inferred / "data/prepared/contract.json")
    assert contract.inferred
    required = [n for n, c in contract.columns.items() if not c.nullable]
    assert required == ["plan", "support_calls"]  # never missing in the training split
    row = {"plan": "basic", "usage_minutes": 120.0, "region": "north", "support_calls": 2}

    def post(customer: dict):
        return inferred_client.post("/v1/predict", json={"customers": [customer]})

    assert post(row).status_code == 200
    # Fields that had missing values in training may be absent or null.
    assert post({"plan": "pro", "support_calls": 0}).status_code == 200
    assert post({**row, "region": None, "usage_minutes": None}).status_code == 200
    # One field is not a customer: each never-missing one is required, by name.
    lone = post({"region": "north"})
    assert lone.status_code == 422
    assert sorted((d["loc"][3], d["type"]) for d in lone.json()["detail"]) == [
        ("plan", "missing"),
        ("support_calls", "missing"),
    ]
    # A category the training data never had: 422 listing the ones it had.
    unseen = post({**row, "plan": "enterprise"}).json()["detail"]
    assert unseen[0]["loc"] == ["body", "customers", 0, "plan"]
    assert unseen[0]["type"] == "literal_error"
    assert unseen[0]["msg"] == "Input should be 'basic', 'plus' or 'pro'"
    # A number outside the training range is scored (monitoring counts it).
    low = contract.columns["usage_minutes"].observed_min
    assert post({**row, "usage_minutes": low - 100}).status_code == 200


# --------------------------------------------------------------------------- hostile bodies


@pytest.mark.parametrize(
    "body",
    [
        b'{"customers": [' + b"[" * 1000 + b"]" * 1000 + b"]}",
        b'{"x":' + b"[" * 1000 + b"]" * 1000 + b',"customers":[]}',
    ],
    ids=["in-customers", "beside-customers"],
)
def test_json_nested_past_the_parsers_limit_is_422_not_500(client, body):
    response = client.post("/v1/predict", content=body, headers=JSON)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body"], "json_invalid")
    assert "recursion limit exceeded" in error["msg"]


@pytest.mark.parametrize("text", ["1_0", "١٢", "0x10", "1,000", "12 months", ""])
def test_a_number_sent_as_text_must_read_as_prepare_reads_it(client, rows, text):
    """Python's float() takes "1_0" and other scripts' digits; pandas (prepare, monitor) not."""
    response = client.post("/v1/predict", json={"customers": [{**rows[0], "tenure": text}]})
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body", "customers", 0, "tenure"],
            "msg": "Input should be a valid number, unable to parse string as a number",
            "type": "float_parsing",
        }
    ]


@pytest.mark.parametrize("text", ["12", " 12 ", "+12", "12.0", "1.2e1", "\t12"])
def test_number_text_pandas_reads_scores_as_the_number(client, rows, text):
    as_number = client.post("/v1/predict", json={"customers": [{**rows[0], "tenure": 12}]})
    as_text = client.post("/v1/predict", json={"customers": [{**rows[0], "tenure": text}]})
    assert as_text.status_code == 200
    assert as_text.json()["predictions"] == as_number.json()["predictions"]


def test_an_unknown_field_name_is_clipped_in_the_422(client, rows):
    response = client.post("/v1/predict", json={"customers": [{**rows[0], "K" * 100_000: 1}]})
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "customers", 0, "K" * 80 + "... (100000 characters)"]
    assert error["type"] == "extra_forbidden"
    assert len(response.content) < 1000


def test_customers_with_more_fields_than_the_contract_are_named_once_each(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    contract = read_contract(workdir / "data/prepared/contract.json")
    wide = {f"x{i}": 0 for i in range(len(contract.columns) + 1)}
    customers = [{"tenure": 1}, wide, wide, wide]
    with TestClient(create_app(Settings(max_errors=2))) as c:
        response = c.post("/v1/predict", json={"customers": customers})
    assert response.status_code == 422
    extra = f"Extra inputs are not permitted ({len(wide)} unknown fields)"
    assert response.json()["detail"] == [
        {"loc": ["body", "customers", 1, "x0"], "msg": extra, "type": "extra_forbidden"},
        {"loc": ["body", "customers", 2, "x0"], "msg": extra, "type": "extra_forbidden"},
        {
            "loc": ["body"],
            "msg": "and 1 more errors (3 in all; MAX_ERRORS=2)",
            "type": "too_many_errors",
        },
    ]


def test_a_customer_with_as_many_fields_as_the_contract_gets_pydantics_errors(client, rows):
    """Not more fields than columns: each unknown one is pydantic's own error."""
    contract_size = len(rows[0])
    odd = {f"x{i}": 0 for i in range(contract_size)}
    response = client.post("/v1/predict", json={"customers": [odd]})
    kinds = {d["type"] for d in response.json()["detail"]}
    assert response.status_code == 422
    assert "extra_forbidden" in kinds
    assert "missing" in kinds


@pytest.mark.parametrize(
    ("body", "count"),
    [
        (b'{"customers": [{"tenure": NaN}, {}, 1]}', 3),
        (b'{"customers": 1, "customers": [{}, {}]}', 2),  # the last one, as pydantic reads it
        (b'{"customers": {}}', None),
        (b'{"customers": [1,]}', None),
        (b"[]", None),
        (b'{"other": 1}', None),
        (b"[" * 5000 + b"]" * 5000, None),
    ],
)
def test_read_loosely_sees_the_list_pydantic_would(body, count):
    from churn.serving.parsing import read_loosely

    customers = read_loosely(body)
    assert (None if customers is None else len(customers)) == count


def test_count_customers_gives_up_on_deep_nesting_without_raising():
    from churn.serving.parsing import count_customers

    assert count_customers(b'{"customers": [' + b"[" * 5000 + b"]" * 5000 + b"]}") is None


def test_unknown_fields_names_only_customers_wider_than_the_contract():
    from churn.serving.parsing import unknown_fields

    known = ["a", "b"]
    customers = [
        {"a": 1, "b": 2},
        {"a": 1, "b": 2, "c": 3},
        {"c": 1, "d": 2},
        5,
        {"x": 1, "y": 2, "z": 3},
    ]
    assert unknown_fields(customers, known) == [(1, ["c"]), (4, ["x", "y", "z"])]


# --------------------------------------------------------------------------- settings and start-up


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CORS_ORIGINS", "*", "CORS_ORIGINS: not a JSON list of strings (got '*')"),
        ("CORS_ORIGINS", '["a"', "CORS_ORIGINS: not a JSON list of strings (got '[\"a\"')"),
        (
            "MAX_BATCH",
            "99999999999999999999999999",
            "MAX_BATCH: Input should be less than or equal to 1000000 "
            "(got '99999999999999999999999999')",
        ),
    ],
)
def test_a_setting_that_does_not_parse_is_one_line(monkeypatch, name, value, message):
    from churn.serving.settings import load_settings

    monkeypatch.setenv(name, value)
    with pytest.raises(ChurnError) as err:
        load_settings()
    assert str(err.value) == message


@pytest.mark.parametrize("where", ["missing/dir/log.jsonl", "."])
def test_a_prediction_log_that_cannot_be_appended_to_stops_the_start(tmp_path, monkeypatch, where):
    from churn.serving.settings import load_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREDICTION_LOG", where)
    monkeypatch.setenv("LOG_SAMPLE_RATE", "1")
    with pytest.raises(
        ChurnError, match=rf"^PREDICTION_LOG: cannot append to {re.escape(where)} \("
    ):
        load_settings()
    monkeypatch.setenv("LOG_SAMPLE_RATE", "0")  # sampling off: the path is never used
    assert load_settings().prediction_log == where


def test_a_prediction_log_that_fails_later_costs_no_answer(workdir, monkeypatch, rows, tmp_path):
    """The log is for monitoring: a write that fails is counted and logged, the answer sent."""
    monkeypatch.chdir(workdir)
    log_file = tmp_path / "gone" / "log.jsonl"
    settings = Settings(prediction_log=str(log_file), log_sample_rate=1.0)
    with TestClient(create_app(settings)) as c:
        response = c.post("/v1/predict", json={"customers": rows[:2]})
        metrics = c.get("/metrics").text
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 2
    assert 'churn_errors_total{kind="prediction_log"} 1.0' in metrics


def test_a_port_in_use_or_a_bad_host_is_one_line_before_loading():
    import socket

    from churn.serving.app import check_listen

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ChurnError) as err:
            check_listen("127.0.0.1", port)
    assert (
        str(err.value) == f"HOST '127.0.0.1', PORT {port}: cannot listen (Address already in use)"
    )
    with pytest.raises(
        ChurnError, match=r"^HOST 'no such host\.invalid': not a host name or address"
    ):
        check_listen("no such host.invalid", 8000)
    check_listen("127.0.0.1", 0)  # free: no error
