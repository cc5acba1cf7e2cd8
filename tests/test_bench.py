"""Unit tests of the benchmark's pure helpers; the benchmark itself is never run here."""

from pathlib import Path

import pandas as pd
import pytest
from benchmarks import bench

from churn.stages.prepare import read_raw

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
    original = read_raw(tmp_path / "raw.csv")
    resampled = read_raw(path)
    assert dict(resampled.dtypes) == dict(original.dtypes)
    assert resampled["total_charges"].isna().any()  # the blank cell stays a missing number
    assert set(resampled["contract"]) <= set(original["contract"])


@pytest.mark.parametrize(
    ("value", "limit", "status"),
    [(1.0, 2.0, "met"), (2.0, 2.0, "met"), (2.01, 2.0, "NOT MET"), (None, 2.0, "skipped")],
)
def test_target_status(value: float | None, limit: float, status: str) -> None:
    assert bench.target_status(value, limit) == status


def test_check_targets_reads_nested_results() -> None:
    results = {
        "default": {"ratio": 3.5, "noop_seconds": 0.8},
        "large": {
            "ratio": 1.1,
            "dvc_repro": {"max_rss_bytes": 5e9},
            "floor": {"validation_share": 0.2},
            "monitor_seconds": 40.0,
        },
    }
    status = {t["key"]: t["status"] for t in bench.check_targets(results)}
    assert status == {
        "default.ratio": "NOT MET",
        "large.ratio": "met",
        "large.dvc_repro.max_rss_bytes": "NOT MET",
        "default.noop_seconds": "met",
        "large.floor.validation_share": "met",
        "large.monitor_seconds": "NOT MET",
    }


def test_check_targets_skips_the_large_run_when_absent() -> None:
    results = {"default": {"ratio": 1.5, "noop_seconds": 2.0}}
    status = {t["key"]: t["status"] for t in bench.check_targets(results)}
    assert status["large.ratio"] == "skipped"
    assert status["large.dvc_repro.max_rss_bytes"] == "skipped"
    assert status["default.ratio"] == "met"
    assert status["default.noop_seconds"] == "NOT MET"


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


def test_ratio_and_size_label() -> None:
    assert bench.ratio(3.0, 1.5) == 2.0
    assert bench.ratio(1.0, 0.0) == float("inf")
    assert bench.size_label(1_000_000) == "1M rows"
    assert bench.size_label(7043) == "7,043 rows"


def test_parse_args_defaults_and_validation() -> None:
    args = bench.parse_args([])
    assert (args.rows, args.seed, args.keep, args.json) == (1_000_000, 0, False, None)
    assert bench.parse_args(["--rows", "0"]).rows == 0
    with pytest.raises(SystemExit):
        bench.parse_args(["--rows", "-5"])


def test_format_report_lists_every_target() -> None:
    floor = {"seconds": 2.0, "stages": dict.fromkeys(bench.STAGES, 0.5), "import_seconds": 1.0}
    size = {
        "rows": 7043,
        "dvc_repro": {"seconds": 5.0, "max_rss_bytes": 3e8},
        "floor": {**floor, "max_rss_bytes": 2e8},
        "ratio": 2.5,
        "noop_seconds": 0.9,
    }
    results = {
        "machine": {"platform": "Linux", "cpu_count": 2, "python": "3.11", "memory_bytes": 8e9},
        "default": size,
    }
    results["targets"] = bench.check_targets(results)
    text = bench.format_report(results)
    assert "7,043 rows" in text
    assert text.count("skipped") == 4  # the four large-size targets
    assert "NOT MET" in text
