"""Atomic, byte-stable writes and checked reads. Stages never open files by hand."""

import contextlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from ruamel.yaml import YAML, YAMLError

from churn.core.errors import ChurnError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    A crash or an exception leaves the previous file untouched and no temp file behind.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would make outputs private to one user
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text with Unix line endings, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON with sorted keys and a trailing newline so equal data gives equal bytes."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file, naming it if it is missing or broken."""
    return parse_json(require_file(path).read_text(encoding="utf-8"), str(path))


def parse_json(text: str, origin: str) -> Any:
    """Parse JSON text; a broken one is one line naming ``origin``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ChurnError(f"{origin}: not valid JSON ({err.msg}, line {err.lineno})") from None


def parse_yaml(text: str | None, origin: str = "YAML") -> Any:
    """YAML 1.2, as DVC reads and rewrites its files; empty or missing text gives ``{}``.

    (`dvc exp run -S` drops quotes: a YAML 1.1 reader would see a bare Yes as a boolean.)
    """
    if not text:
        return {}
    try:
        return YAML(typ="safe", pure=True).load(text) or {}
    except YAMLError as err:
        raise ChurnError(f"{origin}: not valid YAML ({' '.join(str(err).split())})") from None


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    """Write CSV without the index; floats keep full round-trip precision."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def write_parquet(path: str | Path, frame: pd.DataFrame) -> None:
    """Write Parquet whose bytes depend only on the data and the pinned libraries.

    pandas stores its own version in the schema metadata; it is dropped so that
    identical frames give identical files. Column dtypes and the index survive.
    """
    table = pa.Table.from_pandas(frame, preserve_index=True)
    meta = dict(table.schema.metadata or {})
    pandas_meta = json.loads(meta[b"pandas"])
    pandas_meta.pop("pandas_version", None)
    meta[b"pandas"] = json.dumps(pandas_meta, sort_keys=True).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a Parquet file written by :func:`write_parquet` (optionally some columns)."""
    return pd.read_parquet(require_file(path), columns=columns)


def write_pickle(path: str | Path, obj: Any) -> None:
    """Pickle an object (sklearn's own persistence format), atomically."""
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        pickle.dump(obj, fh, protocol=5)


def read_pickle(path: str | Path) -> Any:
    """Unpickle an artifact this pipeline wrote. Only load files you trust."""
    with require_file(path).open("rb") as fh:
        return pickle.load(fh)


def require_file(path: str | Path) -> Path:
    """Return ``path`` as a Path, or fail with a message naming it."""
    p = Path(path)
    if not p.is_file():
        raise ChurnError(f"{p}: file not found (run the stage that makes it, or `dvc pull`)")
    return p


def replace_dir(src: str | Path, dst: str | Path) -> None:
    """Move directory ``src`` to ``dst``, replacing what was there only once ``src`` is complete."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    old = dst.with_name(f".{dst.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dst.exists():
        os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)
