"""Drift monitoring on batches made from the real data."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from churn.core import io
from churn.core.contract import Column, Contract
from churn.core.params import MonitorParams
from churn.ops.monitor import (
    compare_categorical,
    compare_numeric,
    judge,
    psi,
    refused_rows,
    shares,
)
from churn.serving.app import create_app
from churn.serving.settings import Settings
from conftest import REPO


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    ref = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(ref, ref) == 0.0
    small, big = (
        psi(ref, np.array([0.3, 0.2, 0.25, 0.25])),
        psi(ref, np.array([0.7, 0.1, 0.1, 0.1])),
    )
    assert 0 < small < 0.1 < big
    assert shares(np.array([0.5, 1.5, 2.5, 9.0]), np.array([1.0, 2.0])).tolist() == [
        0.25,
        0.25,
        0.5,
    ]


PARAMS = MonitorParams(
    bins=10,
    psi=0.2,
    ks_statistic=0.1,
    alpha=0.01,
    unseen_share=0.01,
    out_of_range_share=0.05,
    missing_change=0.05,
    min_rows=50,
)


def test_numbers_outside_the_observed_training_range_are_counted():
    ref = pd.Series(np.linspace(0, 10, 200))
    new = pd.Series([*np.linspace(1, 9, 90), -1.0, 11.0, 12.0, *[np.nan] * 7])
    column = Column("numeric", observed_min=0.0, observed_max=10.0)
    check = compare_numeric("x", ref, new, PARAMS, column)
    assert check.out_of_range_share == pytest.approx(3 / 93)  # of the present values
    assert not any("outside" in r for r in judge(check, PARAMS).reasons)  # 3.2 % < 5 %
    # The contract's range, not the reference's, decides; an old contract has none.
    narrow = Column("numeric", observed_min=2.0, observed_max=8.0)
    assert compare_numeric("x", ref, new, PARAMS, narrow).out_of_range_share == pytest.approx(
        (3 + 12 + 12) / 93  # 12 of the 90 inner values lie below 2, and 12 above 8
    )
    assert compare_numeric("x", ref, new, PARAMS).out_of_range_share == pytest.approx(3 / 93)


def test_out_of_range_at_the_threshold_is_drift():
    ref = pd.Series(np.linspace(0, 10, 200))
    new = pd.Series([*np.linspace(1, 9, 19), 20.0])  # 5 % outside
    check = judge(compare_numeric("x", ref, new, PARAMS), PARAMS)
    assert check.reasons[-1] == "outside the training range 5.0% >= 5.0%"


def test_unseen_means_outside_the_contracts_categories():
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    new = pd.Series(["a"] * 45 + ["c"] * 5 + [None] * 10)
    declared = Column("categorical", categories=("a", "b", "c"))
    assert compare_categorical("k", ref, new, declared).unseen_share == 0.0  # c is allowed
    assert compare_categorical("k", ref, new).unseen_share == pytest.approx(0.1)  # vs training


def test_refused_rows_are_those_with_a_category_outside_the_contract():
    contract = Contract(
        "y",
        1,
        None,
        "row_id",
        False,
        {
            "n": Column("numeric"),
            "k": Column("categorical", categories=("a", "b")),
            "free": Column("categorical"),  # no list: anything goes
        },
    )
    batch = pd.DataFrame(
        {"n": [1.0, 2.0, 3.0, 4.0], "k": ["a", "z", None, "b"], "free": ["q", "r", "s", "t"]}
    )
    assert refused_rows(batch, contract).tolist() == [False, True, False, False]


@pytest.fixture
def batches(trained, telco, tmp_path):
    """Raw-format batches of test-split customers: as is, shifted, tiny, invalid."""
    test_ids = io.read_parquet(trained / "data/prepared/test.parquet").index
    rows = telco.set_index("rownames").loc[test_ids].reset_index()
    out = {"same": rows.sample(800, random_state=0)}
    shifted = rows.sample(800, random_state=1).copy()
    shifted["monthly_charges"] *= 1.3
    shifted.loc[shifted.sample(80, random_state=2).index, "payment_method"] = "Crypto wallet"
    out["shifted"] = shifted
    out["tiny"] = rows.head(30)
    invalid = rows.head(100).copy()
    invalid.loc[3, "tenure"] = -4
    out["invalid"] = invalid
    paths = {}
    for name, frame in out.items():
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def monitor(trained, batch, out):
    env = {k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}  # counted too
    env.update(PYTHONPATH=str(REPO / "src"), PATH=str(REPO / ".venv/bin"))
    result = subprocess.run(
        [sys.executable, "-m", "churn", "monitor", "--input", str(batch), "--out", str(out)],
        cwd=trained,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    report = json.loads((out / "drift.json").read_text()) if (out / "drift.json").exists() else None
    return result, report


def test_batch_from_the_test_split_has_no_drift(trained, batches, tmp_path):
    result, report = monitor(trained, batches["same"], tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert report["drifted"] == []
    assert report["scored_rows"] == 800
    assert report["prediction"]["drifted"] is False
    assert report["rows"] == 800
    assert (
        "No feature drifted (800 rows). Predictions: stable."
        in (tmp_path / "out/summary.md").read_text()
    )


def test_shifted_charges_and_a_new_payment_method_are_exactly_what_drifts(
    trained, batches, tmp_path
):
    out = tmp_path / "out"
    result, report = monitor(trained, batches["shifted"], out)
    assert result.returncode == 1
    assert sorted(report["drifted"]) == ["monthly_charges", "payment_method"]
    by_name = {f["name"]: f for f in report["features"]}
    assert by_name["monthly_charges"]["psi"] > 0.2
    assert by_name["payment_method"]["unseen_share"] == pytest.approx(0.1)
    assert report["scored_rows"] == 720  # the 80 the service would refuse are not scored
    assert sorted(p.name for p in out.glob("*.png")) == [
        "monthly_charges.png",
        "payment_method.png",
    ]
    assert (out / "monthly_charges.png").read_bytes().startswith(b"\x89PNG")
    table = [
        line for line in (out / "summary.md").read_text().splitlines() if line.startswith("| ")
    ]
    first_two = {row.split(" | ")[0] for row in table[1:3]}  # drifted features come first
    assert first_two == {"| monthly_charges", "| payment_method"}


def test_tiny_batch_warns_about_power(trained, batches, tmp_path):
    _, report = monitor(trained, batches["tiny"], tmp_path / "out")
    assert report["warning"].startswith("Only 30 rows (fewer than 50): the tests have little power")
    assert "> Only 30 rows" in (tmp_path / "out/summary.md").read_text()


def test_invalid_batch_exits_2_with_the_contract_message(trained, batches, tmp_path):
    result, report = monitor(trained, batches["invalid"], tmp_path / "out")
    assert result.returncode == 2
    assert report is None
    assert result.stderr.splitlines()[-2:] == [
        f"error: {batches['invalid']}: 1 data contract check(s) failed",
        "  tenure: >= 0: 1 bad row(s) (row 4: -4)",
    ]


def test_the_service_prediction_log_is_monitor_input(trained, batches, tmp_path, monkeypatch):
    monkeypatch.chdir(trained)
    log = tmp_path / "predictions.jsonl"
    rows = json.loads(
        pd.read_csv(batches["same"]).drop(columns=["rownames", "churn"]).to_json(orient="records")
    )
    settings = Settings(prediction_log=str(log), log_sample_rate=1.0)
    with TestClient(create_app(settings)) as client:
        for start in range(0, 800, 400):
            assert (
                client.post(
                    "/v1/predict", json={"customers": rows[start : start + 400]}
                ).status_code
                == 200
            )
    logged = pd.read_json(log, lines=True)
    assert len(logged) == 800
    assert "churn_probability" in logged.columns
    result, report = monitor(trained, log, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert report["rows"] == 800


def test_logging_is_off_by_default(trained, batches, tmp_path, monkeypatch):
    monkeypatch.chdir(trained)
    rows = json.loads(
        pd.read_csv(batches["same"])
        .head(5)
        .drop(columns=["rownames", "churn"])
        .to_json(orient="records")
    )
    with TestClient(create_app(Settings())) as client:
        assert client.post("/v1/predict", json={"customers": rows}).status_code == 200
    assert not list(trained.glob("*.jsonl"))


class _Trap:
    """Unpickling this creates a file: proof that a pickle ran code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_model_dvc_lock_does_not_vouch_for_is_never_unpickled(trained, batches, tmp_path):
    import pickle
    import shutil

    work = shutil.copytree(trained, tmp_path / "work")
    trap = tmp_path / "code-ran"
    (work / "models/model.pkl").write_bytes(pickle.dumps(_Trap(str(trap))))
    result, report = monitor(work, batches["same"], tmp_path / "out")
    assert result.returncode == 2
    assert report is None
    assert not trap.exists()
    assert result.stderr.splitlines()[-1].startswith("error: models/model.pkl: md5 ")
    assert result.stderr.splitlines()[-1].endswith("in dvc.lock: refusing to unpickle it")
