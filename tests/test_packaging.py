"""Packaging: pyproject declares what the code imports; the image holds core + serving only."""

import ast
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions

import pytest

from conftest import REPO

SRC = REPO / "src" / "churn"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    return canonical(re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0])


def third_party_imports(paths) -> set[str]:
    """Top-level names imported by these files, standard library and churn left out."""
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "churn"}


def distributions(modules: set[str]) -> set[str]:
    found = packages_distributions()
    return {canonical(dist) for module in modules for dist in found[module]}


def declared(*extras: str) -> set[str]:
    project = PYPROJECT["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    return {requirement_name(spec) for spec in specs}


def pinned(path: str) -> set[str]:
    lines = (REPO / path).read_text(encoding="utf-8").splitlines()
    return {requirement_name(line) for line in lines if "==" in line}


DASK_MODULES = {"dask", "distributed"}  # the optional engine of churn score: the dask extra


def test_the_runtime_layers_declare_every_import():
    files = [p for p in SRC.rglob("*.py") if "serving" not in p.parts]
    missing = distributions(third_party_imports(files) - DASK_MODULES) - declared()
    assert missing == set(), f"add to [project] dependencies in pyproject.toml: {missing}"


def test_the_dask_engine_declares_its_imports_in_the_dask_extra():
    imported = third_party_imports([SRC / "ops" / "score.py"]) & DASK_MODULES
    assert imported == DASK_MODULES
    missing = distributions(imported) - declared("dask")
    assert missing == set(), f"add to the dask extra in pyproject.toml: {missing}"


def test_serving_declares_its_imports_in_the_serve_extra():
    missing = distributions(third_party_imports((SRC / "serving").rglob("*.py"))) - declared(
        "serve"
    )
    assert missing == set(), f"add to the serve extra in pyproject.toml: {missing}"


def test_every_declared_dependency_is_pinned_for_make_install():
    wanted = declared("serve", "dask", "dev") - {"churn"}
    assert wanted - pinned("requirements-dev.txt") - pinned("requirements.txt") == set()


def test_the_console_script_is_the_cli():
    # console(): main(), then an exit without the interpreter's teardown (see its docstring).
    assert PYPROJECT["project"]["scripts"] == {"churn": "churn.cli:console"}


def test_the_service_loads_only_core_serving_and_the_serve_pins():
    # What importing the service really loads, in a fresh process. (scikit-learn, loaded
    # when the model is unpickled, also imports optional packages when they happen to be
    # installed, as they are in the dev venv; the image runs without them.)
    code = "import sys, churn.serving.app\nprint('\\n'.join(sorted(sys.modules)))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    loaded = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    ours = {name for name in loaded if name.split(".")[0] == "churn"}
    assert {name.split(".")[1] for name in ours if "." in name} <= {"core", "serving"}
    top = {name.split(".")[0] for name in loaded if not name.startswith("_")}
    third = {n for n in top if n not in sys.stdlib_module_names and n != "churn"}
    needed = distributions(third & set(packages_distributions()))
    assert needed - pinned("requirements-serve.txt") == set()
    assert {"scikit-learn", "scipy"} <= pinned("requirements-serve.txt")  # the model's pickle
    assert not needed & {"dvc", "pandera", "dvclive", "matplotlib", "pytest"}


def test_the_serve_pins_are_the_runtime_pins():
    runtime = {
        canonical(line.split("==")[0]): line.split("==")[1]
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if "==" in line
    }
    for line in (REPO / "requirements-serve.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.split("==")
            assert runtime[canonical(name)] == version, line


@pytest.mark.parametrize("path", ["Dockerfile", ".dockerignore"])
def test_the_image_holds_core_and_serving_only(path):
    lines = (REPO / path).read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    for absent in ("requirements-dev", "requirements.txt", "benchmarks", "tools", "tests", "src/ "):
        assert absent not in text, absent
    for present in ("requirements-serve.txt", "src/churn/core/", "src/churn/serving/"):
        assert present in text
    if path == "Dockerfile":
        assert 'CMD ["python", "-m", "churn.serving"]' in text
        copied = re.findall(r"^COPY (?!--from)(\S+)", text, flags=re.MULTILINE)
        assert all(not c.startswith(("src/churn/stages", "src/churn/ops")) for c in copied)
