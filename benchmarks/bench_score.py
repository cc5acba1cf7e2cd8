"""Benchmark: what does ``churn score`` cost on top of ``model.predict_proba``, and in memory?

Run as ``python -m benchmarks.bench_score`` (``make bench-score``) from a checkout whose
model is in the workspace (``dvc repro`` or ``dvc pull`` first). Inputs are a seeded
resample of the test split (ids 1..N), 1M and 10M rows, written once as Parquet and CSV
into ``bench-results/score/`` a million rows at a time, and reused by later runs.

* bare: the workspace model's ``predict_proba`` on the same rows, already in memory,
  in this process (BLAS on one thread, as the command runs it), in blocks of
  ``BARE_BLOCK`` rows (one call on 10M rows would build a dense matrix of several GB);
  only the calls are timed, not the reading;
* ``churn score`` (local engine, Parquet in and out, validation included) as a child
  process: its wall time, and its peak RSS (its ``VmHWM``, see :func:`score`);
* ``churn score --engine dask`` on a local cluster at 1M rows: wall time, and its output
  compared byte for byte with the local engine's.
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
    resample_rows,
    target_lines,
)

PIECE = 1_000_000  # rows generated, and read for the bare run, at a time
BARE_BLOCK = 131_072
SIZES = {"1M": 1_000_000, "10M": 10_000_000}
TARGETS = (
    Target("10M.ratio", "churn score / bare rows/s, 10M", 0.6, "x", at_least=True),
    Target("10M.score.max_rss_bytes", "peak RSS of churn score, 10M", 1.5 * GB, "B"),
    Target("rss_growth", "peak RSS 10M / 1M", 1.3, "x"),
    Target("dask.identical", "Dask output identical (1 = yes)", 1, "x", at_least=True),
)


def pieces(rows: int, piece: int = PIECE) -> list[tuple[int, int]]:
    """``[start, stop)`` spans of at most ``piece`` rows covering ``rows`` rows."""
    return [(start, min(start + piece, rows)) for start in range(0, rows, piece)]


def make_inputs(scratch: Path, rows: int, seed: int) -> dict[str, Path]:
    """The resampled test split as Parquet and CSV (kept: made once per size and seed)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = f"customers-{rows}-{seed}"
    paths = {"parquet": scratch / f"{name}.parquet", "csv": scratch / f"{name}.csv"}
    if all(p.is_file() for p in paths.values()):
        return paths
    test = pd.read_parquet(REPO_ROOT / "data/prepared/test.parquet").reset_index()
    id_column = test.columns[0]
    scratch.mkdir(parents=True, exist_ok=True)
    tmp = {kind: p.with_name(f".{p.name}.tmp") for kind, p in paths.items()}
    writer = None
    for i, (start, stop) in enumerate(pieces(rows)):
        frame = resample_rows(test, stop - start, seed + i, None)
        frame[id_column] = range(start + 1, stop + 1)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = writer or pq.ParquetWriter(tmp["parquet"], table.schema)
        writer.write_table(table, row_group_size=PIECE)
        frame.to_csv(tmp["csv"], mode="a", header=i == 0, index=False)
    if writer is not None:
        writer.close()
    for kind, path in paths.items():
        tmp[kind].replace(path)
    return paths


def bare_rows_per_second(parquet: Path) -> float:
    """``predict_proba`` rows/s over the file's rows, read a piece at a time (reading untimed)."""
    import pyarrow.parquet as pq
    from threadpoolctl import threadpool_limits

    from churn.core.bundle import load_bundle

    bundle = load_bundle(None, REPO_ROOT)
    features = bundle.contract.features
    seconds, rows = 0.0, 0
    with threadpool_limits(limits=1, user_api="blas"):
        for batch in pq.ParquetFile(parquet).iter_batches(batch_size=PIECE, columns=features):
            frame = batch.to_pandas()
            start = time.perf_counter()
            for i in range(0, len(frame), BARE_BLOCK):
                bundle.model.predict_proba(frame.iloc[i : i + BARE_BLOCK])
            seconds += time.perf_counter() - start
            rows += len(frame)
    return rows / seconds


def peak_rss(pid: int) -> int | None:
    """The process's peak RSS since its exec (``VmHWM``), or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def score(src: Path, out: Path, logs: Path, *extra: str) -> dict[str, Any]:
    """``churn score`` as a child process: wall time, rows/s and peak RSS.

    The peak is the child's own ``VmHWM``, polled every 50 ms: ``wait4``'s maxrss would
    also count the pages of this (large) process that the child shared before its exec.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    cmd = [sys.executable, "-m", "churn", "score", "--input", str(src), "--output", str(out)]
    logs.parent.mkdir(parents=True, exist_ok=True)
    peak = 0
    with logs.open("ab") as log:
        start = time.perf_counter()
        proc = subprocess.Popen([*cmd, *extra], cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
        while proc.poll() is None:
            peak = max(peak, peak_rss(proc.pid) or 0)
            time.sleep(0.05)
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"`{' '.join(cmd)}` exited {proc.returncode} (log: {logs})")
    return {"seconds": seconds, "max_rss_bytes": peak}


def run_benchmark(scratch: Path, seed: int) -> dict[str, Any]:
    """Every size: inputs, bare, local; then Dask at 1M."""
    results: dict[str, Any] = {"machine": machine_info()}
    outputs = {}
    for label, rows in SIZES.items():
        paths = make_inputs(scratch, rows, seed)
        bare = bare_rows_per_second(paths["parquet"])
        outputs[label] = scratch / f"scores-{label}.parquet"
        local = score(paths["parquet"], outputs[label], scratch / "score.log")
        local["rows_per_second"] = rows / local["seconds"]
        results[label] = {
            "rows": rows,
            "bare_rows_per_second": bare,
            "score": local,
            "ratio": local["rows_per_second"] / bare,
        }
        print(label, json.dumps(results[label]), flush=True)  # noqa: T201
    small = make_inputs(scratch, SIZES["1M"], seed)["parquet"]
    dask_out = scratch / "scores-1M-dask.parquet"
    dask = score(small, dask_out, scratch / "score.log", "--engine", "dask")
    dask["rows_per_second"] = SIZES["1M"] / dask["seconds"]
    dask["identical"] = int(dask_out.read_bytes() == outputs["1M"].read_bytes())
    results["dask"] = dask
    results["rss_growth"] = (
        results["10M"]["score"]["max_rss_bytes"] / results["1M"]["score"]["max_rss_bytes"]
    )
    return results


def format_report(results: dict[str, Any]) -> str:
    """Plain-text table of the measurements, then the targets."""
    m = results["machine"]
    lines = [
        f"machine: {m['platform']}, {m['cpu_count']} CPUs, "
        f"{fmt_value(m['memory_bytes'], 'B')} RAM, Python {m['python']}",
        f"  {'rows':>6}  {'bare rows/s':>12}  {'score rows/s':>12}  {'ratio':>6}  {'peak RSS':>9}",
    ]
    for label in SIZES:
        r = results[label]
        lines.append(
            f"  {label:>6}  {r['bare_rows_per_second']:>12,.0f}  "
            f"{r['score']['rows_per_second']:>12,.0f}  {r['ratio']:>6.2f}  "
            f"{fmt_value(r['score']['max_rss_bytes'], 'B'):>9}"
        )
    d = results["dask"]
    lines.append(
        f"  dask local cluster, 1M: {d['rows_per_second']:,.0f} rows/s, "
        f"output identical: {'yes' if d['identical'] else 'NO'}"
    )
    return "\n".join(
        [*lines, "targets:", *target_lines(check_targets(results, TARGETS), fmt_value)]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the report, write JSON beside the inputs; 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=REPO_ROOT / "bench-results" / "score")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    results = run_benchmark(args.scratch, args.seed)
    (args.scratch / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(format_report(results))  # noqa: T201
    return 0 if all(t["status"] == "met" for t in check_targets(results, TARGETS)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
