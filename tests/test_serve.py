"""The prediction service in-process (TestClient): every status code, schema, loading safety."""

import errno
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from churn.core import io
from churn.core.contract import read_contract
from churn.core.errors import ChurnError
from churn.serving.app import create_app
from churn.serving.settings import Settings
from conftest import REPO

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
    "body",
    [
        b'{"customers":[{"\xff":1}]}',
        b'{"customers":[{"tenure":1,"\xc3(":1}]}',
        b'{"customers":[{"tenure":1},{"\xff":NaN}]}',
    ],
    ids=["a name not UTF-8", "later in a customer", "in a later customer, beside NaN"],
)
def test_a_field_name_that_is_no_utf8_is_the_bodys_json_error(client, body):
    """The body's pass keeps names raw; decoding one to look for nested values was a 500."""
    response = client.post("/v1/predict", content=body, headers=JSON)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body"], "json_invalid")
    assert error["msg"].startswith("Invalid JSON: invalid unicode code point at line 1 column ")


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
    assert response.json()["detail"] == (
        "content-type must be application/json (UTF-8: no other charset), given once"
    )


@pytest.mark.parametrize("second", ["text/plain", "application/json"])
def test_two_content_type_headers_are_415_whichever_comes_first(client, rows, second):
    """RFC 9110: one value for a single-value field; which one counts is not ours to pick."""
    body = json.dumps({"customers": rows[:1]}).encode()
    for pair in (("application/json", second), (second, "application/json")):
        headers = [("content-type", value) for value in pair]
        response = client.post("/v1/predict", content=body, headers=headers)
        assert response.status_code == 415


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


@pytest.mark.parametrize("path", ["/health", "/ready", "/v1/model", "/metrics"])
def test_every_get_route_answers_head_too(client, path):
    """RFC 9110: a load balancer's HEAD health check must not get 405."""
    got = client.get(path)
    headed = client.head(path)
    assert headed.status_code == got.status_code == 200
    assert headed.headers["content-type"] == got.headers["content-type"]
    assert headed.content == b""
    operations = client.get("/openapi.json").json()["paths"][path]
    assert list(operations) == ["get"]  # the HEAD twin is not a documented operation


def test_the_docs_pages_are_counted_by_their_own_path(client):
    """Starlette's routes (the docs) have no FastAPI route in scope: not 'unmatched'."""
    for path in ("/docs", "/redoc", "/openapi.json", "/no/such/page"):
        client.get(path)
    counted = [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("churn_requests_total{")
    ]
    assert 'churn_requests_total{path="/docs",status="200"} 1.0' in counted
    assert 'churn_requests_total{path="/redoc",status="200"} 1.0' in counted
    assert 'churn_requests_total{path="/openapi.json",status="200"} 1.0' in counted
    assert 'churn_requests_total{path="unmatched",status="404"} 1.0' in counted


def test_a_trailing_slash_is_404_not_a_redirect_to_the_clients_host(client, rows):
    response = client.post(
        "/v1/predict/",
        json={"customers": rows[:1]},
        headers={"host": "elsewhere.example:666"},
        follow_redirects=False,
    )
    assert response.status_code == 404
    assert "location" not in response.headers


def test_cors_lets_a_browser_send_and_read_the_request_id(workdir, monkeypatch, rows):
    monkeypatch.chdir(workdir)
    origin = "https://app.example"
    with TestClient(create_app(Settings(cors_origins=[origin]))) as c:
        preflight = c.options(
            "/v1/predict",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type, x-request-id",
            },
        )
        assert preflight.status_code == 200
        allowed = preflight.headers["access-control-allow-methods"]
        assert sorted(m.strip() for m in allowed.split(",")) == ["GET", "HEAD", "POST"]
        answer = c.post("/v1/predict", json={"customers": rows[:1]}, headers={"origin": origin})
        assert answer.status_code == 200
        exposed = answer.headers["access-control-expose-headers"].lower()
        assert {"x-request-id", "retry-after"} <= {h.strip() for h in exposed.split(",")}


def test_a_refused_cors_preflight_is_a_json_error_and_counted(workdir, monkeypatch):
    """Starlette's was a plain-text 400 ("Disallowed CORS origin"), with no request id."""
    monkeypatch.chdir(workdir)
    with TestClient(create_app(Settings(cors_origins=["https://app.example"]))) as c:
        refused = [
            c.options(
                "/v1/predict", headers={"origin": origin, "access-control-request-method": method}
            )
            for origin, method in (("https://evil.example", "POST"), ("https://app.example", "PUT"))
        ]
        counted = c.get("/metrics").text
    said = ("Disallowed CORS origin", "Disallowed CORS method")
    for answer, detail in zip(refused, said, strict=True):
        assert answer.status_code == 400
        assert answer.json() == {"detail": detail, "request_id": answer.headers["x-request-id"]}
    assert 'churn_errors_total{kind="http_400"} 2.0' in counted


def test_the_openapi_document_lists_every_error_status(client):
    """400 and 431, which the HTTP layer writes itself, were missing from it."""
    responses = client.get("/openapi.json").json()["paths"]["/v1/predict"]["post"]["responses"]
    assert sorted(responses) == ["200", "400", "408", "413", "415", "422", "431", "500", "503"]


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


def test_bodies_being_read_share_one_budget_and_a_refusal_closes_the_connection():
    """30 clients sending 4 MB and stopping held 4 GB (MAX_CONNECTIONS x MAX_BODY_BYTES)."""
    import asyncio

    from fastapi import HTTPException

    from churn.serving.app import BodyBudget, read_body

    class Stalled:
        """A request whose body arrives in ``parts`` and then stops until released."""

        def __init__(self, parts: list[bytes], release: asyncio.Event) -> None:
            self.headers, self.parts, self.release = {}, parts, release

        async def stream(self):
            for part in self.parts:
                yield part
            await self.release.wait()

    async def scenario() -> None:
        budget, release = BodyBudget(limit=10), asyncio.Event()
        first = asyncio.create_task(read_body(Stalled([b"12345", b"678"], release), 100, budget))
        await asyncio.sleep(0.01)
        assert budget.held == 8  # held while the body is being read
        with pytest.raises(HTTPException) as refused:
            await read_body(Stalled([b"abc"], release), 100, budget)
        assert refused.value.status_code == 503
        assert refused.value.headers == {"Retry-After": "1", "Connection": "close"}
        assert budget.held == 8  # the refused body gave back what it had taken
        release.set()
        assert await first == b"12345678"
        assert budget.held == 0  # read: one of MAX_CONCURRENT being parsed now
        with pytest.raises(HTTPException) as large:
            await read_body(Stalled([b"x" * 6, b"y" * 6], release), 10, budget)
        assert (large.value.status_code, large.value.headers) == (413, {"Connection": "close"})
        assert budget.held == 0

    asyncio.run(scenario())


def test_lax_values_take_the_pydantic_path_and_score_the_same(client, rows):
    """What the fast parser refuses but the schema allows (numbers as text) is still served.

    A boolean is not such a value: churn score and the contract refuse it where a number goes.
    """
    exact = {**rows[0], "tenure": 12, "female": 1}
    lax = {**rows[0], "tenure": "12", "female": " 1.0 "}
    answers = [
        client.post("/v1/predict", json={"customers": [row]}).json()["predictions"]
        for row in (exact, lax)
    ]
    assert answers[0] == answers[1]
    boolean = client.post("/v1/predict", json={"customers": [{**rows[0], "female": True}]})
    assert boolean.status_code == 422


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
    ("body", "members", "count"),
    [
        (b'{"customers": [{"tenure": NaN}, {}, 1]}', 1, 3),
        (b'{"customers": 1, "customers": [{}, {}]}', 2, 2),  # the last one, as pydantic reads it
        (b'{"customers": {}}', 1, None),
        (b'{"other": 1}', 1, None),
        (b' \r\n\t{"customers": []}', 1, 0),  # JSON's own whitespace first
    ],
)
def test_read_loosely_sees_the_object_pydantic_would(body, members, count):
    from churn.serving.parsing import LooseBody, read_loosely

    loose = read_loosely(body)
    assert isinstance(loose, LooseBody)
    assert loose.members == members
    assert (None if loose.customers is None else len(loose.customers)) == count


@pytest.mark.parametrize(
    "body",
    [b'{"customers": [1,]}', b"[]", b"[" * 5000 + b"]" * 5000, b"\xef\xbb\xbf{}", b"{\xff}"],
    ids=["trailing comma", "a list", "deep nesting", "a byte-order mark", "not UTF-8"],
)
def test_read_loosely_gives_up_where_pydantic_words_one_error(body):
    from churn.serving.parsing import read_loosely

    assert read_loosely(body) is None


def test_read_loosely_reads_nothing_of_a_body_that_is_no_object(monkeypatch):
    """A 3.9 MB top-level array of {} was json.loads-ed whole (1 s, 100 MB) for nothing."""
    from churn.serving import parsing

    def never(*_args, **_kwargs):
        raise AssertionError("parsed")

    monkeypatch.setattr(parsing.json, "loads", never)
    for body in (b"[" + b"{}," * 1000 + b"{}]", b'"text"', b"\xa0{}", b"1"):
        assert parsing.read_loosely(body) is None


def test_count_customers_gives_up_on_deep_nesting_without_raising():
    from churn.serving.parsing import count_customers

    assert count_customers(b'{"customers": [' + b"[" * 5000 + b"]" * 5000 + b"]}") is None


def test_wide_customers_are_those_written_with_more_members_than_fields():
    """Unknown names and repeated ones both count: a dict alone would hide the repeats."""
    from churn.serving.parsing import read_loosely, wide_customers

    body = (
        b'{"customers": [{"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3}, {"c": 1, "d": 2}, 5,'
        b' {"x": 1, "y": 2, "z": 3}, {"a": 1, "a": 2, "a": 3}, {"a": 1, "b": 1, "b": 2, "q": 0}]}'
    )
    customers = read_loosely(body).customers
    assert wide_customers(customers, ["a", "b"]) == [
        (1, ["c"], 0),
        (4, ["x", "y", "z"], 0),
        (5, [], 2),
        (6, ["q"], 1),
    ]


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
        # An infinite deadline is no deadline: a slow client would hold a connection forever.
        ("HEADER_TIMEOUT", "inf", "HEADER_TIMEOUT: Input should be a finite number (got 'inf')"),
        ("BODY_TIMEOUT", "1e400", "BODY_TIMEOUT: Input should be a finite number (got '1e400')"),
        ("PARAMS_FILE", "", "PARAMS_FILE: String should have at least 1 character (got '')"),
        # And a tiny one closed every connection before its first byte.
        (
            "HEADER_TIMEOUT",
            "1e-300",
            "HEADER_TIMEOUT: Input should be greater than or equal to 0.1 (got '1e-300')",
        ),
    ],
)
def test_a_setting_that_does_not_parse_is_one_line(monkeypatch, name, value, message):
    from churn.serving.settings import load_settings

    monkeypatch.setenv(name, value)
    with pytest.raises(ChurnError) as err:
        load_settings()
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("missing/dir/log.jsonl", "cannot append to missing/dir/log.jsonl ("),
        (".", ". is not a regular file"),
        ("fifo", "fifo is not a regular file"),  # its open waited for a reader: start-up hung
    ],
)
def test_a_prediction_log_that_cannot_be_appended_to_stops_the_start(
    tmp_path, monkeypatch, where, says
):
    from churn.serving.settings import load_settings

    monkeypatch.chdir(tmp_path)
    os.mkfifo("fifo")
    monkeypatch.setenv("PREDICTION_LOG", where)
    monkeypatch.setenv("LOG_SAMPLE_RATE", "1")
    with pytest.raises(ChurnError) as err:
        load_settings()
    assert str(err.value).startswith(f"PREDICTION_LOG: {says}")
    monkeypatch.setenv("LOG_SAMPLE_RATE", "0")  # sampling off: the path is never used
    assert load_settings().prediction_log == where


@pytest.mark.parametrize("log", [None, "", "  "])
def test_sampling_without_a_prediction_log_stops_the_start(monkeypatch, log):
    """PREDICTION_LOG="" with sampling on logged nothing, silently."""
    from churn.serving.settings import load_settings

    monkeypatch.delenv("PREDICTION_LOG", raising=False)
    if log is not None:
        monkeypatch.setenv("PREDICTION_LOG", log)
    monkeypatch.setenv("LOG_SAMPLE_RATE", "0.25")
    with pytest.raises(ChurnError) as err:
        load_settings()
    assert str(err.value) == (
        "LOG_SAMPLE_RATE=0.25 needs PREDICTION_LOG, the file to append the sampled predictions "
        f"to (got {log!r})"
    )
    monkeypatch.setenv("LOG_SAMPLE_RATE", "0")
    assert load_settings().log_sample_rate == 0.0


def test_a_prediction_log_without_a_sample_rate_stops_the_start(monkeypatch, tmp_path):
    """The rate is 0 by default: PREDICTION_LOG alone logged nothing, silently."""
    from churn.serving.settings import load_settings

    monkeypatch.delenv("LOG_SAMPLE_RATE", raising=False)
    monkeypatch.setenv("PREDICTION_LOG", str(tmp_path / "log.jsonl"))
    with pytest.raises(ChurnError) as err:
        load_settings()
    assert str(err.value) == (
        "PREDICTION_LOG is set but LOG_SAMPLE_RATE is not (0, nothing logged, by default): "
        "set LOG_SAMPLE_RATE, 1 to log every customer"
    )
    monkeypatch.setenv("LOG_SAMPLE_RATE", "0")  # said: off on purpose
    assert load_settings().log_sample_rate == 0.0


def test_the_prediction_log_holds_the_values_scored(workdir, monkeypatch, rows, tmp_path):
    """The log holds each value as scored, to the last digit.

    pandas' to_json kept 10 digits: 1.7976931348623157e308 read back as inf (monitor
    refused the whole log), 29.851234567891 as 29.8512345679, a probability of 4e-11 as 0.
    """
    import json

    monkeypatch.chdir(workdir)
    log_file = tmp_path / "log.jsonl"
    sent = [
        dict(rows[0], monthly_charges=1.7976931348623157e308),
        dict(rows[1], total_charges=29.851234567891),
    ]
    with TestClient(create_app(Settings(prediction_log=str(log_file), log_sample_rate=1.0))) as c:
        answer = c.post("/v1/predict", json={"customers": sent}).json()
    logged = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [row["monthly_charges"] for row in logged] == [
        1.7976931348623157e308,
        rows[1]["monthly_charges"],
    ]
    assert logged[1]["total_charges"] == 29.851234567891
    probabilities = [p["churn_probability"] for p in answer["predictions"]]
    assert [row["churn_probability"] for row in logged] == probabilities


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


def test_the_container_command_refuses_arguments_it_would_ignore():
    """`python -m churn.serving --port 9000` served on 8000 without a word."""
    done = subprocess.run(
        [sys.executable, "-m", "churn.serving", "--port", "9000"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "error: python -m churn.serving takes no arguments (got --port 9000); settings come "
        "from the environment: PORT=9000 python -m churn.serving\n"
    )


def test_a_prediction_log_replaced_by_a_fifo_costs_no_answer(workdir, monkeypatch, rows, tmp_path):
    """Opening a FIFO waits for a reader: every prediction hung, then 503 for good."""
    monkeypatch.chdir(workdir)
    log_file = tmp_path / "log.jsonl"
    settings = Settings(prediction_log=str(log_file), log_sample_rate=1.0)
    with TestClient(create_app(settings)) as c:
        log_file.unlink(missing_ok=True)
        os.mkfifo(log_file)  # after start-up, which refuses one
        answers = [c.post("/v1/predict", json={"customers": rows[:1]}) for _ in range(3)]
        metrics = c.get("/metrics").text
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert 'churn_errors_total{kind="prediction_log"} 3.0' in metrics


def test_a_log_write_cut_short_is_taken_back_whole(tmp_path):
    """A full disk left half a line, and churn monitor refused the whole log after it."""
    log_file = tmp_path / "log.jsonl"
    script = (
        "import resource, sys\n"
        "from churn.serving.app import append_whole\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100, resource.RLIM_INFINITY))\n"
        f"append_whole({str(log_file)!r}, b'x' * 59 + b'\\n')\n"
        "try:\n"
        f"    append_whole({str(log_file)!r}, b'y' * 59 + b'\\n')\n"
        "except OSError as err:\n"
        "    sys.exit(f'refused: {err.errno}')\n"
    )
    # Without coverage's subprocess hook: its data file, written at exit, meets the limit too.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE", "COVERAGE"))}
    env["PYTHONPATH"] = str(REPO / "src")
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stderr.splitlines()[0] == f"refused: {errno.EFBIG}"
    assert log_file.read_bytes() == b"x" * 59 + b"\n"  # the first line whole, nothing after
