"""Benchmark: the pipeline's scale curve, what each stage costs, and two floors to compare with.

Run as ``python -m benchmarks.bench`` (``make bench``: 7,043, 100,000 and 1,000,000 rows,
plot into ``docs/scale.png``); ``--rows 10000000`` (or ``10M``) for the big one. Everything
happens in a temporary copy of this repository (the files ``git ls-files`` lists, committed
into a fresh git repository, DVC remote and site cache inside the temp dir), so the working
tree, its DVC cache and its remote are never touched. A warm-up ``dvc repro`` fetches the
real data and compiles the copy's bytecode before anything is timed.

The size equal to the real file's row count (7,043) is the real file as is; any other size
is a seeded resample of its rows with fresh ids. Per size, in this order:

1. ``dvc repro -f --downstream prepare`` (prepare, featurize, train, evaluate; not fetch).
2. No-op ``dvc repro``, median of ``--noop-runs``.
3. Each stage alone: its command from ``dvc.yaml`` run by itself, in order, outside DVC.
   Its wall time is the stage's process (interpreter start, imports, work) and its peak
   RSS the stage's own; the repro's wall minus their sum is DVC's share (its own start-up,
   hashing, caching, lock file). We do not time ``dvc repro -s <stage>`` per stage: each
   would pay DVC's start-up again, and its RSS would be DVC's process or the stage's,
   whichever is larger.
4. The in-process floor: the four ``main()``s one after another in one fresh process, each
   under the one-thread BLAS limit of :func:`churn.core.entry.run`, timed after importing
   the stage modules (the import time is reported beside it).
5. The plain script (:mod:`benchmarks.plain`): the same job written the obvious way in one
   scikit-learn process, timed from start to exit, imports included. It needs ~2 GB per
   million rows, so it is skipped above ``--plain-max-rows`` (default 4M; 10M would take
   ~20 GB).

Wall times are ``perf_counter`` around each process; CPU time (user + system) and peak RSS
come from ``wait4``: the sum, and the maximum, over the process and every descendant it
waited for, so earlier runs never pollute them. CPU time is the steadier figure when other
jobs share the machine; the targets are on wall time, as the issue states them. Once,
after the warm-up: each stage module's import time, a fresh ``python -c "import
churn.stages.<stage>"`` (best of three; the bare interpreter's start-up beside it). The
fixed toll per stage is (repro - floor) / 4: what running a stage in its own process under
DVC costs beyond its work.
"""

import argparse
import csv
import json
import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from io import StringIO
from pathlib import Path
from typing import Any

from tools.sandbox import REPO_ROOT, copy_repo, init_repo, tool_env

from churn.core.errors import ChurnError

log = logging.getLogger("churn.bench")

STAGES = ("prepare", "featurize", "train", "evaluate")
FORCE_CMD = ("dvc", "repro", "-f", "--downstream", "prepare")
NOOP_CMD = ("dvc", "repro")
NOOP_RUNS = 5
# Up to 1M rows the forced repro and the floor each run twice, alternating, and the faster
# of each counts: a single run read up to 2 s slow on this shared 2-core machine. Above
# that one run each (at 10M a forced repro takes minutes).
TIMED_RUNS = 2
TIMED_RUNS_MAX_ROWS = 1_000_000
IMPORT_RUNS = 3  # fresh interpreters per stage import; the best one counts
DEFAULT_ROWS = (7043, 100_000, 1_000_000)
CSV_CHUNK = 100_000
# The plain script holds object strings and dense copies: ~2 GB per million rows (8.3 GB at
# 4M), so above this size it is skipped unless --plain-max-rows says otherwise.
PLAIN_MAX_ROWS = 4_000_000  # resampled lines rendered and written at a time
GB = 1e9  # decimal units: a target of 4 GB means 4e9 bytes
MB = 1e6
ROW_SUFFIXES = {"k": 1_000, "m": 1_000_000}
ID_MARK = "\x00"  # stands for the id while a resampled row is rendered
# benchmarks.plain's phases (timings.json), in the order it runs them
PLAIN_PHASES = ("imports", "read", "clean_split", "fit", "evaluate", "importance")


class BenchError(ChurnError):
    """A measured command failed; the message says which and where its log is."""


@dataclass(frozen=True)
class Run:
    """One measured process: wall time, CPU time and peak resident set size of its whole tree.

    CPU time (user + system, every waited-for descendant) moves much less than wall time
    when other jobs share the machine.
    """

    seconds: float
    max_rss_bytes: int
    cpu_seconds: float


@dataclass(frozen=True)
class Target:
    """A goal: the value at ``key`` (dotted path) must be at most (or at least) ``limit``."""

    key: str
    label: str
    limit: float
    unit: str
    at_least: bool = False


# Issue 15's targets. A key names the size it applies at; a size not measured is skipped.
TARGETS = (
    Target("sizes.10000000.dvc_repro.max_rss_bytes", "peak RSS, dvc repro -f, 10M", 4 * GB, "B"),
    Target("sizes.10000000.dvc_repro.seconds", "dvc repro -f wall, 10M", 180.0, "s"),
    Target("sizes.1000000.ratio_floor", "repro / in-process floor, 1M", 1.2, "x"),
    Target("sizes.4000000.ratio_plain", "repro / plain script, 4M", 1.3, "x"),
    Target("sizes.7043.toll_per_stage", "fixed toll per stage, 7,043", 1.0, "s"),
    Target("sizes.7043.noop_seconds", "no-op dvc repro (median), 7,043", 1.0, "s"),
)
STATUS_WORDS = {"met": "pass", "NOT MET": "MISS", "skipped": "not measured"}


# --------------------------------------------------------------------------- pure helpers


def pick_rows(available: int, rows: int, seed: int) -> Any:
    """Indices of ``rows`` draws with replacement from ``available`` rows (numpy, seeded)."""
    import numpy as np

    if rows < 1 or available < 1:
        raise ValueError(f"need at least one row to draw and one to draw from (rows={rows})")
    return np.random.default_rng(seed).integers(0, available, size=rows)


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

    out = frame.iloc[pick_rows(len(frame), rows, seed)].reset_index(drop=True)
    if id_column is not None:
        out[id_column] = np.arange(1, rows + 1)
    return out


def csv_record(values: Sequence[Any]) -> str:
    """``values`` as one CSV record without its line end, quoted as the csv module quotes."""
    buf = StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    return buf.getvalue()


def record_parts(frame: Any, id_column: str | None) -> tuple[list[str], list[str]]:
    """Per row of ``frame``, the CSV text before and after its id field (with the commas).

    Each row is rendered whole with a NUL in place of its id (a character no raw file
    may hold: prepare refuses control characters), then cut at the NUL. Without an id
    column the whole record is the part before and nothing comes after.
    """
    at = list(frame.columns).index(id_column) if id_column is not None else None
    heads, tails = [], []
    for values in frame.itertuples(index=False, name=None):
        if at is None:
            heads.append(csv_record(values))
            tails.append("")
            continue
        head, _, tail = csv_record((*values[:at], ID_MARK, *values[at + 1 :])).partition(ID_MARK)
        heads.append(head)
        tails.append(tail)
    return heads, tails


def write_resampled_csv(
    frame: Any, path: Path, rows: int, seed: int, id_column: str | None, chunk: int = CSV_CHUNK
) -> None:
    """Write what :func:`resample_rows` draws as CSV, fast and in bounded memory.

    Each source row is rendered once; the output is those lines in the drawn order with
    the ids ``1..rows`` spliced in, written ``chunk`` lines at a time.
    """
    picks = pick_rows(len(frame), rows, seed)
    heads, tails = record_parts(frame, id_column)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(csv_record(list(frame.columns)) + "\n")
        for start in range(0, rows, chunk):
            block = picks[start : start + chunk].tolist()
            if id_column is None:
                out.write("".join(f"{heads[p]}\n" for p in block))
            else:
                numbered = enumerate(block, start + 1)
                out.write("".join(f"{heads[p]}{i}{tails[p]}\n" for i, p in numbered))
        # On disk before the timed runs start: the kernel writing back 1.5 GB of dirty
        # pages would otherwise overlap the first of them.
        out.flush()
        os.fsync(out.fileno())


def parse_rows(text: str) -> int:
    """A row count from the command line: ``7043``, ``100_000``, ``100k``, ``1M``, ``10m``."""
    cleaned = text.strip().lower().replace("_", "").replace(",", "")
    factor = ROW_SUFFIXES.get(cleaned[-1:], 1)
    digits = cleaned[:-1] if factor > 1 else cleaned
    if not digits.isdigit() or int(digits) * factor < 1:
        raise argparse.ArgumentTypeError(f"not a positive row count: {text!r}")
    return int(digits) * factor


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


def short_rows(rows: int) -> str:
    """An axis tick: ``7043``, ``100k``, ``1M``, ``2.5M``."""
    if rows >= 1_000_000:
        return f"{rows / 1_000_000:g}M"
    if rows >= 10_000 and rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


def summarize(
    rows: int,
    repro: Run,
    stages: Mapping[str, Run],
    floor: Mapping[str, Any],
    plain: Mapping[str, Any] | None,
    noop: Sequence[float],
    fresh: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One size's results: the measurements plus DVC's share, the ratios and the toll.

    Each derived figure comes in wall time and (``_cpu``) in CPU time. Without a plain
    run (``plain`` None) its ratios are None; without ``fresh`` (each ``main()`` alone in
    a fresh process, :func:`measure_fresh_work`) those times are None.
    """
    stages_seconds = sum(run.seconds for run in stages.values())
    stages_cpu = sum(run.cpu_seconds for run in stages.values())
    return {
        "rows": rows,
        "dvc_repro": asdict(repro),
        "stages": {
            name: {
                **asdict(run),
                "work_seconds": floor["stages"][name],
                "work_cpu_seconds": floor["stages_cpu"][name],
                "fresh_work_seconds": fresh["stages"][name] if fresh else None,
                "fresh_work_cpu_seconds": fresh["stages_cpu"][name] if fresh else None,
            }
            for name, run in stages.items()
        },
        "stages_seconds": stages_seconds,
        "dvc_seconds": repro.seconds - stages_seconds,
        "dvc_cpu_seconds": repro.cpu_seconds - stages_cpu,
        "floor": dict(floor),
        "plain": dict(plain) if plain is not None else None,
        "ratio_floor": ratio(repro.seconds, floor["seconds"]),
        "ratio_floor_cpu": ratio(repro.cpu_seconds, floor["cpu_seconds"]),
        "ratio_plain": ratio(repro.seconds, plain["seconds"]) if plain else None,
        "ratio_plain_cpu": ratio(repro.cpu_seconds, plain["cpu_seconds"]) if plain else None,
        "toll_per_stage": (repro.seconds - floor["seconds"]) / len(STAGES),
        "toll_per_stage_cpu": (repro.cpu_seconds - floor["cpu_seconds"]) / len(STAGES),
        "noop_seconds": statistics.median(noop),
        "noop_runs": list(noop),
    }


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
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds=seconds, max_rss_bytes=usage.ru_maxrss * 1024, cpu_seconds=cpu)  # KiB


def stage_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with ``PYTHONPATH=src``, as every stage command in ``dvc.yaml`` sets it."""
    return {**env, "PYTHONPATH": "src"}


def stage_commands(repo: Path) -> dict[str, str]:
    """Each measured stage's shell command, as ``dvc.yaml`` in ``repo`` declares it."""
    import yaml

    declared = yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    commands = {name: declared[name]["cmd"] for name in STAGES}
    for name, cmd in commands.items():
        if not isinstance(cmd, str) or "${" in cmd:
            raise BenchError(f"dvc.yaml: stages: {name}: cmd is not one plain command: {cmd!r}")
    return commands


def measure_fresh_work(repo: Path, env: Mapping[str, str], logs: Path) -> dict[str, Any]:
    """Each stage's ``main()`` timed alone in a fresh process, after its imports.

    Beside the floor's in-process times it shows whether a stage works slower in a process
    of its own (fresh memory, cold caches) than after the stages before it in one process.
    """
    seconds, cpu = {}, {}
    for name in STAGES:
        report = floor_in_subprocess(repo, env, logs / f"fresh-{name}.log", only=name)
        seconds[name], cpu[name] = report["stages"][name], report["stages_cpu"][name]
    return {"stages": seconds, "stages_cpu": cpu}


def measure_stages(repo: Path, env: Mapping[str, str], logs: Path) -> dict[str, Run]:
    """Run each stage's own command by itself, in pipeline order, outside DVC."""
    runs = {}
    for name, cmd in stage_commands(repo).items():
        runs[name] = run_timed(["sh", "-c", cmd], repo, env, logs / f"stage-{name}.log")
        log.info(
            "  %s: %.2f s, %s", name, runs[name].seconds, fmt_value(runs[name].max_rss_bytes, "B")
        )
    return runs


# How a stage process imports its stage (unused SciPy modules deferred, the collector frozen).
IMPORT_STAGE = "from churn.stages.__main__ import import_stage"


def measure_imports(repo: Path, env: Mapping[str, str], logs: Path, runs: int) -> dict[str, float]:
    """Best-of-``runs`` wall of a fresh interpreter importing each stage, and of a bare one."""
    commands = {
        "python": "pass",
        **{name: f"{IMPORT_STAGE}; import_stage({name!r})" for name in STAGES},
    }
    best = {}
    for name, code in commands.items():
        cmd = [sys.executable, "-c", code]
        best[name] = min(
            run_timed(cmd, repo, stage_env(env), logs / "imports.log").seconds for _ in range(runs)
        )
    return best


def floor_in_subprocess(
    repo: Path, env: Mapping[str, str], log_file: Path, only: str | None = None
) -> dict[str, Any]:
    """Run :func:`floor_worker` in a fresh interpreter inside ``repo``; return its report.

    ``only`` names one stage: the worker imports and runs that one alone.
    """
    report = log_file.with_suffix(".json")
    cmd = [sys.executable, "-m", "benchmarks.bench", "--floor-worker", str(report)]
    if only is not None:
        cmd += ["--floor-only", only]
    outer = run_timed(cmd, repo, env, log_file)
    result = json.loads(report.read_text(encoding="utf-8"))
    result["process_seconds"] = outer.seconds  # incl. interpreter start-up and imports
    result["max_rss_bytes"] = outer.max_rss_bytes
    result["process_cpu_seconds"] = outer.cpu_seconds
    return result


def floor_worker(report: Path, names: Sequence[str] = STAGES) -> None:
    """Import the stages ``names``, then time each ``main()`` in this process; write JSON.

    Called in a fresh interpreter whose working directory is the repository copy.
    The timer starts only after the imports; their time is reported on its own.
    """
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    from churn.stages.__main__ import import_stage

    # Imported as each stage process imports its stage (python -m churn.stages <stage>), so
    # the floor's work runs with the same collector and the same deferred modules.
    modules = [import_stage(name) for name in names]
    import_seconds = time.perf_counter() - start
    stages: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for name, module in zip(names, modules, strict=True):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        with threadpool_limits(limits=1, user_api="blas"):  # as churn.core.entry.run does
            module.main()
        stages[name] = time.perf_counter() - begin
        cpu[name] = time.process_time() - begin_cpu
    result = {
        "seconds": sum(stages.values()),
        "stages": stages,
        "cpu_seconds": sum(cpu.values()),
        "stages_cpu": cpu,
        "import_seconds": import_seconds,
    }
    report.write_text(json.dumps(result, sort_keys=True), encoding="utf-8")


def plain_in_subprocess(repo: Path, env: Mapping[str, str], logs: Path) -> dict[str, Any]:
    """Run :mod:`benchmarks.plain` in a fresh interpreter inside ``repo``; wall, RSS, phases."""
    out = logs / "plain-out"
    cmd = [sys.executable, "-m", "benchmarks.plain", "--out", str(out)]
    run = run_timed(cmd, repo, env, logs / "plain.log")
    phases = json.loads((out / "timings.json").read_text(encoding="utf-8"))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {**asdict(run), "phases": phases, "roc_auc": metrics["roc_auc"]}


# --------------------------------------------------------------------------- data


def read_params(repo: Path) -> dict[str, Any]:
    """The copy's ``params.yaml`` as plain data."""
    import yaml

    return yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))


def point_raw_at(repo: Path, rel: str) -> None:
    """Make ``paths.raw`` of the copy's ``params.yaml`` name ``rel``."""
    import yaml

    params = read_params(repo)
    params["paths"]["raw"] = rel
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def read_text_table(path: Path) -> Any:
    """A CSV with every cell as written (text, blanks kept), so a rewrite keeps its spelling."""
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False)


def make_input(repo: Path, real: str, rows: int, seed: int) -> Path | None:
    """Point the copy at the real file (``rows`` equal to its count) or a resample of it.

    Returns the resampled file, or None for the real one.
    """
    frame = read_text_table(repo / real)
    if rows == len(frame):
        point_raw_at(repo, real)
        return None
    rel = f"data/raw/bench_{rows}.csv"
    write_resampled_csv(frame, repo / rel, rows, seed, read_params(repo)["data"]["id"])
    point_raw_at(repo, rel)
    log.info("wrote %s (%.0f MB)", rel, (repo / rel).stat().st_size / MB)
    return repo / rel


# --------------------------------------------------------------------------- measuring


def measure_noop(repo: Path, env: Mapping[str, str], logs: Path, runs: int) -> list[float]:
    """Time ``dvc repro`` with nothing to do, ``runs`` times."""
    seconds = []
    for i in range(runs):
        log_file = logs / f"noop-{i}.log"
        seconds.append(run_timed(NOOP_CMD, repo, env, log_file).seconds)
        if "up to date" not in log_file.read_text(encoding="utf-8", errors="replace"):
            log.warning("no-op dvc repro did work; see %s", log_file)
    return seconds


def measure_size(
    repo: Path, env: Mapping[str, str], logs: Path, rows: int, noop_runs: int, with_plain: bool
) -> dict[str, Any]:
    """Forced repro, no-op repro, each stage alone, the in-process floor, the plain script."""
    label = size_label(rows)
    log.info("%s: dvc repro -f --downstream prepare", label)
    repros = [run_timed(FORCE_CMD, repo, env, logs / "repro.log")]
    metrics = repo / read_params(repo)["paths"]["reports"] / "metrics.json"
    pipeline_auc = json.loads(metrics.read_text(encoding="utf-8"))["roc_auc"]
    log.info("%s: dvc repro took %.2f s; no-op dvc repro", label, repros[0].seconds)
    noop = measure_noop(repo, env, logs, noop_runs)
    log.info("%s: each stage alone", label)
    stages = measure_stages(repo, env, logs)
    log.info("%s: each stage's main() alone in a fresh process", label)
    fresh = measure_fresh_work(repo, env, logs)
    log.info("%s: in-process floor", label)
    floors = [floor_in_subprocess(repo, env, logs / "floor.log")]
    for attempt in range(1, TIMED_RUNS if rows <= TIMED_RUNS_MAX_ROWS else 1):
        log.info("%s: dvc repro -f and the floor again (run %d)", label, attempt + 1)
        repros.append(run_timed(FORCE_CMD, repo, env, logs / f"repro-{attempt}.log"))
        floors.append(floor_in_subprocess(repo, env, logs / f"floor-{attempt}.log"))
    plain = None
    if with_plain:
        log.info("%s: plain script", label)
        plain = plain_in_subprocess(repo, env, logs)
    repro = min(repros, key=lambda run: run.seconds)
    floor = min(floors, key=lambda run: run["seconds"])
    return {
        **summarize(rows, repro, stages, floor, plain, noop, fresh),
        "pipeline_roc_auc": pipeline_auc,
        "repro_runs_seconds": [run.seconds for run in repros],
        "floor_runs_seconds": [run["seconds"] for run in floors],
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (the machine may be shared)."""
    return [round(x, 2) for x in os.getloadavg()]


def bench_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The commands' environment: :func:`tools.sandbox.tool_env`, bytecode caching on.

    Python writes ``__pycache__`` by default, so a checkout compiles its modules once. An
    environment with PYTHONDONTWRITEBYTECODE set would have every stage compile the
    project's modules again (~0.05 s a stage here), a cost no default setup pays.
    """
    env = tool_env(base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_benchmark(
    scratch: Path,
    sizes: Iterable[int],
    seed: int,
    noop_runs: int = NOOP_RUNS,
    import_runs: int = IMPORT_RUNS,
    plain_max_rows: int = PLAIN_MAX_ROWS,
) -> dict[str, Any]:
    """Copy the repository into ``scratch`` and measure every size, smallest first."""
    env = bench_env()
    repo = copy_repo(REPO_ROOT, scratch / "repo")
    init_repo(repo, scratch, env)
    logs = scratch / "logs"
    results: dict[str, Any] = {
        "machine": machine_info(),
        "seed": seed,
        "load_average": {"start": load_average()},
        "sizes": {},
        "csv_seconds": {},
    }
    log.info("warm-up: dvc repro in %s", repo)
    results["warmup_seconds"] = run_timed(NOOP_CMD, repo, env, logs / "warmup.log").seconds
    log.info("stage import times (best of %d)", import_runs)
    results["imports"] = measure_imports(repo, env, logs, import_runs)
    results["import_runs"] = import_runs
    real = read_params(repo)["paths"]["raw"]
    for rows in sorted(set(sizes)):
        start = time.perf_counter()
        resampled = make_input(repo, real, rows, seed)
        if resampled is not None:
            results["csv_seconds"][str(rows)] = time.perf_counter() - start
        results["sizes"][str(rows)] = measure_size(
            repo, env, logs / str(rows), rows, noop_runs, rows <= plain_max_rows
        )
        if resampled is not None:
            resampled.unlink()  # 10M rows are ~1.5 GB of CSV; keep the disk free
    results["load_average"]["end"] = load_average()
    results["targets"] = check_targets(results)
    return results


# --------------------------------------------------------------------------- report


def table_row(*cells: str) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(cells) + " |"


def size_table(size: Mapping[str, Any]) -> list[str]:
    """The Markdown table of one size: each stage alone, the totals, the floors and ratios."""
    n = f"{size['rows']:,}"
    repro, floor, plain = size["dvc_repro"], size["floor"], size["plain"]
    sec, x = partial(fmt_value, unit="s"), partial(fmt_value, unit="x")

    def row(label: str, wall: str, cpu: str, rss: str = "", *work: str) -> str:
        """A row of the table; ``work``: in-process wall and CPU, then fresh (blank if absent)."""
        return table_row(n, label, wall, cpu, rss, *work, *[""] * (3 - len(work)))

    lines = [
        table_row(
            "rows", "stage", "wall", "CPU", "peak RSS", "in-process", "in-process CPU", "fresh"
        ),
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for name in STAGES:
        st = size["stages"][name]
        work = (st["work_seconds"], st["work_cpu_seconds"], st.get("fresh_work_seconds"))
        lines.append(row(name, *run_cells(st), *map(sec, work)))
    lines += [
        row("**`dvc repro -f`** (4 stages)", *run_cells(repro)),
        row(
            "DVC's own share (repro - sum of stages)",
            sec(size["dvc_seconds"]),
            sec(size["dvc_cpu_seconds"]),
        ),
        row(
            "in-process floor (one process, 4 main()s)",
            sec(floor["process_seconds"]),
            sec(floor["process_cpu_seconds"]),
            fmt_value(floor["max_rss_bytes"], "B"),
            sec(floor["seconds"]),
            sec(floor["cpu_seconds"]),
        ),
        row("plain script (imports included)", *run_cells(plain)),
        row("repro / in-process floor", x(size["ratio_floor"]), x(size["ratio_floor_cpu"])),
        row("repro / plain script", x(size["ratio_plain"]), x(size["ratio_plain_cpu"])),
        row(
            "fixed toll per stage ((repro - floor) / 4)",
            sec(size["toll_per_stage"]),
            sec(size["toll_per_stage_cpu"]),
        ),
        row(
            f"no-op `dvc repro` (median of {len(size['noop_runs'])})", sec(size["noop_seconds"]), ""
        ),
    ]
    return lines


def run_cells(run: Mapping[str, Any] | None) -> tuple[str, str, str]:
    """Wall, CPU and peak RSS cells of a measured process (dashes if it did not run)."""
    if run is None:
        return "-", "-", "-"
    return (
        fmt_value(run["seconds"], "s"),
        fmt_value(run["cpu_seconds"], "s"),
        fmt_value(run["max_rss_bytes"], "B"),
    )


def runs_line(size: Mapping[str, Any]) -> str:
    """Every timed run of the forced repro and the floor, in the order they ran."""
    repros = ", ".join(fmt_value(x, "s") for x in size.get("repro_runs_seconds", []))
    floors = ", ".join(fmt_value(x, "s") for x in size.get("floor_runs_seconds", []))
    return f"runs: dvc repro -f {repros or '-'}; floor {floors or '-'}"


def plain_line(size: Mapping[str, Any]) -> str:
    """The plain script's phases and both ROC AUCs (same job, same answer?)."""
    if size["plain"] is None:
        return f"plain script: not run above --plain-max-rows (default {PLAIN_MAX_ROWS:,})"
    phases = size["plain"]["phases"]
    parts = ", ".join(f"{k} {phases[k]:.2f} s" for k in PLAIN_PHASES if k in phases)
    return (
        f"plain script phases: {parts}. ROC AUC: pipeline {size['pipeline_roc_auc']:.4f}, "
        f"plain {size['plain']['roc_auc']:.4f}"
    )


def imports_table(imports: Mapping[str, float], runs: int) -> list[str]:
    """Each stage's import time in a fresh interpreter, and the bare interpreter's."""
    lines = [
        table_row(
            "stage",
            f"`python -c '{IMPORT_STAGE}; import_stage(<stage>)'` (best of {runs})",
            "imports alone",
        ),
        "|---|--:|--:|",
        table_row("(bare `python -c pass`)", fmt_value(imports["python"], "s"), ""),
    ]
    for name in STAGES:
        alone = imports[name] - imports["python"]
        lines.append(table_row(name, fmt_value(imports[name], "s"), fmt_value(alone, "s")))
    return lines


def targets_table(targets: Sequence[Mapping[str, Any]]) -> list[str]:
    """The targets as a Markdown table with pass / MISS."""
    lines = [table_row("target", "limit", "measured", "status"), "|---|--:|--:|---|"]
    for t in targets:
        goal = f"{'>=' if t.get('at_least') else '<='} {fmt_value(t['limit'], t['unit'])}"
        status = STATUS_WORDS[t["status"]]
        lines.append(
            table_row(
                t["label"],
                goal,
                fmt_value(t["value"], t["unit"]),
                f"**{status}**" if status == "MISS" else status,
            )
        )
    return lines


def format_report(results: Mapping[str, Any]) -> str:
    """The Markdown report printed at the end."""
    machine = results["machine"]
    loads = results["load_average"]
    lines = [
        "## churn pipeline benchmark",
        "",
        f"machine: {machine['platform']}, {machine['cpu_count']} CPUs, Python {machine['python']}, "
        f"{fmt_value(machine['memory_bytes'], 'B')} RAM; load average (1/5/15 min) "
        f"{loads['start']} at start, {loads.get('end', '-')} at end",
        "",
        "Stages alone: each stage's dvc.yaml command run by itself (interpreter, imports, work).",
        "In-process: the stage's main() in the floor process, timed after imports.",
        "Fresh: the stage's main() alone in a fresh process, timed after its imports (one run).",
        "CPU: user + system seconds of the process tree; steadier than wall on a busy machine.",
        f"dvc repro -f and the floor: the faster of {TIMED_RUNS} runs each up to "
        f"{size_label(TIMED_RUNS_MAX_ROWS)}, alternating; one run each above.",
    ]
    for size in sorted(results["sizes"].values(), key=lambda s: s["rows"]):
        lines += [
            "",
            f"### {size_label(size['rows'])}",
            "",
            *size_table(size),
            "",
            runs_line(size),
            "",
            plain_line(size),
        ]
    lines += [
        "",
        "### Stage imports",
        "",
        *imports_table(results["imports"], results["import_runs"]),
    ]
    lines += ["", "### Targets (issue 15)", "", *targets_table(results["targets"])]
    return "\n".join(lines)


def target_lines(targets: Sequence[Mapping[str, Any]], fmt: Callable[[Any, str], str]) -> list[str]:
    """One line per checked target: label, goal, measured value, status."""
    lines = []
    for t in targets:
        goal = f"{'>=' if t.get('at_least') else '<='} {fmt(t['limit'], t['unit'])}"
        lines.append(f"  {t['label']:38}{goal:>12}{fmt(t['value'], t['unit']):>12}  {t['status']}")
    return lines


# --------------------------------------------------------------------------- plot


def log_tick(value: float, _position: int | None = None) -> str:
    """A log axis label for 1, 2, 3 or 5 times a power of ten (``20``, ``0.3``), else none.

    Plain numbers rather than matplotlib's ``2 x 10^1``; the other ticks stay unlabelled.
    """
    if value <= 0:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return f"{value:g}" if round(mantissa, 6) in (1, 2, 3, 5) else ""


def plot_scale(sizes: Sequence[Mapping[str, Any]], path: Path) -> Any:
    """Two log-log panels, wall seconds and peak RSS against rows; saved as PNG at ``path``.

    Returns the matplotlib Figure (drawn without pyplot, so no global state is left).
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullLocator

    sizes = sorted(sizes, key=lambda s: s["rows"])
    rows = [s["rows"] for s in sizes]
    series = {
        "dvc repro -f": lambda s: s["dvc_repro"],
        "in-process floor (work)": lambda s: s["floor"],
        "plain script": lambda s: s["plain"],
    }
    fig = Figure(figsize=(10, 4), dpi=80)
    wall_ax, rss_ax = fig.subplots(1, 2)
    for label, pick in series.items():
        runs = [(s["rows"], pick(s)) for s in sizes if pick(s) is not None]
        xs = [n for n, _ in runs]
        wall_ax.plot(xs, [run["seconds"] for _, run in runs], marker="o", lw=2, label=label)
        rss_ax.plot(
            xs, [run["max_rss_bytes"] / GB for _, run in runs], marker="o", lw=2, label=label
        )
    for name in STAGES:
        stage = [s["stages"][name] for s in sizes]
        style = {"marker": ".", "lw": 1, "ls": "--", "label": f"stage {name} alone"}
        wall_ax.plot(rows, [st["seconds"] for st in stage], **style)
        rss_ax.plot(rows, [st["max_rss_bytes"] / GB for st in stage], **style)
    for ax, ylabel in ((wall_ax, "wall time (s)"), (rss_ax, "peak RSS (GB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(rows, [short_rows(r) for r in rows])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(log_tick))
        ax.yaxis.set_minor_formatter(FuncFormatter(log_tick))
        ax.set_xlabel("rows")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    wall_ax.set_title("wall time against rows")
    rss_ax.set_title("peak memory against rows")
    wall_ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return fig


# --------------------------------------------------------------------------- entry point


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description="The pipeline's scale curve: dvc repro, each stage, the two floors.",
    )
    parser.add_argument(
        "--rows",
        type=parse_rows,
        nargs="+",
        default=list(DEFAULT_ROWS),
        help="sizes to measure (7043 = the real file; 100k, 1M, 10M also work)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for resampling the CSVs")
    parser.add_argument(
        "--noop-runs", type=int, default=NOOP_RUNS, help="no-op dvc repro runs per size"
    )
    parser.add_argument(
        "--import-runs", type=int, default=IMPORT_RUNS, help="fresh imports per stage (best counts)"
    )
    parser.add_argument(
        "--plain-max-rows",
        type=parse_rows,
        default=PLAIN_MAX_ROWS,
        help="skip the plain script above this size (it needs ~2 GB per million rows)",
    )
    parser.add_argument("--plot", type=Path, help="write the scale plot (PNG) here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and print its path")
    parser.add_argument("--json", type=Path, help="also write the results here (sorted keys)")
    parser.add_argument("--floor-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor-only", choices=STAGES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.noop_runs, args.import_runs) < 1:
        parser.error("--noop-runs and --import-runs must be >= 1")
    if args.floor_only and not args.floor_worker:
        parser.error("--floor-only is for --floor-worker")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report; returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.floor_worker:
        floor_worker(args.floor_worker, [args.floor_only] if args.floor_only else STAGES)
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="churn-bench-"))
    start = time.perf_counter()
    try:
        results = run_benchmark(
            scratch, args.rows, args.seed, args.noop_runs, args.import_runs, args.plain_max_rows
        )
    except ChurnError as err:
        print(f"error: {err}", file=sys.stderr)  # noqa: T201 (the one-line message is the interface)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    results["bench_seconds"] = time.perf_counter() - start
    if args.plot:
        plot_scale(list(results["sizes"].values()), args.plot)
    text = f"{format_report(results)}\n\nbenchmark took {results['bench_seconds']:.0f} s"
    if args.plot:
        text += f"\nplot: {args.plot}"
    if args.keep:
        text += f"\nkept temp dir: {scratch}"
    print(text)  # noqa: T201 (the report is the output)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
