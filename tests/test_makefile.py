"""The Makefile: one-line wrappers around `churn`, help that prints plain text, no injection."""

import os
import re
import subprocess

import pytest

from conftest import REPO, free_port

STAMP = ".venv/.installed-stamp"


# Set by an outer make (`make test`): the inner one would call itself make[1] and
# take the outer one's flags.
OUTER_MAKE = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # -o STAMP: never (re)install here.
    base = {key: value for key, value in os.environ.items() if key not in OUTER_MAKE}
    return subprocess.run(
        ["make", "--no-print-directory", "-o", STAMP, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**base, **(env or {})},
        timeout=120,
    )


def churn_lines(stderr: str) -> list[str]:
    """Stderr without make's own closing line (``make: *** [release] Error 1``)."""
    return [line for line in stderr.splitlines() if not line.startswith("make: ***")]


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
        ("sweep", 'churn sweep queue --grid "$GRID" --jobs "${JOBS:-1}"'),
        (
            "score",
            'churn score --input "$INPUT" --output "$OUTPUT" --chunk-rows "${CHUNK_ROWS:-131072}" '
            '--on-error "${ON_ERROR:-fail}" --engine "${ENGINE:-local}" '
            '${SCHEDULER:+--scheduler "$SCHEDULER"}',
        ),
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
    assert churn_lines(result.stderr) == [
        f"error: VERSION {version[:40]!r}... ({len(version)} characters): expected "
        "MAJOR.MINOR.PATCH, e.g. 1.0.0 (each part 0 or up to 6 digits without a leading zero; "
        "a leading v is allowed)"
    ]
    assert not marker.exists()


@pytest.mark.parametrize(
    "version", ["1.0.0; touch x", "1.0.1234567", "1.0." + "9" * 5000, "v01.0.0", "$(touch x)"]
)
def test_a_bad_version_is_one_line_before_any_work(version):
    result = make("release", env={"VERSION": version})
    assert result.returncode == 2
    lines = churn_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: VERSION '")
    assert "Traceback" not in result.stderr
    assert not (REPO / "x").exists()


def test_a_model_ref_is_never_an_option_to_git(tmp_path):
    """MODEL_REF='--output=FILE' once reached `git show` as an option and wrote FILE."""
    target = tmp_path / "x"
    result = make("serve", env={"MODEL_REF": f"--output={target}", "PORT": str(free_port())})
    assert result.returncode == 2
    lines = churn_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: MODEL_REF '--output=/")
    assert lines[0].endswith(
        ": expected <artifact>@vX.Y.Z, <artifact>#<stage>[#N] or a commit hash (7-40 hex digits)"
    )
    assert not target.exists()


def test_score_reads_its_paths_as_values_never_shell_code(tmp_path):
    marker = tmp_path / "ran"
    path = f"in.csv; touch {marker}"
    result = make("score", env={"INPUT": path, "OUTPUT": str(tmp_path / "out.parquet")})
    assert result.returncode == 2
    lines = churn_lines(result.stderr)
    assert lines[-1] == f"error: {path}: the input must be .csv or .parquet (got 'no suffix')"
    assert not marker.exists()


def test_a_sweep_grid_is_one_argument_never_shell_code(tmp_path):
    # Checked against params.yaml before DVC is asked anything: nothing runs, nothing queued.
    marker = tmp_path / "ran"
    grid = f"train.seed=1,2; touch {marker}"
    result = make("sweep", env={"GRID": grid})
    assert result.returncode == 2
    assert churn_lines(result.stderr) == [
        "error: grid: cannot read 'train.seed=1,2;': LexerNoViableAltException: train.seed=1,2;"
    ]
    assert not marker.exists()
