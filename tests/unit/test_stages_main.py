"""python -m churn.stages <stage>: the one program dvc.yaml runs for every stage."""

from types import SimpleNamespace

import pytest

from churn.core import deferred, entry
from churn.stages import __main__ as launcher


def test_the_stage_is_imported_one_thread_deferred_frozen_run_and_left_with_its_status(monkeypatch):
    calls = []
    stage = SimpleNamespace(main=lambda: None)

    def defer_all(modules):
        calls.append(("defer_all", modules))

    def import_frozen(name):
        calls.append(("import_frozen", name))
        return stage

    def run(main):
        calls.append(("run", main))
        return 7

    def leave(status):
        calls.append(("leave", status))
        raise SystemExit(status)

    monkeypatch.setattr(entry, "one_blas_thread", lambda: calls.append(("one_blas_thread",)))
    monkeypatch.setattr(deferred, "defer_all", defer_all)
    monkeypatch.setattr(entry, "import_frozen", import_frozen)
    monkeypatch.setattr(entry, "run", run)
    monkeypatch.setattr(entry, "leave", leave)
    with pytest.raises(SystemExit) as exited:
        launcher.main(["train"])
    assert exited.value.code == 7
    assert calls == [
        ("one_blas_thread",),
        ("defer_all", deferred.STAGE_DEFERRED),
        ("import_frozen", "churn.stages.train"),
        ("run", stage.main),
        ("leave", 7),
    ]


def test_ctrl_c_while_the_stage_imports_is_one_line_and_130(monkeypatch, capsys):
    """The imports take a second: Ctrl-C there was a 40-line traceback."""

    def import_stage(name):
        raise KeyboardInterrupt

    def leave(status):
        raise SystemExit(status)

    monkeypatch.setattr(launcher, "import_stage", import_stage)
    monkeypatch.setattr(entry, "leave", leave)
    with pytest.raises(SystemExit) as exited:
        launcher.main(["train"])
    assert exited.value.code == 130
    assert capsys.readouterr().err == "error: interrupted\n"
