"""Reading a request: the schemas built from the data contract, and the model's input frame.

Two parsers come from the same contract: a msgspec decoder for the usual,
well-formed batch, and the pydantic model that the OpenAPI document shows and
that words every 422. Both read raw bytes.
"""

import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired

import msgspec
import numpy as np
import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from churn.core.contract import NUMBER_TEXT as NUMBER_PATTERN
from churn.core.contract import Column, Contract

# What msgspec raises on bytes it cannot read as asked (bad JSON, not UTF-8, too deep).
UNREADABLE = (msgspec.MsgspecError, ValueError, RecursionError)


def _category(column: Column) -> Any:
    """One of the contract's categories, or any string if it lists none."""
    return Literal[tuple(column.categories)] if column.categories else str


# A number sent as text, as prepare and monitor read one.
NUMBER_TEXT = re.compile(NUMBER_PATTERN, re.ASCII)


def _number_text(value: Any) -> Any:
    # pydantic's lax float takes true/false as 1/0; the contract, churn score, prepare
    # and monitor all refuse a boolean where a number goes.
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "Input should be a valid number, not a boolean")
    if isinstance(value, str) and not NUMBER_TEXT.fullmatch(value):
        raise PydanticCustomError(
            "float_parsing", "Input should be a valid number, unable to parse string as a number"
        )
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:  # pydantic said "a valid number"; 1e400 is "a finite number"
            raise PydanticCustomError("finite_number", "Input should be a finite number") from None
    return value


def _field(column: Column) -> Any:
    if column.type == "categorical":
        kind: Any = _category(column)
    else:
        bounds = Field(ge=column.min, le=column.max, allow_inf_nan=False)
        kind = Annotated[float, bounds, BeforeValidator(_number_text)]
    return NotRequired[kind | None] if column.nullable else kind


def customer_model(contract: Contract) -> type:
    """One customer as a TypedDict built from the contract: unknown fields refused.

    A TypedDict (not a BaseModel) validates straight into plain dicts, which is
    what the DataFrame needs: no model objects to build and dump per row.
    """
    fields = {name: _field(col) for name, col in contract.columns.items()}
    customer = TypedDict("Customer", fields)  # type: ignore[misc]
    customer.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    return customer


def _fast_field(column: Column) -> Any:
    if column.type == "categorical":
        return _category(column)
    bounds = {"ge": column.min, "le": column.max}
    meta = {key: value for key, value in bounds.items() if value is not None}
    return Annotated[float, msgspec.Meta(**meta)] if meta else float


def fast_decoder(contract: Contract, max_batch: int | None = None) -> msgspec.json.Decoder | None:
    """A msgspec decoder for ``{"customers": [...]}``, built from the same contract.

    It parses and checks a body in one pass, about four times faster than pydantic,
    but only ever as a shortcut: it is stricter (no lax coercion such as ``"1.5"``
    or ``true`` for a number), and whatever it refuses goes to the pydantic model,
    which decides and words the 422. A test holds it to never accepting what
    pydantic refuses, nor reading a value differently. None for a contract with a
    column name msgspec cannot take (a quote, a backslash, a control character):
    pydantic then reads every body.
    """
    if any(UNRENAMABLE.search(name) for name in contract.columns):
        return None
    fields: list[tuple[str, Any] | tuple[str, Any, None]] = []
    for i, column in enumerate(contract.columns.values()):
        # Slots need identifiers; a column may be "total charges": name f0.., rename.
        kind = _fast_field(column)
        # An absent nullable field is UNSET, not None: each_name_once counts the present.
        nullable = (f"f{i}", kind | None | msgspec.UnsetType, msgspec.UNSET)
        fields.append(nullable if column.nullable else (f"f{i}", kind))
    rename = {f"f{i}": name for i, name in enumerate(contract.columns)}
    # gc=False: a customer holds only floats, strings and None, so it cannot be in a
    # cycle; untracked, a 1,000-row batch does not set off collections.
    customer = msgspec.defstruct(
        "Customer", fields, forbid_unknown_fields=True, kw_only=True, gc=False, rename=rename
    )
    # max_length: a batch over MAX_BATCH is refused here too, so it is never turned
    # into rows (with every field optional, 200,000 ``{}`` would all be valid).
    limit = msgspec.Meta(min_length=1, max_length=max_batch)
    customers = Annotated[list[customer], limit]  # type: ignore[valid-type]
    body = msgspec.defstruct(
        "PredictRequest", [("customers", customers)], forbid_unknown_fields=True
    )
    return msgspec.json.Decoder(body)


def each_name_once(body: bytes, present: list[int]) -> bool:
    """Whether ``body``, which the fast decoder took, names each field once per customer.

    msgspec keeps the last value of a repeated name, where pydantic's reading (see
    :func:`read_loosely`) refuses it: ``"tenure": 1, "tenure": 2`` was a 200 or a
    422 by the values. Every member of a JSON object has one colon, so a body of
    "customers" and the fields ``present`` counts (per field, the customers that gave
    it) has that many colons plus those inside text values, and a repeated name, or
    a repeated "customers", one more. A colon in a text value is a false alarm that
    costs pydantic's time, never a wrong answer. One pass over the bytes.
    """
    return body.count(b":") == sum(present) + 1


def fast_rows(customers: list[Any], nullable: list[int]) -> tuple[list[tuple], list[int]]:
    """The decoded customers as tuples (an absent field None), and per field how many gave it.

    Only the ``nullable`` positions can be absent (UNSET): only they are looked at.
    """
    rows = list(map(msgspec.structs.astuple, customers))
    present = [len(rows)] * (len(rows[0]) if rows else 0)
    unset = msgspec.UNSET
    for at, row in enumerate(rows):
        gaps = [i for i in nullable if row[i] is unset]
        if gaps:
            for i in gaps:
                present[i] -= 1
            rows[at] = tuple(None if value is unset else value for value in row)
    return rows, present


# What msgspec refuses in a renamed field (its "rename" names the JSON keys).
UNRENAMABLE = re.compile(r'["\\\x00-\x1f]')


def example_customer(contract: Contract) -> dict[str, Any]:
    """A valid customer for the docs: the first category, the lower bound (or 1)."""
    out: dict[str, Any] = {}
    for name, col in contract.columns.items():
        if col.type == "categorical":
            out[name] = col.categories[0] if col.categories else "unknown"
        else:
            out[name] = col.min if col.min is not None else 1.0
    return out


def request_model(contract: Contract, customer: type) -> type[BaseModel]:
    """``{"customers": [...]}`` with at least one customer, and a working docs example."""
    example = {"customers": [example_customer(contract)]}
    return create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [example]}),
        customers=(Annotated[list[customer], Field(min_length=1)], ...),  # type: ignore[valid-type]
    )


def is_identity(content_encodings: list[str]) -> bool:
    """No content coding, or only ``identity``: a gzip body read as JSON is bytes, not data.

    Each ``Content-Encoding`` header may list several codings, comma-separated.
    """
    codings = [c.strip().lower() for value in content_encodings for c in value.split(",")]
    return all(coding in {"", "identity"} for coding in codings)


def is_json(content_type: str | None) -> bool:
    """``application/json`` exactly (any case), with parameters; a charset must be UTF-8.

    Not ``application/*+json`` nor ``text/json``: the body is read as this API's
    JSON, and a client that labels it otherwise is told so (415).
    """
    media, *params = (content_type or "").split(";")
    if media.strip().lower() != "application/json":
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in {
            "utf-8",
            "utf8",
        }:
            return False
    return True


class _Batch(msgspec.Struct):
    """Only the length of ``customers``: each one is kept as raw, unparsed bytes."""

    customers: list[msgspec.Raw]


_COUNTER = msgspec.json.Decoder(_Batch)


def count_customers(body: bytes) -> int | None:
    """How many customers a body holds, without reading any of them; None if it cannot say.

    One pass over the bytes and a ``Raw`` slice per customer, so a batch over
    MAX_BATCH is refused before any per-customer validation (and its errors) is done.
    """
    try:
        return len(_COUNTER.decode(body).customers)
    except UNREADABLE:  # pydantic words it
        return None


_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RAWS = msgspec.json.Decoder(list[msgspec.Raw])


@dataclass(frozen=True)
class Shape:
    """A body's shape, read with msgspec's ``Raw`` slices: none of its values built.

    pydantic's error for a nested value carries the value itself, and the loose read
    builds every object: 1.3 million ``{}`` in one field cost 2.6 GB before the 422,
    4 MB of them under an unknown top-level name 200 MB.
    """

    names: list[str]  # of the top-level object's members
    nested: list[tuple[tuple[Any, ...], str]]  # (path under customers, message) of each


def read_shape(body: bytes) -> Shape | None:
    """The body's :class:`Shape`; None if msgspec cannot read it (pydantic words why).

    Its top-level object is read once, and ``customers`` out of that slice.
    """
    top = _decoded(_TOP, body)
    if top is None:
        return None
    try:
        customers = _RAWS.decode(top["customers"]) if "customers" in top else []
    except UNREADABLE:  # not a list: pydantic words it
        customers = []
    return Shape(list(top), [found for i, c in enumerate(customers) for found in _nested(i, c)])


def customer_slices(body: bytes, size: int) -> Iterator[tuple[int, bytes]] | None:
    """The body as bodies of at most ``size`` customers, each customer's bytes as written.

    Each with the index of its first customer in the body; None unless the body is one
    object of a non-empty ``customers`` list alone that msgspec reads as written (no
    ``NaN`` literals): pydantic then judges the whole body, as before.
    """
    try:
        top = _TOP.decode(body)
        customers = _RAWS.decode(top["customers"]) if list(top) == ["customers"] else []
    except UNREADABLE:
        return None
    if not customers:
        return None
    return (
        (start, b'{"customers":[' + b",".join(customers[start : start + size]) + b"]}")
        for start in range(0, len(customers), size)
    )


def _decoded(decoder: msgspec.json.Decoder, body: bytes) -> Any:
    """``body`` decoded for its shape; None if unreadable even so.

    pydantic reads ``NaN`` and ``Infinity`` literals, msgspec does not: they are read
    as numbers of the same kind here. Texts are left as they are: a name like
    ``"BaNaNa"`` was named back as ``"Ba0.0a"``.
    """
    try:
        return decoder.decode(body)
    except UNREADABLE:
        pass  # the literals read as numbers: made only now, most bodies never need it
    try:
        return decoder.decode(NON_FINITE.sub(_as_number, body))
    except UNREADABLE:  # pydantic words it
        return None


# A JSON string (kept as it is: a name like "BaNaNa" is no literal) or a NaN or Infinity
# literal (read as a number of the same kind). A string left open runs to the end of the
# body: were it not matched, the scan would start again at each quote inside it, and
# 80 KB of \" took a minute (quadratic). Possessive (``++``, ``*+``): a string's text is
# never given back, and the engine keeps no state to backtrack into: a 4 MB string cost
# 450 MB of it (a group repeated per character), in every 422 of such a body.
NON_FINITE = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)|NaN|Infinity', re.DOTALL)


def _as_number(found: re.Match) -> bytes:
    literal = found[0]
    if literal.startswith(b'"'):
        return literal
    return b"0.0" if literal == b"NaN" else b"1.0e+300"


def _nested(i: int, customer: msgspec.Raw) -> list[tuple[tuple[Any, ...], str]]:
    """Customer ``i`` if it is an array, or each of its fields holding an array or object."""
    first = _first_byte(customer)
    if first == b"[":
        return [((i,), "Input should be a valid dictionary, not an array")]
    if first != b"{":
        return []  # a number, text or null: small, pydantic words it
    try:
        fields = _TOP.decode(customer).items()
    except UNREADABLE:
        # Its names are decoded here first (the body's pass kept them raw): a name that is
        # no UTF-8 raised a 500. pydantic words the whole body's JSON error instead.
        return []
    return [
        ((i, name), "Input should be a single value, not an array or object")
        for name, value in fields
        if _first_byte(value) in (b"[", b"{")
    ]


def _first_byte(raw: msgspec.Raw) -> bytes:
    return memoryview(raw)[:1].tobytes()


class Written(dict):
    """A JSON object as pydantic reads it (of a repeated name the last value wins).

    ``members`` is how many it was written with: pydantic words an error for every
    repeated or unknown one, which a dict alone would hide.
    """

    __slots__ = ("members",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.members = len(pairs)


@dataclass(frozen=True)
class LooseBody:
    """A body's top-level object, read loosely: its members as written, and ``customers``."""

    members: int
    names: int  # distinct: fewer than members when a name is repeated
    customers: list[Any] | None  # None unless a list


def read_loosely(body: bytes) -> LooseBody | None:
    """The body's object and its ``customers`` list as pydantic reads them; None if no object.

    Looser than :func:`count_customers` (``NaN`` literals, a repeated name: the last
    wins), as the 422's wording is pydantic's: so the batch is measured as pydantic
    would see it before pydantic validates it. Objects are :class:`Written`.
    """
    if body.lstrip(b" \t\r\n")[:1] != b"{":  # no object: a 3.9 MB array of {} took 100 MB
        return None
    try:
        # Decoded first: json.loads would drop a byte-order mark that pydantic refuses.
        parsed = json.loads(body.decode("utf-8"), object_pairs_hook=Written)
    except (ValueError, RecursionError):  # not UTF-8 or not JSON: pydantic's one error says where
        return None
    if not isinstance(parsed, Written):
        return None
    customers = parsed.get("customers")
    listed = customers if isinstance(customers, list) else None
    return LooseBody(parsed.members, len(parsed), listed)


def wide_customers(
    customers: list[Any], known: Collection[str]
) -> list[tuple[int, list[str], int]]:
    """Customers written with more members than the contract has fields, or a name twice.

    Each as (index, its unknown names, how many names it repeats). pydantic reports
    every unknown or repeated member on its own; a customer with 300,000 of them would
    cost gigabytes of errors. Such a customer is refused here, named once.
    """
    return [
        (i, [name for name in customer if name not in known], customer.members - len(customer))
        for i, customer in enumerate(customers)
        # Repeated names in a customer lacking a nullable field: fewer than the contract's.
        if isinstance(customer, Written)
        and (customer.members > len(known) or customer.members > len(customer))
    ]


def to_frame(customers: list[tuple], contract: Contract) -> pd.DataFrame:
    """Validated customers (tuples in contract order) as the model's input columns.

    Two blocks in the contract's feature order: numbers as float (a missing
    nullable one is NaN) and categories as Python strings in object columns, which
    the encoder reads without converting. Going through one object array of rows
    is about 1.5 ms per 1,000 rows faster than a frame of per-column string Series.
    """
    names = list(contract.columns)
    cells = np.array(customers, dtype=object).reshape(len(customers), len(names))
    position = {name: i for i, name in enumerate(names)}
    numeric, categorical = list(contract.numeric), list(contract.categorical)
    numbers = cells[:, [position[name] for name in numeric]].astype(float)  # None -> NaN
    categories = cells[:, [position[name] for name in categorical]]
    return pd.concat(
        [
            pd.DataFrame(numbers, columns=numeric),
            pd.DataFrame(categories, columns=categorical, dtype=object),
        ],
        axis=1,
    )
