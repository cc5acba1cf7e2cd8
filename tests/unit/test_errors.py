"""clip(): what every message echoes of a user's value."""

import pytest

from churn.core.errors import CLIP, clip


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("plan", "plan"),
        ("café plan", "café plan"),  # printable text stays as written
        ("a\nerror: b", "a\\nerror: b"),  # no second line to say anything
        ("a\r\x00\x1b[31m\u2028b", "a\\r\\x00\\x1b[31m\\u2028b"),
        ("C:\\dir\n'x'", "C:\\dir\\n'x'"),  # printable text as written, backslash too
        (42, "42"),
        ("x" * CLIP, "x" * CLIP),
        ("x" * (CLIP + 1), "x" * CLIP + f"... ({CLIP + 1} characters)"),
        ("\n" * 50, "\\n" * 40 + "... (100 characters)"),  # clipped as shown
    ],
)
def test_clip_shows_one_line_of_at_most_the_limit(value, shown):
    assert clip(value) == shown
    assert "\n" not in clip(value, 10)
