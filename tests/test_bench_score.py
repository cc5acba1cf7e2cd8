"""The scoring benchmark's pure parts (the benchmark itself runs by hand: make bench-score)."""

from benchmarks import bench_score


def test_pieces_cover_every_row_once_in_order():
    assert bench_score.pieces(2_500_000) == [
        (0, 1_000_000),
        (1_000_000, 2_000_000),
        (2_000_000, 2_500_000),
    ]
    assert bench_score.pieces(3, piece=5) == [(0, 3)]


def test_every_target_is_checked_against_the_results():
    results = {
        "10M": {"ratio": 0.7, "score": {"max_rss_bytes": 1.6e9}},
        "rss_growth": 1.1,
        "dask": {"identical": 0},
    }
    checked = {
        t["key"]: t["status"] for t in bench_score.check_targets(results, bench_score.TARGETS)
    }
    assert checked == {
        "10M.ratio": "met",
        "10M.score.max_rss_bytes": "NOT MET",
        "rss_growth": "met",
        "dask.identical": "NOT MET",
    }
