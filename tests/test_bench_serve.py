"""Unit tests of the serving benchmark's pure helpers; no server is started here."""

import json
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
from benchmarks import bench_serve as bs


@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 99, 100])
def test_percentile_matches_numpy_linear(q: float) -> None:
    values = [float(v) for v in np.random.default_rng(0).exponential(5.0, size=1001)]
    assert bs.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_interpolates_between_ranks() -> None:
    assert bs.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5  # unsorted input
    assert bs.percentile([10.0, 20.0], 25) == 12.5
    assert bs.percentile([7.0], 99) == 7.0


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_rejects_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match="within"):
        bs.percentile([1.0], q)


def test_percentile_rejects_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        bs.percentile([], 50)


def test_summarize_reports_milliseconds() -> None:
    seconds = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    out = bs.summarize(seconds)
    assert out["requests"] == 100
    assert out["mean_ms"] == pytest.approx(50.5)
    assert out["p50_ms"] == pytest.approx(50.5)
    assert out["p99_ms"] == pytest.approx(99.01)
    assert out["max_ms"] == pytest.approx(100.0)


def test_throughput_counts_rows_over_timed_seconds() -> None:
    out = bs.throughput(100, [0.01, 0.02, 0.01, 0.01])
    assert out == {
        "batch": 100,
        "requests": 4,
        "rows": 400,
        "seconds": pytest.approx(0.05),
        "rows_per_second": pytest.approx(8000.0),
    }
    assert bs.throughput(1, [0.0])["rows_per_second"] == float("inf")


def test_batches_cycle_through_every_row() -> None:
    assert bs.batch_indices(5, 2, 0) == [0, 1]
    assert bs.batch_indices(5, 2, 2) == [4, 0]  # wraps around
    assert bs.batch_indices(5, 2, 3) == [1, 2]
    assert bs.batch_indices(3, 7, 0) == [0, 1, 2, 0, 1, 2, 0]  # larger than the data
    # 1,409 test rows in batches of 1,000: 1,409 batches use each row exactly 1,000 times.
    counts = np.bincount(
        [i for k in range(1409) for i in bs.batch_indices(1409, 1000, k)], minlength=1409
    )
    assert set(counts) == {1000}


@pytest.mark.parametrize(("total", "size", "index"), [(0, 1, 0), (5, 0, 0), (5, 1, -1)])
def test_batches_reject_nonsense(total: int, size: int, index: int) -> None:
    with pytest.raises(ValueError, match="need"):
        bs.batch_indices(total, size, index)


def test_encoded_body_is_the_predict_request() -> None:
    records = [{"tenure": 1.0}, {"tenure": 2.0}, {"tenure": None}]
    body = json.loads(bs.encoded_body(records, [2, 0]))
    assert body == {"customers": [{"tenure": None}, {"tenure": 1.0}]}


@pytest.mark.parametrize(
    ("value", "limit", "at_least", "status"),
    [
        (0.6, 0.5, True, "met"),
        (0.5, 0.5, True, "met"),
        (0.2749, 0.5, True, "NOT MET"),
        (25.0, 25.0, False, "met"),
        (25.01, 25.0, False, "NOT MET"),
        (None, 25.0, False, "skipped"),
    ],
)
def test_target_status(value: float | None, limit: float, at_least: bool, status: str) -> None:
    assert bs.target_status(value, limit, at_least) == status


def test_check_targets_reads_the_results_it_names() -> None:
    results = {"ratio": {"1000": 0.62}, "latency": {"p99_ms": 31.0}}
    checked = {t["key"]: t for t in bs.check_targets(results)}
    assert checked["ratio.1000"]["status"] == "met"
    assert checked["ratio.1000"]["value"] == 0.62
    assert checked["latency.p99_ms"]["status"] == "NOT MET"
    assert bs.check_targets({})[0]["status"] == "skipped"


def test_ratio_and_agreement() -> None:
    assert bs.ratio(1.0, 4.0) == 0.25
    assert bs.ratio(1.0, 0.0) == float("inf")
    assert bs.largest_difference([0.1, 0.5], [0.1, 0.25]) == 0.25
    assert bs.largest_difference([0.1], [0.1, 0.2]) == float("inf")
    assert bs.largest_difference([], []) == 0.0


def test_bounded_loop_stops_at_count_or_time() -> None:
    assert bs.bounded_loop(3, 60.0, lambda i: float(i)) == [0.0, 1.0, 2.0]
    # A zero time bound still measures one call, then stops.
    assert bs.bounded_loop(1000, 0.0, lambda i: 1.0) == [1.0]


def test_fmt_value() -> None:
    assert bs.fmt_value(15.984, "ms") == "15.98 ms"
    assert bs.fmt_value(0.275, "%") == "27.5 %"
    assert bs.fmt_value(36893.2, "rows/s") == "36,893 rows/s"
    assert bs.fmt_value(None, "ms") == "-"


def test_server_env_is_loopback_and_the_workspace_model() -> None:
    given = {"MODEL_REF": "churn-model@v1.0.0", "HOST": "::", "PREDICTION_LOG": "p", "X": "1"}
    env = bs.server_env(8123, given)
    assert env["HOST"] == "127.0.0.1"
    assert env["PORT"] == "8123"
    assert env["MAX_BATCH"] == "1000"
    assert "MODEL_REF" not in env
    assert "PREDICTION_LOG" not in env
    assert env["X"] == "1"


def test_free_port_can_be_bound() -> None:
    port = bs.free_port()
    assert 1024 <= port <= 65535  # an ephemeral port, not 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))  # raises if it were taken


def test_format_report_shows_every_measurement_and_target() -> None:
    per = {"rows_per_second": 1000.0, "requests": 200}
    results = {
        "machine": {"platform": "Linux-x", "cpu_count": 2, "python": "3.11.7"},
        "server": {"ready_seconds": 1.2, "model_version": "workspace-abc"},
        "rows": 1409,
        "latency": {
            "requests": 1000,
            "warmup": 50,
            **{f"{k}_ms": 1.0 for k in ("mean", "p50", "p90", "p99", "max")},
        },
        "http": {str(b): per for b in bs.BATCH_SIZES},
        "bare": {str(b): {**per, "rows_per_second": 4000.0} for b in bs.BATCH_SIZES},
        "ratio": {str(b): 0.25 for b in bs.BATCH_SIZES},
        "bounds": {"max_requests": 200, "max_seconds": 20.0},
    }
    results["targets"] = bs.check_targets(results)
    text = bs.format_report(results)
    assert "2 CPUs" in text
    assert "p99 1.00 ms" in text
    assert text.count("25.0 %") == 4  # three batch sizes and the target line
    assert "NOT MET" in text
    assert "  met" in text


def test_parse_args_rejects_unbounded_runs() -> None:
    with pytest.raises(SystemExit):
        bs.parse_args(["--max-seconds", "0"])
    with pytest.raises(SystemExit):
        bs.parse_args(["--requests", "0"])
    args = bs.parse_args(["--json", "out.json"])
    assert (args.requests, args.warmup, args.max_requests) == (1000, 50, 200)


def test_the_server_command_exists() -> None:
    # The bench starts the service as a user would; a renamed module must fail here.
    done = subprocess.run([*bs.SERVER_CMD, "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: churn serve")


# --------------------------------------------------------------------------- the burst

OK_ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 58\r\n\r\n"
    b'{"predictions":[{"churn_probability":0.25,"churn":false}]}'
)
SHED_ANSWER = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 2\r\n\r\n{}"


def test_http_request_is_complete_and_asks_to_close() -> None:
    request = bs.http_request("POST", "/v1/predict", 8123, b'{"customers":[]}')
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"POST /v1/predict HTTP/1.1",
        b"host: 127.0.0.1:8123",
        b"connection: close",
        b"content-type: application/json",
        b"content-length: 16",
    ]
    assert body == b'{"customers":[]}'
    assert bs.http_request("GET", "/health", 1) == (
        b"GET /health HTTP/1.1\r\nhost: 127.0.0.1:1\r\nconnection: close\r\n\r\n"
    )


def test_parse_answer_reads_status_headers_and_body() -> None:
    status, headers, body = bs.parse_answer(SHED_ANSWER + b"trailing bytes")
    assert (status, headers["retry-after"], body) == (503, "1", b"{}")
    with pytest.raises(ValueError, match="content-length 58"):
        bs.parse_answer(OK_ANSWER[:-5])  # cut short
    with pytest.raises(ValueError, match="not an HTTP answer"):
        bs.parse_answer(b"garbage\r\n\r\n")


@pytest.mark.parametrize(
    ("raw", "timed_out", "kind"),
    [
        (OK_ANSWER, False, "admitted"),
        (SHED_ANSWER, False, "shed"),
        (SHED_ANSWER.replace(b"retry-after: 1\r\n", b""), False, "other"),  # no Retry-After
        (b"", False, "refused"),  # refused, or closed before a byte
        (b"", True, "timeout"),
        (OK_ANSWER[:-5], True, "timeout"),  # half an answer when time ran out
        (OK_ANSWER[:-5], False, "other"),  # half an answer, then closed
        (OK_ANSWER.replace(b"200 OK", b"422 Unprocessable"), False, "other"),
        (OK_ANSWER.replace(b"predictions", b"predictionz"), False, "other"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", False, "other"),
        (b'HTTP/1.1 200 OK\r\ncontent-length: 18\r\n\r\n{"predictions":[]}', False, "other"),
    ],
)
def test_classify_every_outcome(raw: bytes, timed_out: bool, kind: str) -> None:
    assert bs.classify(raw, timed_out) == kind


def test_summarize_burst_counts_and_percentiles() -> None:
    admitted = [bs.Outcome("admitted", i / 1000) for i in range(1, 101)]  # 1..100 ms
    shed = [bs.Outcome("shed", 0.002)] * 9 + [bs.Outcome("shed", 0.102)]
    rest = [bs.Outcome("refused", 0.001)] * 3 + [bs.Outcome("timeout", 60.0)]
    out = bs.summarize_burst(admitted + shed + rest)
    assert out["clients"] == 114
    assert out["counts"] == {"admitted": 100, "shed": 10, "refused": 3, "timeout": 1, "other": 0}
    assert out["admitted"]["requests"] == 100
    assert out["admitted"]["p50_ms"] == pytest.approx(50.5)
    assert out["admitted"]["p99_ms"] == pytest.approx(99.01)
    assert out["admitted"]["max_ms"] == pytest.approx(100.0)
    assert out["shed_p99_ms"] == pytest.approx(2 + 0.91 * 100)  # between the 9th and 10th


def test_summarize_burst_with_nothing_admitted_or_shed() -> None:
    out = bs.summarize_burst([bs.Outcome("refused", 0.0)] * 2)
    assert out["counts"]["refused"] == 2
    assert (out["admitted"], out["shed_p99_ms"]) == (None, None)


def test_summarize_probes_counts_those_sent_during_the_burst() -> None:
    probes = [(True, 0.0, 0.01), (True, 0.1, 0.4), (False, 0.2, 0.3), (True, 1.0, 2.0)]
    assert bs.summarize_probes(probes, burst_seconds=1.0) == {
        "probes": 4,
        "sent_during_burst": 3,  # the last one was sent as the burst ended
        "answered": 3,
        "max_ms": pytest.approx(1000.0),
    }
    assert bs.summarize_probes([(False, 0.0, 1.0)], 1.0)["max_ms"] is None


def test_fd_soft_limit() -> None:
    unlimited = bs.resource.RLIM_INFINITY
    assert bs.fd_soft_limit(2000, 20000, 20000) == 20000  # enough already: unchanged
    assert bs.fd_soft_limit(2000, 1024, 4096) == 2000 + bs.FD_MARGIN  # raised to the need
    assert bs.fd_soft_limit(2000, 1024, unlimited) == 2000 + bs.FD_MARGIN
    assert bs.fd_soft_limit(2000, unlimited, unlimited) == unlimited
    assert bs.fd_soft_limit(2000, 1024, 2000) is None  # the hard limit is too low


def test_server_limits_are_the_environment_or_the_defaults() -> None:
    assert bs.server_limits({}) == {"max_concurrent": 16, "max_connections": 1000}
    assert bs.server_limits({"MAX_CONCURRENT": "2"})["max_concurrent"] == 2


def test_burst_report_lines() -> None:
    burst = {
        **bs.summarize_burst([bs.Outcome("admitted", 0.005), bs.Outcome("shed", 0.001)]),
        "health": bs.summarize_probes([(True, 0.0, 0.004)], 1.0),
        "server": {"max_concurrent": 16, "max_connections": 1000},
        "seconds": 1.0,
        "max_seconds": 60.0,
        "client_cpu_seconds": 0.5,
    }
    text = "\n".join(bs.burst_lines(burst))
    assert "MAX_CONCURRENT=16, MAX_CONNECTIONS=1000" in text
    assert "admitted 1   shed 1   refused 0   timeout 0   other 0" in text
    assert "p99 5.00 ms" in text
    assert "took 1.0 s (bound 60 s), 0.5 s of it the clients' CPU" in text
    assert (
        "1 probes on new connections, 1 sent during the burst; 1 answered 200, max 4.00 ms" in text
    )


def test_parse_args_burst() -> None:
    assert bs.parse_args([]).burst == 2000
    assert bs.parse_args(["--burst", "0"]).burst == 0  # skips it
    for bad in (["--burst", "-1"], ["--burst-seconds", "0"]):
        with pytest.raises(SystemExit):
            bs.parse_args(bad)


def test_a_real_burst_sheds_past_max_concurrent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained: Path
) -> None:
    # 100 clients against 2 slots: the real server, the real test rows. The work dir is
    # the in-process pipeline's (CI starts from a clean clone: no workspace outputs).
    monkeypatch.setenv("MAX_CONCURRENT", "2")
    work = bs.load_workload(trained)
    with bs.running_server(tmp_path / "serve.log", 60.0, root=trained) as (client, _):
        port = client.base_url.port
        burst = bs.measure_burst(port, work.records, 100, 60.0)
        assert client.get("/health").status_code == 200  # and it serves on afterwards
    counts = burst["counts"]
    assert sum(counts.values()) == burst["clients"] == 100
    assert counts["admitted"] >= 2, counts  # every admitted one: a 200 with one prediction
    assert counts["shed"] >= 1, counts  # 503 with Retry-After
    assert counts["refused"] == counts["timeout"] == counts["other"] == 0, counts
    assert burst["admitted"]["requests"] == counts["admitted"]
    assert burst["health"]["answered"] == bs.HEALTH_PROBES
    assert burst["health"]["max_ms"] < 30_000
    assert burst["seconds"] < 60.0
