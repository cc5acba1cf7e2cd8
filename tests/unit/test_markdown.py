"""core.markdown: names and values in the tables the project writes, kept as they are."""

import pytest

from churn.core.markdown import cell, code


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("plan", "`plan`"),
        ("fee|usd", "`fee\\|usd`"),  # a pipe would start another column
        ("a`b", "``a`b``"),  # a fence longer than any run inside
        ("a``b`c", "```a``b`c```"),
        ("`tick`", "`` `tick` ``"),  # padded: a backtick at either end
        ("end`", "`` end` ``"),
        ("`start", "`` `start ``"),
        (1, "`1`"),
    ],
)
def test_a_code_span_keeps_backticks_and_escapes_pipes(text, span):
    assert code(text) == span


def test_a_plain_cell_escapes_pipes_only():
    assert cell("plan = a|b `x`") == "plan = a\\|b `x`"
    assert cell(2.5) == "2.5"
