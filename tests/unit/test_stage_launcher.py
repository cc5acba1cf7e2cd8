"""python -m churn.stages <stage>: the one program dvc.yaml runs for every stage."""

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from churn.core import entry
from churn.stages import __main__ as launcher
from conftest import REPO


def test_the_stage_is_imported_frozen_run_and_left_with_its_status(monkeypatch):
    calls = []
    stage = SimpleNamespace(main=lambda: None)

    def import_frozen(name):
        calls.append(("import_frozen", name))
        return stage

    def run(main):
        calls.append(("run", main))
        return 7

    def leave(status):
        calls.append(("leave", status))
        raise SystemExit(status)

    monkeypatch.setattr(entry, "import_frozen", import_frozen)
    monkeypatch.setattr(entry, "run", run)
    monkeypatch.setattr(entry, "leave", leave)
    with pytest.raises(SystemExit) as exited:
        launcher.main(["train"])
    assert exited.value.code == 7
    assert calls == [
        ("import_frozen", "churn.stages.train"),
        ("run", stage.main),
        ("leave", 7),
    ]


@pytest.mark.parametrize("args", [["nope"], ["card"], [], ["train", "extra"]])
def test_anything_but_one_stage_name_is_a_usage_error(tmp_path, args):
    """card.py is a module of evaluate, not a stage; nothing is imported or written."""
    result = subprocess.run(
        [sys.executable, "-m", "churn.stages", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: python -m churn.stages [-h]")
    assert result.stderr.splitlines()[-1].startswith("python -m churn.stages: error: ")
    assert list(tmp_path.iterdir()) == []
