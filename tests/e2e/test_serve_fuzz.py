"""Fuzzing the prediction service: no generated request, valid or not, gets a 5xx.

schemathesis reads the app's own OpenAPI schema and generates requests for every
operation: schema-valid ones (positive) and, for ``POST /v1/predict``, schema-violating
ones (negative: wrong types, out-of-range numbers, unknown categories and fields,
missing keys, empty lists...). Each is sent to the ASGI app in this process; the
only check is that the answer is not a server error. The app serves a real model:
the one ``dvc repro`` built in the shared ``reproduced`` copy of the repository
(loaded and md5-checked there; nothing in the copy is written). Hypothesis runs
derandomized, so every run sends the same cases.
"""

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from churn.serving.app import create_app
from churn.serving.model import load
from churn.serving.settings import Settings

pytestmark = pytest.mark.e2e

MIN_TOTAL_CASES = 500
# (method, path, generation mode, max_examples). Operations without inputs exhaust
# their search space after a case or two; the request body of /v1/predict does not.
PLAN = [
    ("GET", "/health", GenerationMode.POSITIVE, 20),
    ("GET", "/ready", GenerationMode.POSITIVE, 20),
    ("GET", "/v1/model", GenerationMode.POSITIVE, 20),
    ("GET", "/metrics", GenerationMode.POSITIVE, 20),
    ("POST", "/v1/predict", GenerationMode.POSITIVE, 300),
    ("POST", "/v1/predict", GenerationMode.NEGATIVE, 250),
]
CASES: dict[str, int] = {}  # cases sent per PLAN entry, filled in by the tests below
REACH_MODEL = 0.9  # share of schema-valid predict requests that must get a 200


def plan_id(entry: tuple) -> str:
    method, path, mode, _ = entry
    return f"{method} {path} {mode.value}"


@pytest.fixture(scope="module")
def schema(reproduced: Path) -> Iterator[schemathesis.BaseSchema]:
    """The OpenAPI schema of an app serving the reproduced copy's model."""
    with pytest.MonkeyPatch.context() as mp:
        # load() reads params.yaml, dvc.lock and the model relative to the working dir.
        mp.chdir(reproduced)
        config = Settings(model_ref=None)  # whatever MODEL_REF the environment has
        app = create_app(config, loaded=load(config))
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def test_schema_has_every_operation(schema) -> None:
    operations = {
        (op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())
    }
    assert {(method, path) for method, path, _, _ in PLAN} <= operations


@pytest.mark.parametrize("entry", PLAN, ids=plan_id)
def test_no_server_errors(schema, entry: tuple) -> None:
    method, path, mode, max_examples = entry
    operation = schema[path][method]
    key = plan_id(entry)
    CASES[key] = 0
    statuses: Counter[int] = Counter()

    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case) -> None:
        CASES[key] += 1
        response = case.call()
        statuses[response.status_code] += 1
        assert response.status_code < 500, (
            f"{case.method} {case.path} -> {response.status_code}: {response.text[:500]}\n"
            f"body: {case.body!r}"[:2000]
        )
        case.validate_response(response, checks=[not_a_server_error])

    fuzz()
    assert CASES[key] >= 1
    if mode is GenerationMode.POSITIVE:
        # Valid requests must get past validation, or the model code was never fuzzed.
        assert statuses[200] >= REACH_MODEL * CASES[key], dict(statuses)


def test_at_least_500_cases_in_total() -> None:
    missing = [plan_id(entry) for entry in PLAN if plan_id(entry) not in CASES]
    if missing:
        pytest.skip(f"run the whole module to count every case (not run: {', '.join(missing)})")
    assert sum(CASES.values()) >= MIN_TOTAL_CASES, CASES
