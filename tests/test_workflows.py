"""The GitHub workflows: actionlint-clean, least privilege, and the few promises they make."""

import os
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


def tool(name: str) -> str:
    """A pinned tool (requirements-dev.txt) next to this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: pip install -r requirements-dev.txt")
    return found


def actionlint() -> str:
    return tool("actionlint")


# The SHAs each action's own tags name, as verified in the pins file beside the repository.
PINS = {
    "actions/checkout": {"11d5960a326750d5838078e36cf38b85af677262": "v4.4.0"},
    "actions/setup-python": {"a26af69be951a213d495a4c3e4e4022e16d87065": "v5.6.0"},
    "iterative/setup-cml": {"f12ea7685438c1fc438d50f77519b3860cf5fa98": "v2.0.1"},
}
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)@(\S+)\s*#\s*(v\d+\.\d+\.\d+)\s*$")


def test_the_workflows_exist():
    assert {"ci.yml", "cml.yaml", "main.yml", "release.yml", "sweep.yml"} <= set(FILES)


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
def test_actions_are_pinned_by_full_commit_sha_with_the_version_in_a_comment(name):
    """A tag can be moved to other code; a commit SHA cannot. Only SHAs from the pins file."""
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert len(lines) == sum("uses" in step for step in steps(load(name)))
    assert lines
    for line in lines:
        match = USES.match(line)
        assert match, line
        action, sha, version = match.groups()
        assert PINS.get(action, {}).get(sha) == version, line


@pytest.mark.parametrize("name", FILES)
def test_zizmor_finds_nothing(name):
    """The zizmor audit (pinned in requirements-dev.txt), offline: no finding at all."""
    result = subprocess.run(
        [
            tool("zizmor"),
            "--offline",
            "--no-progress",
            "--format=plain",
            f".github/workflows/{name}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


# Workflows whose jobs each name their permissions (none at the workflow level).
JOB_PERMISSIONS = {
    # publish runs no project code.
    "release.yml": {"verify": {"contents": "read"}, "publish": {"contents": "write"}},
    # experiment: `dvc exp push` writes refs/exps/... (no branch, no tag).
    "sweep.yml": {
        "plan": {"contents": "read"},
        "experiment": {"contents": "write"},
        "table": {"contents": "read"},
    },
}


@pytest.mark.parametrize("name", FILES)
def test_least_privilege_and_no_commits(name):
    workflow = load(name)
    assert "pull_request_target" not in triggers(workflow)
    if name in JOB_PERMISSIONS:
        # Nothing by default; each job names what it needs, and only the jobs listed write.
        assert workflow["permissions"] == {}
        jobs = workflow["jobs"]
        assert {job: spec["permissions"] for job, spec in jobs.items()} == JOB_PERMISSIONS[name]
    else:
        assert workflow["permissions"]["contents"] == "read"
        for job in workflow["jobs"].values():
            assert "permissions" not in job  # no job widens the workflow's
    for step in steps(workflow):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
    for script in runs(workflow):
        assert not re.search(r"\bgit\s+(push|commit)\b", script), script
        assert "secrets." not in script  # secrets reach scripts only through env:
        assert "${{" not in script  # nor does any other value: no template injection


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
    assert triggers(workflow) == {"push": {"tags": ["*@v*", "*#*", "!*!*", "!*@deprecated*"]}}
    verify, publish = workflow["jobs"]["verify"], workflow["jobs"]["publish"]
    scripts = "\n".join(step.get("run", "") for step in verify["steps"])
    order = [
        "git merge-base --is-ancestor",
        "make install",
        "dvc pull",
        'churn release verify "$TAG"',
        'churn release gate "$TAG"',
        "make test",
        "churn release notes",
    ]
    positions = [scripts.index(step) for step in order]
    assert positions == sorted(positions)
    assert '"$commit" refs/remotes/origin/main' in scripts
    # No dependency cache anywhere in the release workflow.
    for step in steps(workflow):
        assert "cache" not in step.get("with", {}), step
    # publish: needs verify, checks the md5 again, and runs nothing from the repository.
    assert publish["needs"] == "verify"
    published = "\n".join(step.get("run", "") for step in publish["steps"])
    assert all("uses" not in step for step in publish["steps"])
    assert not re.search(r"\b(make|churn|python|pip|dvc)\b", published)
    assert "md5sum --check --strict" in published
    assert 'gh release create "$TAG" model.pkl model_card.md --verify-tag' in published
    assert 'gh release edit "$VERSION_TAG"' in published
    # Secrets: the AWS keys only to the two steps that read the remote.
    keyed = [s["name"] for s in verify["steps"] if "AWS_ACCESS_KEY_ID" in s.get("env", {})]
    assert keyed == ["Pull the model and its card", "Re-apply the metric gate"]


def test_cml_gives_the_keys_only_to_the_steps_that_read_the_remote():
    workflow = load("cml.yaml")
    keyed = [s.get("name") for s in steps(workflow) if "AWS_ACCESS_KEY_ID" in s.get("env", {})]
    assert keyed == ["dvc pull", "Build the report"]
    assert not [key for key in workflow["jobs"]["report"]["env"] if key.startswith("AWS_")]
    text = (WORKFLOWS / "cml.yaml").read_text(encoding="utf-8")
    assert "a same-repository PR can read the keys" in text


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
    assert runs(workflow) == ["make mutation", "tail -n 200 mutants/mutmut.log || true"]
    assert workflow["jobs"]["mutation"]["timeout-minutes"] <= 60


def step(job: dict, name: str) -> dict:
    return next(s for s in job["steps"] if s.get("name") == name)


def test_sweep_fans_out_one_job_per_planned_set_and_collects_them():
    workflow = load("sweep.yml")
    inputs = triggers(workflow)["workflow_dispatch"]["inputs"]
    assert set(triggers(workflow)) == {"workflow_dispatch"}
    assert inputs["grid"]["required"] is True
    assert inputs["runner"]["default"] == "ubuntu-latest"
    plan, experiment, table = (workflow["jobs"][j] for j in ("plan", "experiment", "table"))
    # The grid reaches every script through env: only.
    for job in (plan, experiment, table):
        assert job["env"]["GRID"] == "${{ inputs.grid }}"
    assert plan["outputs"]["matrix"] == "${{ steps.plan.outputs.matrix }}"
    assert 'matrix=$(churn sweep plan --grid "$GRID")\n' in step(plan, "Plan the sets")["run"]

    # One job per set, on the runners the dispatcher names (self-hosted, cml runner, ...).
    assert experiment["runs-on"] == "${{ inputs.runner }}"
    assert experiment["needs"] == "plan"
    strategy = experiment["strategy"]
    assert strategy["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert strategy["fail-fast"] is False
    assert experiment["env"]["NAME"] == "${{ matrix.name }}"
    scripts = [s.get("run", "") for s in experiment["steps"]]
    order = ["churn remote check s3", "dvc pull", "churn sweep run", "dvc exp push"]
    positions = [
        next(i for i, s in enumerate(scripts) if s.startswith(o) or f"\n{o}" in s) for o in order
    ]
    assert positions == sorted(positions)
    assert 'churn sweep run --grid "$GRID" --name "$NAME"' in scripts
    push = step(experiment, "dvc exp push")
    assert push["run"].endswith('dvc exp push --force origin "$NAME"\n')
    for s in experiment["steps"]:  # no dependency cache where the token can write
        assert "cache" not in s.get("with", {}), s

    assert table["needs"] == ["plan", "experiment"]
    assert table["if"] == "${{ !cancelled() && needs.plan.result == 'success' }}"
    assert 'churn sweep pull --grid "$GRID" --remote origin' in step(table, "dvc exp pull")["run"]
    summary = step(table, "Job summary")["run"]
    assert summary == 'churn sweep table --grid "$GRID" | tee -a "$GITHUB_STEP_SUMMARY"'

    # Keys only to the steps that talk to S3; the git token only to the push and the pull.
    keyed = [s["name"] for s in steps(workflow) if "AWS_ACCESS_KEY_ID" in s.get("env", {})]
    assert keyed == [
        "Check the S3 credentials",
        "dvc pull",
        "dvc exp push",
        "dvc pull evaluate",
        "dvc exp pull",
    ]
    tokened = [s["name"] for s in steps(workflow) if "GIT_TOKEN" in s.get("env", {})]
    assert tokened == ["dvc exp push", "dvc exp pull"]


@pytest.mark.parametrize(
    ("job", "name"), [("experiment", "dvc exp push"), ("table", "dvc exp pull")]
)
def test_sweep_gives_git_the_token_from_the_environment_and_writes_it_nowhere(job, name, tmp_path):
    """The step's credential helper, run as written, answers git and DVC's git (scmrepo)."""
    script = step(load("sweep.yml")["jobs"][job], name)["run"]
    setup = "\n".join(
        line for line in script.splitlines() if not line.startswith(("dvc ", "churn "))
    )
    secret = "not-a-real-token-42"  # noqa: S105
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),  # were the export missing, ~/.gitconfig here, not the user's
        "XDG_CONFIG_HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "RUNNER_TEMP": str(tmp_path),
        "GIT_TOKEN": secret,
    }
    subprocess.run(["bash", "-eo", "pipefail", "-c", setup], env=env, check=True)
    config = tmp_path / "sweep.gitconfig"
    assert config.is_file()
    assert list(home.iterdir()) == []
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(secret not in p.read_text() for p in files)

    env["GIT_CONFIG_GLOBAL"] = str(config)
    asked = subprocess.run(
        ["git", "credential", "fill"],
        input="url=https://github.com/owner/repo\n",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"username=x-access-token\npassword={secret}\n" in asked
    code = (
        "from scmrepo.git.credentials import Credential\n"
        "c = Credential(url='https://github.com/owner/repo').fill(interactive=False)\n"
        "c.approve()\n"  # the store call after a successful push must not fail
        "print(c.username, c.password)"
    )
    filled = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert filled.stdout == f"x-access-token {secret}\n"


@pytest.mark.parametrize("name", FILES)
def test_every_run_step_fails_when_a_command_before_a_pipe_fails(name):
    """GitHub runs `bash -e {0}` unless a shell is named; `bash` adds `-o pipefail`.

    The sweep's summary step (`churn sweep table ... | tee`) passed with exit 3 before.
    """
    workflow = load(name)
    assert workflow["defaults"] == {"run": {"shell": "bash"}}
    for job in workflow["jobs"].values():
        assert "shell" not in job.get("defaults", {}).get("run", {}), job
        for step in job.get("steps", []):
            assert step.get("shell", "bash") == "bash", step


def test_a_failed_cml_run_replaces_the_comments_numbers(tmp_path):
    """A later push whose dvc repro failed left the last run's numbers in the comment."""
    workflow = load("cml.yaml")
    comment, failed = [s for s in steps(workflow) if "cml comment update" in s.get("run", "")]
    assert failed["if"].startswith("failure() && ")
    assert failed["if"].removeprefix("failure() && ") == comment["if"]
    title = '--watermark-title="churn model report"'
    assert title in comment["run"]
    assert title in failed["run"]
    assert "--no-publish" in failed["run"]
    assert "${{" not in failed["run"]  # values reach the script through env only
    written = failed["run"].split("cml comment")[0]
    env = {
        "HEAD_SHA": "abc123",
        "RUN_URL": "https://example.invalid/run/1",
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["bash", "-eo", "pipefail", "-c", written], env=env, cwd=tmp_path, check=True)
    assert (tmp_path / "failed.md").read_text() == (
        "**This run failed** at abc123: no numbers for it, and those of earlier runs no longer "
        "stand. See https://example.invalid/run/1\n"
    )
