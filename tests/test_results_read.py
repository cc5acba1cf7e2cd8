"""Reading a revision's outputs through DVC for the PR report: text is UTF-8, always."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from churn.core.errors import ChurnError
from churn.core.integrity import md5_of
from churn.core.stats import HIGHER_IS_BETTER
from churn.ops.results import count_rows, read_through_dvc


def run(repo: Path, *cmd: str) -> None:
    subprocess.run(cmd, cwd=repo, check=True, capture_output=True)


@pytest.fixture
def tracked(tmp_path) -> Path:
    """A committed DVC repo tracking one clean UTF-8 file and one with a stray byte."""
    run(tmp_path, "git", "init", "-q")
    run(tmp_path, sys.executable, "-m", "dvc", "init", "-q")
    (tmp_path / "good.json").write_bytes('{"name": "modèle"}\n'.encode())
    (tmp_path / "bad.json").write_bytes(b'{"a": 1}\n{"b": "caf\xe9"}\n')
    run(tmp_path, sys.executable, "-m", "dvc", "add", "-q", "good.json", "bad.json")
    run(tmp_path, "git", "add", "-A")
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(tmp_path, "git", *identity, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "one")
    return tmp_path


def lock_of(repo: Path, *names: str) -> dict:
    """A parsed dvc.lock recording the md5 that each ``NAME.dvc`` file records."""
    outs = [yaml.safe_load((repo / f"{name}.dvc").read_text())["outs"][0] for name in names]
    return {"stages": {"add": {"outs": [{"path": o["path"], "md5": o["md5"]} for o in outs]}}}


def test_outputs_read_as_utf8_and_a_stray_byte_is_one_line(tracked, ascii_locale):
    """Guards against the locale deciding the decoding, and a traceback for a stray byte."""
    lock = lock_of(tracked, "good.json", "bad.json")
    assert read_through_dvc(tracked, "HEAD", ["good.json"], lock) == ['{"name": "modèle"}\n']
    with pytest.raises(ChurnError) as err:
        read_through_dvc(tracked, "HEAD", ["good.json", "bad.json"], lock)
    assert (
        str(err.value) == "HEAD:bad.json: line 2: not UTF-8 (byte 0xe9); re-save the file as UTF-8"
    )


def test_bytes_that_do_not_match_the_lock_are_refused_and_unrecorded_ones_unavailable(tracked):
    """A cache or remote anyone can write to must not become a report or release notes."""
    lock = lock_of(tracked, "good.json")
    md5 = lock["stages"]["add"]["outs"][0]["md5"]
    stored = tracked / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    forged = b'{"name": "forged"}\n'
    stored.chmod(0o644)
    stored.write_bytes(forged)
    with pytest.raises(ChurnError) as err:
        read_through_dvc(tracked, "HEAD", ["good.json"], lock)
    assert str(err.value) == (
        f"HEAD:good.json: md5 {md5_of(forged)} does not "
        f"match {md5} in HEAD:dvc.lock: the DVC cache or remote holds other bytes; refusing to "
        "use them"
    )
    assert read_through_dvc(tracked, "HEAD", ["bad.json"], lock) is None  # not recorded
    assert read_through_dvc(tracked, "HEAD", ["good.json"], {}) is None


def test_a_rev_that_looks_like_an_option_is_a_name_not_a_git_option(tmp_path):
    """``churn report --base=--output=FILE`` once made ``git show`` write FILE."""
    import subprocess

    from churn.ops.results import yaml_at

    repo, out = tmp_path / "repo", tmp_path / "injected"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q")
    (repo / "params.yaml").write_text("train: {C: 1.0}\n")
    git("add", "params.yaml")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    git("update-ref", f"refs/tags/--output={out}", "HEAD")
    assert yaml_at(repo, f"--output={out}", "params.yaml") == {"train": {"C": 1.0}}
    assert not list(tmp_path.glob("injected*"))


def test_a_revisions_yaml_that_is_no_mapping_is_one_line(tmp_path):
    from churn.ops.results import yaml_at

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "params.yaml").write_text("- a list\n- not params\n")
    (tmp_path / "dvc.lock").write_text("just text\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    for path, found in [("params.yaml", "list"), ("dvc.lock", "str")]:
        with pytest.raises(ChurnError) as err:
            yaml_at(tmp_path, "HEAD", path)
        assert str(err.value) == f"HEAD:{path}: expected a mapping of names, found {found}"


GOOD_METRICS = dict.fromkeys(HIGHER_IS_BETTER, 0.5)  # every headline metric, as evaluate writes


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ([1, 2], "m.json: expected a mapping of names, found list"),
        ({**GOOD_METRICS, "roc_auc": "0.84"}, 'm.json: roc_auc: "0.84" is not a finite number'),
        ({**GOOD_METRICS, "brier": None}, "m.json: brier: null is not a finite number"),
        ({**GOOD_METRICS, "brier": True}, "m.json: brier: true is not a finite number"),
        ({**GOOD_METRICS, "profit": float("nan")}, "m.json: profit: NaN is not a finite number"),
        ({**GOOD_METRICS, "decision": "max"}, "m.json: decision: expected a mapping of names"),
        (
            {**GOOD_METRICS, "decision": {"threshold": 2}},
            "m.json: decision.threshold: 2 is not in 0..1",
        ),
    ],
)
def test_metrics_that_are_not_numbers_are_one_line_naming_the_key(raw, says):
    from churn.ops.results import metrics_of

    for required in (True, False):
        with pytest.raises(ChurnError) as err:
            metrics_of(raw, "m.json", required=required)
        assert str(err.value).startswith(says)


def test_a_missing_metric_is_refused_in_the_workspace_and_a_dash_in_a_revision():
    from churn.ops.results import metrics_of

    partial = {"roc_auc": 0.84, "decision": {"threshold": 0.3}}
    assert metrics_of(partial, "m.json", required=False) == partial
    with pytest.raises(ChurnError, match=r"^m.json: [a-z_]+: missing \(run dvc repro\)$"):
        metrics_of(partial, "m.json", required=True)
    assert metrics_of(GOOD_METRICS, "m.json", required=True) == GOOD_METRICS


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "p.csv: cannot read as CSV"),
        ("id,label\n1,0\n", "p.csv: missing column(s) 'probability'"),
        ("id,label,probability\n1,2,0.5\n", "p.csv: label: not 0 or 1 in every row"),
        ("id,label,probability\n1,1,x\n", "p.csv: probability: not a number in 0..1 in every row"),
        (
            "id,label,probability\n1,1,1.5\n",
            "p.csv: probability: not a number in 0..1 in every row",
        ),
        ("id,label,probability,value\n1,1,0.5,\n", "p.csv: value: not a number in every row"),
        ('id,label,probability\n1,1,"0.5\n', "p.csv: cannot read as CSV"),
    ],
)
def test_broken_predictions_are_one_line(text, says):
    from churn.ops.results import predictions_of

    with pytest.raises(ChurnError) as err:
        predictions_of(text, "p.csv")
    assert str(err.value).startswith(says)
    assert "\n" not in str(err.value)
    good = predictions_of("id,label,probability,value\n7,1,0.25,100\n", "p.csv")
    assert good.to_dict("list") == {"id": [7], "label": [1], "probability": [0.25], "value": [100]}


STOPPED = """
import sys
from pathlib import Path
from churn.core import entry
from churn.ops.results import run_group

out = Path(sys.argv[1])
script = f"sleep 60 & echo $! > {out}/grandchild; touch {out}/started; wait"
sys.exit(entry.run(lambda: run_group(["sh", "-c", script], out)[0]))
"""


def test_a_stopped_command_takes_the_whole_reproduction_with_it(tmp_path):
    """SIGTERM killed dvc alone; its running stage worked on in a deleted worktree."""
    import os
    import signal
    import time

    from conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    child = subprocess.Popen([sys.executable, "-c", STOPPED, str(tmp_path)], env=env)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        grandchild = int((tmp_path / "grandchild").read_text())
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 143
    finally:
        child.kill()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{grandchild}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # killed: gone once its parent (sh, also killed) is reaped
    stat = Path(f"/proc/{grandchild}/stat")
    assert not stat.exists() or stat.read_text().split()[2] == "Z"


def test_run_group_gives_the_status_and_stderr(tmp_path):
    from churn.ops.results import run_group

    assert run_group(["sh", "-c", "echo out; echo err >&2; exit 3"], tmp_path) == (3, "err\n")


def test_a_broken_dvc_config_is_an_error_naming_it_not_a_missing_base(tracked):
    """A report would otherwise note "outputs not available" and go on without the base."""
    lock = lock_of(tracked, "good.json")
    (tracked / ".dvc/config.local").write_text("[core\n")
    with pytest.raises(ChurnError) as err:
        read_through_dvc(tracked, "HEAD", ["good.json"], lock)
    assert str(err.value) == (
        f"{tracked}/.dvc/config.local: DVC cannot read this config file (A line that is "
        "neither a section nor a key = value at line 1.)"
    )
    (tracked / ".dvc/config.local").unlink()
    assert read_through_dvc(tracked, "HEAD", ["good.json"], lock) == ['{"name": "modèle"}\n']


@pytest.mark.parametrize(
    ("content", "rows"),
    [
        (b"a,b\n1,2\n3,4\n", 2),
        (b"a,b\n1,2\ncaf\xe9,4\n", None),  # not UTF-8
        (b'a,b\n1,"2\n', None),  # an unterminated quote
        (b"", None),
        (b"a,b\n", 0),
    ],
)
def test_the_reports_row_count_of_a_raw_file_prepare_would_refuse_is_unknown(
    tmp_path, caplog, content, rows
):
    """It was a UnicodeDecodeError, ParserError or EmptyDataError traceback of `churn report`."""
    (tmp_path / "raw.csv").write_bytes(content)
    assert count_rows(tmp_path / "raw.csv", "data/raw.csv") == rows
    if rows is None:
        assert caplog.records[-1].getMessage().startswith("data/raw.csv: rows not counted (")


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ("", "NoCredentialsError"),
        ("    access_key_id = a\n    secret_access_key = b\n", "EndpointConnectionError"),
    ],
)
def test_an_s3_remote_that_cannot_be_read_is_unavailable_not_a_traceback(
    tracked, monkeypatch, caplog, config, error
):
    """The errors of botocore came through DVC as tracebacks of `churn report`."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tracked / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tracked / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    shutil.rmtree(tracked / ".dvc/cache")
    (tracked / ".dvc/config.local").write_text(
        "[core]\n    remote = s3\n['remote \"s3\"']\n    url = s3://bucket/x\n"
        f"    endpointurl = http://127.0.0.1:9\n{config}"
    )
    lock = lock_of(tracked, "good.json")
    with caplog.at_level("INFO"):
        assert read_through_dvc(tracked, "HEAD", ["good.json"], lock) is None
    assert caplog.records[-1].getMessage() == f"HEAD: outputs not available through DVC ({error})"


def test_the_bases_raw_rows_are_counted_from_a_stream_and_checked(tracked, caplog):
    """The base's raw file was read whole into one string (six times its size in memory)."""
    from churn.ops.results import rows_through_dvc

    (tracked / "raw.csv").write_text("id,x\n" + "".join(f"{i},{i % 7}\n" for i in range(2500)))
    run(tracked, sys.executable, "-m", "dvc", "add", "-q", "raw.csv")
    run(tracked, "git", "add", "-A")
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(tracked, "git", *identity, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "raw")
    lock = lock_of(tracked, "raw.csv")
    assert rows_through_dvc(tracked, "HEAD", "raw.csv", lock) == 2500
    assert rows_through_dvc(tracked, "HEAD", "raw.csv", {}) is None  # nothing to check against
    md5 = lock["stages"]["add"]["outs"][0]["md5"]
    stored = tracked / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    stored.chmod(0o644)
    stored.write_text("id,x\n1,2\n")
    assert rows_through_dvc(tracked, "HEAD", "raw.csv", lock) is None
    assert "rows not counted" in caplog.records[-1].getMessage()
