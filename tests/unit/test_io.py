import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from churn.core import io
from churn.core.errors import ChurnError


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def interrupted_write() -> None:
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        interrupted_write()
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_write_replaces_on_success(tmp_path):
    target = tmp_path / "sub" / "out.json"
    io.write_json(target, {"b": 1, "a": [1.5, 2]})
    assert target.read_text() == '{\n  "a": [\n    1.5,\n    2\n  ],\n  "b": 1\n}\n'
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_parquet_bytes_are_stable_and_carry_no_pandas_version(tmp_path):
    frame = pd.DataFrame(
        {"x": [1.0, None], "c": pd.array(["a", None], dtype="string")},
        index=pd.Index([10, 11], name="id"),
    )
    io.write_parquet(tmp_path / "a.parquet", frame)
    io.write_parquet(tmp_path / "b.parquet", frame.copy())
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    meta = json.loads(pq.read_schema(tmp_path / "a.parquet").metadata[b"pandas"])
    assert "pandas_version" not in meta
    back = io.read_parquet(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(back, frame)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ChurnError, match=r"missing\.parquet: file not found"):
        io.read_parquet(tmp_path / "missing.parquet")


def test_broken_json_is_named(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{nope")
    with pytest.raises(ChurnError, match=r"bad\.json: not valid JSON"):
        io.read_json(path)


def test_replace_dir_swaps_contents(tmp_path):
    old, new = tmp_path / "plots", tmp_path / "new"
    old.mkdir()
    (old / "stale.json").write_text("1")
    new.mkdir()
    (new / "fresh.json").write_text("2")
    io.replace_dir(new, old)
    assert [p.name for p in old.iterdir()] == ["fresh.json"]
    assert not new.exists()


def test_csv_has_no_index_unix_lines_and_full_precision(tmp_path):
    path = tmp_path / "x.csv"
    io.write_csv(path, pd.DataFrame({"a": [0.1 + 0.2, 1.0], "b": ["x", "y"]}))
    assert path.read_bytes() == b"a,b\n0.30000000000000004,x\n1.0,y\n"


def test_pickle_round_trips(tmp_path):
    io.write_pickle(tmp_path / "m.pkl", {"w": [1, 2]})
    assert io.read_pickle(tmp_path / "m.pkl") == {"w": [1, 2]}
    with pytest.raises(ChurnError, match=r"m2.pkl: file not found"):
        io.read_pickle(tmp_path / "m2.pkl")


def test_json_refuses_nan_and_writes_nothing(tmp_path):
    path = tmp_path / "metrics.json"
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        io.write_json(path, {"roc_auc": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_file_sits_beside_the_target(tmp_path, monkeypatch):
    # os.replace is atomic only within one file system: the temp file must be in the
    # target's own directory, not in the system temp dir.
    seen = []
    real_replace = io.os.replace
    monkeypatch.setattr(io.os, "replace", lambda a, b: (seen.append(a), real_replace(a, b)))
    io.write_text(tmp_path / "sub" / "out.txt", "x")
    assert [p.parent for p in map(type(tmp_path), seen)] == [tmp_path / "sub"]
    assert (tmp_path / "sub" / "out.txt").stat().st_mode & 0o777 == 0o644
