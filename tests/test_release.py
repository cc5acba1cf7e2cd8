"""ops.release's pure parts: versions, the metric gate and the tag message."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from churn.core import integrity
from churn.core.errors import ChurnError
from churn.ops import release
from churn.ops.results import compare
from test_report import BASE_P, HEAD_P, decided_side, side


def test_versions_parse_order_and_must_grow():
    assert release.parse_version("1.2.3") == (1, 2, 3)
    assert release.parse_version("v10.0.1") == (10, 0, 1)
    tags = ["churn-model@v1.10.0", "churn-model@v1.9.0", "other@v9.0.0", "churn-model#prod#1"]
    # A tag made before the 6-digit limit (38 digits) is ignored, not a wall for later ones.
    tags.append("churn-model@v" + "9" * 38 + ".0.0")
    existing = release.released_versions("churn-model", tags)
    assert existing == [(1, 9, 0), (1, 10, 0)]  # numeric, not string, order
    release.check_version("v1.10.1", existing)
    release.check_version("1.10.1", existing)
    with pytest.raises(ChurnError, match=r"^version v1.10.0 is already released$"):
        release.check_version("1.10.0", existing)
    with pytest.raises(ChurnError, match=r"not greater than the latest release v1.10.0$"):
        release.check_version("1.9.5", existing)
    # v1.10.0 named by a lightweight tag: taken, and in the order, but no release.
    released = [(1, 9, 0)]
    release.check_version("1.10.1", existing, released)
    with pytest.raises(ChurnError) as err:
        release.check_version("1.10.0", existing, released)
    assert str(err.value) == (
        "version v1.10.0: a tag that is no release (lightweight, or made by hand) of that name "
        "already exists"
    )
    with pytest.raises(ChurnError) as err:
        release.check_version("1.9.5", existing, released)
    assert str(err.value) == (
        "version v1.9.5 is not greater than v1.10.0, which a tag that is no release "
        "(lightweight, or made by hand) names"
    )
    with pytest.raises(ChurnError, match=r"^version v1.9.0 is already released$"):
        release.check_version("1.9.0", existing, released)


def gate_params(params, confidence: float, metric: str = "roc_auc", minimum: float = 0.5):
    return params.model_copy(
        update={
            "report": params.report.model_copy(update={"confidence": confidence, "resamples": 200}),
            "release": params.release.model_copy(update={"metric": metric, "minimum": minimum}),
        }
    )


def test_gate_states_the_configured_confidence(params):
    head, previous = side("this branch", HEAD_P), side("churn-model@v1.0.0", BASE_P)
    verdict = release.gate(head, previous, gate_params(params, 0.9))
    assert "90 % CI [" in verdict
    assert "95 %" not in verdict
    assert verdict.startswith(f"roc_auc {head.metrics['roc_auc']:.4f} (floor 0.5); ")
    assert verdict.endswith(", better")


def test_gate_refuses_below_the_floor_and_significantly_worse(params):
    head, previous = side("this branch", HEAD_P), side("churn-model@v1.0.0", BASE_P)
    low = previous.metrics["roc_auc"]
    assert low < 0.99
    with pytest.raises(ChurnError, match=rf"^roc_auc {low:.4f} is below the release floor 0.99 "):
        release.gate(previous, None, gate_params(params, 0.95, minimum=0.99))
    with pytest.raises(ChurnError) as err:
        release.gate(previous, head, gate_params(params, 0.8))  # the old model is worse
    assert "roc_auc is significantly worse than this branch" in str(err.value)
    assert "80 % CI" in str(err.value)
    first = release.gate(head, None, gate_params(params, 0.95))
    assert first.endswith("; first release")


def test_gate_refuses_a_metric_its_predictions_contradict(params):
    """A metric edited by hand (0.99) passed the floor.

    The comparison beside it, from the predictions, showed the model unchanged.
    """
    head, previous = side("this branch", HEAD_P), side("churn-model@v1.0.0", BASE_P)
    edited = dataclasses.replace(head, metrics={**head.metrics, "roc_auc": 0.99})
    with pytest.raises(ChurnError) as err:
        release.gate(edited, previous, gate_params(params, 0.95, minimum=0.95))
    assert str(err.value) == (
        f"metrics.json: roc_auc 0.9900, but the predictions beside it give "
        f"{head.metrics['roc_auc']:.4f}: edited by hand, or not from this run (dvc repro)"
    )
    release.gate(head, previous, gate_params(params, 0.95))  # as evaluate wrote it: passes


def test_gate_says_a_value_just_under_the_floor_on_its_side_of_it(params):
    """0.79996 below a floor of 0.8 read "roc_auc 0.8000 is below the release floor 0.8"."""
    # Models between the two fixtures' until one's roc_auc rounds up to its 4-decimal text.
    blends = (side("blend", (1 - w) * BASE_P + w * HEAD_P) for w in np.linspace(0, 1, 101))
    near = next(b for b in blends if round(b.metrics["roc_auc"], 4) > b.metrics["roc_auc"])
    value = near.metrics["roc_auc"]
    floor = round(value, 4)
    with pytest.raises(ChurnError) as err:
        release.gate(near, None, gate_params(params, 0.95, minimum=floor))
    said = str(err.value).split()[1]
    assert f"{float(said):.4f}" == f"{floor:.4f}"
    assert said != f"{floor:.4f}"  # more digits, on its side of the floor
    assert float(said) < floor
    assert (
        str(err.value)
        == f"roc_auc {said} is below the release floor {floor} (release.minimum in params.yaml)"
    )
    over = side("this branch", HEAD_P)  # roc_auc 0.99760...: over a floor of 0.9976
    assert release.gate(over, None, gate_params(params, 0.95, minimum=0.9976)) == (
        "roc_auc 0.9976 (floor 0.9976); first release"
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (True, "True"),
        ("0.99", "'0.99'"),
        ([1], "[1]"),
    ],
)
def test_gate_takes_only_a_finite_number(params, value, shown):
    """NaN is below no floor and True is 1.0: neither may pass as a metric."""
    head = side("this branch", HEAD_P)
    head.metrics["roc_auc"] = value
    with pytest.raises(ChurnError) as err:
        release.gate(head, None, gate_params(params, 0.95))
    assert str(err.value) == f"metrics.json: roc_auc is {shown}, not a finite number"


def test_tag_message_lists_every_metric_and_the_model_md5():
    md5 = "0123456789abcdef0123456789abcdef"
    metrics = {"roc_auc": 0.84, "brier": 0.13814, "baseline": {}}
    text = release.tag_message("churn-model", "1.0.0", metrics, "ok", md5)
    assert text == (
        "churn-model v1.0.0\n\nok\n\nTest metrics:\n  roc_auc: 0.8400\n  brier: 0.1381\n"
        f"\nmodel-md5: {md5}\n"
    )
    # What `churn release gate` and MODEL_REF loading read back from it.
    assert release.recorded_metrics(text) == {"roc_auc": "0.8400", "brier": "0.1381"}
    assert integrity.md5_in_message(text) == md5


def test_artifact_name_comes_from_dvc_yaml(tmp_path):
    assert release.artifact_name() == "churn-model"
    (tmp_path / "dvc.yaml").write_text("artifacts:\n  a: {type: model}\n  b: {type: model}\n")
    with pytest.raises(
        ChurnError, match=r"expected one artifact of type model, found \['a', 'b'\]"
    ):
        release.artifact_name(tmp_path / "dvc.yaml")


# Shapes as `dvc status --json` prints them (read off this pipeline).
AFTER_CHECKOUT = {  # branch outputs left in the workspace after `git checkout main`
    "train": [{"changed outs": {"models/model.pkl": "modified"}}],
    "evaluate": [{"changed deps": {"models/model.pkl": "modified"}}],
}
PARAM_EDITED = {"train": [{"changed deps": {"params.yaml": {"train": "modified"}}}]}
CHECKOUT = (
    "the outputs differ from dvc.lock: run dvc checkout (or dvc pull if the cache lacks them)"
)


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (AFTER_CHECKOUT, CHECKOUT),
        ({"evaluate": [{"changed outs": {"reports/model_card.md": "deleted"}}]}, CHECKOUT),
        (PARAM_EDITED, "stage(s) train are stale: run dvc repro and commit"),
        (
            {
                "train": [*PARAM_EDITED["train"], *AFTER_CHECKOUT["train"]],
                "evaluate": AFTER_CHECKOUT["evaluate"],
                "prepare": ["always changed"],
            },
            "stage(s) prepare, train are stale: run dvc repro and commit",  # evaluate follows
        ),
        (
            {"featurize": [{"changed deps": {"data/prepared/train.parquet": "modified"}}]},
            "stage(s) featurize are stale: run dvc repro and commit",  # no stage changed it
        ),
        (
            {"train": [{"changed command": True}]},
            "stage(s) train are stale: run dvc repro and commit",
        ),
    ],
)
def test_release_refusal_tells_checkout_from_repro(status, said):
    assert release.advice(status) == said


@pytest.mark.parametrize("metric", ["profit", "lift_at_k", "capture_at_k"])
def test_the_gate_may_be_a_decision_metric(params, metric):
    head = decided_side("this branch", HEAD_P, 0.4, params)
    previous = decided_side("churn-model@v1.0.0", BASE_P, 0.5, params)
    gate = gate_params(params, 0.95, metric=metric, minimum=0.01)
    verdict = release.gate(head, previous, gate)
    assert verdict.startswith(f"{metric} {head.metrics[metric]:.4f} (floor 0.01); vs ")
    assert release.gate(head, None, gate).endswith("; first release")


def test_a_decision_gate_needs_a_previous_release_that_measured_it(params):
    head = decided_side("this branch", HEAD_P, 0.4, params)
    old = side("churn-model@v1.0.0", BASE_P)  # before issue 16: no threshold, no values
    with pytest.raises(ChurnError) as err:
        release.gate(head, old, gate_params(params, 0.95, metric="profit", minimum=1.0))
    assert str(err.value) == (
        "cannot compare profit with the previous release churn-model@v1.0.0: it records no "
        "decision threshold or customer values"
    )
    with pytest.raises(ChurnError, match=r"^metrics.json has no profit: run dvc repro$"):
        release.gate(old, None, gate_params(params, 0.95, metric="profit", minimum=1.0))


@pytest.fixture
def tagged(tmp_path, monkeypatch):
    """A repo whose one commit carries churn-model@v1.0.0 and v1.1.0, both with an md5 line.

    What two `churn release create` at once used to make.
    """
    monkeypatch.chdir(tmp_path)
    for role in ("AUTHOR", "COMMITTER"):  # a machine without a git identity commits too
        monkeypatch.setenv(f"GIT_{role}_NAME", "test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")
    integrity.git("init", "-q")
    artifact = "artifacts:\n  churn-model:\n    path: models/model.pkl\n    type: model\n"
    (tmp_path / "dvc.yaml").write_text(artifact)
    integrity.git("add", "dvc.yaml")
    integrity.git("commit", "-q", "-m", "one")
    for version in ("1.0.0", "1.1.0"):
        message = f"release v{version}\n\nmodel-md5: {'0' * 32}\n"
        integrity.git("tag", "-a", "-m", message, f"churn-model@v{version}")
    return tmp_path


def test_a_promotion_gto_refuses_leaves_no_stage_tag(tagged):
    """GTO tags the stage, then finds two versions on the commit and fails."""
    with pytest.raises(ChurnError, match="Multiple versions are not allowed on the same Git"):
        release.promote("1.1.0", "staging")
    assert integrity.git("tag", "--list", "churn-model#*") == ""


def try_lock(path: Path) -> subprocess.CompletedProcess:
    """Take the lock at ``path`` without waiting, in another process."""
    code = f"import fcntl; fcntl.flock(open({str(path)!r}, 'a'), fcntl.LOCK_EX | fcntl.LOCK_NB)"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )


def test_releases_and_promotions_wait_for_the_clone_lock(tagged, monkeypatch):
    """While one command holds the lock no other gets it: each checks, then tags, alone."""
    lock = tagged / ".git" / "churn-release.lock"
    with release.one_at_a_time():
        held = try_lock(lock)
        assert held.returncode == 1
        assert "BlockingIOError" in held.stderr
    assert try_lock(lock).returncode == 0
    # A linked worktree shares the clone's tags, so it takes the same lock.
    worktree = tagged.parent / "worktree"
    integrity.git("worktree", "add", "-q", "--detach", str(worktree))
    monkeypatch.chdir(worktree)
    with release.one_at_a_time():
        assert try_lock(lock).returncode == 1


def test_a_gate_on_lift_reads_the_head_in_its_own_row_order(params):
    """Paired, compare's head values follow the previous release's row order.

    Where scores tie at the top share, lift_at_k and capture_at_k then took other rows
    than evaluate did, and a release was refused as "edited by hand".
    """
    head = decided_side("this branch", np.round(BASE_P, 1), 0.4, params)  # ties at the top
    previous = decided_side("churn-model@v1.0.0", BASE_P, 0.5, params)
    previous.predictions = previous.predictions.iloc[::-1].reset_index(drop=True)
    compared = {c.metric: c.head for c in compare(previous, head, params.report, params.decision)}
    assert compared["lift_at_k"] != head.metrics["lift_at_k"]  # the case: ties, other order
    for metric in ("lift_at_k", "capture_at_k"):
        gate = gate_params(params, 0.95, metric=metric, minimum=0.01)
        assert release.gate(head, previous, gate).startswith(f"{metric} ")


def test_a_first_release_with_a_metric_edited_by_hand_is_refused(params):
    head = side("this branch", HEAD_P)
    edited = dataclasses.replace(head, metrics={**head.metrics, "roc_auc": 0.9999})
    with pytest.raises(ChurnError, match=r"^metrics.json: roc_auc 0.9999, but the predictions "):
        release.gate(edited, None, gate_params(params, 0.95, minimum=0.5))
