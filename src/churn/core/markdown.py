"""A user's names and values in the Markdown the project writes, shown as they are.

The README's contract table, the model card and the monitoring summary are tables:
a ``|`` in a column name or a category started another column, and a backtick in
one broke its code span. A number beside the limit it is judged by is shown on its side of
that limit (:func:`shown`): rounded, 0.996 % read "1.0%" beside a 1 % limit it did not reach.
"""

import math
import re


def code(text: object) -> str:
    """``text`` as an inline code span fit for a table cell: backticks kept, pipes escaped."""
    body = str(text).replace("|", "\\|")
    fence = "`" * (max(map(len, re.findall(r"`+", body)), default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def cell(text: object) -> str:
    """Plain ``text`` for a table cell: a pipe would start another column."""
    return str(text).replace("|", "\\|")


MAX_EXTRA_DIGITS = 6  # past these a value is shown as it rounds, however near its limit
SPEC = re.compile(r"(\+?,?)\.(\d+)([fg%])")  # the format specs shown() and signed() take


def digits_more(value: float, spec: str) -> list[str]:
    """``value`` by ``spec`` (``.3f``, ``+,.1f``, ``.2g``, ``+.1%``) and with each extra digit."""
    prefix, precision, kind = SPEC.fullmatch(spec).groups()  # type: ignore[union-attr]
    first = int(precision)
    return [
        format(value, f"{prefix}.{d}{kind}") for d in range(first, first + MAX_EXTRA_DIGITS + 1)
    ]


def shown(value: float, limit: float, spec: str) -> str:
    """``value`` formatted by ``spec``, on its side of ``limit``.

    Rounded to the spec's digits, a share of 0.996 % reads "1.0%" beside a 1 % limit it
    did not reach, and a p of 0.0496 "0.05" beside an alpha of 0.05 it is under. More digits
    are shown until the text is on the same side of the limit (by magnitude: a missing-rate
    change is judged by its size) as the value.
    """
    texts = digits_more(value, spec)
    side = abs(value) >= limit
    return next((text for text in texts if (abs(read_back(text)) >= limit) == side), texts[-1])


def signed(value: float, spec: str) -> str:
    """``value`` formatted by ``spec``, with more digits while a value not zero reads as zero.

    A confidence bound of +0.00004 read "+0.0000" beside the verdict "better", which says
    the whole interval is above zero.
    """
    texts = digits_more(value, spec)
    return next((text for text in texts if read_back(text) != 0 or value == 0), texts[-1])


def read_back(text: str) -> float:
    """The number a text made here says (``"1.0%"``: 0.01, ``"+1,234.5"``: 1234.5)."""
    plain = text.replace(",", "")
    return float(plain[:-1]) / 100 if plain.endswith("%") else float(plain)


def percent(limit: float, first: int = 1) -> str:
    """A limit as a percentage: ``first`` decimals, or as many more as saying it exactly takes."""
    texts = [f"{limit:.{digits}%}" for digits in range(first, first + MAX_EXTRA_DIGITS + 1)]
    return next((text for text in texts if math.isclose(read_back(text), limit)), texts[-1])


def inner(value: float, spec: str) -> str:
    """``value`` by ``spec``, with more digits while it reads as 0 or 1 and is neither.

    A threshold of 0.99999 read "1" and 0.00001 "0.0000": cuts no threshold makes
    (at or above 1 contacts only a score of 1; 0 contacts everyone).
    """
    texts = digits_more(value, spec)
    ends = (0.0, 1.0)
    return next((t for t in texts if read_back(t) not in ends or value in ends), texts[-1])
