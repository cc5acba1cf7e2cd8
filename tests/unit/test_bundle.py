"""core.bundle: a model version read whole at one revision, every file checked before use.

Git is the real program in a throwaway repository; the workspace tests read a plain
directory. Nothing here may come from the repository the tests live in.
"""

import hashlib
import json
import pickle
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from churn.core.bundle import (
    check_model,
    contract_at,
    load_bundle,
    params_at,
    recorded_decision,
)
from churn.core.contract import Column, Contract
from churn.core.errors import ChurnError, clip
from unit.test_integrity import sh_git, write_tree

PATHS = {
    "raw": "in/raw.csv",
    "train": "out/train.parquet",
    "test": "out/test.parquet",
    "contract": "out/contract.json",
    "featurizer": "out/featurizer.pkl",
    "model": "out/model.pkl",
    "reports": "rep",
    "predictions": "rep/predictions.csv",
    "card": "rep/card.md",
}


def _model() -> bytes:
    """A fitted two-class classifier of the contract's one feature ``n``, pickled."""
    fitted = LogisticRegression().fit(pd.DataFrame({"n": [0.0, 1.0, 2.0, 3.0]}), [0, 0, 1, 1])
    return pickle.dumps(fitted)


MODEL = _model()
CONTRACT = Contract("y", "yes", None, "row_id", False, {"n": Column("numeric", nullable=False)})
CONTRACT_BYTES = json.dumps(CONTRACT.to_dict()).encode()
METRICS = json.dumps({"roc_auc": 0.81}).encode()
CARD = b"# Card\n"
NOT_A_CONTRACT = b'{"not": "it"}'


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 (DVC's hash)


def tree(
    threshold: float = 0.4, drop_md5: str = "", vouched: dict | None = None, **override: bytes
) -> dict[str, bytes]:
    """The files of one version: params (with a section a later version may lack), lock, outputs.

    ``vouched`` replaces outputs before their md5s are recorded; ``override`` after.
    """
    files = {
        PATHS["model"]: MODEL,
        PATHS["contract"]: CONTRACT_BYTES,
        "rep/metrics.json": METRICS,
        PATHS["card"]: CARD,
        **(vouched or {}),
    }
    recorded = {path: md5(data) for path, data in files.items() if path != drop_md5}
    files.update(override)  # after the md5s: an override is a file the lock does not vouch for
    outs = [{"path": path, "md5": value} for path, value in recorded.items()]
    params = {"paths": PATHS, "evaluate": {"threshold": threshold, "later_key": 1}, "other": {}}
    return {
        **files,
        "params.yaml": yaml.safe_dump(params).encode(),
        "dvc.lock": yaml.safe_dump({"stages": {"s": {"outs": outs}}}).encode(),
    }


RELEASE = "churn-model@v1.0.0"
TREES = {
    RELEASE: tree(),
    "churn-model@v2.0.0": tree(threshold=0.7, **{PATHS["contract"]: NOT_A_CONTRACT}),
    "churn-model@v3.0.0": tree(drop_md5=PATHS["card"]),
    "churn-model@v4.0.0": tree(threshold=1.5),
    "churn-model@v5.0.0": tree(vouched={PATHS["contract"]: NOT_A_CONTRACT}),
    "churn-model@v6.0.0": {**tree(), "params.yaml": b"a: b: c\n"},
    "churn-model@v7.0.0": tree(),  # its tag records another model md5
}
TAG_MD5 = {"churn-model@v7.0.0": "0" * 32}


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """One annotated release tag per tree, each recording its model's md5; workspace empty."""
    root = tmp_path_factory.mktemp("bundles")
    sh_git(root, "init", "-q")
    for tag, files in TREES.items():
        sh_git(root, "rm", "-rq", "--ignore-unmatch", ".")
        write_tree(root, files)
        sh_git(root, "add", "-A")
        sh_git(root, "commit", "-q", "-m", tag)
        recorded = TAG_MD5.get(tag, md5(MODEL))
        sh_git(root, "tag", "-a", "-m", f"{tag}\n\nmodel-md5: {recorded}\n", tag)
    sh_git(root, "rm", "-rq", ".")
    return root


def test_a_release_is_read_whole_at_its_tag(history):
    bundle = load_bundle(RELEASE, root=history)
    assert bundle.model.coef_.tolist() == pickle.loads(MODEL).coef_.tolist()
    assert (bundle.md5, bundle.version, bundle.threshold) == (md5(MODEL), RELEASE, 0.4)
    assert bundle.contract == CONTRACT
    assert bundle.metrics == {"roc_auc": 0.81}
    assert bundle.card == "# Card\n"
    assert bundle.commit == sh_git(history, "rev-parse", f"{RELEASE}^{{commit}}").strip()
    assert contract_at(RELEASE, root=history) == CONTRACT


def test_a_stage_ref_is_versioned_by_its_release(history):
    """Answers stored as churn-model#prod named no model once prod moved on."""
    sh_git(history, "tag", "-a", "-m", "gto", "churn-model#prod#9", f"{RELEASE}^{{commit}}")
    try:
        bundle = load_bundle("churn-model#prod", root=history)
        assert bundle.version == f"{RELEASE} (churn-model#prod)"
        assert load_bundle("churn-model#prod#9", root=history).version == (
            f"{RELEASE} (churn-model#prod#9)"
        )
    finally:
        sh_git(history, "tag", "-d", "churn-model#prod#9")


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        (
            "churn-model@v2.0.0",
            f"out/contract.json: md5 {md5(NOT_A_CONTRACT)} does not match "
            f"{md5(CONTRACT_BYTES)} in churn-model@v2.0.0:dvc.lock: refusing to use it",
        ),
        (
            "churn-model@v3.0.0",
            "churn-model@v3.0.0:dvc.lock records no md5 for rep/card.md: refusing to use it",
        ),
        (
            "churn-model@v4.0.0",
            "churn-model@v4.0.0:params.yaml: evaluate.threshold: Input should be less than 1 "
            "(got 1.5)",
        ),
    ],
)
def test_a_file_the_tag_does_not_vouch_for_stops_the_load(history, tag, message):
    with pytest.raises(ChurnError) as err:
        load_bundle(tag, root=history)
    assert str(err.value) == message


def test_metrics_that_are_not_an_object_are_named(tmp_path):
    # Lock and bytes agree, but the file is not what evaluate writes.
    files = tree(**{"rep/metrics.json": b"[1]"})
    outs = [{"path": p, "md5": md5(files[p])} for p in files if "/" in p]
    files["dvc.lock"] = yaml.safe_dump({"stages": {"s": {"outs": outs}}}).encode()
    write_tree(tmp_path, files)
    with pytest.raises(ChurnError) as err:
        load_bundle(None, root=tmp_path)
    assert str(err.value) == "rep/metrics.json: expected a JSON object"


def test_the_workspace_is_read_from_disk_and_checked_against_its_lock(tmp_path):
    write_tree(tmp_path, tree(threshold=0.25))
    bundle = load_bundle(None, root=tmp_path)
    assert bundle.version == f"workspace-{md5(MODEL)[:12]}"
    assert (bundle.threshold, bundle.metrics) == (0.25, {"roc_auc": 0.81})
    assert bundle.contract == CONTRACT
    (tmp_path / PATHS["contract"]).write_bytes(CONTRACT_BYTES + b" ")
    with pytest.raises(ChurnError) as err:
        contract_at(None, root=tmp_path)
    assert str(err.value).endswith("in dvc.lock: refusing to use it")
    assert str(err.value).startswith("out/contract.json: md5 ")


def test_params_at_reads_only_paths_and_threshold(tmp_path):
    write_tree(tmp_path, {"params.yaml": b"paths: {}\nevaluate: {threshold: 0.5}\n"})
    with pytest.raises(ChurnError) as err:
        params_at(None, root=tmp_path)
    assert str(err.value) == f"{tmp_path / 'params.yaml'}: paths.raw: missing key"
    with pytest.raises(ChurnError) as err:
        params_at(None, root=tmp_path / "nowhere")
    assert str(err.value) == f"{tmp_path / 'nowhere' / 'params.yaml'}: file not found"
    write_tree(tmp_path, {"params.yaml": b"- a list\n"})
    with pytest.raises(ChurnError) as err:
        params_at(None, root=tmp_path)
    assert str(err.value).endswith("params.yaml: expected a mapping of sections, got list")


def test_a_ref_that_looks_like_an_option_is_a_name_for_params_at(tmp_path):
    """``--output=FILE`` as a MODEL_REF must not become git show's --output."""
    repo, out = tmp_path / "repo", tmp_path / "injected"
    repo.mkdir()
    params = (Path(__file__).resolve().parents[2] / "params.yaml").read_bytes()
    write_tree(repo, {"params.yaml": params})
    sh_git(repo, "init", "-q")
    sh_git(repo, "add", "params.yaml")
    sh_git(repo, "commit", "-qm", "x")
    sh_git(repo, "update-ref", f"refs/tags/--output={out}", "HEAD")
    assert params_at(f"--output={out}", root=repo).paths.model == "models/model.pkl"
    assert not list(tmp_path.glob("injected*"))


def test_params_file_that_is_a_directory_is_named(tmp_path):
    """It said "file not found"; at a revision, git show's listing was read as YAML text."""
    repo = tmp_path / "repo"
    write_tree(repo, {"conf/params.yaml": b"x: 1\n"})
    with pytest.raises(ChurnError) as err:
        params_at(None, root=repo, params_file="conf")
    assert str(err.value) == f"{repo / 'conf'}: not a regular file"
    sh_git(repo, "init", "-q")
    sh_git(repo, "add", "-A")
    sh_git(repo, "commit", "-qm", "x")
    with pytest.raises(ChurnError) as err:
        params_at("HEAD", root=repo, params_file="conf")
    assert str(err.value) == "HEAD:conf: not a file"


def test_an_unknown_ref_is_one_line(history):
    with pytest.raises(ChurnError) as err:
        load_bundle("churn-model@v9.9.9", root=history)
    assert str(err.value).startswith("churn-model@v9.9.9: no such")
    assert "\n" not in str(err.value)


def test_a_vouched_for_file_that_is_no_contract_is_named(tmp_path):
    files = tree()
    files[PATHS["contract"]] = NOT_A_CONTRACT
    outs = [{"path": p, "md5": md5(files[p])} for p in files if "/" in p]
    files["dvc.lock"] = yaml.safe_dump({"stages": {"s": {"outs": outs}}}).encode()
    write_tree(tmp_path, files)
    with pytest.raises(ChurnError) as err:
        contract_at(None, root=tmp_path)
    assert str(err.value) == "out/contract.json: not a contract written by prepare ('columns')"


def test_a_model_the_lock_does_not_vouch_for_is_never_unpickled(tmp_path):
    write_tree(tmp_path, tree())
    (tmp_path / PATHS["model"]).write_bytes(pickle.dumps("swapped"))
    with pytest.raises(ChurnError) as err:
        load_bundle(None, root=tmp_path)
    assert str(err.value) == (
        f"out/model.pkl: md5 {md5(pickle.dumps('swapped'))} does not match {md5(MODEL)} in "
        "dvc.lock: refusing to unpickle it"
    )


def test_what_a_tag_holds_is_named_at_the_tag(history):
    with pytest.raises(ChurnError) as err:
        load_bundle("churn-model@v5.0.0", root=history)
    assert str(err.value) == (
        "churn-model@v5.0.0:out/contract.json: not a contract written by prepare ('columns')"
    )
    with pytest.raises(ChurnError) as err:
        load_bundle("churn-model@v6.0.0", root=history)
    assert str(err.value).startswith("churn-model@v6.0.0:params.yaml: not valid YAML")
    with pytest.raises(ChurnError) as err:
        load_bundle("churn-model@v7.0.0", root=history)
    assert str(err.value) == (
        f"out/model.pkl: md5 {md5(MODEL)} does not match {'0' * 32} in the release tag: "
        "refusing to unpickle it"
    )


def test_metrics_that_are_not_json_are_named(tmp_path):
    write_tree(tmp_path, tree(vouched={"rep/metrics.json": b"{"}))
    with pytest.raises(ChurnError) as err:
        load_bundle(None, root=tmp_path)
    assert str(err.value).startswith("rep/metrics.json: not JSON (")


def test_the_default_root_is_the_working_directory(tmp_path, monkeypatch):
    write_tree(tmp_path, tree(threshold=0.3))
    monkeypatch.chdir(tmp_path)
    assert load_bundle(None).threshold == 0.3
    assert contract_at(None) == CONTRACT
    assert params_at(None).evaluate.threshold == 0.3


POLICY = {"policy": "max_profit", "threshold": 0.2625, "folds": 5}
DECISION = {"contact_cost": 50.0, "retention_rate": 0.3, "threshold": "max_profit"}


def decided_tree(policy: dict, vouched: bool = True) -> dict[str, bytes]:
    """A version whose train recorded its decision policy (paths.decision), issue 16 on."""
    decision = {"out/decision.json": json.dumps(policy).encode()}
    files = tree(vouched=decision) if vouched else tree(**decision)
    params = {"paths": {**PATHS, "decision": "out/decision.json"}, "decision": DECISION}
    return {**files, "params.yaml": yaml.safe_dump(params).encode()}


def test_the_threshold_is_the_one_train_recorded_with_its_assumptions(tmp_path):
    write_tree(tmp_path, decided_tree(POLICY))
    bundle = load_bundle(None, root=tmp_path)
    assert bundle.threshold == 0.2625
    assert bundle.decision == {
        **POLICY,
        "assumptions": {"contact_cost": 50.0, "retention_rate": 0.3},
    }


def test_the_assumptions_are_the_ones_the_lock_recorded_not_a_later_edit(tmp_path):
    """A contact cost of 80 in params.yaml was stated beside a threshold chosen at 50."""
    files = decided_tree(POLICY)
    lock = yaml.safe_load(files["dvc.lock"])
    lock["stages"] = {
        "train": {"params": {"params.yaml": {"decision.contact_cost": 50.0}}},
        "evaluate": {"params": {"params.yaml": {"decision": DECISION}}},
        **lock["stages"],
    }
    edited = {"paths": {**PATHS, "decision": "out/decision.json"}}
    edited["decision"] = {**DECISION, "contact_cost": "fifty"}
    files |= {"dvc.lock": yaml.safe_dump(lock).encode(), "params.yaml": yaml.safe_dump(edited)}
    write_tree(tmp_path, {k: v if isinstance(v, bytes) else v.encode() for k, v in files.items()})
    assert load_bundle(None, root=tmp_path).decision["assumptions"] == {
        "contact_cost": 50.0,
        "retention_rate": 0.3,
    }


@pytest.mark.parametrize(
    "lock",
    [
        {},
        {"stages": None},
        {"stages": {"s": None}},
        {"stages": {"s": {"params": []}}},
        {"stages": {"s": {"params": {"params.yaml": None}}}},
        {"stages": {"s": {"params": {"params.yaml": {"decision": "x"}}}}},
        {"stages": {"s": {"params": {"other.yaml": {"decision": {"a": 1}}}}}},
    ],
)
def test_a_lock_without_a_recorded_decision_section_has_none(lock):
    assert recorded_decision(lock) is None


def test_the_first_stage_recording_the_section_gives_it():
    lock = {"stages": {"a": {"params": {"params.yaml": {"decision.value": 1}}}}}
    lock["stages"]["b"] = {"params": {"params.yaml": {"decision": {"value": 2}}}}
    lock["stages"]["c"] = {"params": {"params.yaml": {"decision": {"value": 3}}}}
    assert recorded_decision(lock) == {"value": 2}


def test_a_version_before_the_decision_file_has_a_fixed_threshold(tmp_path):
    write_tree(tmp_path, tree(threshold=0.45))
    assert load_bundle(None, root=tmp_path).decision == {"policy": "fixed", "threshold": 0.45}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            decided_tree({**POLICY, "threshold": 1.5}),
            "out/decision.json: threshold: Input should be less than or equal to 1 (got 1.5)",
        ),
        (
            decided_tree({"threshold": 0.5}),
            "out/decision.json: policy: missing key",
        ),
        (
            decided_tree(POLICY, vouched=False),
            "dvc.lock records no md5 for out/decision.json: refusing to use it",
        ),
        (
            {**tree(), "params.yaml": yaml.safe_dump({"paths": PATHS}).encode()},
            "params.yaml: no decision path and no threshold",
        ),
    ],
)
def test_a_bad_or_unvouched_decision_file_stops_the_load(tmp_path, files, message):
    write_tree(tmp_path, files)
    with pytest.raises(ChurnError) as err:
        load_bundle(None, root=tmp_path)
    assert str(err.value) == message


def test_a_model_file_that_is_no_model_of_the_contract_is_named(tmp_path):
    """What `dvc commit` records is any bytes: score raised a traceback, the service a 500."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.DataFrame({"n": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "m": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
    frame["k"] = frame["m"]
    y = [0, 0, 0, 1, 1, 1]
    three = LogisticRegression().fit(frame[["n"]], [0, 1, 2, 0, 1, 2])
    wide = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame[["n", "m"]], y)
    other = LogisticRegression().fit(frame[["m", "k"]], y)
    contract = replace(CONTRACT, columns={**CONTRACT.columns, "j": CONTRACT.columns["n"]})
    mismatch = "fitted on other columns than its revision's contract"
    said = {
        "a dict": ({"weights": [1, 2]}, "holds a dict, not a classifier (no predict_proba)"),
        "a scaler": (
            StandardScaler().fit(frame),
            "holds a StandardScaler, not a classifier (no predict_proba)",
        ),
        "unfitted": (LogisticRegression(), "a classifier never fitted (no classes_)"),
        "three classes": (three, "a classifier of 3 classes, not of two"),
        "a column more": (wide, f"{mismatch}; the contract lacks 'm'"),
        "other columns": (
            other,
            f"{mismatch}; the contract lacks 'm', 'k'; the model does not read 'n', 'j'",
        ),
    }
    for what, (model, message) in said.items():
        with pytest.raises(ChurnError) as err:
            check_model(model, contract if what == "other columns" else CONTRACT, "v1:m.pkl")
        assert str(err.value) == f"v1:m.pkl: {message}", what
    long = [f"column_{i:03d}_with_a_long_name" for i in range(12)]
    wide = pd.DataFrame({name: [0.0, 1.0, 2.0, 3.0] for name in long})
    many = LogisticRegression().fit(wide, [0, 0, 1, 1])
    unread = {name: CONTRACT.columns["n"] for name in long}
    with pytest.raises(ChurnError) as err:
        check_model(many, replace(CONTRACT, columns=unread | CONTRACT.columns), "v1:m.pkl")
    assert str(err.value) == f"v1:m.pkl: {mismatch}; the model does not read 'n'"
    with pytest.raises(ChurnError) as err:
        check_model(many, CONTRACT, "v1:m.pkl")
    listed = ", ".join(map(repr, long))
    assert len(listed) > 120
    assert str(err.value) == (
        f"v1:m.pkl: {mismatch}; the contract lacks {clip(listed, 120)}; the model does not read 'n'"
    )
    with pytest.raises(ChurnError) as err:  # a contract of more columns than the model read
        check_model(pickle.loads(MODEL), replace(CONTRACT, columns=CONTRACT.columns | unread), "x")
    assert str(err.value) == f"x: {mismatch}; the model does not read {clip(listed, 120)}"
    check_model(pickle.loads(MODEL), CONTRACT, "v1:m.pkl")  # the real thing passes
    # Fitted on an array, a model knows no column names: nothing to compare.
    check_model(LogisticRegression().fit(frame[["n"]].to_numpy(), y), CONTRACT, "v1:m.pkl")
    write_tree(tmp_path, tree(vouched={PATHS["model"]: pickle.dumps({"weights": [1, 2]})}))
    with pytest.raises(ChurnError) as err:  # vouched for by dvc.lock, and still refused
        load_bundle(None, root=tmp_path)
    assert str(err.value) == "out/model.pkl: holds a dict, not a classifier (no predict_proba)"


def test_a_model_is_read_from_a_subfolder_of_its_project(tmp_path):
    """From src/, a release's dvc.lock was looked for as src/dvc.lock: "its commit has none"."""
    write_tree(tmp_path, {**tree(), ".dvc/config": b"", "src/x.py": b""})
    sh_git(tmp_path, "init", "-q")
    sh_git(tmp_path, "add", "-A")
    sh_git(tmp_path, "commit", "-q", "-m", RELEASE)
    sh_git(tmp_path, "tag", "-a", "-m", f"{RELEASE}\n\nmodel-md5: {md5(MODEL)}\n", RELEASE)
    for ref in (RELEASE, None):
        bundle = load_bundle(ref, root=tmp_path / "src")
        assert (bundle.md5, bundle.threshold) == (md5(MODEL), 0.4)
        assert contract_at(ref, root=tmp_path / "src") == CONTRACT
    assert load_bundle(RELEASE, root=tmp_path / "src").version == RELEASE


def test_a_ref_outside_any_git_repository_says_so(tmp_path):
    write_tree(tmp_path, tree())
    with pytest.raises(ChurnError) as err:
        load_bundle(RELEASE, root=tmp_path)
    assert str(err.value) == f"{tmp_path}: not inside a git repository, which {RELEASE} names"


def test_gits_other_refusals_are_passed_on_in_its_words(tmp_path):
    """A repository git refuses (another owner's, a newer format) is not "no repository"."""
    write_tree(tmp_path, tree())
    sh_git(tmp_path, "init", "-q")
    sh_git(tmp_path, "config", "core.repositoryformatversion", "99")
    with pytest.raises(ChurnError) as err:
        load_bundle(RELEASE, root=tmp_path)
    assert "Expected git repo version <= 1, found 99" in str(err.value)
    assert "not inside a git repository" not in str(err.value)
