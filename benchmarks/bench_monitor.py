"""Benchmark: ``churn monitor`` on a large batch: wall time and peak memory.

Run as ``python -m benchmarks.bench_monitor`` (``make bench-monitor``) from a checkout whose
pipeline outputs are in the workspace (``dvc repro`` or ``dvc pull`` first). The batch is a
seeded resample of the test split, made as ``make bench-score`` makes its input (CSV and
Parquet, written once into ``bench-results/monitor/`` and reused): 1M rows by default;
``--rows 1000000 4000000`` shows whether memory stays flat as the batch grows.

Each size runs ``churn monitor`` on the CSV as a child process, timed from start to exit
(imports, the md5 check and unpickling of the model, validation, scoring and the report
included); its peak RSS is its own ``VmHWM`` (see :func:`benchmarks.bench_score.peak_rss`).
The machine's load average is recorded beside: on a shared machine the wall time depends on it.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.sandbox import REPO_ROOT

from benchmarks.bench import (
    GB,
    BenchError,
    Target,
    check_targets,
    fmt_value,
    machine_info,
    target_lines,
)
from benchmarks.bench_score import make_inputs, peak_rss

BASE_ROWS = 1_000_000
TARGETS = (
    Target("1M.seconds", "churn monitor wall, 1M-row CSV", 8.0, "s"),
    Target("1M.max_rss_bytes", "peak RSS of churn monitor, 1M", 1 * GB, "B"),
    # As make bench-score's: the peak of a chunked run still moves with the allocator's
    # fragmentation over more chunks, not with the rows held.
    Target("rss_growth", "peak RSS largest batch / 1M", 1.3, "x"),
)


def label(rows: int) -> str:
    """``1M`` for a whole number of millions, else the number of rows."""
    return f"{rows // 1_000_000}M" if rows % 1_000_000 == 0 else str(rows)


def rss_growth(results: dict[str, Any], sizes: Sequence[int]) -> float | None:
    """Peak RSS of the largest batch over the 1M one's (None without both)."""
    largest = max(sizes)
    if BASE_ROWS not in sizes or largest == BASE_ROWS:
        return None
    return results[label(largest)]["max_rss_bytes"] / results[label(BASE_ROWS)]["max_rss_bytes"]


def monitor(src: Path, out: Path, logs: Path) -> dict[str, Any]:
    """``churn monitor`` as a child process: wall time, peak RSS, exit status (0 or 1)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    cmd = [sys.executable, "-m", "churn", "monitor", "--input", str(src), "--out", str(out)]
    logs.parent.mkdir(parents=True, exist_ok=True)
    peak = 0
    load = os.getloadavg()[0]
    with logs.open("ab") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
        while proc.poll() is None:
            peak = max(peak, peak_rss(proc.pid) or 0)
            time.sleep(0.05)
        seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # 1 is drift, a result like 0
        raise BenchError(f"`{' '.join(cmd)}` exited {proc.returncode} (log: {logs})")
    return {
        "seconds": seconds,
        "max_rss_bytes": peak,
        "exit": proc.returncode,
        "load_before": load,
        "load_after": os.getloadavg()[0],
    }


def run_benchmark(scratch: Path, sizes: Sequence[int], seed: int) -> dict[str, Any]:
    """Every size: the batch (made once), then one timed run."""
    results: dict[str, Any] = {"machine": machine_info()}
    for rows in sizes:
        csv = make_inputs(scratch, rows, seed)["csv"]
        run = monitor(csv, scratch / f"report-{label(rows)}", scratch / "monitor.log")
        results[label(rows)] = {"rows": rows, **run}
        print(label(rows), json.dumps(results[label(rows)]), flush=True)  # noqa: T201
    results["rss_growth"] = rss_growth(results, sizes)
    return results


def format_report(results: dict[str, Any], sizes: Sequence[int]) -> str:
    """Plain-text table of the measurements, then the targets."""
    m = results["machine"]
    lines = [
        f"machine: {m['platform']}, {m['cpu_count']} CPUs, "
        f"{fmt_value(m['memory_bytes'], 'B')} RAM, Python {m['python']}",
        f"  {'rows':>6}  {'wall':>8}  {'peak RSS':>9}  {'exit':>4}  load average (1 min)",
    ]
    for rows in sizes:
        r = results[label(rows)]
        lines.append(
            f"  {label(rows):>6}  {fmt_value(r['seconds'], 's'):>8}  "
            f"{fmt_value(r['max_rss_bytes'], 'B'):>9}  {r['exit']:>4}  "
            f"{r['load_before']:.1f} before, {r['load_after']:.1f} after"
        )
    return "\n".join(
        [*lines, "targets:", *target_lines(check_targets(results, TARGETS), fmt_value)]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the report, write JSON beside the inputs; 1 if a measured target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=REPO_ROOT / "bench-results" / "monitor")
    parser.add_argument("--rows", type=int, nargs="+", default=[BASE_ROWS])
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    results = run_benchmark(args.scratch, args.rows, args.seed)
    (args.scratch / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(format_report(results, args.rows))  # noqa: T201
    checked = check_targets(results, TARGETS)
    return 0 if all(t["status"] != "NOT MET" for t in checked) else 1


if __name__ == "__main__":
    raise SystemExit(main())
