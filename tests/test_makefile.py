"""The Makefile: one-line wrappers around `churn`, help that prints plain text, no injection."""

import re
import subprocess

import pytest

from conftest import REPO

STAMP = ".venv/.installed-stamp"


def make(*args: str) -> subprocess.CompletedProcess:
    # -o STAMP: never (re)install here; -n: print the recipe instead of running it.
    return subprocess.run(
        ["make", "--no-print-directory", "-o", STAMP, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


def recipes() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    target = None
    for line in (REPO / "Makefile").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([a-z-]+):", line)
        if match:
            target = match.group(1)
            found[target] = []
        elif line.startswith("\t") and target:
            found[target].append(line.strip())
    return found


def test_help_lists_every_target_in_plain_text():
    result = make("help")
    assert result.returncode == 0
    assert "$" not in result.stdout
    listed = [line.split()[1] for line in result.stdout.splitlines()]
    assert set(listed) == set(recipes())


@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("report", 'churn report --base "$BASE" --out report.md $REPORT_ARGS'),
        ("release", 'churn release create "$VERSION"'),
        ("promote", 'churn release promote "$VERSION" "$STAGE"'),
        ("serve", "churn serve"),
        ("monitor", 'churn monitor --input "$INPUT" --out "$OUT"'),
        ("remote-check", 'churn remote check ${REMOTE:+"$REMOTE"}'),
    ],
)
def test_user_targets_are_one_line_wrappers_around_churn(target, command):
    assert recipes()[target] == [command.replace("$", "$$")]


def test_a_value_is_one_argument_never_shell_code(tmp_path):
    # The recipe reads VERSION from the environment, so `;`, backquotes and `|` stay text:
    # the whole value reaches churn as one (invalid) version and nothing else runs.
    marker = tmp_path / "ran"
    version = f"1.0.0; touch {marker}; `touch {marker}` | touch {marker}"
    result = make("release", f"VERSION={version}")
    assert result.returncode == 2  # make's code for a failed recipe
    assert f"error: VERSION {version!r}: expected MAJOR.MINOR.PATCH" in result.stderr
    assert not marker.exists()
