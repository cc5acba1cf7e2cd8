"""``churn sweep``'s pure parts: the grid (checked against the typed params) and the table."""

import copy
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from churn import cli
from churn.core import io
from churn.core.errors import ChurnError
from churn.ops import sweep
from conftest import REPO

GRID = "train.logistic_regression.C=0.1,1,10 train.class_weight=null,balanced"
C = "train.logistic_regression.C"
WEIGHT = "train.class_weight"
UNRESOLVED = (
    "an interpolation (${...}) or a missing value (???), which DVC resolves as it writes "
    "params.yaml (from each machine's environment): give the value itself"
)


def test_the_grid_is_every_combination_in_order_as_dvc_reads_it(params_dict):
    sets = sweep.plan(GRID, params_dict)
    assert [s.overrides for s in sets] == [
        (f"{C}=0.1", f"{WEIGHT}=null"),
        (f"{C}=0.1", f"{WEIGHT}=balanced"),
        (f"{C}=1", f"{WEIGHT}=null"),
        (f"{C}=1", f"{WEIGHT}=balanced"),
        (f"{C}=10", f"{WEIGHT}=null"),
        (f"{C}=10", f"{WEIGHT}=balanced"),
    ]
    # Parsed as Hydra (and so DVC) parses them: null is None, 1 an int, 0.1 a float.
    assert [s.values for s in sets][:3] == [
        ((C, 0.1), (WEIGHT, None)),
        ((C, 0.1), (WEIGHT, "balanced")),
        ((C, 1), (WEIGHT, None)),
    ]
    assert isinstance(sets[2].values[0][1], int)
    assert sets[0].label == f"{C}=0.1 {WEIGHT}=null"
    assert len({s.name for s in sets}) == 6


def test_names_are_the_same_on_every_machine_and_in_any_key_order(params_dict):
    one = sweep.plan(GRID, params_dict)
    other = sweep.plan(f"{WEIGHT}=balanced,null {C}=10,1,0.1", params_dict)
    assert {s.name: s.values for s in one} == {s.name: tuple(reversed(s.values)) for s in other}
    canonical = json.dumps({C: 0.1, WEIGHT: None}, sort_keys=True)
    assert one[0].name == "sweep-" + hashlib.sha256(canonical.encode()).hexdigest()[:10]
    # Pinned: a rerun of a set must find (and replace) its old experiment after an upgrade.
    assert one[0].name == "sweep-1e011a27fa"


def test_equal_values_get_equal_names_and_ints_keep_theirs(params_dict):
    # 1 and 1.0 are one C to the typed params, and a value given twice to the grid.
    assert sweep.plan(f"{C}=1.0", params_dict)[0].name == sweep.plan(f"{C}=1", params_dict)[0].name
    assert sweep.plan(f"{C}=10.0 {WEIGHT}=null", params_dict)[0].name == "sweep-75260c3139"
    assert sweep.plan(f"{C}=10 {WEIGHT}=null", params_dict)[0].name == "sweep-75260c3139"
    assert sweep.plan("train.seed=1", params_dict)[0].name == "sweep-36f02d4047"
    # Inside lists and mappings too; bools stay bools, and ints are never made floats.
    assert sweep._identity([1.0, {"a": -0.0}, True]) == '[1, {"a": 0}, true]'
    assert sweep._identity(10**309) == "1" + "0" * 309  # float(10**309) overflows
    assert sweep._identity(0.5) == "0.5"


def test_the_params_are_left_as_they_were(params_dict):
    before = copy.deepcopy(params_dict)
    sweep.plan(GRID, params_dict)
    assert params_dict == before


def test_ranges_choices_lists_and_quoted_values(params_dict):
    sets = sweep.plan(
        "train.seed=range(1,4) evaluate.slices=[contract],[contract,tenure] "
        "train.model=choice(random_forest,'logistic_regression')",
        params_dict,
    )
    assert len(sets) == 3 * 2 * 2
    assert sets[0].values == (
        ("train.seed", 1),
        ("evaluate.slices", ["contract"]),
        ("train.model", "random_forest"),
    )
    assert sets[1].values[2] == ("train.model", "logistic_regression")
    assert sets[-1].overrides == (
        "train.seed=3",
        "evaluate.slices=[contract,tenure]",
        "train.model=logistic_regression",
    )


def test_the_grid_splits_at_spaces_outside_quotes_and_brackets():
    grid = "  a='x y',b  c=[1, 2],[3]\td=\"q r\" e=a\\ b {k: v} \n"
    assert sweep.split_grid(grid) == ["a='x y',b", "c=[1, 2],[3]", 'd="q r"', "e=a\\ b", "{k: v}"]
    assert sweep.split_grid(" \n ") == []


def test_quoted_values_keep_their_commas_and_spaces(params_dict):
    # A slice must be a feature: a declared one whose name holds a space, as a CSV's may.
    params_dict["data"]["features"]["senior citizen"] = {"type": "numeric", "min": 0, "max": 1}
    sets = sweep.plan(
        "evaluate.slices=['senior citizen', contract],[contract] "
        "data.positive_label='Yes, really' data.labels=['No', 'Yes, really']",
        params_dict,
    )
    assert [s.values for s in sets] == [
        (
            ("evaluate.slices", ["senior citizen", "contract"]),
            ("data.positive_label", "Yes, really"),
            ("data.labels", ["No", "Yes, really"]),
        ),
        (
            ("evaluate.slices", ["contract"]),
            ("data.positive_label", "Yes, really"),
            ("data.labels", ["No", "Yes, really"]),
        ),
    ]
    # What dvc exp run -S reads back to the same values.
    assert sets[0].overrides[1] == "data.positive_label='Yes, really'"


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("", "grid: empty: give KEY=VALUE[,VALUE...] for each key to sweep"),
        ("  \n ", "grid: empty: give KEY=VALUE[,VALUE...] for each key to sweep"),
        (f"{C}=0.1 '", "grid: a ' quote is not closed"),
        (f'{WEIGHT}="balanced', 'grid: a " quote is not closed'),
        (
            "train.logistic_regression.c=1",
            "grid: train.logistic_regression.c: not a key of params.yaml "
            "(keys at train.logistic_regression: C, max_iter)",
        ),
        (
            "trian.seed=1",
            "grid: trian.seed: not a key of params.yaml (keys at the top level: data, decision, "
            "evaluate, featurize, monitor, paths, prepare, release, report, source, train)",
        ),
        (
            "train.seed.x=1",
            "grid: train.seed.x: not a key of params.yaml (keys at train.seed: none)",
        ),
        ("train=1", "grid: train: a section, not a single value: name a key inside it"),
        ("=1", "grid: '=1': no key before '=' (KEY=V1,V2,...)"),
        (f"{C}=1 =0.1,1", "grid: '=0.1,1': no key before '=' (KEY=V1,V2,...)"),
        (
            f"{C}=-1",
            "grid: train.logistic_regression.C: Input should be greater than 0 (got -1)",
        ),
        (
            "train.model=svm",
            "grid: train.model: Input should be 'logistic_regression', 'random_forest' or "
            "'hist_gradient_boosting' (got 'svm')",
        ),
        (
            f"{WEIGHT}=none",
            "grid: train.class_weight: Input should be 'balanced' "
            "(got 'none'; null is allowed too)",
        ),
        (f"{C}=1,2,1", "grid: train.logistic_regression.C: value 1 given twice"),
        (f"{C}=1,1.0", "grid: train.logistic_regression.C: value 1.0 given twice"),
        (
            f"{C}=1 {WEIGHT}=null {C}=2",
            "grid: train.logistic_regression.C given twice: list all its values once, a,b,c",
        ),
        (
            "+train.extra=1",
            "grid: '+train.extra=1': only KEY=VALUE[,VALUE...] (changing a key params.yaml "
            "already has)",
        ),
        (
            "~train.seed",
            "grid: '~train.seed': only KEY=VALUE[,VALUE...] (changing a key params.yaml "
            "already has)",
        ),
        (
            f"{C}=interval(0,1)",
            "grid: train.logistic_regression.C: interval() is a continuous range, which a grid "
            "cannot list: list the values, a,b,c or range()",
        ),
        (
            "train.seed=glob(*)",
            "grid: train.seed: glob() chooses among config groups, which params.yaml has none "
            "of: list the values, a,b,c or range()",
        ),
        (
            "train.seed=glob(a*,exclude=b)",
            "grid: train.seed: glob() chooses among config groups",
        ),
        ("train.seed=1;2", "grid: cannot read 'train.seed=1;2': LexerNoViableAltException"),
        (  # Hydra's int() of the digits raises ValueError, not its own error
            "train.seed=" + "9" * 5000,
            f"grid: cannot read 'train.seed={'9' * 68}... (5013 characters): "
            "Exceeds the limit (4300 digits)",
        ),
        (
            f"{C}=range(1," + "9" * 5000 + ")",
            f"grid: cannot read '{C}=range(1,{'9' * 43}... (5039 characters): "
            "Exceeds the limit (4300 digits)",
        ),
        (f"{C}=" + "[" * 3000 + "1" + "]" * 3000, "grid: brackets nested deeper than 16 levels"),
        (  # an int too big for a float: compared exactly, then refused by the typed params
            "train.seed=" + "9" * 309,
            "grid: train.seed: Input should be less than or equal to 4294967295 "
            f"(got {'9' * 80}... (309 characters))",
        ),
        (
            f"{C}=" + "9" * 4300,
            f"grid: {C}: Input should be a valid number (got {'9' * 80}... (4300 characters))",
        ),
        (
            "evaluate.importance_top=" + "9" * 400 + ",1," + "9" * 400,
            f"grid: evaluate.importance_top: value {'9' * 80}... (400 characters) given twice",
        ),
        (  # evaluate's check of the slices, made for every set before any run
            "evaluate.slices=[contract],[nope,tenure]",
            "grid: evaluate.slices: 'nope' is not a feature of data.features (features: "
            "female, senior_citizen, partner, dependents, tenure, phone_service, ",
        ),
        (
            "evaluate.slices=[churn,rownames]",  # the target and the id are no features
            "grid: evaluate.slices: 'churn', 'rownames' are not features of data.features",
        ),
        (f"{C}=choice(" * 17 + "1" + ")" * 17, "grid: brackets nested deeper than 16 levels"),
        # DVC's -S goes through OmegaConf, which resolves these as it writes params.yaml.
        ("data.id=${oc.env:MYID}", f"grid: data.id: '${{oc.env:MYID}}': {UNRESOLVED}"),
        ("data.id=$\\{oc.env\\:HOME\\}", f"grid: data.id: '${{oc.env:HOME}}': {UNRESOLVED}"),
        ("data.id='???'", f"grid: data.id: '???': {UNRESOLVED}"),
        ("data.id=a,???", f"grid: data.id: '???': {UNRESOLVED}"),
        ("evaluate.slices=[contract],[${x}]", f"grid: evaluate.slices: ['${{x}}']: {UNRESOLVED}"),
    ],
)
def test_a_bad_grid_is_one_line_naming_the_key(params_dict, grid, message):
    with pytest.raises(ChurnError) as err:
        sweep.plan(grid, params_dict)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_a_grid_is_bounded(params_dict):
    assert len(sweep.plan("train.seed=range(0,64)", params_dict)) == 64
    with pytest.raises(ChurnError, match=r"^grid: train.seed: more than 64 values$"):
        sweep.plan("train.seed=range(0,65)", params_dict)
    with pytest.raises(ChurnError) as err:
        sweep.plan(f"train.seed=range(0,33) {WEIGHT}=null,balanced", params_dict)
    assert str(err.value) == "grid: 33 x 2 = 66 sets, more than the limit of 64"
    assert len(sweep.plan(f"{C}=1,2 {WEIGHT}=null,balanced", params_dict, max_sets=4)) == 4
    with pytest.raises(ChurnError, match=r"^grid: 2 x 2 = 4 sets, more than the limit of 3$"):
        sweep.plan(f"{C}=1,2 {WEIGHT}=null,balanced", params_dict, max_sets=3)


def test_a_cross_field_rule_is_checked_for_every_combination(params_dict):
    # min 0..max 120 for tenure: min=200 breaks the rule only next to max=120.
    key = "data.features.tenure"
    with pytest.raises(ChurnError) as err:
        sweep.plan(f"{key}.min=0,200", params_dict)
    assert str(err.value) == "grid: data.features.tenure: min 200.0 is greater than max 120.0"
    assert len(sweep.plan(f"{key}.min=0,200 {key}.max=300", params_dict)) == 2


def test_slices_are_checked_against_declared_features_only(params_dict):
    sets = sweep.plan("evaluate.slices=[tenure],[contract,senior_citizen]", params_dict)
    assert [s.values for s in sets] == [
        (("evaluate.slices", ["tenure"]),),
        (("evaluate.slices", ["contract", "senior_citizen"]),),
    ]
    # Inferred features come from the data, which a plan does not read: prepare checks them.
    params_dict["data"]["features"] = "infer"
    assert len(sweep.plan("evaluate.slices=[nope]", params_dict)) == 1


def test_the_matrix_and_finding_a_set_by_name(params_dict):
    sets = sweep.plan(f"{C}=0.1,1", params_dict)
    assert sweep.matrix(sets) == {
        "include": [
            {"name": sets[0].name, "label": f"{C}=0.1"},
            {"name": sets[1].name, "label": f"{C}=1"},
        ]
    }
    assert sweep.find(sets, sets[1].name) is sets[1]
    with pytest.raises(ChurnError, match=r"^sweep: no set of this grid is named 'sweep-nope'$"):
        sweep.find(sets, "sweep-nope")


METRICS_FILE = "reports/metrics.json"


def metrics(roc_auc: float, **more: float) -> dict:
    return {
        "roc_auc": roc_auc,
        "average_precision": more.get("average_precision", 0.6),
        "log_loss": more.get("log_loss", 0.45),
        "brier": more.get("brier", 0.15),
        "baseline": {"roc_auc": 0.5},
    }


def exp(name: str, params: dict, found: dict | None, state: str | None = None) -> dict:
    """One experiment as ``dvc exp show --json`` writes it (3.67).

    ``state``: its queue executor's, if it went through DVC's queue. A failed run also
    has an ``error`` (and, like a queued one, the metrics of the commit it started from).
    """
    metric_entry = {"data": found} if found is not None else {"error": {"type": "X", "msg": "m"}}
    failed = {"msg": "Experiment run failed", "type": ""} if state == "failed" else None
    executor = {"state": state, "name": None, "local": {"returncode": 255}} if state else None
    return {
        "executor": executor,
        "name": name,
        "revs": [
            {
                "rev": f"{name}-rev",
                "name": name,
                "data": {
                    "rev": f"{name}-rev",
                    "params": {"params.yaml": {"data": params}},
                    "metrics": {METRICS_FILE: metric_entry},
                },
                "error": failed,
                "experiments": None,
            }
        ],
    }


def show(*experiments: dict, baseline: dict | None = None) -> list[dict]:
    base = {"data": baseline} if baseline is not None else {"error": {"type": "F", "msg": "m"}}
    return [
        {"rev": "workspace", "name": None, "data": {"metrics": {METRICS_FILE: {"data": {}}}}},
        {
            "rev": "abc123",
            "name": "main",
            "data": {"metrics": {METRICS_FILE: base}},
            "experiments": list(experiments),
        },
    ]


def train(c: float, weight: str | None) -> dict:
    return {"train": {"logistic_regression": {"C": c}, "class_weight": weight}}


def test_results_are_read_from_exp_show_by_name():
    shown = show(
        exp("a", train(0.1, None), metrics(0.81)),
        exp("b", train(1, "balanced"), None),
        {"executor": None, "name": None, "revs": [{"rev": "r", "name": None, "data": {}}]},
        baseline=metrics(0.8),
    )
    found = sweep.results(shown, METRICS_FILE)
    assert sorted(found) == ["a", "b"]
    assert found["a"] == sweep.Result("a", "a-rev", train(0.1, None), metrics(0.81))
    assert found["b"].metrics is None
    assert sweep.baseline_metrics(shown, METRICS_FILE) == metrics(0.8)
    assert sweep.baseline_metrics(show(), METRICS_FILE) is None
    assert sweep.results([], METRICS_FILE) == {}


def test_a_failed_entry_of_the_same_name_does_not_hide_a_finished_one():
    done = exp("a", train(0.1, None), metrics(0.81))
    failed = exp("a", train(0.1, None), None)
    for order in ((done, failed), (failed, done)):
        found = sweep.results(show(*order), METRICS_FILE)
        assert found["a"].metrics == metrics(0.81)


def test_a_failed_queued_or_running_run_has_no_results_though_dvc_shows_some():
    """DVC gives such a run the metrics of the commit it started from: never its own."""
    shown = show(
        exp("done", train(10, None), metrics(0.81), "success"),
        exp("failed", train(0.1, None), metrics(0.84), "failed"),
        exp("queued", train(1, None), metrics(0.84), "queued"),
        exp("running", train(1, "balanced"), metrics(0.84), "running"),
        baseline=metrics(0.84),
    )
    found = sweep.results(shown, METRICS_FILE)
    assert {name: result.metrics for name, result in found.items()} == {
        "done": metrics(0.81),
        "failed": None,
        "queued": None,
        "running": None,
    }
    assert found["failed"].params == train(0.1, None)  # as it was to run: shown in its row


def test_a_failed_run_of_the_same_name_does_not_hide_a_finished_one():
    done = exp("a", train(0.1, None), metrics(0.81))
    failed = exp("a", train(0.1, None), metrics(0.84), "failed")
    for order in ((done, failed), (failed, done)):
        found = sweep.results(show(*order), METRICS_FILE)
        assert found["a"].metrics == metrics(0.81)


@pytest.fixture
def four(params_dict) -> list[sweep.ParamSet]:
    return sweep.plan(f"{C}=0.1,1 {WEIGHT}=null,balanced", params_dict)


def found_for(sets, scores: dict[int, float | None]) -> dict[str, sweep.Result]:
    """Results for the sets at these indexes (None: it ran but has no metrics)."""
    shown = show(
        *(
            exp(
                sets[i].name,
                train(sets[i].values[0][1], sets[i].values[1][1]),
                None if score is None else metrics(score, log_loss=1 - score),
            )
            for i, score in scores.items()
        )
    )
    return sweep.results(shown, METRICS_FILE)


def test_rank_puts_the_best_first_ties_by_name_and_the_missing_last(four):
    found = found_for(four, {0: 0.80, 1: 0.84, 2: 0.80, 3: None})
    table = sweep.rank(four, found, "roc_auc")
    tied = sorted([four[0].name, four[2].name])
    assert [row.param_set.name for row in table.rows] == [four[1].name, *tied, four[3].name]
    assert table.best.param_set is four[1]
    assert table.missing == (four[3].name,)
    assert table.rows[0].shown == (0.1, "balanced")
    # A lower-is-better metric sorts the other way.
    by_loss = sweep.rank(four, found, "log_loss")
    assert [row.param_set.name for row in by_loss.rows][:1] == [four[1].name]
    assert by_loss.rows[-2].param_set.name == tied[1]


@pytest.mark.parametrize("metric", ["profit", "lift_at_k", "capture_at_k"])
def test_a_decision_metric_ranks_higher_first(four, metric):
    """release.metric may be a decision metric: ranking by one was a KeyError traceback."""
    shown = show(
        *(
            exp(
                four[i].name,
                train(*(v for _, v in four[i].values)),
                {**metrics(0.8), metric: value},
            )
            for i, value in enumerate([10.0, 30.0, 20.0])
        )
    )
    table = sweep.rank(four, sweep.results(shown, METRICS_FILE), metric)
    assert [row.param_set.name for row in table.rows[:3]] == [four[i].name for i in (1, 2, 0)]
    text = sweep.markdown(table)
    assert text.startswith(f"### Sweep: 4 experiments, by {metric} (higher is better)\n")


def test_a_failed_set_is_never_the_best(four):
    shown = show(
        exp(four[0].name, train(0.1, None), metrics(0.80)),
        exp(four[1].name, train(0.1, "balanced"), metrics(0.84), "failed"),
    )
    table = sweep.rank(four, sweep.results(shown, METRICS_FILE), "roc_auc")
    assert table.best.param_set is four[0]
    assert table.missing == tuple(sorted(s.name for s in four[1:]))
    text = sweep.markdown(table)
    assert f"| — | `{four[1].name}` | 0.1 | balanced | — | — | — | — |\n" in text
    assert f"**Best: `{four[0].name}`**, roc_auc 0.8000" in text


def test_churn_sweep_table_exits_3_when_a_set_failed(four, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # params.yaml only: dvc exp show is the fake below
    shown = show(
        exp(four[0].name, train(0.1, None), metrics(0.80), "success"),
        exp(four[1].name, train(0.1, "balanced"), metrics(0.84), "failed"),
        exp(four[2].name, train(1, None), metrics(0.79)),
        exp(four[3].name, train(1, "balanced"), metrics(0.78)),
        baseline=metrics(0.84),
    )

    def dvc(*args: str, capture: bool = False) -> subprocess.CompletedProcess:
        assert args == ("exp", "show", "--json")
        return subprocess.CompletedProcess(["dvc", *args], 0, json.dumps(shown), "")

    monkeypatch.setattr(sweep, "_dvc", dvc)
    assert cli.main(["sweep", "table", "--grid", f"{C}=0.1,1 {WEIGHT}=null,balanced"]) == 3
    out = capsys.readouterr().out
    assert f"**Best: `{four[0].name}`**, roc_auc 0.8000" in out
    assert out.endswith(f"No roc_auc (failed, or not pushed): `{four[1].name}`.\n")


def test_a_nan_or_infinite_metric_ranks_with_the_missing(four):
    """NaN compares false to everything: sorted as a number it could come out best."""
    found = found_for(four, {0: 0.80, 1: float("nan"), 2: 0.90, 3: float("inf")})
    table = sweep.rank(four, found, "roc_auc")
    assert table.best.param_set is four[2]
    assert [row.param_set.name for row in table.rows[:2]] == [four[2].name, four[0].name]
    assert table.missing == tuple(sorted([four[1].name, four[3].name]))


def test_rank_with_no_results_at_all(four):
    table = sweep.rank(four, {}, "roc_auc")
    assert table.best is None
    assert table.missing == tuple(sorted(s.name for s in four))
    # Without results, each row shows the values the set was planned with.
    by_name = {s.name: tuple(v for _, v in s.values) for s in four}
    assert [row.shown for row in table.rows] == [by_name[name] for name in table.missing]


def test_the_markdown_table_names_the_best(four):
    found = found_for(four, {0: 0.80, 1: 0.84, 2: 0.79})
    names = [s.name for s in four]
    text = sweep.markdown(sweep.rank(four, found, "roc_auc"), metrics(0.8123))
    assert text == (
        "### Sweep: 4 experiments, by roc_auc (higher is better)\n"
        "\n"
        f"| rank | experiment | {C} | {WEIGHT} | roc_auc | average_precision | log_loss | brier |\n"
        "|---:|---|---|---|---:|---:|---:|---:|\n"
        f"| 1 | `{names[1]}` | 0.1 | balanced | 0.8400 | 0.6000 | 0.1600 | 0.1500 |\n"
        f"| 2 | `{names[0]}` | 0.1 | null | 0.8000 | 0.6000 | 0.2000 | 0.1500 |\n"
        f"| 3 | `{names[2]}` | 1 | null | 0.7900 | 0.6000 | 0.2100 | 0.1500 |\n"
        f"| — | `{names[3]}` | 1 | balanced | — | — | — | — |\n"
        "\n"
        f"**Best: `{names[1]}`**, roc_auc 0.8400: `{C}=0.1 {WEIGHT}=balanced`. "
        f"Bring it into the workspace with `dvc exp apply {names[1]}`.\n"
        "\n"
        "Baseline (params.yaml as committed): roc_auc 0.8123.\n"
        "\n"
        f"No roc_auc (failed, or not pushed): `{names[3]}`.\n"
    )


def test_the_markdown_without_results_or_baseline(four):
    text = sweep.markdown(sweep.rank(four, {}, "average_precision"))
    assert text.splitlines()[0] == (
        "### Sweep: 4 experiments, by average_precision (higher is better)"
    )
    assert text.splitlines()[2].endswith("| average_precision | roc_auc | log_loss | brier |")
    assert "**No experiment of this sweep has results.**" in text
    assert "Baseline" not in text
    assert "Best" not in text


def test_a_cell_cannot_break_the_table():
    assert sweep._show("a|b") == "a\\|b"
    assert sweep._show(None) == "null"
    assert sweep._show(["contract", "tenure"]) == '["contract", "tenure"]'
    assert sweep._show("x" * 100) == "x" * 40 + "... (100 characters)"


def test_churn_sweep_plan_prints_the_matrix_of_the_workspace_params(
    params_dict, monkeypatch, capsys
):
    monkeypatch.chdir(REPO)  # params.yaml only: no pipeline output is read
    assert cli.main(["sweep", "plan", "--grid", GRID]) == 0
    out = capsys.readouterr().out
    matrix = sweep.matrix(sweep.plan(GRID, params_dict))
    assert out == json.dumps(matrix, separators=(",", ":")) + "\n"  # one line: $GITHUB_OUTPUT


def test_churn_sweep_reads_the_grid_from_the_environment(params_dict, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("GRID", f"{C}=0.1,1")
    assert cli.main(["sweep", "plan"]) == 0
    assert json.loads(capsys.readouterr().out) == sweep.matrix(
        sweep.plan(f"{C}=0.1,1", params_dict)
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--grid", f"{C}=0"], f"error: grid: {C}: Input should be greater than 0 (got 0)"),
        (["plan", "--grid", "train.seed=range(5,1)"],
         "error: grid: 'train.seed=range(5,1)': no values"),
        (["plan", "--grid", "train.seed=range(0,10,0)"],
         "error: grid: train.seed: range() arg 3 must not be zero"),
        (["plan", "--grid", "train.seed=" + "9" * 309],
         "error: grid: train.seed: Input should be less than or equal to 4294967295 "
         f"(got {'9' * 80}... (309 characters))"),
        (["plan", "--grid", "evaluate.slices=[nope]"],
         "error: grid: evaluate.slices: 'nope' is not a feature of data.features (features: "
         "female, senior_citizen, partner, dependents, tenure, phone_service, multiple_lines, "
         "internet_service, online_security, online_backup, device_protection, tech_support, "
         "streaming_tv, streaming_movies, c... (274 characters))"),
        (["run", "--grid", f"{C}=1", "--name", "sweep-x"], "error: sweep: no set of this grid "
         "is named 'sweep-x'"),
        (["queue", "--grid", f"{C}=1", "--jobs", "0"], "error: --jobs 0: must be 1 to 64"),
        (["queue", "--grid", f"{C}=1", "--jobs", "65"], "error: --jobs 65: must be 1 to 64"),
        (["queue", "--grid", f"{C}=1", "--jobs", str(10**20)],
         f"error: --jobs {10**20}: must be 1 to 64"),
    ],
)  # fmt: skip
def test_churn_sweep_refuses_bad_input_in_one_line_before_running_dvc(
    args, message, monkeypatch, capsys
):
    monkeypatch.chdir(REPO)
    assert cli.main(["sweep", *args]) == 1
    assert capsys.readouterr().err == message + "\n"


def test_churn_sweep_outside_a_project_names_the_missing_params(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sweep", "table", "--grid", f"{C}=1"]) == 1
    assert capsys.readouterr().err == "error: params.yaml: file not found\n"


def test_an_output_is_uncached_when_any_object_of_its_data_is_missing():
    outputs = [
        ("models/model.pkl", ["a1"]),
        ("reports/plots", ["d1.dir", "f1", "f2"]),  # a directory: its listing, then its files
        ("reports/metrics.json", ["m1"]),
        ("reports/other", ["d2.dir"]),  # the listing itself missing
    ]
    cache = {"a1", "d1.dir", "f1", "m1"}
    assert sweep.uncached(outputs, cache.__contains__) == ["reports/plots", "reports/other"]
    assert sweep.uncached(outputs, lambda oid: True) == []
    assert sweep.uncached([], cache.__contains__) == []


def test_listed_shows_three_paths_and_how_many_more():
    assert sweep.listed([]) == ""
    assert sweep.listed(["a", "b", "c"]) == "a, b, c"
    assert sweep.listed(["a", "b", "c", "d", "e"]) == "a, b, c and 2 more"
    assert sweep.listed(["a", "b"], limit=1) == "a and 1 more"


@pytest.mark.parametrize(
    ("grid", "said"),
    [
        ("source.out=README.md", "source.out: README.md is a file git tracks"),
        ("paths.card=data/raw/x.md,src", "paths.card: src holds files git tracks"),
    ],
)
def test_a_set_whose_output_is_a_file_git_tracks_is_refused(params_dict, monkeypatch, grid, said):
    """The fetch stage wrote the CSV over README.md before DVC refused the output."""
    monkeypatch.chdir(REPO)
    with pytest.raises(ChurnError) as err:
        sweep.plan(grid, params_dict)
    assert str(err.value).startswith(f"grid: {said}")
    assert str(err.value).endswith("; outputs go through DVC, not git: choose another path")


def test_one_sweep_run_or_queue_at_a_time_in_a_workspace(tmp_path):
    """DVC applies -S to params.yaml before its own lock: a second run rewrote the first's."""
    lock = tmp_path / ".dvc" / "tmp" / "churn-sweep.lock"
    with sweep.workspace_alone(lock):
        with pytest.raises(ChurnError) as err, sweep.workspace_alone(lock):
            pass
        assert str(err.value) == (
            "another churn sweep run or queue is running in this workspace: wait for it "
            "(one workspace runs one experiment at a time; make sweep queues them all)"
        )
    with sweep.workspace_alone(lock):  # free again
        pass
    assert io.held_locks() == ()
    assert sweep.WORKSPACE_LOCK == Path(".dvc/tmp/churn-sweep.lock")
    assert (
        ".dvc/tmp/churn-sweep.lock"
        in subprocess.run(
            ["git", "check-ignore", ".dvc/tmp/churn-sweep.lock"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


def test_one_key_of_a_grid_is_at_most_8192_characters(params_dict):
    """Hydra's parser took 10 s for a list of 8,000 names and over a minute for 20,000."""
    token = "evaluate.slices=[" + ",".join(f"a{i}" for i in range(3_000)) + "]"
    with pytest.raises(ChurnError) as err:
        sweep.plan(token, params_dict)
    assert str(err.value) == (
        f"grid: {sweep.clip(repr(token), 60)}: {len(token):,} characters, "
        "more than 8,192 in one KEY=VALUES"
    )
    assert len(str(err.value)) < 200


@pytest.mark.parametrize("capture", [False, True])
def test_the_dvc_a_sweep_runs_holds_the_workspace_until_it_ends(tmp_path, monkeypatch, capture):
    """Killed with kill -9, churn alone freed the workspace while its dvc exp run went on."""
    import signal

    fake = tmp_path / "bin" / "dvc"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nsleep 30 >/dev/null 2>&1 &\necho $! > "$0.pid"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    lock = tmp_path / ".dvc" / "tmp" / "churn-sweep.lock"
    with sweep.workspace_alone(lock):
        assert sweep._dvc("exp", "run", capture=capture).returncode == 0
    pid = int((tmp_path / "bin" / "dvc.pid").read_text())
    try:
        with pytest.raises(ChurnError, match="another churn sweep"), sweep.workspace_alone(lock):
            pass
    finally:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while io.held_locks() == () and time.monotonic() < deadline:
        try:
            with sweep.workspace_alone(lock):
                break  # free once the command is gone (its files close as it exits)
        except ChurnError:
            time.sleep(0.01)
    else:
        pytest.fail("the workspace lock stayed held")


@pytest.mark.parametrize("command", ["run", "queue"])
def test_a_sweep_refuses_uncommitted_changes(tmp_path, monkeypatch, capsys, command):
    """An uncommitted params.yaml edit went into the set unnamed.

    The table then credited its effect to the set's values.
    """
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}

    def sh(*cmd: str) -> None:
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)

    sh("git", "init", "-q")
    sh("dvc", "init", "-q")
    committed = (REPO / "params.yaml").read_text(encoding="utf-8")
    (tmp_path / "params.yaml").write_text(committed, encoding="utf-8")
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text(encoding="utf-8"))
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "params")
    edited = committed.replace("top_share: 0.10", "top_share: 0.50")
    assert edited != committed
    (tmp_path / "params.yaml").write_text(edited, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    (param_set,) = sweep.plan(f"{C}=0.5", yaml.safe_load(edited))
    args = ["--name", param_set.name] if command == "run" else ["--jobs", "1"]
    assert cli.main(["sweep", command, "--grid", f"{C}=0.5", *args]) == 1
    assert capsys.readouterr().err == (
        "error: working tree is not clean (1 path(s), e.g. params.yaml): a sweep runs the "
        "committed params plus each set's values (what its name, the table's baseline and "
        "every other machine take it to be); commit or stash first\n"
    )
    assert (tmp_path / "params.yaml").read_text(encoding="utf-8") == edited  # nothing ran
    assert not list((tmp_path / ".dvc").glob("tmp/exps/**/*.json"))
    assert io.held_locks() == ()


def test_a_key_no_stage_reads_is_refused_naming_it(params_dict):
    """monitor.psi=0.1,0.3: no stage reran, every set was the committed run, and one won."""
    pipeline = io.read_yaml(REPO / "dvc.yaml")
    read = sweep.stage_keys(pipeline)
    assert {"train", "evaluate", "paths.reports", "source.out"} <= read
    assert not {"monitor", "release", "report"} & {key.split(".")[0] for key in read}
    for key, values in (("monitor.psi", "0.1,0.3"), ("release.metric", "roc_auc,brier")):
        with pytest.raises(ChurnError) as err:
            sweep.plan(f"{key}={values}", params_dict, read=read)
        assert str(err.value).startswith(
            f"grid: {key}: no stage of dvc.yaml reads it: every set would be the committed run "
            "(the stages read keys of: data, decision, evaluate, featurize, paths, prepare, "
        )
    sets = sweep.plan(f"{C}=0.1,1 paths.reports=r1,r2", params_dict, read=read)
    assert len(sets) == 4
    only = {
        "stages": {"a": {"params": ["train.seed", {"other.yaml": ["x"]}], "cmd": "${paths.raw}"}}
    }
    assert sweep.stage_keys(only) == {"train.seed", "paths.raw"}


def test_each_experiment_is_read_from_its_own_reports_folder(params_dict):
    """paths.reports=reports2: the set ran fine, and was "no results" (exit 3)."""
    sets = sweep.plan("paths.reports=reports2,reports", params_dict)
    moved = {"paths": {"reports": "reports2"}}
    entry = exp(sets[0].name, moved, None)
    entry["revs"][0]["data"]["metrics"] = {"reports2/metrics.json": {"data": metrics(0.7)}}
    shown = show(entry, exp(sets[1].name, {"paths": {"reports": "reports"}}, metrics(0.6)))
    found = sweep.results(shown, METRICS_FILE, sets)
    assert found[sets[0].name].metrics == metrics(0.7)
    assert found[sets[1].name].metrics == metrics(0.6)
    assert sweep.rank(sets, found, "roc_auc").best.param_set is sets[0]


def test_an_experiment_of_a_sets_name_with_other_values_is_never_ranked_as_it(four):
    """A run named like the C=0.1 set that ran C=10 was ranked, crowned, shown as that set.

    A leftover queue entry of the name, or a hand-made run, is such a run.
    """
    right = exp(four[0].name, train(0.1, None), metrics(0.80))
    wrong = exp(four[0].name, train(10, None), metrics(0.90))
    for order in ((right, wrong), (wrong, right)):
        found = sweep.results(show(*order), METRICS_FILE, four)
        assert found[four[0].name].metrics == metrics(0.80)  # the run of the set's values
    table = sweep.rank(four, sweep.results(show(wrong), METRICS_FILE, four), "roc_auc")
    assert table.best is None
    assert table.differ == (four[0].name,)
    text = sweep.markdown(table)
    assert f"| — | `{four[0].name}` | 10 | null | — | — | — | — |\n" in text
    assert text.endswith(
        "Ran other values than their names say (an older or hand-made experiment of the name; "
        f"not ranked): `{four[0].name}`.\n"
    )
    assert f"`{four[0].name}`" not in text.split("No roc_auc")[1].split("\n")[0]
    assert sweep.ran_as(sweep.Result("x", "r", train(1.0, None), None), four[2])  # 1 is 1.0


def test_a_row_without_the_metric_has_no_rank(four):
    """A NaN or absent roc_auc was ranked 3 and 4 while listed as having no results."""
    nan = {**metrics(0.8), "roc_auc": float("nan")}
    absent = {k: v for k, v in metrics(0.8).items() if k != "roc_auc"}
    shown = show(
        *(
            exp(four[i].name, train(*(v for _, v in four[i].values)), found)
            for i, found in enumerate([metrics(0.7), nan, absent, metrics(0.6)])
        )
    )
    text = sweep.markdown(sweep.rank(four, sweep.results(shown, METRICS_FILE, four), "roc_auc"))
    ranks = [
        line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ") and "`" in line
    ]
    assert ranks == ["| 1", "| 2", "| —", "| —"]


@pytest.mark.parametrize("reports", ["reports/", "./reports", "reports//"])
def test_a_reports_folder_spelled_another_way_is_the_same_folder(reports):
    """paths.reports: reports/ looked for reports//metrics.json: every set "no results"."""
    shown = show(exp("a", {"paths": {"reports": reports}}, metrics(0.81)), baseline=metrics(0.8))
    assert sweep.results(shown, f"{reports}/metrics.json")["a"].metrics == metrics(0.81)
    assert sweep.baseline_metrics(shown, f"{reports}/metrics.json") == metrics(0.8)
    assert sweep.results(shown, "other/metrics.json")["a"].metrics == metrics(0.81)


def test_queued_entries_reads_dvc_queue_status():
    """DVC 3's table, Created with a space in it; only Queued entries count."""
    status = (
        "Task     Name      Created       Status\n"
        "1262072  leftover  09:46 PM      Queued\n"
        "d79137a  C-0.5     Dec 07, 2026  Success\n"
        "a1b2c3d  sweep-x   09:47 PM      Running\n"
        "e4f5a6b  second    09:48 PM      Queued\n"
        "\n"
        "Worker status: 0 active, 0 idle\n"
    )
    assert sweep.queued_entries(status) == ["leftover", "second"]
    assert sweep.queued_entries("Task  Name  Created  Status\n\nWorker status: 0 active\n") == []
