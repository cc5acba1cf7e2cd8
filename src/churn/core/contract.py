"""The data contract: the one description of the raw table.

``params.yaml`` (section ``data``) declares the target, its labels, the id and,
per feature, its type, nullability, range and allowed categories; ``infer``
derives the features from the file's dtypes instead. This module turns that
into a :class:`Contract`, validates raw frames against it with pandera, and
renders it as the README's data table. prepare writes the resolved contract
to ``paths.contract``; every later stage, and anything serving the model, reads
that file rather than re-declaring a column list.
"""

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from churn.core import io
from churn.core.errors import ChurnError
from churn.core.params import DataParams, FeatureRule

log = logging.getLogger("churn.contract")

ROW_ID = "row_id"  # index name used when the data has no id column of its own
EXAMPLES = 5  # offending rows shown per failed check


@dataclass(frozen=True)
class Column:
    """One feature's resolved rules."""

    type: str
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Contract:
    """Resolved contract; feature order is numeric then categorical, each in declared order."""

    target: str
    positive_label: str | int
    labels: tuple[str, ...] | None
    id: str
    id_in_data: bool
    columns: dict[str, Column] = field(default_factory=dict)

    @property
    def numeric(self) -> tuple[str, ...]:
        """Numeric feature names."""
        return tuple(name for name, col in self.columns.items() if col.type == "numeric")

    @property
    def categorical(self) -> tuple[str, ...]:
        """Categorical feature names."""
        return tuple(name for name, col in self.columns.items() if col.type == "categorical")

    @property
    def features(self) -> list[str]:
        """All model inputs, numeric first, in a stable order."""
        return [*self.numeric, *self.categorical]

    @property
    def required(self) -> list[str]:
        """Every column the raw file must have."""
        return [*([self.id] if self.id_in_data else []), self.target, *self.columns]

    def to_dict(self) -> dict:
        """A JSON-ready form (lists, not tuples)."""
        out = asdict(self)
        out["labels"] = list(self.labels) if self.labels else None
        # A list, not a mapping: the JSON writer sorts keys, and column order matters.
        out["columns"] = [
            {"name": name, **col, "categories": list(col["categories"] or []) or None}
            for name, col in out["columns"].items()
        ]
        return out

    @classmethod
    def from_dict(cls, raw: dict) -> "Contract":
        """Inverse of :meth:`to_dict`."""
        columns = {
            col["name"]: Column(
                type=col["type"],
                nullable=col["nullable"],
                min=col["min"],
                max=col["max"],
                categories=_tuple(col["categories"]),
            )
            for col in raw["columns"]
        }
        return cls(
            target=raw["target"],
            positive_label=raw["positive_label"],
            labels=_tuple(raw["labels"]),
            id=raw["id"],
            id_in_data=raw["id_in_data"],
            columns=columns,
        )


def _tuple(values: list | None) -> tuple | None:
    return tuple(values) if values else None


def _column(rule: FeatureRule) -> Column:
    return Column(
        type=rule.type,
        nullable=rule.nullable,
        min=rule.min,
        max=rule.max,
        categories=_tuple(rule.categories),
    )


def resolve_contract(data: DataParams, frame: pd.DataFrame, source: str) -> Contract:
    """The contract for ``frame``: declared in params, or its features inferred from dtypes.

    Raises on a missing target/id or declared column, and, when the features are
    declared, on columns the contract does not know.
    """
    present = list(frame.columns)
    base = Contract(
        target=data.target,
        positive_label=data.positive_label,
        labels=_tuple([str(label) for label in data.labels] if data.labels else None),
        id=data.id or ROW_ID,
        id_in_data=data.id is not None,
    )
    if data.features == "infer":
        reserved = {data.target, data.id}
        columns = {c: _infer(frame[c]) for c in present if c not in reserved}
    else:
        columns = {name: _column(rule) for name, rule in data.features.items()}
    contract = Contract(**{**asdict(base), "columns": columns})
    _check_columns(contract, present, source, strict=data.features != "infer")
    return contract


def _infer(values: pd.Series) -> Column:
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    return Column(type="numeric" if numeric else "categorical", nullable=True)


def _check_columns(contract: Contract, present: list[str], source: str, strict: bool) -> None:
    missing = [c for c in contract.required if c not in present]
    if missing:
        raise ChurnError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))} "
            f"(found: {', '.join(present)})"
        )
    if not contract.columns:
        raise ChurnError(f"{source}: no feature columns besides the target and id")
    extra = [c for c in present if c not in contract.required]
    if strict and extra:
        raise ChurnError(
            f"{source}: unexpected column(s) {', '.join(map(repr, extra))}: "
            "add them to data.features in params.yaml or remove them from the file"
        )


# --------------------------------------------------------------------------- validation
# pandera is imported inside the functions that need it: only prepare validates,
# and the other stages (and a model server) should not pay for its import.


def _numbers(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values
    return pd.to_numeric(values, errors="coerce")


def _numeric_checks(col: Column) -> list:
    import pandera.pandas as pa

    checks = [
        pa.Check(lambda s: _numbers(s).notna() | s.isna(), name="is a number", ignore_na=False)
    ]
    if col.min is not None:
        low = col.min
        checks.append(pa.Check(lambda s: ~(_numbers(s) < low), name=f">= {low:g}"))
    if col.max is not None:
        high = col.max
        checks.append(pa.Check(lambda s: ~(_numbers(s) > high), name=f"<= {high:g}"))
    return checks


def _error_schema(contract: Contract, features_only: bool = False):
    import pandera.pandas as pa

    columns = {}
    if not features_only:
        columns[contract.target] = pa.Column(
            nullable=False,
            checks=[_label_check(contract)] if contract.labels else [],
        )
    if contract.id_in_data and not features_only:
        columns[contract.id] = pa.Column(nullable=False, unique=True)
    for name, col in contract.columns.items():
        checks = _numeric_checks(col) if col.type == "numeric" else []
        columns[name] = pa.Column(nullable=col.nullable, checks=checks)
    return pa.DataFrameSchema(columns, strict=False)


def _label_check(contract: Contract):
    import pandera.pandas as pa

    labels = list(contract.labels or ())
    return pa.Check(lambda s: s.astype(str).isin(labels), name=f"one of {labels}")


def _warning_schema(contract: Contract):
    import pandera.pandas as pa

    columns = {
        name: pa.Column(
            checks=pa.Check(
                lambda s, allowed=list(col.categories): s.isin(allowed),
                name=f"one of the {len(col.categories)} known categories",
            ),
            nullable=True,
        )
        for name, col in contract.columns.items()
        if col.type == "categorical" and col.categories
    }
    return pa.DataFrameSchema(columns) if columns else None


def _failures(schema, frame: pd.DataFrame) -> list[str]:
    """Validate lazily; one line per failed (column, check): count, rows and values."""
    from pandera.errors import SchemaErrors

    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as err:
        return describe_failures(err.failure_cases)
    return []


def describe_failures(cases: pd.DataFrame) -> list[str]:
    """Group pandera's failure cases by column and check, keeping first-seen order."""
    lines = []
    grouped = cases.groupby(["column", "check"], sort=False, dropna=False)
    for (column, check), group in grouped:
        rows = group["index"].dropna()
        count = len(rows) if len(rows) else len(group)
        shown = group.head(EXAMPLES)
        examples = ", ".join(
            f"row {int(i) + 1}: {v!r}" if pd.notna(i) else repr(v)
            for i, v in zip(shown["index"], shown["failure_case"], strict=True)
        )
        rule = "not null" if check == "not_nullable" else _rule_name(str(check))
        lines.append(f"{column}: {rule}: {count} bad row(s) ({examples})")
    return lines


def _rule_name(check: str) -> str:
    return {"field_uniqueness": "unique"}.get(check, check)


def validate(frame: pd.DataFrame, contract: Contract, source: str) -> list[str]:
    """Check ``frame`` against the contract before anything is transformed.

    Errors (wrong types, out-of-range or missing values, duplicate ids, unknown
    target labels, a single-class target) raise one :class:`ChurnError` whose
    first line names the file and whose next lines name each failed check.
    Unknown categories only warn (the featurizer ignores them): each is logged
    and returned.
    """
    problems = _failures(_error_schema(contract), frame)
    target = frame[contract.target].dropna().astype(str)
    if not problems and target.nunique() < 2:
        problems.append(
            f"{contract.target}: two classes needed to train and evaluate, found only "
            f"{sorted(target.unique())}"
        )
    if problems:
        raise ChurnError(
            f"{source}: {len(problems)} data contract check(s) failed\n  " + "\n  ".join(problems)
        )
    warnings = []
    schema = _warning_schema(contract)
    if schema is not None:
        warnings = _failures(schema, frame)
    for line in warnings:
        log.warning("%s: %s", source, line)
    return warnings


def validate_features(frame: pd.DataFrame, contract: Contract, source: str) -> None:
    """Check a batch to score or monitor: the features only (no target, no id needed).

    Extra columns are allowed (a batch may carry the id or the label); unknown
    categories are not errors here either (monitoring counts them).
    """
    missing = [c for c in contract.features if c not in frame.columns]
    if missing:
        raise ChurnError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))} "
            f"(found: {', '.join(map(str, frame.columns))})"
        )
    problems = _failures(_error_schema(contract, features_only=True), frame)
    if problems:
        raise ChurnError(
            f"{source}: {len(problems)} data contract check(s) failed\n  " + "\n  ".join(problems)
        )


# --------------------------------------------------------------------------- persistence, docs


def write_contract(path: str | Path, contract: Contract) -> None:
    """Save the resolved contract for the later stages."""
    io.write_json(path, contract.to_dict())


def read_contract(path: str | Path) -> Contract:
    """Load the contract prepare wrote."""
    raw = io.read_json(path)
    try:
        return Contract.from_dict(raw)
    except (KeyError, TypeError) as err:
        raise ChurnError(f"{path}: not a contract written by prepare ({err})") from None


def markdown_table(data: DataParams) -> str:
    """The README's data table, generated from the declared contract."""
    if data.features == "infer":
        return "_features are inferred from the file's dtypes_"
    lines = [
        "| column | role | type | nullable | allowed values |",
        "|---|---|---|---|---|",
    ]
    if data.id:
        lines.append(f"| `{data.id}` | id | any | no | unique |")
    labels = ", ".join(f"`{label}`" for label in data.labels or [data.positive_label])
    lines.append(
        f"| `{data.target}` | target | label | no | {labels} (positive: `{data.positive_label}`) |"
    )
    for name, rule in data.features.items():
        lines.append(
            f"| `{name}` | feature | {rule.type} | {'yes' if rule.nullable else 'no'} "
            f"| {_allowed(rule)} |"
        )
    return "\n".join(lines)


def _allowed(rule: FeatureRule) -> str:
    if rule.categories:
        return ", ".join(f"`{c}`" for c in rule.categories)
    low = "-∞" if rule.min is None else f"{rule.min:g}"
    high = "∞" if rule.max is None else f"{rule.max:g}"
    return "any number" if rule.min is None and rule.max is None else f"{low} … {high}"
