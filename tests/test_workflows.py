"""The GitHub workflows: actionlint-clean, least privilege, and the few promises they make."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import REPO

WORKFLOWS = REPO / ".github" / "workflows"
# Every workflow file is linted and checked for least privilege, not only these three.
FILES = sorted(path.name for path in WORKFLOWS.glob("*.y*ml"))


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def triggers(workflow: dict) -> dict:
    """The ``on:`` mapping (YAML 1.1 reads the bare key ``on`` as the boolean True)."""
    on = workflow.get("on", workflow.get(True))
    return {on: None} if isinstance(on, str) else dict(on)


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def runs(workflow: dict) -> list[str]:
    return [step["run"] for step in steps(workflow) if "run" in step]


def actionlint() -> str:
    """The pinned actionlint (requirements-dev.txt) next to this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.is_file() else shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint not found: pip install -r requirements-dev.txt")
    return found


def test_the_three_workflows_exist():
    assert {"ci.yml", "cml.yaml", "main.yml"} <= set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_actionlint_is_clean(name):
    result = subprocess.run(
        [actionlint(), "-no-color", f".github/workflows/{name}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("name", FILES)
def test_actions_are_pinned_to_a_major_version(name):
    uses = [step["uses"] for step in steps(load(name)) if "uses" in step]
    assert uses
    for action in uses:
        assert re.search(r"@v\d+$", action), action


@pytest.mark.parametrize("name", FILES)
def test_least_privilege_and_no_commits(name):
    workflow = load(name)
    assert "pull_request_target" not in triggers(workflow)
    # Only publishing a GitHub Release needs to write (release.yml).
    assert workflow["permissions"]["contents"] == ("write" if name == "release.yml" else "read")
    for job in workflow["jobs"].values():
        assert "permissions" not in job  # no job widens the workflow's
    for script in runs(workflow):
        assert not re.search(r"\bgit\s+(push|commit)\b", script), script
        assert "secrets." not in script  # secrets reach scripts only through env:


def test_ci_runs_make_test_on_both_pythons():
    workflow = load("ci.yml")
    assert set(triggers(workflow)) == {"push", "pull_request"}
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    matrix = workflow["jobs"]["test"]["strategy"]["matrix"]
    assert matrix["python-version"] == ["3.11", "3.12"]
    assert "make test" in runs(workflow)
    setup = next(s for s in steps(workflow) if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["cache"] == "pip"
    assert setup["with"]["cache-dependency-path"] == "requirements*.txt"


def test_cml_reports_on_pull_requests():
    workflow = load("cml.yaml")
    assert set(triggers(workflow)) == {"pull_request", "workflow_dispatch"}
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    checkout = next(s for s in steps(workflow) if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    assert checkout["with"]["ref"] == "${{ github.event.pull_request.head.sha }}"
    assert any(s.get("uses", "").startswith("iterative/setup-cml@") for s in steps(workflow))
    assert "make install" in "\n".join(runs(workflow))
    assert 'make report BASE=origin/main REPORT_ARGS="$REPORT_ARGS"' in runs(workflow)

    comment = next(s for s in steps(workflow) if "cml comment update" in s.get("run", ""))
    assert "--watermark-title=" in comment["run"]
    # Nothing leaves GitHub unless the repository opts in to PNG charts.
    assert comment["env"]["PUBLISH"].endswith("|| '--no-publish' }}")
    assert comment["run"].endswith(" report.md")
    assert comment["env"]["REPO_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"  # noqa: S105 (a reference)


def test_cml_carries_on_without_remote_credentials():
    workflow = load("cml.yaml")
    pull = next(s for s in steps(workflow) if s.get("run", "").startswith("dvc pull"))
    # Fork PRs have no secrets: the pull is skipped, and a failed pull is not fatal.
    assert pull["if"] == "env.HAS_S3_CREDENTIALS == 'true'"
    assert pull["continue-on-error"] is True
    has = workflow["jobs"]["report"]["env"]["HAS_S3_CREDENTIALS"]
    assert has == "${{ secrets.AWS_ACCESS_KEY_ID != '' }}"
    assert "dvc repro" in runs(workflow)


def test_main_pushes_outputs_and_never_commits():
    workflow = load("main.yml")
    assert triggers(workflow) == {"push": {"branches": ["main"]}}
    assert workflow["permissions"] == {"contents": "read"}
    scripts = runs(workflow)
    assert "dvc push -r s3" in scripts
    assert "dvc repro" in scripts
    assert any("dvc remote default --local s3" in script for script in scripts)
    pull = next(s for s in steps(workflow) if s.get("run") == "dvc pull")
    assert pull["continue-on-error"] is True
    push = next(s for s in steps(workflow) if s.get("run") == "dvc push -r s3")
    assert push["env"] == {
        "AWS_ACCESS_KEY_ID": "${{ secrets.AWS_ACCESS_KEY_ID }}",
        "AWS_SECRET_ACCESS_KEY": "${{ secrets.AWS_SECRET_ACCESS_KEY }}",
    }


def test_release_publishes_checked_models_for_version_and_stage_tags():
    workflow = load("release.yml")
    assert triggers(workflow) == {"push": {"tags": ["*@v*", "*#*"]}}
    assert workflow["permissions"] == {"contents": "write"}
    scripts = "\n".join(runs(workflow))
    order = [
        "dvc pull",
        "churn release verify",
        "make test",
        "churn release notes",
        "gh release create",
        "gh release edit",
    ]
    positions = [scripts.index(step) for step in order]
    assert positions == sorted(positions)
    assert 'gh release create "$TAG" models/model.pkl' in scripts


def test_mutation_runs_weekly_and_on_prs_that_touch_the_mutated_code():
    workflow = load("mutation.yml")
    on = triggers(workflow)
    assert set(on) == {"schedule", "pull_request", "workflow_dispatch"}
    assert len(on["schedule"]) == 1
    _minute, _hour, day, month, weekday = on["schedule"][0]["cron"].split()
    assert (day, month) == ("*", "*")
    assert weekday.isdigit()  # once a week
    # Every source pattern mutmut mutates (pyproject.toml), and the list of
    # equivalents, retrigger the job on a pull request.
    paths = on["pull_request"]["paths"]
    mutated = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]
    for pattern in mutated:
        assert pattern.replace("/*", "/**") in paths, pattern
    assert {"tests/unit/**", "tools/mutation-equivalents.txt", "pyproject.toml"} <= set(paths)
    assert runs(workflow) == ["make mutation"]
    assert workflow["jobs"]["mutation"]["timeout-minutes"] <= 60
