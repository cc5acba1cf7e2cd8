"""core.markdown: names and values in the tables the project writes, kept as they are."""

import pytest

from churn.core.markdown import cell, code, digits_more, inner, percent, read_back, shown, signed


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


@pytest.mark.parametrize(
    ("value", "limit", "spec", "text"),
    [
        (0.00996, 0.01, ".1%", "0.996%"),  # rounded: "1.0%", beside a 1 % limit not reached
        (0.01, 0.01, ".1%", "1.0%"),
        (0.0104, 0.01, ".1%", "1.0%"),  # over, and reads as its limit: that side is right
        (0.19996, 0.2, ".3f", "0.19996"),
        (0.2, 0.2, ".3f", "0.200"),
        (0.0496, 0.05, ".2g", "0.0496"),  # a p of "0.05" beside an alpha of 0.05 it is under
        (0.05, 0.05, ".2g", "0.05"),
        (-0.0496, 0.05, "+.1%", "-4.96%"),  # a missing-rate change: judged by its size
        (0.0496, 0.05, "+.1%", "+4.96%"),
        (0.20049, 0.2005, ".3f", "0.200"),  # under a limit of more digits, and reads so
        (0.2005, 0.2005, ".3f", "0.201"),  # at it: rounds up, and reads so
        (0.1999999999999, 0.2, ".3f", "0.200000000"),  # past six more digits: as it rounds
        (0.5, 0.2, ".3f", "0.500"),
    ],
)
def test_a_number_is_shown_on_its_side_of_its_limit(value, limit, spec, text):
    assert shown(value, limit, spec) == text


@pytest.mark.parametrize(
    ("limit", "text"), [(0.05, "5.0%"), (0.0125, "1.25%"), (0.001, "0.1%"), (0.00015, "0.015%")]
)
def test_a_percentage_limit_is_said_exactly(limit, text):
    assert percent(limit) == text


def test_a_limit_no_digits_say_exactly_gets_the_most_there_are():
    assert percent(1.23456789e-7) == "0.0000123%"  # seven decimals, then as it rounds


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1.0%", 0.01),
        ("+4.96%", 0.0496),
        ("-4.96%", -0.0496),
        ("0.05", 0.05),
        ("1e-05", 1e-5),
        ("+1,234.5", 1234.5),
        ("1,234.5%", 12.345),
    ],
)
def test_a_shown_text_reads_back_as_its_number(text, number):
    assert read_back(text) == pytest.approx(number, rel=1e-12)


@pytest.mark.parametrize(
    ("value", "spec", "text"),
    [
        (0.00004, "+.4f", "+0.00004"),  # "+0.0000" beside "better" read as no change
        (-0.00004, "+.4f", "-0.00004"),
        (0.0, "+.4f", "+0.0000"),  # zero is zero
        (0.1234, "+.4f", "+0.1234"),
        (0.04, "+,.1f", "+0.04"),
        (-1234.56, "+,.1f", "-1,234.6"),
        (1e-12, "+.4f", "+0.0000000000"),  # past six more digits: as it rounds
    ],
)
def test_a_signed_number_not_zero_does_not_read_as_zero(value, spec, text):
    assert signed(value, spec) == text


def test_each_extra_digit_is_one_more_text():
    assert digits_more(2 / 3, "+,.1f") == [
        "+0.7",
        "+0.67",
        "+0.667",
        "+0.6667",
        "+0.66667",
        "+0.666667",
        "+0.6666667",
    ]


@pytest.mark.parametrize(
    ("value", "spec", "text"),
    [
        (0.99999, ".4f", "0.99999"),
        (0.999999999, ".4f", "0.999999999"),
        (0.99999999999, ".4f", "1.0000000000"),  # at most six more digits, then as it rounds
        (0.00001, ".4f", "0.00001"),
        (0.2634, ".4f", "0.2634"),
        (1.0, ".4f", "1.0000"),  # 1 itself is said as 1
        (0.0, ".4g", "0"),
        (0.99999, ".4g", "0.99999"),
    ],
)
def test_inner_never_reads_as_zero_or_one_when_it_is_neither(value, spec, text):
    assert inner(value, spec) == text


@pytest.mark.parametrize(
    ("share", "text"), [(0.1, "10%"), (0.125, "12.5%"), (0.004, "0.4%"), (1.0, "100%")]
)
def test_a_share_from_no_decimals_is_said_exactly(share, text):
    assert percent(share, 0) == text
