"""Own data with ``features: infer``: the frozen contract, and keys refused before any work."""

import copy
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from churn.core import entry
from churn.core.contract import freeze_yaml, read_contract
from churn.core.errors import ChurnError
from churn.core.params import load_params
from churn.stages import prepare
from synthetic import CUSTOM_DATA, make_custom_dataset
from test_cli import churn


def own_project(tmp_path: Path, monkeypatch, params_raw: dict) -> dict:
    """Work in ``tmp_path``, with params for the generated dataset at data/raw/own.csv."""
    params = copy.deepcopy(params_raw)
    params["data"] = {**CUSTOM_DATA}
    params["evaluate"]["slices"] = ["plan"]
    params["decision"]["value_column"] = "usage_minutes"
    params["paths"]["raw"] = "data/raw/own.csv"
    (tmp_path / "data/raw").mkdir(parents=True)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    return params


def test_freeze_prints_params_that_declare_the_same_contract(trained_inferred, tmp_path):
    frozen = churn("contract", "--freeze", cwd=trained_inferred)
    assert frozen.returncode == 0, frozen.stderr
    assert frozen.stdout.startswith(
        "# The data contract prepare resolved from data/raw/custom.csv (inferred).\n"
    )
    assert "    plan: {type: categorical, categories: [basic, plus, pro]}\n" in frozen.stdout
    assert "    support_calls: {type: numeric}  # seen in training: 0 … " in frozen.stdout
    # Pasted over data:, prepare resolves the very same rules, now declared.
    work = tmp_path / "frozen"
    shutil.copytree(trained_inferred / "data/raw", work / "data/raw")
    params = yaml.safe_load((trained_inferred / "params.yaml").read_text())
    params["data"] = yaml.safe_load(frozen.stdout)["data"]
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        assert entry.run(prepare.main) == 0
    before = json.loads((trained_inferred / "data/prepared/contract.json").read_text())
    after = json.loads((work / "data/prepared/contract.json").read_text())
    assert before.pop("inferred") is True
    assert after.pop("inferred") is False
    assert after == before
    for split in ("train", "test"):
        name = f"data/prepared/{split}.parquet"
        assert (work / name).read_bytes() == (trained_inferred / name).read_bytes()


def test_freeze_refuses_a_contract_of_another_or_an_older_raw_file(trained_inferred, tmp_path):
    """A prepare that failed on a new file left the old contract, printed as the new one's."""
    work = tmp_path / "work"
    shutil.copytree(trained_inferred, work)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["paths"]["raw"] = "data/raw/other.csv"
    shutil.copy(work / "data/raw/custom.csv", work / "data/raw/other.csv")
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    other = churn("contract", "--freeze", cwd=work)
    assert (other.returncode, other.stdout, other.stderr) == (
        1,
        "",
        "error: data/prepared/contract.json: made from another file than data/raw/other.csv: "
        "run dvc repro first\n",
    )
    params["paths"]["raw"] = "data/raw/custom.csv"
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    raw = (work / "data/raw/custom.csv").read_bytes()
    # The same size: only the md5 tells.
    (work / "data/raw/custom.csv").write_bytes(raw.replace(b"basic", b"BASIC", 1))
    changed = churn("contract", "--freeze", cwd=work)
    assert changed.stderr == (
        "error: data/raw/custom.csv: changed since data/prepared/contract.json was made from "
        "it: run dvc repro first\n"
    )
    (work / "data/raw/custom.csv").write_bytes(raw)
    assert churn("contract", "--freeze", cwd=work).returncode == 0
    resolved = json.loads((work / "data/prepared/contract.json").read_text())
    (work / "data/prepared/contract.json").write_text(json.dumps(resolved, indent=4))
    edited = churn("contract", "--freeze", cwd=work)
    assert edited.stderr == (
        "error: data/prepared/contract.json: not the file dvc.lock records: run dvc repro first\n"
    )


def test_freeze_before_prepare_ran_says_which_file_is_missing(tmp_path, params_raw):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_raw))
    result = churn("contract", "--freeze", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: data/prepared/contract.json: file not found (run the stage that makes it, "
        "or `dvc pull`)"
    )


@pytest.mark.parametrize(
    ("column", "values", "why"),
    [
        ("rownames", lambda n: np.arange(1, n + 1), "row numbers 1..300"),
        ("Unnamed: 0", lambda n: np.arange(n)[::-1], "row numbers 0..299"),  # a saved index
        ("account", lambda n: [f"A{i:05d}" for i in range(n)], "300 distinct values in 300 rows"),
    ],
)
def test_a_key_column_stops_prepare_before_anything_is_written(
    tmp_path, monkeypatch, capsys, params_raw, column, values, why
):
    params = copy.deepcopy(params_raw)
    params["data"] = {"target": "status", "positive_label": "left", "id": None, "features": "infer"}
    params["paths"]["raw"] = "data/raw/own.csv"
    frame = make_custom_dataset(300).drop(columns=["account"])
    frame.insert(0, column, values(300))
    raw = tmp_path / "data/raw/own.csv"
    raw.parent.mkdir(parents=True)
    frame.to_csv(raw, index=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    assert entry.run(prepare.main) == 1
    assert sorted(p.name for p in Path("data").rglob("*") if p.is_file()) == ["own.csv"]
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: data/raw/own.csv: {column!r} ({why}) looks like a row id or key, not a "
        f"feature: set data.id: {column} in params.yaml, or list data.features without it"
    )


@pytest.mark.parametrize(
    ("values", "first"),
    [
        (lambda n: [f"${1000 + 3 * i:,}.25" for i in range(n)], "$1,000.25"),
        (lambda n: [f"{i % 40}%" for i in range(n)], "0%"),
        (
            lambda n: [f"{1000 * (1 + i % 9):,}".replace(",", ".") + ",5" for i in range(n)],
            "1.000,5",
        ),
    ],
)
def test_numbers_written_as_text_stop_prepare_before_anything_is_written(
    tmp_path, monkeypatch, capsys, params_raw, values, first
):
    """Quoted in the CSV, they were read as text and became a category a value each."""
    params = copy.deepcopy(params_raw)
    params["data"] = {
        "target": "status",
        "positive_label": "left",
        "id": "account",
        "features": "infer",
    }
    params["paths"]["raw"] = "data/raw/own.csv"
    params["evaluate"]["slices"] = []
    frame = make_custom_dataset(300)
    frame.insert(1, "charges", values(300))
    raw = tmp_path / "data/raw/own.csv"
    raw.parent.mkdir(parents=True)
    frame.to_csv(raw, index=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    assert entry.run(prepare.main) == 1
    assert sorted(p.name for p in Path("data").rglob("*") if p.is_file()) == ["own.csv"]
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: data/raw/own.csv: 'charges' (numbers written like {first}) is a number, not a "
        "category (each value would be a column of its own): write it as plain numbers "
        "(1234.5) in the file, or list data.features in params.yaml with it as categorical"
    )


def test_a_frozen_contract_accepts_the_file_it_came_from_when_its_test_split_alone_has_a_value(
    tmp_path, monkeypatch, params_raw
):
    """A rare category or a missing value can fall in the test split alone.

    The frozen rules must still accept the file, and prepare write the same splits from it.
    """
    params = own_project(tmp_path, monkeypatch, params_raw)
    frame = make_custom_dataset(300)
    frame["support_calls"] = frame["support_calls"].astype(float)
    frame.to_csv("data/raw/own.csv", index=False)
    assert entry.run(prepare.main) == 0
    # The split depends on the labels and the seed alone: these rows stay in the test split.
    first, second = pd.read_parquet("data/prepared/test.parquet").index[:2]
    frame.loc[frame["account"] == first, "plan"] = "legacy"
    frame.loc[frame["account"] == second, "support_calls"] = np.nan
    frame.to_csv("data/raw/own.csv", index=False)
    assert entry.run(prepare.main) == 0
    inferred = read_contract("data/prepared/contract.json")
    assert "legacy" in inferred.columns["plan"].categories
    assert inferred.columns["support_calls"].nullable is True
    train = pd.read_parquet("data/prepared/train.parquet")
    assert "legacy" not in set(train["plan"])
    assert train["support_calls"].notna().all()
    splits = {
        p: Path(p).read_bytes()
        for p in ("data/prepared/train.parquet", "data/prepared/test.parquet")
    }
    params["data"] = yaml.safe_load(freeze_yaml(inferred, "data/raw/own.csv"))["data"]
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert entry.run(prepare.main) == 0
    assert {p: Path(p).read_bytes() for p in splits} == splits
    assert read_contract("data/prepared/contract.json") == replace(inferred, inferred=False)


def test_a_feature_without_a_value_is_refused_before_anything_is_written(
    tmp_path, monkeypatch, capsys, params_raw
):
    """The imputers dropped it: one input fewer, and scikit-learn's warning in every stage."""
    own_project(tmp_path, monkeypatch, params_raw)
    frame = make_custom_dataset(300)
    frame.insert(2, "allmiss", np.nan)
    frame.to_csv("data/raw/own.csv", index=False)
    assert entry.run(prepare.main) == 1
    assert capsys.readouterr().err == (
        "error: data/raw/own.csv: 'allmiss': no value in the file (300 rows), nothing to learn "
        "from; list data.features without it\n"
    )
    assert sorted(p.name for p in Path("data").rglob("*") if p.is_file()) == ["own.csv"]
    # One value, and it fell in the test split: the training split has none.
    test_row = prepare_test_ids(frame)[0]
    frame.loc[frame["account"] == test_row, "allmiss"] = 1.5
    frame.to_csv("data/raw/own.csv", index=False)
    assert entry.run(prepare.main) == 1
    assert capsys.readouterr().err == (
        "error: data/raw/own.csv: 'allmiss': no value in the training split (240 rows), "
        "nothing to learn from; list data.features without it\n"
    )
    assert sorted(p.name for p in Path("data").rglob("*") if p.is_file()) == ["own.csv"]


def prepare_test_ids(frame: pd.DataFrame) -> list[str]:
    """The ids prepare puts in the test split (they depend on the labels and the seed)."""
    params = load_params()
    whole = frame.set_index("account").assign(status=(frame["status"] == "left").astype(int).values)
    _, test = prepare.split(whole, "status", params.prepare)
    return list(test.index)


def with_fee(big: int) -> pd.DataFrame:
    """The own-data file with a column of integers, ``big`` in its row 8; written, returned."""
    frame = make_custom_dataset(300)
    fee = pd.Series(range(300), dtype=object) * 3
    fee.iloc[7] = big
    frame.insert(2, "fee", fee)
    frame.to_csv("data/raw/own.csv", index=False)
    return frame


def test_integers_past_64_bits_are_numbers_and_the_outputs_are_of_one_run(
    tmp_path, monkeypatch, params_raw
):
    """An integer of 2**70 is a number, and the three outputs are written together.

    It made its column categorical (inferred), or (declared numeric) failed the Parquet
    writer after train.parquet had been replaced.
    """
    params = own_project(tmp_path, monkeypatch, params_raw)
    frame = with_fee(2**70)
    assert entry.run(prepare.main) == 0
    contract = read_contract("data/prepared/contract.json")
    assert contract.columns["fee"].type == "numeric"
    train = pd.read_parquet("data/prepared/train.parquet")
    test = pd.read_parquet("data/prepared/test.parquet")
    assert pd.concat([train, test])["fee"].max() == 2.0**70
    # A failure converting the test split (the Parquet writer's) replaces nothing.
    before = {p: Path(p).read_bytes() for p in map(str, Path("data/prepared").iterdir())}
    frame.assign(fee=frame["fee"].astype(float) * 2).to_csv("data/raw/own.csv", index=False)
    calls = []

    def failing(table):
        calls.append(table)
        if len(calls) == 2:
            raise ChurnError("cannot convert")
        return real(table)

    real = prepare.io.parquet_table
    monkeypatch.setattr(prepare.io, "parquet_table", failing)
    assert entry.run(prepare.main) == 1
    assert len(calls) == 2
    assert {p: Path(p).read_bytes() for p in before} == before
    assert params["paths"]["train"] in before


def test_an_integer_past_float64_is_a_value_the_contract_names(
    tmp_path, monkeypatch, capsys, params_raw
):
    """309 digits or more: an OverflowError traceback once such integers were read as floats."""
    own_project(tmp_path, monkeypatch, params_raw)
    with_fee(10**400)
    assert entry.run(prepare.main) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-2].startswith("error: data/raw/own.csv: ")
    assert lines[-1] == "  fee: is a number: 1 bad row(s) (row 8: inf)"
    assert not Path("data/prepared").exists()
