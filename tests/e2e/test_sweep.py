"""End to end: a sweep fanned out over machines, simulated by clones (sweep.yml, locally).

One bare git repository is GitHub; a moto S3 bucket is the shared DVC remote. main
reproduces and pushes its outputs (what main.yml does); two worker clones at once each pull
them, run one set of the grid with `churn sweep run` and `dvc exp push` it; two sets never
run (failed matrix jobs). A collector clone pulls them all, builds the table, names the
best, and brings the best one's outputs back from S3 with `dvc exp apply`. Last, one set
rerun on DVC's queue (`make sweep`) replaces its experiment with the same results.
"""

import hashlib
import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from churn.ops import sweep

from .conftest import REPO, copy_repo, sh
from .test_s3_remote import BUCKET, endpoint, no_aws, s3, with_keys  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e

# 2 x 2 sets: two workers run the first and the last, the middle two never report.
GRID = "train.logistic_regression.C=0.01,10 train.class_weight=null,balanced"
# Evaluate's bootstrap and permutation importance, cut down: the sweep is what is tested.
QUICK = {"ci_resamples": "100", "importance_repeats": "1"}
METRICS = ("roc_auc", "average_precision", "log_loss", "brier")  # the table's, in order


def churn(repo: Path, *args: str, check: bool = True, **env: str):
    """This checkout's `churn` in ``repo``."""
    return sh(
        repo, "python", "-m", "churn", *args, check=check, PYTHONPATH=str(REPO / "src"), **env
    )


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324


def clone(origin: Path, name: str) -> Path:
    """A fresh clone of ``origin`` beside it, with main's DVC config.local (the S3 remote)."""
    dest = origin.parent / name
    sh(origin.parent, "git", "clone", "-q", "-b", "main", str(origin), str(dest))
    shutil.copy(origin.parent / "main/.dvc/config.local", dest / ".dvc/config.local")
    return dest


@pytest.fixture(scope="module")
def origin(tmp_path_factory, s3, endpoint, with_keys):  # noqa: F811
    """The bare "GitHub" repository whose main has its outputs on S3."""
    base = tmp_path_factory.mktemp("sweep")
    main = copy_repo(base / "main")
    text = (main / "params.yaml").read_text()
    for key, value in QUICK.items():
        text, count = re.subn(rf"(?m)^(  {key}: )\d+", rf"\g<1>{value}", text)
        assert count == 1, key
    (main / "params.yaml").write_text(text)
    # The workflow's "Use the S3 remote" step.
    sh(main, "dvc", "remote", "default", "--local", "s3")
    sh(main, "dvc", "remote", "modify", "--local", "s3", "url", f"s3://{BUCKET}/sweep")
    sh(main, "dvc", "remote", "modify", "--local", "s3", "endpointurl", endpoint)
    sh(main, "dvc", "repro")
    sh(main, "git", "commit", "-qam", "evaluate quickly")
    sh(main, "dvc", "push", **with_keys)
    bare = base / "origin.git"
    sh(base, "git", "init", "-q", "--bare", "-b", "main", str(bare))
    sh(main, "git", "push", "-q", str(bare), "main")
    return bare


def plan(repo: Path) -> list[dict]:
    return json.loads(churn(repo, "sweep", "plan", "--grid", GRID).stdout)["include"]


def work(origin: Path, index: int, entry: dict, keys: dict[str, str]) -> dict:
    """One matrix job: clone, pull, run one set, push it; what it measured."""
    worker = clone(origin, f"worker-{index}")
    sh(worker, "dvc", "pull", **keys)
    ran = churn(worker, "sweep", "run", "--grid", GRID, "--name", entry["name"])
    assert "Running stage 'prepare'" not in ran.stderr  # pulled, not recomputed
    assert "Running stage 'train'" in ran.stderr
    assert ran.stdout == ""
    sh(worker, "dvc", "exp", "push", "--force", "origin", entry["name"], **keys)
    return {
        "label": entry["label"],
        "metrics": json.loads((worker / "reports/metrics.json").read_text()),
        "model": md5(worker / "models/model.pkl"),
        "repo": worker,
    }


@pytest.fixture(scope="module")
def sets(origin) -> list[dict]:
    return plan(origin.parent / "main")


@pytest.fixture(scope="module")
def workers(origin, sets, with_keys) -> dict[str, dict]:  # noqa: F811
    """What each worker measured, by experiment name: two machines at once, two sets never run."""
    ran = [sets[0], sets[3]]
    with ThreadPoolExecutor(max_workers=len(ran)) as pool:
        jobs = [pool.submit(work, origin, i, entry, with_keys) for i, entry in enumerate(ran)]
        return {entry["name"]: job.result() for entry, job in zip(ran, jobs, strict=True)}


def table_rows(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def expected_row(place: str, name: str, label: str, metrics: dict | None) -> list[str]:
    values = [part.split("=")[1] for part in label.split()]
    numbers = [f"{metrics[m]:.4f}" if metrics else "—" for m in METRICS]
    return [place, f"`{name}`", *values, *numbers]


def test_the_collector_pulls_them_all_and_ranks_them(origin, sets, with_keys, workers):  # noqa: F811
    assert [entry["label"] for entry in sets] == [
        "train.logistic_regression.C=0.01 train.class_weight=null",
        "train.logistic_regression.C=0.01 train.class_weight=balanced",
        "train.logistic_regression.C=10 train.class_weight=null",
        "train.logistic_regression.C=10 train.class_weight=balanced",
    ]
    assert len({w["metrics"]["roc_auc"] for w in workers.values()}) == 2  # really different
    collector = clone(origin, "collector")
    assert plan(collector) == sets  # the same names on every machine
    never_ran = sorted(entry["name"] for entry in (sets[1], sets[2]))

    pulled = churn(collector, "sweep", "pull", "--grid", GRID, check=False, **with_keys)
    assert pulled.returncode == 3, pulled.stderr
    assert f"2 of 4 sets are not on origin: {[e['name'] for e in sets[1:3]]}" in pulled.stderr
    assert "came without their outputs" not in pulled.stderr
    sh(collector, "dvc", "pull", "evaluate", **with_keys)  # the baseline's metrics

    shown = churn(collector, "sweep", "table", "--grid", GRID, check=False)
    assert shown.returncode == 3, shown.stderr
    text = shown.stdout
    ranked = sorted(workers, key=lambda name: -workers[name]["metrics"]["roc_auc"])
    labels = {entry["name"]: entry["label"] for entry in sets}
    expected = [
        expected_row(str(place), name, labels[name], workers[name]["metrics"])
        for place, name in enumerate(ranked, start=1)
    ] + [expected_row("—", name, labels[name], None) for name in never_ran]
    assert table_rows(text) == expected
    best = ranked[0]
    roc_auc = workers[best]["metrics"]["roc_auc"]
    assert (
        f"**Best: `{best}`**, roc_auc {roc_auc:.4f}: `{labels[best]}`. "
        f"Bring it into the workspace with `dvc exp apply {best}`."
    ) in text
    baseline = json.loads((collector / "reports/metrics.json").read_text())["roc_auc"]
    assert f"Baseline (params.yaml as committed): roc_auc {baseline:.4f}." in text
    assert f"No roc_auc (failed, or not pushed): `{never_ran[0]}`, `{never_ran[1]}`." in text

    # The best one's outputs come back from S3 with its experiment.
    sh(collector, "dvc", "exp", "apply", best)
    assert md5(collector / "models/model.pkl") == workers[best]["model"]
    assert (
        json.loads((collector / "reports/metrics.json").read_text()) == (workers[best]["metrics"])
    )


def test_sets_that_came_without_their_outputs_are_named(origin, sets, with_keys, workers):  # noqa: F811
    """`dvc exp pull` only warns when the DVC remote lacks an experiment's data.

    As after `dvc exp push --no-cache`: here the collector's DVC remote is another prefix.
    """
    collector = clone(origin, "collector-elsewhere")
    sh(collector, "dvc", "remote", "modify", "--local", "s3", "url", f"s3://{BUCKET}/elsewhere")
    pulled = churn(collector, "sweep", "pull", "--grid", GRID, check=False, **with_keys)
    assert pulled.returncode == 3, pulled.stderr
    first, last = sets[0]["name"], sets[3]["name"]
    assert list(workers) == [first, last]
    listed = "data/prepared/contract.json, data/prepared/test.parquet, data/prepared/train.parquet"
    assert (
        "WARNING churn.sweep: 2 of 4 sets came without their outputs (the DVC remote lacks "
        "them; `dvc exp push` sends them unless --no-cache): "
        f"{first} ({listed} and 8 more); {last} ({listed} and 8 more)"
    ) in pulled.stderr.splitlines()


def test_the_one_machine_queue_gives_the_same_results(sets, workers):
    """`make sweep`: a set rerun on DVC's queue replaces its experiment, with the same results.

    On the worker that ran it, so the stages come from DVC's run cache (cheap): this checks
    the queue's plumbing (remove, queue by name, run, table), not the stages again.
    """
    name, label = sets[0]["name"], sets[0]["label"]
    repo = workers[name]["repo"]
    sh(repo, "git", "reset", "-q", "--hard")
    sh(repo, "dvc", "checkout", "-q", "--force")
    done = churn(repo, "sweep", "queue", "--grid", label, "--jobs", "1", check=False)
    assert done.returncode == 0, done.stderr
    assert "Stage 'train' is cached - skipping run" in done.stderr
    assert table_rows(done.stdout) == [expected_row("1", name, label, workers[name]["metrics"])]
    assert sh(repo, "dvc", "exp", "list", "--names-only").stdout.split() == [name]


def test_the_queue_is_refused_while_dvc_holds_other_entries(sets, workers):
    """`dvc exp run --run-all` runs the whole queue: a leftover entry ran beside the sweep."""
    name, label = sets[0]["name"], sets[0]["label"]
    repo = workers[name]["repo"]
    sh(repo, "dvc", "exp", "run", "--queue", "--name", "leftover", "-S", "train.seed=7")
    before = sh(repo, "dvc", "queue", "status").stdout
    done = churn(repo, "sweep", "queue", "--grid", label, "--jobs", "1", check=False)
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    assert done.stderr.splitlines()[-1] == (
        "error: DVC's queue already holds 1 queued experiment(s) (leftover), which a sweep "
        "would run too: run them (dvc queue start) or remove them (dvc queue remove --queued) "
        "first"
    )
    assert sh(repo, "dvc", "queue", "status").stdout == before  # nothing of the sweep queued
    assert sweep.queued_entries(before) == ["leftover"]
    sh(repo, "dvc", "queue", "remove", "--queued")
