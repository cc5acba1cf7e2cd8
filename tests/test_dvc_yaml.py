"""dvc.yaml's code deps cannot go stale: each stage lists every churn module it imports.

The imports are read from the source (every ``import`` statement, at module level
or inside a function), followed transitively inside ``churn``, plus the package
``__init__`` files that importing a module runs. A dep covers a file when it names
the file or a directory above it.
"""

import ast
import sys
from pathlib import Path

import pytest
import yaml

from churn.stages import __main__ as launcher
from conftest import REPO

SRC = REPO / "src"


def module_file(name: str) -> Path | None:
    """The source file of module ``churn...`` (a package's ``__init__.py``), or None."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, package: str) -> set[str]:
    """Every churn module ``path`` names in an import statement (absolute or relative)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(filter(None, [base, node.module or ""]))
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}  # submodules
    return {name for name in found if name.split(".")[0] == "churn" and module_file(name)}


def with_parents(name: str) -> set[str]:
    """A module and every package whose ``__init__`` importing it runs."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def closure(module: str) -> set[Path]:
    """Files of ``module`` and of everything it imports inside churn, transitively."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        todo += sorted(imported_modules(path, package) | with_parents(name))
    return {module_file(name) for name in seen}


def covered(path: Path, deps: list[str]) -> bool:
    return any(path == REPO / dep or (REPO / dep) in path.parents for dep in deps)


def stages() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


@pytest.mark.parametrize("name", list(stages()))
def test_stage_deps_cover_every_module_it_imports(name):
    stage = stages()[name]
    launcher, stage_name = stage["cmd"].split("python -m ", 1)[1].split()
    assert (launcher, stage_name) == ("churn.stages", name)  # the launcher, the stage by name
    # The launcher imports the stage by name at run time: both closures run.
    files = closure("churn.stages.__main__") | closure(f"churn.stages.{name}")
    missing = sorted(
        str(path.relative_to(REPO)) for path in files if not covered(path, stage["deps"])
    )
    assert missing == [], f"dvc.yaml: stage {name} imports files its deps do not list"


def test_the_launcher_runs_exactly_the_stages_of_dvc_yaml_in_order():
    assert launcher.STAGES == tuple(stages())


def test_code_deps_name_only_what_exists():
    for name, stage in stages().items():
        for dep in stage["deps"]:
            if dep.startswith("src/"):
                assert (REPO / dep).exists(), f"{name}: {dep}"


def test_the_closure_follows_imports_inside_functions_and_packages(tmp_path, monkeypatch):
    # Guard the guard: an import added inside a function of a stage is found.
    files = closure("churn.stages.evaluate")
    assert SRC / "churn/stages/card.py" in files  # `from churn.stages import card`
    assert SRC / "churn/core/stats.py" in files  # through card, transitively
    assert SRC / "churn/__init__.py" in files
    assert SRC / "churn/ops/report.py" not in files
    fake = tmp_path / "src/churn/stages"
    fake.mkdir(parents=True)
    for rel in ("churn/__init__.py", "churn/stages/__init__.py"):
        (tmp_path / "src" / rel).write_text("")
    (fake / "x.py").write_text("def f():\n    from churn.ops import report\n")
    (tmp_path / "src/churn/ops").mkdir()
    (tmp_path / "src/churn/ops/__init__.py").write_text("")
    (tmp_path / "src/churn/ops/report.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path / "src")
    assert tmp_path / "src/churn/ops/report.py" in closure("churn.stages.x")


def test_the_lock_records_the_code_as_it_is():
    # Editing code a stage depends on (anything in src/churn/core, say) without running
    # `dvc repro` and committing dvc.lock leaves a lock that a fresh clone cannot
    # reproduce. `dvc status` names such code deps; outputs that are merely absent
    # (a fresh clone before `make run`) are not this test's business.
    import json
    import os
    import subprocess

    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    status = subprocess.run(
        ["dvc", "status", "--json"], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    stale = sorted(
        f"{stage}: {path}"
        for stage, changes in json.loads(status.stdout or "{}").items()
        for change in changes
        if isinstance(change, dict)
        for path, state in change.get("changed deps", {}).items()
        if path.startswith("src/") and state == "modified"
    )
    assert stale == [], "code changed since dvc.lock was written: run dvc repro and commit it"


def params_read(path: Path) -> set[str]:
    """The params a module reads, as ``section`` or ``section.key``, from its source.

    ``params.train.model`` reads ``train.model``; ``x = params.train`` the whole section.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    read = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id != "params":
                continue
            parent = parents.get(node)
            if isinstance(parent, ast.Attribute):  # params.section.key
                read.add(f"{node.attr}.{parent.attr}")
            else:  # params.section, taken whole
                read.add(node.attr)
    return read


def test_the_card_is_restated_when_a_param_it_states_changes():
    """Evaluate writes the card: a param it states but evaluate does not list left it stale.

    ``dvc exp run -S prepare.test_size=0.19995`` reran prepare to the same files, skipped
    evaluate, and the card still said "test size 0.2". A path that is a dep of evaluate
    reruns it when it moves, so it needs no listing.
    """
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["evaluate"]
    listed = set(stage["params"])
    deps = " ".join(stage["deps"])
    for name in sorted(params_read(SRC / "churn/stages/card.py")):
        section = name.partition(".")[0]
        covered = section in listed or name in listed or f"${{{name}}}" in deps
        assert covered, f"card.py reads params.{name}; evaluate's params in dvc.yaml do not list it"
    assert params_read(SRC / "churn/stages/card.py") >= {"train", "prepare.test_size", "paths.raw"}
