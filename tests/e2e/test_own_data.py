"""End to end, the README's "Your own data" way, on two generated schemas the code never saw.

`dvc add`, params only, `dvc repro`, the report against main, the service refusing a row
that lacks a never-missing feature, and monitoring a shifted sample.
"""

import json
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from synthetic import make_custom_dataset, make_subscriptions_dataset

from .conftest import read_metrics, reproduced_copy, sh
from .test_serve_process import server

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Own:
    """A dataset, the params a user writes for it, and what the contract must infer."""

    file: str
    frame: pd.DataFrame
    data: dict[str, Any]
    slices: list[str]
    never_missing: list[str]  # required by the service
    sometimes_missing: list[str]
    shift: str  # the numeric feature the shifted sample moves


DATASETS = {
    "accounts": Own(
        "accounts.csv",
        make_custom_dataset(1200),  # string id, text target, gaps in a number and a category
        {"target": "status", "positive_label": "left", "id": "account", "features": "infer"},
        ["plan"],
        ["plan", "support_calls"],
        ["usage_minutes", "region"],
        "usage_minutes",
    ),
    "subscriptions": Own(
        "subscriptions.csv",
        make_subscriptions_dataset(),  # a row-number column, no id of its own
        {
            "target": "outcome",
            "positive_label": "cancelled",
            "labels": ["renewed", "cancelled"],
            "id": None,  # as a new user might leave it: prepare must say what to do
            "features": "infer",
        },
        ["plan", "country"],
        ["plan", "monthly_fee"],
        ["logins_per_week", "country"],
        "monthly_fee",
    ),
}


@pytest.fixture(scope="module")
def main_repo(tmp_path_factory):
    """The main branch with the Telco pipeline reproduced: the report's base."""
    return reproduced_copy(tmp_path_factory, "own")


def write_params(repo, own: Own, **data) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["paths"]["raw"] = f"data/raw/{own.file}"
    params["data"] = {**own.data, **data}
    params["evaluate"]["slices"] = own.slices
    params["decision"]["value_column"] = own.shift  # a numeric feature of this dataset
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def repro_own_data(repo, name: str, own: Own) -> None:
    """The README's steps on a branch; a row-number column is named before any work."""
    sh(repo, "git", "checkout", "-q", "-b", name, "main")
    own.frame.to_csv(repo / "data/raw" / own.file, index=False)
    sh(repo, "dvc", "add", "-q", f"data/raw/{own.file}")
    write_params(repo, own)
    if own.data["id"] is None:
        failed = sh(repo, "dvc", "repro", check=False)
        assert failed.returncode != 0
        assert (
            f"error: data/raw/{own.file}: 'rownames' (row numbers 1..{len(own.frame)}) looks "
            "like a row id or key, not a feature: set data.id: rownames in params.yaml, or list "
            "data.features without it"
        ) in failed.stderr
        assert "Running stage 'featurize'" not in failed.stdout
        write_params(repo, own, id="rownames")  # what the message says
    sh(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", f"train on {own.file}")
    assert "Data and pipelines are up to date." in sh(repo, "dvc", "status").stdout


def check_contract(repo, own: Own) -> dict:
    contract = json.loads((repo / "data/prepared/contract.json").read_text())
    assert contract["inferred"] is True
    columns = {c["name"]: c for c in contract["columns"]}
    assert sorted(n for n, c in columns.items() if not c["nullable"]) == sorted(own.never_missing)
    assert sorted(n for n, c in columns.items() if c["nullable"]) == sorted(own.sometimes_missing)
    train = pd.read_parquet(repo / "data/prepared/train.parquet")
    for name, column in columns.items():
        if column["type"] == "categorical":
            assert column["categories"] == sorted(train[name].dropna().unique())
        else:
            assert column["observed_min"] == train[name].min()
            assert column["observed_max"] == train[name].max()
    return columns


def check_report(repo, own: Own, columns: dict) -> None:
    sh(repo, "churn", "report", "--base", "main", "--out", "report.md")
    text = (repo / "report.md").read_text()
    lines = text.splitlines()
    assert lines[2].startswith(
        f"**Different data:** main trained on `data/raw/wa_churn.csv`, this branch on "
        f"`data/raw/{own.file}`."
    )
    assert f"data contract: 19 declared features → {len(columns)} inferred features (" in text
    assert "data.features" not in text  # one line, not a row per key


def check_service(repo, own: Own, columns: dict) -> None:
    test = pd.read_parquet(repo / "data/prepared/test.parquet")
    rows = json.loads(test[list(columns)].to_json(orient="records"))
    complete = next(r for r in rows if all(v is not None for v in r.values()))
    with server(repo) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.post("/v1/predict", json={"customers": [complete]}).status_code == 200
        for name in own.never_missing:
            lacking = {k: v for k, v in complete.items() if k != name}
            answer = client.post("/v1/predict", json={"customers": [lacking]})
            assert answer.status_code == 422, name
            assert [(d["loc"], d["type"]) for d in answer.json()["detail"]] == [
                (["body", "customers", 0, name], "missing")
            ]
        for name in own.sometimes_missing:  # may be absent: training had gaps there
            lacking = {k: v for k, v in complete.items() if k != name}
            assert client.post("/v1/predict", json={"customers": [lacking]}).status_code == 200


def check_monitor(repo, own: Own, columns: dict, tmp_path) -> None:
    test = pd.read_parquet(repo / "data/prepared/test.parquet").reset_index()
    # prepare stores categorical columns as categories; a batch to monitor is plain text.
    test = test.astype(dict.fromkeys(test.select_dtypes("category").columns, object))
    steady = test.sample(250, random_state=0, replace=True).reset_index(drop=True)
    shifted = steady.copy()
    # Past the training range (every value of these features is >= 0).
    shifted[own.shift] = shifted[own.shift] + 2 * columns[own.shift]["observed_max"] + 1
    rare = shifted.sample(25, random_state=1).index
    shifted.loc[rare, own.never_missing[0]] = "a brand-new plan"
    for name, frame in (("steady", steady), ("shifted", shifted)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    quiet = sh(repo, "churn", "monitor", "--input", str(tmp_path / "steady.csv"), check=False)
    assert quiet.returncode == 0, quiet.stderr
    out = tmp_path / "out"
    moved = sh(
        repo,
        "churn",
        "monitor",
        "--input",
        str(tmp_path / "shifted.csv"),
        "--out",
        str(out),
        check=False,
    )
    assert moved.returncode == 1, moved.stderr
    report = json.loads((out / "drift.json").read_text())
    by_name = {f["name"]: f for f in report["features"]}
    assert sorted(report["drifted"]) == sorted([own.shift, own.never_missing[0]])
    assert by_name[own.shift]["out_of_range_share"] == 1.0
    assert by_name[own.never_missing[0]]["unseen_share"] == pytest.approx(25 / 250)
    assert report["scored_rows"] == 225  # the service would refuse those


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_own_data_the_readme_way(main_repo, name, tmp_path):
    own = DATASETS[name]
    repo = main_repo
    try:
        repro_own_data(repo, name, own)
        assert read_metrics(repo)["roc_auc"] > 0.65
        columns = check_contract(repo, own)
        check_report(repo, own, columns)
        check_service(repo, own, columns)
        check_monitor(repo, own, columns, tmp_path)
        assert np.isfinite(read_metrics(repo)["average_precision"])
    finally:
        sh(repo, "git", "checkout", "-q", "-f", "main")
        sh(repo, "dvc", "checkout", "-q", "--force")
