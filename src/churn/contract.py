"""Column roles of the raw table: target, id, categorical and numeric features.

The roles come from ``params.yaml`` (``data`` section) plus inference from the
raw file's dtypes. prepare resolves them once and writes them to the schema
file; every later stage (and anything serving the model) reads that file
instead of re-declaring a column list.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from churn import io
from churn.errors import ChurnError
from churn.params import DataParams

ROW_ID = "row_id"  # index name used when the data has no id column of its own


@dataclass(frozen=True)
class Schema:
    """Resolved column roles; feature order is the raw file's column order."""

    target: str
    positive_label: str | int
    id: str
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]

    @property
    def features(self) -> list[str]:
        """All model inputs, numeric first, in a stable order."""
        return [*self.numeric, *self.categorical]

    def to_dict(self) -> dict:
        """A JSON-ready form."""
        out = asdict(self)
        out["categorical"] = list(self.categorical)
        out["numeric"] = list(self.numeric)
        return out


def resolve_schema(data: DataParams, frame: pd.DataFrame, source: str) -> Schema:
    """Decide every column's role, naming ``source`` and the column on any conflict."""
    columns = list(frame.columns)
    required = [data.target] + ([data.id] if data.id else [])
    declared = [c for c in (data.categorical, data.numeric) if c != "infer"]
    for col in required + [c for group in declared for c in group]:
        if col not in columns:
            raise ChurnError(f"{source}: column {col!r} not found (columns: {', '.join(columns)})")
    reserved = set(required)
    candidates = [c for c in columns if c not in reserved]
    categorical, numeric = _assign_roles(data, frame, candidates)
    overlap = sorted(set(categorical) & set(numeric))
    if overlap:
        raise ChurnError(f"params.yaml: data: column(s) {overlap} are both categorical and numeric")
    if not categorical and not numeric:
        raise ChurnError(f"{source}: no feature columns besides the target and id")
    return Schema(
        target=data.target,
        positive_label=data.positive_label,
        id=data.id or ROW_ID,
        categorical=tuple(categorical),
        numeric=tuple(numeric),
    )


def _assign_roles(
    data: DataParams, frame: pd.DataFrame, candidates: list[str]
) -> tuple[list[str], list[str]]:
    def is_numeric(col: str) -> bool:
        return pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(
            frame[col]
        )

    if data.categorical != "infer" and data.numeric != "infer":
        return list(data.categorical), list(data.numeric)
    if data.categorical != "infer":
        chosen = set(data.categorical)
        return list(data.categorical), [c for c in candidates if c not in chosen]
    if data.numeric != "infer":
        chosen = set(data.numeric)
        return [c for c in candidates if c not in chosen], list(data.numeric)
    return [c for c in candidates if not is_numeric(c)], [c for c in candidates if is_numeric(c)]


def write_schema(path: str | Path, schema: Schema) -> None:
    """Save the resolved schema for the later stages."""
    io.write_json(path, schema.to_dict())


def read_schema(path: str | Path) -> Schema:
    """Load the schema prepare wrote."""
    raw = io.read_json(path)
    try:
        return Schema(
            target=raw["target"],
            positive_label=raw["positive_label"],
            id=raw["id"],
            categorical=tuple(raw["categorical"]),
            numeric=tuple(raw["numeric"]),
        )
    except (KeyError, TypeError) as err:
        raise ChurnError(f"{path}: not a schema written by prepare ({err})") from None
