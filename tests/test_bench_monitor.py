"""The monitoring benchmark's pure parts (the benchmark itself runs by hand: make bench-monitor)."""

from benchmarks import bench_monitor


def test_sizes_are_labelled_in_millions_when_whole():
    assert [bench_monitor.label(n) for n in (1_000_000, 4_000_000, 250_000)] == [
        "1M",
        "4M",
        "250000",
    ]


def test_rss_growth_is_the_largest_batch_over_the_1m_one():
    results = {"1M": {"max_rss_bytes": 600e6}, "4M": {"max_rss_bytes": 660e6}}
    assert bench_monitor.rss_growth(results, [1_000_000, 4_000_000]) == 1.1
    assert bench_monitor.rss_growth(results, [1_000_000]) is None
    assert bench_monitor.rss_growth(results, [4_000_000]) is None


def test_every_target_is_checked_against_the_results():
    results = {"1M": {"seconds": 9.5, "max_rss_bytes": 0.7e9}, "rss_growth": None}
    checked = {
        t["key"]: t["status"] for t in bench_monitor.check_targets(results, bench_monitor.TARGETS)
    }
    assert checked == {
        "1M.seconds": "NOT MET",
        "1M.max_rss_bytes": "met",
        "rss_growth": "skipped",
    }
