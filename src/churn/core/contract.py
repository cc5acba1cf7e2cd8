"""The data contract: the one description of the raw table.

``params.yaml`` (section ``data``) declares the target, its labels, the id and,
per feature, its type, nullability, range and allowed categories; ``infer``
derives them instead: the types from the file's dtypes, then the rules from the
file's values (see :func:`observe`). This module turns that into a
:class:`Contract`, validates raw frames against it with pandera, and renders it
as the README's data table or as the YAML that freezes an inferred contract.
prepare writes the resolved contract to ``paths.contract``; every later stage,
the service and monitoring read that file rather than re-declaring a column list.

One rule for a category outside the contract's set, everywhere: it is an error.
prepare stops, the service answers 422, and monitoring counts the rows (the
service would refuse them) and scores only the others. A number outside the
range seen in training is not refused; monitoring counts it.
"""

import json
import logging
import unicodedata
import warnings
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from churn.core import io
from churn.core.errors import ChurnError, clip
from churn.core.markdown import code
from churn.core.params import DataParams, FeatureRule

log = logging.getLogger("churn.contract")

ROW_ID = "row_id"  # index name used when the data has no id column of its own
# The columns churn's outputs add beside a customer's id or features: churn score's
# probability and decision (and a reject's row and reason), the service's prediction log.
SCORE, DECISION, ROW, REASON = "churn_probability", "churn", "row", "reason"
OUTPUT_NAMES = (SCORE, DECISION, ROW, REASON)
EXAMPLES = 5  # offending rows shown per failed check
# A number written as text, as the pipeline reads one (pandas' to_numeric): ASCII digits,
# one sign, one point, an exponent, ASCII blanks around. Python's float() would also take
# "1_0" and other scripts' digits and spaces, pyarrow's cast "0x1F": the pipeline refuses
# them all. Spelled out, not \d and \s: Python's re reads those as any script's digits and
# spaces (prepare took "٣٤" for 34 where score and the service refused it), RE2 (pyarrow)
# as ASCII, and its \s lacks \v.
ASCII_BLANKS = " \t\n\r\f\v"
_BLANK = r"[ \t\n\r\f\v]*"
NUMBER_TEXT = rf"{_BLANK}[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?{_BLANK}"
# A number written for people, as the pipeline does not read one: digits in groups of
# three with one separator throughout (1,234,567 1.234.567 1'234 and the no-break spaces;
# not a plain space, which phone numbers and postcodes have) or Indian groups (12,34,567),
# a decimal mark other than the separator, a sign or a minus sign, a currency sign, a
# percent, accountants' parentheses. ASCII digits only, as NUMBER_TEXT reads them. The
# value is stripped first and at most FORMATTED_MAX_CHARS long, and the pattern has no two
# repeats in a row: a cell cannot make the match slow.
CURRENCY = "$€£¥₹₩₽₺₪₫¢"
_SIGN = "[+\\-\u2212]"
_GROUPED = (
    r"[0-9]{1,3}(?P<sep>[,.'\u00a0\u202f])[0-9]{3}(?:(?P=sep)[0-9]{3})*"
    r"(?:(?!(?P=sep))[.,][0-9]+)?"
)
_INDIAN = r"[0-9]{1,2}(?:,[0-9]{2})*,[0-9]{3}(?:\.[0-9]+)?"
_SPACE = "[ \u00a0\u202f]"  # between a sign and the digits; no tab or newline to echo
_AMOUNT = (
    rf"(?:{_SIGN}?(?:R\$|[{CURRENCY}]){_SPACE}?{_SIGN}?|{_SIGN})?"
    rf"(?:{_GROUPED}|{_INDIAN}|[0-9]+(?:[.,][0-9]+)?){_SPACE}?[%{CURRENCY}]?"
)
FORMATTED_NUMBER = rf"(?P<open>\()?{_AMOUNT}(?(open)\))"
# What alone is no sign of a number written for people: a plain number, a decimal comma
# not followed by three digits ("1,2" may be options 1 and 2; "1,234" is a number either
# way), either in parentheses ("(212)" may be an area code). Beside a value with a group,
# a currency sign or a percent, they are numbers all the same.
UNWRITTEN = rf"\(?(?:{NUMBER_TEXT}|[+-]?[0-9]+,(?:[0-9]{{1,2}}|[0-9]{{4,}}))\)?"
# Accountants' zero: a dash in a column of amounts says nothing about the others.
DASHES = frozenset({"-", "\u2013", "\u2014"})
FORMATTED_MAX_CHARS = 40  # longer text is no number a person wrote
FORMATTED_FIRST = 1_000  # rows tried first: a column of ids fails on them, fast
# A text column with at least this share of distinct values (over at least KEY_MIN_ROWS
# rows) is a key or free text, not a category: one-hot encoding it would learn row names.
KEY_DISTINCT_SHARE = 0.95
# A text column whose distinct values are numbers but for at most STRAY_SHARE of them
# (and at least STRAY_MIN_NUMBERS numbers: 1, 2, 3, X is a code) is numbers with a few
# stray cells; the reader made it text, and inferred, each number became a category.
STRAY_SHARE = 0.05
STRAY_MIN_NUMBERS = 20
KEY_MIN_ROWS = 20
# A column name longer than this is no name (YAML, where a frozen contract puts it, ends
# a plain key at 1,024 characters).
NAME_MAX_CHARS = 256
DATE_MAX_CHARS = 35  # longer text is no date (ISO with nanoseconds and an offset is 35)


@dataclass(frozen=True)
class Column:
    """One feature's resolved rules."""

    type: str
    nullable: bool = True
    min: float | None = None  # declared bounds: refused outside
    max: float | None = None
    categories: tuple[str, ...] | None = None
    observed_min: float | None = None  # the training split's range: counted outside
    observed_max: float | None = None


@dataclass(frozen=True)
class Contract:
    """Resolved contract; feature order is numeric then categorical, each in declared order."""

    target: str
    positive_label: str | int
    labels: tuple[str, ...] | None
    id: str
    id_in_data: bool
    columns: dict[str, Column] = field(default_factory=dict)
    inferred: bool = False  # the features came from ``features: infer``

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
                # Contracts of earlier releases have no observed range.
                observed_min=col.get("observed_min"),
                observed_max=col.get("observed_max"),
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
            inferred=bool(raw.get("inferred", False)),
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
    """The contract for ``frame``: declared in params, or its feature types inferred from dtypes.

    An inferred contract has types only (every column nullable, no categories):
    :func:`observe` adds the rules once the file is typed and split.

    Raises on a missing target/id or declared column, when the features are
    declared on columns the contract does not know, and when inferred on a
    column that looks like a row id or key.
    """
    present = list(frame.columns)
    inferred = data.features == "infer"
    if inferred:
        reserved = {data.target, data.id}
        columns = {c: _infer(frame[c]) for c in present if c not in reserved}
    else:
        columns = {name: _column(rule) for name, rule in data.features.items()}
    contract = Contract(
        target=data.target,
        positive_label=data.positive_label,
        labels=_tuple([str(label) for label in data.labels] if data.labels else None),
        id=data.id or ROW_ID,
        id_in_data=data.id is not None,
        columns=columns,
        inferred=inferred,
    )
    _check_columns(contract.required, contract.columns, present, source)
    # Without an id column the id is ROW_ID, which is no output name: checked all the same.
    check_output_names([contract.id, *contract.columns], source)
    check_row_id_free(data.id, contract.columns, source)
    if inferred:
        # Numbers first: an amount column of text has a value per row, and is no key.
        _refuse_flagged(frame, contract, source, formatted_number_like, (A_NUMBER, WRITTEN_FIX))
        _refuse_flagged(frame, contract, source, stray_text_like, (A_NUMBER, STRAY_FIX))
        _refuse_keys(frame, contract, source)
        _refuse_flagged(frame, contract, source, date_like, (A_DATE, DATE_FIX))
    return contract


def _is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _infer(values: pd.Series) -> Column:
    return Column(type="numeric" if _is_number(values) else "categorical", nullable=True)


def key_like(values: pd.Series) -> str | None:
    """Why ``values`` looks like a row number or key rather than a feature, or None.

    A row number: every row present, integers, all different and consecutive (0..n-1,
    1..n, or any other run, in any order). A key: text with (nearly) one value per
    row, which one-hot encoding would turn into a column per customer.
    """
    n = len(values)
    present = values.dropna()
    if _is_number(values):
        if len(present) < n or n < 2 or (present != present.round()).any():
            return None
        low, high = present.min(), present.max()
        if present.nunique() == n and high - low == n - 1:
            return f"row numbers {int(low)}..{int(high)}"  # exact: :.0f rounded past 2**53
        return None
    distinct = present.astype(str).nunique()
    if distinct == n or (n >= KEY_MIN_ROWS and distinct >= KEY_DISTINCT_SHARE * n):
        return f"{distinct:,} distinct values in {n:,} rows"
    return None


def date_like(values: pd.Series) -> str | None:
    """Why ``values`` look like dates rather than a category, or None.

    Text whose every value is a date (a day or a month of a year) in the format of the
    first one. As a category, each date would be a one-hot column of its own, and the
    service would refuse every date after the training file's.
    """
    if _is_number(values):
        return None
    present = values.notna().to_numpy()
    if not present.any():
        return None
    first = str(values.iloc[int(present.argmax())]).strip()  # no copy of a column of text
    if len(first) > DATE_MAX_CHARS:
        return None
    with warnings.catch_warnings():  # a day-first guess warns; the format is what counts
        warnings.simplefilter("ignore")
        layout = guess_datetime_format(first)
    if layout is None or not _has_year_and_month(layout):
        return None
    distinct = pd.Series(values[present].astype(str).unique()).str.strip()
    if pd.to_datetime(distinct, format=layout, errors="coerce").isna().any():
        return None
    return f"dates like {first}"


def formatted_number_like(values: pd.Series) -> str | None:
    """Why ``values`` look like numbers written for people rather than a category, or None.

    Text whose every distinct value (dashes aside) is a number as :data:`FORMATTED_NUMBER`
    writes one, at least one of them more than :data:`UNWRITTEN` (``1,234``, ``$5``,
    ``12%``, ``-5``). As a category each amount would be a one-hot column of its own.
    """
    if _is_number(values):
        return None
    # Most text columns fail on their first rows: a column of 10M ids is never hashed.
    if not _all_formatted(_stripped(values.iloc[:FORMATTED_FIRST].dropna().to_numpy())):
        return None
    texts = _stripped(values.dropna().unique())  # in file order: the first such value is named
    if not _all_formatted(texts):
        return None
    written = texts[~texts.str.fullmatch(UNWRITTEN)]
    if written.empty:  # plain numbers (the reader's to type), codes, or dashes alone
        return None
    return f"numbers written like {written.iloc[0]}"


def stray_text_like(values: pd.Series) -> str | None:
    """Why ``values`` look like numbers with a few cells of text rather than a category, or None.

    One cell that is no plain number (``abc``, ``0x10``, ``1_000``) makes the CSV reader
    read a column of numbers as text; inferred, each number was a category of its own,
    and the service refused every number the file lacked. Names the first such cell.
    """
    if _is_number(values):
        return None
    # A column of names or ids fails on its first rows: it is never hashed whole.
    head = pd.Series(values.iloc[:FORMATTED_FIRST].dropna().to_numpy())
    if head.empty or _plain_numbers(head).mean() < 1 - STRAY_SHARE:
        return None
    distinct = pd.Series(values.dropna().unique())  # in file order: the first is named
    numbers = _plain_numbers(distinct)
    strays = distinct[~numbers]
    if numbers.sum() < STRAY_MIN_NUMBERS or strays.empty:
        return None
    if len(strays) > STRAY_SHARE * len(distinct):
        return None
    first = strays.iloc[0]
    row = int(np.argmax((values == first).to_numpy(dtype=bool, na_value=False))) + 1
    return (
        f"numbers but {clip(repr(str(first)), 60)} in row {row:,}, "
        f"{len(strays):,} of {len(distinct):,} distinct values"
    )


def _plain_numbers(texts: pd.Series) -> pd.Series:
    """Which of ``texts`` a number reader reads as a number: ASCII blanks around, as it does.

    Not ``str.strip()``, which takes any script's spaces: a no-break space before 34 was a
    plain number here, no stray, and the column of numbers was inferred a category.
    """
    stripped = texts.astype(str).str.strip(ASCII_BLANKS)
    return pd.to_numeric(stripped, errors="coerce").notna().to_numpy()


def _stripped(values: Any) -> pd.Series:
    """``values`` as stripped text, dashes (an accountant's zero) left out."""
    texts = pd.Series(values).astype(str).str.strip()
    return texts[~texts.isin(DASHES)]


def _all_formatted(texts: pd.Series) -> bool:
    short = texts.str.len() <= FORMATTED_MAX_CHARS
    return bool(short.all()) and bool(texts.str.fullmatch(FORMATTED_NUMBER).all())


def _has_year_and_month(layout: str) -> bool:
    # pandas guesses a four-digit year only (%Y); "2024" alone is %Y, and no date.
    return "%Y" in layout and any(month in layout for month in ("%m", "%b", "%B"))


def _flagged(
    frame: pd.DataFrame, contract: Contract, test: Callable[[pd.Series], str | None]
) -> tuple[list[tuple[str, str]], str]:
    """The inferred columns ``test`` gives a reason for, and the first few listed with it.

    Past the first few, the list says how many more there are, so a file with 40 such
    columns is not taken for one with five.
    """
    found = [(c, why) for c in contract.columns if (why := test(frame[c])) is not None]
    listed = [f"{c!r} ({why})" for c, why in found[:EXAMPLES]]
    if len(found) > EXAMPLES:
        listed.append(f"and {len(found) - EXAMPLES} more")
    return found, ", ".join(listed)


def _refuse_keys(frame: pd.DataFrame, contract: Contract, source: str) -> None:
    found, listed = _flagged(frame, contract, key_like)
    if not found:
        return
    if len(found) == 1 and not contract.id_in_data:
        fix = f"set data.id: {found[0][0]} in params.yaml, or list data.features without it"
    else:
        fix = "list data.features in params.yaml without " + ("it" if len(found) == 1 else "them")
    verb = "look" if len(found) > 1 else "looks"
    raise ChurnError(f"{source}: {listed} {verb} like a row id or key, not a feature: {fix}")


# What inference says of the columns it refuses, after their names and reasons: one
# column or many, then the fix ({which}: "it" or "them").
A_NUMBER = ("is a number", "are numbers")
WRITTEN_FIX = (
    ", not a category (each value would be a column of its own): write {which} as plain "
    "numbers (1234.5) in the file, or list data.features in params.yaml with {which} as "
    "categorical"
)
STRAY_FIX = (
    " with stray text, not a category (each number would be a column of its own): correct "
    "those cells or leave them empty (missing), or list data.features in params.yaml with "
    "{which} as categorical"
)
A_DATE = ("is a date", "are dates")
DATE_FIX = (
    ", not a category (the service would refuse every later date): list data.features in "
    "params.yaml without {which}, and give the file a number made from {which} (days since, "
    "say)"
)


def _refuse_flagged(
    frame: pd.DataFrame,
    contract: Contract,
    source: str,
    test: Callable[[pd.Series], str | None],
    says: tuple[tuple[str, str], str],
) -> None:
    """Refuse the inferred columns ``test`` flags: ``says`` is (what they are, the fix)."""
    found, listed = _flagged(frame, contract, test)
    if found:
        (one, many), fix = says
        several = len(found) > 1
        which = "them" if several else "it"
        raise ChurnError(f"{source}: {listed} {many if several else one}{fix.format(which=which)}")


def observe(contract: Contract, whole: pd.DataFrame, train: pd.DataFrame) -> Contract:
    """The contract with what the data shows.

    Every numeric column gets the range seen in ``train`` (monitoring counts values
    outside it; nothing refuses them). An inferred contract also gets real rules from
    ``whole``, the file's rows: nullable only where a value is missing, and the
    categories it has. They describe the file, not the split, so that the contract
    frozen from a file accepts that file (a rare category can fall in the test split
    alone, a missing value too).
    """
    columns = {}
    for name, col in contract.columns.items():
        changes: dict = {}
        if col.type == "numeric":
            present = train[name].dropna()
            if len(present):
                changes = {
                    "observed_min": float(present.min()),
                    "observed_max": float(present.max()),
                }
        elif contract.inferred:
            changes = {"categories": tuple(distinct_texts(whole[name]))}
        if contract.inferred:
            changes["nullable"] = bool(whole[name].isna().any())
        columns[name] = replace(col, **changes)
    return replace(contract, columns=columns)


def check_header_names(header: list[str], source: str) -> None:
    """Every column has a name, and only one column has it.

    Left alone, pandas names a nameless column 'Unnamed: 7' and a second 'plan'
    'plan.1', and either would be read, inferred and trained on under a name the file
    never had.
    """
    blank = [i for i, name in enumerate(header, start=1) if not name.strip()]
    if blank:
        more = f" (and {len(blank) - 1} more)" if len(blank) > 1 else ""
        raise ChurnError(f"{source}: header: column {blank[0]} has no name{more}")
    seen: dict[str, int] = {}
    for name in header:
        seen[name] = seen.get(name, 0) + 1
    repeated = [name for name, count in seen.items() if count > 1]
    if repeated:
        name = repeated[0]
        raise ChurnError(f"{source}: header: column {clip(name)!r} appears {seen[name]} times")


def check_name_text(header: list[str], source: str) -> None:
    """Every name is printable text of at most ``NAME_MAX_CHARS`` characters.

    A newline in a quoted name split every message, report and frozen contract that
    named the column; a name of thousands of characters is a cell, not a name.
    """
    for i, name in enumerate(header, start=1):
        if "\t" in name:
            raise ChurnError(
                f"{source}: header: column {i} ({clip(name)}) has a tab: columns are "
                "separated by commas"
            )
        if not name.isprintable():
            # A no-break space from a spreadsheet is no control character: say which it is.
            bad = next(c for c in name if not c.isprintable())
            said = f"U+{ord(bad):04X} {unicodedata.name(bad, '')}".rstrip()  # C0 have no name
            raise ChurnError(
                f"{source}: header: column {i} ({clip(name)}) has a character that is not "
                f"printable text ({said})"
            )
        if len(name) > NAME_MAX_CHARS:
            raise ChurnError(
                f"{source}: header: column {i} ({clip(name)}) has a name longer than "
                f"{NAME_MAX_CHARS} characters"
            )


def check_delimiter(names: list[str], path: str | Path) -> None:
    """A header of one name holding semicolons, tabs or pipes: another delimiter.

    With decimal commas in the rows (1;2,5), pandas first says the rows have more
    fields than the header: this is said instead.
    """
    if len(names) != 1:
        return
    header = names[0]
    for delimiter, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
        if delimiter in header:
            raise ChurnError(f"{path}: columns are separated by {name}; expected commas")


def check_header(data: DataParams, header: list[str], source: str) -> list[str]:
    """The feature columns ``header`` gives under ``data``, after the column checks.

    What prepare checks first, on names alone (``churn check`` runs it on a file's
    first line): target, id and declared features present, no unexpected column when
    the features are declared.
    """
    check_delimiter(header, source)  # "missing columns (found: id;churn;plan)" said less
    check_header_names(header, source)
    check_name_text(header, source)
    if data.features == "infer":
        names = [c for c in header if c not in {data.target, data.id}]
    else:
        names = list(data.features)
    required = [*([data.id] if data.id is not None else []), data.target, *names]
    _check_columns(required, names, header, source)
    check_output_names([data.id or ROW_ID, *names], source)
    check_row_id_free(data.id, names, source)
    return names


def check_slices(slices: list[str], features: list[str], source: str) -> None:
    """``evaluate.slices`` must name feature columns of ``source``: said before any work."""
    _named_features("evaluate.slices", slices, features, source)


def check_value_column_named(column: str | None, features: list[str], source: str) -> None:
    """``decision.value_column`` must name a feature column of ``source`` (its type: later)."""
    _named_features("decision.value_column", [column] if column else [], features, source)


def _named_features(key: str, names: list[str], features: list[str], source: str) -> None:
    unknown = [s for s in names if s not in features]
    if unknown:
        raise ChurnError(
            f"params.yaml: {key}: {clip(', '.join(map(repr, unknown)), 200)} "
            f"{'is not a feature' if len(unknown) == 1 else 'are not features'} of {source} "
            f"(features: {clip(', '.join(features), 200)})"
        )


def check_output_names(names: Iterable[str], source: str, fix: str = "rename") -> None:
    """Refuse an id or feature named like a column churn's outputs add (OUTPUT_NAMES).

    churn score writes the id beside its own columns, and the service logs the features
    beside the probability: one would overwrite the other (the ids of a file whose id
    column is "reason" came out empty). ``fix`` starts the advice: "rename" for data,
    something else for a release already made.
    """
    taken = [name for name in names if name in OUTPUT_NAMES]
    if taken:
        listed = ", ".join(map(repr, taken))
        which = "it" if len(taken) == 1 else "them"
        raise ChurnError(
            f"{source}: {listed}: a name churn's outputs give their own columns "
            f"({', '.join(OUTPUT_NAMES)}) beside the id and the features; {fix} {which}"
        )


def check_row_id_free(data_id: str | None, features: Iterable[str], source: str) -> None:
    """Without an id column (``data.id: null``) no feature may be named ROW_ID.

    The rows are then numbered under that name: churn score wrote the numbers 0, 1, 2
    as ``row_id`` where the file's own ``row_id`` held others, and a join on it paired the
    wrong customers.
    """
    if data_id is None and ROW_ID in features:
        raise ChurnError(
            f"{source}: {ROW_ID!r} is the name churn gives the row numbers when data.id is "
            f"null; rename the column, or set data.id: {ROW_ID} if it is the customer id"
        )


def _check_columns(
    required: list[str], features: Collection[str], present: list[str], source: str
) -> None:
    """``present`` holds every ``required`` column (at least one of them a feature), and no other.

    An inferred contract's features are every other column, so only a declared one
    can meet a column it does not expect.
    """
    missing = [c for c in required if c not in present]
    if missing:
        raise ChurnError(
            f"{source}: missing column(s) {clip(', '.join(map(repr, missing)), 200)} "
            f"(found: {clip(', '.join(present), 200)})"
        )
    if not features:
        raise ChurnError(f"{source}: no feature columns besides the target and id")
    extra = [c for c in present if c not in required]
    if extra:
        raise ChurnError(
            f"{source}: unexpected column(s) {clip(', '.join(map(repr, extra)), 200)}: "
            "add them to data.features in params.yaml or remove them from the file"
        )


# --------------------------------------------------------------------------- validation
# pandera is imported inside the functions that need it: only prepare validates,
# and the other stages (and a model server) should not pay for its import.


def _numbers(values: pd.Series) -> pd.Series:
    """The values as plain numpy numbers, NaN where missing or not a number.

    Plain, not pandas' nullable Int64/Float64: a comparison with <NA> in it is <NA>,
    which pandera counts as passing for the whole column, so a 150 beside an 'x' in a
    string[pyarrow] column escaped "<= 120". True/False, dates and durations are not
    numbers (a CSV's "True" is refused too), though pandas would convert them.
    """
    if not _not_numbers(values):
        if isinstance(values.dtype, np.dtype) and pd.api.types.is_numeric_dtype(values):
            return values  # already plain: compared as is, no float copy of ten million rows
        values = pd.to_numeric(values, errors="coerce")
    if _not_numbers(values):  # also an object column of True/False, which stays bool
        return pd.Series(np.nan, index=values.index)
    return pd.Series(values.to_numpy(float), index=values.index)


# What pandas infers of an object column whose values are no numbers, though to_numeric
# would make them some: a Parquet bool column with a null reads as True/False/None.
NOT_NUMBER_KINDS = frozenset(
    {"boolean", "date", "datetime", "datetime64", "time", "timedelta", "timedelta64", "period"}
)


def _not_numbers(values: pd.Series) -> bool:
    kind = values.dtype
    if pd.api.types.is_object_dtype(kind):
        return pd.api.types.infer_dtype(values, skipna=True) in NOT_NUMBER_KINDS
    return (
        pd.api.types.is_bool_dtype(kind)
        or pd.api.types.is_datetime64_any_dtype(kind)
        or pd.api.types.is_timedelta64_dtype(kind)
    )


def _finite_or_missing(values: pd.Series) -> pd.Series:
    """A finite number, or missing (nullability is another check): inf and 1e999 are not."""
    return pd.Series(np.isfinite(_numbers(values).to_numpy()), index=values.index) | values.isna()


def _numeric_checks(col: Column) -> list:
    import pandera.pandas as pa

    checks = [pa.Check(_finite_or_missing, name="is a number", ignore_na=False)]
    if col.min is not None:
        low = col.min
        checks.append(pa.Check(lambda s: ~(_numbers(s) < low), name=f">= {low:g}"))
    if col.max is not None:
        high = col.max
        checks.append(pa.Check(lambda s: ~(_numbers(s) > high), name=f"<= {high:g}"))
    return checks


def one_of(values: pd.Series, allowed: list[str]) -> pd.Series:
    """Whether each value, as text, is in ``allowed`` (missing ones are pandera's to judge).

    A categorical column is judged by its categories, each once, and the verdicts
    spread by code (a missing value passes): ten million rows never become ten
    million strings.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        ok = pd.Index(values.cat.categories.astype(str)).isin(allowed)
        return pd.Series(np.append(ok, True).take(values.cat.codes), index=values.index)
    return values.astype(str).isin(allowed)


def distinct_texts(values: pd.Series) -> list[str]:
    """The sorted distinct present values of a column, as text."""
    return sorted({str(value) for value in values.dropna().unique()})


def _category_check(col: Column):
    import pandera.pandas as pa

    allowed = list(col.categories or ())
    shown = clip(", ".join(map(repr, allowed)), 120)
    return pa.Check(lambda s: one_of(s, allowed), name=f"one of {shown}")


def _error_schema(
    contract: Contract, features_only: bool = False, categories: bool = True, ids: bool = False
):
    """The refusing checks; ``categories=False`` leaves unknown categories to be counted.

    ``ids=True`` with ``features_only``: the id must be there in every row too (a score
    keyed by no id reaches no customer); unique is for training data, not for a batch
    checked a chunk at a time.
    """
    import pandera.pandas as pa

    columns = {}
    if not features_only:
        columns[contract.target] = pa.Column(
            nullable=False,
            checks=[_label_check(contract)] if contract.labels else [],
        )
    one_line = pa.Check(single_line, name=ONE_LINE)
    if contract.id_in_data and not features_only:
        columns[contract.id] = pa.Column(nullable=False, unique=True, checks=[one_line])
    elif contract.id_in_data and ids:
        columns[contract.id] = pa.Column(nullable=False, checks=[one_line])
    for name, col in contract.columns.items():
        if col.type == "numeric":
            checks = _numeric_checks(col)
        else:
            checks = [_category_check(col)] if categories and col.categories else []
        columns[name] = pa.Column(nullable=col.nullable, checks=checks)
    return pa.DataFrameSchema(columns, strict=False)


# An id is a key to join on. A line break in one was a stray quote's doing: the field ran
# on over the next rows, whose customers vanished into one id scored with a later row's
# features.
ONE_LINE = "one line (a line break: a quote left open, holding the rows after it?)"


def single_line(values: pd.Series) -> pd.Series:
    """Whether each value holds no line break (numbers and missing values pass)."""
    if not (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)):
        return pd.Series(True, index=values.index)
    broken = values.astype("string").str.contains(r"[\r\n]")
    return ~broken.fillna(False).astype(bool)


def _label_check(contract: Contract):
    import pandera.pandas as pa

    labels = list(contract.labels or ())
    return pa.Check(lambda s: one_of(s, labels), name=f"one of {labels}")


def _failures(schema, frame: pd.DataFrame, unit: str = "row") -> list[str]:
    """Validate lazily; one line per failed (column, check): count, rows and values."""
    from pandera.errors import SchemaErrors

    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as err:
        return describe_failures(err.failure_cases, unit)
    return []


def describe_failures(cases: pd.DataFrame, unit: str = "row") -> list[str]:
    """Group pandera's failure cases by column and check, keeping first-seen order.

    An example is named ``<unit> <index + 1>``: a row of the frame, or the line of a
    JSON-lines file whose frame is indexed by line.
    """
    lines = []
    grouped = cases.groupby(["column", "check"], sort=False, dropna=False)
    for (column, check), group in grouped:
        rows = group["index"].dropna()
        count = len(rows) if len(rows) else len(group)
        shown = group.head(EXAMPLES)
        examples = ", ".join(
            f"{unit} {int(i) + 1}: {clip(repr(v), 40)}" if pd.notna(i) else clip(repr(v), 40)
            for i, v in zip(shown["index"], shown["failure_case"], strict=True)
        )
        lines.append(f"{clip(column)}: {rule_text(check)}: {count} bad row(s) ({examples})")
    return lines


def rule_text(check: object) -> str:
    """A pandera check's name as the messages word it."""
    return {"not_nullable": "not null", "field_uniqueness": "unique"}.get(str(check), str(check))


def validate(frame: pd.DataFrame, contract: Contract, source: str) -> None:
    """Check ``frame`` against the contract before anything is transformed.

    Wrong types, out-of-range or missing values, categories outside the declared
    set, duplicate ids, unknown target labels and a single-class target raise one
    :class:`ChurnError` whose first line names the file and whose next lines name
    each failed check.
    """
    problems = _failures(_error_schema(contract), frame)
    labels = distinct_texts(frame[contract.target])
    if not problems and len(labels) < 2:
        problems.append(
            f"{contract.target}: two classes needed to train and evaluate, found only {labels}"
        )
    if problems:
        raise ChurnError(
            f"{source}: {len(problems)} data contract check(s) failed\n  " + "\n  ".join(problems)
        )


def validate_features(
    frame: pd.DataFrame, contract: Contract, source: str, unit: str = "row"
) -> None:
    """Check a batch to score or monitor: the features only (no target, no id needed).

    Extra columns are allowed (a batch may carry the id or the label); categories
    outside the contract are not errors here: monitoring counts them. ``unit`` names
    what the frame's index counts (:func:`describe_failures`).
    """
    require_columns(contract.features, frame.columns, source)
    schema = _error_schema(contract, features_only=True, categories=False)
    problems = _failures(schema, frame, unit)
    if problems:
        raise ChurnError(
            f"{source}: {len(problems)} data contract check(s) failed\n  " + "\n  ".join(problems)
        )


def require_columns(wanted: list[str], present, source: str) -> None:
    """One line naming the columns of ``wanted`` that ``present`` lacks (a whole-file error)."""
    missing = [c for c in wanted if c not in present]
    if missing:
        raise ChurnError(
            f"{source}: missing column(s) {clip(', '.join(map(repr, missing)), 200)} "
            f"(found: {clip(', '.join(map(str, present)), 200)})"
        )


def score_problems(
    frame: pd.DataFrame, contract: Contract, source: str, ids: bool = False
) -> pd.Series:
    """Check a batch to score with the rules the service applies: why each bad row is bad.

    The features (other columns such as the label are ignored), and with ``ids`` the
    id, when the contract has one: a row without it is bad. As in the API and
    prepare, a category outside the contract's list is refused. A missing column is a
    whole-file error. Returns one reason per bad row, indexed by ``frame``'s labels
    ("column: rule (value)", joined by "; "); empty when every row passes.
    """
    from pandera.errors import SchemaErrors

    ids = ids and contract.id_in_data
    require_columns([contract.id] * ids + contract.features, frame.columns, source)
    try:
        _error_schema(contract, features_only=True, ids=ids).validate(frame, lazy=True)
    except SchemaErrors as err:
        # As objects: pandera keeps a lone failing column's categorical dtype, and "+" of
        # text and a category was a TypeError traceback (a Parquet dictionary column).
        cases = err.failure_cases.dropna(subset=["index"]).astype(object)
        values = cases["failure_case"].map(lambda v: f" ({clip(repr(v), 40)})")
        values[cases["check"] == "not_nullable"] = ""  # the value is the missing one
        text = cases["column"].astype(str) + ": " + cases["check"].map(rule_text) + values
        rows = pd.Index(cases["index"]).astype(frame.index.dtype)
        return text.groupby(rows, sort=True).agg("; ".join)
    return pd.Series(dtype=str)


# --------------------------------------------------------------------------- persistence, docs


def contract_text(contract: Contract) -> str:
    """The resolved contract as prepare saves it for the later stages (contract.json)."""
    return io.json_text(contract.to_dict())


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
        return "_features: infer (`churn contract --freeze` prints the rules prepare inferred)_"
    lines = [
        "| column | role | type | nullable | allowed values |",
        "|---|---|---|---|---|",
    ]
    if data.id:
        lines.append(f"| {code(data.id)} | id | any | no | unique |")
    # Without labels any two values do: the positive one and whatever the other is.
    labels = ", ".join(code(label) for label in data.labels) if data.labels else "any two"
    positive = code(data.positive_label)
    lines.append(f"| {code(data.target)} | target | label | no | {labels} (positive: {positive}) |")
    for name, rule in data.features.items():
        lines.append(
            f"| {code(name)} | feature | {rule.type} | {'yes' if rule.nullable else 'no'} "
            f"| {_allowed(rule)} |"
        )
    return "\n".join(lines)


def _allowed(rule: FeatureRule) -> str:
    if rule.type == "categorical":  # categories left out: any value
        return ", ".join(code(c) for c in rule.categories) if rule.categories else "any value"
    low = "-∞" if rule.min is None else f"{rule.min:g}"
    high = "∞" if rule.max is None else f"{rule.max:g}"
    return "any number" if rule.min is None and rule.max is None else f"{low} … {high}"


def freeze_yaml(contract: Contract, source: str) -> str:
    """The resolved contract as the ``data:`` section to paste into ``params.yaml``.

    Declaring it keeps every rule prepare inferred, and makes a column the file
    should not have an error. The range seen in training is a comment: declared
    ``min``/``max`` refuse values, the observed range only counts them.
    """
    import yaml

    def flow(value: object) -> str:
        text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=2**31)
        text = text.strip().removesuffix("...").strip()
        # PyYAML writes YAML 1.1, where a bare 1E1 or 0o17 is text; params.yaml is read
        # as YAML 1.2, where both are numbers. Such a value is written as JSON instead,
        # which YAML 1.2 reads as written.
        if io.parse_yaml(f"v: {text}", f"{source}: the frozen contract")["v"] != value:
            return json.dumps(value, ensure_ascii=False)
        return text

    how = "inferred" if contract.inferred else "declared"
    lines = [
        f"# The data contract prepare resolved from {source} ({how}).",
        "# Paste it over the data: section of params.yaml to declare it.",
        "data:",
        f"  target: {flow(contract.target)}",
        f"  positive_label: {flow(contract.positive_label)}",
    ]
    if contract.labels:
        lines.append(f"  labels: {flow(list(contract.labels))}")
    lines += [f"  id: {flow(contract.id if contract.id_in_data else None)}", "  features:"]
    for name, col in contract.columns.items():
        lines.append(f"    {flow(name)}: {flow(_rule(col))}{_observed(col)}")
    return "\n".join(lines) + "\n"


def _rule(col: Column) -> dict:
    rule: dict = {"type": col.type}
    if col.nullable:
        rule["nullable"] = True
    for key in ("min", "max"):
        if getattr(col, key) is not None:
            rule[key] = getattr(col, key)
    if col.categories:
        rule["categories"] = list(col.categories)
    return rule


def _observed(col: Column) -> str:
    if col.observed_min is None or col.observed_max is None:
        return ""
    return f"  # seen in training: {col.observed_min:g} … {col.observed_max:g}"
