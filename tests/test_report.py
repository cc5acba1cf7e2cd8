import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from churn.core import decision
from churn.core.params import ReportParams
from churn.core.stats import DECISION, HEADLINE, HIGHER_IS_BETTER, Comparison, score
from churn.ops.report import (
    ABSENT,
    _num,
    build_report,
    contract_change,
    data_section,
    data_switch,
    flatten,
    mermaid_charts,
    metrics_table,
    params_diff,
    params_table,
    png_charts,
    verdict_table,
)
from churn.ops.results import Side, compare, same_rows, same_valuation

RNG = np.random.default_rng(5)
Y = (RNG.random(400) < 0.3).astype(int)
BASE_P = np.clip(0.3 + 0.3 * Y + RNG.normal(0, 0.2, 400), 0.01, 0.99)
HEAD_P = np.clip(0.2 + 0.6 * Y + RNG.normal(0, 0.15, 400), 0.01, 0.99)
PARAMS = ReportParams(resamples=200, seed=1, confidence=0.95)


def predictions(proba, ids=None):
    return pd.DataFrame(
        {"id": ids if ids is not None else np.arange(400), "label": Y, "probability": proba}
    )


def side(label, proba, params=None, lock=None, ids=None):
    return Side(
        label,
        params=params or {"train": {"C": 1.0}, "paths": {"raw": "data/raw/x.csv"}},
        lock=lock or {"stages": {"evaluate": {"outs": [{"path": "p.csv", "md5": str(proba[0])}]}}},
        metrics=score(Y, proba, 0.5),
        predictions=predictions(proba, ids),
    )


def test_flatten_and_params_diff():
    base = {"train": {"model": "lr", "C": 1.0, "old": 1}, "seed": 1}
    head = {"train": {"model": "rf", "C": 1.0, "new": None}, "seed": 1}
    assert flatten(base) == {"train.model": "lr", "train.C": 1.0, "train.old": 1, "seed": 1}
    assert params_diff(base, head) == [
        ("train.model", "lr", "rf"),
        ("train.new", ABSENT, None),
        ("train.old", 1, ABSENT),
    ]


def test_the_params_table_keeps_its_cells_and_tells_absent_from_null():
    """A `|` in a slice name added columns; an added null read `null` | `null`, unchanged."""
    rows = params_diff(
        {"evaluate": {"slices": ["plan"]}, "train": {}, "decision": {"k": 0.5}},
        {"evaluate": {"slices": ["plan | tier`x", "sénior"]}, "train": {"class_weight": None}},
    )
    assert params_table(rows, "main").splitlines() == [
        "| param | main | this branch |",
        "|---|---|---|",
        "| `decision.k` | `0.5` | (absent) |",
        '| `evaluate.slices` | `["plan"]` | ``["plan \\| tier`x", "sénior"]`` |',
        "| `train.class_weight` | (absent) | `null` |",
    ]


def test_metrics_table_arrows_follow_direction():
    base = {
        **dict.fromkeys(
            ["roc_auc", "average_precision", "precision", "recall", "f1", "accuracy"], 0.5
        ),
        "log_loss": 0.5,
        "brier": 0.2,
    }
    head = {**base, "roc_auc": 0.6, "log_loss": 0.4, "brier": 0.25}
    table = metrics_table(base, head, "main")
    assert "| roc_auc | 0.5000 | 0.6000 | +0.1000 | +20.00 % | 🟢 ↑ |" in table
    assert "| log_loss | 0.5000 | 0.4000 | -0.1000 | -20.00 % | 🟢 ↓ |" in table
    assert "| brier | 0.2000 | 0.2500 | +0.0500 | +25.00 % | 🔴 ↑ |" in table
    assert "| recall | 0.5000 | 0.5000 | +0.0000 | +0.00 % | = |" in table


def test_a_small_difference_or_bound_is_not_shown_as_zero():
    """A lower bound of +0.00004 read "+0.0000" beside "better": the interval is above 0."""
    c = Comparison("roc_auc", 0.8, 0.80005, 0.00004, 0.0001, paired=True)
    assert c.verdict == "better"
    row = verdict_table([c], 0.95, 200).splitlines()[2]
    assert row == "| roc_auc | +0.00005 | [+0.00004, +0.0001] | ✅ better |"
    base = dict.fromkeys(HIGHER_IS_BETTER, 0.5)
    table = metrics_table(base, {**base, "roc_auc": 0.500004}, "main")
    assert "| roc_auc | 0.5000 | 0.5000 | +0.000004 | +0.001 % | 🟢 ↑ |" in table
    assert "| recall | 0.5000 | 0.5000 | +0.0000 | +0.00 % | = |" in table
    assert _num("profit", -0.04, "+") == "-0.04"
    assert _num("profit", 1234.56, "+") == "+1,234.6"


def test_same_rows_ignores_order_but_not_ids():
    a = predictions(BASE_P)
    assert same_rows(a, a.iloc[::-1])
    assert not same_rows(a, predictions(BASE_P, ids=np.arange(1, 401)))


def test_better_head_gets_a_better_verdict():
    text = build_report(side("main", BASE_P), side("this branch", HEAD_P), PARAMS, None)
    assert "**Verdict against main:** roc_auc better, average_precision better" in text
    assert "| roc_auc | +0." in text
    assert "✅ better" in text
    assert "_Paired bootstrap, 200 resamples" in text


def test_a_test_split_with_few_churners_gets_no_verdict():
    """Under 10 rows of a class (a 2-row test split once read 'better'): said once, no marks."""
    few = np.r_[np.flatnonzero(Y == 1)[:9], np.flatnonzero(Y == 0)]

    def small(label, proba):
        return Side(
            label,
            params={"train": {"C": 1.0}, "paths": {"raw": "data/raw/x.csv"}},
            lock={"stages": {"evaluate": {"outs": [{"path": "p.csv", "md5": str(proba[0])}]}}},
            metrics=score(Y[few], proba[few], 0.5),
            predictions=predictions(proba)[lambda f: f["id"].isin(few)],
        )

    text = build_report(small("main", BASE_P), small("this branch", HEAD_P), PARAMS, None)
    assert "**Verdict against main:** too few test rows to judge (under 10 of a class)." in text
    assert "| ⚪ too few test rows to judge (under 10 of a class) |" in text
    assert "✅" not in text


def test_different_rows_fall_back_to_unpaired():
    head = side("this branch", HEAD_P, ids=np.arange(1000, 1400))
    text = build_report(side("main", BASE_P), head, PARAMS, None)
    assert "The test rows differ between main and this branch (400 vs 400 rows)" in text
    assert "_Unpaired bootstrap" in text


def test_raw_data_change_is_reported_with_hashes_and_rows():
    lock = {"stages": {"prepare": {"deps": [{"path": "data/raw/x.csv", "md5": "aaa"}]}}}
    new_lock = {"stages": {"prepare": {"deps": [{"path": "data/raw/x.csv", "md5": "bbb"}]}}}
    base, head = side("main", BASE_P, lock=lock), side("this branch", HEAD_P, lock=new_lock)
    base.raw_rows, head.raw_rows = 7043, 8000
    assert data_section(base, head) == (
        "### Data\n\nThe raw data changed: `data/raw/x.csv` (md5 `aaa`) → `data/raw/x.csv` "
        "(md5 `bbb`), rows 7,043 → 8,000."
    )
    assert data_section(base, base) == ""


def test_mermaid_has_one_line_per_side_and_eleven_points():
    text = mermaid_charts(predictions(BASE_P), predictions(HEAD_P), "main")
    assert text.startswith("_first line: main · second line: this branch_")
    lines = [line for line in text.splitlines() if line.strip().startswith("line [")]
    assert len(lines) == 6
    roc_base = [float(v) for v in lines[0].split("[")[1].rstrip("]").split(",")]
    assert len(roc_base) == 11
    assert roc_base[-1] == 1.0
    assert roc_base == sorted(roc_base)


def test_png_charts_are_opt_in_files(tmp_path):
    links = png_charts(predictions(BASE_P), predictions(HEAD_P), "main", tmp_path / "img")
    assert links.count("![") == 3
    for name in ("roc", "pr", "calibration"):
        data = (tmp_path / "img" / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG")
        assert b"matplotlib" not in data  # no version stamp


def test_no_baseline_and_no_metrics():
    empty = Side("main", note="main has no evaluated pipeline in its dvc.lock")
    text = build_report(empty, side("this branch", HEAD_P), PARAMS, None)
    assert "**No baseline on main** (main has no evaluated pipeline in its dvc.lock)" in text
    assert "| roc_auc |" in text
    nothing = build_report(empty, Side("this branch"), PARAMS, None)
    assert "This branch has no metrics" in nothing


def test_unreachable_base_says_so_plainly(monkeypatch, tmp_path):
    from churn.ops import results

    files = {
        "main:./dvc.lock": "stages:\n  evaluate:\n    outs: []\n",
        "main:./params.yaml": "paths: {predictions: reports/predictions.csv}\n",
    }
    monkeypatch.setattr(results, "git_or_none", lambda *args, cwd: files[args[-1]])
    monkeypatch.setattr(results, "read_through_dvc", lambda *a: None)
    monkeypatch.setattr(results, "reproduce_in_worktree", lambda *a: None)
    base = results.load_base(tmp_path, "main")
    assert base.metrics is None
    assert base.note == (
        "could not get main's outputs: not in the DVC cache or remote, and reproducing it in a "
        "temporary worktree failed or gave other bytes than its dvc.lock records"
    )
    text = build_report(base, side("this branch", HEAD_P), PARAMS, None)
    assert "**Cannot compare with main** (could not get main's outputs" in text
    files["main:./params.yaml"] = "paths: {reports: reports}\n"  # no predictions named
    assert results.load_base(tmp_path, "main").note == (
        "main:params.yaml names no paths.predictions: nothing to compare with"
    )


def test_a_broken_metrics_file_is_one_line_naming_it(tmp_path):
    from churn.core.errors import ChurnError
    from churn.ops.results import load_head

    (tmp_path / "params.yaml").write_text("paths: {reports: reports, predictions: p.csv}\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/metrics.json").write_text('{"roc_auc": 0.8,')
    with pytest.raises(ChurnError) as err:
        load_head(tmp_path)
    # Without dvc.lock no file can be checked: said first (the report showed "?" and exit 0).
    assert str(err.value) == (
        "dvc.lock: file not found: reports/metrics.json cannot be checked against it (dvc repro)"
    )
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    with pytest.raises(ChurnError) as err:
        load_head(tmp_path)
    assert str(err.value) == (
        f"{tmp_path}/reports/metrics.json: not valid JSON (Expecting property name enclosed "
        "in double quotes, line 1)"
    )


def test_outputs_that_are_not_the_locked_ones_are_refused(tmp_path):
    """After git checkout, no dvc checkout: another commit's files are not this branch's."""
    import hashlib

    from churn.core.errors import ChurnError
    from churn.ops.results import load_head

    (tmp_path / "params.yaml").write_text("paths: {reports: reports, predictions: p.csv}\n")
    (tmp_path / "reports").mkdir()
    from churn.core.stats import HIGHER_IS_BETTER

    metrics = json.dumps(dict.fromkeys(HIGHER_IS_BETTER, 0.8)) + "\n"
    (tmp_path / "reports/metrics.json").write_text(metrics)
    (tmp_path / "p.csv").write_text("id,label,probability\n1,1,0.9\n2,0,0.1\n")
    locked = hashlib.md5(metrics.encode()).hexdigest()  # noqa: S324 (DVC's hash)
    outs = [{"path": "reports/metrics.json", "md5": locked}, {"path": "p.csv", "md5": "0" * 32}]
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"stages": {"evaluate": {"outs": outs}}}))
    with pytest.raises(ChurnError) as err:
        load_head(tmp_path)
    assert str(err.value) == (
        "p.csv: not the output dvc.lock records (another commit's?): dvc checkout, or dvc "
        "repro, first"
    )
    outs[1]["md5"] = hashlib.md5((tmp_path / "p.csv").read_bytes()).hexdigest()  # noqa: S324
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"stages": {"evaluate": {"outs": outs}}}))
    assert load_head(tmp_path).metrics["roc_auc"] == 0.8
    # A clone that pulled nothing: dvc.lock records the metrics, the file is not there.
    # The report said "this branch has no metrics: dvc repro did not evaluate a model", exit 0.
    (tmp_path / "reports/metrics.json").unlink()
    with pytest.raises(ChurnError) as err:
        load_head(tmp_path)
    assert str(err.value) == (
        "reports/metrics.json: recorded in dvc.lock but missing: dvc pull, dvc checkout or "
        "dvc repro first"
    )
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")  # not evaluated yet
    assert load_head(tmp_path).metrics is None


TELCO_FEATURES = {f"f{i}": {"type": "numeric"} for i in range(19)}


def test_a_switch_to_inferred_features_is_one_line_not_one_row_per_key():
    base = {"data": {"target": "churn", "features": TELCO_FEATURES}, "train": {"C": 1.0}}
    head = {"data": {"target": "churn", "features": "infer"}, "train": {"C": 1.0}}
    assert params_diff(base, head) == []  # not ~45 data.features.* rows, nor `null -> infer`
    assert contract_change(base, head) == "data contract: 19 declared features → inferred features"
    columns = ["f0", "f1", "plan", "region", "calls", "age", "x", "y"]
    assert contract_change(base, head, columns) == (
        "data contract: 19 declared features → 8 inferred features "
        "(added: plan, region, calls, age, x (+1 more); removed: f2, f3, f4, f5, f6 (+12 more))"
    )
    assert contract_change(head, base) == "data contract: inferred features → 19 declared features"
    assert contract_change(base, base) is None


def test_declared_rule_changes_are_counted_by_column():
    base = {"data": {"features": {"a": {"type": "numeric"}, "b": {"type": "numeric"}}}}
    head = {"data": {"features": {"a": {"type": "numeric", "min": 0}, "c": {"type": "numeric"}}}}
    assert contract_change(base, head) == (
        "data contract: 2 declared features → 2 declared features "
        "(added: c; removed: b; rules changed: a)"
    )


def test_a_dataset_switch_is_said_first():
    def lock(path, md5):
        return {"stages": {"prepare": {"deps": [{"path": path, "md5": md5}]}}}

    base = side("main", BASE_P, lock=lock("data/raw/x.csv", "a" * 32))
    moved = side("this branch", HEAD_P, lock=lock("data/raw/x.csv", "b" * 32))
    assert data_switch(base, moved) == (
        "**Different data:** the raw file `data/raw/x.csv` changed (md5 `aaaaaaaa` → `bbbbbbbb`). "
        "The metric differences below compare models on different test sets, not one model "
        "change on the same data."
    )
    other = side(
        "this branch",
        HEAD_P,
        params={"paths": {"raw": "data/raw/bank.csv"}},
        lock=lock("data/raw/bank.csv", "c" * 32),
    )
    assert data_switch(base, other).startswith(
        "**Different data:** main trained on `data/raw/x.csv`, this branch on `data/raw/bank.csv`."
    )
    assert data_switch(base, base) is None
    report = build_report(base, other, ReportParams(resamples=100, seed=1, confidence=0.95), None)
    assert report.splitlines()[2].startswith("**Different data:** main trained on")


# --- decision metrics (issue 16) ---------------------------------------------------------

VALUE = np.full(400, 1000.0)  # every customer worth 1,000 if kept


def decision_params(params, **changes):
    return params.decision.model_copy(update=changes)


def decided_side(label, proba, threshold, params, value=VALUE):
    """A side as evaluate now writes it: values in the predictions, threshold in the metrics."""
    from churn.stages.evaluate import decision_metrics

    measured = decision_metrics(Y, proba, value, threshold, params.decision, params.evaluate)
    out = side(label, proba)
    out.params = {**out.params, "decision": params.decision.model_dump()}
    out.metrics = {**out.metrics, **{k: v for k, v in measured.items() if "/" not in k}}
    out.metrics["decision"] = {"threshold": threshold}
    out.predictions = out.predictions.assign(value=value)
    return out


def test_profit_and_lift_are_judged_like_the_headline_metrics(params):
    base = decided_side("main", BASE_P, 0.5, params)
    head = decided_side("this branch", HEAD_P, 0.4, params)
    text = build_report(base, head, PARAMS, params.decision)
    assert "brier better, profit better, lift_at_k better." in text
    assert "| profit | +" in text
    assert "| capture_at_k | " not in text.split("### Is it real?")[1].split("###")[0]
    assert "each side's own decision threshold" in text
    # The comparison's points are the closed-form profits: each side at its own threshold.
    [profit] = [c for c in compare(base, head, PARAMS, params.decision) if c.metric == "profit"]
    rows = decision.row_profit(Y, VALUE, params.decision)
    assert profit.base == pytest.approx(1000 * np.mean(rows * (BASE_P >= 0.5)))
    assert profit.head == pytest.approx(1000 * np.mean(rows * (HEAD_P >= 0.4)))
    assert profit.paired
    assert profit.verdict == "better"


def test_the_head_values_both_sides_when_the_rows_are_the_same(params):
    """A base without values (before issue 16) is valued with the head's.

    Its threshold is the one its params had.
    """
    base = side("main", BASE_P, params={"evaluate": {"threshold": 0.5}})
    head = decided_side("this branch", HEAD_P, 0.4, params)
    found = {c.metric: c for c in compare(base, head, PARAMS, params.decision)}
    rows = decision.row_profit(Y, VALUE, params.decision)
    assert found["profit"].base == pytest.approx(1000 * np.mean(rows * (BASE_P >= 0.5)))
    text = build_report(base, head, PARAMS, params.decision)
    assert "| profit | — | " in text  # the base's metrics.json has no profit


def test_no_decision_rows_without_a_base_threshold_or_unpaired_values(params):
    base = side("main", BASE_P)  # neither a recorded threshold nor evaluate.threshold
    head = decided_side("this branch", HEAD_P, 0.4, params)
    assert {c.metric for c in compare(base, head, PARAMS, params.decision)} == set(HEADLINE)
    moved = decided_side("this branch", HEAD_P, 0.4, params)
    moved.predictions = moved.predictions.assign(id=np.arange(1000, 1400))
    old = side("main", BASE_P, params={"evaluate": {"threshold": 0.5}})  # no value column
    assert {c.metric for c in compare(old, moved, PARAMS, params.decision)} == set(HEADLINE)
    valued = decided_side("main", BASE_P, 0.5, params)
    unpaired = compare(valued, moved, PARAMS, params.decision)
    assert [c.metric for c in unpaired] == [*HEADLINE, *DECISION]
    assert not any(c.paired for c in unpaired)
    assert compare(valued, moved, PARAMS, None)[-1].metric == HEADLINE[-1]


def test_other_rows_are_valued_with_the_head_assumptions_too(params):
    """Unpaired, the base's profit came from its own decision.value.

    A doubled value read as a much better model; the base's values are now restated under
    the head's assumptions.
    """
    policy = decision_params(params, value=24.0)  # the branch doubles what a customer is worth
    base = decided_side("main", BASE_P, 0.5, params, value=VALUE * params.decision.value)
    head = decided_side("this branch", BASE_P, 0.5, params, value=VALUE * 24.0)
    head.params["decision"] = policy.model_dump()
    head.predictions = head.predictions.assign(id=np.arange(1000, 1400))  # other customers
    found = {c.metric: c for c in compare(base, head, PARAMS, policy)}
    assert not found["profit"].paired
    rows = decision.row_profit(Y, VALUE * 24.0, policy)
    expected = 1000 * np.mean(rows * (BASE_P >= 0.5))
    assert found["profit"].base == pytest.approx(expected)  # not the base's own valuation
    assert found["profit"].head == pytest.approx(expected)  # the same model, the same rows
    assert found["profit"].diff == pytest.approx(0.0, abs=1e-9)
    # Another value column cannot be undone from the values: no decision rows at all.
    base.params["decision"] = {**base.params["decision"], "value_column": "tenure"}
    assert {c.metric for c in compare(base, head, PARAMS, policy)} == set(HEADLINE)
    base.params["decision"] = {**base.params["decision"], "value_column": None, "value": 0.0}
    assert {c.metric for c in compare(base, head, PARAMS, policy)} == set(HEADLINE)


def test_decision_metrics_under_other_assumptions_get_no_delta(params):
    """A higher contact cost lowered the branch's profit.

    The table showed a red arrow for what was no worse a model; its decision rows now say
    the assumptions differ.
    """
    base = decided_side("main", BASE_P, 0.5, params)
    costly = decision_params(params, contact_cost=80.0)
    head = decided_side("this branch", BASE_P, 0.5, params)
    head.params["decision"] = costly.model_dump()
    assert not same_valuation(base.params, head.params)
    assert same_valuation(base.params, {**head.params, "decision": base.params["decision"]})
    table = metrics_table(base.metrics, head.metrics, "main", comparable_decisions=False)
    profit = _num("profit", base.metrics["profit"])
    assert f"| profit | {profit} | {profit} | | | other `decision:` |" in table
    auc = _num("roc_auc", base.metrics["roc_auc"])
    assert f"| roc_auc | {auc} | {auc} | +0.0000 | +0.00 % | = |" in table  # compared as ever
    text = build_report(base, head, PARAMS, costly)
    assert "under other `decision:` assumptions, so their numbers above are not compared" in text
    same = build_report(base, decided_side("this branch", HEAD_P, 0.4, params), PARAMS, costly)
    assert "other `decision:`" not in same


def test_a_png_that_fails_mid_write_leaves_the_earlier_one_whole(tmp_path, monkeypatch):
    """A full disk while drawing the third chart: no empty calibration.png under its name."""
    import matplotlib.figure

    png_charts(predictions(BASE_P), predictions(HEAD_P), "main", tmp_path / "img")
    earlier = (tmp_path / "img" / "calibration.png").read_bytes()
    real = matplotlib.figure.Figure.savefig

    def full_at_calibration(fig, fname, **kwargs):
        if fig.axes[0].get_title().lower().startswith("calibration"):
            Path(fname).write_bytes(b"")
            raise OSError(28, "No space left on device")
        return real(fig, fname, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full_at_calibration)
    with pytest.raises(OSError, match="No space left") as err:
        png_charts(predictions(BASE_P), predictions(HEAD_P), "main", tmp_path / "img")
    assert err.value.filename == str(tmp_path / "img" / "calibration.png")
    assert (tmp_path / "img" / "calibration.png").read_bytes() == earlier
    assert sorted(p.name for p in (tmp_path / "img").iterdir()) == [
        "calibration.png",
        "pr.png",
        "roc.png",
    ]


def test_the_report_never_replaces_a_file_git_tracks(tmp_path, monkeypatch):
    """`--out dvc.yaml` replaced the pipeline; `--images src` put PNGs among the code."""
    from churn.core.errors import ChurnError
    from churn.core.integrity import git
    from churn.ops.report import refuse_tracked, write_report

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ChurnError) as err:
        write_report("main", Path("report.md"))
    assert str(err.value) == "not inside a git repository: the report compares git revisions"
    git("init", "-q")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    git("add", "-A")
    for path, option, said in [
        ("dvc.yaml", "--out", "a file git tracks"),
        (str(tmp_path / "dvc.yaml"), "--out", "a file git tracks"),
        ("src", "--images", "holds files git tracks"),
    ]:
        with pytest.raises(ChurnError) as err:
            refuse_tracked(Path(path), option)
        assert str(err.value) == f"{option} {path}: {said}; write the report elsewhere"
    refuse_tracked(Path("report.md"), "--out")
    refuse_tracked(Path("images"), "--images")


def test_an_image_link_with_spaces_is_still_a_link_and_a_bad_folder_is_named_first(
    tmp_path, monkeypatch
):
    """`![ROC](/tmp/my imgs (1)/roc.png)` showed as text; /proc/img failed after the repro."""
    from churn.core.errors import ChurnError
    from churn.ops.report import link_target, require_images_directory

    assert link_target(Path("img/roc.png")) == "img/roc.png"
    assert link_target(Path("out/my imgs (1)/roc.png")) == "<out/my imgs (1)/roc.png>"
    require_images_directory(tmp_path / "new" / "images")
    assert (tmp_path / "new" / "images").is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(ChurnError) as err:
        require_images_directory(tmp_path / "file" / "images")
    assert str(err.value) == f"--images {tmp_path / 'file' / 'images'}: Not a directory"
