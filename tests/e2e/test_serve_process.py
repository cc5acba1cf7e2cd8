"""End to end: a real uvicorn process on 127.0.0.1 serving the reproduced pipeline's model."""

import hashlib
import json
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from .conftest import dvc_env, free_port, serving, sh

pytestmark = pytest.mark.e2e


@contextmanager
def server(repo, **env: str):
    port = free_port()
    variables = dvc_env(PYTHONPATH="src", HOST="127.0.0.1", PORT=str(port), **env)
    with (
        tempfile.TemporaryDirectory() as scratch,
        serving(repo, port, variables, Path(scratch) / "server.log"),
    ):
        yield f"http://127.0.0.1:{port}"


def test_whole_test_split_over_http_equals_evaluate(reproduced):
    test = pd.read_parquet(reproduced / "data/prepared/test.parquet").drop(columns="churn")
    rows = json.loads(test.to_json(orient="records"))
    expected = pd.read_csv(reproduced / "reports/predictions.csv")
    got = []
    with server(reproduced) as url, httpx.Client(base_url=url, timeout=30) as client:
        for start in range(0, len(rows), 500):
            response = client.post("/v1/predict", json={"customers": rows[start : start + 500]})
            assert response.status_code == 200
            got += [p["churn_probability"] for p in response.json()["predictions"]]
        model = client.get("/v1/model").json()
    assert len(got) == len(expected) == 1409
    np.testing.assert_allclose(got, expected["probability"].to_numpy(), rtol=0, atol=1e-9)
    assert (
        model["metrics"]["roc_auc"]
        == json.loads((reproduced / "reports/metrics.json").read_text())["roc_auc"]
    )
    assert model["commit"] == sh(reproduced, "git", "rev-parse", "HEAD").stdout.strip()


def test_released_version_by_model_ref(reproduced):
    # A release tag records the model's md5 (churn release create writes this line).
    md5 = hashlib.md5((reproduced / "models/model.pkl").read_bytes()).hexdigest()  # noqa: S324
    sh(reproduced, "git", "tag", "-a", "churn-model@v0.1.0", "-m", f"test\n\nmodel-md5: {md5}")
    try:
        with server(reproduced, MODEL_REF="churn-model@v0.1.0") as url:
            info = httpx.get(f"{url}/v1/model", timeout=10).json()
        assert info["version"] == "churn-model@v0.1.0"
        lock = sh(reproduced, "git", "show", "churn-model@v0.1.0:dvc.lock").stdout
        assert f"md5: {info['md5']}" in lock
    finally:
        sh(reproduced, "git", "tag", "-d", "churn-model@v0.1.0")


def test_unknown_ref_refuses_to_start(reproduced):
    proc = subprocess.run(
        ["python", "-m", "churn", "serve"],
        cwd=reproduced,
        env=dvc_env(
            PYTHONPATH="src",
            HOST="127.0.0.1",
            PORT=str(free_port()),
            MODEL_REF="churn-model@v9.9.9",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: churn-model@v9.9.9: no such git revision")
    assert proc.stderr.count("\n") == 1


def test_a_release_is_served_with_its_own_contract_threshold_and_metrics(moved_on):
    repo, md5, released, threshold = moved_on
    row = json.loads(
        pd.read_parquet(repo / "data/prepared/test.parquet")
        .drop(columns="churn")
        .head(1)
        .to_json(orient="records")
    )[0]
    long_tenure = {**row, "tenure": 100}
    with server(repo, MODEL_REF="churn-model@v0.1.0") as url:
        info = httpx.get(f"{url}/v1/model", timeout=10).json()
        answer = httpx.post(f"{url}/v1/predict", json={"customers": [long_tenure]}, timeout=10)
    assert 0.0 < threshold < 1.0
    assert (info["threshold"], info["md5"]) == (threshold, md5)
    assert (info["decision"]["policy"], info["decision"]["threshold"]) == ("max_profit", threshold)
    assert info["metrics"] == released
    assert info["input_schema"]["properties"]["tenure"]["maximum"] == 120
    assert answer.status_code == 200  # the release's contract: tenure up to 120
    assert answer.json()["threshold"] == threshold
    with server(repo) as url:  # the workspace: its own rules
        info = httpx.get(f"{url}/v1/model", timeout=10).json()
        answer = httpx.post(f"{url}/v1/predict", json={"customers": [long_tenure]}, timeout=10)
    assert info["threshold"] == 0.3
    assert info["decision"]["policy"] == "fixed"
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "customers", 0, "tenure"]


@pytest.mark.parametrize(
    ("stop", "status", "last"),
    [
        ("SIGINT", 130, "error: interrupted"),  # was exit 0, silently
        ("SIGTERM", 143, "INFO:     Finished server process"),
        ("SIGHUP", 129, "INFO:     Finished server process"),  # was a traceback, no shutdown
    ],
)
def test_a_stop_signal_shuts_down_gracefully_with_its_status(
    reproduced, tmp_path, stop, status, last
):
    """As every command stops (README: Ctrl-C 130 with one line, SIGTERM 143, SIGHUP 129)."""
    import signal

    port = free_port()
    variables = dvc_env(PYTHONPATH="src", HOST="127.0.0.1", PORT=str(port))
    log = tmp_path / "server.log"
    with serving(reproduced, port, variables, log) as proc:
        proc.send_signal(getattr(signal, stop))
        assert proc.wait(timeout=30) == status
    said = log.read_text()
    assert "Traceback" not in said
    assert "INFO:     Shutting down" in said
    assert said.splitlines()[-1].startswith(last)
