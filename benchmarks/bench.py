"""Benchmark: how much does ``dvc repro`` cost on top of the stages' own work?

Run as ``python -m benchmarks.bench`` (``make bench``). Everything happens in a
temporary copy of this repository (the files ``git ls-files`` lists, committed
into a fresh git repository, DVC remote and site cache inside the temp dir), so
the working tree, its DVC cache and its remote are never touched.

For the real dataset and for a resampled large one (``--rows``), it times
``dvc repro -f --downstream prepare`` (prepare, featurize, train, evaluate; not
fetch) against the *floor*: the same four ``main()`` functions called one after
another in a single fresh Python process, each inside the same one-thread BLAS
limit as :func:`churn.core.entry.run`. The floor's timer starts after the stage
modules are imported (import time is reported separately), so the ratio is the
full price of running through DVC: one interpreter start-up and import per
stage, plus DVC's own hashing, caching and locking. Peak RSS is taken from
``wait4`` of each measured process, so earlier runs never pollute it. The floor
imports ``churn`` from this checkout's ``src``, whose files the copy mirrors.
"""

import argparse
import importlib
import json
import logging
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tools.sandbox import REPO_ROOT, copy_repo, init_repo, quiet, tool_env

from churn.core.errors import ChurnError

log = logging.getLogger("churn.bench")

STAGES = ("prepare", "featurize", "train", "evaluate")
FORCE_CMD = ("dvc", "repro", "-f", "--downstream", "prepare")
NOOP_CMD = ("dvc", "repro")
NOOP_RUNS = 5
DEFAULT_ROWS = 1_000_000
GB = 1e9  # decimal units: a target of 4 GB means 4e9 bytes
MB = 1e6


class BenchError(ChurnError):
    """A measured command failed; the message says which and where its log is."""


@dataclass(frozen=True)
class Run:
    """One measured process: wall time and peak resident set size of its whole tree."""

    seconds: float
    max_rss_bytes: int


@dataclass(frozen=True)
class Target:
    """A goal: the value at ``key`` (dotted path) must be at most (or at least) ``limit``."""

    key: str
    label: str
    limit: float
    unit: str
    at_least: bool = False


TARGETS = (
    Target("default.ratio", "repro/floor ratio, default size", 2.0, "x"),
    Target("large.ratio", "repro/floor ratio, large size", 1.2, "x"),
    Target("large.dvc_repro.max_rss_bytes", "peak RSS of dvc repro, large size", 4 * GB, "B"),
    Target("default.noop_seconds", "no-op dvc repro (median)", 1.2, "s"),
    Target("large.floor.validation_share", "validation share of prepare, large", 0.25, "%"),
    Target("large.monitor_seconds", "make monitor on the 1M-row batch", 30.0, "s"),
)


# --------------------------------------------------------------------------- pure helpers


def resample_rows(frame: Any, rows: int, seed: int, id_column: str | None) -> Any:
    """Draw ``rows`` rows of ``frame`` with replacement; give each a new unique id.

    Args:
        frame: The raw table (a pandas DataFrame, ideally read with ``dtype=str``).
        rows: How many rows to draw.
        seed: Seed of the numpy Generator; equal seeds give equal output.
        id_column: Column that gets the ids ``1..rows``; ``None`` leaves columns as drawn.

    Returns:
        A new DataFrame with the columns of ``frame`` and a fresh RangeIndex.
    """
    import numpy as np

    if rows < 1 or frame.empty:
        raise ValueError(f"need at least one row to draw and one to draw from (rows={rows})")
    picks = np.random.default_rng(seed).integers(0, len(frame), size=rows)
    out = frame.iloc[picks].reset_index(drop=True)
    if id_column is not None:
        out[id_column] = np.arange(1, rows + 1)
    return out


def dig(results: Mapping[str, Any], key: str) -> Any:
    """Return ``results[a][b]...`` for ``key`` ``"a.b..."``, or None if any part is missing."""
    node: Any = results
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def target_status(value: float | None, limit: float, at_least: bool = False) -> str:
    """Classify a measurement against a limit: ``met``, ``NOT MET`` or ``skipped``."""
    if value is None:
        return "skipped"
    met = value >= limit if at_least else value <= limit
    return "met" if met else "NOT MET"


def check_targets(
    results: Mapping[str, Any], targets: Sequence[Target] = TARGETS
) -> list[dict[str, Any]]:
    """Compare every target with its measurement in ``results``.

    Args:
        results: Nested results as built by :func:`run_benchmark`.
        targets: The goals to check.

    Returns:
        One dict per target: key, label, limit, unit, value (None if not measured), status.
    """
    checked = []
    for target in targets:
        value = dig(results, target.key)
        checked.append(
            {
                **asdict(target),
                "value": value,
                "status": target_status(value, target.limit, target.at_least),
            }
        )
    return checked


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, or infinity when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else float("inf")


def fmt_value(value: float | None, unit: str) -> str:
    """Format seconds (``s``), bytes (``B``, as MB or GB), a ratio (``x``) or a share (``%``)."""
    if value is None:
        return "-"
    if unit == "B":
        return f"{value / GB:.2f} GB" if value >= GB else f"{value / MB:.0f} MB"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "%":
        return f"{value * 100:.0f} %"
    return f"{value:.2f} s"


def size_label(rows: int) -> str:
    """``7,043 rows`` or ``1M rows``."""
    if rows >= 1_000_000 and rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M rows"
    return f"{rows:,} rows"


def machine_info() -> dict[str, Any]:
    """Platform, CPU count, Python version and total memory of this machine."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "memory_bytes": memory,
    }


# --------------------------------------------------------------------------- processes


def run_timed(cmd: Sequence[str], cwd: Path, env: Mapping[str, str], log_file: Path) -> Run:
    """Run ``cmd`` to completion; return its wall time and the peak RSS of its process tree.

    ``wait4`` reports the maximum RSS over the child and every descendant it waited
    for, and nothing else, so earlier commands cannot inflate it. Output goes to
    ``log_file``.

    Raises:
        BenchError: If the command exits non-zero.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise BenchError(
            f"`{' '.join(cmd)}` exited {proc.returncode} (log: {log_file})\n" + "\n".join(tail)
        )
    return Run(seconds=seconds, max_rss_bytes=usage.ru_maxrss * 1024)  # Linux: KiB


def floor_in_subprocess(repo: Path, env: Mapping[str, str], log_file: Path) -> dict[str, Any]:
    """Run :func:`floor_worker` in a fresh interpreter inside ``repo``; return its report."""
    report = log_file.with_suffix(".json")
    cmd = [sys.executable, "-m", "benchmarks.bench", "--floor-worker", str(report)]
    outer = run_timed(cmd, repo, env, log_file)
    result = json.loads(report.read_text(encoding="utf-8"))
    result["process_seconds"] = outer.seconds  # incl. interpreter start-up and imports
    return result


def floor_worker(report: Path) -> None:
    """Import the four stages, then time each ``main()`` in this process; write JSON.

    Called in a fresh interpreter whose working directory is the repository copy.
    The timer starts only after the imports; their time is reported on its own.
    """
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    modules = [importlib.import_module(f"churn.stages.{name}") for name in STAGES]
    import_seconds = time.perf_counter() - start
    # contract.py imports pandera lazily (only prepare needs it); time it on its own.
    start = time.perf_counter()
    importlib.import_module("pandera.pandas")
    pandera_import_seconds = time.perf_counter() - start
    stages: dict[str, float] = {}
    for name, module in zip(STAGES, modules, strict=True):
        begin = time.perf_counter()
        with threadpool_limits(limits=1, user_api="blas"):  # as churn.core.entry.run does
            module.main()
        stages[name] = time.perf_counter() - begin
    validation = time_validation()
    result = {
        "seconds": sum(stages.values()),
        "stages": stages,
        "validation_seconds": validation,
        # What validating costs prepare, relative to prepare without it.
        "validation_share": ratio(validation, stages["prepare"] - validation),
        "import_seconds": import_seconds,
        "pandera_import_seconds": pandera_import_seconds,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    report.write_text(json.dumps(result, sort_keys=True), encoding="utf-8")


def time_validation() -> float:
    """Seconds prepare spends checking the copy's raw file: file-level checks and contract.

    pandera is already imported by then; the CSV parse itself is not counted.
    """
    from churn.core.contract import resolve_contract, validate
    from churn.core.params import load_params
    from churn.stages.prepare import check_file, parse_csv

    params = load_params()
    path = Path(params.paths.raw)
    raw = parse_csv(path)
    start = time.perf_counter()
    check_file(raw, path)
    validate(raw, resolve_contract(params.data, raw, str(path)), str(path))
    return time.perf_counter() - start


# --------------------------------------------------------------------------- data


def read_params(repo: Path) -> dict[str, Any]:
    """The copy's ``params.yaml`` as plain data."""
    import yaml

    return yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))


def count_rows(path: Path) -> int:
    """Number of data rows of a CSV."""
    import pandas as pd

    return len(pd.read_csv(path, dtype=str, keep_default_na=False))


def make_large_csv(repo: Path, rows: int, seed: int) -> Path:
    """Write a ``rows``-row resampled raw CSV into ``repo`` and point ``paths.raw`` at it.

    Cells are read and written as text, so every value (blanks included) keeps the
    exact spelling it has in the real file; only the id column is renumbered.
    """
    import pandas as pd
    import yaml

    params = read_params(repo)
    raw = pd.read_csv(repo / params["paths"]["raw"], dtype=str, keep_default_na=False)
    big = resample_rows(raw, rows, seed, params["data"]["id"])
    rel = f"data/raw/bench_{rows}.csv"
    big.to_csv(repo / rel, index=False, lineterminator="\n")
    params["paths"]["raw"] = rel
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    log.info("wrote %s (%.0f MB)", rel, (repo / rel).stat().st_size / MB)
    return repo / rel


# --------------------------------------------------------------------------- measuring


def measure_monitor(repo: Path, env: Mapping[str, str], batch: Path, logs: Path) -> float:
    """Seconds `churn monitor` takes on ``batch`` (exit 0 or 1 both count)."""
    cmd = [
        sys.executable,
        "-m",
        "churn",
        "monitor",
        "--input",
        str(batch),
        "--out",
        str(logs / "monitor"),
    ]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=repo, env=dict(env), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise BenchError(
            f"`{' '.join(cmd)}` exited {done.returncode}: {done.stderr.strip()[-500:]}"
        )
    return seconds


def measure_noop(repo: Path, env: Mapping[str, str], logs: Path) -> list[float]:
    """Time ``dvc repro`` with nothing to do, ``NOOP_RUNS`` times."""
    seconds = []
    for i in range(NOOP_RUNS):
        log_file = logs / f"noop-{i}.log"
        seconds.append(run_timed(NOOP_CMD, repo, env, log_file).seconds)
        if "up to date" not in log_file.read_text(encoding="utf-8", errors="replace"):
            log.warning("no-op dvc repro did work; see %s", log_file)
    return seconds


def measure_size(repo: Path, env: Mapping[str, str], logs: Path, rows: int) -> dict[str, Any]:
    """Forced ``dvc repro`` of the four stages, no-op repro, then the in-process floor."""
    log.info("%s: dvc repro -f --downstream prepare", size_label(rows))
    repro = run_timed(FORCE_CMD, repo, env, logs / "repro.log")
    log.info("%s: dvc repro took %.2f s; timing no-op dvc repro", size_label(rows), repro.seconds)
    noop = measure_noop(repo, env, logs)
    log.info("%s: in-process floor", size_label(rows))
    floor = floor_in_subprocess(repo, env, logs / "floor.log")
    # The floor rewrote the outputs in its own process, whose pickle of the model differs
    # in bytes from the stage's (pickle's memo); put back what dvc.lock records, which is
    # what `churn monitor` checks before it unpickles the model.
    quiet(["dvc", "checkout", "--force", "--quiet"], repo, env)
    return {
        "rows": rows,
        "dvc_repro": asdict(repro),
        "floor": floor,
        "ratio": ratio(repro.seconds, floor["seconds"]),
        "noop_seconds": statistics.median(noop),
        "noop_runs": noop,
    }


def run_benchmark(scratch: Path, rows: int, seed: int) -> dict[str, Any]:
    """Copy the repository into ``scratch`` and measure the default and the large size."""
    env = tool_env()
    repo = copy_repo(REPO_ROOT, scratch / "repo")
    init_repo(repo, scratch, env)
    log.info("warm-up: dvc repro in %s", repo)
    warmup = run_timed(NOOP_CMD, repo, env, scratch / "logs" / "warmup.log")
    log.info("warm-up took %.1f s", warmup.seconds)
    default_rows = count_rows(repo / read_params(repo)["paths"]["raw"])
    results: dict[str, Any] = {
        "machine": machine_info(),
        "seed": seed,
        "default": measure_size(repo, env, scratch / "logs" / "default", default_rows),
    }
    if rows > 0:
        log.info("writing a %s CSV (seed %d)", size_label(rows), seed)
        start = time.perf_counter()
        batch = make_large_csv(repo, rows, seed)
        results["csv_seconds"] = time.perf_counter() - start
        results["large"] = measure_size(repo, env, scratch / "logs" / "large", rows)
        log.info("%s: make monitor on the same file", size_label(rows))
        results["large"]["monitor_seconds"] = measure_monitor(repo, env, batch, scratch / "logs")
    results["targets"] = check_targets(results)
    return results


# --------------------------------------------------------------------------- report


def size_rows(size: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Table cells (label, value) of one size, top to bottom."""
    floor, repro = size["floor"], size["dvc_repro"]
    cells = [
        ("dvc repro -f (4 stages)", fmt_value(repro["seconds"], "s")),
        ("in-process floor", fmt_value(floor["seconds"], "s")),
    ]
    cells += [(f"  {name}", fmt_value(floor["stages"][name], "s")) for name in STAGES]
    cells += [
        ("    of prepare: contract validation", fmt_value(floor.get("validation_seconds"), "s")),
        ("    validation / rest of prepare", fmt_value(floor.get("validation_share"), "%")),
        ("    pandera import (excluded)", fmt_value(floor.get("pandera_import_seconds"), "s")),
        ("  (stage imports, excluded)", fmt_value(floor["import_seconds"], "s")),
        ("ratio repro / floor", fmt_value(size["ratio"], "x")),
        ("peak RSS, dvc repro", fmt_value(repro["max_rss_bytes"], "B")),
        ("peak RSS, floor", fmt_value(floor["max_rss_bytes"], "B")),
        (f"no-op dvc repro (median of {NOOP_RUNS})", fmt_value(size["noop_seconds"], "s")),
        ("make monitor on this file", fmt_value(size.get("monitor_seconds"), "s")),
    ]
    return cells


def format_report(results: Mapping[str, Any]) -> str:
    """The human-readable table printed at the end."""
    machine = results["machine"]
    memory = machine["memory_bytes"]
    sizes = [results[k] for k in ("default", "large") if k in results]
    columns = [[cell for _, cell in size_rows(size)] for size in sizes]
    labels = [label for label, _ in size_rows(sizes[0])]
    lines = [
        "churn pipeline benchmark",
        f"machine: {machine['platform']}, {machine['cpu_count']} CPUs, "
        f"Python {machine['python']}, {fmt_value(memory, 'B')} RAM",
        "floor: the 4 stage main()s in one fresh Python process, timed after importing",
        "them (import time shown, not counted); dvc repro pays start-up + imports per stage.",
        "",
        f"{'':38}" + "".join(f"{size_label(s['rows']):>16}" for s in sizes),
    ]
    for i, label in enumerate(labels):
        lines.append(f"{label:38}" + "".join(f"{col[i]:>16}" for col in columns))
    lines += ["", "targets (from the issue)"]
    lines += target_lines(results["targets"], fmt_value)
    return "\n".join(lines)


def target_lines(targets: Sequence[Mapping[str, Any]], fmt: Callable[[Any, str], str]) -> list[str]:
    """One line per checked target: label, goal, measured value, status."""
    lines = []
    for t in targets:
        goal = f"{'>=' if t.get('at_least') else '<='} {fmt(t['limit'], t['unit'])}"
        lines.append(f"  {t['label']:38}{goal:>12}{fmt(t['value'], t['unit']):>12}  {t['status']}")
    return lines


# --------------------------------------------------------------------------- entry point


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description="Time dvc repro against the in-process floor.",
    )
    parser.add_argument(
        "--rows", type=int, default=DEFAULT_ROWS, help="rows of the large run; 0 skips it"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for resampling the large CSV")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and print its path")
    parser.add_argument("--json", type=Path, help="also write the results here (sorted keys)")
    parser.add_argument("--floor-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.floor_worker:
        floor_worker(args.floor_worker)
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="churn-bench-"))
    start = time.perf_counter()
    try:
        results = run_benchmark(scratch, args.rows, args.seed)
    except ChurnError as err:
        print(f"error: {err}", file=sys.stderr)  # noqa: T201 (the one-line message is the interface)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    results["bench_seconds"] = time.perf_counter() - start
    text = f"{format_report(results)}\n\nbenchmark took {results['bench_seconds']:.0f} s"
    if args.keep:
        text += f"\nkept temp dir: {scratch}"
    print(text)  # noqa: T201 (the table is the output)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
