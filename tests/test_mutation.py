"""``make mutation``: the scoring of mutmut's results, and one real mutmut run on a toy."""

import json
import re
from pathlib import Path

import pytest
from tools import mutation
from tools.mutation import (
    Equivalent,
    changed_equivalents,
    fingerprint,
    is_shell,
    mutant_change,
    parse_equivalents,
    render,
    score_modules,
    stale_equivalents,
)

from churn.core.errors import ChurnError
from conftest import REPO

PREPARE = "churn.stages.prepare"
STATS = "churn.core.stats"


def test_equivalents_file_lines_are_a_name_a_fingerprint_and_a_reason():
    text = (
        "# a comment\n\n"
        "churn.core.io.x_write_text__mutmut_3  [0a1b2c3d]  utf-8 and UTF-8 name one codec\n"
    )
    assert parse_equivalents(text, "eq.txt") == {
        "churn.core.io.x_write_text__mutmut_3": Equivalent(
            "0a1b2c3d", "utf-8 and UTF-8 name one codec"
        )
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "churn.core.io.x_write_text__mutmut_3  [0a1b2c3d]",
            "eq.txt:2: churn.core.io.x_write_text__mutmut_3 needs a one-line reason why it "
            "is equivalent",
        ),
        (
            "churn.core.io.x_write_text__mutmut_3  a reason without a fingerprint",
            "eq.txt:2: churn.core.io.x_write_text__mutmut_3 needs the [fingerprint] of its "
            "change before the reason",
        ),
        (
            "churn.core.io.x_write_text__mutmut_3  [0A1B2C3D]  upper-case hex",
            "eq.txt:2: churn.core.io.x_write_text__mutmut_3 needs the [fingerprint] of its "
            "change before the reason",
        ),
        ("write_text  [0a1b2c3d]  a reason", "eq.txt:2: 'write_text' is not a mutmut mutant name"),
        (
            "churn.core.io.x_read__mutmut_1  [0a1b2c3d]  same",
            "eq.txt:2: churn.core.io.x_read__mutmut_1 is listed twice",
        ),
    ],
)
def test_a_bad_equivalents_line_names_its_line(line, message):
    text = f"churn.core.io.x_read__mutmut_1  [0a1b2c3d]  first\n{line}\n"
    with pytest.raises(ChurnError) as err:
        parse_equivalents(text, "eq.txt")
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("name", "shell"),
    [
        (f"{PREPARE}.x_main__mutmut_1", True),
        (f"{PREPARE}.x_main_part__mutmut_1", False),  # a pure function that starts with main
        (f"{PREPARE}.x__check_split__mutmut_1", False),
        ("churn.core.entry.x_main__mutmut_1", False),  # core's only shell is leave()
        ("churn.core.entry.x_leave__mutmut_1", True),  # ends its process: child-process tests
        ("churn.core.entry.x_leave_now__mutmut_1", False),
        ("churn.core.io.x_leave__mutmut_1", False),
        ("not a mutant", False),
    ],
)
def test_only_the_process_shells_are_outside_the_score(name, shell):
    assert is_shell(name) is shell


def test_score_counts_timeouts_as_killed_and_everything_unkilled_as_missed():
    codes = {
        f"{STATS}.x_ci__mutmut_1": 1,  # a test failed: killed
        f"{STATS}.x_ci__mutmut_2": 3,  # pytest errored: killed
        f"{STATS}.x_ci__mutmut_3": 36,  # timeout: detected
        f"{STATS}.x_ci__mutmut_10": 0,  # survived
        f"{STATS}.x_ci__mutmut_4": 33,  # no test reaches it
        f"{STATS}.x_ci__mutmut_5": None,  # never checked: not a kill either
        f"{STATS}.x_ci__mutmut_6": 0,  # survived, but listed as equivalent
        f"{PREPARE}.x_main__mutmut_1": 33,  # the shell
        f"{PREPARE}.x_split__mutmut_1": 1,
    }
    stats, prepare = score_modules(codes, [f"{STATS}.x_ci__mutmut_6"])
    assert (prepare.module, prepare.scored, prepare.shell, prepare.score) == (PREPARE, 1, 1, 100.0)
    assert (stats.killed, stats.timeout, stats.equivalent, stats.scored) == (2, 1, 1, 6)
    assert stats.score == pytest.approx(50.0)  # 3 of 6
    # Sorted by function, then number: 4 before 10.
    assert stats.missed == [f"{STATS}.x_ci__mutmut_{n}" for n in (4, 5, 10)]


MUTATED = """
def x_ci__mutmut_orig(a, b):
    \"\"\"Doc.\"\"\"
    total = a + b
    return total / 2


def x_ci__mutmut_1(a, b):
    \"\"\"Doc.\"\"\"
    total = a - b
    return total / 2


def x_ci__mutmut_2(a, b):
    \"\"\"Doc.\"\"\"
    total = a + b
    return total * 2
"""


def test_a_mutants_change_is_its_changed_lines_against_the_original(tmp_path):
    source = tmp_path / "mutants" / "src" / "churn" / "core" / "stats.py"
    source.parent.mkdir(parents=True)
    source.write_text(MUTATED, encoding="utf-8")
    functions = mutation.read_functions(tmp_path / "mutants", STATS)
    assert mutant_change(functions, f"{STATS}.x_ci__mutmut_1") == [
        "-total = a + b",
        "+total = a - b",
    ]
    assert mutant_change(functions, f"{STATS}.x_ci__mutmut_2") == [
        "-return total / 2",
        "+return total * 2",
    ]
    assert mutant_change(functions, f"{STATS}.x_ci__mutmut_9") == []
    # sha256 of "-total = a + b\n+total = a - b", computed with sha256sum.
    assert fingerprint(["-total = a + b", "+total = a - b"]) == "a0961708"


def test_an_entry_whose_number_moved_to_another_change_is_stale(tmp_path):
    """After an edit, _2 may name another change than the one reviewed: that must fail."""
    source = tmp_path / "mutants" / "src" / "churn" / "core" / "stats.py"
    source.parent.mkdir(parents=True)
    source.write_text(MUTATED, encoding="utf-8")
    reviewed = fingerprint(["-total = a + b", "+total = a - b"])
    listed = {
        f"{STATS}.x_ci__mutmut_1": Equivalent(reviewed, "why"),
        f"{STATS}.x_ci__mutmut_2": Equivalent(reviewed, "why"),
        f"{STATS}.x_ci__mutmut_9": Equivalent(reviewed, "gone: stale_equivalents says so"),
    }
    now = fingerprint(["-return total / 2", "+return total * 2"])
    assert changed_equivalents(tmp_path / "mutants", listed, "eq.txt") == [
        f"eq.txt: {STATS}.x_ci__mutmut_2 now changes '-return total / 2 / +return total * 2': "
        f"review it, then list it with [{now}] or remove it"
    ]


def test_stale_equivalents_are_the_killed_and_the_vanished():
    codes = {f"{STATS}.x_ci__mutmut_1": 1, f"{STATS}.x_ci__mutmut_2": 0}
    listed = {f"{STATS}.x_ci__mutmut_{n}": "why" for n in (1, 2, 9)}
    assert stale_equivalents(codes, listed, "eq.txt") == [
        f"eq.txt: {STATS}.x_ci__mutmut_1 is killed by the tests, so it is not equivalent",
        f"eq.txt: {STATS}.x_ci__mutmut_9 is no longer a mutant: remove or update it",
    ]


def test_the_table_marks_modules_under_the_floor():
    codes = {f"{STATS}.x_ci__mutmut_{n}": 1 if n < 9 else 0 for n in range(1, 11)}
    codes[f"{PREPARE}.x_split__mutmut_1"] = 1
    lines = render(score_modules(codes, []), floor=90).splitlines()
    assert lines[1].split() == [STATS, "10", "8", "2", "0", "0", "80.0", "%", "<", "90", "%"]
    assert lines[2].split() == [PREPARE, "1", "1", "0", "0", "0", "100.0", "%"]
    assert lines[3].split() == ["all", "11", "9", "2", "81.8", "%"]


def write_results(root: Path, codes: dict, equivalents: str = "") -> None:
    meta = root / "mutants" / "src" / "churn" / "core" / "stats.py.meta"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"exit_code_by_key": codes}), encoding="utf-8")
    (root / "tools").mkdir()
    (root / mutation.EQUIVALENTS).write_text(equivalents, encoding="utf-8")


@pytest.mark.parametrize(
    ("equivalents", "status", "errors"),
    [
        # 9 of 10 is 90 %: at the floor passes.
        (f"{STATS}.x_ci__mutmut_11  [0a1b2c3d]  behaves the same for every input\n", 0, []),
        (
            "",
            1,
            [
                f"{STATS}: 81.8 % is under 90 %; missed:",
                f"  {STATS}.x_ci__mutmut_10",
                f"  {STATS}.x_ci__mutmut_11",
                "see a mutant with: mutmut show <name>",
            ],
        ),
    ],
)
def test_main_fails_under_the_floor(tmp_path, monkeypatch, capsys, equivalents, status, errors):
    codes = {f"{STATS}.x_ci__mutmut_{n}": 1 if n < 10 else 0 for n in range(1, 12)}
    write_results(tmp_path, codes, equivalents)
    monkeypatch.setattr(mutation, "REPO_ROOT", tmp_path)
    assert mutation.main(["--no-run"]) == status
    out, err = capsys.readouterr()
    assert err.splitlines() == errors
    assert out.splitlines()[-1].split()[0] == "all"


def test_no_results_is_an_error_naming_the_directory(tmp_path):
    with pytest.raises(ChurnError, match=r"mutants: mutmut wrote no results$"):
        mutation.read_exit_codes(tmp_path / "mutants")


def test_the_committed_equivalents_name_functions_that_exist():
    """A listed mutant must point into code that is still there, with a reason."""
    listed = parse_equivalents(
        (REPO / mutation.EQUIVALENTS).read_text(encoding="utf-8"), mutation.EQUIVALENTS
    )
    for name, entry in listed.items():
        match = mutation.NAME.match(name)
        path = REPO / "src" / Path(*match["module"].split(".")).with_suffix(".py")
        function = match["function"].split("ǁ")[-1]
        assert re.search(rf"def {re.escape(function)}\(", path.read_text()), name
        assert len(entry.reason) > 10, name


TOY = {
    "src/churn/__init__.py": "",
    "src/churn/stages/__init__.py": "",
    "src/churn/stages/calc.py": (
        "def double(x):\n    return x * 2\n\n\n"
        "def is_big(x):\n    return x > 10\n\n\n"
        "def main():\n    print(double(21))\n"
    ),
    # is_big is never tried at 10, so `>` and `>=` look the same to these tests.
    "tests/test_calc.py": (
        "from churn.stages.calc import double, is_big\n\n\n"
        "def test_double():\n    assert double(3) == 6\n\n\n"
        "def test_is_big():\n    assert is_big(11)\n    assert not is_big(3)\n"
    ),
    "pyproject.toml": (
        "[tool.mutmut]\n"
        'source_paths = ["src/"]\n'
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:cov", "-p", "no:xdist"]\n'
        'pytest_add_cli_args_test_selection = ["tests"]\n'
        'process_isolation = "forkserver"\n'
    ),
}


def test_a_real_mutmut_run_finds_the_untested_boundary(tmp_path):
    """The real mutmut, run as `make mutation` runs it, on a toy whose one gap is known."""
    for name, text in TOY.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    codes = mutation.run_mutmut(tmp_path, max_children=1)
    (calc,) = score_modules(codes, [])
    assert calc.module == "churn.stages.calc"
    assert (calc.killed, calc.shell, calc.untested) == (3, 3, [])
    (survivor,) = calc.survived
    diff = (tmp_path / "mutants" / "src" / "churn" / "stages" / "calc.py").read_text()
    # The survivor is the boundary: `x > 10` became `x >= 10`.
    body = diff.split(f"def {survivor.rpartition('.')[2]}(")[1].split("\ndef ")[0]
    assert "return x >= 10" in body
    functions = mutation.read_functions(tmp_path / "mutants", calc.module)
    assert mutant_change(functions, survivor) == ["-return x > 10", "+return x >= 10"]


def test_under_mutmut_the_mutated_modules_own_tests_run_first_fastest_first():
    """Order only: which tests run, and so whether a mutant survives, stays the same."""
    from types import SimpleNamespace

    from unit.mutation_order import mutation_order

    def item(path):
        return SimpleNamespace(path=Path(path), nodeid=f"{path}::t")

    items = [
        item("tests/unit/test_card.py"),
        item("tests/unit/test_stats.py"),
        item("tests/unit/test_statsish.py"),  # another module whose name starts alike
        item("tests/unit/test_stats_edges.py"),
    ]
    durations = {
        "tests/unit/test_card.py::t": 0.1,
        "tests/unit/test_stats.py::t": 0.9,
        "tests/unit/test_stats_edges.py::t": 0.2,
    }
    ordered = mutation_order(items, "churn.core.stats.x__picks__mutmut_3", durations)
    assert [i.path.stem for i in ordered] == [
        "test_stats_edges",
        "test_stats",
        "test_statsish",  # no duration known: 0, before the card's 0.1
        "test_card",
    ]
    assert mutation_order(items, "stats", durations) == items  # mutmut's own phases
