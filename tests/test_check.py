"""`churn check` and the params cross-checks prepare makes before any work."""

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from churn.core import entry
from churn.core.contract import check_header, check_slices
from churn.core.errors import ChurnError
from churn.core.params import DataParams
from churn.stages import evaluate, featurize, prepare, train
from synthetic import make_custom_dataset
from test_cli import churn

INFER = DataParams(target="status", positive_label="left", id="account", features="infer")
HEADER = ["account", "plan", "usage_minutes", "status"]


def test_check_header_gives_the_feature_columns():
    assert check_header(INFER, HEADER, "x.csv") == ["plan", "usage_minutes"]
    declared = DataParams(
        target="status", positive_label="left", id=None, features={"plan": {"type": "categorical"}}
    )
    assert check_header(declared, ["plan", "status"], "x.csv") == ["plan"]
    with pytest.raises(ChurnError) as err:
        check_header(declared, ["plan", "status", "extra"], "x.csv")
    assert str(err.value).startswith("x.csv: unexpected column(s) 'extra'")
    with pytest.raises(ChurnError) as err:
        check_header(INFER, ["plan", "status"], "x.csv")
    assert str(err.value) == "x.csv: missing column(s) 'account' (found: plan, status)"
    for header, says in [
        (["account", "status", "plan", "plan"], "x.csv: header: column 'plan' appears 2 times"),
        (["account", "status", "plan", ""], "x.csv: header: column 4 has no name"),
    ]:
        with pytest.raises(ChurnError) as err:
            check_header(INFER, header, "x.csv")
        assert str(err.value) == says


def test_slices_must_name_features():
    check_slices(["plan"], ["plan", "usage_minutes"], "x.csv")
    with pytest.raises(ChurnError) as err:
        check_slices(["contract", "plan", "status"], ["plan", "usage_minutes"], "x.csv")
    assert str(err.value) == (
        "params.yaml: evaluate.slices: 'contract', 'status' are not features of x.csv "
        "(features: plan, usage_minutes)"
    )
    with pytest.raises(ChurnError) as err:
        check_slices(["contract"], ["plan"], "x.csv")
    assert "'contract' is not a feature of x.csv" in str(err.value)


@pytest.fixture
def own(tmp_path, params_raw) -> Path:
    """A work dir with the generated dataset and params for it, Telco's slices left in place."""
    params = copy.deepcopy(params_raw)
    params["paths"]["raw"] = "data/raw/own.csv"
    params["data"] = {"target": "status", "positive_label": "left", "id": "account",
                      "features": "infer"}  # fmt: skip
    raw = tmp_path / "data/raw/own.csv"
    raw.parent.mkdir(parents=True)
    make_custom_dataset(200).to_csv(raw, index=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


TELCO_SLICES = (
    "error: params.yaml: evaluate.slices: 'contract', 'senior_citizen' are not features of "
    "data/raw/own.csv (features: plan, usage_minutes, region, support_calls)"
)


TELCO_VALUE = (
    "error: params.yaml: decision.value_column: 'monthly_charges' is not a feature of "
    "data/raw/own.csv (features: plan, usage_minutes, region, support_calls)"
)


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("monthly_charges", "'monthly_charges' is not a numeric feature column"),
        ("plan", "'plan' is not a numeric feature column"),  # inferred categorical
    ],
)
def test_prepare_stops_on_a_value_column_train_would_refuse(
    own, monkeypatch, capsys, column, message
):
    """Found by train, after prepare and featurize had run and replaced their outputs."""
    params = yaml.safe_load((own / "params.yaml").read_text())
    params["evaluate"]["slices"] = ["plan"]
    params["decision"]["value_column"] = column
    (own / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(own)
    assert entry.run(prepare.main) == 1
    assert (
        capsys.readouterr().err.strip() == f"error: params.yaml: decision.value_column: {message}"
    )
    assert [p.name for p in Path("data").rglob("*") if p.is_file()] == ["own.csv"]


def test_evaluate_names_a_slice_set_after_prepare_before_any_work(own, monkeypatch, capsys):
    """`dvc exp run -S evaluate.slices=...` reruns evaluate alone: prepare's check never ran."""
    params = yaml.safe_load((own / "params.yaml").read_text())
    params["evaluate"]["slices"] = ["plan"]
    params["decision"]["value_column"] = "usage_minutes"
    (own / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(own)
    for stage in (prepare, featurize, train):
        assert entry.run(stage.main) == 0
    params["evaluate"]["slices"] = ["plan", "contract"]
    (own / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    capsys.readouterr()
    assert entry.run(evaluate.main) == 1
    assert capsys.readouterr().err.strip() == (
        "error: params.yaml: evaluate.slices: 'contract' is not a feature of "
        f"{params['paths']['contract']} (features: usage_minutes, support_calls, plan, region)"
    )
    assert not Path(params["paths"]["reports"]).exists()


def test_prepare_stops_on_telco_slices_before_writing_anything(own, monkeypatch, capsys):
    monkeypatch.chdir(own)
    assert entry.run(prepare.main) == 1
    assert capsys.readouterr().err.strip() == TELCO_SLICES
    assert [p.name for p in Path("data").rglob("*") if p.is_file()] == ["own.csv"]


def test_churn_check_finds_it_in_the_header(own):
    found = churn("check", cwd=own)
    assert (found.returncode, found.stderr.strip()) == (1, TELCO_SLICES)
    params = yaml.safe_load((own / "params.yaml").read_text())
    params["evaluate"]["slices"] = ["plan"]
    (own / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    value = churn("check", cwd=own)  # Telco's value column, left in place too
    assert (value.returncode, value.stderr.strip()) == (1, TELCO_VALUE)
    params["decision"]["value_column"] = "usage_minutes"
    (own / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    fine = churn("check", cwd=own)
    assert (fine.returncode, fine.stdout) == (
        0,
        "ok: params.yaml and data/raw/own.csv: 4 inferred feature column(s), target 'status', "
        "id account\n",
    )
    params["train"]["n_estimtors"] = 5  # the typo from the issue
    (own / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    typo = churn("check", cwd=own)
    assert typo.returncode == 1
    assert typo.stderr.startswith("error: params.yaml: train.n_estimtors: unknown key (allowed: ")
    (own / "data/raw/own.csv").unlink()
    del params["train"]["n_estimtors"]
    (own / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    gone = churn("check", cwd=own)
    assert (gone.returncode, gone.stderr) == (
        1,
        "error: data/raw/own.csv: file not found (dvc pull, or dvc repro to fetch it)\n",
    )
    (own / "data/raw/own.csv").mkdir()  # "not found" sent the user looking for it
    folder = churn("check", cwd=own)
    assert (folder.returncode, folder.stderr) == (
        1,
        "error: data/raw/own.csv: not a regular file (paths.raw names a CSV file)\n",
    )


def test_churn_check_imports_no_pandas_machinery_it_does_not_need(own):
    # A header check must stay quick: no scikit-learn, pandera or dvc behind it.
    probe = churn(
        "check", cwd=own, PYTHONPROFILEIMPORTTIME="1"
    )  # -X importtime's environment form: every import on stderr
    imported = {line.split("|")[-1].strip() for line in probe.stderr.splitlines() if "|" in line}
    assert {"sklearn", "pandera", "dvc"}.isdisjoint(imported)


def test_churn_check_refuses_an_output_over_a_file_git_tracks(own):
    """DVC refuses a tracked output only after the stage has written over the file."""
    params = yaml.safe_load((own / "params.yaml").read_text())
    params["evaluate"]["slices"] = ["plan"]
    params["decision"]["value_column"] = "usage_minutes"
    params["paths"]["card"] = "README.md"
    (own / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (own / "README.md").write_text("ours\n")
    (own / "reports").mkdir()
    (own / "reports/.gitignore").write_text("/metrics.json\n")  # DVC's, beside its outputs
    (own / "lib").mkdir()
    (own / "lib/a*b.py").write_text("")  # a file name with a pattern character
    outside = churn("check", cwd=own)  # not a git work tree: nothing to ask
    assert outside.returncode == 0, outside.stderr
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=own, check=True)
    subprocess.run([*git, "add", "README.md", "reports", "lib"], cwd=own, check=True)
    subprocess.run([*git, "commit", "-qm", "files"], cwd=own, check=True)
    tracked = churn("check", cwd=own)
    assert (tracked.returncode, tracked.stderr) == (
        1,
        "error: params.yaml: paths.card: README.md is a file git tracks; outputs go through "
        "DVC, not git: choose another path\n",
    )
    for card, ok in (("lib", False), ("lib/a?b.py", True), ("reports/card.md", True)):
        params["paths"]["card"] = card
        (own / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        found = churn("check", cwd=own)
        assert found.returncode == (0 if ok else 1), found.stderr
    assert found.stdout.startswith("ok: params.yaml")
    params["paths"]["card"] = "lib"
    (own / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert churn("check", cwd=own).stderr == (
        "error: params.yaml: paths.card: lib holds files git tracks (lib/a*b.py); outputs go "
        "through DVC, not git: choose another path\n"
    )


def test_prepare_writes_no_output_when_a_later_one_cannot_be_written(own, monkeypatch, capsys):
    """paths.contract a directory: train.parquet was replaced before the contract failed."""
    params = yaml.safe_load((own / "params.yaml").read_text())
    params["evaluate"]["slices"] = ["plan"]
    params["decision"]["value_column"] = "usage_minutes"
    params["paths"]["contract"] = "data/prepared/contract"
    (own / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (own / "data/prepared/contract").mkdir(parents=True)
    monkeypatch.chdir(own)
    assert entry.run(prepare.main) == 1
    said = capsys.readouterr().err.strip()
    assert said == "error: data/prepared/contract: Is a directory (a file goes there)"
    assert [p.name for p in Path("data").rglob("*") if p.is_file()] == ["own.csv"]
