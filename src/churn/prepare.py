"""Stage ``prepare``: type and clean the raw table, then split it train/test.

Blank numbers become missing values, categorical columns become strings, the
target becomes 0/1 (1 = the positive label) and the id column becomes the
index, so it is carried along for the per-row predictions without ever being
a feature. Outputs are Parquet so the dtypes survive.
"""

import logging
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from churn import cli, io
from churn.contract import Schema, resolve_schema, write_schema
from churn.errors import ChurnError
from churn.params import PrepareParams, load_params

log = logging.getLogger("churn.prepare")


def read_raw(path: str | Path) -> pd.DataFrame:
    """Read the raw CSV; whitespace-only cells count as missing."""
    p = io.require_file(path)
    try:
        frame = pd.read_csv(p, na_values=[" "], keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise ChurnError(f"{p}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ChurnError(f"{p}: cannot parse as CSV ({' '.join(str(err).split())})") from None
    if frame.empty:
        raise ChurnError(f"{p}: no data rows")
    return frame


def encode_target(values: pd.Series, positive_label: str | int, source: str) -> pd.Series:
    """Map the target to 0/1 ints; exactly two labels, the positive one among them."""
    if values.isna().any():
        raise ChurnError(
            f"{source}: column {values.name!r} has {values.isna().sum()} missing values"
        )
    labels = sorted(values.astype(str).unique())
    positive = str(positive_label)
    if len(labels) != 2 or positive not in labels:
        raise ChurnError(
            f"{source}: target {values.name!r} must have two labels including "
            f"{positive!r} (found: {', '.join(labels)})"
        )
    return (values.astype(str) == positive).astype("int64")


def clean(frame: pd.DataFrame, schema: Schema, source: str) -> pd.DataFrame:
    """Typed features and 0/1 target, indexed by the id, in schema order."""
    out = pd.DataFrame(index=_index(frame, schema, source))
    for col in schema.numeric:
        try:
            out[col] = pd.to_numeric(frame[col]).to_numpy()
        except (ValueError, TypeError) as err:
            raise ChurnError(f"{source}: numeric column {col!r}: {err}") from None
    for col in schema.categorical:
        # One string dtype for every categorical column, whatever the CSV reader guessed.
        out[col] = frame[col].astype("string").str.strip().to_numpy()
    out[schema.target] = encode_target(
        frame[schema.target], schema.positive_label, source
    ).to_numpy()
    return out


def _index(frame: pd.DataFrame, schema: Schema, source: str) -> pd.Index:
    if schema.id not in frame.columns:
        return pd.RangeIndex(len(frame), name=schema.id)
    ids = frame[schema.id]
    duplicated = ids[ids.duplicated()]
    if ids.isna().any() or not duplicated.empty:
        raise ChurnError(
            f"{source}: id column {schema.id!r} must be unique and present "
            f"({ids.isna().sum()} missing, {len(duplicated)} duplicated)"
        )
    return pd.Index(ids.to_numpy(), name=schema.id)


def split(
    frame: pd.DataFrame, target: str, params: PrepareParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified, seeded train/test split."""
    counts = frame[target].value_counts()
    if counts.min() < 2:
        raise ChurnError(f"target {target!r}: each class needs at least 2 rows to split")
    train, test = train_test_split(
        frame, test_size=params.test_size, random_state=params.seed, stratify=frame[target]
    )
    return train, test


def main() -> None:
    """Read the raw CSV, write the train/test Parquet files and the schema."""
    params = load_params()
    raw_path = params.paths.raw
    raw = read_raw(raw_path)
    schema = resolve_schema(params.data, raw, raw_path)
    train, test = split(clean(raw, schema, raw_path), schema.target, params.prepare)
    io.write_parquet(params.paths.train, train)
    io.write_parquet(params.paths.test, test)
    write_schema(params.paths.schema_, schema)
    log.info(
        "train %d rows, test %d rows, positive rate %.3f; %d numeric + %d categorical features",
        len(train),
        len(test),
        train[schema.target].mean(),
        len(schema.numeric),
        len(schema.categorical),
    )


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
