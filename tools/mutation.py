"""``make mutation``: mutmut over core and the stages' pure functions, scored per module.

mutmut (configured in pyproject.toml, ``[tool.mutmut]``) changes the code one small
edit at a time and runs the unit tests (``tests/unit``) against each change. A mutant
the tests fail on is killed; one they pass on survived, so a bug of that shape would
go unnoticed. This prints, per module, the share of mutants killed and fails when any
module is under the floor.

What the score leaves out, and nothing else:
- the process shells: a stage's ``main()``, the thin shell that reads params and files
  and writes outputs (the end-to-end tests run it, the unit tests are for the pure
  functions it calls), and ``core.entry.leave()``, which ends the process it runs in
  (its unit tests run it in child processes, where mutmut cannot see which test
  reached it);
- the equivalent mutants listed in ``tools/mutation-equivalents.txt``, each with a
  one-line reason. A listed mutant that the tests kill, or that mutmut no longer makes,
  is a stale entry and fails the run: the list cannot quietly hide a real survivor.
  mutmut numbers mutants within a function, so an edit to the function can move a
  number onto another mutant; each entry therefore carries the fingerprint of the
  change it was reviewed for (the lines the mutant changes), and a mismatch is stale too.
"""

import argparse
import ast
import difflib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from churn.core import entry
from churn.core.errors import ChurnError

log = logging.getLogger("churn.mutation")

REPO_ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = "tools/mutation-equivalents.txt"
FLOOR = 90.0

# mutmut's exit codes (mutmut.stats.status_by_exit_code), as this tool counts them.
KILLED_CODES = frozenset({1, 3})  # a test failed, or pytest itself errored on the mutant
TIMEOUT_CODES = frozenset({36, 24, -24, 152, 255})  # the tests never finished: detected
SURVIVED_CODES = frozenset({0})
NO_TESTS_CODES = frozenset({5, 33})  # no unit test reaches the function at all

NAME = re.compile(r"^(?P<module>[\w.]+)\.x_?(?P<function>.+)__mutmut_(?P<n>\d+)$")
FINGERPRINT = re.compile(r"^\[(?P<hex>[0-9a-f]{8})\]$")


@dataclass(frozen=True)
class Equivalent:
    """One reviewed entry: the fingerprint of the change it is about, and why it is equivalent."""

    fingerprint: str
    reason: str


@dataclass
class ModuleScore:
    """What happened to one module's mutants."""

    module: str
    killed: int = 0
    timeout: int = 0
    survived: list[str] = field(default_factory=list)
    untested: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # not checked, suspicious, crashed
    equivalent: int = 0
    shell: int = 0  # a stage's main(), entry.leave(): out of scope

    @property
    def scored(self) -> int:
        """Mutants that count: all but the shell and the equivalent ones."""
        return self.killed + self.timeout + len(self.missed)

    @property
    def missed(self) -> list[str]:
        """In-scope mutants the tests let through, sorted."""
        return sorted(self.survived + self.untested + self.other, key=_mutant_order)

    @property
    def score(self) -> float:
        """Percent of scored mutants killed (100 when nothing is scored)."""
        return 100.0 * (self.killed + self.timeout) / self.scored if self.scored else 100.0


def _mutant_order(name: str) -> tuple[str, int]:
    """Sort key: by function, then by mutant number (so 9 comes before 10)."""
    stem, _, number = name.rpartition("__mutmut_")
    return stem, int(number) if number.isdigit() else 0


def parse_equivalents(text: str, source: str) -> dict[str, Equivalent]:
    """``{mutant name: entry}`` from the equivalents file; one entry a line.

    A line is ``<mutant name>  [<fingerprint>]  <reason>``; blank lines and ``#``
    comments are skipped. The fingerprint is :func:`fingerprint` of the mutant's change.
    """
    entries: dict[str, Equivalent] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, _, rest = stripped.partition(" ")
        mark, _, reason = rest.strip().partition(" ")
        where = f"{source}:{number}"
        if not NAME.match(name):
            raise ChurnError(f"{where}: {name!r} is not a mutmut mutant name")
        if not FINGERPRINT.match(mark):
            raise ChurnError(
                f"{where}: {name} needs the [fingerprint] of its change before the reason"
            )
        if not reason.strip():
            raise ChurnError(f"{where}: {name} needs a one-line reason why it is equivalent")
        if name in entries:
            raise ChurnError(f"{where}: {name} is listed twice")
        entries[name] = Equivalent(FINGERPRINT.match(mark)["hex"], reason.strip())
    return entries


def mutant_change(functions: Mapping[str, str], name: str) -> list[str]:
    """The lines mutant ``name`` changes, ``-old`` then ``+new``, indentation stripped.

    ``functions`` maps each ``def`` name in mutmut's copy of the module to its source;
    the mutant (``x_f__mutmut_3``) is compared with the original (``x_f__mutmut_orig``).
    """
    defined = name.rpartition(".")[2]
    orig = defined.rpartition("__mutmut_")[0] + "__mutmut_orig"
    if defined not in functions or orig not in functions:
        return []
    mutant = functions[defined].replace(defined, orig)
    diff = difflib.unified_diff(functions[orig].splitlines(), mutant.splitlines(), n=0, lineterm="")
    return [
        line[0] + line[1:].strip()
        for line in diff
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def fingerprint(change: list[str]) -> str:
    """Eight hex digits naming a change (see :func:`mutant_change`)."""
    return hashlib.sha256("\n".join(change).encode("utf-8")).hexdigest()[:8]


def read_functions(mutants: Path, module: str) -> dict[str, str]:
    """``{def name: source}`` of mutmut's copy of ``module`` (empty if it has none)."""
    path = mutants / "src" / Path(*module.split(".")).with_suffix(".py")
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    # By line numbers: ast.get_source_segment re-splits the whole file on every call.
    return {
        node.name: "\n".join(lines[node.lineno - 1 : node.end_lineno])
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def changed_equivalents(
    mutants: Path, equivalents: Mapping[str, Equivalent], source: str
) -> list[str]:
    """One line per listed mutant whose change is no longer the one it was reviewed for."""
    problems = []
    functions: dict[str, dict[str, str]] = {}
    for name in sorted(equivalents):
        module = NAME.match(name)["module"]
        if module not in functions:
            functions[module] = read_functions(mutants, module)
        change = mutant_change(functions[module], name)
        if not change or fingerprint(change) == equivalents[name].fingerprint:
            continue  # no such mutant is reported by stale_equivalents
        problems.append(
            f"{source}: {name} now changes {' / '.join(change)!r}: review it, then list it "
            f"with [{fingerprint(change)}] or remove it"
        )
    return problems


def is_shell(name: str) -> bool:
    """A mutant of a process shell, outside the score: a stage's ``main()``, ``entry.leave()``."""
    match = NAME.match(name)
    if not match:
        return False
    module, function = match["module"], match["function"]
    if module.startswith("churn.stages."):
        return function == "main"
    return (module, function) == ("churn.core.entry", "leave")


def stale_equivalents(
    exit_codes: Mapping[str, int | None], equivalents: Mapping[str, object], source: str
) -> list[str]:
    """One line per listed equivalent that mutmut no longer makes or the tests kill."""
    problems = []
    for name in sorted(equivalents):
        if name not in exit_codes:
            problems.append(f"{source}: {name} is no longer a mutant: remove or update it")
        elif exit_codes[name] in KILLED_CODES | TIMEOUT_CODES:
            problems.append(f"{source}: {name} is killed by the tests, so it is not equivalent")
    return problems


def _count(score: ModuleScore, name: str, code: int | None) -> None:
    if code in KILLED_CODES:
        score.killed += 1
    elif code in TIMEOUT_CODES:
        score.timeout += 1
    elif code in SURVIVED_CODES:
        score.survived.append(name)
    elif code in NO_TESTS_CODES:
        score.untested.append(name)
    else:
        score.other.append(name)


def score_modules(
    exit_codes: Mapping[str, int | None], equivalents: Iterable[str]
) -> list[ModuleScore]:
    """Per-module scores from mutmut's ``{mutant name: exit code}``, sorted by module."""
    listed = set(equivalents)
    scores: dict[str, ModuleScore] = {}
    for name, code in exit_codes.items():
        match = NAME.match(name)
        if not match:
            raise ChurnError(f"mutmut results: unexpected mutant name {name!r}")
        score = scores.setdefault(match["module"], ModuleScore(match["module"]))
        if is_shell(name):
            score.shell += 1
        elif name in listed:
            score.equivalent += 1
        else:
            _count(score, name, code)
    return [scores[module] for module in sorted(scores)]


def render(scores: list[ModuleScore], floor: float) -> str:
    """The per-module table, then the total."""
    lines = [
        f"{'module':<24}{'scored':>7}{'killed':>7}{'missed':>7}{'equiv':>6}{'shell':>7}  score",
    ]
    for s in scores:
        mark = "" if s.score >= floor else f"  < {floor:g} %"
        lines.append(
            f"{s.module:<24}{s.scored:>7}{s.killed + s.timeout:>7}{len(s.missed):>7}"
            f"{s.equivalent:>6}{s.shell:>7}  {s.score:5.1f} %{mark}"
        )
    scored = sum(s.scored for s in scores)
    killed = sum(s.killed + s.timeout for s in scores)
    total = 100.0 * killed / scored if scored else 100.0
    lines.append(f"{'all':<24}{scored:>7}{killed:>7}{scored - killed:>7}{'':>13}  {total:5.1f} %")
    return "\n".join(lines)


def read_exit_codes(mutants: Path) -> dict[str, int | None]:
    """``{mutant name: exit code}`` from the ``.meta`` files mutmut writes beside each module."""
    codes: dict[str, int | None] = {}
    for meta in sorted(mutants.glob("src/**/*.py.meta")):
        codes.update(json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"])
    if not codes:
        raise ChurnError(f"{mutants}: mutmut wrote no results")
    return codes


def run_mutmut(root: Path, max_children: int) -> dict[str, int | None]:
    """A fresh ``mutmut run`` in ``root`` (nothing cached from older code); its results.

    mutmut's log goes to ``mutants/mutmut.log``; its tail is shown if the run fails.
    """
    mutants = root / "mutants"
    shutil.rmtree(mutants, ignore_errors=True)
    mutants.mkdir()
    mutmut = shutil.which("mutmut", path=os.path.dirname(sys.executable)) or "mutmut"
    # scikit-learn's OpenMP threads spin while they wait. With one mutant per core, a
    # spinning gradient-boosting fit beside another mutant's busy loop ran 50x slower
    # than alone and timed out: a "kill" decided by the neighbour. Waiting threads that
    # sleep compute the same numbers.
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    with (mutants / "mutmut.log").open("wb") as out:
        done = subprocess.run(
            [mutmut, "run", "--max-children", str(max_children)],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        tail = (mutants / "mutmut.log").read_text(encoding="utf-8", errors="replace")[-2000:]
        sys.stderr.write(tail + "\n")
        raise ChurnError(f"mutmut run failed with exit {done.returncode} (log: mutants/mutmut.log)")
    return read_exit_codes(mutants)


def main(argv: list[str] | None = None) -> int:
    """Run mutmut, print the per-module scores; 1 when a module is under the floor."""
    parser = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__)
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--floor", type=float, default=FLOOR, help="percent (default 90)")
    parser.add_argument(
        "--no-run", action="store_true", help="score the results already in mutants/"
    )
    args = parser.parse_args(argv)
    text = (REPO_ROOT / EQUIVALENTS).read_text(encoding="utf-8")
    equivalents = parse_equivalents(text, EQUIVALENTS)
    if args.no_run:
        codes = read_exit_codes(REPO_ROOT / "mutants")
    else:
        codes = run_mutmut(REPO_ROOT, args.max_children)
    scores = score_modules(codes, equivalents)
    print(render(scores, args.floor))  # noqa: T201 (the table is the output)
    problems = stale_equivalents(codes, equivalents, EQUIVALENTS)
    problems += changed_equivalents(REPO_ROOT / "mutants", equivalents, EQUIVALENTS)
    low = [s for s in scores if s.score < args.floor]
    for s in low:
        problems.append(f"{s.module}: {s.score:.1f} % is under {args.floor:g} %; missed:")
        problems.extend(f"  {name}" for name in s.missed)
    for line in problems:
        print(line, file=sys.stderr)  # noqa: T201
    if problems:
        print("see a mutant with: mutmut show <name>", file=sys.stderr)  # noqa: T201
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(entry.run(main))
