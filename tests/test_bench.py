"""The benchmark: its pure helpers with exact values, the plain script's cleaning, one real run."""

import argparse
import json
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml
from benchmarks import bench

from churn.core.contract import Column, Contract
from churn.stages.prepare import read_raw
from conftest import REPO

RAW_CSV = (
    "rownames,churn,tenure,contract,total_charges\n"
    "1,No,1,Month-to-month,29.85\n"
    '2,Yes,34,"One year, renewing",1889.5\n'
    "3,No,0,Two year, \n"
    "4,Yes,45,Month-to-month,1840.75\n"
    "5,No,2,One year,108.15\n"
)


@pytest.fixture
def raw_text(tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "raw.csv"
    path.write_text(RAW_CSV, encoding="utf-8")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_resample_gives_exactly_n_rows_with_unique_ids(raw_text: pd.DataFrame) -> None:
    out = bench.resample_rows(raw_text, 1000, seed=0, id_column="rownames")
    assert len(out) == 1000
    assert list(out.columns) == list(raw_text.columns)
    assert out["rownames"].is_unique
    assert sorted(out["rownames"]) == list(range(1, 1001))


def test_resample_draws_only_real_rows(raw_text: pd.DataFrame) -> None:
    out = bench.resample_rows(raw_text, 500, seed=3, id_column="rownames")
    features = [c for c in raw_text.columns if c != "rownames"]
    real = set(raw_text[features].itertuples(index=False, name=None))
    assert set(out[features].itertuples(index=False, name=None)) <= real
    assert len(set(out[features].itertuples(index=False, name=None))) > 1


def test_resample_is_deterministic_per_seed(raw_text: pd.DataFrame) -> None:
    first = bench.resample_rows(raw_text, 200, seed=7, id_column="rownames")
    again = bench.resample_rows(raw_text, 200, seed=7, id_column="rownames")
    other = bench.resample_rows(raw_text, 200, seed=8, id_column="rownames")
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


def test_resample_without_id_column_keeps_columns(raw_text: pd.DataFrame) -> None:
    out = bench.resample_rows(raw_text, 10, seed=0, id_column=None)
    assert list(out.columns) == list(raw_text.columns)
    assert len(out) == 10


@pytest.mark.parametrize("rows", [0, -1])
def test_resample_rejects_no_rows(raw_text: pd.DataFrame, rows: int) -> None:
    with pytest.raises(ValueError, match="at least one row"):
        bench.resample_rows(raw_text, rows, seed=0, id_column="rownames")


def test_resampled_csv_reads_back_like_the_original(raw_text: pd.DataFrame, tmp_path: Path) -> None:
    out = bench.resample_rows(raw_text, 300, seed=1, id_column="rownames")
    path = tmp_path / "big.csv"
    out.to_csv(path, index=False, lineterminator="\n")
    # The id is read as written, as prepare reads it.
    original = read_raw(tmp_path / "raw.csv", text=["rownames"])
    resampled = read_raw(path, text=["rownames"])
    assert dict(resampled.dtypes) == dict(original.dtypes)
    assert resampled["total_charges"].isna().any()  # the blank cell stays a missing number
    assert set(resampled["contract"]) <= set(original["contract"])


@pytest.mark.parametrize("seed", [0, 5])
@pytest.mark.parametrize("chunk", [7, 1000])
def test_resampled_csv_file_equals_the_resampled_frame(
    raw_text: pd.DataFrame, tmp_path: Path, seed: int, chunk: int
) -> None:
    path = tmp_path / "big.csv"
    bench.write_resampled_csv(raw_text, path, 30, seed, "rownames", chunk=chunk)
    expected = bench.resample_rows(raw_text, 30, seed, "rownames").astype(str)
    pd.testing.assert_frame_equal(pd.read_csv(path, dtype=str, keep_default_na=False), expected)
    assert '"One year, renewing"' in path.read_text(encoding="utf-8")  # quoted as needed


@pytest.mark.parametrize("id_column", ["rownames", "tenure", "total_charges", None])
def test_resampled_csv_puts_ids_in_any_column(
    raw_text: pd.DataFrame, tmp_path: Path, id_column: str | None
) -> None:
    path = tmp_path / "big.csv"
    bench.write_resampled_csv(raw_text, path, 12, 3, id_column, chunk=5)
    expected = bench.resample_rows(raw_text, 12, 3, id_column).astype(str)
    pd.testing.assert_frame_equal(pd.read_csv(path, dtype=str, keep_default_na=False), expected)


def test_record_parts_split_around_the_id() -> None:
    frame = pd.DataFrame({"a": ["x,y", "p"], "id": ["1", "2"], "b": ["", 'say "hi"']})
    heads, tails = bench.record_parts(frame, "id")
    assert heads == ['"x,y",', "p,"]
    assert tails == [",", ',"say ""hi"""']  # a blank cell stays blank, not ""
    assert bench.record_parts(frame, None) == (['"x,y",1,', 'p,2,"say ""hi"""'], ["", ""])
    assert bench.record_parts(frame[["id", "a"]], "id") == (["", ""], [',"x,y"', ",p"])


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("7043", 7043),
        ("100_000", 100_000),
        ("1,000", 1000),
        ("100k", 100_000),
        ("1M", 1_000_000),
        ("10m", 10_000_000),
    ],
)
def test_parse_rows(text: str, rows: int) -> None:
    assert bench.parse_rows(text) == rows


@pytest.mark.parametrize("text", ["0", "-5", "abc", "1.5M", "", "M", "0k"])
def test_parse_rows_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a positive row count"):
        bench.parse_rows(text)


def test_parse_args_defaults_and_validation() -> None:
    args = bench.parse_args([])
    assert args.rows == [7043, 100_000, 1_000_000]
    assert (args.seed, args.noop_runs, args.import_runs) == (0, 5, 3)
    assert (args.keep, args.json, args.plot) == (False, None, None)
    assert args.plain_max_rows == 4_000_000
    assert bench.parse_args(["--plain-max-rows", "10M"]).plain_max_rows == 10_000_000
    assert bench.parse_args(["--rows", "10M"]).rows == [10_000_000]
    assert bench.parse_args(["--rows", "4000000", "7043"]).rows == [4_000_000, 7043]
    for bad in (
        ["--rows", "-5"],
        ["--rows"],
        ["--noop-runs", "0"],
        ["--import-runs", "0"],
        ["--floor-only", "train"],  # only with --floor-worker
        ["--floor-worker", "r.json", "--floor-only", "fetch"],  # not a timed stage
    ):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
    worker = bench.parse_args(["--floor-worker", "r.json", "--floor-only", "train"])
    assert (worker.floor_worker, worker.floor_only) == (Path("r.json"), "train")


@pytest.mark.parametrize(
    ("value", "limit", "status"),
    [(1.0, 2.0, "met"), (2.0, 2.0, "met"), (2.01, 2.0, "NOT MET"), (None, 2.0, "skipped")],
)
def test_target_status(value: float | None, limit: float, status: str) -> None:
    assert bench.target_status(value, limit) == status


def fake_runs() -> dict[str, bench.Run]:
    """Each stage alone: 1..4 s, half of it CPU, 200..500 MB."""
    return {
        name: bench.Run(seconds=1.0 + i, max_rss_bytes=int(2e8 + i * 1e8), cpu_seconds=0.5 + i / 2)
        for i, name in enumerate(bench.STAGES)
    }


def fake_floor() -> dict:
    """The floor's report: 2 s of work in four main()s, 4 s with the process."""
    return {
        "seconds": 2.0,
        "stages": dict(zip(bench.STAGES, (0.25, 0.5, 0.25, 1.0), strict=True)),
        "cpu_seconds": 1.0,
        "stages_cpu": dict(zip(bench.STAGES, (0.125, 0.25, 0.125, 0.5), strict=True)),
        "import_seconds": 1.5,
        "process_seconds": 4.0,
        "process_cpu_seconds": 2.0,
        "max_rss_bytes": int(4.5e8),
    }


def fake_size(rows: int = 7043) -> dict:
    """One size's results with round numbers: stages 1..4 s, repro 12 s, floor 2 s, plain 3 s.

    CPU times are half the wall times (the plain script's, twice: two BLAS threads).
    """
    stages = fake_runs()
    floor = fake_floor()
    fresh = {
        "stages": {name: t + 0.25 for name, t in floor["stages"].items()},
        "stages_cpu": {name: t + 0.125 for name, t in floor["stages_cpu"].items()},
    }
    plain = {
        "seconds": 3.0,
        "cpu_seconds": 6.0,
        "max_rss_bytes": int(3e8),
        "phases": {"imports": 1.5, "read": 0.25, "fit": 0.5, "total": 2.9},
        "roc_auc": 0.84,
    }
    repro = bench.Run(seconds=12.0, max_rss_bytes=int(6e8), cpu_seconds=6.0)
    size = bench.summarize(rows, repro, stages, floor, plain, [0.9, 1.1, 0.8], fresh)
    return {**size, "pipeline_roc_auc": 0.8418}


def test_summarize_derives_shares_ratios_and_toll() -> None:
    size = fake_size()
    assert size["stages_seconds"] == 10.0
    assert size["dvc_seconds"] == 2.0
    assert size["ratio_floor"] == 6.0
    assert size["ratio_plain"] == 4.0
    assert size["toll_per_stage"] == 2.5  # (12 - 2) / 4
    assert size["noop_seconds"] == 0.9
    assert size["noop_runs"] == [0.9, 1.1, 0.8]
    assert size["dvc_repro"] == {"seconds": 12.0, "max_rss_bytes": 600_000_000, "cpu_seconds": 6.0}
    assert size["stages"]["featurize"] == {
        "seconds": 2.0,
        "max_rss_bytes": 300_000_000,
        "cpu_seconds": 1.0,
        "work_seconds": 0.5,
        "work_cpu_seconds": 0.25,
        "fresh_work_seconds": 0.75,  # the fresh process's main(), beside the floor's
        "fresh_work_cpu_seconds": 0.375,
    }
    assert size["dvc_cpu_seconds"] == 1.0  # 6 - (0.5 + 1 + 1.5 + 2)
    assert size["ratio_floor_cpu"] == 6.0
    assert size["ratio_plain_cpu"] == 1.0
    assert size["toll_per_stage_cpu"] == 1.25  # (6 - 1) / 4


def test_check_targets_reads_each_target_at_its_size() -> None:
    big = fake_size(10_000_000)
    big["dvc_repro"] = {"seconds": 170.0, "max_rss_bytes": 5e9}
    results = {"sizes": {"7043": fake_size(), "1000000": {"ratio_floor": 1.2}, "10000000": big}}
    status = {t["key"]: t["status"] for t in bench.check_targets(results)}
    assert status == {
        "sizes.10000000.dvc_repro.max_rss_bytes": "NOT MET",
        "sizes.10000000.dvc_repro.seconds": "met",
        "sizes.1000000.ratio_floor": "met",
        "sizes.4000000.ratio_plain": "skipped",
        "sizes.7043.toll_per_stage": "NOT MET",
        "sizes.7043.noop_seconds": "met",
    }


def test_dig_returns_none_for_missing_parts() -> None:
    assert bench.dig({"a": {"b": 1}}, "a.b") == 1
    assert bench.dig({"a": {"b": 1}}, "a.c") is None
    assert bench.dig({"a": 1}, "a.b") is None


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1.234, "s", "1.23 s"),
        (2.5, "x", "2.50x"),
        (512e6, "B", "512 MB"),
        (3.2e9, "B", "3.20 GB"),
        (None, "s", "-"),
    ],
)
def test_fmt_value(value: float | None, unit: str, text: str) -> None:
    assert bench.fmt_value(value, unit) == text


def test_ratio_and_labels() -> None:
    assert bench.ratio(3.0, 1.5) == 2.0
    assert bench.ratio(1.0, 0.0) == float("inf")
    assert bench.size_label(1_000_000) == "1M rows"
    assert bench.size_label(7043) == "7,043 rows"
    assert [bench.short_rows(n) for n in (7043, 20_000, 100_000, 1_000_000, 2_500_000)] == [
        "7043",
        "20k",
        "100k",
        "1M",
        "2.5M",
    ]


def test_size_table_rows() -> None:
    assert bench.size_table(fake_size()) == [
        "| rows | stage | wall | CPU | peak RSS | in-process | in-process CPU | fresh |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
        "| 7,043 | prepare | 1.00 s | 0.50 s | 200 MB | 0.25 s | 0.12 s | 0.50 s |",
        "| 7,043 | featurize | 2.00 s | 1.00 s | 300 MB | 0.50 s | 0.25 s | 0.75 s |",
        "| 7,043 | train | 3.00 s | 1.50 s | 400 MB | 0.25 s | 0.12 s | 0.50 s |",
        "| 7,043 | evaluate | 4.00 s | 2.00 s | 500 MB | 1.00 s | 0.50 s | 1.25 s |",
        "| 7,043 | **`dvc repro -f`** (4 stages) | 12.00 s | 6.00 s | 600 MB |  |  |  |",
        "| 7,043 | DVC's own share (repro - sum of stages) | 2.00 s | 1.00 s |  |  |  |  |",
        "| 7,043 | in-process floor (one process, 4 main()s) | 4.00 s | 2.00 s | 450 MB | 2.00 s"
        " | 1.00 s |  |",
        "| 7,043 | plain script (imports included) | 3.00 s | 6.00 s | 300 MB |  |  |  |",
        "| 7,043 | repro / in-process floor | 6.00x | 6.00x |  |  |  |  |",
        "| 7,043 | repro / plain script | 4.00x | 1.00x |  |  |  |  |",
        "| 7,043 | fixed toll per stage ((repro - floor) / 4) | 2.50 s | 1.25 s |  |  |  |  |",
        "| 7,043 | no-op `dvc repro` (median of 3) | 0.90 s |  |  |  |  |  |",
    ]
    without_fresh = bench.summarize(
        7043, bench.Run(1.0, 1, 1.0), fake_runs(), fake_floor(), None, [1]
    )
    assert bench.size_table(without_fresh)[2].endswith("| 0.25 s | 0.12 s | - |")
    assert bench.plain_line(fake_size()) == (
        "plain script phases: imports 1.50 s, read 0.25 s, fit 0.50 s. "
        "ROC AUC: pipeline 0.8418, plain 0.8400"
    )


def test_the_commands_cache_bytecode_as_python_does_by_default() -> None:
    env = bench.bench_env({"PATH": "/usr/bin", "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C"})
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["LANG"] == "C"
    assert env["DVC_NO_ANALYTICS"] == "1"
    assert env["PATH"].endswith(os.pathsep + "/usr/bin")
    assert bench.bench_env({"PATH": ""}).keys() >= {"PATH", "PYTHONPATH", "DVC_NO_ANALYTICS"}


def test_runs_line_lists_every_timed_run_in_order() -> None:
    size = {"repro_runs_seconds": [7.5, 7.0], "floor_runs_seconds": [2.25, 2.5]}
    assert bench.runs_line(size) == "runs: dvc repro -f 7.50 s, 7.00 s; floor 2.25 s, 2.50 s"
    assert bench.runs_line({}) == "runs: dvc repro -f -; floor -"


def test_imports_table_subtracts_the_bare_interpreter() -> None:
    imports = {"python": 0.5, "prepare": 1.0, "featurize": 1.25, "train": 2.0, "evaluate": 1.5}
    assert bench.imports_table(imports, 3)[2:] == [
        "| (bare `python -c pass`) | 0.50 s |  |",
        "| prepare | 1.00 s | 0.50 s |",
        "| featurize | 1.25 s | 0.75 s |",
        "| train | 2.00 s | 1.50 s |",
        "| evaluate | 1.50 s | 1.00 s |",
    ]


def test_format_report_orders_sizes_and_says_pass_or_miss() -> None:
    results = {
        "machine": {"platform": "Linux", "cpu_count": 2, "python": "3.11", "memory_bytes": 8e9},
        "load_average": {"start": [0.5, 0.4, 0.3], "end": [1.0, 0.5, 0.3]},
        "sizes": {"100000": fake_size(100_000), "7043": fake_size()},
        "imports": {"python": 0.5, **dict.fromkeys(bench.STAGES, 1.0)},
        "import_runs": 3,
    }
    results["targets"] = bench.check_targets(results)
    text = bench.format_report(results)
    assert text.index("### 7,043 rows") < text.index("### 100,000 rows")
    assert "load average (1/5/15 min) [0.5, 0.4, 0.3] at start, [1.0, 0.5, 0.3] at end" in text
    assert "| fixed toll per stage, 7,043 | <= 1.00 s | 2.50 s | **MISS** |" in text
    assert "| no-op dvc repro (median), 7,043 | <= 1.00 s | 0.90 s | pass |" in text
    assert text.count("| - | not measured |") == 4


@pytest.mark.parametrize(
    ("value", "text"),
    [(20.0, "20"), (0.3, "0.3"), (1.0, "1"), (5000.0, "5000"), (40.0, ""), (0.6, ""), (0.0, "")],
)
def test_log_tick(value: float, text: str) -> None:
    assert bench.log_tick(value) == text


def test_a_size_without_the_plain_script() -> None:
    full = fake_size(10_000_000)
    repro = bench.Run(**full["dvc_repro"])
    stages = {
        name: bench.Run(**{k: st[k] for k in ("seconds", "max_rss_bytes", "cpu_seconds")})
        for name, st in full["stages"].items()
    }
    size = {
        **bench.summarize(10_000_000, repro, stages, full["floor"], None, [1.0]),
        "pipeline_roc_auc": 0.8,
    }
    assert (size["plain"], size["ratio_plain"], size["ratio_plain_cpu"]) == (None, None, None)
    assert size["ratio_floor"] == 6.0
    table = bench.size_table(size)
    assert "| 10,000,000 | plain script (imports included) | - | - | - |  |  |  |" in table
    assert "| 10,000,000 | repro / plain script | - | - |  |  |  |  |" in table
    assert (
        bench.plain_line(size) == "plain script: not run above --plain-max-rows (default 4,000,000)"
    )
    fig = bench.plot_scale([fake_size(), size], Path(os.devnull))
    for ax in fig.axes:
        assert [len(line.get_xdata()) for line in ax.get_lines()[:3]] == [2, 2, 1]


def test_plot_scale_draws_two_log_log_panels(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "scale.png"
    sizes = [fake_size(n) for n in (1_000_000, 7043, 100_000)]
    fig = bench.plot_scale(sizes, path)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
        assert [t.get_text() for t in ax.get_xticklabels()] == ["7043", "100k", "1M"]
        lines = ax.get_lines()
        assert len(lines) == 3 + len(bench.STAGES)
        assert list(lines[0].get_xdata()) == [7043, 100_000, 1_000_000]
    wall, rss = fig.axes
    assert list(wall.get_lines()[0].get_ydata()) == [12.0, 12.0, 12.0]
    assert list(rss.get_lines()[2].get_ydata()) == [0.3, 0.3, 0.3]  # plain script, GB
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (800, 320)
    assert path.stat().st_size < 100_000


def test_stage_commands_come_from_dvc_yaml(tmp_path: Path) -> None:
    commands = bench.stage_commands(REPO)
    assert list(commands) == list(bench.STAGES)
    for name, cmd in commands.items():
        assert cmd.endswith(f"-m churn.stages {name}")
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
    declared["stages"]["train"]["cmd"] = "python train.py ${train.seed}"
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(declared), encoding="utf-8")
    with pytest.raises(bench.BenchError, match="stages: train: cmd is not one plain command"):
        bench.stage_commands(tmp_path)


def test_plain_clean_strips_blanks_and_maps_the_target() -> None:
    from benchmarks import plain

    frame = pd.DataFrame(
        {
            "churn": ["Yes", "No", "Yes"],
            "tenure": [1, 2, 3],
            "total_charges": ["29.85", " ", "100"],
            "contract": [" One year", "Two year ", "  "],
        }
    )
    contract = Contract(
        target="churn",
        positive_label="Yes",
        labels=None,
        id="row_id",
        id_in_data=False,
        columns={
            "tenure": Column(type="numeric"),
            "total_charges": Column(type="numeric"),
            "contract": Column(type="categorical"),
        },
    )
    features, target = plain.clean(frame, contract)
    assert list(features.columns) == ["tenure", "total_charges", "contract"]
    assert features["total_charges"].tolist()[0::2] == [29.85, 100.0]
    assert features["total_charges"].isna().tolist() == [False, True, False]
    assert features["contract"].tolist()[:2] == ["One year", "Two year"]
    assert features["contract"].isna().tolist() == [False, False, True]
    assert target.tolist() == [1, 0, 1]


def test_a_real_run_at_a_tiny_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole benchmark once, on a 3,000-row resample (no timed assertions)."""
    report, png = tmp_path / "bench.json", tmp_path / "scale.png"
    argv = ["--rows", "3000", "--noop-runs", "1", "--import-runs", "1"]
    assert bench.main([*argv, "--json", str(report), "--plot", str(png)]) == 0
    results = json.loads(report.read_text(encoding="utf-8"))
    assert list(results["sizes"]) == ["3000"]
    size = results["sizes"]["3000"]
    assert size["rows"] == 3000
    assert set(size["stages"]) == set(bench.STAGES)
    runs = [size["dvc_repro"], size["floor"], size["plain"], *size["stages"].values()]
    assert all(run["seconds"] > 0 and run["max_rss_bytes"] > 50e6 for run in runs)
    assert all(run["cpu_seconds"] > 0 for run in runs)
    # The stages alone are the repro's children: their sum is its wall minus DVC's share,
    # and each peak is at most the repro's (same work, same data; 25 % slack for noise).
    # Separate runs are compared by CPU time, never wall time: the other test worker's
    # load changes from one run to the next (a busy neighbour flipped a wall comparison).
    assert size["stages_seconds"] + size["dvc_seconds"] == pytest.approx(
        size["dvc_repro"]["seconds"]
    )
    stages_cpu = sum(stage["cpu_seconds"] for stage in size["stages"].values())
    assert stages_cpu + size["dvc_cpu_seconds"] == pytest.approx(size["dvc_repro"]["cpu_seconds"])
    assert stages_cpu < size["dvc_repro"]["cpu_seconds"] * 1.25
    peak = max(stage["max_rss_bytes"] for stage in size["stages"].values())
    assert peak < size["dvc_repro"]["max_rss_bytes"] * 1.25
    assert size["floor"]["seconds"] == pytest.approx(sum(size["floor"]["stages"].values()))
    assert size["floor"]["seconds"] < size["floor"]["process_seconds"]
    # Each main() alone in a fresh process: part of that stage's own process, so less.
    for stage in size["stages"].values():
        assert stage["fresh_work_seconds"] > 0
        assert 0 < stage["fresh_work_cpu_seconds"] < stage["cpu_seconds"]
    # Two timed runs each at this size; the faster one is the one reported.
    assert len(size["repro_runs_seconds"]) == len(size["floor_runs_seconds"]) == 2
    assert size["dvc_repro"]["seconds"] == min(size["repro_runs_seconds"])
    assert size["floor"]["seconds"] == min(size["floor_runs_seconds"])
    assert size["plain"]["roc_auc"] == pytest.approx(size["pipeline_roc_auc"], abs=0.05)
    assert set(results["imports"]) == {"python", *bench.STAGES}
    assert {t["key"]: t["status"] for t in results["targets"]}["sizes.7043.toll_per_stage"] == (
        "skipped"
    )
    assert png.stat().st_size > 0
    out = capsys.readouterr().out
    assert "### 3,000 rows" in out
    assert "| 3,000 | **`dvc repro -f`** (4 stages) |" in out
    assert "\nruns: dvc repro -f " in out
