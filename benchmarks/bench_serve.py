"""Benchmark: what does serving over HTTP cost on top of ``model.predict_proba``?

Run as ``python -m benchmarks.bench_serve`` (``make bench-serve``) from a checkout whose
model is in the workspace (``dvc repro`` or ``dvc pull`` first). It starts the real
service, ``churn serve``, as a subprocess on a free loopback port (the
repository root as its working directory, so it loads ``models/model.pkl`` after
checking its md5 against ``dvc.lock``), waits for ``/ready``, then measures from this
second process with one keep-alive :class:`httpx.Client`:

* single-row ``POST /v1/predict`` latency (p50/p90/p99) over ``--requests`` requests,
  after ``--warmup`` unmeasured ones;
* rows per second for batches of 1, 100 and 1,000 rows, each over at most
  ``--max-requests`` requests or ``--max-seconds`` seconds, whichever ends first;
* the floor: ``model.predict_proba`` in this process on the same batches, the same
  pickle loaded after the same md5 check, under the same bounds;
* a burst (last, so it cannot disturb the rest): ``--burst`` clients open a connection
  each at once, send one single-row ``POST /v1/predict`` with ``connection: close`` and
  read the answer to the end, within ``--burst-seconds`` in all; meanwhile ``/health``
  is probed a few times, each probe on a new connection as a load balancer's would be.
  Every client ends as exactly one of: admitted (200 with one prediction), shed (503
  with ``Retry-After``), refused (connection refused, or closed before any answer: the
  server's ``MAX_CONNECTIONS``), timeout, or other. The server runs with its default
  limits unless ``MAX_CONCURRENT`` / ``MAX_CONNECTIONS`` are set in this process's
  environment, and the report names them. The clients are raw asyncio streams in this
  one process (httpx's async client cannot drive thousands of connections here), each
  timed from its own connect to the last byte of its answer, so the time the client's
  event loop spends on the other clients is included; the soft file-descriptor limit
  is raised (up to the hard limit) for the clients' sockets, or the run stops with a
  one-line error.

Rows are the real test split (the contract's features, without the target), as
the JSON a client would send; batches cycle through it. Request bodies are encoded
before the clock starts and only the call itself is timed, so client-side JSON
encoding is not counted; the response is read in full (status checked every time,
the predictions of the first batch of each size compared with the floor's).
The server is always stopped: terminated, then killed after 10 s.
"""

import argparse
import asyncio
import gc
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.sandbox import REPO_ROOT

from benchmarks import bench
from benchmarks.bench import Target, machine_info, ratio, target_lines
from benchmarks.bench import target_status as target_status  # re-exported: shared rule
from churn.core.errors import ChurnError
from churn.serving.settings import Settings

log = logging.getLogger("churn.bench_serve")

BATCH_SIZES = (1, 100, 1000)
DEFAULT_REQUESTS = 1000
DEFAULT_WARMUP = 50
DEFAULT_MAX_REQUESTS = 200
DEFAULT_MAX_SECONDS = 20.0
LATENCY_MAX_SECONDS = 120.0  # the latency loop's time bound, whatever --requests says
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
REQUEST_TIMEOUT = 30.0
PREDICT = "/v1/predict"
AGREEMENT = 1e-9  # largest |HTTP - in-process| probability accepted
DEFAULT_BURST = 2000  # the 2,000 concurrent clients
DEFAULT_BURST_SECONDS = 60.0  # the whole burst's time bound, probes included
HEALTH_PROBES = 5
PROBE_INTERVAL = 0.1  # seconds between probe starts, so they spread over the burst
FD_MARGIN = 64  # descriptors beyond one per client: probes, logs, the loop's own
# How a burst client ended; every client is exactly one of these.
OUTCOMES = ("admitted", "shed", "refused", "timeout", "other")
LIMITS = ("max_concurrent", "max_connections")  # the server settings the burst meets


class BenchError(ChurnError):
    """The server did not start, or answered something other than predictions."""


TARGETS = (
    Target("ratio.1000", "batch-1,000 HTTP throughput / bare", 0.5, "%", at_least=True),
    Target("latency.p99_ms", "single-row p99 latency", 25.0, "ms", at_least=False),
)


# --------------------------------------------------------------------------- pure helpers


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile with linear interpolation between ranks (numpy's default).

    Args:
        values: The sample; need not be sorted.
        q: Percentile in [0, 100].

    Returns:
        The interpolated value.

    Raises:
        ValueError: If ``values`` is empty or ``q`` is outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of an empty sample")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within [0, 100], got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """Count, mean, p50, p90, p99 and max of request times, the times in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "requests": len(ms),
        "mean_ms": sum(ms) / len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
    }


def throughput(batch: int, seconds: Sequence[float]) -> dict[str, float]:
    """Rows per second of ``len(seconds)`` calls of ``batch`` rows each (timed calls only)."""
    total = sum(seconds)
    rows = batch * len(seconds)
    return {
        "batch": batch,
        "requests": len(seconds),
        "rows": rows,
        "seconds": total,
        "rows_per_second": rows / total if total > 0 else float("inf"),
    }


def batch_indices(total: int, size: int, index: int) -> list[int]:
    """Row positions of the ``index``-th batch of ``size`` rows, cycling through ``total``.

    Batch 0 is rows ``0..size-1``; each next batch starts where the last one ended and
    wraps around to row 0, so every row is used equally often.

    Raises:
        ValueError: If ``total`` or ``size`` is not positive, or ``index`` is negative.
    """
    if total < 1 or size < 1 or index < 0:
        raise ValueError(f"need total >= 1, size >= 1, index >= 0 (got {total}, {size}, {index})")
    start = (index * size) % total
    return [(start + offset) % total for offset in range(size)]


def check_targets(
    results: Mapping[str, Any], targets: Sequence[Target] = TARGETS
) -> list[dict[str, Any]]:
    """The serving targets, checked by the pipeline benchmark's rules."""
    return bench.check_targets(results, targets)


def fmt_value(value: float | None, unit: str) -> str:
    """Format milliseconds (``ms``), a share (``%``), rows per second (``rows/s``)."""
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "%":
        return f"{value * 100:.1f} %"
    return f"{value:,.0f} {unit}".rstrip()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host`` (bind to port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def http_request(method: str, path: str, port: int, body: bytes = b"") -> bytes:
    """One HTTP/1.1 request asking the server to close the connection after answering."""
    head = [f"{method} {path} HTTP/1.1", f"host: 127.0.0.1:{port}", "connection: close"]
    if body:
        head += ["content-type: application/json", f"content-length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


def parse_answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one complete HTTP/1.1 answer.

    Raises:
        ValueError: If the head is malformed or the body shorter than its content-length.
    """
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if not sep or len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP answer: {raw[:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        length = int(headers["content-length"])
        if len(body) < length:
            raise ValueError(f"body of {len(body)} bytes, content-length {length}")
        body = body[:length]
    return int(parts[1]), headers, body


def classify(raw: bytes, timed_out: bool) -> str:
    """Which of ``OUTCOMES`` a burst client's answer ``raw`` is.

    Admitted means a 200 whose body holds exactly one prediction; shed a 503 with a
    ``Retry-After`` header; refused no byte at all (refused, or closed unanswered).
    """
    if not raw:
        return "timeout" if timed_out else "refused"
    try:
        status, headers, body = parse_answer(raw)
    except ValueError:
        return "timeout" if timed_out else "other"
    if status == 503 and "retry-after" in headers:
        return "shed"
    if status == 200:
        try:
            predictions = json.loads(body)["predictions"]
        except (ValueError, KeyError, TypeError):
            return "other"
        return "admitted" if len(predictions) == 1 else "other"
    return "other"


@dataclass(frozen=True)
class Outcome:
    """How one burst client ended, and the seconds from its connect to its last byte."""

    kind: str
    seconds: float


def summarize_burst(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Counts of each outcome; latency of the admitted answers and of the shed ones.

    ``admitted`` is :func:`summarize` of the admitted clients' times (None if none was
    admitted); ``shed_p99_ms`` the 99th percentile of the shed ones' (None if none).
    """
    counts = {kind: 0 for kind in OUTCOMES}
    for outcome in outcomes:
        counts[outcome.kind] += 1
    admitted = [o.seconds for o in outcomes if o.kind == "admitted"]
    shed = [o.seconds * 1000 for o in outcomes if o.kind == "shed"]
    return {
        "clients": len(outcomes),
        "counts": counts,
        "admitted": summarize(admitted) if admitted else None,
        "shed_p99_ms": percentile(shed, 99) if shed else None,
    }


def summarize_probes(
    probes: Sequence[tuple[bool, float, float]], burst_seconds: float
) -> dict[str, Any]:
    """``/health`` probes as (answered 200, start, end) seconds from the burst's start.

    Returns how many were sent, how many of those were sent while the burst was still
    running (before its last client finished), how many got a 200, and the answered
    ones' max latency (None if none was answered).
    """
    answered = [end - start for ok, start, end in probes if ok]
    return {
        "probes": len(probes),
        "sent_during_burst": sum(start < burst_seconds for _, start, _ in probes),
        "answered": len(answered),
        "max_ms": max(answered) * 1000 if answered else None,
    }


def fd_soft_limit(clients: int, soft: int, hard: int) -> int | None:
    """The soft descriptor limit ``clients`` sockets need: ``soft`` if enough, else raised.

    ``resource.RLIM_INFINITY`` (-1) as ``hard`` means no ceiling.

    Returns:
        The limit to set (``soft`` when it already suffices), or None if ``hard`` is
        too low.
    """
    needed = clients + FD_MARGIN
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        return None
    return needed


def server_limits(env: Mapping[str, str]) -> dict[str, int]:
    """The concurrency and connection limits a server started with ``env`` runs with."""
    fields = Settings.model_fields
    return {name: int(env.get(name.upper(), fields[name].default)) for name in LIMITS}


# --------------------------------------------------------------------------- data and model


@dataclass(frozen=True)
class Workload:
    """The test split as the floor sees it (a frame) and as a client sends it (dicts)."""

    frame: Any  # pandas DataFrame of the contract's features, in contract order
    records: list[dict[str, Any]]
    model: Any


def load_workload(root: Path) -> Workload:
    """Read the test split, the contract and the md5-checked model of the checkout at ``root``.

    Raises:
        ChurnError: If a file is missing or the model's md5 differs from ``dvc.lock``'s.
    """
    import pandas as pd

    from churn.core.contract import read_contract
    from churn.core.integrity import load_model
    from churn.core.params import load_params

    params = load_params(root / "params.yaml")
    contract = read_contract(root / params.paths.contract)
    test_path = root / params.paths.test
    if not test_path.is_file():
        raise BenchError(f"{test_path}: file not found (run dvc repro or dvc pull)")
    frame = pd.read_parquet(test_path)[contract.features].reset_index(drop=True)
    records = json.loads(frame.to_json(orient="records"))
    # The floor gets the layout the model scores fastest, the one the service builds:
    # categories as Python strings in object columns (pandas' string dtype is ~10 %
    # slower to encode). So the service's own layout is not counted as a gain.
    frame = frame.astype(dict.fromkeys(contract.categorical, object))
    model, _ = load_model(params.paths.model, root=root)  # md5 checked against dvc.lock
    return Workload(frame=frame, records=records, model=model)


# --------------------------------------------------------------------------- the server

SERVER_CMD = [sys.executable, "-m", "churn", "serve"]


def server_env(port: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The service's environment: loopback, ``port``, the workspace model, this ``src``."""
    env = dict(os.environ if base is None else base)
    # The default configuration: the workspace model, no CORS, no prediction log.
    for name in ("MODEL_REF", "CORS_ORIGINS", "PREDICTION_LOG", "LOG_SAMPLE_RATE"):
        env.pop(name, None)
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        MAX_BATCH=str(max(BATCH_SIZES)),
        PYTHONPATH=str(REPO_ROOT / "src"),
    )
    return env


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file."""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def wait_ready(client: Any, proc: subprocess.Popen, log_file: Path, timeout: float) -> float:
    """Poll ``/ready`` until it answers 200; return the seconds waited.

    Raises:
        BenchError: If the server exits first or is not ready within ``timeout`` seconds.
    """
    import httpx

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise BenchError(f"the server exited {proc.returncode}:\n{tail(log_file)}")
        try:
            if client.get("/ready", timeout=2.0).status_code == 200:
                return time.perf_counter() - start
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.1)
    raise BenchError(f"the server was not ready after {timeout:g} s:\n{tail(log_file)}")


def stop(proc: subprocess.Popen) -> None:
    """Terminate the server; kill it if it has not exited after ``STOP_TIMEOUT`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("server %d ignored SIGTERM for %.0f s; killing it", proc.pid, STOP_TIMEOUT)
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


@contextmanager
def running_server(
    log_file: Path, ready_timeout: float, root: Path = REPO_ROOT
) -> Iterator[tuple[Any, float]]:
    """Start ``churn serve`` in ``root``; yield a keep-alive client on it and the ready time."""
    import httpx

    port = free_port()
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            SERVER_CMD, cwd=root, env=server_env(port), stdout=out, stderr=subprocess.STDOUT
        )
    log.info("started the server (pid %d) on 127.0.0.1:%d; log %s", proc.pid, port, log_file)
    try:
        base = f"http://127.0.0.1:{port}"
        # trust_env=False: no proxy from the environment between us and loopback.
        with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT, trust_env=False) as client:
            ready = wait_ready(client, proc, log_file, ready_timeout)
            log.info("ready after %.1f s", ready)
            yield client, ready
    finally:
        stop(proc)
        log.info("server stopped (exit %s)", proc.returncode)


# --------------------------------------------------------------------------- measuring


def encoded_body(records: Sequence[dict[str, Any]], indices: Sequence[int]) -> bytes:
    """The ``/v1/predict`` request body for the rows at ``indices``."""
    return json.dumps({"customers": [records[i] for i in indices]}).encode()


def post(client: Any, body: bytes) -> tuple[float, Any]:
    """POST one encoded body; return the seconds the call took and the response.

    Raises:
        BenchError: If the answer is not 200.
    """
    start = time.perf_counter()
    response = client.post(PREDICT, content=body, headers={"content-type": "application/json"})
    seconds = time.perf_counter() - start
    if response.status_code != 200:
        raise BenchError(f"{PREDICT} answered {response.status_code}: {response.text[:300]}")
    return seconds, response


def bounded_loop(count: int, max_seconds: float, step: Callable[[int], float]) -> list[float]:
    """Call ``step(i)`` for i = 0.. until ``count`` calls or ``max_seconds`` have passed.

    Returns:
        What each call returned (its own measured seconds); at least one call is made.
    """
    deadline = time.perf_counter() + max_seconds
    times: list[float] = []
    for i in range(count):
        times.append(step(i))
        if time.perf_counter() >= deadline:
            log.info("time bound of %.0f s reached after %d of %d calls", max_seconds, i + 1, count)
            break
    return times


def measure_latency(client: Any, work: Workload, requests: int, warmup: int) -> dict[str, float]:
    """Single-row ``/v1/predict`` latency over ``requests`` calls after ``warmup`` calls."""
    total = len(work.records)

    def call(i: int) -> float:
        return post(client, encoded_body(work.records, batch_indices(total, 1, i)))[0]

    bounded_loop(warmup, LATENCY_MAX_SECONDS, call)
    times = bounded_loop(requests, LATENCY_MAX_SECONDS, lambda i: call(warmup + i))
    return {**summarize(times), "warmup": warmup}


def measure_http(
    client: Any, work: Workload, batch: int, count: int, max_seconds: float
) -> tuple[dict[str, float], list[float]]:
    """Rows/s of ``/v1/predict`` for ``batch`` rows a call; also the first call's answers."""
    total = len(work.records)
    first: list[float] = []

    def call(i: int) -> float:
        seconds, response = post(client, encoded_body(work.records, batch_indices(total, batch, i)))
        if i == 0:
            predictions = response.json()["predictions"]
            if len(predictions) != batch:
                raise BenchError(f"asked for {batch} predictions, got {len(predictions)}")
            first.extend(p["churn_probability"] for p in predictions)
        return seconds

    return throughput(batch, bounded_loop(count, max_seconds, call)), first


def measure_bare(
    work: Workload, batch: int, count: int, max_seconds: float
) -> tuple[dict[str, float], list[float]]:
    """Rows/s of in-process ``predict_proba`` on the same batches; also the first batch's."""
    total = len(work.frame)
    first: list[float] = []

    def call(i: int) -> float:
        rows = work.frame.iloc[batch_indices(total, batch, i)]
        start = time.perf_counter()
        proba = work.model.predict_proba(rows)[:, 1]
        seconds = time.perf_counter() - start
        if i == 0:
            first.extend(float(p) for p in proba)
        return seconds

    return throughput(batch, bounded_loop(count, max_seconds, call)), first


def largest_difference(left: Sequence[float], right: Sequence[float]) -> float:
    """The largest ``|left - right|`` over paired values (inf if the lengths differ)."""
    if len(left) != len(right):
        return float("inf")
    return max((abs(a - b) for a, b in zip(left, right, strict=True)), default=0.0)


def measure_batches(
    client: Any, work: Workload, count: int, max_seconds: float
) -> dict[str, dict[str, Any]]:
    """HTTP and bare throughput, their ratio and agreement, for every batch size."""
    out: dict[str, dict[str, Any]] = {"http": {}, "bare": {}, "ratio": {}, "agreement": {}}
    for batch in BATCH_SIZES:
        key = str(batch)
        log.info("batch %d: HTTP, then in-process", batch)
        out["http"][key], served = measure_http(client, work, batch, count, max_seconds)
        out["bare"][key], floor = measure_bare(work, batch, count, max_seconds)
        out["ratio"][key] = ratio(
            out["http"][key]["rows_per_second"], out["bare"][key]["rows_per_second"]
        )
        out["agreement"][key] = largest_difference(served, floor)
        if out["agreement"][key] > AGREEMENT:
            raise BenchError(
                f"batch {batch}: HTTP and in-process probabilities differ by "
                f"{out['agreement'][key]:.3g}"
            )
    return out


def raise_fd_limit(clients: int) -> int:
    """Raise this process's soft descriptor limit for ``clients`` sockets; return it.

    The server, started after this, inherits the raised limit.

    Raises:
        BenchError: If the hard limit is too low (a one-line message saying so).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = fd_soft_limit(clients, soft, hard)
    if wanted is None:
        raise BenchError(
            f"--burst {clients} needs {clients + FD_MARGIN} file descriptors, the hard limit "
            f"(ulimit -Hn) is {hard}: raise it or ask for fewer clients"
        )
    if wanted != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        log.info("soft file-descriptor limit raised from %d to %d", soft, wanted)
    return wanted


async def exchange(port: int, request: bytes, deadline: float) -> tuple[bytes, bool]:
    """Send ``request`` on a new connection, read until the server closes it.

    Returns:
        The bytes received (possibly none) and whether the loop's ``deadline`` ended it.
    """
    raw = bytearray()
    writer = None
    try:
        async with asyncio.timeout_at(deadline):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            while chunk := await reader.read(65536):
                raw += chunk
    except TimeoutError:
        return bytes(raw), True
    except OSError:
        pass  # refused or reset: what arrived before, if anything, is classified
    finally:
        if writer is not None:
            writer.transport.abort()  # no lingering close handshake on a loaded loop
    return bytes(raw), False


async def burst_client(port: int, request: bytes, deadline: float) -> Outcome:
    """One burst client: its outcome and its time from connect to the last byte."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    raw, timed_out = await exchange(port, request, deadline)
    return Outcome(classify(raw, timed_out), loop.time() - start)


async def health_probes(port: int, t0: float, deadline: float) -> list[tuple[bool, float, float]]:
    """``HEALTH_PROBES`` probes of ``/health``, ``PROBE_INTERVAL`` apart, each a new connection.

    Returns:
        (answered 200, start, end) of each, in seconds since ``t0``.
    """
    loop = asyncio.get_running_loop()
    request = http_request("GET", "/health", port)

    async def probe(delay: float) -> tuple[bool, float, float]:
        await asyncio.sleep(delay)
        start = loop.time()
        raw, _ = await exchange(port, request, deadline)
        try:
            ok = parse_answer(raw)[0] == 200
        except ValueError:
            ok = False
        return ok, start - t0, loop.time() - t0

    return await asyncio.gather(*(probe(i * PROBE_INTERVAL) for i in range(HEALTH_PROBES)))


async def run_burst(
    port: int, bodies: Sequence[bytes], max_seconds: float
) -> tuple[list[Outcome], list[tuple[bool, float, float]], float]:
    """Every client at once plus the probes; outcomes, probes and the burst's seconds."""
    loop = asyncio.get_running_loop()
    # Encoded before the clock starts, like every other request of this benchmark.
    requests = [http_request("POST", PREDICT, port, body) for body in bodies]
    t0 = loop.time()
    deadline = t0 + max_seconds
    probes = asyncio.create_task(health_probes(port, t0, deadline))
    outcomes = await asyncio.gather(*(burst_client(port, r, deadline) for r in requests))
    burst_seconds = loop.time() - t0
    return list(outcomes), await probes, burst_seconds


def measure_burst(
    port: int, records: Sequence[dict[str, Any]], clients: int, max_seconds: float
) -> dict[str, Any]:
    """``clients`` concurrent single-row predictions (rows cycling through ``records``)."""
    bodies = [encoded_body(records, batch_indices(len(records), 1, i)) for i in range(clients)]
    cpu = time.process_time()
    outcomes, probes, seconds = asyncio.run(run_burst(port, bodies, max_seconds))
    return {
        **summarize_burst(outcomes),
        # The clients share the machine with the server: their CPU time says how much.
        "client_cpu_seconds": time.process_time() - cpu,
        "health": summarize_probes(probes, seconds),
        "seconds": seconds,
        "max_seconds": max_seconds,
    }


def run_benchmark(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Load the workload, start the server, measure everything, check the targets."""
    fd_limit = raise_fd_limit(args.burst) if args.burst else None  # before the server starts
    work = load_workload(REPO_ROOT)
    gc.freeze()  # as the service does after loading: the floor gets the same treatment
    log.info("%d test rows loaded; starting churn serve", len(work.records))
    results: dict[str, Any] = {"machine": machine_info(), "rows": len(work.records)}
    with running_server(scratch / "serve.log", args.ready_timeout) as (client, ready):
        results["server"] = {"ready_seconds": ready, **client.get("/ready").json()}
        log.info("single-row latency: %d requests after %d warm-up", args.requests, args.warmup)
        results["latency"] = measure_latency(client, work, args.requests, args.warmup)
        results.update(measure_batches(client, work, args.max_requests, args.max_seconds))
        if args.burst:
            port = client.base_url.port
            log.info("burst: %d clients at once (at most %.0f s)", args.burst, args.burst_seconds)
            results["burst"] = {
                **measure_burst(port, work.records, args.burst, args.burst_seconds),
                "server": server_limits(server_env(port)),
                "fd_soft_limit": fd_limit,
            }
    results["bounds"] = {"max_requests": args.max_requests, "max_seconds": args.max_seconds}
    results["targets"] = check_targets(results)
    return results


# --------------------------------------------------------------------------- report


def batch_lines(results: Mapping[str, Any]) -> list[str]:
    """The throughput table: one line per batch size."""
    lines = [
        f"  {'batch':>7}{'HTTP rows/s':>14}{'(requests)':>12}{'bare rows/s':>14}"
        f"{'(calls)':>9}{'HTTP / bare':>13}"
    ]
    for batch in BATCH_SIZES:
        key = str(batch)
        http, bare = results["http"][key], results["bare"][key]
        lines.append(
            f"  {batch:>7,}{http['rows_per_second']:>14,.0f}{http['requests']:>12,}"
            f"{bare['rows_per_second']:>14,.0f}{bare['requests']:>9,}"
            f"{fmt_value(results['ratio'][key], '%'):>13}"
        )
    return lines


def burst_lines(burst: Mapping[str, Any]) -> list[str]:
    """The burst's outcomes, the admitted and shed latency and the /health probes."""
    counts, admitted, health = burst["counts"], burst["admitted"], burst["health"]
    limits = burst["server"]
    lines = [
        f"burst: {burst['clients']:,} clients at once, one single-row POST {PREDICT} each on "
        f"its own connection; server MAX_CONCURRENT={limits['max_concurrent']}, "
        f"MAX_CONNECTIONS={limits['max_connections']}; took {burst['seconds']:.1f} s "
        f"(bound {burst['max_seconds']:.0f} s), {burst['client_cpu_seconds']:.1f} s of it "
        "the clients' CPU",
        "  " + "   ".join(f"{kind} {counts[kind]:,}" for kind in OUTCOMES),
    ]
    if admitted is not None:
        lines.append(
            "  admitted (200): "
            + "   ".join(
                f"{name} {fmt_value(admitted[f'{name}_ms'], 'ms')}"
                for name in ("p50", "p99", "max")
            )
        )
    lines.append(f"  shed (503 + Retry-After): p99 {fmt_value(burst['shed_p99_ms'], 'ms')}")
    lines.append(
        f"  /health: {health['probes']} probes on new connections, "
        f"{health['sent_during_burst']} sent during the burst; {health['answered']} answered "
        f"200, max {fmt_value(health['max_ms'], 'ms')}"
    )
    return lines


def format_report(results: Mapping[str, Any]) -> str:
    """The human-readable table printed at the end."""
    machine, server, latency = results["machine"], results["server"], results["latency"]
    bounds = results["bounds"]
    lines = [
        "churn serving benchmark",
        f"machine: {machine['platform']}, {machine['cpu_count']} CPUs, Python {machine['python']}",
        f"server: churn serve (uvicorn, 1 process) on loopback, model "
        f"{server.get('model_version')}, ready after {server['ready_seconds']:.1f} s",
        "client: this process, one keep-alive httpx.Client; bodies pre-encoded, calls timed",
        f"rows: the {results['rows']:,}-row test split, batches cycling through it",
        "",
        f"single-row POST {PREDICT}: {latency['requests']:,} requests after "
        f"{latency['warmup']} warm-up",
        "  "
        + "   ".join(
            f"{name} {fmt_value(latency[f'{name}_ms'], 'ms')}"
            for name in ("mean", "p50", "p90", "p99", "max")
        ),
        "",
        f"throughput (each: at most {bounds['max_requests']} requests or "
        f"{bounds['max_seconds']:.0f} s; bare = model.predict_proba in this process)",
        *batch_lines(results),
        "",
    ]
    if "burst" in results:
        lines += [*burst_lines(results["burst"]), ""]
    lines.append("targets")
    lines += target_lines(results["targets"], fmt_value)
    return "\n".join(lines)


# --------------------------------------------------------------------------- entry point


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_serve",
        description="Time the HTTP service against in-process predict_proba.",
    )
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="latency sample")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="unmeasured requests")
    parser.add_argument(
        "--max-requests", type=int, default=DEFAULT_MAX_REQUESTS, help="per batch size"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, help="per batch size"
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=READY_TIMEOUT, help="seconds to wait for /ready"
    )
    parser.add_argument(
        "--burst", type=int, default=DEFAULT_BURST, help="concurrent clients at the end (0: none)"
    )
    parser.add_argument(
        "--burst-seconds", type=float, default=DEFAULT_BURST_SECONDS, help="the burst's bound"
    )
    parser.add_argument("--json", type=Path, help="also write the results here (sorted keys)")
    args = parser.parse_args(argv)
    if min(args.requests, args.max_requests) < 1 or min(args.warmup, args.burst) < 0:
        parser.error("--requests and --max-requests must be >= 1, --warmup and --burst >= 0")
    if min(args.max_seconds, args.ready_timeout, args.burst_seconds) <= 0:
        parser.error("--max-seconds, --burst-seconds and --ready-timeout must be > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore"):  # one line per request, inside the timed calls
        logging.getLogger(noisy).setLevel(logging.WARNING)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="churn-bench-serve-") as scratch:
        try:
            results = run_benchmark(args, Path(scratch))
        except ChurnError as err:
            print(f"error: {err}", file=sys.stderr)  # noqa: T201 (the one-line message is the interface)
            return 1
    results["bench_seconds"] = time.perf_counter() - start
    print(f"{format_report(results)}\n\nbenchmark took {results['bench_seconds']:.0f} s")  # noqa: T201 (the table is the output)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
