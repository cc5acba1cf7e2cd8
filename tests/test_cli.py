"""The `churn` command: every subcommand is listed, states its exit codes, and runs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from churn import cli
from churn.core.errors import clip
from conftest import REPO, free_port

BIN = Path(sys.executable).parent
SUBCOMMANDS = [
    "summary", "check", "contract", "report", "release", "serve", "monitor", "score", "sweep",
    "remote"
]  # fmt: skip


def churn(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """The installed console script, as a user's activated shell runs it."""
    return subprocess.run(
        [str(BIN / "churn"), *args],
        cwd=cwd,
        env={
            **{k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")},  # counted
            "PATH": f"{BIN}{os.pathsep}/usr/bin:/bin",
            "HOME": str(cwd),
            "PYTHONPATH": str(REPO / "src"),  # this checkout's code, wherever it is installed from
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )


def test_help_lists_every_subcommand_from_any_directory(tmp_path):
    result = churn("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("    ")]
    assert listed == SUBCOMMANDS


def test_python_dash_m_churn_is_the_same_command(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "churn", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout == churn("--help", cwd=tmp_path).stdout


@pytest.mark.parametrize(
    ("args", "codes"),
    [
        (["summary"], "exit codes: 0 done; 1 bad input"),
        (["contract"], "exit codes: 0 done; 1 bad input"),
        (["report"], "exit codes: 0 done; 1 bad input"),
        (["release", "create"], "exit codes: 0 done; 1 bad input"),
        (["release", "promote"], "exit codes: 0 done; 1 bad input"),
        (["release", "verify"], "exit codes: 0 done; 1 bad input"),
        (["release", "notes"], "exit codes: 0 done; 1 bad input"),
        (["serve"], "exit codes: 1 the model or its settings are bad"),
        (["monitor"], "exit codes: 0 no drift; 1 drift; 2 invalid input"),
        (["remote", "check"], "exit codes: 0 done; 1 bad input"),
        (["score"], "exit codes: 0 every row scored; 1 bad input"),
        *(
            (["sweep", action], "exit codes: 0 done; 1 bad input")
            for action in ("plan", "run", "pull", "table", "queue")
        ),
    ],
)
def test_each_help_states_its_exit_codes(args, codes, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([*args, "--help"])
    assert done.value.code == 0
    assert codes in " ".join(capsys.readouterr().out.split())


def test_bad_input_is_one_line_and_exit_1(tmp_path):
    result = churn("summary", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "error: params.yaml: file not found\n"


def test_usage_errors_exit_2(tmp_path):
    assert churn("no-such-command", cwd=tmp_path).returncode == 2
    assert churn("release", cwd=tmp_path).returncode == 2
    assert churn("monitor", cwd=tmp_path).returncode == 2  # --input is required
    # A count out of range is a usage error as a count that is no number is (it was exit 1).
    for rows in ("0", "-5", "x"):
        refused = churn("monitor", "--input", "x.csv", "--chunk-rows", rows, cwd=tmp_path)
        assert refused.returncode == 2
        assert refused.stderr.splitlines()[-1].startswith(
            "churn monitor: error: argument --chunk-rows: "
        )


def test_summary_shows_only_the_metrics_dvc_lock_records(trained):
    """A hand-edited (or another commit's) metrics.json was printed as this one's."""
    metrics = trained / "reports" / "metrics.json"
    kept = metrics.read_bytes()
    try:
        metrics.write_bytes(kept.replace(b'"roc_auc": 0.', b'"roc_auc": 1.', 1))
        assert metrics.read_bytes() != kept
        result = churn("summary", cwd=trained)
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr == (
            "error: reports/metrics.json: not the output dvc.lock records (another commit's?): "
            "dvc checkout, or dvc repro, first\n"
        )
    finally:
        metrics.write_bytes(kept)
    assert churn("summary", cwd=trained).returncode == 0


def test_summary_without_dvc_lock_shows_nothing_unchecked(trained, tmp_path):
    """With no dvc.lock, any metrics.json was printed, exit 0; report refused the same."""
    import shutil

    for name in ("params.yaml", "reports/metrics.json"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copyfile(trained / name, tmp_path / name)
    result = churn("summary", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "error: dvc.lock: file not found: reports/metrics.json cannot be checked against it "
        "(dvc repro)\n"
    )
    (tmp_path / "reports/metrics.json").unlink()
    result = churn("summary", cwd=tmp_path)
    assert result.stderr.startswith("error: reports/metrics.json: file not found")


def test_summary_and_contract_print_their_tables(trained):
    summary = churn("summary", cwd=trained)
    assert summary.returncode == 0, summary.stderr
    lines = summary.stdout.splitlines()
    assert lines[0].split() == ["metric", "model", "baseline", "better"]
    assert [line.split()[0] for line in lines[1:]] == [
        "roc_auc",
        "average_precision",
        "log_loss",
        "brier",
        "precision",
        "recall",
        "f1",
        "accuracy",
    ]
    contract = churn("contract", cwd=trained)
    assert contract.returncode == 0, contract.stderr
    assert "| `tenure` | feature | numeric | no | 0 … 120 |" in contract.stdout


def test_release_notes_of_an_unknown_tag_is_one_line(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")  # names the artifact
    result = churn("release", "notes", "churn-model@v9.9.9", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "error: churn-model@v9.9.9: no such tag\n"
    assert result.stderr.count("\n") == 1


def test_an_option_looking_ref_is_never_an_option(trained, tmp_path):
    # MODEL_REF is checked for its form before git sees it: never an option such as --output=FILE.
    target = tmp_path / "written"
    result = churn("serve", cwd=trained, MODEL_REF=f"--output={target}", PORT=str(free_port()))
    assert result.returncode == 1
    assert result.stderr.startswith("error: MODEL_REF '--output=")
    assert result.stderr.endswith("or a commit hash (7-40 hex digits)\n")
    assert result.stderr.count("\n") == 1
    assert not target.exists()


def test_a_bad_setting_of_the_service_is_one_line(trained):
    result = churn("serve", cwd=trained, PORT="abc")
    assert result.returncode == 1
    assert result.stderr == (
        "error: PORT: Input should be a valid integer, unable to parse string as an "
        "integer (got 'abc')\n"
    )


def test_without_git_a_ref_says_git_is_missing_and_the_workspace_commit_is_unknown(
    trained, monkeypatch, tmp_path
):
    from churn.core import integrity
    from churn.core.errors import ChurnError

    monkeypatch.setenv("PATH", str(tmp_path))  # no git on it
    with pytest.raises(ChurnError, match=r"^`git rev-parse .*`: No such file or directory$"):
        integrity.read_lock("churn-model@v1.0.0", root=trained)
    assert integrity.commit_of("HEAD", cwd=trained) == "unknown"


@pytest.mark.parametrize(
    ("args", "echo"),
    [
        (("report", "--base", "b" * 5000, "--out", "unused.md"), "b" * 80),
        (("remote", "check", "b" * 5000), "b" * 80),
        # A tag is quoted and cut at 40, as release verify, gate and promote quote it.
        (("release", "notes", "b" * 5000), repr("b" * 40)),
    ],
    ids=["report-base", "remote-check", "release-notes"],
)
def test_a_huge_argument_is_echoed_clipped(args, echo, monkeypatch, capsys):
    """Every echoed value is cut: the error stays one readable line."""
    monkeypatch.chdir(REPO)
    assert cli.main(list(args)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert echo + "... (5000 characters)" in err
    assert len(err) < 300


def usage_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The last line ``churn ARGS`` prints, which must be a usage error (exit 2)."""
    with pytest.raises(SystemExit) as exited:
        cli.main(args)
    assert exited.value.code == 2
    return capsys.readouterr().err.splitlines()[-1]


@pytest.mark.parametrize(
    "args",
    [
        ["monitor", "--input", "", "--out", "m"],
        ["monitor", "--input", "b.csv", "--out", " "],
        ["report", "--out", ""],
        ["report", "--images", ""],
    ],
)
def test_an_empty_path_is_a_usage_error_not_the_current_directory(args, capsys):
    """--out "" wrote drift.json and summary.md into the current directory."""
    option = args[args.index(next(a for a in args if not a.strip())) - 1]
    assert usage_error(args, capsys).endswith(
        f"error: argument {option}: an empty path (give a file or directory name)"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["monitor", "--input", "s3://bucket/batch.csv"],
        ["monitor", "--input", "b.csv", "--out", "memory://m"],
        ["report", "--out", "gs://bucket/report.md"],
        ["report", "--images", "file:///tmp/img"],
    ],
)
def test_a_url_for_a_local_path_is_named_as_a_url(args, capsys):
    """``s3://b/x.csv`` was folded to ``s3:/b/x.csv`` and then "file not found"."""
    url = next(a for a in args if "://" in a)
    option = args[args.index(url) - 1]
    assert usage_error(args, capsys).endswith(
        f"error: argument {option}: {url} is a URL: this option takes a local path "
        "(copy the file here)"
    )


def test_a_local_path_with_a_colon_is_still_a_path():
    """Only ``scheme://`` is a URL: ``a:b.csv`` and ``./s3:/x`` are names."""
    assert cli._path("a:b.csv") == Path("a:b.csv")
    assert cli._path("./s3:/x") == Path("s3:/x")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["remote", "check", ""], "remote"),
        (["score", "--input", "a.csv", "--output", "o.csv", "--model-ref", ""], "--model-ref"),
        (
            [
                "score",
                "--input",
                "a.csv",
                "--output",
                "o.csv",
                "--engine",
                "dask",
                "--scheduler",
                " ",
            ],
            "--scheduler",
        ),
        (["report", "--base", ""], "--base"),
        (["sweep", "pull", "--grid", "a=1", "--remote", ""], "--remote"),
    ],
)
def test_an_empty_value_is_a_usage_error_not_the_default(args, option, capsys):
    """`churn remote check ""` checked the default remote; `--model-ref ""` the workspace."""
    assert usage_error(args, capsys).endswith(
        f"error: argument {option}: an empty value (leave the option out for its default)"
    )


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["score", "--input", "", "--output", "o.csv"], "--input"),
        (["score", "--input", "a.csv", "--output", " "], "--output"),
        (["sweep", "run", "--grid", "a=1", "--name", ""], "--name"),
    ],
)
def test_an_empty_required_value_is_not_told_to_take_a_default(args, option, capsys):
    """Saying "leave the option out for its default" sent users to an option with none."""
    assert usage_error(args, capsys).endswith(f"error: argument {option}: an empty value")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("churn-model@v1.0.0\n", "error: MODEL_REF: churn-model@v1.0.0\\n has a control character"),
        ("  ", "error: MODEL_REF: only blanks (unset it, or leave it empty, for the workspace)"),
    ],
)
def test_a_bad_model_ref_from_the_environment_is_named_as_such(value, message, tmp_path):
    """It was reported as "argument --model-ref", with the usage, an option never given."""
    result = churn("score", "--input", "a.csv", "--output", "o.csv", cwd=tmp_path, MODEL_REF=value)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == message + "\n"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["sweep", "pull", "--grid", "a=1", "--remote=-x"], "--remote"),
        (["remote", "check", "--", "--version"], "remote"),
    ],
)
def test_a_remote_name_is_never_an_option_of_dvc_or_git(args, option, capsys):
    """`--remote=-x` reached `dvc exp pull` as an option of its own."""
    name = args[-1].removeprefix("--remote=")
    assert usage_error(args, capsys).endswith(
        f"error: argument {option}: {name}: a remote's name cannot start with '-'"
    )


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["score", "--input", "a\nb.csv", "--output", "o.csv"], "--input"),
        (["score", "--input", "a.csv", "--output", "o\r.csv"], "--output"),
        (["score", "--input", "a.csv", "--output", "o.csv", "--model-ref", "v\n1"], "--model-ref"),
        (["report", "--base", "HEAD\nerror: x"], "--base"),
        (["monitor", "--input", "b\x00.csv"], "--input"),
        (["sweep", "pull", "--grid", "a=1", "--remote", "o\nx"], "--remote"),
    ],
)
def test_a_value_with_a_control_character_is_a_usage_error_on_one_line(args, option, capsys):
    """A newline in --base made the error two lines, the second one saying anything."""
    last = usage_error(args, capsys)
    value = args[args.index(option) + 1]
    assert last.endswith(f"error: argument {option}: {clip(value)} has a control character")
    assert "\\" in last  # shown escaped


def test_a_file_where_a_directory_goes_is_named_first(tmp_path, monkeypatch, capsys):
    """--images naming a file passed when nothing changed, and said 'File exists' otherwise."""
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q",
         "--allow-empty", "-m", "one"],
        check=True,
    )  # fmt: skip
    (tmp_path / "afile").write_text("mine")
    assert cli.main(["report", "--base", "HEAD", "--images", "afile"]) == 1
    assert capsys.readouterr().err == "error: --images afile: not a directory\n"
    assert cli.main(["monitor", "--input", "b.csv", "--out", "afile"]) == 2
    assert capsys.readouterr().err == "error: --out afile: not a directory\n"
    assert (tmp_path / "afile").read_text() == "mine"


def test_ctrl_c_before_a_command_runs_is_one_line_and_130(monkeypatch, capsys):
    """Each subcommand imports its modules before entry.run: a traceback there before."""

    def interrupted_main():
        raise KeyboardInterrupt

    def leave(status):
        raise SystemExit(status)

    monkeypatch.setattr(cli, "main", interrupted_main)
    monkeypatch.setattr(cli.entry, "leave", leave)
    with pytest.raises(SystemExit) as exited:
        cli.console()
    assert exited.value.code == 130
    assert capsys.readouterr().err == "error: interrupted\n"
