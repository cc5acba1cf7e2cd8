"""`churn score`: a whole file scored by a model version, chunk by chunk, on either engine."""

import bz2
import contextlib
import dataclasses
import functools
import gzip
import json
import logging
import lzma
import os
import re
import socket
import subprocess
import sys
import warnings
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.core.bundle import load_bundle
from churn.core.errors import ChurnError
from churn.ops import score
from conftest import REPO

ID = "rownames"


def churn_score(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The command itself, in a fresh process (this checkout's code)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "churn", "score", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="module")
def customers(trained, tmp_path_factory) -> dict[str, Path]:
    """The test split with its id as a column and the label kept (scoring ignores it)."""
    frame = pd.read_parquet(trained / "data/prepared/test.parquet").reset_index()
    out = tmp_path_factory.mktemp("customers")
    frame.to_parquet(out / "customers.parquet", index=False)
    frame.to_csv(out / "customers.csv", index=False)
    return {"parquet": out / "customers.parquet", "csv": out / "customers.csv", "frame": frame}


def test_the_scores_are_the_models_on_the_whole_test_split(trained, customers, tmp_path):
    out = tmp_path / "scores.parquet"
    counts = score.run(customers["parquet"], out, root=trained)
    bundle = load_bundle(None, root=trained)
    frame = customers["frame"]
    expected = bundle.model.predict_proba(frame[bundle.contract.features])[:, 1]
    got = pd.read_parquet(out)
    assert (counts.scored, counts.rejected) == (len(frame), 0)
    assert list(got.columns) == [ID, "churn_probability", "churn"]
    assert got[ID].tolist() == frame[ID].tolist()
    np.testing.assert_allclose(got["churn_probability"], expected, rtol=0, atol=1e-12)
    assert (got["churn"] == (got["churn_probability"] >= bundle.threshold)).all()
    meta = pq.read_schema(out).metadata
    assert meta[b"churn.model_md5"] == bundle.md5.encode()
    assert meta[b"churn.model_version"] == bundle.version.encode()
    recorded = json.loads((trained / "models/decision.json").read_text())["threshold"]
    assert bundle.threshold == recorded  # what train chose, not a number in params
    assert meta[b"churn.threshold"] == repr(recorded).encode()


def test_csv_in_csv_out_has_a_sidecar_with_the_model(trained, customers, tmp_path):
    out = tmp_path / "scores.csv"
    score.run(customers["csv"], out, root=trained)
    got = pd.read_csv(out)
    parquet = tmp_path / "scores.parquet"
    score.run(customers["parquet"], parquet, root=trained)
    assert got[ID].tolist() == customers["frame"][ID].tolist()
    # The same values whichever the input's format.
    assert (
        got["churn_probability"].tolist() == pd.read_parquet(parquet)["churn_probability"].tolist()
    )
    sidecar = json.loads((tmp_path / "scores.csv.meta.json").read_text())
    assert sidecar["model_md5"] == load_bundle(None, root=trained).md5
    assert sidecar["threshold"] == repr(load_bundle(None, root=trained).threshold)


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_the_bytes_do_not_depend_on_the_chunk_size(trained, customers, tmp_path, kind):
    outputs = []
    for rows in (score.CHUNK_ROWS, 500, 1):
        if rows == 1 and kind == "parquet":
            continue  # one-row chunks: the CSV run shows it; each costs a model block
        out = tmp_path / f"scores-{rows}.{kind}"
        source = customers[kind] if rows != 1 else _head(customers["csv"], tmp_path, 5)
        score.run(source, out, chunk_rows=rows, root=trained)
        outputs.append((rows, out.read_bytes()))
    full = outputs[0][1]
    assert outputs[1][1] == full
    if kind == "csv":  # one row at a time: the first 5 rows' lines
        assert outputs[2][1] == b"".join(full.splitlines(keepends=True)[:6])


def _head(path: Path, tmp_path: Path, rows: int) -> Path:
    head = tmp_path / "head.csv"
    head.write_text("".join(path.read_text().splitlines(keepends=True)[: rows + 1]))
    return head


@pytest.fixture(scope="module")
def cluster():
    """A small Dask cluster in this process, on 127.0.0.1, no dashboard."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as running:
        yield running


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_the_dask_engine_writes_the_same_bytes(trained, customers, tmp_path, cluster, kind):
    local, remote = tmp_path / f"local.{kind}", tmp_path / f"dask.{kind}"
    score.run(customers[kind], local, root=trained)
    counts = score.run(
        customers[kind],
        remote,
        chunk_rows=400,
        engine="dask",
        scheduler=cluster.scheduler_address,
        root=trained,
    )
    assert counts.scored == len(customers["frame"])
    assert remote.read_bytes() == local.read_bytes()


def test_a_corrupt_parquet_page_is_the_inputs_on_either_engine(
    trained, customers, tmp_path, cluster
):
    """On a worker, pyarrow's OSError reached the sink, which named the output file."""
    good = Path(customers["parquet"]).read_bytes()
    bad = tmp_path / "corrupt.parquet"
    bad.write_bytes(good[:100] + b"\0" * 200 + good[300:])
    out = tmp_path / "o.csv"
    for engine, scheduler in (("local", None), ("dask", cluster.scheduler_address)):
        with pytest.raises(ChurnError) as err:
            score.run(bad, out, engine=engine, scheduler=scheduler, root=trained)
        assert str(err.value).startswith(f"{bad}: cannot read (")
        assert not out.exists()


# Each bad row of the corpus: what is wrong with it, and the reason the rejects file gives.
BAD_ROWS = {
    2: ("tenure", None, "tenure: not null"),
    4: (
        "contract",
        "Weekly",
        "contract: one of 'Month-to-month', 'One year', 'Two year' ('Weekly')",
    ),
    5: ("monthly_charges", "lots", "monthly_charges: is a number ('lots')"),
    7: ("tenure", "500", "tenure: <= 120 ('500')"),
    8: ("female", "-1", "female: >= 0 ('-1')"),
}


def test_engines_agree_on_unusual_physical_types(trained, customers, tmp_path, cluster):
    """A string-view id, and a date where a number goes.

    pyarrow's filter and CSV writer refused the view; Dask turned the date into text, so
    the rejects' reasons differed between the engines.
    """
    table = pq.read_table(customers["parquet"])
    ids = table[ID].cast(pa.string()).cast(pa.string_view())
    days = pa.array([int(v) for v in table["tenure"].to_pylist()], pa.int32()).cast(pa.date32())
    table = table.set_column(table.schema.get_field_index(ID), ID, ids)
    table = table.set_column(table.schema.get_field_index("tenure"), "tenure", days)
    source = tmp_path / "odd.parquet"
    pq.write_table(table.slice(0, 30), source)
    written = {}
    for engine in ("local", "dask"):
        for kind in ("parquet", "csv"):
            out = tmp_path / f"{engine}.{kind}"
            scheduler = cluster.scheduler_address if engine == "dask" else None
            counts = score.run(source, out, on_error="reject", engine=engine,
                               scheduler=scheduler, root=trained)  # fmt: skip
            assert (counts.scored, counts.rejected) == (0, 30)
            written[engine, kind] = (out.read_bytes(), Path(f"{out}.rejects.csv").read_bytes())
    for kind in ("parquet", "csv"):
        assert written["dask", kind] == written["local", kind]
    rejects = pd.read_csv(tmp_path / "local.csv.rejects.csv", dtype=str)
    assert rejects[ID].tolist() == [str(i) for i in table[ID].to_pylist()[:30]]
    assert rejects["reason"][0].startswith("tenure: is a number (datetime.date(")


def test_float32_numbers_are_scored_as_written_on_either_engine(
    trained, customers, tmp_path, cluster
):
    """29.85 saved as float32 was scored as 29.850000381..., not 29.85.

    The service and a CSV give the model 29.85, and churn monitor reads the file so.
    """
    table = pq.read_table(customers["parquet"])
    numeric = load_bundle(None, root=trained).contract.numeric
    for name in numeric:
        at = table.schema.get_field_index(name)
        table = table.set_column(at, name, table[name].cast(pa.float32()))
    assert (
        table["monthly_charges"].cast(pa.float64())
        != pq.read_table(customers["parquet"])["monthly_charges"]
    )  # widened, the float32s are other numbers
    source = tmp_path / "float32.parquet"
    pq.write_table(table, source)
    expected = tmp_path / "expected.csv"
    score.run(customers["parquet"], expected, root=trained)  # the float64s: the CSV's values
    for engine in ("local", "dask"):
        out = tmp_path / f"{engine}.csv"
        scheduler = cluster.scheduler_address if engine == "dask" else None
        score.run(source, out, engine=engine, scheduler=scheduler, root=trained)
        assert out.read_bytes() == expected.read_bytes(), engine


def test_float_as_written_reads_a_float32_by_its_shortest_text():
    values = pa.chunked_array([pa.array([29.85, 108.15, None, float("nan")], pa.float32())])
    assert values.cast(pa.float64()).to_pylist()[0] != 29.85
    got = score.float_as_written(values).to_pylist()
    assert got[:3] == [29.85, 108.15, None]
    assert np.isnan(got[3])
    plain = pa.chunked_array([pa.array([0.1, 2.5])])
    assert score.float_as_written(plain) is plain  # float64 as it is
    half = pa.chunked_array([pa.array(np.array([29.85, 1.5], dtype=np.float16))])
    widened = score.float_as_written(half)  # its exact value: pyarrow's text of it is that
    assert (widened.type, widened.to_pylist()) == (pa.float64(), [29.84375, 1.5])


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\xe9", "not UTF-8 (byte 0xe9 at offset 685, line 5); re-save"),  # a feature's byte
        (None, None),  # a header wider than dask's default 256 KB sample: scored
    ],
)
def test_the_dask_engine_reads_a_csv_as_the_local_one_does(
    trained, customers, tmp_path, cluster, data, says
):
    frame = customers["frame"].head(20)
    path = tmp_path / "batch.csv"
    if data is None:
        header, *rows = frame.to_csv(index=False).splitlines()
        extra = 15_000  # 300 KB of header
        lines = [header + "".join(f",extra_column_{i:05d}" for i in range(extra))]
        path.write_text("\n".join([*lines, *(row + "," * extra for row in rows)]) + "\n")
    else:
        text = frame.to_csv(index=False).encode()
        path.write_bytes(text.replace(b"Electronic check", b"Electronic ch" + data + b"ck", 1))
    out = tmp_path / "o.parquet"
    run = functools.partial(score.run, path, out, root=trained)
    if says is None:
        assert run(engine="dask", scheduler=cluster.scheduler_address).scored == 20
        dask_bytes = out.read_bytes()
        assert run().scored == 20
        assert out.read_bytes() == dask_bytes
        return
    with pytest.raises(ChurnError) as err:
        run(engine="dask", scheduler=cluster.scheduler_address)
    assert str(err.value).startswith(f"{path}: {says}")
    assert not out.exists()


def test_an_output_that_ends_in_a_slash_is_refused_and_nothing_made(trained, customers, tmp_path):
    """Its sidecar 'x.csv/.meta.json' made a directory x.csv that then blocked x.csv."""
    for name in ("x.csv/", "y.parquet/"):
        with pytest.raises(ChurnError) as err:
            score.run(customers["csv"], f"{tmp_path}/{name}", on_error="reject", root=trained)
        assert str(err.value) == f"--output {tmp_path}/{name}: a file name, not a directory"
    assert list(tmp_path.iterdir()) == []


def _corpus(customers, tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    frame = customers["frame"].head(12).astype(object)
    for row, (column, value, _) in BAD_ROWS.items():
        frame.loc[row - 1, column] = value  # row numbers count from 1
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_the_local_cluster_logs_only_its_errors_and_takes_no_fixed_port(caplog):
    """Its INFO lines and warnings (scheduler, nannies, workers) do not reach churn's log.

    Its HTTP routes take a free port on 127.0.0.1: with 8787 taken, distributed warned.
    """
    pytest.importorskip("distributed")
    caplog.set_level(logging.INFO)
    before = logging.getLogger("distributed").level
    with socket.socket() as taken:
        # A user's own cluster, say; if something else has the port, so much the better.
        with contextlib.suppress(OSError):
            taken.bind(("127.0.0.1", 8787))
            taken.listen()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with score.dask_client(None) as client:
                assert len(client.scheduler_info()["workers"]) == score.DASK_WORKERS
                assert client.submit(sum, [1, 2]).result() == 3
                sockets = client.cluster.scheduler.http_server._sockets.values()
                [(host, port)] = [sock.getsockname() for sock in sockets]
                assert host == "127.0.0.1"
                assert port != 8787
    # "Port 8787 is already in use"; only that: a slow disk's "creating scratch directories
    # is taking a surprisingly long time" is no failure of this code.
    assert [str(w.message) for w in caught if "8787" in str(w.message)] == []
    loud = [r for r in caplog.records if r.name.startswith("distributed") and r.levelno < 40]
    assert loud == []
    assert logging.getLogger("distributed").level == before


def test_reject_mode_scores_the_good_rows_and_lists_each_bad_one(trained, customers, tmp_path):
    path, frame = _corpus(customers, tmp_path)
    out = tmp_path / "scores.parquet"
    result = churn_score(
        "--input", str(path), "--output", str(out), "--on-error", "reject", cwd=trained
    )
    assert result.returncode == 3, result.stderr
    assert "7 rows scored, 5 rejected" in result.stderr
    rejects = pd.read_csv(tmp_path / "scores.parquet.rejects.csv")
    assert rejects["row"].tolist() == list(BAD_ROWS)
    assert rejects["reason"].tolist() == [reason for _, _, reason in BAD_ROWS.values()]
    assert rejects[ID].tolist() == [frame[ID][row - 1] for row in BAD_ROWS]
    scored = pd.read_parquet(out)
    # A CSV's ids are read as written, as text.
    assert scored[ID].tolist() == [str(frame[ID][i]) for i in range(12) if i + 1 not in BAD_ROWS]


def test_fail_mode_names_rows_and_checks_and_writes_nothing(trained, customers, tmp_path):
    path, _ = _corpus(customers, tmp_path)
    out = tmp_path / "scores.parquet"
    result = churn_score("--input", str(path), "--output", str(out), cwd=trained)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        f"error: {path}: 5 row(s) break the data contract (rows 2..8): row 2: tenure: not null; "
        "row 4: contract: one of"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.csv"]  # not even a temp file


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_row_without_its_id_breaks_the_contract(trained, customers, tmp_path, kind):
    """A score keyed by no id reaches no customer: an empty CSV cell, a Parquet null."""
    frame = customers["frame"].head(6).copy()
    frame[ID] = frame[ID].astype("Int64")  # a Parquet integer column with nulls
    frame.loc[[1, 4], ID] = pd.NA
    path = tmp_path / f"batch.{kind}"
    if kind == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    out = tmp_path / "scores.csv"
    failed = churn_score("--input", str(path), "--output", str(out), cwd=trained)
    assert (failed.returncode, failed.stderr) == (
        1,
        f"error: {path}: 2 row(s) break the data contract (rows 2..5): row 2: {ID}: not null; "
        f"row 5: {ID}: not null; nothing written (--on-error reject scores the others)\n",
    )
    assert not out.exists()
    rejected = churn_score(
        "--input", str(path), "--output", str(out), "--on-error", "reject", cwd=trained
    )
    assert rejected.returncode == 3, rejected.stderr
    rejects = pd.read_csv(tmp_path / "scores.csv.rejects.csv")
    assert rejects["row"].tolist() == [2, 5]
    assert rejects[ID].isna().all()
    assert rejects["reason"].tolist() == [f"{ID}: not null"] * 2
    scored = pd.read_csv(out)
    assert scored[ID].tolist() == frame[ID].dropna().astype(int).tolist()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda t: t.append_column("tenure", t["tenure"]), "column 'tenure' appears 2 times"),
        (
            lambda t: t.set_column(
                t.schema.get_field_index("contract"),
                "contract",
                pa.array([{"kind": "x"}] * len(t)),
            ),
            "column 'contract' holds struct<kind: string> values, not numbers or text",
        ),
        (
            lambda t: t.set_column(t.schema.get_field_index(ID), ID, pa.array([[1]] * len(t))),
            f"column '{ID}' holds list<element: int64> values, not numbers or text",
        ),
    ],
)
def test_a_column_twice_or_of_records_is_a_whole_file_error(
    trained, customers, tmp_path, change, says
):
    """Which of two columns a reader takes is not the user's choice; a record is no value."""
    path = tmp_path / "batch.parquet"
    pq.write_table(change(pa.Table.from_pandas(customers["frame"].head(5))), path)
    with pytest.raises(ChurnError, match=f"^{re.escape(f'{path}: {says}')}$"):
        score.run(path, tmp_path / "out.parquet", on_error="reject", root=trained)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.parquet"]


def test_a_missing_feature_column_is_a_whole_file_error(trained, customers, tmp_path):
    path = tmp_path / "batch.parquet"
    customers["frame"].drop(columns="tenure").to_parquet(path, index=False)
    with pytest.raises(ChurnError, match=r"batch.parquet: missing column\(s\) 'tenure' \(found: "):
        score.run(path, tmp_path / "out.parquet", on_error="reject", root=trained)
    assert not (tmp_path / "out.parquet").exists()
    assert not (tmp_path / "out.parquet.rejects.csv").exists()


def test_the_command_exits_0_1_and_2(trained, customers, tmp_path):
    ok = churn_score(
        "--input", str(customers["parquet"]), "--output", str(tmp_path / "s.parquet"), cwd=trained
    )
    assert ok.returncode == 0, ok.stderr
    assert f"{len(customers['frame'])} rows scored, 0 rejected" in ok.stderr
    missing = churn_score("--input", "nope.csv", "--output", "s.parquet", cwd=trained)
    assert (missing.returncode, missing.stderr) == (1, "error: nope.csv: file not found\n")
    (trained / "folder.csv").mkdir()
    try:
        folder = churn_score("--input", "folder.csv", "--output", "s.parquet", cwd=trained)
    finally:
        (trained / "folder.csv").rmdir()  # the work dir is the session's: left as found
    assert (folder.returncode, folder.stderr) == (1, "error: folder.csv: not a regular file\n")
    other = churn_score("--input", "x.json", "--output", "s.parquet", cwd=trained)
    assert other.stderr == "error: x.json: the input must be .csv or .parquet (got '.json')\n"
    assert churn_score("--input", "x.csv", cwd=trained).returncode == 2  # --output required
    bad_engine = churn_score(
        "--input", "x.csv", "--output", "y.csv", "--engine", "ray", cwd=trained
    )
    assert bad_engine.returncode == 2


def test_an_unknown_release_is_one_line(trained, customers, tmp_path):
    result = churn_score(
        "--input", str(customers["csv"]), "--output", str(tmp_path / "s.csv"),
        "--model-ref", "churn-model@v9.9.9", cwd=trained,
    )  # fmt: skip
    assert result.returncode == 1
    # This work dir has no git history: said so, not "no such revision" (a git repository's
    # unknown ref is tests/unit/test_bundle.py's).
    assert result.stderr == (
        f"error: {trained}: not inside a git repository, which churn-model@v9.9.9 names\n"
    )
    assert not (tmp_path / "s.csv").exists()


def test_the_local_engine_never_imports_dask(trained, customers, tmp_path):
    code = (
        "import sys\nfrom churn.ops import score\n"
        f"score.run({str(customers['parquet'])!r}, {str(tmp_path / 'o.parquet')!r}, "
        f"root={str(trained)!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
    assert (tmp_path / "o.parquet").is_file()


@pytest.mark.parametrize(
    ("width", "rows"),
    [(1, 65536), (40, 65536), (128, 65536), (129, 32768), (2704, 2048), (10**6, 1024)],
)
def test_a_wide_model_predicts_in_smaller_blocks(width, rows):
    """A block's feature matrix stays within BLOCK_BYTES: 2,704 one-hot features took 3 GB."""
    from sklearn.pipeline import Pipeline

    class Fitted:
        n_features_in_ = width

    assert (
        score.block_rows(Pipeline([("features", "passthrough"), ("classifier", Fitted())])) == rows
    )
    assert score.block_rows(Fitted()) == rows


def test_the_wide_block_gives_the_same_scores_as_the_default_one(trained, customers):
    bundle = load_bundle(None, root=trained)
    frame = customers["frame"].head(3000)
    positions = np.arange(len(frame))
    rows = score.model_input(frame, bundle.contract)
    default = score.Scorer(bundle.model, bundle.contract, bundle.threshold, "f")
    small = score.Scorer(bundle.model, bundle.contract, bundle.threshold, "f", 1024)
    expected = bundle.model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(small.probabilities(rows, positions), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(default.probabilities(rows, positions), expected, rtol=0, atol=1e-12)


def test_workers_that_keep_dying_are_one_line():
    """A worker past its memory limit is restarted, then the task given up: KilledWorker."""
    distributed = pytest.importorskip("distributed")

    class Died:
        def result(self):
            raise distributed.KilledWorker("task", "worker", 3)

    source = score.Source("big.csv", "csv", [], pa.string(), None)
    with pytest.raises(ChurnError, match=r"^big.csv: Dask workers died scoring a partition"):
        score._result(Died(), source)


@pytest.mark.parametrize(
    ("error", "says"),
    [
        ("comm", "in <TCP (closed) ...>: Stream is closed"),
        ("timeout", "no answer in 30 s"),
        ("io", None),
    ],
)
def test_a_lost_scheduler_is_not_blamed_on_the_input(error, says):
    """CommClosedError and TimeoutError are OSErrors: they read as "cannot read" the input."""
    distributed = pytest.importorskip("distributed")
    raised = {
        "comm": distributed.comm.CommClosedError("in <TCP (closed) ...>: Stream is closed"),
        "timeout": TimeoutError("no answer in 30 s"),
        "io": OSError(5, "Input/output error"),
    }[error]

    class Lost:
        def result(self):
            raise raised

    source = score.Source("big.csv", "csv", [], pa.string(), None)
    with pytest.raises(ChurnError) as err:
        score._result(Lost(), source)
    if says is None:
        assert str(err.value) == "big.csv: cannot read ([Errno 5] Input/output error)"
    else:
        assert str(err.value) == (
            f"big.csv: lost the Dask scheduler while scoring ({says}); is the cluster still "
            "running?"
        )


def test_rebatch_cuts_exact_chunks_from_any_batches():
    import pyarrow as pa

    batches = [pa.record_batch({"x": list(range(a, b))}) for a, b in [(0, 3), (3, 4), (4, 11)]]
    tables = list(score.rebatch(batches, 4))
    assert [t.column("x").to_pylist() for t in tables] == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9, 10],
    ]


def test_urls_are_read_and_the_output_uploaded_once_complete(
    trained, customers, tmp_path, monkeypatch
):
    # fsspec's in-memory filesystem stands for S3: the same code path as s3:// URLs. As an
    # output it is refused (nothing outlives the process), so here it counts as storage.
    import fsspec

    monkeypatch.setattr(score, "STORAGE", score.STORAGE | {"memory"})

    memory = fsspec.filesystem("memory")
    memory.pipe("/score-test/in.parquet", customers["parquet"].read_bytes())
    try:
        score.run("memory://score-test/in.parquet", "memory://score-test/out.parquet", root=trained)
        local = tmp_path / "out.parquet"
        score.run(customers["parquet"], local, root=trained)
        assert memory.cat("/score-test/out.parquet") == local.read_bytes()
    finally:
        memory.rm("/score-test", recursive=True)


def test_an_output_that_cannot_be_published_takes_its_sidecars_with_it(
    trained, customers, tmp_path
):
    """A directory where the output goes: one line, and no meta.json or rejects.csv beside it."""
    out = tmp_path / "scores.csv"
    out.mkdir()
    result = churn_score(
        "--input", str(customers["csv"]), "--output", str(out), "--on-error", "reject", cwd=trained
    )
    assert (result.returncode, result.stderr.splitlines()[-1]) == (
        1,
        f"error: {out}: Is a directory",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]
    assert list(out.iterdir()) == []


def test_quoted_line_breaks_across_read_blocks_are_read(trained, customers, tmp_path, monkeypatch):
    """A note with line breaks in every row, read in 2 KiB blocks.

    The reader must cut at rows, not at any newline (pyarrow's default: 'CSV parser
    got out of sync with chunker').
    """
    monkeypatch.setattr(score, "CSV_BLOCK_BYTES", 2048)
    frame = customers["frame"].head(300).assign(note="first line\nsecond, line\n")
    frame.to_csv(tmp_path / "batch.csv", index=False)
    counts = score.run(tmp_path / "batch.csv", tmp_path / "out.csv", root=trained)
    assert (counts.scored, counts.rejected) == (300, 0)
    assert pd.read_csv(tmp_path / "out.csv")[ID].tolist() == frame[ID].tolist()


@pytest.mark.parametrize("rows", [0, 2])
def test_a_file_without_its_final_newline_reads_as_with_it(trained, customers, tmp_path, rows):
    """A lone header line without its newline: pyarrow alone calls that an empty file."""
    text = customers["frame"].head(rows).to_csv(index=False)
    (tmp_path / "ended.csv").write_text(text)
    (tmp_path / "unended.csv").write_text(text.rstrip("\n"))
    counts = [
        score.run(tmp_path / f"{name}.csv", tmp_path / f"{name}.out.csv", root=trained)
        for name in ("ended", "unended")
    ]
    assert [(c.scored, c.rejected) for c in counts] == [(rows, 0), (rows, 0)]
    ended, unended = ((tmp_path / f"{n}.out.csv").read_bytes() for n in ("ended", "unended"))
    assert unended == ended
    assert ended.count(b"\n") == rows + 1


@pytest.mark.parametrize(
    ("data", "size", "reads"),
    [
        (b"a,b\n1,2", 3, [b"a,b", b"\n1,", b"2\n", b""]),
        (b"a,b\n1,2\n", 3, [b"a,b", b"\n1,", b"2\n", b""]),
        (b"a,b\r", 8, [b"a,b\r", b""]),
        (b"a,b", 3, [b"a,b", b"\n", b""]),
        (b"", 4, [b""]),
    ],
)
def test_last_line_ended_fills_each_read_and_adds_one_line_end(data, size, reads):
    """Arrow takes a short read for the end: each read is whole until the file ends."""

    class Trickle:  # a file that hands out one byte per read
        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self, size: int) -> bytes:
            byte, self.data = self.data[:1], self.data[1:]
            return byte

    stream = score.LastLineEnded(Trickle(data))
    assert [stream.read(size) for _ in reads] == reads


def test_a_header_longer_than_64_kib_is_read(trained, customers, tmp_path):
    """20,000 more columns make a 190 KB header: the probe read only its first 64 KiB."""
    frame = customers["frame"].head(30)
    wide = pd.DataFrame({f"extra_{i}": [0] * len(frame) for i in range(20_000)})
    pd.concat([frame, wide], axis=1).to_csv(tmp_path / "batch.csv", index=False)
    counts = score.run(tmp_path / "batch.csv", tmp_path / "out.csv", root=trained)
    assert (counts.scored, counts.rejected) == (30, 0)


def test_a_damaged_parquet_page_is_one_line_and_nothing_written(trained, customers, tmp_path):
    """The footer reads, a data page does not: pyarrow's OSError names no file."""
    path = tmp_path / "batch.parquet"
    customers["frame"].head(50).to_parquet(path, index=False)
    data = bytearray(path.read_bytes())
    data[100:164] = bytes(b ^ 0xFF for b in data[100:164])
    path.write_bytes(bytes(data))
    result = churn_score("--input", str(path), "--output", str(tmp_path / "s.parquet"), cwd=trained)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"error: {path}: cannot read (")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.parquet"]


def test_a_byte_that_is_not_utf8_is_named_by_offset_and_line(trained, customers, tmp_path, cluster):
    """The reader said "In CSV column #18: ... invalid UTF8 data", from 0, and no line."""
    lines = customers["csv"].read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b"No", b"N\xf3", 1)  # Latin-1's o-acute in a category
    path = tmp_path / "batch.csv"
    path.write_bytes(b"\n".join(lines))
    offset = len(b"\n".join(lines[:4])) + 1 + lines[4].index(b"\xf3")
    says = f"{path}: not UTF-8 (byte 0xf3 at offset {offset}, line 5); re-save the file as UTF-8"
    at = {"local": {}, "dask": {"scheduler": cluster.scheduler_address}}
    for engine in ("local", "dask"):
        with pytest.raises(ChurnError) as err:
            score.run(path, tmp_path / "out.csv", engine=engine, root=trained, **at[engine])
        assert str(err.value) == says
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.csv"]


def zipped(data: bytes) -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("batch.csv", data)
    return buffer.getvalue()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_a_csv_in_utf16_is_named_so(trained, customers, tmp_path, encoding):
    """It was read as one column of NULs: 'Row #5: Expected 21 columns, got 1'."""
    path = tmp_path / "batch.csv"
    path.write_bytes(customers["csv"].read_text().encode(encoding))
    with pytest.raises(ChurnError) as err:
        score.run(path, tmp_path / "out.csv", root=trained)
    assert str(err.value) == (
        f"{path}: not UTF-8 text (it looks like UTF-16 or UTF-32): save it as UTF-8"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.csv"]


def test_a_readers_message_is_one_line_with_control_characters_escaped(
    trained, customers, tmp_path
):
    """Control bytes in a row: pyarrow quotes them; a quoted line break, its row."""
    lines = customers["csv"].read_text().splitlines()
    (tmp_path / "binary.csv").write_text("\n".join([*lines[:3], "\x00\x01,x"]) + "\n")
    with pytest.raises(ChurnError) as err:
        score.run(tmp_path / "binary.csv", tmp_path / "out.csv", root=trained)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'binary.csv'}: cannot read as CSV (")
    assert message.isprintable()
    assert "\\x00" in message
    lines[3] = '"4\nerror: injected",' + lines[3] + ",x"
    (tmp_path / "ragged.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ChurnError) as err:
        score.run(tmp_path / "ragged.csv", tmp_path / "out.csv", root=trained)
    assert "\n" not in str(err.value)
    assert "Expected 21 columns, got 23" in str(err.value)


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (gzip.compress, "gzip-compressed data: save it as a UTF-8 CSV file"),
        (bz2.compress, "bzip2-compressed data: save it as a UTF-8 CSV file"),
        (lzma.compress, "xz-compressed data: save it as a UTF-8 CSV file"),
        (zipped, "a zip archive (an Excel .xlsx file is one): save it as a UTF-8 CSV file"),
        ("parquet", "a Parquet file: name it .parquet"),
    ],
)
def test_a_csv_that_is_compressed_an_archive_or_parquet_is_named_so(
    trained, customers, tmp_path, make, kind
):
    """The reader quoted the binary bytes in a CSV parse error."""
    path = tmp_path / "batch.csv"
    if make == "parquet":
        customers["frame"].head(5).to_parquet(path, index=False)
    else:
        path.write_bytes(make(customers["csv"].read_bytes()))
    with pytest.raises(ChurnError) as err:
        score.run(path, tmp_path / "out.csv", root=trained)
    assert str(err.value) == f"{path}: not CSV text but {kind}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.csv"]


def test_a_sidecar_that_cannot_be_written_stops_the_run_before_any_output(
    trained, customers, tmp_path
):
    """A directory where meta.json goes: nothing published, the output included."""
    out = tmp_path / "scores.csv"
    (tmp_path / "scores.csv.meta.json").mkdir()
    result = churn_score("--input", str(customers["csv"]), "--output", str(out), cwd=trained)
    assert (result.returncode, result.stderr.splitlines()[-1]) == (
        1,
        f"error: {out}.meta.json: Is a directory",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv.meta.json"]


def test_a_clean_run_removes_the_rejects_of_an_earlier_one(trained, customers, tmp_path):
    out = tmp_path / "scores.parquet"
    bad, _ = _corpus(customers, tmp_path)
    score.run(bad, out, on_error="reject", root=trained)
    assert (tmp_path / "scores.parquet.rejects.csv").exists()
    score.run(customers["parquet"], out, root=trained)
    assert not (tmp_path / "scores.parquet.rejects.csv").exists()


def test_the_input_file_is_never_the_output(trained, customers, tmp_path):
    """The rename at the end would replace the customers with their scores."""
    path = tmp_path / "batch.csv"
    path.write_bytes(customers["csv"].read_bytes())
    (tmp_path / "link.csv").symlink_to(path)
    (tmp_path / "hard.csv").hardlink_to(path)
    same = (path, tmp_path / "link.csv", tmp_path / "hard.csv", tmp_path / "." / "batch.csv")
    for output in same:
        with pytest.raises(ChurnError, match=r": is the input file; scores go elsewhere$"):
            score.run(path, output, root=trained)
    assert path.read_bytes() == customers["csv"].read_bytes()


@pytest.mark.parametrize(
    ("output", "on_error"),
    [("scores.csv", "fail"), ("scores.csv", "reject"), ("scores.parquet", "reject")],
)
def test_a_sidecar_of_the_output_is_never_the_input(trained, customers, tmp_path, output, on_error):
    """A clean run removed OUTPUT.rejects.csv, and a rejecting one wrote its header over it."""
    path = tmp_path / f"{output}.rejects.csv"
    path.write_bytes(customers["csv"].read_bytes())
    with pytest.raises(ChurnError) as err:
        score.run(path, tmp_path / output, on_error=on_error, root=trained)
    assert str(err.value) == (
        f"--output {tmp_path / output}: its sidecar {path} is the input file; scores go elsewhere"
    )
    assert path.read_bytes() == customers["csv"].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("output", ["afile/x.csv", "afile/deeper/x.parquet"])
def test_an_output_under_a_file_is_named_not_its_sidecar(trained, customers, tmp_path, output):
    """It said 'afile/x.csv.meta.json: Not a directory', the first file it tried."""
    (tmp_path / "afile").write_text("mine")
    target = tmp_path / output
    with pytest.raises(ChurnError) as err:
        score.run(customers["csv"], target, root=trained)
    assert str(err.value) == f"--output {target}: Not a directory"
    assert (tmp_path / "afile").read_text() == "mine"


def test_a_scheduler_without_the_dask_engine_is_refused(trained, customers, tmp_path):
    """The local engine scored in this process and ignored the cluster named."""
    with pytest.raises(ChurnError) as err:
        score.run(customers["csv"], tmp_path / "o.csv", scheduler="tcp://10.0.0.1:8786")
    assert str(err.value) == "--scheduler tcp://10.0.0.1:8786: only with --engine dask"
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("not a url", "missing port number"),
        ("127.0.0.1", "missing port number"),
        ("http://127.0.0.1:80", "unknown address scheme 'http'"),
        ("tcp://:8786", "no host in address ':8786'"),
        ("tcp://127.0.0.1:abc", "'abc'"),
        ("tcp://127.0.0.1:0", "port 0 is not in 1-65535"),
        ("tls://127.0.0.1:65536", "port 65536 is not in 1-65535"),
    ],
)
def test_a_scheduler_that_is_no_address_is_one_line(address, says, monkeypatch):
    """Refused before a client is built: Client() starts an IO loop first, which can time out."""
    import distributed

    def no_client(*args, **kwargs):
        raise AssertionError("a client was built for an address the check should refuse")

    monkeypatch.setattr(distributed, "Client", no_client)
    with pytest.raises(ChurnError) as err, score.dask_client(address):
        pass
    assert str(err.value).startswith(f"--scheduler {address}: not a Dask scheduler address (")
    assert str(err.value).endswith("); e.g. tcp://10.0.0.5:8786")
    assert says in str(err.value)


@pytest.mark.parametrize(
    "address",
    ["tcp://10.0.0.5:8786", "tls://scheduler.example:1", "ws://h:65535", "tcp://[::1]:8786"],
)
def test_a_scheduler_address_of_any_scheme_passes_the_check(address):
    score.check_scheduler(address)  # no error: Client() gets to connect to it


def test_a_url_whose_filesystem_cannot_load_is_one_line(monkeypatch):
    """hdfs:// without a Java runtime: OSError from deep in pyarrow, 128 lines of it."""

    def no_jvm(path):
        raise OSError("Unable to load libjvm\nand more")

    monkeypatch.setattr(score.fsspec.core, "url_to_fs", no_jvm)
    with pytest.raises(ChurnError) as err:
        score._fs("hdfs://x/y.csv")
    assert str(err.value) == "hdfs://x/y.csv: Unable to load libjvm and more"


def test_a_local_name_is_a_file_name_whatever_fsspec_would_make_of_it(trained, customers, tmp_path):
    """'a::b.csv' was fsspec's chain whose file is 'a': it was overwritten, then deleted."""
    (tmp_path / "precious").write_text("keep me")
    for name in ("precious::x.csv", "data:x.csv"):
        counts = score.run(customers["csv"], tmp_path / name, root=trained)
        assert counts.scored == len(customers["frame"])
        written = pd.read_csv(tmp_path / name)[ID].tolist()
        assert written == customers["frame"][ID].tolist()
    assert (tmp_path / "precious").read_text() == "keep me"
    with pytest.raises(ChurnError, match=r"--engine dask cannot read a CSV whose name holds '::'"):
        score.dask_frame(score.Source(str(tmp_path / "precious::x.csv"), "csv", [], None, None), 10)
    # dask globs its CSV path: 'x*.csv' read xA.csv too, and 305 rows of 300 were scored.
    for name in ("x*.csv", "x?.csv", "x[1].csv"):
        source = score.Source(str(tmp_path / name), "csv", [], None, None)
        with pytest.raises(ChurnError) as err:
            score.dask_frame(source, 10)
        assert str(err.value) == (
            f"{tmp_path / name}: --engine dask reads a CSV name holding '*', '?' or '[' as a "
            "pattern of names; rename it or use --engine local"
        )


@pytest.mark.parametrize(
    ("output", "says"),
    [
        ("zz://x.csv", "zz://x.csv: Protocol not known: zz"),
        ("http://127.0.0.1:9/x.csv", "--output http://127.0.0.1:9/x.csv: an HTTP URL can be"),
        ("loop.csv", "--output {tmp}/loop.csv: a loop of symbolic links"),
        # "300 rows scored -> memory://x.parquet", and the scores gone as the process ended.
        ("memory://x.parquet", "--output memory://x.parquet: memory:// keeps nothing past this"),
        ("data://x.csv", "--output data://x.csv: data:// keeps nothing past this run"),
        # Filesystems that need arguments no URL gives: a TypeError traceback.
        ("github://a/b.csv", "github://a/b.csv: GithubFileSystem.__init__() missing 2"),
        ("reference://x.csv", "reference://x.csv: ReferenceFileSystem.__init__() missing"),
        ("dir://x.csv", "dir://x.csv: 'NoneType' object has no attribute"),
    ],
)
def test_an_output_nothing_can_be_written_to_is_one_line(
    trained, customers, tmp_path, output, says
):
    (tmp_path / "loop.csv").symlink_to("loop2.csv")
    (tmp_path / "loop2.csv").symlink_to("loop.csv")
    target = output if "://" in output else str(tmp_path / output)
    with pytest.raises(ChurnError) as err:
        score.run(customers["csv"], target, root=trained)
    assert str(err.value).startswith(says.format(tmp=tmp_path))
    with pytest.raises(ChurnError, match=r"^--input .*loop.csv: a loop of symbolic links$"):
        score.run(tmp_path / "loop.csv", tmp_path / "out.csv", root=trained)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop.csv", "loop2.csv"]
    if "://" in output and not output.startswith("http"):  # as an input too: one line
        with pytest.raises(ChurnError) as err:
            score.run(output, tmp_path / "out.csv", root=trained)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("column", ["contract", ID])
def test_binary_text_is_read_as_text_and_bytes_that_are_not_utf8_are_one_line(
    trained, customers, tmp_path, cluster, column
):
    """Some writers store text as binary: read as text; a byte that is not UTF-8 names it."""
    table = pa.Table.from_pandas(customers["frame"].head(6).astype({ID: str}), preserve_index=False)
    where = table.schema.get_field_index(column)
    as_bytes = [v.encode() for v in table.column(where).to_pylist()]
    path = tmp_path / "batch.parquet"
    pq.write_table(table.set_column(where, column, pa.array(as_bytes, pa.binary())), path)
    at = {
        "local": {"root": trained},
        "dask": {"scheduler": cluster.scheduler_address, "root": trained},
    }
    for engine in ("local", "dask"):
        out = tmp_path / f"{engine}.csv"
        assert score.run(path, out, engine=engine, **at[engine]).scored == 6
        assert pd.read_csv(out, dtype=str)[ID].tolist() == table.column(ID).to_pylist()
    as_bytes[2] = b"\xff"
    pq.write_table(table.set_column(where, column, pa.array(as_bytes, pa.binary())), path)
    for engine in ("local", "dask"):
        with pytest.raises(ChurnError) as err:
            score.run(path, tmp_path / "bad.csv", engine=engine, **at[engine])
        assert str(err.value) == f"{path}: column {column!r} holds bytes that are not UTF-8 text"
    assert not (tmp_path / "bad.csv").exists()


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_whitespace_only_cells_are_missing_as_in_prepare(
    trained, customers, tmp_path, cluster, kind
):
    """'  ' or '' in a nullable number is missing (scored); in a category or the id, refused.

    An empty text in Parquet was a value: an id-less score, a number that did not parse.
    """
    frame = customers["frame"].head(8).astype(str)
    frame.loc[2, "total_charges"] = "  "
    frame.loc[3, "contract"] = "\t"
    frame.loc[5, "total_charges"] = ""
    frame.loc[6, "contract"] = ""
    frame.loc[7, ID] = ""
    path = tmp_path / f"batch.{kind}"
    frame.to_csv(path, index=False) if kind == "csv" else frame.to_parquet(path, index=False)
    for engine in ("local", "dask"):
        out = tmp_path / f"{engine}.csv"
        at = {"scheduler": cluster.scheduler_address} if engine == "dask" else {}
        counts = score.run(path, out, on_error="reject", engine=engine, root=trained, **at)
        assert (counts.scored, counts.rejected) == (5, 3)
        rejects = pd.read_csv(f"{out}.rejects.csv", dtype=str, keep_default_na=False)
        assert rejects.to_dict("list") == {
            "row": ["4", "7", "8"],
            ID: [frame.loc[3, ID], frame.loc[6, ID], ""],
            "reason": ["contract: not null", "contract: not null", f"{ID}: not null"],
        }
        scored = pd.read_csv(out, dtype=str)
        assert scored[ID].tolist() == frame.loc[[0, 1, 2, 4, 5], ID].tolist()


def test_ctrl_c_while_the_local_cluster_works_is_one_line(tmp_path):
    """Closing the cluster midway made distributed and asyncio log tracebacks after it."""
    pytest.importorskip("distributed")
    script = tmp_path / "interrupted.py"
    script.write_text(
        "import os, signal, sys, threading, time\n"
        "from churn.core import entry\n"
        "from churn.ops import score\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignored\n"
        "def main():\n"
        "    with score.dask_client(None) as client:\n"
        "        work = client.map(time.sleep, [3] * 4, pure=False)\n"
        "        threading.Timer(1, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
        "        client.gather(work)\n"
        "if __name__ == '__main__':\n"
        "    sys.exit(entry.run(main))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert (done.returncode, done.stderr, done.stdout) == (130, "error: interrupted\n", "")


def test_a_release_whose_id_is_named_like_an_output_column_is_refused(
    trained, customers, tmp_path, monkeypatch
):
    """Made before prepare refused such names: scored, its ids would be overwritten."""
    bundle = score.load_bundle(None, trained)
    renamed = dataclasses.replace(
        bundle, contract=dataclasses.replace(bundle.contract, id="reason")
    )
    monkeypatch.setattr(score, "load_bundle", lambda ref, root: renamed)
    out = tmp_path / "out.csv"
    with pytest.raises(ChurnError) as err:
        score.run(customers["csv"], out, root=trained)
    assert str(err.value) == (
        f"{bundle.version}'s contract: 'reason': a name churn's outputs give their own columns "
        "(churn_probability, churn, row, reason) beside the id and the features; retrain with "
        "a new name for it"
    )
    assert not out.exists()


def test_a_row_longer_than_a_block_is_said_in_our_words_and_the_process_ends_cleanly(
    trained, customers, tmp_path
):
    """The words were pyarrow's: "straddling object ... (try to increase block size?)".

    Then a thread it left aborted the process in teardown (SIGABRT, exit 134) about one
    run in three; the command now ends without the teardown.
    """
    rows = Path(customers["csv"]).read_text().splitlines()
    cells = rows[1].split(",")
    cells[0] = "9" * (score.CSV_BLOCK_BYTES * 5 // 2)  # 10 MB, as found
    path = tmp_path / "long.csv"
    path.write_text("\n".join([rows[0], ",".join(cells), *rows[2:4]]) + "\n")
    codes = set()
    for _ in range(4):  # bounded: the abort came in about one run in three
        done = churn_score("--input", str(path), "--output", "o.csv", cwd=trained)
        codes.add(done.returncode)
        assert done.stderr == (
            f"error: {path}: cannot read as CSV (a row longer than the reader's block (4 MiB "
            'for CSV, 16 MiB for JSON lines): most likely a quote (") that is never closed, '
            "or a field that long)\n"
        )
    assert codes == {1}


@pytest.mark.parametrize(
    ("kind", "ids"),
    [
        (pa.int64(), [2**53 + i for i in range(1, 9)]),
        (pa.int64(), [2**63 - i for i in range(1, 9)]),
        (pa.uint64(), [2**64 - i for i in range(1, 9)]),
    ],
)
def test_integer_ids_past_2_53_beside_a_missing_one_are_written_exactly(
    trained, customers, cluster, tmp_path, kind, ids
):
    """The chunk's ids were made float64: 2**53 + 1 became 2**53, ids near 2**63 a traceback."""
    table = pa.Table.from_pandas(customers["frame"].head(8), preserve_index=False)
    written = [*ids[:3], None, *ids[4:]]
    table = table.set_column(table.schema.get_field_index(ID), ID, pa.array(written, kind))
    path = tmp_path / "batch.parquet"
    pq.write_table(table, path, row_group_size=3)
    for engine in ("local", "dask"):
        out = tmp_path / f"{engine}.parquet"
        at = {"scheduler": cluster.scheduler_address} if engine == "dask" else {}
        counts = score.run(
            path, out, on_error="reject", engine=engine, root=trained, chunk_rows=4, **at
        )
        assert (counts.scored, counts.rejected) == (7, 1)
        assert pq.read_table(out).column(ID).to_pylist() == [*ids[:3], *ids[4:]]
        rejects = pd.read_csv(f"{out}.rejects.csv", dtype=str, keep_default_na=False)
        assert rejects[ID].tolist() == [""]


def test_a_dask_partition_reads_its_own_rows_of_a_large_row_group(tmp_path, monkeypatch):
    """Row groups were read whole: one of millions of rows paused every worker for good."""
    path = tmp_path / "one.parquet"
    pq.write_table(pa.table({"a": range(1000), "b": [str(i) for i in range(1000)]}), path)
    monkeypatch.setattr(score, "PARQUET_BATCH_ROWS", 64)

    def whole(*args, **kwargs):
        raise AssertionError("a row group read whole")

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", whole)
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", whole)
    for start, stop in ((0, 1000), (0, 7), (63, 64), (64, 200), (999, 1000), (500, 1000)):
        part = score.parquet_slice(str(path), ["a", "b"], start, stop)
        assert part["a"].tolist() == list(range(start, stop))
        assert part.index.tolist() == list(range(start, stop))
    assert score.parquet_slice(str(path), ["a"], 0, 0).empty


@pytest.mark.parametrize("kind", ["uuid", "fixed"])
@pytest.mark.parametrize("output", ["out.csv", "out.parquet"])
def test_an_id_of_raw_bytes_is_refused_before_anything_is_written(
    trained, customers, tmp_path, kind, output
):
    """A UUID id column was an ArrowInvalid traceback as the CSV output or rejects opened."""
    import uuid

    table = pa.Table.from_pandas(customers["frame"].head(6), preserve_index=False)
    where = table.schema.get_field_index(ID)
    raw = pa.array([uuid.UUID(int=i).bytes for i in range(6)], pa.binary(16))
    ids = pa.ExtensionArray.from_storage(pa.uuid(), raw) if kind == "uuid" else raw
    path = tmp_path / "batch.parquet"
    pq.write_table(table.set_column(where, ID, ids), path)
    with pytest.raises(ChurnError) as err:
        score.run(path, tmp_path / output, root=trained)
    shown = "extension<arrow.uuid>" if kind == "uuid" else "fixed_size_binary[16]"
    assert str(err.value) == (
        f"{path}: column {ID!r} holds {shown} values (raw bytes, not text or numbers); store "
        "it as text (a UUID in its 36-character form)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.parquet"]


def test_the_output_never_replaces_what_the_repository_keeps(tmp_path, monkeypatch):
    """`--output data/raw/wa_churn.csv` replaced the raw data with scores, exit 0."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text("id,x\n1,2\n")
    (tmp_path / "data/raw").mkdir(parents=True)
    (tmp_path / "data/raw/wa_churn.csv").write_text("raw")
    (tmp_path / "dvc.lock").write_text(
        "stages:\n  fetch:\n    outs:\n    - path: data/raw/wa_churn.csv\n"
        "  evaluate:\n    outs:\n    - path: reports/predictions.csv\n"
    )
    for output, said in [
        ("data/raw/wa_churn.csv", "a DVC output (data/raw/wa_churn.csv)"),
        ("./data/raw/../raw/wa_churn.csv", "a DVC output (data/raw/wa_churn.csv)"),
        ("reports/predictions.csv", "a DVC output (reports/predictions.csv)"),
        (".git/scores.csv", "inside git's or DVC's own folder"),
    ]:
        with pytest.raises(ChurnError) as err:
            score._not_the_input("in.csv", output)
        assert str(err.value) == f"--output {output}: {said}; write elsewhere"
    (tmp_path / "data/raw/wa_churn.csv.meta.json").mkdir()  # any name the lock keeps
    (tmp_path / "dvc.lock").write_text(
        "stages:\n  s:\n    outs:\n    - path: data/raw/wa_churn.csv.meta.json\n"
    )
    with pytest.raises(ChurnError) as err:
        score._not_the_input("in.csv", "data/raw/wa_churn.csv")
    assert str(err.value) == (
        "--output data/raw/wa_churn.csv.meta.json: a DVC output "
        "(data/raw/wa_churn.csv.meta.json); write elsewhere"
    )
    score._not_the_input("in.csv", "scores.csv")
    assert (tmp_path / "data/raw/wa_churn.csv").read_text() == "raw"


def test_an_interrupt_as_the_engine_closes_leaves_the_old_output(
    trained, customers, tmp_path, monkeypatch
):
    """The output is published after the engine closes, not before.

    A local Dask cluster takes seconds to close: a Ctrl-C then exited 130 (interrupted)
    though the output was already replaced.
    """
    out = tmp_path / "scores.csv"
    out.write_text("old\n")
    real = score._progress

    @contextlib.contextmanager
    def interrupted_as_it_closes(*args):
        with real(*args) as bar:
            yield bar
        raise KeyboardInterrupt  # as the engine's stack closes, every row scored

    monkeypatch.setattr(score, "_progress", interrupted_as_it_closes)
    with pytest.raises(KeyboardInterrupt):
        score.run(customers["csv"], out, root=trained)
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]  # no temp file left
