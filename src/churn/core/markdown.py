"""A user's names and values in the Markdown the project writes, shown as they are.

The README's contract table, the model card and the monitoring summary are tables:
a ``|`` in a column name or a category started another column, and a backtick in
one broke its code span.
"""

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
